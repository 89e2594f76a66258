#!/usr/bin/env bash
# Set up the Python interpreters used by the tests, under <repo>/.cache (git-ignored):
#
#   .cache/venv311   venv of the preinstalled CPython 3.11 (pyenv's python3.11)
#   .cache/py314     CPython 3.14 (GIL build) unpacked from Debian sid's binary packages,
#                    with sid's glibc and libraries, the binary patched (patchelf) to use them
#   .cache/venv314   venv of that 3.14
#
# and installs the pinned test tools (PY_PKGS below) into both venvs.
# Idempotent: every step is skipped when its result is already there, so a second run takes
# about a second. Meant for a Debian 12 (bookworm) amd64 machine, run as root (apt-get is used
# for patchelf and for downloading sid's .deb files; nothing outside .cache is changed except
# installing patchelf).
#
# Environment: PYTHON311=<interpreter> overrides the 3.11 used for venv311 (default python3.11).
#              PY314_REBUILD=1 discards .cache/py314 and unpacks it again (e.g. to pick up a
#              newer sid 3.14).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$ROOT/.cache
VENV311=$CACHE/venv311
PREFIX=$CACHE/py314
WORK=$CACHE/py314-debs
VENV314=$CACHE/venv314

# Pinned tools; each of these versions exists for CPython 3.11 and 3.14.
PY_PKGS=(pip==26.3 maturin==1.16.0 pytest==9.2.0 pytest-run-parallel==0.10.0 pyperf==2.10.0)

# Debian sid packages unpacked into $PREFIX (the interpreter plus the libraries it needs that
# are newer than bookworm's). Names follow sid; if sid renames one (e.g. a new soname or a t64
# transition) the script stops and says which.
SID_PKGS=(python3.14 python3.14-minimal python3.14-venv python3.14-dev
  libpython3.14 libpython3.14-minimal libpython3.14-stdlib libpython3.14-dev
  libc6 libgcc-s1 zlib1g libexpat1 libssl3t64 libzstd1 libuuid1 libtinfo6 libsqlite3-0
  libreadline8t64 libncursesw6 liblzma5 libffi8 libdb5.3t64 libbz2-1.0)

unset PYTHONHOME PYTHONPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 DEBIAN_FRONTEND=noninteractive

