#!/usr/bin/env bash
# The Python adapter (binding-py, package `tether`): everything CI checks about it.
#
#   1. rust: fmt and clippy of binding-py (model build and extension build), the adapter's
#      model tests on std threads, under shuttle (with the broken-variant teeth) and under loom;
#   2. python: builds `tether` into each interpreter's venv (`maturin develop`, a debug build
#      with debug assertions) and runs the pytest suite, then again under pytest-run-parallel;
#   3. the example extension package built on tether's extension API
#      (binding-py/examples/exprtree): fmt, clippy, `maturin develop` and its own pytest suite on
#      each interpreter; then both suites once more on release builds (first interpreter);
#   4. the cp314t wheels of both (`maturin build --release -i python3.14t`), so the
#      Py_GIL_DISABLED paths compile even though no free-threaded interpreter runs in CI.
#
# Usage: bash ci/python-tests.sh                         # CPython 3.11 and 3.14 (ci/python-env.sh)
#        PYTHON=/path/to/python bash ci/python-tests.sh  # that interpreter instead (e.g. a 3.14t:
#                                                        # the threaded tests then run GIL-free)
# Environment: TETHER_PY_SKIP=rust,cp314t,parallel,release   skip parts (comma-separated)
#              TETHER_PY_PARALLEL=4                  threads per test under pytest-run-parallel
#              TETHER_EXTENDED=1                     longer shuttle runs and a higher loom bound
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

T0=$SECONDS
log() { printf '\n==== python: %s (t=%ss)\n' "$*" "$((SECONDS - T0))"; }
die() { printf '[python-tests] ERROR: %s\n' "$*" >&2; exit 1; }
skip() { [[ ",${TETHER_PY_SKIP:-}," == *",$1,"* ]]; }

# A separate target dir: these builds (other features, other interpreters) must not invalidate
# the workspace's.
export CARGO_TARGET_DIR=${TETHER_PY_TARGET:-$ROOT/target-py}
EXAMPLE=$ROOT/binding-py/examples/exprtree
EXAMPLE_TARGET=$CARGO_TARGET_DIR/exprtree
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONHOME PYTHONPATH

log "interpreters"
bash ci/python-env.sh

if [ -n "${PYTHON:-}" ]; then
  command -v "$PYTHON" >/dev/null || [ -x "$PYTHON" ] || die "PYTHON=$PYTHON is not an interpreter"
  INTERPRETERS=("$PYTHON")
else
  INTERPRETERS=("$ROOT/.cache/venv311/bin/python" "$ROOT/.cache/venv314/bin/python")
fi

# Tools for an interpreter given with PYTHON= that lacks them: a venv under .cache, pinned
# like ci/python-env.sh's.
PINS=(maturin==1.16.0 pytest==9.2.0 pytest-run-parallel==0.10.0 pyperf==2.10.0)
with_tools() {   # prints a venv interpreter that has the tools, for interpreter $1
  local py=$1
  if "$py" -c 'import sys, maturin, pytest, pytest_run_parallel; sys.exit(sys.prefix == sys.base_prefix)' \
       >/dev/null 2>&1; then
    echo "$py"; return
  fi
  local tag venv
  tag=$("$py" -c 'import sys, sysconfig; print(f"{sys.version_info[0]}{sys.version_info[1]}" + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))')
  venv=$ROOT/.cache/venv-custom-$tag
  if ! "$venv/bin/python" -c 'import maturin, pytest, pytest_run_parallel' >/dev/null 2>&1; then
    "$py" -m venv "$venv" >&2 || die "cannot create a venv for $py"
    "$venv/bin/python" -m pip install -q "${PINS[@]}" >&2 || die "cannot install ${PINS[*]} for $py"
  fi
  echo "$venv/bin/python"
}

