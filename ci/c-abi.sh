#!/usr/bin/env bash
# The C ABI from C and C++: binding-c's static library driven by a C object system and wrapper
# runtime on pthreads (binding-c/tests/c/frontend.c, a shadow heap asserting S1-S6), run plainly,
# under ASan+UBSan (leak checker on) and under ThreadSanitizer (the Rust side instrumented too);
# tether.h compiled standalone as C11 and as C++17 (binding-c/tests/c/compile.cpp); and the
# harness's own broken variants, which must FAIL. Every check runs; the summary lists failures.
# Needs cc and c++ (gcc or clang) and installs nothing but what ci/lib.sh's ensure_nightly does.
#   TETHER_C_SCALE=percent   rounds of the plain and ASan runs (default 100; TSan runs half)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

for tool in cc c++; do
  command -v "$tool" >/dev/null || {
    echo "c-abi: '$tool' not found: install a C and C++ compiler (gcc/g++ or clang); nothing was run"
    exit 1
  }
done

SRC=binding-c/tests/c
INC=binding-c/include
OUT=target-c/c-abi
mkdir -p "$OUT"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pthread -g -I"$INC")
LIBS=(-pthread -ldl -lm)
SCALE=${TETHER_C_SCALE:-100}
TRIPLE=x86_64-unknown-linux-gnu
FAILED=()
T_ALL=$EPOCHREALTIME

