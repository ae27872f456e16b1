#!/usr/bin/env bash
# WebSocket figures of the release binary on SQLite: idle connections held, memory per
# connection, and the time for one message to reach every client.
# Usage: bench/ws.sh [connections] [fan-out rounds]   (default 1000 and 20)
# SHELTER_BIN=path measures another build of the server (say, the one before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
connections="${1:-1000}"
rounds="${2:-20}"
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release --quiet --bin shelter --example ws_bench
work=$(mktemp -d)
port=18081
base="http://127.0.0.1:$port"
export SHELTER_DATABASE_URL="sqlite://$work/bench.db?mode=rwc" SHELTER_PORT=$port \
  SHELTER_SECRET_KEY=bench-secret-bench-secret-bench-secret RUST_LOG=warn SHELTER_RATE_LIMIT_ENABLED=false
target="$(realpath "${CARGO_TARGET_DIR:-target}")"
(cd "$work" && exec "${SHELTER_BIN:-$target/release/shelter}") & server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.2; done
id=$(curl -sf "$base/users" -H 'content-type: application/json' \
  -d '{"email":"ws@example.com","username":"wsbench","password":"bench-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
token=$(curl -sf "$base/auth/token" -d 'username=wsbench&password=bench-password' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
# The hashing threads give their memory back after 2 idle seconds, later on a busy machine:
# the baseline is the least of eight samples over the next 6 seconds.
sleep 2
before=$(rss)
for _ in $(seq 8); do sleep 0.75; now=$(rss); [ "$now" -lt "$before" ] && before=$now; done
"$target/release/examples/ws_bench" "ws://127.0.0.1:$port" "$id" "$token" "$connections" "$rounds" | while read -r line; do
  if [ "$line" = half ]; then
    half=$(rss)
    continue
  fi
  echo "$line"
  if [ "$line" = holding ]; then
    after=$(rss)
    echo "server RSS: $before KiB before, $half KiB with $(( connections / 2 )), $after KiB with $connections connections:" \
      "$(( (after - before) * 1024 / connections )) bytes per connection from the start," \
      "$(( (after - half) * 1024 / (connections - connections / 2) )) bytes per connection over the second half"
  fi
done
