#!/usr/bin/env bash
# Two Shelter instances on this machine's PostgreSQL and Redis, with an SMTP catcher: the
# docker-compose topology, natively.
#
#   ops/cluster.sh start   # instances on :8101 and :8102, mail caught in $dir/mail
#   ops/cluster.sh stop
#
# SHELTER_BIN picks the binary (default: builds target/release/shelter);
# SHELTER_CLUSTER_DIR the state folder (default /tmp/shelter-cluster); TEST_DATABASE_URL
# the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres); the
# database `shelter_cluster` on it is created afresh by every start.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${SHELTER_CLUSTER_DIR:-/tmp/shelter-cluster}"
venv="${SHELTER_FUZZ_VENV:-/var/tmp/shelter-venv}"
admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
database_url="${admin_url%/*}/shelter_cluster"
ports=(8101 8102)
smtp_port=8125

stop() {
  if [ -f "$dir/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$dir/pids"
    while read -r pid; do
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done <"$dir/pids"
    rm -f "$dir/pids"
  fi
}

ready() {
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$1/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "cluster: the instance on :$1 did not get ready; its log:" >&2
  tail -20 "$dir/shelter-$1.log" >&2
  return 1
}

start() {
  stop
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiosmtpd, websockets, requests' 2>/dev/null; then
    echo "cluster: installing aiosmtpd, websockets and requests into $venv"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'aiosmtpd>=1.4,<2' 'websockets>=13,<16' 'requests>=2.31,<3'
  fi
  binary="${SHELTER_BIN:-}"
  if [ -z "$binary" ]; then
    cargo build --release --locked --quiet --bin shelter
    binary="${CARGO_TARGET_DIR:-target}/release/shelter"
  fi
  rm -rf "$dir" && mkdir -p "$dir/mail/cur" "$dir/mail/new" "$dir/mail/tmp"
  psql -q "$admin_url" -c 'DROP DATABASE IF EXISTS shelter_cluster WITH (FORCE)' -c 'CREATE DATABASE shelter_cluster'
  "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$dir/mail" \
    >"$dir/smtp.log" 2>&1 &
  echo $! >>"$dir/pids"
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  prefix="cluster-$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
  for port in "${ports[@]}"; do
    env SHELTER_ENV=production SHELTER_PORT="$port" SHELTER_SECRET_KEY="$secret" \
      SHELTER_DATABASE_URL="$database_url" SHELTER_REDIS_URL=redis://127.0.0.1:6379 \
      SHELTER_REDIS_PREFIX="$prefix" SHELTER_EMAIL_TRANSPORT=smtp \
      SHELTER_SMTP_URL="smtp://127.0.0.1:$smtp_port" SHELTER_PUBLIC_URL="http://127.0.0.1:${ports[0]}" \
      SHELTER_LOG_FORMAT=json "$binary" serve >"$dir/shelter-$port.log" 2>&1 &
    echo $! >>"$dir/pids"
    # The first instance migrates; the second starts on the migrated schema.
    ready "$port"
  done
  echo "cluster: Shelter on http://127.0.0.1:${ports[0]} and http://127.0.0.1:${ports[1]}," \
    "mail caught in $dir/mail, logs in $dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
