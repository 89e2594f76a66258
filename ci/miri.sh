#!/usr/bin/env bash
# miri with strict provenance over the sequential semantics, the state machine and the
# std-thread scenarios (several schedule seeds: miri explores interleavings and weak memory).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
ensure_nightly miri rust-src
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup
export CARGO_TARGET_DIR=target-miri
export MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-many-seeds=0..${TETHER_MIRI_SEEDS:-4}"
# Unit tests (word encoding) and the sequential semantics: one seed is enough.
MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p binding-core --lib --test sequential 2>&1 \
  | grep -E '^test |test result|error|Undefined|panicked'
test "${PIPESTATUS[0]}" -eq 0
cargo +nightly miri test -p binding-core --test threads 2>&1 \
  | grep -E 'test result|error|Undefined|panicked|seed'
test "${PIPESTATUS[0]}" -eq 0
# The C ABI driven from Rust: the casts between the C types and the kernel's, the baton, and
# threads refetching one object (miri found a data race here once: a reference to a whole
# TetherBinding retags its word while other threads change it).
MIRIFLAGS="-Zmiri-strict-provenance" cargo +nightly miri test -p binding-c --test abi 2>&1 \
  | grep -E '^test |test result|error|Undefined|panicked'
test "${PIPESTATUS[0]}" -eq 0
