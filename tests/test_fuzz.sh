#!/usr/bin/env bash
# test_fuzz.sh: why it exists: weights, configs and clips come from outside, so
# their parsers must survive anything; so must the image decoder of dir:
# folders, whose files come from whoever fills a gallery's share. Each
# libFuzzer harness in tests/fuzz/ is built with AddressSanitizer and
# UndefinedBehaviorSanitizer (Debian's clang) and run for a bounded time from
# its committed seed corpus; a crash, a leak or undefined behaviour fails its
# case, and its input is written beside the log.
# FUZZ_SECONDS (default 10) sets the time per harness.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${TABULA_SRC:?set by CTest}
SECS=${FUZZ_SECONDS:-10}
command -v clang >/dev/null || skip_all "no clang (apt-get install clang) for libFuzzer"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# The code under test: every layer below the app (no OpenMP or BLAS: the plain
# loops, so the sanitizers see every access).
LIBSRC=$(ls "$SRC"/src/common/*.c "$SRC"/src/ops/*.c "$SRC"/src/io/*.c "$SRC"/src/engine/*.c "$SRC"/src/cli/*.c)
INC=(-I"$SRC/src/common" -I"$SRC/src/ops" -I"$SRC/src/io" -I"$SRC/src/engine" -I"$SRC/src/cli")
FLAGS=(-std=gnu11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
       -Wno-unknown-pragmas)

build_lib() {
  local f objs=()
  mkdir -p "$T/obj"
  for f in $LIBSRC; do
    objs+=("$T/obj/$(basename "${f%.c}").o")
    clang "${FLAGS[@]}" "${INC[@]}" -c "$f" -o "${objs[-1]}" || return 1
  done
  ar rcs "$T/libtabula_fuzz.a" "${objs[@]}"
}

# fuzz NAME [ARGS...]: build tests/fuzz/fuzz_NAME.c (with ARGS: more sources,
# includes and libraries), run it from corpus/NAME for SECS.
fuzz() {
  local name=$1 corpus="$T/corpus-$1"
  shift
  [ -f "$T/libtabula_fuzz.a" ] || build_lib 2>"$T/lib.build" || { bad "the library did not build"; return; }
  if ! clang "${FLAGS[@]}" -fsanitize=fuzzer "${INC[@]}" "$SRC/tests/fuzz/fuzz_$name.c" "$@" \
       "$T/libtabula_fuzz.a" -lm -lpthread -o "$T/fuzz_$name" 2>"$T/$name.build"; then
    bad "fuzz_$name did not build: $(head -5 "$T/$name.build")"; return
  fi
  cp -r "$SRC/tests/fuzz/corpus/$name" "$corpus"
  if "$T/fuzz_$name" -max_total_time="$SECS" -rss_limit_mb=2048 -max_len=16384 -timeout=10 \
       -artifact_prefix="$T/$name-" "$corpus" > "$T/$name.log" 2>&1; then
    grep -Eo "Done [0-9]+ runs in [0-9]+ second" "$T/$name.log" | tail -1
    ok
  else
    bad "fuzz_$name found a failure: $(grep -E "ERROR|runtime error|SUMMARY" "$T/$name.log" | head -3)"
    ls "$T"/"$name"-* 2>/dev/null | head -3 >&2
  fi
}

library_builds_with_sanitizers() { build_lib 2>"$T/lib.build" && ok || bad "$(grep error "$T/lib.build" | head -5)"; }
weights_load_path_survives_anything() { fuzz weights; }
ini_and_flags_survive_anything() { fuzz ini; }
y4m_reader_survives_anything() { fuzz y4m; }
# The app's decoder alone (the rest of the app needs a window and a camera),
# against Debian's libpng and libjpeg-turbo (not instrumented: ASan sees our
# side of every buffer, UBSan our code).
image_decoder_survives_anything() {
  local pc
  if ! pc=$(pkg-config --cflags --libs libpng libjpeg); then
    skip_case "no libpng-dev or libjpeg-dev"; return
  fi
  read -ra pc <<<"$pc"
  fuzz image -I"$SRC/src/app" "$SRC/src/app/imgdecode.c" "${pc[@]}"
}

# The MIDI mapping loader (pure logic, no ALSA).
midi_mappings_survive_anything() { fuzz midimap -I"$SRC/src/app" "$SRC/src/app/midi_map.c"; }

# The OSC surface (liblo, not instrumented) fed over loopback.
osc_surface_survives_anything() {
  local pc
  if ! pc=$(pkg-config --cflags --libs liblo); then
    skip_case "no liblo-dev"; return
  fi
  read -ra pc <<<"$pc"
  fuzz osc -I"$SRC/src/app" "$SRC/src/app/osc.c" "${pc[@]}"
}

run_case library_builds_with_sanitizers
run_case weights_load_path_survives_anything
run_case ini_and_flags_survive_anything
run_case y4m_reader_survives_anything
run_case image_decoder_survives_anything
run_case midi_mappings_survive_anything
run_case osc_surface_survives_anything
finish
