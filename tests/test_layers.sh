#!/usr/bin/env bash
# test_layers.sh: why it exists: the folders are the architecture (app -> cli ->
# engine -> ops/kernels/io -> common), and it stays readable only while every
# dependency points down. This fails when a source includes a header of a layer
# above its own, when anything below the app knows the app exists, or when a
# program built from the engine alone links a window, camera or audio library.
set -u
SRC=${TABULA_SRC:?set by CTest}
BIN=${TABULA_BIN:?set by CTest}
pass=0; fail=0
case_ok()  { pass=$((pass+1)); echo "ok $1"; }
case_bad() { fail=$((fail+1)); echo "FAIL $1: $2" >&2; echo "FAIL $1"; }

# The folders each layer may include from (its own first).
declare -A ALLOWED=(
  [src/common]="src/common"
  [src/ops]="src/ops src/common"
  [kernels]="kernels src/ops src/common"
  [src/io]="src/io src/common"
  [src/engine]="src/engine src/ops kernels src/io src/common"
  [src/cli]="src/cli src/engine src/ops src/io src/common"
  [src/app]="src/app src/cli src/engine src/ops kernels src/io src/common"
)
# Where a header lives (its folder), by name.
declare -A HOME_OF=()
for d in "${!ALLOWED[@]}"; do
  for h in "$SRC/$d"/*.h; do [ -e "$h" ] && HOME_OF[$(basename "$h")]=$d; done
done

bad_includes=""
for d in "${!ALLOWED[@]}"; do
  for f in "$SRC/$d"/*.c "$SRC/$d"/*.h "$SRC/$d"/*.cu; do
    [ -e "$f" ] || continue
    while read -r inc; do
      home=${HOME_OF[$inc]:-}
      [ -z "$home" ] && continue  # a system or generated header
      case " ${ALLOWED[$d]} " in *" $home "*) ;; *) bad_includes+=" ${f#$SRC/} includes $home/$inc;" ;; esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
[ -z "$bad_includes" ] && case_ok includes_point_down || case_bad includes_point_down "$bad_includes"

# Nothing below main.c asks whether the app is built; no weak symbols.
hits=$(grep -rln --include='*.c' --include='*.h' --include='*.cu' -e TABULA_HAVE_APP -e '__attribute__((weak))' \
       "$SRC/src" "$SRC/kernels" | grep -v "/src/main.c$")
[ -z "$hits" ] && case_ok no_app_switch_below_main || case_bad no_app_switch_below_main "$hits"

# A program built from the engine (and the command line) alone: no window,
# camera, audio, MIDI, OSC or video library among what it loads.
prog="$(dirname "$BIN")/test_model"
if [ ! -x "$prog" ]; then
  case_bad engine_links_no_system_ui "no $prog"
else
  needed=$(readelf -d "$prog" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  ui=$(echo "$needed" | tr ' ' '\n' | grep -E '^lib(glfw|GL|GLEW|EGL|X11|v4l|av|swscale|portaudio|asound|lo|jpeg|png)' | tr '\n' ' ')
  if [ -z "$ui" ] && [ -n "$needed" ]; then case_ok engine_links_no_system_ui
  else case_bad engine_links_no_system_ui "test_model loads: ${ui:-nothing read} (all: $needed)"; fi
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
