#!/usr/bin/env bash
# Acknowledged single-rating writes through several movierec servers sharing one PostgreSQL
# database and one model store (issue 16's target: >= 3,000 ratings/s through three servers):
#
#   bash benches/scale_out.sh [SERVERS] [SECONDS]
#
# Makes a PostgreSQL cluster with initdb in a temporary directory (as `nobody` when run as root),
# on a free loopback port; starts SERVERS (default 3) `movierec serve --database postgres://…
# --model-store DIR` on ports 7401…, which import the bundled release once and train the first
# model once; creates 1,024 profiles; then for SECONDS (default 20) one wrk per server sends
# `PUT /api/users/{id}/ratings/{movie}` from 64 connections in all (random profile with its own
# token, random movie among the 1,000 most rated, random half-star). Every write is committed
# (PostgreSQL's default synchronous_commit = on) before it is answered. Prints each wrk's
# summary, the total rate, and the ratings stored for the profiles afterwards.
#
# Needs PostgreSQL's server (`apt-get install postgresql`), wrk and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-3}
seconds=${2:-20}
work=$(mktemp -d)
chmod 755 "$work"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(setpriv --reuid=nobody --regid=nogroup --clear-groups); fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/pg" "$work/sock" "$work/store"
[ "$(id -u)" = 0 ] && chown nobody:nogroup "$work/pg" "$work/sock"
echo bench > "$work/pw"; chmod 644 "$work/pw"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U movierec --pwfile="$work/pw" \
  --auth-host=scram-sha-256 --auth-local=trust --no-locale -E UTF8 >/dev/null
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/sock/pg.log" -w \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $work/sock -c max_connections=200" start >/dev/null
PGPASSWORD=bench psql -h 127.0.0.1 -p "$pg_port" -U movierec -d postgres -qc "CREATE DATABASE movierec"
bin=${MOVIEREC_BENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/movierec
fi
for i in $(seq 1 "$servers"); do
  PGPASSWORD=bench "$bin" serve --port $((7400 + i)) --profile-rate 0 \
    --database "postgres://movierec@127.0.0.1:$pg_port/movierec" --model-store "$work/store" \
    --retrain-after 0 --retrain-every 0 >"$work/server$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$servers"); do
  until curl -sf "http://127.0.0.1:$((7400 + i))/api/health" >/dev/null; do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { cat "$work/server$i.log"; exit 1; }
    sleep 0.1
  done
done
python3 - 7401 "$work" <<'PY'
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
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local i = math.random(#ids)
  local movie = movies[math.random(#movies)]
  return wrk.format("PUT", "/api/users/" .. ids[i] .. "/ratings/" .. movie,
    {["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json"},
    '{"rating": ' .. (math.random(10) / 2) .. '}')
end
done = function(summary)
  io.write(string.format("non-200 answers: %d (socket errors: %d connect, %d read, %d write, %d timeout)\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout))
end
LUA
connections=$((64 / servers))
echo "== $servers servers, one PostgreSQL: writes from 64 connections ($connections per server), ${seconds}s"
loads=()
for i in $(seq 1 "$servers"); do
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/put.lua" \
    "http://127.0.0.1:$((7400 + i))" >"$work/wrk$i.out" &
  loads+=($!)
done
wait "${loads[@]}"
for i in $(seq 1 "$servers"); do
  echo "-- server $i"
  grep -E "Requests/sec|Latency |99%|non-200" "$work/wrk$i.out"
done
awk '/Requests\/sec/ {s += $2} END {printf "== total: %.0f acknowledged writes/s\n", s}' "$work"/wrk*.out
python3 - "$((7400 + servers))" "$work" <<'PY'
import http.client, json, sys
port, work = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
stored = 0
for line in open(f"{work}/profiles.txt"):
    user, token = line.split()
    conn.request("GET", f"/api/users/{user}/ratings?limit=1",
                 headers={"Authorization": f"Bearer {token}"})
    stored += json.loads(conn.getresponse().read())["total"]
print(f"== ratings stored for the 1,024 profiles: {stored} (distinct user-movie pairs)")
PY
