#!/usr/bin/env bash
# ThreadSanitizer over the std-thread stress tests (nightly, std rebuilt with TSan).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
ensure_nightly rust-src
export CARGO_TARGET_DIR=target-tsan
export RUSTFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="halt_on_error=1"
# The harness may print "ok" and still exit 66 when TSan reports: the exit status decides.
cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu -p binding-core --test threads 2>&1 \
  | grep -E 'test result|WARNING: ThreadSanitizer|SUMMARY|error'
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || { echo "ThreadSanitizer run failed (exit $status)"; exit 1; }
