#!/usr/bin/env bash
# Runs the Windows binary (scripts/build-windows.sh) under Wine, the way an officer's laptop
# would: --version; init in the default data folder (%LOCALAPPDATA%\ikd-field) and in a
# Windows-style --data-dir; record two synthetic citizens; slip (text, an ESC/POS file, and a
# printer name, which goes to the spooler); verify; then enrol with a Linux `serve` on 127.0.0.1,
# sync, and check the server holds exactly those two records from this device. Also Ctrl+C on a
# Windows `serve`, and the desk's page when the binary has `desk`. Every check fails the script.
#
#   bash scripts/windows-smoke.sh [PATH/TO/ikd-field.exe]
#
# The exe defaults to the newest of target/windows/x86_64-pc-windows-gnu/{windows-ci,release}/.
# The server is the Linux binary: IKD_LINUX_BIN, else target/debug/ikd-field (cargo build).
# Wine is not Windows (README, "What Wine could not tell us").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$(date +%s)

exe="${1:-}"
if [ -z "$exe" ]; then
  exe=$(ls -t target/windows/x86_64-pc-windows-gnu/{windows-ci,release}/ikd-field.exe 2>/dev/null | head -1 || true)
fi
if [ -z "$exe" ] || [ ! -f "$exe" ]; then
  echo "no ikd-field.exe: run scripts/build-windows.sh first" >&2
  exit 1
fi
exe=$(realpath "$exe")

need_pkgs=()
command -v wine >/dev/null 2>&1 || need_pkgs+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-mingw-w64-x86-64)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "apt-get install ${need_pkgs[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
wine=$(command -v wine64 || command -v wine)

linux="${IKD_LINUX_BIN:-}"
if [ -z "$linux" ]; then
  cargo build --bin ikd-field # the binary `cargo test` uses too: built once
  linux=$root/target/debug/ikd-field
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ikd-wine.XXXXXX")
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset IKD_FIELD_HOME IKD_FIELD_CONFIG IKD_FIELD_LANG IKD_LOG
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/last.out "$work"/last.err; do
    [ -s "$f" ] && { echo "--- ${f##*/}" >&2; cat "$f" >&2; }
  done
  exit 1
}
ok() { printf '  ok  %s\n' "$*"; }
# win ARGS…: the exe under Wine; its output in $work/last.out and last.err; fails on a non-zero exit.
win() {
  "$wine" "$exe" "$@" >"$work/last.out" 2>"$work/last.err" </dev/null || fail "ikd-field.exe $* exited $?"
}
# win_rc ARGS…: the same, but only records the exit code in $rc.
win_rc() {
  rc=0
  "$wine" "$exe" "$@" >"$work/last.out" 2>"$work/last.err" </dev/null || rc=$?
}
has() { grep -q -- "$1" "$work/last.out" "$work/last.err" || fail "no '$1' in the output"; }
# json EXPR: a Python expression over the JSON answer `j` in last.out; prints it.
json() { python3 -c "import json,sys; j = json.load(open(sys.argv[1])); print($1)" "$work/last.out"; }
# await_line FILE PATTERN: waits up to 60 s for a line matching PATTERN in FILE; prints it.
await_line() {
  for _ in $(seq 600); do
    if grep -m1 -o -- "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "no '$2' in $1 after 60 s: $(cat "$1" 2>/dev/null)"
}

echo "Wine: $("$wine" --version 2>/dev/null || echo ?), prefix $WINEPREFIX"
wineboot -i >/dev/null 2>&1 || true
# Wine 8 lacks bcryptprimitives.dll (Windows 10 and 11 have it): a stand-in, for Wine only.
x86_64-w64-mingw32-gcc -O2 -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c -ladvapi32

echo "exe: $exe"
win --version
has "^ikd-field [0-9]"
ok "--version: $(cat "$work/last.out")"

