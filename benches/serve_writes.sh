#!/usr/bin/env bash
# Acknowledged single-rating writes through HTTP while recommendations are served (issue 15's
# target: >= 5,000 PUTs per second on 64 connections, p99 <= 20 ms, the load generator on the
# same machine):
#
#   bash benches/serve_writes.sh [MODEL_DIR] [SECONDS]
#
# A fresh database (a temporary file) is imported from the bundled release; 1,024 profiles are
# created; then for SECONDS (default 20) wrk sends `PUT /api/users/{id}/ratings/{movie}` from
# 64 connections (each request a random profile, with its own token, a random movie among the
# 1,000 most rated and a random half-star rating) while a second wrk asks
# `GET /api/users/{id}/recommendations` for random profiles on 8 connections (about 500 a second). Every write is
# committed (WAL, synchronous=FULL) before it is answered. The per-token rate limit stays at its
# default (20 writes/s): 1,024 profiles share the load, about 5 writes/s each. Afterwards the
# stored ratings are counted against the 200 answers.
#
# Environment: PUT_DELAY_MS=N paces the writers (each connection pauses N ms between requests;
# 10 gives about 5,000 writes/s), READ_CONNECTIONS=N and READ_DELAY_MS=N set the recommendation load (default: 8
# connections pausing 15 ms between requests, about 500 recommendation requests a second).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/default}
seconds=${2:-20}
port=${MOVIEREC_BENCH_PORT:-7395}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source benches/serve_common.sh
start_server "$model" "$port" --database "sqlite:$work/movierec.db" --profile-rate 0
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
python3 - "$port" "$work" <<'PY'
import http.client, json, sys, collections, csv
port, work = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
with open(f"{work}/profiles.txt", "w") as out:
    for _ in range(1024):
        conn.request("POST", "/api/users")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 201, body
        out.write(f"{body['userId']} {body['token']}\n")
counts = collections.Counter()
with open("data/ml-latest-small/ratings.csv") as f:
    for row in csv.DictReader(f):
        counts[row["movieId"]] += 1
with open(f"{work}/movies.txt", "w") as out:
    out.write("\n".join(m for m, _ in counts.most_common(1000)) + "\n")
PY
cat > "$work/put.lua" <<LUA
local ids, tokens, movies = {}, {}, {}
for line in io.lines("$work/profiles.txt") do
  local id, token = line:match("(%d+) (%x+)")
  ids[#ids + 1] = id
  tokens[#tokens + 1] = token
end
for line in io.lines("$work/movies.txt") do movies[#movies + 1] = line end
local errors = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local i = math.random(#ids)
  local movie = movies[math.random(#movies)]
  return wrk.format("PUT", "/api/users/" .. ids[i] .. "/ratings/" .. movie,
    {["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json"},
    '{"rating": ' .. (math.random(10) / 2) .. '}')
end
response = function(status)
  if status ~= 200 then errors = errors + 1 end
end
-- PUT_DELAY_MS: each connection pauses this long between its requests (paced load; 0: as fast
-- as the server answers).
local pause = tonumber("${PUT_DELAY_MS:-0}")
if pause > 0 then
  delay = function() return pause end
end
done = function(summary)
  io.write(string.format("non-200 answers: %d (socket errors: %d connect, %d read, %d write, %d timeout)\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
end
LUA
cat > "$work/get.lua" <<LUA
local ids, tokens = {}, {}
for line in io.lines("$work/profiles.txt") do
  local id, token = line:match("(%d+) (%x+)")
  ids[#ids + 1] = id
  tokens[#tokens + 1] = token
end
local pause = tonumber("${READ_DELAY_MS:-15}")
if pause > 0 then
  delay = function() return pause end
end
request = function()
  local i = math.random(#ids)
  return wrk.format("GET", "/api/users/" .. ids[i] .. "/recommendations?k=10",
    {["Authorization"] = "Bearer " .. tokens[i]})
end
LUA
echo "== writes: 64 connections, ${seconds}s; recommendations alongside: 8 connections"
wrk -t1 -c"${READ_CONNECTIONS:-8}" -d"${seconds}s" -s "$work/get.lua" "http://127.0.0.1:$port" > "$work/get.out" &
reads=$!
wrk -t2 -c64 -d"${seconds}s" --latency -s "$work/put.lua" "http://127.0.0.1:$port"
wait $reads
echo "== recommendations served meanwhile"
grep -E "Requests/sec|Latency|Non-2xx" "$work/get.out"
python3 - "$port" "$work" <<'PY'
import http.client, json, sys
port, work = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
stored = 0
for line in open(f"{work}/profiles.txt"):
    user, token = line.split()
    conn.request("GET", f"/api/users/{user}/ratings?limit=1",
                 headers={"Authorization": f"Bearer {token}"})
    stored += json.loads(conn.getresponse().read())["total"]
print(f"== ratings stored for the 1,024 profiles: {stored} (distinct user–movie pairs: a repeated pair replaces the rating)")
PY
