#!/usr/bin/env bash
# test_modes.sh: why it exists: a headless run and the window must take the same
# parameters the same way (one table). With --steps-per-frame 32, --memory 3 and
# --lr 0.5 both train 32 steps per frame on the same clip, and say so in their
# metrics; --pause 1 takes no step in either.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_display "$@"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CLIP="file:$DATA/asl_signer_a_320x240.y4m"
RUN=(--backend cpu --size 32x32 --source "$CLIP" --frames 4)

# field FILE KEY: the values of a numeric key, one per metrics line.
field() { sed -n "s/.*\"$2\":\([-0-9.e]*\).*/\1/p" "$1" | tr '\n' ' '; }

# both_modes WANT_STEPS WANT_LAST_STEP ARGS...: run headless and in the window
# with ARGS; each metrics file must show WANT_STEPS per frame and end at step
# WANT_LAST_STEP.
both_modes() {
  local want=$1 last=$2; shift 2
  local mode m steps last_step
  for mode in headless window; do
    local extra=(); [ $mode = headless ] && extra=(--headless)
    m="$T/$mode.jsonl"
    if ! timeout 120 "$BIN" "${RUN[@]}" "${extra[@]}" --metrics "$m" "$@" 2>"$T/err"; then
      bad "$mode: run failed: $(tail -2 "$T/err")"; continue
    fi
    steps=$(field "$m" steps_per_frame); last_step=$(field "$m" step | awk '{print $NF}')
    [ "$steps" = "$(printf "$want %.0s" 1 2 3 4)" ] && [ "${last_step:-}" = "$last" ] && ok ||
      bad "$mode: steps per frame '$steps', last step '${last_step:-none}' (want $want each, last $last)"
  done
}

steps_per_frame_32_in_both_modes() { both_modes 32 128 --steps-per-frame 32 --memory 3 --lr 0.5; }

# Paused, no step is taken: only frames with a step write a metrics line, and
# the weights saved at the end are still those of step 0.
pause_takes_no_step_in_both_modes() {
  local mode m
  for mode in headless window; do
    local extra=(); [ $mode = headless ] && extra=(--headless)
    m="$T/pause-$mode.jsonl"
    if timeout 120 "$BIN" "${RUN[@]}" "${extra[@]}" --pause 1 --metrics "$m" \
         --save "$T/p1.safetensors" 2>"$T/err" &&
       [ -f "$m" ] && [ ! -s "$m" ] && grep -q "saved $T/p1.safetensors (step 0)" "$T/err"; then
      ok
    else
      bad "$mode: metrics $(wc -l < "$m" 2>/dev/null) lines; $(tail -2 "$T/err")"
    fi
  done
}

# The same out-of-range value is refused the same way by both modes (exit 2).
out_of_range_refused_in_both_modes() {
  local mode rc
  for mode in headless window; do
    local extra=(); [ $mode = headless ] && extra=(--headless)
    timeout 60 "$BIN" "${RUN[@]}" "${extra[@]}" --steps-per-frame 65 2>"$T/err"; rc=$?
    [ $rc = 2 ] && grep -q "steps_per_frame = 65 is out of range (0 to 64)" "$T/err" && ok ||
      bad "$mode: exit $rc: $(cat "$T/err")"
  done
}

run_case steps_per_frame_32_in_both_modes
run_case pause_takes_no_step_in_both_modes
run_case out_of_range_refused_in_both_modes
finish
