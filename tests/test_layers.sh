#!/usr/bin/env bash
# test_layers.sh: why it exists: the folders are the architecture (app -> cli ->
# engine -> ops/kernels/io -> common), and it stays readable only while every
# dependency points down. This fails when a source includes a header of a layer
# above its own, when anything below the app knows the app exists, or when a
# program built from the engine alone links a window, camera or audio library.
set -u
. "$(dirname "$0")/lib.sh"
SRC=${TABULA_SRC:?set by CTest}
BIN=${TABULA_BIN:?set by CTest}

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

includes_point_down() {
  # Where a header lives (its folder), by name.
  local -A home_of=()
  local d h f inc home
  for d in "${!ALLOWED[@]}"; do
    for h in "$SRC/$d"/*.h; do [ -e "$h" ] && home_of[$(basename "$h")]=$d; done
  done
  for d in "${!ALLOWED[@]}"; do
    for f in "$SRC/$d"/*.c "$SRC/$d"/*.h "$SRC/$d"/*.cu; do
      [ -e "$f" ] || continue
      while read -r inc; do
        home=${home_of[$inc]:-}
        [ -z "$home" ] && continue  # a system or generated header
        case " ${ALLOWED[$d]} " in
          *" $home "*) ok ;;
          *) bad "${f#$SRC/} includes $home/$inc" ;;
        esac
      done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
    done
  done
}

# Nothing below main.c asks whether the app is built; no weak symbols.
no_app_switch_below_main() {
  local hits
  hits=$(grep -rln --include='*.c' --include='*.h' --include='*.cu' -e TABULA_HAVE_APP \
         -e '__attribute__((weak))' "$SRC/src" "$SRC/kernels" | grep -v "/src/main.c$")
  [ -z "$hits" ] && ok || bad "$hits"
}

# A program built from the engine (and the command line) alone: no window,
# camera, audio, MIDI, OSC or video library among what it loads.
engine_links_no_system_ui() {
  local prog needed ui
  prog="$(dirname "$BIN")/test_model"
  [ -x "$prog" ] || { bad "no $prog"; return; }
  needed=$(readelf -d "$prog" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
  ui=$(echo "$needed" | tr ' ' '\n' | grep -E '^lib(glfw|GL|GLEW|EGL|X11|v4l|av|swscale|portaudio|asound|lo|jpeg|png)' | tr '\n' ' ')
  [ -z "$ui" ] && [ -n "$needed" ] && ok || bad "test_model loads: ${ui:-nothing read} (all: $needed)"
}

run_case includes_point_down
run_case no_app_switch_below_main
run_case engine_links_no_system_ui
finish
