#!/usr/bin/env bash
# Fuzz smoke run: the kernel/spec conformance driver (spec::conformance) under cargo-fuzz on
# nightly, about 60 s. A divergence between binding-core and the spec's sequential semantics is a
# crash: the script exits non-zero, prints the minimized reproducer and leaves the input in
# fuzz/artifacts/conformance/. docs/spec.md ("Conformance") says how to fuzz for hours.
# Usage: bash ci/fuzz.sh [seconds]      (default 60, or TETHER_FUZZ_SECONDS)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
secs=${1:-${TETHER_FUZZ_SECONDS:-60}}
start=$(date +%s)

ensure_nightly
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (about 75 s)"
  cargo install cargo-fuzz --locked
fi

cd fuzz
cargo +nightly fuzz build conformance
built=$(date +%s)
mkdir -p corpus/conformance
set +e
cargo +nightly fuzz run conformance -- \
  -max_total_time="$secs" -print_final_stats=1 2>&1 | tee target/fuzz-smoke.log \
  | grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|diverge|panicked|minimized|ERROR|SUMMARY|^ +[0-9]+\. |^objects:|^operations:'
status=${PIPESTATUS[0]}
set -e
echo "fuzz: build $((built - start))s, run $(( $(date +%s) - built ))s, exit $status"
exit "$status"
