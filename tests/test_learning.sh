#!/usr/bin/env bash
# test_learning.sh: why it exists: learning to see is the whole point of
# tabula; every other test could pass with a network that no longer learns.
# A blank network must learn real footage: headless CPU runs at 128x128 with
# the default settings, 300 frames of each clip in ../shared/data; the mean PSNR
# of the last 10 frames must beat the first 10 by a clear margin.
# Measured (seeds 1-3, 2026-11): asl +11.3 dB (13.8 -> 25.1), hikers +7.1
# (14.0 -> 21.1), flower +11.3..11.9 (13.3 -> 25.1). The margins below leave room
# for rounding differences between machines, not for a network that stopped learning:
# a flat picture of the mean colour only reaches about 14 dB.
# TABULA_TEST_BACKEND=cuda runs the same cases on a GPU, by hand with the whole
# clips (bench/gpu_session.sh runs its own 300-frame CUDA-against-CPU check).
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
BACKEND=${TABULA_TEST_BACKEND:-cpu}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
learns() {  # clip min_gain min_final
  local clip=$1 gain=$2 final=$3
  if ! "$BIN" --headless --backend "$BACKEND" --size 128x128 --autosave.minutes 0 --frames 300 \
      --source "file:$DATA/$clip" --metrics "$T/m.jsonl" 2>"$T/err"; then
    bad "$clip: run failed"; cat "$T/err"; return
  fi
  read -r first last < <(awk -F'"psnr":' '{split($2,a,","); p[NR]=a[1]} END {
      for (i=1;i<=10;i++) f+=p[i]; for (i=NR-9;i<=NR;i++) l+=p[i]; printf "%.3f %.3f\n", f/10, l/10 }' "$T/m.jsonl")
  echo "$clip: PSNR first 10 frames $first dB, last 10 $last dB (want +$gain dB, >= $final dB)"
  if awk -v f="$first" -v l="$last" -v g="$gain" -v m="$final" 'BEGIN{exit !(l-f>=g && l>=m)}'; then
    ok
  else
    bad "$clip did not learn enough"
  fi
}
asl_signer_gains_9db_reaches_23db() { learns asl_signer_a_320x240.y4m 9 23; }
hikers_forest_gains_5_5db_reaches_19_5db() { learns hikers_forest_320x240.y4m 5.5 19.5; }
flower_timelapse_gains_9db_reaches_23db() { learns flower_timelapse_320x240.y4m 9 23; }

run_case asl_signer_gains_9db_reaches_23db
run_case hikers_forest_gains_5_5db_reaches_19_5db
run_case flower_timelapse_gains_9db_reaches_23db
finish
