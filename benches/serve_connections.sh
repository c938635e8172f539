#!/usr/bin/env bash
# The connection limits of `movierec serve` (issue 18, items 2 and 3; src/server/listener.rs):
#
#   bash benches/serve_connections.sh MODEL_DIR
#
# 1. IDLE (2000) idle connections are opened and held; then 50 health checks, each on a new
#    connection, are timed (the target: every one within 50 ms).
# 2. SLOW (40) clients each send 20 requests of the full title list (`/api/movies/titles`) and
#    never read; resident memory is read before, while they are stalled, and after the write
#    timeout (`--write-timeout 5` here) has closed them.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: benches/serve_connections.sh MODEL_DIR}
port=${MOVIEREC_BENCH_PORT:-7393}
source benches/serve_common.sh
start_server "$model" "$port" --write-timeout 5
python3 - "$port" "$server" "${IDLE:-2000}" "${SLOW:-40}" <<'PY'
import resource, socket, statistics, sys, time
port, pid, idle_n, slow_n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

def health():
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:80]
    return (time.perf_counter() - t) * 1000

idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle_n)]
time.sleep(0.5)
times = [health() for _ in range(50)]
print(f"{idle_n} idle connections held; 50 health checks on new connections: "
      f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms")
for s in idle:
    s.close()

time.sleep(0.5)
before = rss()
request = b"GET /api/movies/titles HTTP/1.1\r\nHost: b\r\n\r\n"
slow = []
for _ in range(slow_n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(request * 20)
    slow.append(s)
time.sleep(2)
stalled = rss()
t = time.perf_counter()
times = [health() for _ in range(10)]
time.sleep(5)
after = rss()
print(f"{slow_n} clients that never read: resident {before:.0f} MB before, {stalled:.0f} MB "
      f"while stalled (health checks meanwhile: max {max(times):.2f} ms), {after:.0f} MB after "
      f"the 5 s write timeout")
PY
