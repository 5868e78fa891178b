#!/usr/bin/env bash
# Fails when a file of src/ has more than 600 lines of production code (the lines before its
# first `#[cfg(test)]`) and its header (the `//!` lines) does not say why, in a line starting
# `//! Over 600 lines:`. ARCHITECTURE.md, "Layers". Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=600
bad=0
while IFS= read -r f; do
  n=$(awk '/^#\[cfg\(test\)\]/ { exit } { c++ } END { print c + 0 }' "$f")
  if [ "$n" -gt "$limit" ] && ! grep -q '^//! Over 600 lines:' "$f"; then
    echo "$f: $n lines of production code (over $limit, no reason in its header)"
    bad=1
  fi
done < <(find src -name '*.rs' | sort)
[ "$bad" -eq 0 ] && echo "every file of src/ is within $limit lines of production code (or says why)"
exit "$bad"
