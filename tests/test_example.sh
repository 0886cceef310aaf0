#!/usr/bin/env bash
# test_example.sh: why it exists: examples/train_y4m.c is the first program a new
# engineer reads; it must build on the engine alone and really learn: on a real
# clip, the loss after 60 frames is well below the first frame's, and the
# weights it saves load back into tabula.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
EX="$(dirname "$BIN")/example_train_y4m"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
case_ok()  { pass=$((pass+1)); echo "ok $1"; }
case_bad() { fail=$((fail+1)); echo "FAIL $1: $2" >&2; echo "FAIL $1"; }

if "$EX" "$DATA/asl_signer_a_320x240.y4m" 60 "$T/ex.safetensors" > "$T/out" 2>&1; then
  first=$(awk '/^frame/{print $4; exit}' "$T/out"); last=$(awk '/^frame/{v=$4} END{print v}' "$T/out")
  if awk -v a="$first" -v b="$last" 'BEGIN{exit !(a > 0 && b > 0 && b < a / 2)}'; then
    case_ok example_learns_on_a_real_clip
  else
    case_bad example_learns_on_a_real_clip "loss $first -> $last (want less than half)"
  fi
else
  case_bad example_learns_on_a_real_clip "exit $?: $(tail -3 "$T/out")"
fi
if "$BIN" --headless --frames 2 --backend cpu --size 64x64 --source "file:$DATA/asl_signer_a_320x240.y4m" \
     --load "$T/ex.safetensors" 2>"$T/err"; then
  case_ok example_weights_load_in_tabula
else
  case_bad example_weights_load_in_tabula "$(tail -2 "$T/err")"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
