#!/usr/bin/env bash
# tether next to its peers (issue 9): builds, into each interpreter's venv,
#
#   tether and the example exprtree      release builds (`maturin develop --release`)
#   peers_pyo3                           binding-py/bench/peers/pyo3 (maturin): a stored Py<T>
#                                        and a fresh wrapper per read
#   peers_nanobind, peers_pybind11       binding-py/bench/peers/cpp (CMake + Ninja):
#                                        reference_internal getters
#
# then runs binding-py/bench/peers/bench.py: one table per interpreter, every read as a ratio
# to a bare C getset, the identity each row keeps, and the issue's targets (information only:
# timing never fails this script; a peer that does not build or import does).
#
# Usage: bash ci/python-peers.sh [--smoke]      # CPython 3.11 and 3.14 (ci/python-env.sh)
#        PYTHON=/path/to/python bash ci/python-peers.sh [--smoke]
#          (a venv's interpreter is used as is; any other, e.g. /work/py314t/bin/python3.14t,
#          gets a venv .cache/venv-peers-<tag>; a free-threaded one gets the free-threaded
#          builds: every module here declares it runs without the GIL)
#   --smoke   seconds per interpreter: no pyperf calibration, rough timings, the identity facts
#             asserted; for CI.
# Environment: TETHER_PY_TARGET    cargo target dir (default target-py; e.g. target-py-ft)
#              TETHER_BENCH_ARGS   pyperf options of the full run (default: --fast --quiet)
#                                  or --interleaved: every cell in turn, best of 300 rounds
#                                  (for a noisy machine, where pyperf's rows drift apart)
#
# Everything missing is installed (pip packages pinned below, from PyPI; g++ with apt-get), and
# what is present is skipped: a second run only checks. Builds go to
# $TETHER_PY_TARGET/peers/<tag>/{tether,exprtree,pyo3,cpp}, one directory per interpreter: PyO3
# rebuilds itself (and all that depends on it) whenever the interpreter changes, ~25 s per crate
# here, so sharing one directory between 3.11 and 3.14 would rebuild everything on every run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=ci/lib.sh
source ci/lib.sh

usage() { sed -n '14,20p' "$0" | sed 's/^# \{0,1\}//'; }
SMOKE=()
case "${1:-}" in
  --smoke) SMOKE=(--smoke) ;;
  "") ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

die() { printf '[python-peers] ERROR: %s\n' "$*" >&2; exit 1; }
TARGET=${TETHER_PY_TARGET:-$ROOT/target-py}
PEERS=$ROOT/binding-py/bench/peers
# The peers' build tools (all from PyPI), and, for a venv this script creates, the tools the
# other ci/python-*.sh scripts pin.
PEER_PINS=(nanobind==3.1.0 pybind11==3.1.0 cmake==4.4.5 ninja==1.13.2)
TOOL_PINS=(maturin==1.16.0 pyperf==2.10.0)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONHOME PYTHONPATH

mkdir -p "$ROOT/.cache"
if command -v flock >/dev/null; then   # two runs at once would build into the same places
  exec 8>"$ROOT/.cache/.python-peers.lock"
  flock 8
fi

# A C++ compiler for the C++ peers (a fresh Debian 12 may have only the C toolchain).
if ! command -v c++ >/dev/null; then
  section "installing g++"
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq g++ >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq g++ >/dev/null; }
fi

if [ -n "${PYTHON:-}" ]; then
  command -v "$PYTHON" >/dev/null || [ -x "$PYTHON" ] || die "PYTHON=$PYTHON is not an interpreter"
  INTERPRETERS=("$PYTHON")
else
  section "interpreters (ci/python-env.sh)"
  bash ci/python-env.sh >/dev/null
  INTERPRETERS=("$ROOT/.cache/venv311/bin/python" "$ROOT/.cache/venv314/bin/python")
fi

# The tag of interpreter $1: 311, 314, 314t, ...
tag_of() {
  "$1" -c 'import sys, sysconfig; print(f"{sys.version_info[0]}{sys.version_info[1]}" + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))'
}

# Prints a venv interpreter for interpreter $1: itself if it runs in a venv, else
# .cache/venv-peers-<tag>, created when missing.
venv_of() {
  if "$1" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
    echo "$1"; return
  fi
  local venv
  venv=$ROOT/.cache/venv-peers-$(tag_of "$1")
  if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    section "creating $venv" >&2
    rm -rf "$venv"
    "$1" -m venv "$venv" >&2 || die "cannot create a venv for $1"
  fi
  echo "$venv/bin/python"
}

# Are exactly these versions installed for interpreter $1?
have_pins() {
  "$1" - "${@:2}" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
}

# Checksums of the tether and exprtree modules interpreter $1 loads.
so_sums() {
  "$1" -c 'import tether._core as t, exprtree._native as e; print(t.__file__); print(e.__file__)' \
    | xargs -r sha1sum
}

FAILED=()   # peers that did not build, for the summary
STEP0=$SECONDS
step() { printf '%-58s (t=%ss)\n' "$*" "$((SECONDS - STEP0))"; }

