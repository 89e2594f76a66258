#!/usr/bin/env bash
# The test command: everything CI runs. Installs what a fresh machine lacks, skips what is there.
# Usage: bash ci/test.sh            (all suites)
#        TETHER_EXTENDED=1 bash ci/test.sh   (longer shuttle runs, higher loom bound in binding-py)
#        TETHER_FUZZ_SECONDS=3600 bash ci/fuzz.sh   (a long fuzz run)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

section "rust: fmt, clippy"
ensure_rust_components
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

section "rust: unit, sequential, proptest, std-thread stress"
# spec runs in release in ci/spec.sh (its exhaustive checks take minutes in debug).
cargo test --workspace --exclude spec --quiet

section "rust: the kernel's read-modify-write budget per transition (counted, not timed)"
cargo test -p binding-core --features count-rmw --test rmw_budget --quiet

run_suite ci/loom.sh
run_suite ci/shuttle.sh
run_suite ci/miri.sh
run_suite ci/tsan.sh
# After tsan.sh: the C ABI's ThreadSanitizer step reuses its instrumented std (target-tsan).
run_suite ci/c-abi.sh
run_suite ci/spec.sh
run_suite ci/fuzz.sh
run_suite ci/python-tests.sh
# The peers benchmark (nanobind, pybind11 and PyO3 built from the registries) in smoke mode:
# seconds of timing, identity facts asserted, no timing assertions; keeps the script from rotting.
run_suite ci/python-peers.sh --smoke
summary
