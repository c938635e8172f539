#!/usr/bin/env bash
# Start-up time and resident memory of `movierec serve` on a model directory (issue 6: a model of
# `movierec synth --scale 1` size must be ready in ≤ 1 s and stay under 300 MB resident).
#
#   bash benches/serve_memory.sh MODEL_DIR
#
# Make one with: movierec synth --out /tmp/synth1 --scale 1
#                movierec train --data /tmp/synth1 --out /tmp/synth1-model
# "Ready" is the time from starting the process to its first 200 from /api/health (polled every
# 5 ms), checksums verified. Memory is VmRSS (split into anonymous memory and pages of the mapped
# model files, which the kernel can drop and re-read) after a round of every kind of request
# (searches, every model and index, a user, likes, the projection), then after REQUESTS (3000)
# random ones, and VmHWM (the peak) over the run.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: benches/serve_memory.sh MODEL_DIR}
cargo build --release --quiet
bin=target/release/movierec
port=${MOVIEREC_BENCH_PORT:-7392}
url="http://127.0.0.1:$port"
start=$(date +%s.%N)
"$bin" serve --model-dir "$model" --port "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
until curl -sf "$url/api/health" >/dev/null; do
  kill -0 $server 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.005
done
ready=$(echo "$(date +%s.%N) - $start" | bc)
rss() { awk -v k="$1:" '$1 == k { printf "%.1f MB", $2 / 1024 }' "/proc/$server/status"; }
echo "ready after ${ready} s; resident: $(rss VmRSS)"
post() { curl -sf -H 'Content-Type: application/json' -d "$2" "$url$1" >/dev/null; }
curl -sf "$url/api/movies/search?q=toy%20stroy" >/dev/null
for model in content svd als hybrid; do
  for index in exact annoy hnsw; do
    post /api/recommendations "{\"movie\": 1, \"k\": 10, \"model\": \"$model\", \"index\": \"$index\"}"
  done
done
post /api/recommendations '{"movie": 1, "k": 10, "model": "ease"}'
post /api/recommendations '{"movies": [1, 2, 3], "k": 10}'

curl -sf "$url/api/users/1/recommendations?k=10" >/dev/null
post /api/recommendations/for-likes '{"likes": [1, 2], "k": 10}'
curl -sf "$url/api/projection?model=content" >/dev/null
curl -sf "$url/api/movies/titles" >/dev/null
echo "after one of each request: resident $(rss VmRSS) ($(rss RssAnon) anonymous, $(rss RssFile) mapped files), peak $(rss VmHWM)"
# Then a mixed workload: random movies through every embedding model and index, random users.
python3 - "$url" "${REQUESTS:-3000}" <<'PY'
import http.client, json, random, sys
from urllib.parse import urlparse
url, n = urlparse(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port)
conn.request("GET", "/api/movies/titles")
ids = json.loads(conn.getresponse().read())["movieIds"]
rng = random.Random(7)
combos = [(m, i) for m in ("content", "svd", "als", "hybrid") for i in ("exact", "annoy", "hnsw")]
for r in range(n):
    if r % 10 == 9:
        conn.request("GET", f"/api/users/{rng.randint(1, 600)}/recommendations?k=10")
    else:
        model, index = rng.choice(combos)
        body = json.dumps({"movie": rng.choice(ids), "k": 10, "model": model, "index": index})
        conn.request("POST", "/api/recommendations", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status in (200, 404), response.status
PY
echo "after ${REQUESTS:-3000} mixed requests: resident $(rss VmRSS) ($(rss RssAnon) anonymous, $(rss RssFile) mapped files), peak $(rss VmHWM)"