for INTERP in "${INTERPRETERS[@]}"; do
  PY=$(venv_of "$INTERP")
  VENV=$(dirname "$(dirname "$PY")")
  TAG=$(tag_of "$PY")
  T=$TARGET/peers/$TAG
  mkdir -p "$T"
  DESC=$("$PY" -c 'import sys, sysconfig; print(sys.version.split()[0], "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "GIL")')
  section "peers on $DESC: $PY"

  # --- pip packages -------------------------------------------------------------------------
  if ! "$PY" -c 'import maturin, pyperf' >/dev/null 2>&1; then
    step "pip install ${TOOL_PINS[*]}"
    "$PY" -m pip install -q "${TOOL_PINS[@]}" || die "pip install ${TOOL_PINS[*]} failed ($PY)"
  fi
  if ! have_pins "$PY" "${PEER_PINS[@]}"; then
    step "pip install ${PEER_PINS[*]}"
    "$PY" -m pip install -q "${PEER_PINS[@]}" || die "pip install ${PEER_PINS[*]} failed ($PY)"
  fi

  # --- tether and the example binding (the subject: a failure stops the script) -------------
  step "tether, exprtree: maturin develop --release"
  (cd binding-py && CARGO_TARGET_DIR=$T/tether VIRTUAL_ENV=$VENV \
     "$PY" -m maturin develop --release --quiet) || die "tether did not build ($PY)"
  (cd binding-py/examples/exprtree && CARGO_TARGET_DIR=$T/exprtree VIRTUAL_ENV=$VENV \
     "$PY" -m maturin develop --release --quiet) || die "exprtree did not build ($PY)"

  # --- the peers: a failure is reported, the stale module removed (the bench then reports
  #     the peer as missing, an error in --smoke), and the script fails at the end -----------
  step "peers_pyo3: maturin develop --release"
  if ! (cd "$PEERS/pyo3" && CARGO_TARGET_DIR=$T/pyo3 VIRTUAL_ENV=$VENV \
          "$PY" -m maturin develop --release --quiet); then
    echo "peers_pyo3: BUILD FAILED ($DESC)"
    FAILED+=("peers_pyo3 ($DESC)")
    "$PY" -m pip uninstall -y -q peers-pyo3 >/dev/null 2>&1 || true
  fi

  B=$T/cpp
  SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
  # Configure once per interpreter (again if the build dir belongs to another one); after that
  # ninja rebuilds only what changed, and reconfigures by itself when CMakeLists.txt changes.
  if [ "$(cat "$B/.python" 2>/dev/null)" != "$PY" ] || [ ! -f "$B/build.ninja" ]; then
    step "peers_nanobind, peers_pybind11: cmake configure ($B)"
    rm -rf "$B"
    if "$VENV/bin/cmake" -S "$PEERS/cpp" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" -DPython_EXECUTABLE="$PY" \
         -Dnanobind_ROOT="$("$PY" -m nanobind --cmake_dir)" \
         -Dpybind11_ROOT="$("$PY" -m pybind11 --cmakedir)" >"$B.configure.log" 2>&1; then
      echo "$PY" >"$B/.python"
    else
      cat "$B.configure.log"
      rm -rf "$B"
    fi
  fi
  for MOD in peers_nanobind peers_pybind11; do
    step "$MOD: cmake --build"
    SO=
    if [ -f "$B/build.ninja" ] \
         && "$VENV/bin/cmake" --build "$B" --target "$MOD" >"$B.$MOD.log" 2>&1; then
      SO=$(ls "$B/$MOD".*.so 2>/dev/null | head -1 || true)
    else
      cat "$B.$MOD.log" 2>/dev/null || true
    fi
    if [ -n "$SO" ]; then   # install (copy) into the venv when it changed
      cmp -s "$SO" "$SITE/$(basename "$SO")" || install -m 755 "$SO" "$SITE/"
    else
      echo "$MOD: BUILD FAILED ($DESC)"
      FAILED+=("$MOD ($DESC)")
      rm -f "$SITE/$MOD".*.so
    fi
  done

  # --- the benchmark ------------------------------------------------------------------------
  # `maturin develop` puts tether's and exprtree's modules in the source tree, shared by every
  # venv of the same Python version: another build (e.g. ci/python-tests.sh's debug build, from
  # any venv) replaces them. Checked after the run: the numbers are then not all from this build.
  SUMS=$(so_sums "$PY" 2>/dev/null || true)
  if [ ${#SMOKE[@]} -gt 0 ]; then
    "$PY" "$PEERS/bench.py" --smoke || die "bench.py --smoke failed ($DESC)"
    # The scaling benchmark's smoke run (its identity checks across threads; under a second).
    "$PY" binding-py/bench/scaling.py --smoke || die "scaling.py --smoke failed ($DESC)"
  else
    read -r -a ARGS <<<"${TETHER_BENCH_ARGS:---fast --quiet}"
    "$PY" "$PEERS/bench.py" "${ARGS[@]}" || die "bench.py failed ($DESC)"
  fi
  [ "$(so_sums "$PY" 2>/dev/null || true)" = "$SUMS" ] || printf '%s\n' \
    "WARNING: tether's or exprtree's module was rebuilt by something else during this run" \
    "  (its file in the source tree changed): the timings above may mix builds; run again."
done

section "done"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'peers that did not build (reported as MISSING above):\n'
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
