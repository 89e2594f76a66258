#!/usr/bin/env bash
# loom: every cell of the concurrency matrix (bound 3), the three-actor flows (bound 2) and the
# broken-variant teeth. Separate target dir so normal builds are not invalidated. One test at a
# time: the settle-order counters are shared, and the execution counts in the docs come from here.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom"
export CARGO_TARGET_DIR=target-loom
cargo test --release -p binding-core --test loom -- --test-threads=1 --nocapture 2>&1 \
  | grep -vE '^\s*$' | grep -E '^loom |^settle|^test |test result|panicked|FAILED|error' 
test "${PIPESTATUS[0]}" -eq 0
