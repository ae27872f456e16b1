#!/usr/bin/env bash
# Memory under the login load for each allocator build, beside the argon2 ceiling of the
# same run: builds the release binary with glibc's allocator, jemalloc and mimalloc, then
# runs bench/memory.py. Usage: bench/memory.sh   (BENCH_* variables: see bench/memory.py)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for allocator in glibc jemalloc mimalloc; do
  features=(--no-default-features)
  [ "$allocator" != glibc ] && features+=(--features "$allocator")
  cargo build --release --quiet -p shelter "${features[@]}"
  cp "$target/release/shelter" "$out/shelter-$allocator"
done
cargo build --release --quiet -p shelter-crypto --example argon2_rate
ceiling=$("$target/release/examples/argon2_rate" 10 | awk '{print $1}')
python3 bench/memory.py "$ceiling" \
  glibc="$out/shelter-glibc" jemalloc="$out/shelter-jemalloc" mimalloc="$out/shelter-mimalloc"