if ! skip rust; then
  log "rust: fmt, clippy (model build and extension build)"
  # shellcheck source=ci/lib.sh
  source ci/lib.sh
  ensure_rust_components
  cargo fmt -p binding-py -- --check
  cargo clippy -p binding-py --no-deps --all-targets --quiet -- -D warnings
  PYO3_PYTHON=${INTERPRETERS[0]} cargo clippy -p binding-py --no-deps --all-targets \
    --features python --quiet -- -D warnings
  # The free-threaded cfg too, from a PyO3 config file (no 3.14t interpreter needed).
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' implementation=CPython version=3.14 shared=true abi3=false \
    build_flags=Py_GIL_DISABLED pointer_width=64 suppress_build_script_link_lines=true \
    >"$CARGO_TARGET_DIR/pyo3-cp314t.cfg"
  PYO3_CONFIG_FILE=$CARGO_TARGET_DIR/pyo3-cp314t.cfg cargo clippy -p binding-py --no-deps \
    --all-targets --features python --quiet -- -D warnings
  # And 3.14 with a GIL (its 32-bit reference count has code of its own, src/py/capi.rs).
  printf '%s\n' implementation=CPython version=3.14 shared=true abi3=false \
    pointer_width=64 suppress_build_script_link_lines=true >"$CARGO_TARGET_DIR/pyo3-cp314.cfg"
  PYO3_CONFIG_FILE=$CARGO_TARGET_DIR/pyo3-cp314.cfg cargo clippy -p binding-py --no-deps \
    --all-targets --features python --quiet -- -D warnings
  # rustdoc of the extension API, without warnings.
  PYO3_PYTHON=${INTERPRETERS[0]} RUSTDOCFLAGS="-D warnings" cargo doc -p binding-py --no-deps \
    --features python --quiet
  # The example package (its own workspace), on both cfgs.
  (cd "$EXAMPLE" && cargo fmt -- --check \
    && PYO3_PYTHON=${INTERPRETERS[0]} CARGO_TARGET_DIR=$EXAMPLE_TARGET cargo clippy --all-targets \
         --quiet -- -D warnings \
    && PYO3_CONFIG_FILE=$CARGO_TARGET_DIR/pyo3-cp314t.cfg CARGO_TARGET_DIR=$EXAMPLE_TARGET \
         cargo clippy --all-targets --quiet -- -D warnings)

  log "rust: the adapter on the model of free-threaded CPython (std threads)"
  LOG=$CARGO_TARGET_DIR/python-model.log
  cargo test -p binding-py --quiet -- --nocapture >"$LOG" 2>&1 \
    || { cat "$LOG"; die "model tests failed"; }
  grep -E '^std ' "$LOG"

  SHUTTLE_ITERS=2000 LOOM_BOUND=3
  if [ "${TETHER_EXTENDED:-0}" = 1 ]; then SHUTTLE_ITERS=50000 LOOM_BOUND=4; fi
  log "rust: shuttle ($SHUTTLE_ITERS PCT + $SHUTTLE_ITERS random schedules per scenario) and teeth"
  # One test at a time: shuttle's per-execution state (and the kernel's parking lot) is global.
  LOG=$CARGO_TARGET_DIR/python-shuttle.log
  TETHER_SHUTTLE_ITERS=$SHUTTLE_ITERS cargo test -p binding-py --release --features shuttle \
    --test shuttle --test teeth --quiet -- --nocapture --test-threads=1 >"$LOG" 2>&1 \
    || { cat "$LOG"; die "shuttle suite failed"; }
  sed 's/^\.*//' "$LOG" | grep -E '^(shuttle|teeth) |test result'

  log "rust: loom (preemption bound $LOOM_BOUND)"
  LOG=$CARGO_TARGET_DIR/python-loom.log
  TETHER_LOOM_BOUND=$LOOM_BOUND RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=$CARGO_TARGET_DIR-loom \
    cargo test -p binding-py --release --test loom --quiet -- --nocapture --test-threads=1 \
    >"$LOG" 2>&1 || { cat "$LOG"; die "loom suite failed"; }
  sed 's/^\.*//' "$LOG" | grep -E '^loom |test result'
fi

