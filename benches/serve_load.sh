#!/usr/bin/env bash
# Load benchmark of `POST /api/recommendations` (issue 6): starts `movierec serve` on the bundled
# model and drives it with wrk (Debian's `wrk` package) over 64 keep-alive connections, for the
# exact and the HNSW index, by movie id and by a misspelled title; then with a different movie on
# every request (drawn at random from the whole catalog), so no request reuses the last one's
# cache lines.
#
#   bash benches/serve_load.sh [SECONDS] [CONNECTIONS]
#
# MOVIEREC_BENCH_BIN runs another build (e.g. an older one, for a side-by-side comparison) and
# MOVIEREC_BENCH_MODEL serves another model directory (default models/default, trained if
# missing).
#
# The figures and the machine they ran on are in docs/BENCHMARKS.md. wrk runs on the same machine
# as the server, so the two share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
connections=${2:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
bin=${MOVIEREC_BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/movierec
fi
model=${MOVIEREC_BENCH_MODEL:-models/default}
[ -f "$model/manifest.json" ] || "$bin" train --out "$model" >/dev/null
port=${MOVIEREC_BENCH_PORT:-7391}
log=$(mktemp)
"$bin" serve --model-dir "$model" --port "$port" --max-in-flight 4096 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log" "$script"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break
  sleep 0.1
done
script=$(mktemp --suffix=.lua)
# Appends the function printing the figures to the Lua script, then runs wrk with it.
load() {
  local label=$1
  cat >>"$script" <<LUA
done = function(summary, latency, requests)
  io.write(string.format("RESULT %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors (%d non-2xx)\n",
    "$label", summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
LUA
  wrk -t 2 -c "$connections" -d "${seconds}s" --latency -s "$script" \
    "http://127.0.0.1:$port/api/recommendations" | grep RESULT
}
run() {
  local label=$1 body=$2
  cat >"$script" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$body'
LUA
  # One check request first: the body must be answered with 200.
  curl -sf -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/api/recommendations" >/dev/null
  load "$label"
}
# A different movie on every request: the Lua script draws an id from the catalog's
# (`/api/movies/titles`), seeded so the sequence is the same on every run.
run_random() {
  local label=$1 model=$2 index=$3
  local ids
  ids=$(curl -sf "http://127.0.0.1:$port/api/movies/titles" |
    python3 -c 'import json, sys; print(",".join(map(str, json.load(sys.stdin)["movieIds"])))')
  cat >"$script" <<LUA
local ids = {$ids}
local counter = 0
setup = function(thread) thread:set("seed", counter); counter = counter + 1 end
init = function() math.randomseed(42 + seed) end
request = function()
  local body = string.format('{"movie": %d, "k": 10, "model": "$model", "index": "$index"}',
    ids[math.random(#ids)])
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
LUA
  load "$label"
}
run "content, exact, movie id" '{"movie": 1, "k": 10, "model": "content", "index": "exact"}'
run "svd, exact, movie id" '{"movie": 1, "k": 10, "model": "svd", "index": "exact"}'
run "svd, hnsw, movie id" '{"movie": 1, "k": 10, "model": "svd", "index": "hnsw"}'
run "collaborative (item_knn lists), movie id" '{"movie": 1, "k": 10}'
run "svd, hnsw, title 'toy stroy'" '{"movie": "toy stroy", "k": 10, "model": "svd", "index": "hnsw"}'
run_random "content, exact, random movie" content exact
run_random "svd, exact, random movie" svd exact
run_random "svd, hnsw, random movie" svd hnsw
