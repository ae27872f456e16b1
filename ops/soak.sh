#!/usr/bin/env bash
# `just soak`: two release instances on PostgreSQL and Redis under a mixed Locust load while
# an instance is killed, Redis restarts and PostgreSQL is cut off; then the checks and the
# report of ops/soak/soak.py. Arguments go to it: --seconds (default 600), --users,
# --report FILE. SHELTER_BIN picks the binary (default: a release build of this checkout);
# SHELTER_SOAK_VENV the virtualenv that holds Locust (made when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SHELTER_SOAK_VENV:-/var/tmp/shelter-soak-venv}"
if ! "$venv/bin/python" -c 'import locust, websocket, aiosmtpd, pyotp, cbor2, cryptography' 2>/dev/null; then
  echo "soak: installing Locust and the clients into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r ops/soak/requirements.txt
fi
for tool in psql redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "soak: $tool not found (apt-get install postgresql-client redis-server)" >&2; exit 2; }
done
binary="${SHELTER_BIN:-}"
if [ -z "$binary" ]; then
  cargo build --release --locked --quiet --bin shelter
  binary="${CARGO_TARGET_DIR:-target}/release/shelter"
fi
ulimit -n 65536 2>/dev/null || true
exec "$venv/bin/python" ops/soak/soak.py --binary "$binary" "$@"
