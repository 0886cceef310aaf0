#!/usr/bin/env bash
# test_modes.sh: why it exists: a headless run and the window must take the same
# parameters the same way (one table). With --steps-per-frame 32, --memory 3 and
# --lr 0.5 both train 32 steps per frame on the same clip, and say so in their
# metrics; --pause 1 takes no step in either.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
if [ -z "${DISPLAY:-}" ]; then
  command -v xvfb-run >/dev/null || { echo "SKIP: no DISPLAY and no xvfb-run (install xvfb)"; exit 77; }
  exec xvfb-run -a -s "-screen 0 1280x720x24" bash "$0" "$@"
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
case_ok()  { pass=$((pass+1)); echo "ok $1"; }
case_bad() { fail=$((fail+1)); echo "FAIL $1: $2" >&2; echo "FAIL $1"; }
CLIP="file:$DATA/asl_signer_a_320x240.y4m"
RUN=(--backend cpu --size 32x32 --source "$CLIP" --frames 4)

# field FILE KEY: the values of a numeric key, one per metrics line.
field() { sed -n "s/.*\"$2\":\([-0-9.e]*\).*/\1/p" "$1" | tr '\n' ' '; }

# both_modes NAME WANT_STEPS WANT_LAST_STEP ARGS...: run headless and in the
# window with ARGS; each metrics file must show WANT_STEPS per frame and end at
# step WANT_LAST_STEP.
both_modes() {
  local name=$1 want=$2 last=$3; shift 3
  for mode in headless window; do
    local extra=(); [ $mode = headless ] && extra=(--headless)
    local m="$T/$name-$mode.jsonl"
    if ! timeout 120 "$BIN" "${RUN[@]}" "${extra[@]}" --metrics "$m" "$@" 2>"$T/err"; then
      case_bad "${name}_$mode" "run failed: $(tail -2 "$T/err")"; continue
    fi
    local steps last_step
    steps=$(field "$m" steps_per_frame); last_step=$(field "$m" step | awk '{print $NF}')
    if [ "$steps" = "$(printf "$want %.0s" 1 2 3 4)" ] && [ "${last_step:-}" = "$last" ]; then
      case_ok "${name}_$mode"
    else
      case_bad "${name}_$mode" "steps per frame '$steps', last step '${last_step:-none}' (want $want each, last $last)"
    fi
  done
}

both_modes steps_per_frame_32 32 128 --steps-per-frame 32 --memory 3 --lr 0.5

# Paused, no step is taken: only frames with a step write a metrics line, and
# the weights saved at the end are still those of step 0.
for mode in headless window; do
  extra=(); [ $mode = headless ] && extra=(--headless)
  m="$T/pause-$mode.jsonl"
  if timeout 120 "$BIN" "${RUN[@]}" "${extra[@]}" --pause 1 --metrics "$m" \
       --save "$T/p1.safetensors" 2>"$T/err" &&
     [ -f "$m" ] && [ ! -s "$m" ] && grep -q "saved $T/p1.safetensors (step 0)" "$T/err"; then
    case_ok "pause_takes_no_step_$mode"
  else
    case_bad "pause_takes_no_step_$mode" "metrics $(wc -l < "$m" 2>/dev/null) lines; $(tail -2 "$T/err")"
  fi
done

# The same out-of-range value is refused the same way by both modes (exit 2).
for mode in headless window; do
  extra=(); [ $mode = headless ] && extra=(--headless)
  timeout 60 "$BIN" "${RUN[@]}" "${extra[@]}" --steps-per-frame 65 2>"$T/err"; rc=$?
  if [ $rc = 2 ] && grep -q "steps_per_frame = 65 is out of range (0 to 64)" "$T/err"; then
    case_ok "out_of_range_refused_$mode"
  else
    case_bad "out_of_range_refused_$mode" "exit $rc: $(cat "$T/err")"
  fi
done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
