#!/usr/bin/env bash
# spec: the independent stateright model of the binding-word protocol (spec/, docs/spec.md).
# Exhaustive runs of the design as built (S1-S6, L1, no livelock), the bug switches (each must
# yield its counterexample, printed shortest-first), and the diagram/doc drift check. Release
# mode; one test at a time so the timings printed are per run. About a minute on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cargo test --release -p spec -- --test-threads=1 --nocapture 2>&1 \
  | grep -E '^\[spec\]|^ *[0-9]+\. |^test |test result|panicked|FAILED|^error'
test "${PIPESTATUS[0]}" -eq 0
echo "spec: done in $(( $(date +%s) - start ))s"
