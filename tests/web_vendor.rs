//! The page's vendored JavaScript (web/vendor/) is exactly what web/package-lock.json pins:
//! web/vendor/update.sh installs the pinned package with `npm ci` (which checks the tarball
//! against the lockfile's sha512), copies its files and records their sha256 in
//! web/vendor/vendor.json; these tests check the files, the manifest and the lockfile agree, so a
//! hand-edited or half-updated vendored file fails the build's tests.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

#[test]
fn vendored_uplot_files_match_the_sha256_recorded_when_they_were_vendored() {
    let manifest = json(&web().join("vendor/vendor.json"));
    let files = manifest["uplot"]["files"]
        .as_object()
        .expect("vendor.json lists uplot's files");
    assert!(
        files.contains_key("uPlot.iife.min.js") && files.contains_key("uPlot.min.css"),
        "{manifest}"
    );
    for (name, want) in files {
        let path = web().join("vendor").join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            Some(got.as_str()),
            want.as_str(),
            "{} differs from what web/vendor/update.sh vendored; run it again",
            path.display()
        );
    }
}

#[test]
fn vendored_uplot_is_the_version_and_tarball_the_lockfile_pins() {
    let manifest = json(&web().join("vendor/vendor.json"));
    let lock = json(&web().join("package-lock.json"));
    let package = json(&web().join("package.json"));
    let locked = &lock["packages"]["node_modules/uplot"];
    let version = locked["version"].as_str().expect("the lockfile pins uplot");
    // --save-exact: package.json names one version, not a range.
    assert_eq!(package["dependencies"]["uplot"], version, "{package}");
    assert_eq!(manifest["uplot"]["version"], version, "{manifest}");
    assert_eq!(
        manifest["uplot"]["integrity"], locked["integrity"],
        "vendor.json was written from another tarball than the lockfile's; run web/vendor/update.sh"
    );
    assert!(
        locked["integrity"]
            .as_str()
            .is_some_and(|i| i.starts_with("sha512-")),
        "{locked}"
    );
    // The minified build carries no licence banner: its licence is copied beside it.
    let licence = std::fs::read_to_string(web().join("vendor/uPlot.LICENSE")).unwrap();
    assert!(
        licence.contains("MIT License") && licence.contains("Leon Sorokin"),
        "{licence}"
    );
}
