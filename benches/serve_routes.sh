#!/usr/bin/env bash
# The work of every route of `movierec serve` at its most expensive valid input (issue 18's
# target: no request over 20 ms of server work on the bundled data):
#
#   bash benches/serve_routes.sh [MODEL_DIR]
#
# Each request is sent 30 times, one at a time on a keep-alive connection, and timed by the
# client on loopback (so the figure includes the loopback round trip, about 0.1 ms). The inputs
# are the limits the API allows: k = 100, 100 likes and 100 dislikes by title, titles of 300
# characters that match nothing, the user with the most ratings, every filter at once, the full
# title list and 2-D map, 50 search results.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/default}
port=${MOVIEREC_BENCH_PORT:-7394}
source benches/serve_common.sh
start_server "$model" "$port"
python3 - "$port" "$model" <<'PY'
import http.client, json, statistics, sys, time
port, model = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)

def call(method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    data = json.dumps(body) if body is not None else None
    t = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    return (time.perf_counter() - t) * 1000, r.status, len(payload)

conn.request("GET", "/api/movies/titles")
titles = json.loads(conn.getresponse().read())
names = titles["titles"][:100]
odd = "zq" * 150  # 300 characters matching nothing
every_filter = {"genres": ["Comedy", "Drama"], "exclude_genres": ["Horror"], "year_min": 1980,
                "year_max": 2010, "min_ratings": 5, "exclude": titles["movieIds"][1:101]}
# The user with the most ratings in the training data.
users = {}
with open("data/ml-latest-small/ratings.csv") as f:
    next(f)
    for line in f:
        u = line.split(",", 1)[0]
        users[u] = users.get(u, 0) + 1
heaviest = max(users, key=users.get)
cases = [
    ("GET /api/health", "GET", "/api/health", None),
    ("GET /api/movies/search (50, fuzzy)", "GET", "/api/movies/search?q=the%20lord%20of%20the%20rngs&limit=50", None),
    ("GET /api/movies/search (300 chars, no match)", "GET", "/api/movies/search?q=" + odd + "&limit=50", None),
    ("GET /api/movies/titles", "GET", "/api/movies/titles", None),
    ("GET /api/projection", "GET", "/api/projection?model=hybrid", None),
    ("POST /api/recommendations (k 100, exact, every filter)", "POST", "/api/recommendations",
     {"movie": "toy story", "k": 100, "model": "svd", "index": "exact", "filter": every_filter}),
    ("POST /api/recommendations (k 100, similar)", "POST", "/api/recommendations",
     {"movie": 1, "k": 100}),
    ("POST /api/recommendations (300-char title, no match)", "POST", "/api/recommendations",
     {"movie": odd, "k": 100}),
    ("POST /api/recommendations/for-likes (100 + 100 titles, k 100)", "POST",
     "/api/recommendations/for-likes", {"likes": names, "dislikes": titles["titles"][100:200], "k": 100}),
    (f"GET /api/users/{heaviest}/recommendations (k 100, {users[heaviest]} ratings)", "GET",
     f"/api/users/{heaviest}/recommendations?k=100", None),
    ("GET /api/runs", "GET", "/api/runs", None),
    ("GET /metrics", "GET", "/metrics", None),
    ("POST /recommendation (seed, 100)", "POST", "/recommendation",
     {"movie_title": "Toy Story", "model": "FAISS", "n_recommendations": 100}),
]
print(f"{'route and input':68} {'median':>8} {'max':>8}  status  bytes")
worst = 0.0
for label, method, path, body in cases:
    times = []
    for _ in range(30):
        ms, status, size = call(method, path, body)
        times.append(ms)
    worst = max(worst, max(times))
    print(f"{label:68} {statistics.median(times):7.2f}ms {max(times):7.2f}ms  {status}  {size}")
print(f"slowest request: {worst:.2f} ms")
PY
