#!/usr/bin/env bash
# `just bench`: every scenario on SQLite and PostgreSQL beside the ceilings of the same run,
# written to BENCHMARKS.md (bench/bench.py). Needs wrk and pgbench (apt-get install wrk
# postgresql-contrib). Usage: bench/run.sh [sqlite] [postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 bench/bench.py "$@"
