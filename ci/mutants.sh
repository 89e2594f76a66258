#!/usr/bin/env bash
# Mutation testing (periodic, not part of every CI run): cargo-mutants over the kernel
# (binding-core/src, its test-only model excluded) and the adapter's protocol code
# (binding-py/src/adapter.rs), each mutant judged by the suites that fit in well under a minute:
#   binding-core: unit, sequential, proptest state machine, every loom/shuttle scenario on std
#                 threads and the many-thread stress test (`cargo test -p binding-core`);
#                 then the survivors again under shuttle (every scenario and tooth, fewer
#                 schedules), where the checker-only code and the rare interleavings live;
#   adapter.rs:   the adapter on the model of free-threaded CPython (every scenario on std threads,
#                 the GIL model).
# Results go to mutants.out/<crate>/ (outcomes.json, caught.txt, missed.txt, unviable.txt);
# docs/verification.md has the last report. Usage: bash ci/mutants.sh [core|adapter] (both if none).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked

mkdir -p mutants.out/core mutants.out/adapter
JOBS=${TETHER_MUTANTS_JOBS:-1}
# Without TETHER_MUTANTS_TIMEOUT, cargo-mutants scales the timeout from the unmutated run.
TIMEOUT=()
[ -n "${TETHER_MUTANTS_TIMEOUT:-}" ] && TIMEOUT=(--timeout "$TETHER_MUTANTS_TIMEOUT")

core() {
  section "mutants: binding-core/src"
  cargo mutants --package binding-core --output mutants.out/core --jobs "$JOBS" \
    "${TIMEOUT[@]}" --features teeth --no-shuffle \
    --file 'binding-core/src/*.rs' --exclude 'binding-core/src/model/**' \
    --exclude 'binding-core/src/flaw.rs' "$@" || true
  section "mutants: binding-core/src survivors under shuttle"
  TETHER_SHUTTLE_ITERS=${TETHER_SHUTTLE_ITERS:-200} \
  cargo mutants --package binding-core --output mutants.out/core --jobs "$JOBS" --iterate \
    "${TIMEOUT[@]}" --features shuttle,teeth --no-shuffle \
    --file 'binding-core/src/*.rs' --exclude 'binding-core/src/model/**' \
    --exclude 'binding-core/src/flaw.rs' "$@" -- --test shuttle || true
  section "mutants: the counting facade (sync.rs) under the RMW budget"
  cargo mutants --package binding-core --output mutants.out/core --jobs "$JOBS" --iterate \
    "${TIMEOUT[@]}" --features count-rmw,teeth --no-shuffle --file 'binding-core/src/sync.rs' \
    "$@" -- --test rmw_budget || true
}

adapter() {
  section "mutants: binding-py/src/adapter.rs"
  TETHER_MODEL_RUNS=${TETHER_MODEL_RUNS:-40} \
  cargo mutants --package binding-py --output mutants.out/adapter --jobs "$JOBS" \
    "${TIMEOUT[@]}" --features model --no-shuffle --file 'binding-py/src/adapter.rs' "$@" || true
}

case "${1:-both}" in
  core) core ;;
  adapter) adapter ;;
  both) core; adapter ;;
  *) echo "usage: bash ci/mutants.sh [core|adapter]" >&2; exit 2 ;;
esac
for d in mutants.out/*/mutants.out; do
  [ -d "$d" ] || continue
  printf '%s: caught %s, missed %s, unviable %s, timeout %s\n' "$d" \
    "$(wc -l <"$d/caught.txt")" "$(wc -l <"$d/missed.txt")" \
    "$(wc -l <"$d/unviable.txt")" "$(wc -l <"$d/timeout.txt" 2>/dev/null || echo 0)"
done
