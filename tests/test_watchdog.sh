#!/usr/bin/env bash
# test_watchdog.sh: why it exists: a gallery piece runs unattended; a wild
# setting (an lr turned all the way up) or a numerical accident must never
# kill it or leave it showing grey. The watchdog must roll a diverged network
# back to its last good weights and training must go on with finite losses;
# and the command line must write autosaves at the interval, keep only the
# newest, and resume from them.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CLIP="$DATA/asl_signer_a_320x240.y4m"
SMALL="--osc.port 0 --midi 0 --headless --backend cpu --width 48 --height 32 --channels 8,16 --autosave.minutes 0"

# Lines of the metrics whose loss is null (not finite), after line $2.
nulls_after() { tail -n +"$2" "$1" | grep -c '"loss":null'; }

nan_in_weights_rolls_back_and_training_goes_on() {
  TABULA_INJECT_NAN_AT_STEP=40 "$BIN" $SMALL --source pattern --frames 200 --metrics "$T/m.jsonl" \
    >"$T/out" 2>"$T/err"
  local rc=$?
  check [ "$rc" = 0 ]
  check grep -q "INJECT_NAN_AT_STEP" "$T/err"
  if grep -q "training diverged" "$T/err"; then ok; else bad "no rollback logged"; sed 's/^/    /' "$T/err" >&2; fi
  # Caught within one stats window (8 frames at 1 step a frame), well under a second.
  local at
  at=$(sed -n 's/.*training diverged ([^)]*) at step \([0-9]*\).*/\1/p' "$T/err" | head -1)
  [ -n "$at" ] && [ "$at" -le 56 ] && ok || bad "rolled back at step '$at' (NaN after step 40)"
  # Training goes on: 200 lines, and the last 100 losses are all finite.
  check [ "$(wc -l <"$T/m.jsonl")" = 200 ]
  [ "$(nulls_after "$T/m.jsonl" 101)" = 0 ] && ok || bad "non-finite losses after the rollback"
  tail -1 "$T/m.jsonl" | grep -q '"loss":[0-9]' && ok || bad "last loss not finite: $(tail -1 "$T/m.jsonl")"
}

exploding_lr_is_rolled_back_and_the_run_finishes() {
  [ -f "$CLIP" ] || { skip_case "no $CLIP"; return; }
  "$BIN" $SMALL --source "file:$CLIP" --frames 150 --lr 10 --clip 0 --momentum 0.999 \
    --train.rollback_lr_factor 0.5 --metrics "$T/x.jsonl" >"$T/out" 2>"$T/err"
  local rc=$?
  check [ "$rc" = 0 ]
  if grep -q "training diverged" "$T/err"; then ok; else bad "no rollback"; sed 's/^/    /' "$T/err" >&2; fi
  check grep -q "watchdog: lr 10 -> 5" "$T/err"
  check grep -q "^.*done: 150 frames" "$T/err"
  if grep -qiE 'segmentation|core dumped|CHECK\(' "$T/err"; then bad "crash text"; else ok; fi
}

autosaves_from_the_command_line_keep_and_resume() {
  local A="$T/as"
  "$BIN" --osc.port 0 --midi 0 --headless --backend cpu --width 48 --height 32 --channels 8,16 --source pattern --frames 3000 \
    --autosave.dir "$A" --autosave.minutes 0.002 --autosave.keep 2 >"$T/out" 2>"$T/err"
  check [ $? = 0 ]
  local n
  n=$(ls "$A" | grep -c '^auto-.*\.safetensors$')
  [ "$n" = 2 ] && ok || bad "$n autosaves in $A (keep 2): $(ls "$A")"
  [ "$(ls "$A" | wc -l)" = "$n" ] && ok || bad "other files left: $(ls "$A")"
  check grep -q "autosave: $A/auto-" "$T/err"
  # Resume: the architecture comes from the file (the flags ask for another).
  "$BIN" --osc.port 0 --midi 0 --headless --backend cpu --width 48 --height 32 --channels 4 --source pattern --frames 5 \
    --autosave.dir "$A" --autosave.minutes 0 --autosave.resume 1 >"$T/out" 2>"$T/err2"
  check [ $? = 0 ]
  if grep -q "resumed from autosave $A/auto-" "$T/err2"; then ok; else bad "no resume"; sed 's/^/    /' "$T/err2" >&2; fi
  check grep -q "step 3000" "$T/err2"
}

run_case nan_in_weights_rolls_back_and_training_goes_on
run_case exploding_lr_is_rolled_back_and_the_run_finishes
run_case autosaves_from_the_command_line_keep_and_resume
finish