# Seconds since $1 (an $EPOCHREALTIME), to a tenth.
elapsed() {
  local us=$((${EPOCHREALTIME//[.,]/} - ${1//[.,]/}))
  printf '%d.%ds' $((us / 1000000)) $((us / 100000 % 10))
}

# step NAME CMD...: runs one step, prints "NAME: ok|FAILED (time)"; a failure is recorded and the
# script goes on (the summary exits non-zero). Output is kept in $OUT/NAME.log and shown filtered.
# (Functions run by step, fatal and must_fail chain their commands with &&: set -e does not apply
# inside a command whose status is tested.)
step() {
  local name=$1 t0=$EPOCHREALTIME status=0 log
  shift
  log="$OUT/${name//[^a-zA-Z0-9_.-]/_}.log"
  "$@" >"$log" 2>&1 || status=$?
  grep -E '^[a-z/-]+: |FAIL|NOTE|WARNING: |SUMMARY|ERROR|error|panicked|aborting' "$log" | head -40 || true
  if [ "$status" -eq 0 ]; then
    echo "== $name: ok ($(elapsed "$t0"))"
  else
    echo "== $name: FAILED, exit $status ($(elapsed "$t0")); full output: $log"
    FAILED+=("$name")
  fi
}

# fatal NAME CMD...: a build the remaining steps need; stops the script on failure.
fatal() {
  local name=$1 t0=$EPOCHREALTIME
  shift
  "$@" || { echo "== $name: FAILED ($(elapsed "$t0"))"; exit 1; }
  echo "== $name: ok ($(elapsed "$t0"))"
}

# must_fail NAME CMD...: a broken variant; it must exit non-zero (a harness check, a kernel
# abort or a crash all count), and its first diagnostic is printed.
must_fail() {
  local name=$1 t0=$EPOCHREALTIME status=0 log
  shift
  log="$OUT/${name//[^a-zA-Z0-9_.-]/_}.log"
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    echo "   caught (exit $status): $(grep -m1 -E 'FAIL|tether: .*abort|ERROR: AddressSanitizer' "$log" || tail -n1 "$log")"
    grep -m1 -A3 -E '^ +#[0-9]+ .*tether_' "$log" | head -1 | sed 's/^ */   in: /' || true
    echo "== $name: ok, the broken variant fails ($(elapsed "$t0"))"
  else
    echo "== $name: FAILED: the broken variant passed ($(elapsed "$t0")); output: $log"
    FAILED+=("$name")
  fi
}

section "c-abi: tether.h standalone"
# A header must compile on its own with warnings as errors, in C as in C++.
header_c() {
  printf '#include "tether.h"\nint main(void) { return (int)tether_abi_version() != TETHER_ABI_VERSION; }\n' \
    >"$OUT/header.c" &&
    cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$INC" -c "$OUT/header.c" -o "$OUT/header.o"
}
step "header as C11" header_c

section "c-abi: release static library"
export CARGO_TARGET_DIR=target-c
fatal "cargo build --release -p binding-c" cargo build --release -p binding-c --quiet
LIB=target-c/release/libtether.a

section "c-abi: C++"
cpp() {
  rm -f "$OUT/compile-cpp" &&
    c++ -std=c++17 -Wall -Wextra -Werror -I"$INC" "$SRC/compile.cpp" "$LIB" "${LIBS[@]}" \
      -o "$OUT/compile-cpp" &&
    "$OUT/compile-cpp"
}
step "c++17 compile.cpp" cpp

section "c-abi: frontend.c, plain"
fatal "compile (-O2)" cc "${CFLAGS[@]}" -O2 "$SRC/frontend.c" "$LIB" "${LIBS[@]}" -o "$OUT/frontend"
step "run plain" env TETHER_C_SCALE="$SCALE" "$OUT/frontend"

section "c-abi: frontend.c, ASan + UBSan (leak checker on)"
SAN=(-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
fatal "compile (ASan, UBSan)" cc "${CFLAGS[@]}" "${SAN[@]}" "$SRC/frontend.c" "$LIB" "${LIBS[@]}" \
  -o "$OUT/frontend-asan"
step "run ASan+UBSan" env TETHER_C_SCALE="$SCALE" ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$OUT/frontend-asan"

section "c-abi: frontend.c, ThreadSanitizer (the library instrumented too)"
# The kernel's atomics must be instrumented or TSan reports false races through them: the library
# is built like ci/tsan.sh builds the kernel (nightly, std rebuilt with TSan), in its target dir so
# the instrumented std is shared. The C side is compiled with -fsanitize=thread and linked with the
# TSan runtime that ships with that Rust toolchain: GCC 12's libtsan lacks entry points the Rust
# toolchain's LLVM emits (__tsan_memcpy, __tsan_memset, __tsan_memmove).
ensure_nightly rust-src
TSAN_RT="$(rustc +nightly --print sysroot)/lib/rustlib/$TRIPLE/lib/librustc-nightly_rt.tsan.a"
[ -f "$TSAN_RT" ] || { echo "c-abi: no TSan runtime at $TSAN_RT"; exit 1; }
tsan_build() {
  CARGO_TARGET_DIR=target-tsan RUSTFLAGS="-Zsanitizer=thread" \
    cargo +nightly build -Zbuild-std --target "$TRIPLE" -p binding-c --quiet
}
fatal "cargo +nightly build -Zbuild-std (TSan)" tsan_build
tsan_link() {
  rm -f "$OUT/frontend-tsan.o" "$OUT/frontend-tsan" &&
    cc "${CFLAGS[@]}" -O1 -fsanitize=thread -c "$SRC/frontend.c" -o "$OUT/frontend-tsan.o" &&
    cc "$OUT/frontend-tsan.o" "target-tsan/$TRIPLE/debug/libtether.a" \
      -Wl,--whole-archive "$TSAN_RT" -Wl,--no-whole-archive "${LIBS[@]}" -lrt -o "$OUT/frontend-tsan"
}
fatal "compile (TSan)" tsan_link
step "run TSan" env TETHER_C_SCALE=$((SCALE / 2 > 0 ? SCALE / 2 : 1)) TSAN_OPTIONS=halt_on_error=1 \
  "$OUT/frontend-tsan"

section "c-abi: the harness's broken variants must fail"
# Built with ASan, so a crash inside the library is reported with its stack.
for flaw in FREE_ON_DEFERRED:dealloc-vs-reclaim FREE_AFTER_CACHED:rebind; do
  variant=${flaw%%:*} scenario=${flaw#*:}
  fatal "compile TETHER_TEST_BROKEN_$variant" cc "${CFLAGS[@]}" "${SAN[@]}" \
    "-DTETHER_TEST_BROKEN_$variant" "$SRC/frontend.c" "$LIB" "${LIBS[@]}" \
    -o "$OUT/frontend-broken-$variant"
  must_fail "broken $variant ($scenario)" env TETHER_C_SCALE=5 ASAN_OPTIONS=detect_leaks=0 \
    "$OUT/frontend-broken-$variant" "$scenario"
done

echo
if [ "${#FAILED[@]}" -eq 0 ]; then
  echo "c-abi: all steps passed ($(elapsed "$T_ALL"))"
else
  echo "c-abi: FAILED: ${FAILED[*]} ($(elapsed "$T_ALL"))"
  exit 1
fi