T0=$SECONDS
log() { printf '[python-env %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf '[python-env] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE"
# Serialise concurrent runs (CI and a person, or two shells).
if command -v flock >/dev/null; then
  exec 9>"$CACHE/.python-env.lock"
  flock 9
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: apt-get is needed (patchelf, sid .debs)"
  SUDO=sudo
fi

# Does the interpreter at $1 start?
runs() { [ -x "$1" ] && "$1" -c 'import sys' >/dev/null 2>&1; }

# --- 1. venv311 ---------------------------------------------------------------------------
if runs "$VENV311/bin/python" && "$VENV311/bin/python" -c \
     'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  log "venv311: present"
else
  PY311=${PYTHON311:-python3.11}
  command -v "$PY311" >/dev/null || PY311=python3
  "$PY311" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null \
    || die "no CPython 3.11 found (tried ${PYTHON311:-python3.11}, python3); set PYTHON311=/path/to/python3.11"
  log "venv311: creating from $("$PY311" -c 'import sys; print(sys.executable)')"
  rm -rf "$VENV311"
  "$PY311" -m venv "$VENV311"
fi

# --- 2. CPython 3.14 from Debian sid into $PREFIX -----------------------------------------
PY314=$PREFIX/usr/bin/python3.14
L=$PREFIX/usr/lib/x86_64-linux-gnu
STAMP=$PREFIX/.unpacked-from-sid   # written last: its presence means the prefix is complete

apt_install_host() {   # install a bookworm package on the host, updating the lists if needed
  $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  log "apt-get update (host lists)"
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ "${PY314_REBUILD:-0}" != 1 ] && [ -f "$STAMP" ] && runs "$PY314"; then
  log "py314: present ($(cat "$STAMP"))"
else
  [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] \
    || die "the sid 3.14 recipe is for amd64 (x86_64-linux-gnu) only"
  command -v patchelf >/dev/null || { log "installing patchelf"; apt_install_host patchelf; }

  # Reuse the mirror this machine's apt already uses, with the sid suite.
  MIRROR=
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$MIRROR" ] && [ -f /etc/apt/sources.list ]; then
    MIRROR=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$MIRROR" ] || die "cannot find the Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"

  log "py314: fetching sid package lists"
  rm -rf "$PREFIX" "$WORK"
  mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$PREFIX"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR sid main" > "$WORK/sources.list"
  # Private lists and cache: the host's apt state is not touched.
  A=(-o Dir::Etc::SourceList="$WORK/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o Dir::State::Lists="$WORK/lists" -o Dir::Cache="$WORK/cache" -o APT::Sandbox::User=root)
  # Fail clearly if sid no longer has a package under the name we use. A mirror caught in the
  # middle of its sync can serve an index that lacks some packages for a while (seen here:
  # libssl3t64 missing for one run): update and look again a few times before giving up.
  MISSING=("${SID_PKGS[@]}")
  for attempt in 1 2 3 4; do
    $SUDO apt-get "${A[@]}" -qq update >/dev/null || die "apt-get update of Debian sid ($MIRROR) failed"
    mapfile -t FOUND < <(apt-cache "${A[@]}" madison "${SID_PKGS[@]}" 2>/dev/null | awk '{print $1}' | sort -u)
    MISSING=()
    for p in "${SID_PKGS[@]}"; do
      printf '%s\n' "${FOUND[@]}" | grep -qxF -- "$p" || MISSING+=("$p")
    done
    [ "${#MISSING[@]}" -eq 0 ] && break
    log "py314: sid's index lacks ${MISSING[*]} (attempt $attempt); retrying in $((attempt * 30)) s"
    sleep $((attempt * 30))
  done
  if [ "${#MISSING[@]}" -gt 0 ]; then
    die "Debian sid has no package named: ${MISSING[*]}
  sid has probably renamed it (new soname / t64 transition) or moved past Python 3.14.
  Find the new name, e.g.: apt-cache ${A[*]} search '^${MISSING[0]%%[0-9]*}'
  then update SID_PKGS in ci/python-env.sh."
  fi

  log "py314: downloading ${#SID_PKGS[@]} sid packages"
  for attempt in 1 2 3; do
    (cd "$WORK" && $SUDO apt-get "${A[@]}" -qq download "${SID_PKGS[@]}" >/dev/null) && break
    [ "$attempt" -eq 3 ] && die "apt-get download from sid failed (package list above)"
    log "py314: download failed (attempt $attempt); retrying in 30 s"
    rm -f "$WORK"/*.deb
    sleep 30
  done
  for d in "$WORK"/*.deb; do dpkg -x "$d" "$PREFIX"; done
  [ -x "$PY314" ] || die "sid's python3.14 package did not provide usr/bin/python3.14"
  patchelf --set-interpreter "$L/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$L" "$PY314"
  runs "$PY314" || die "the unpacked $PY314 does not start"
  # Record what was unpacked (sid moves; this says which versions this prefix holds).
  for d in "$WORK"/*.deb; do dpkg-deb -W --showformat='${Package}=${Version}\n' "$d"; done > "$PREFIX/sid-packages.txt"
  "$PY314" -c 'import platform; print("CPython", platform.python_version(), "from Debian sid")' > "$STAMP"
  rm -rf "$WORK"/*.deb "$WORK/lists" "$WORK/cache"   # keep only the small pip wheel cache
  rm -rf "$VENV314"   # a venv of an earlier prefix is stale
  log "py314: unpacked ($(cat "$STAMP"))"
fi

# --- 3. venv314 ---------------------------------------------------------------------------
if runs "$VENV314/bin/python" && "$VENV314/bin/python" -m pip --version >/dev/null 2>&1; then
  log "venv314: present"
else
  log "venv314: creating"
  rm -rf "$VENV314"
  "$PY314" -m venv --without-pip "$VENV314"
  # sid's venv has no bundled pip wheel here: bootstrap pip from PyPI's wheel.
  PIP_PIN=$(printf '%s\n' "${PY_PKGS[@]}" | grep '^pip==')
  mkdir -p "$WORK/whl"
  W=$(ls "$WORK"/whl/"${PIP_PIN/==/-}"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$W" ]; then
    "$VENV311/bin/python" -m pip download -q --no-deps -d "$WORK/whl" "$PIP_PIN"
    W=$(ls "$WORK"/whl/"${PIP_PIN/==/-}"-*.whl | head -1)
  fi
  "$VENV314/bin/python" "$W/pip" install -q --no-index "$W"
fi

# --- 4. pinned tools in both venvs --------------------------------------------------------
have_pins() {   # are exactly the pinned versions installed in venv $1?
  "$1/bin/python" - "${PY_PKGS[@]}" <<'EOF' 2>/dev/null
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
for V in "$VENV311" "$VENV314"; do
  n=$(basename "$V")
  if have_pins "$V"; then
    log "$n: tools present"
  else
    log "$n: pip install ${PY_PKGS[*]}"
    "$V/bin/python" -m pip install -q "${PY_PKGS[@]}"
    have_pins "$V" || die "$n: pinned packages still missing after pip install"
  fi
done

log "done"
for V in "$VENV311" "$VENV314"; do
  printf '  %-32s %s\n' "${V#"$ROOT"/}/bin/python" "$("$V/bin/python" -c 'import sys; print(sys.version.split()[0])')"
done
