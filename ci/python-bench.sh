#!/usr/bin/env bash
# pyperf benchmarks of the Python adapter: builds `tether` (release) into each interpreter's
# venv and runs binding-py/bench/bench.py, which prints every hot path as a ratio to a plain
# `__slots__` read measured in the same run; then the example binding's bench
# (binding-py/examples/exprtree/bench/bench.py: a child read next to PyO3 and a bare getset).
#
# Usage: bash ci/python-bench.sh                         # CPython 3.11 and 3.14
#        PYTHON=/path/to/venv/bin/python bash ci/python-bench.sh
# Environment: TETHER_BENCH_ARGS   pyperf options (default: --fast --quiet; e.g. "--rigorous")
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${TETHER_PY_TARGET:-$ROOT/target-py}
bash ci/python-env.sh >/dev/null
if [ -n "${PYTHON:-}" ]; then
  INTERPRETERS=("$PYTHON")
else
  INTERPRETERS=("$ROOT/.cache/venv311/bin/python" "$ROOT/.cache/venv314/bin/python")
fi
read -r -a ARGS <<<"${TETHER_BENCH_ARGS:---fast --quiet}"
for PY in "${INTERPRETERS[@]}"; do
  printf '\n==== bench: %s\n' "$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  (cd binding-py && VIRTUAL_ENV=$(dirname "$(dirname "$PY")") "$PY" -m maturin develop --release --quiet)
  "$PY" binding-py/bench/bench.py "${ARGS[@]}"
  # The example binding built on the extension API, next to PyO3 and a bare getset.
  (cd binding-py/examples/exprtree && CARGO_TARGET_DIR=$CARGO_TARGET_DIR/exprtree \
     VIRTUAL_ENV=$(dirname "$(dirname "$PY")") "$PY" -m maturin develop --release --quiet)
  "$PY" binding-py/examples/exprtree/bench/bench.py "${ARGS[@]}"
done
