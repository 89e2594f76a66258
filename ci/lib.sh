# Shared helpers for the ci/ scripts (sourced, not run).
# shellcheck shell=bash

TETHER_T0=${TETHER_T0:-$(date +%s)}
export TETHER_T0
TETHER_PASSED=0
TETHER_FAILED=0

section() { printf '\n==== %s (t=%ss)\n' "$*" "$(( $(date +%s) - TETHER_T0 ))"; }

# Runs one suite script; counts it; stops at the first failure.
run_suite() {
  section "suite $*"
  if bash "$@"; then
    TETHER_PASSED=$((TETHER_PASSED + 1))
  else
    TETHER_FAILED=$((TETHER_FAILED + 1))
    echo "suite $* FAILED"
    summary
  fi
}

summary() {
  printf '\nsuites: %s passed, %s failed\n' "$TETHER_PASSED" "$TETHER_FAILED"
  [ "$TETHER_FAILED" -eq 0 ] || exit 1
}

# rustup components both toolchains need; installed only when missing.
ensure_rust_components() {
  local have
  have=$(rustup component list --installed --toolchain stable 2>/dev/null || true)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$have" || rustup component add "$c" --toolchain stable
  done
}

ensure_nightly() {
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  local have
  have=$(rustup component list --installed --toolchain nightly 2>/dev/null || true)
  for c in "$@"; do
    grep -q "^$c" <<<"$have" || rustup component add "$c" --toolchain nightly
  done
}
