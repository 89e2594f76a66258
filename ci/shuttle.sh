#!/usr/bin/env bash
# shuttle: the matrix, flows and many-actor scenarios under PCT and random schedulers.
# TETHER_SHUTTLE_ITERS overrides the per-scenario iterations (CI 10,000; extended 200,000).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${TETHER_EXTENDED:-0}" = 1 ]; then
  export TETHER_SHUTTLE_ITERS=${TETHER_SHUTTLE_ITERS:-200000}
else
  export TETHER_SHUTTLE_ITERS=${TETHER_SHUTTLE_ITERS:-10000}
fi
export CARGO_TARGET_DIR=target-shuttle
cargo test --release -p binding-core --features shuttle --test shuttle -- --test-threads=2 --nocapture 2>&1 \
  | grep -E '^shuttle |^test |test result|panicked|failing schedule|FAILED|^error'
test "${PIPESTATUS[0]}" -eq 0