run_pytest() {   # interpreter, extra pytest args...
  local py=$1; shift
  local rc=0
  (cd binding-py && "$py" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=300 \
     tests/python "$@") || rc=$?
  # 5 = no tests collected: an error here, never a pass.
  [ "$rc" -eq 5 ] && die "pytest collected no tests ($py)"
  [ "$rc" -eq 0 ] || die "pytest failed with status $rc ($py $*)"
}

for INTERP in "${INTERPRETERS[@]}"; do
  PY=$(with_tools "$INTERP")
  DESC=$("$PY" -c 'import sys, sysconfig; print(sys.version.split()[0], "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL")')
  log "python $DESC: maturin develop ($PY)"
  (cd binding-py && VIRTUAL_ENV=$(dirname "$(dirname "$PY")") "$PY" -m maturin develop --quiet)
  "$PY" -c 'import tether, tether.testing, sys; print("tether imported; GIL enabled:", getattr(sys, "_is_gil_enabled", lambda: True)())'

  log "python $DESC: pytest"
  run_pytest "$PY"
  if ! skip parallel; then
    log "python $DESC: pytest under pytest-run-parallel (${TETHER_PY_PARALLEL:-4} threads per test)"
    run_pytest "$PY" --parallel-threads="${TETHER_PY_PARALLEL:-4}"
  fi

  log "python $DESC: the example package exprtree (maturin develop, pytest)"
  (cd "$EXAMPLE" && CARGO_TARGET_DIR=$EXAMPLE_TARGET VIRTUAL_ENV=$(dirname "$(dirname "$PY")") \
     "$PY" -m maturin develop --quiet)
  rc=0
  (cd "$EXAMPLE" && "$PY" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=300 tests) || rc=$?
  [ "$rc" -eq 5 ] && die "exprtree: pytest collected no tests ($PY)"
  [ "$rc" -eq 0 ] || die "exprtree: pytest failed with status $rc ($PY)"

  if [ "$INTERP" = "${INTERPRETERS[0]}" ] && ! skip release; then
    # Optimised builds too: undefined behaviour the debug build hides (a write through a
    # reference the optimiser may treat as read-only) shows up only here.
    log "python $DESC: release builds of tether and exprtree, both suites"
    (cd binding-py && VIRTUAL_ENV=$(dirname "$(dirname "$PY")") "$PY" -m maturin develop --release --quiet)
    (cd "$EXAMPLE" && CARGO_TARGET_DIR=$EXAMPLE_TARGET VIRTUAL_ENV=$(dirname "$(dirname "$PY")") \
       "$PY" -m maturin develop --release --quiet)
    run_pytest "$PY"
    (cd "$EXAMPLE" && "$PY" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=300 tests) \
      || die "exprtree (release build): pytest failed ($PY)"
  fi
done

if ! skip cp314t; then
  log "cp314t wheel (free-threaded build, compile check)"
  PY=$(with_tools "${INTERPRETERS[0]}")
  rm -f "$CARGO_TARGET_DIR"/wheels/tether-*-cp314-cp314t-*.whl
  (cd binding-py && "$PY" -m maturin build --release -i python3.14t \
     --target x86_64-unknown-linux-gnu --quiet)
  ls "$CARGO_TARGET_DIR"/wheels/tether-*-cp314-cp314t-*.whl >/dev/null 2>&1 \
    || die "no cp314t wheel was built"
  echo "built $(basename "$(ls "$CARGO_TARGET_DIR"/wheels/tether-*-cp314-cp314t-*.whl)")"
  rm -f "$EXAMPLE_TARGET"/wheels/exprtree-*-cp314-cp314t-*.whl
  (cd "$EXAMPLE" && CARGO_TARGET_DIR=$EXAMPLE_TARGET "$PY" -m maturin build --release \
     -i python3.14t --target x86_64-unknown-linux-gnu --quiet)
  ls "$EXAMPLE_TARGET"/wheels/exprtree-*-cp314-cp314t-*.whl >/dev/null 2>&1 \
    || die "no cp314t wheel of exprtree was built"
  echo "built $(basename "$(ls "$EXAMPLE_TARGET"/wheels/exprtree-*-cp314-cp314t-*.whl)")"
fi

log "done"
