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
# model files, which the kernel can drop and re-read) after REQUESTS (3000) random requests of
# the page's defaults, then after one request of every kind (searches, every model and index, a
# user, likes, the projection), then after REQUESTS random ones over every model and index; and
# VmHWM (the peak) over the run.
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
workload() {
  python3 - "$url" "${REQUESTS:-3000}" "$1" <<'PY'
import http.client, json, random, sys
from urllib.parse import urlparse
url, n, mix = urlparse(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection(url.hostname, url.port)
conn.request("GET", "/api/movies/titles")
ids = json.loads(conn.getresponse().read())["movieIds"]
rng = random.Random(7)
if mix == "default":
    # What the page asks by default: the collaborative model (item-kNN lists), users, likes.
    combos = [(None, None)]
else:
    combos = [(m, i) for m in ("content", "svd", "als", "hybrid") for i in ("exact", "annoy", "hnsw")]
for r in range(n):
    if r % 10 == 9:
        conn.request("GET", f"/api/users/{rng.randint(1, 600)}/recommendations?k=10")
    elif r % 10 == 8:
        body = json.dumps({"likes": rng.sample(ids, 3), "k": 10})
        conn.request("POST", "/api/recommendations/for-likes", body, {"Content-Type": "application/json"})
    else:
        model, index = rng.choice(combos)
        request = {"movie": rng.choice(ids), "k": 10}
        if model:
            request.update(model=model, index=index)
        conn.request("POST", "/api/recommendations", json.dumps(request), {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status in (200, 404), response.status
PY
}
memory() { echo "$1: resident $(rss VmRSS) ($(rss RssAnon) anonymous, $(rss RssFile) pages of the mapped model files), peak $(rss VmHWM)"; }
workload default
memory "after ${REQUESTS:-3000} requests of the page's defaults (collaborative model, users, likes)"
curl -sf "$url/api/movies/search?q=toy%20stroy" >/dev/null
for model in content svd als hybrid; do
  for index in exact annoy hnsw; do
    post /api/recommendations "{\"movie\": 1, \"k\": 10, \"model\": \"$model\", \"index\": \"$index\"}"
  done
done
post /api/recommendations '{"movie": 1, "k": 10, "model": "ease"}'
post /api/recommendations '{"movies": [1, 2, 4], "k": 10}'

curl -sf "$url/api/users/1/recommendations?k=10" >/dev/null
post /api/recommendations/for-likes '{"likes": [1, 2], "k": 10}'
curl -sf "$url/api/projection?model=content" >/dev/null
curl -sf "$url/api/movies/titles" >/dev/null
memory "after one request of every kind"
workload mixed
memory "after ${REQUESTS:-3000} random requests over every embedding model and index"
