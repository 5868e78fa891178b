#!/usr/bin/env bash
# The field-only binary the laptops carry: no district server inside (no PostgreSQL client,
# HTTP server or dashboard), the `field` profile (LTO, opt-level z, stripped), and no unwind
# tables (the release profiles abort on panic, so nothing unwinds; the tables were ~10 % of the
# file). Prints where it is and its size (BENCHMARKS.md, "Footprint": ≤ 5 MB).
# Extra arguments go to cargo (e.g. --target x86_64-pc-windows-gnu).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -C force-unwind-tables=no"
export CFLAGS="${CFLAGS:-} -fno-asynchronous-unwind-tables -fno-unwind-tables"
cargo build --profile field --no-default-features "$@"
bin=target/field/ikd-field
for a in "$@"; do
  case "$a" in x86_64-pc-windows-gnu) bin=target/x86_64-pc-windows-gnu/field/ikd-field.exe ;; esac
done
size=$(stat -c %s "$bin")
awk -v s="$size" -v b="$bin" 'BEGIN { printf "field-only binary: %s, %.2f MB\n", b, s / 1e6 }'
