#!/usr/bin/env bash
# What /healthz and /metrics answer while the PostgreSQL store is paused mid-answer
# (SIGSTOP: a hung server, a partition), against a daemon of this build:
#
#   scripts/with-postgres.sh scripts/paused-database.sh
#
# Prints each answer's status and time; both must come within their deadlines (3 s, 2 s).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-.build/debug/chatbridge}
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
sim_port=$(free_port); http_port=$(free_port)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$bin" simulate --port "$sim_port" --api-key k --chats 20 --change-every 500ms > "$work/sim.log" 2>&1 &
pids+=($!)
sleep 1
cat > "$work/chatbridge.yaml" <<YAML
sources:
  - {name: main, url: "http://127.0.0.1:$sim_port", api_key: k, interval: 1s}
store: $POSTGRES_TEST_URL
instance: paused-database
http: {listen: "127.0.0.1:$http_port"}
YAML
timeout 60 "$bin" run --config "$work/chatbridge.yaml" > /dev/null 2> "$work/run.log" &
pids+=($!)
sleep 4
probe() { curl -s -m 15 -o /dev/null -w "%{http_code} in %{time_total} s" "http://127.0.0.1:$http_port/$1"; }
echo "healthz before: $(probe healthz)"
server=$(pgrep -u postgres postgres | tr '\n' ' ')
kill -STOP $server
echo "healthz paused: $(probe healthz)"
echo "metrics paused: $(probe metrics)"
kill -CONT $server
sleep 3
echo "healthz after:  $(probe healthz)"
