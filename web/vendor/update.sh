#!/bin/sh
# Re-vendors uPlot (the Runs tab's chart) from npm: installs exactly what web/package-lock.json
# pins (npm ci checks the tarball against the lockfile's sha512), copies its minified build, CSS
# and licence here, and records their sha256 in vendor.json, which `cargo test --test
# web_vendor` checks against these files and the lockfile. The build itself never runs npm.
#
# Upgrade: (cd web && npm install --save-exact uplot@VERSION) && web/vendor/update.sh
set -eu
web=$(cd "$(dirname "$0")/.." && pwd)
cd "$web"
npm ci --no-audit --no-fund
dist=node_modules/uplot/dist
cp "$dist/uPlot.iife.min.js" "$dist/uPlot.min.css" vendor/
cp node_modules/uplot/LICENSE vendor/uPlot.LICENSE
node - <<'JS' > vendor/vendor.json
const fs = require('fs'), crypto = require('crypto');
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8')).packages['node_modules/uplot'];
const files = {};
for (const f of ['uPlot.iife.min.js', 'uPlot.min.css', 'uPlot.LICENSE']) {
  files[f] = crypto.createHash('sha256').update(fs.readFileSync('vendor/' + f)).digest('hex');
}
const manifest = { uplot: { version: lock.version, integrity: lock.integrity, files } };
process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
JS
rm -rf node_modules
echo "vendored uPlot $(node -p "require('./package-lock.json').packages['node_modules/uplot'].version") into $web/vendor"
