#!/usr/bin/env bash
# Every benchmark of ikd-field in one run (DESIGN §8): installs the baselines it compares against
# (the sqlite3 and qrencode CLIs, GNU time, a PostgreSQL server), builds the release profile once, and runs
# `cargo bench`. Each bench prints its table of ratios and rewrites its own section of
# BENCHMARKS.md; this script then stamps the header with the date, machine and duration.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

need=()
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v qrencode >/dev/null 2>&1 || need+=(qrencode)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "==> apt-get install ${need[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL for `benches/store.rs` (PostgreSQL against SQLite): installed and started if needed.
pg_env=$(bash scripts/postgres.sh)  # fails the run if PostgreSQL cannot be started
eval "$pg_env"

start=$(date +%s)
# The field-only build, whose size benches/field.rs reports beside the full binary's.
bash scripts/build-field.sh
cargo bench --features test-support "$@"
took=$(( $(date +%s) - start ))

cores=$(nproc)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
stamp="Last full run: $(date -u +%Y-%m-%d) on ${cores} cores (${cpu}), ${mem} RAM — \`scripts/bench.sh\`, ${took} s including the release build."
python3 - "$stamp" <<'PY'
import re, sys
path = "BENCHMARKS.md"
text = open(path, encoding="utf-8").read()
block = "<!-- bench:run -->\n" + sys.argv[1] + "\n<!-- /bench:run -->"
if "<!-- bench:run -->" in text:
    text = re.sub(r"<!-- bench:run -->.*?<!-- /bench:run -->", lambda _: block, text, flags=re.S)
else:
    text = text.replace("\n", "\n\n" + block + "\n", 1)
open(path, "w", encoding="utf-8").write(text)
PY
echo
echo "$stamp"
