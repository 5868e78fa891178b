#!/usr/bin/env bash
# The Windows binary, cross-built on Debian: ikd-field.exe for x86_64-pc-windows-gnu with the
# full default features (the field kit and the district server). rustup cannot add targets on
# these machines, so Debian's rustc (rustc-web) builds `std` for Windows from Debian's copy of its
# source (rust-web-src, -Zbuild-std) and mingw-w64 links (../shared/windows-build.md).
# Installs those packages only when they are missing. Prints where the exe is, its size and how
# long the build took.
#
#   bash scripts/build-windows.sh                     # release profile (fat LTO: what ships)
#   IKD_WINDOWS_PROFILE=windows-ci bash scripts/build-windows.sh   # CI: no LTO, quicker
#
# Extra arguments go to cargo. The exe is target/windows/x86_64-pc-windows-gnu/PROFILE/ikd-field.exe.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
profile="${IKD_WINDOWS_PROFILE:-release}"

need_pkgs=()
[ -x /usr/bin/rustc ] || need_pkgs+=(rustc-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need_pkgs+=(rust-web-src)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_pkgs+=(gcc-mingw-w64-x86-64)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "apt-get install ${need_pkgs[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

export RUSTC=/usr/bin/rustc
export RUSTC_BOOTSTRAP=1 # -Zbuild-std is unstable; this lets the stable compiler use it
export CARGO_TARGET_DIR=target/windows # apart from the Linux builds
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc # bundled SQLite, ring
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
"$RUSTC" --version

start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo build --profile "$profile" -Zbuild-std=std,panic_abort --target "$target" "$@" 2>&1 | tee "$log"
secs=$(($(date +%s) - start))
# The cfg(windows) code is compiled only here (clippy runs on the Linux build): no warnings.
if grep -q '^warning: `ikd-field`' "$log"; then
  echo "the Windows build of ikd-field has warnings (above)" >&2
  exit 1
fi

exe="$CARGO_TARGET_DIR/$target/$profile/ikd-field.exe"
[ -f "$exe" ] || { echo "no $exe after the build" >&2; exit 1; }
size=$(stat -c %s "$exe")
awk -v s="$size" -v b="$exe" -v t="$secs" -v p="$profile" \
  'BEGIN { printf "windows binary: %s, %.2f MB, profile %s, built in %dm%02ds\n", b, s / 1e6, p, t / 60, t % 60 }'
