# Sourced by the serving benchmarks (serve_connections.sh, serve_routes.sh): one way to get a
# server up.
#
#   start_server MODEL_DIR PORT [SERVE ARGS...]
#
# Builds the release binary (or uses MOVIEREC_BENCH_BIN), trains MODEL_DIR first if it holds no
# model, starts `movierec serve` on PORT with the extra arguments, waits until /api/health
# answers, and stops the server when the script exits. Sets `bin` and `server` (its pid).
start_server() {
  local model=$1 port=$2
  shift 2
  bin=${MOVIEREC_BENCH_BIN:-}
  if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/movierec
  fi
  [ -f "$model/manifest.json" ] || "$bin" train --out "$model" >/dev/null
  "$bin" serve --model-dir "$model" --port "$port" "$@" >/dev/null 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null' EXIT
  until curl -sf "http://127.0.0.1:$port/api/health" >/dev/null; do
    kill -0 "$server" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
    sleep 0.01
  done
}
