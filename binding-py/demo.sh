#!/usr/bin/env bash
# The Python side of the main-job demo: builds `tether` (release) into the 3.11 venv (or the
# interpreter given as PYTHON=..., which must be a venv with maturin) and runs examples/demo.py.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -n "${PYTHON:-}" ] || bash ci/python-env.sh >/dev/null
PY=${PYTHON:-$ROOT/.cache/venv311/bin/python}
export CARGO_TARGET_DIR=${TETHER_PY_TARGET:-$ROOT/target-py}
(cd binding-py && VIRTUAL_ENV=$(dirname "$(dirname "$PY")") "$PY" -m maturin develop --release --quiet)
"$PY" binding-py/examples/demo.py
