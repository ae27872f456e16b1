#!/usr/bin/env bash
# Benchmarks of the release binary on this machine: login timing (known vs unknown user)
# and throughput of authenticated reads, with wrk as the load generator.
# Usage: bench/run.sh [sqlite|postgres]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
cargo build --release --quiet
work=$(mktemp -d)
port=18080
base="http://127.0.0.1:$port"
if [ "$backend" = postgres ]; then
  db="shelter_bench_$$"
  psql "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -qc "create database $db"
  export SHELTER_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
else
  export SHELTER_DATABASE_URL="sqlite://$work/bench.db?mode=rwc"
fi
export SHELTER_PORT=$port SHELTER_SECRET_KEY=bench-secret-bench-secret-bench-secret RUST_LOG=warn
(cd "$work" && exec "$OLDPWD/target/release/shelter") & server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"; [ "$backend" = postgres ] && psql "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -qc "drop database if exists $db with (force)"' EXIT
for _ in $(seq 50); do curl -sf "$base/health/live" >/dev/null && break; sleep 0.2; done

curl -sf "$base/users" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","username":"bench","password":"bench-password"}' >/dev/null
token=$(curl -sf "$base/auth/token" -d 'username=bench&password=bench-password' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

echo "## Login timing ($backend)"
python3 bench/login_timing.py "$base" bench@example.com 200

echo; echo "## GET /users/me, 64 connections, 2 threads, 15 s ($backend)"
wrk -t2 -c64 -d15s --latency -H "Authorization: Bearer $token" "$base/users/me" | sed -n '/Thread Stats/,/Transfer/p'
echo; echo "## GET /health/live ($backend)"
wrk -t2 -c64 -d10s --latency "$base/health/live" | sed -n '/Latency Distribution/,/Requests\/sec/p'
echo; echo "server RSS after the run: $(ps -o rss= -p $server) KiB"
