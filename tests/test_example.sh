#!/usr/bin/env bash
# test_example.sh: why it exists: examples/train_y4m.c is the first program a new
# engineer reads; it must build on the engine alone and really learn: on a real
# clip, the loss after 60 frames is well below the first frame's, and the
# weights it saves load back into tabula.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
EX="$(dirname "$BIN")/example_train_y4m"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

example_learns_on_a_real_clip() {
  if ! "$EX" "$DATA/asl_signer_a_320x240.y4m" 60 "$T/ex.safetensors" > "$T/out" 2>&1; then
    bad "exit $?: $(tail -3 "$T/out")"; return
  fi
  local first last
  first=$(awk '/^frame/{print $4; exit}' "$T/out"); last=$(awk '/^frame/{v=$4} END{print v}' "$T/out")
  awk -v a="$first" -v b="$last" 'BEGIN{exit !(a > 0 && b > 0 && b < a / 2)}' && ok ||
    bad "loss $first -> $last (want less than half)"
}

example_weights_load_in_tabula() {
  check "$BIN" --headless --frames 2 --backend cpu --size 64x64 \
    --source "file:$DATA/asl_signer_a_320x240.y4m" --load "$T/ex.safetensors"
}

run_case example_learns_on_a_real_clip
run_case example_weights_load_in_tabula
finish