# The default data folder: %LOCALAPPDATA%\ikd-field, not the roaming %APPDATA%.
win --json --lang en init --officer "PETUGAS UJI" --team "TIM UJI"
[ "$(json 'j["ok"]')" = True ] || fail "init"
json 'j["data_dir"]' | grep -q 'AppData\\Local\\ikd-field$' || fail "init's data_dir is not %LOCALAPPDATA%\\ikd-field"
home=$(ls -d "$WINEPREFIX"/drive_c/users/*/AppData/Local/ikd-field 2>/dev/null | head -1 || true)
[ -n "$home" ] && [ -f "$home/field.db" ] && [ -f "$home/device.key" ] ||
  fail "init did not make %LOCALAPPDATA%\\ikd-field\\field.db and device.key"
if ls -d "$WINEPREFIX"/drive_c/users/*/AppData/Roaming/ikd-field >/dev/null 2>&1; then
  fail "a data folder in the roaming %APPDATA%"
fi
ok "init: data in %LOCALAPPDATA%\\ikd-field"

# device.key's DACL (the owner alone) cannot be checked here: Wine 8 answers success to
# SetSecurityInfo but keeps no DACL on files, and reads back one made from the Unix mode bits.

# Two synthetic citizens (valid NIKs for the village code, as tests/field_cli.rs uses).
win --json record --nik 1702064107950003 --name "SITI AMINAH" --phone 081234567890 --village 1702061004 --no-prompt
[ "$(json 'j["ok"] and j["record"]["seq"]')" = 1 ] || fail "record 1"
win --json record --nik 1702060101900001 --name "BUDI SANTOSO" --phone 081234567891 --village 1702061004 --no-prompt
[ "$(json 'j["ok"] and j["record"]["seq"]')" = 2 ] || fail "record 2"
win --json device
device=$(json 'j["device"]["device_id"]')
[ -n "$device" ] || fail "device id"
ok "record: #1, #2 on device $device"

win slip 1 --format text
has "SITI AMINAH"
# (Base45 has a space in its alphabet: the whole line is the payload.)
slip=$(grep '^IKD1:' "$work/last.out" | head -1 | tr -d '\r')
[ -n "$slip" ] || fail "no IKD1: line on the text slip"
win slip 2 --format escpos --out 'C:\ikd-smoke\slip2.bin'
od -An -tx1 -N8 "$WINEPREFIX/drive_c/ikd-smoke/slip2.bin" | tr -d ' \n' | grep -q 1b40 ||
  fail "C:\\ikd-smoke\\slip2.bin has no ESC @ at its start"
grep -qa 'BUDI SANTOSO' "$WINEPREFIX/drive_c/ikd-smoke/slip2.bin" || fail "slip2.bin does not name BUDI SANTOSO"
# A printer's name goes to the spooler; Wine here has no printers, so it must say so.
win_rc --lang en slip 2 --format escpos --printer POS-58
[ "$rc" -ne 0 ] || fail "printing to a printer that does not exist succeeded"
has 'There is no printer named "POS-58"'
ok "slip: text, ESC/POS to C:\\ikd-smoke\\slip2.bin, spooler answers for a missing printer"

win --json verify "$slip"
[ "$(json 'j["valid"]')" = True ] || fail "verify"
last=${slip: -1}
[ "$last" = 0 ] && altered=${slip%?}1 || altered=${slip%?}0
win_rc --json verify "$altered"
[ "$rc" -ne 0 ] || fail "verify accepted an altered slip"
ok "verify: the slip checks, an altered one does not"

# A Windows-style --data-dir.
win --data-dir 'C:\ikd-smoke\kit 2' --json init --officer "PETUGAS DUA" --team "TIM UJI"
[ -f "$WINEPREFIX/drive_c/ikd-smoke/kit 2/field.db" ] || fail "no C:\\ikd-smoke\\kit 2\\field.db"
win --data-dir 'C:\ikd-smoke\kit 2' --json status
[ "$(json 'j["total"]')" = 0 ] || fail "status of the second kit"
ok "--data-dir 'C:\\ikd-smoke\\kit 2'"

# The district server: the Linux binary on 127.0.0.1 (Wine shares the loopback).
mkdir -p "$work/server"
srv=(--data-dir "$work/server" --lang en)
db=$work/server/district.db
"$linux" "${srv[@]}" serve --listen 127.0.0.1:0 --db "$db" >"$work/server/out" 2>"$work/server/err" </dev/null &
pids+=($!)
url=$(await_line "$work/server/out" 'http://127\.0\.0\.1:[0-9]*')
"$linux" "${srv[@]}" server token --team "TIM UJI" --db "$db" --json >"$work/last.out"
token=$(json 'j["token"]')
win --lang en enrol --server "$url" --token "$token"
has "$device"
win --json sync
[ "$(json 'j["summary"]["accepted"], j["pending"]')" = "2 0" ] || fail "sync: not 2 accepted, 0 pending"
"$linux" "${srv[@]}" server export --format json --db "$db" >"$work/last.out"
python3 - "$work/last.out" "$device" <<'EOF' || fail "the server's records"
import json, sys
rows = json.load(open(sys.argv[1]))
got = sorted((r["device_id"], r["seq"], r["nik"], r["name"], r["village"], r["state"]) for r in rows)
want = [(sys.argv[2], 1, "1702064107950003", "SITI AMINAH", "1702061004", "accepted"),
        (sys.argv[2], 2, "1702060101900001", "BUDI SANTOSO", "1702061004", "accepted")]
assert got == want, got
EOF
ok "enrol + sync to $url: the server holds exactly the two records"

# Ctrl+C (a console CTRL_C_EVENT: Wine raises one on SIGINT) stops `sync --watch` cleanly.
printf '[sync]\nwatch_interval_secs = 1\n' >"$home/config.toml"
"$wine" "$exe" --lang en sync --watch >"$work/watch.out" 2>"$work/watch.err" </dev/null &
wpid=$!
pids+=("$wpid")
await_line "$work/watch.err" 'server reachable' >/dev/null
kill -INT "$wpid"
for _ in $(seq 200); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$wpid" 2>/dev/null; then fail "sync --watch still running 20 s after Ctrl+C"; fi
wait "$wpid" && src=0 || src=$?
[ "$src" -eq 0 ] && grep -q '^Stopped' "$work/watch.err" ||
  { cat "$work/watch.err" >&2; fail "sync --watch exited $src after Ctrl+C"; }
ok "sync --watch under Wine: stopped cleanly on Ctrl+C"

# Ctrl+C stops a Windows `serve` cleanly too.
"$wine" "$exe" --lang en serve --listen 127.0.0.1:0 --db 'C:\ikd-smoke\district.db' \
  >"$work/wserve.out" 2>"$work/wserve.err" </dev/null &
wpid=$!
pids+=("$wpid")
wurl=$(await_line "$work/wserve.out" 'http://127\.0\.0\.1:[0-9]*')
curl -fsS "$wurl/v1/health" | grep -q '"server_id"' || fail "GET $wurl/v1/health"
kill -INT "$wpid"
for _ in $(seq 200); do kill -0 "$wpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$wpid" 2>/dev/null; then fail "Windows serve still running 20 s after Ctrl+C"; fi
wait "$wpid" && src=0 || src=$?
[ "$src" -eq 0 ] || { cat "$work/wserve.err" >&2; fail "Windows serve exited $src after Ctrl+C"; }
ok "serve under Wine: answered $wurl/v1/health, stopped cleanly on Ctrl+C"

# The desk (ikd-field desk --no-browser): its page over 127.0.0.1.
if "$wine" "$exe" desk --help >/dev/null 2>&1; then
  "$wine" "$exe" --lang en desk --no-browser --port 0 >"$work/desk.out" 2>"$work/desk.err" </dev/null &
  dpid=$!
  pids+=("$dpid")
  durl=$(await_line "$work/desk.out" 'http://127\.0\.0\.1:[0-9]*/[^[:space:]]*')
  # The address's one-time key becomes a session cookie, then a redirect to the page.
  code=$(curl -sS -L -c "$work/jar" -b "$work/jar" -o "$work/desk.html" -w '%{http_code}' "$durl") ||
    fail "GET $durl"
  [ "$code" = 200 ] || fail "the desk answered $code"
  grep -q '<title>IKD Desk</title>' "$work/desk.html" || fail "the desk's page is not there: $(head -c 300 "$work/desk.html")"
  kill -INT "$dpid"
  for _ in $(seq 200); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$dpid" 2>/dev/null; then fail "the desk still running 20 s after Ctrl+C"; fi
  wait "$dpid" && drc=0 || drc=$?
  [ "$drc" -eq 0 ] && grep -q 'Desk closed' "$work/desk.out" ||
    { cat "$work/desk.out" "$work/desk.err" >&2; fail "the desk exited $drc after Ctrl+C"; }
  ok "desk under Wine: ${durl%%\?*} answered with its page; stopped cleanly on Ctrl+C"
else
  # DESK: this exe has no `desk` command yet (issue #18); the check above runs once it has.
  echo "  skip desk: this build has no 'desk' command"
fi

echo "windows smoke test passed in $(($(date +%s) - started)) s"
