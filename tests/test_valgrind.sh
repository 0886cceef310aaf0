#!/usr/bin/env bash
# test_valgrind.sh: why it exists: the sanitized suite (./check --sanitize) sees
# what the compiler instrumented; memcheck sees the real program as shipped,
# with its libraries (OpenBLAS, OpenMP, libc), without recompiling anything of
# theirs: reads of uninitialised memory, invalid reads and writes, leaks and
# file descriptors left open at exit, over a short headless run that loads,
# trains, saves and writes metrics.
# valgrind cannot run AVX-512 code, so the binary is a portable build
# (TABULA_NATIVE=OFF, headless, CPU) made here from the same sources.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${TABULA_SRC:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
command -v valgrind >/dev/null || skip_all "no valgrind (apt-get install valgrind)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CLIP="file:$DATA/hikers_forest_320x240.y4m"
NET="--size 32x32 --channels 8,16"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1

build() {
  cmake -S "$SRC" -B "$T/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTABULA_APP=OFF \
    -DTABULA_CUDA=OFF -DTABULA_NATIVE=OFF >"$T/build.log" 2>&1 &&
    cmake --build "$T/build" -j2 --target tabula >>"$T/build.log" 2>&1
}

# memcheck NAME ARGS...: run the portable tabula under memcheck; its report in $T/NAME.vg.
memcheck() {
  local name=$1
  shift
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --track-fds=yes --log-file="$T/$name.vg" \
    "$T/build/tabula" "$@" >"$T/$name.out" 2>&1
}

# What memcheck says, checked: exit 0, no errors, nothing definitely lost, and
# no descriptor that tabula opened still open at exit (ones inherited from the
# shell or CTest are theirs).
expect_clean() {
  local name=$1 rc=$2
  [ "$rc" = 0 ] && ok || bad "$name: exit $rc: $(tail -3 "$T/$name.out") $(grep -m3 -A3 "Invalid\|uninitialised" "$T/$name.vg")"
  grep -q "ERROR SUMMARY: 0 errors" "$T/$name.vg" && ok || bad "$name: $(grep "ERROR SUMMARY" "$T/$name.vg")"
  ! grep -q "definitely lost: [1-9]" "$T/$name.vg" && ok || bad "$name: $(grep "definitely lost" "$T/$name.vg")"
  grep -q "FILE DESCRIPTORS:" "$T/$name.vg" || { bad "$name: no descriptor report"; return; }
  local left
  left=$(awk '/Open file descriptor/ { d = $0; getline; if ($0 !~ /inherited from parent/) print d }' \
    "$T/$name.vg" | grep -v "std\(in\|out\|err\)")
  [ -z "$left" ] && ok || bad "$name: left open at exit: $left"
}

headless_run_is_clean_under_memcheck() {
  [ -x "$T/build/tabula" ] || build || { bad "portable build failed: $(tail -5 "$T/build.log")"; return; }
  # Threads as in a show (OpenMP on two cores), a short run that saves; a small
  # network, as memcheck runs the convolutions about a hundred times slower.
  memcheck train --headless --backend cpu --source "$CLIP" $NET --frames 6 \
    --steps-per-frame 2 --metrics "$T/m.jsonl" --save "$T/w.safetensors" --autosave.minutes 0
  expect_clean train $?
  [ "$(wc -l <"$T/m.jsonl")" = 6 ] && ok || bad "metrics: $(wc -l <"$T/m.jsonl") lines, want 6"
}

load_and_bad_input_are_clean_under_memcheck() {
  [ -x "$T/build/tabula" ] || build || { bad "portable build failed: $(tail -5 "$T/build.log")"; return; }
  [ -s "$T/w.safetensors" ] || { skip_case "needs the first case's weights"; return; }
  memcheck load --headless --backend cpu --source "$CLIP" --load "$T/w.safetensors" --frames 3 \
    --autosave.minutes 0
  expect_clean load $?
  # A truncated file is refused with exit 2, and the refusal leaks nothing.
  head -c 300 "$T/w.safetensors" >"$T/cut.safetensors"
  memcheck cut --headless --backend cpu --source "$CLIP" --load "$T/cut.safetensors" --frames 2 \
    --autosave.minutes 0
  local rc=$?
  [ "$rc" = 2 ] && ok || bad "truncated weights: exit $rc, want 2"
  grep -q "ERROR SUMMARY: 0 errors" "$T/cut.vg" && ok || bad "cut: $(grep "ERROR SUMMARY" "$T/cut.vg")"
}

run_case headless_run_is_clean_under_memcheck
run_case load_and_bad_input_are_clean_under_memcheck
finish
