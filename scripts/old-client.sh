#!/usr/bin/env bash
# An old laptop against this server, for real: builds `ikd-field` as it was before issue #14
# (commit 305d3c9: two requests per sync, no answer by batch id, no batches sized to the link)
# and runs the two tests of `tests/sync_link.rs` that use it: that binary as a laptop (it enrols
# at this tree's `serve`, records through its own command line and syncs through the fault proxy
# with one answer lost) and as the district server (this tree's laptop syncs with it, one answer
# lost). Too slow a build for CI; run it when the protocol changes. With IKD_TEST_POSTGRES set (scripts/postgres.sh) the PostgreSQL variant runs too.
# Use: bash scripts/old-client.sh [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-305d3c9}
work=target/old-client
src="$work/src-$commit"
git worktree prune
if [ ! -d "$src" ]; then
  mkdir -p "$work"
  git worktree add --detach "$src" "$commit" >&2
fi
echo "==> building ikd-field at $commit (target dir $work/target)" >&2
(cd "$src" && cargo build --quiet --bin ikd-field --target-dir "../target")
IKD_OLD_CLIENT="$PWD/$work/target/debug/ikd-field" \
  cargo test --test sync_link binary -- --nocapture
