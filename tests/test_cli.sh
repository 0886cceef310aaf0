#!/usr/bin/env bash
# test_cli.sh: why it exists: the headless command line is how tabula runs in
# scripts, on servers and in the benchmarks. A typo in a flag or a bad file
# must end with exit code 2 and one clear message (never a crash or a silent
# run), and a good run must write the metrics, --save and --save-init files
# that a later run can load and continue from.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# expect CODE PATTERN -- ARGS: runs tabula, checks the exit code and that stderr
# has PATTERN and no crash signature.
expect() {
  local code=$1 pat=$2; shift 3
  "$BIN" "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" != "$code" ]; then bad "exit $rc (want $code): tabula $*"; sed 's/^/    /' "$T/err" >&2; return; fi
  if ! grep -q -- "$pat" "$T/err"; then bad "no \"$pat\" in stderr of: tabula $*"; sed 's/^/    /' "$T/err" >&2; return; fi
  if grep -qiE 'segmentation|core dumped|CHECK\(' "$T/err"; then bad "crash text: tabula $*"; return; fi
  ok
}

CLIP="$DATA/asl_signer_a_320x240.y4m"
H="--headless --backend cpu --frames 3"

# A good run, once for the cases that read what it wrote: metrics per frame,
# --save-init and --save. Its exit code in $good_rc, its stderr in good.err.
good_rc=
good_run() {
  [ -n "$good_rc" ] && return
  "$BIN" --headless --backend cpu --source "file:$CLIP" --size 64x64 --frames 12 --memory 2 \
    --metrics "$T/m.jsonl" --save "$T/w.safetensors" --save-init "$T/init.safetensors" 2>"$T/good.err"
  good_rc=$?
}

bad_flags_exit_2_naming_the_problem() {
  expect 2 "unknown option --bogus" -- --bogus
  expect 2 "needs --frames" -- --headless --source pattern
  expect 2 "multiples of 16" -- $H --source pattern --size 250x256
  expect 2 "is not WxH" -- $H --source pattern --size big
  expect 2 "out of range" -- $H --source pattern --lr 99
  expect 2 "unknown backend\|is not one of" -- $H --source pattern --backend tpu
  expect 2 "this build has no CUDA backend\|no usable CUDA device\|CUDA" -- $H --source pattern --backend cuda
  expect 2 "not a valid source\|unknown source\|source" -- $H --source nonsense:thing
}

# Bad Y4M: header, truncated frame, missing file.
bad_clips_exit_2_naming_the_file() {
  printf 'NOT-A-Y4M W320 H240\n' > "$T/bad.y4m"
  expect 2 "bad.y4m" -- $H --source "file:$T/bad.y4m"
  head -c 50000 "$CLIP" > "$T/trunc.y4m"
  expect 2 "trunc.y4m: truncated" -- $H --source "file:$T/trunc.y4m"
  expect 2 "No such file" -- $H --source "file:$T/missing.y4m"
}

# Bad weights: garbage, missing.
bad_weights_exit_2_naming_the_file() {
  echo "garbage garbage garbage garbage" > "$T/garbage.safetensors"
  expect 2 "garbage.safetensors" -- $H --source pattern --load "$T/garbage.safetensors"
  expect 2 "No such file" -- $H --source pattern --load "$T/none.safetensors"
}

# Settings each in range that cannot make a network together: the error says
# where they were set (file and line, or the flag), before anything starts.
sizes_and_model_errors_name_file_and_line() {
  printf '[train]\n# a size the four stride-2 layers cannot halve\nwidth = 100\n' > "$T/size.ini"
  expect 2 "size.ini:3: training size 100x256: width and height must be positive multiples of 16" -- \
    $H --source pattern --config "$T/size.ini"
  printf '[model]\nstride = 4\n[train]\nwidth = 32\nheight = 32\n' > "$T/model.ini"
  expect 2 "model.ini:4, .*model.ini:5, .*model.ini:2: training size 32x32: .*multiples of 256" -- \
    $H --source pattern --config "$T/model.ini"
  expect 2 "^.*--size: training size 48x40" -- $H --source pattern --config "$T/size.ini" --size 48x40
  expect 2 "\-\-width, --height, .*model.ini:2: training size 64x48" -- \
    $H --source pattern --config "$T/model.ini" --width 64 --height 48
}

good_run_exits_0_and_prints_the_model() {
  good_run
  [ $good_rc = 0 ] && ok || { bad "good run exit $good_rc"; cat "$T/good.err" >&2; }
  grep -q "model tabula-ae-v1" "$T/good.err" && ok || bad "no model summary"
}

metrics_one_line_per_frame_with_every_field() {
  good_run
  [ "$(wc -l < "$T/m.jsonl")" = 12 ] && ok || bad "metrics has $(wc -l < "$T/m.jsonl") lines, want 12"
  for k in frame step loss psnr grad_norm lr momentum clip step_ms fps backend; do
    grep -q "\"$k\":" "$T/m.jsonl" && ok || bad "metrics lacks $k"
  done
  head -1 "$T/m.jsonl" | grep -q '"frame":0,"step":1,' && ok || bad "first line: $(head -1 "$T/m.jsonl")"
}

save_init_and_save_write_different_weights() {
  good_run
  [ -s "$T/init.safetensors" ] && [ -s "$T/w.safetensors" ] && ok || bad "weights not written"
  cmp -s "$T/init.safetensors" "$T/w.safetensors" && bad "init == final weights" || ok
}

truncated_weights_exit_2_naming_the_file() {
  good_run
  head -c 3000 "$T/w.safetensors" > "$T/cut.safetensors"
  expect 2 "cut.safetensors" -- $H --source pattern --size 64x64 --load "$T/cut.safetensors"
}

reload_continues_at_step_12() {
  good_run
  "$BIN" $H --source pattern --size 64x64 --load "$T/w.safetensors" 2>"$T/err" && ok || { bad "reload failed"; cat "$T/err" >&2; }
  grep -q "step 12" "$T/err" && ok || bad "reload did not report step 12"
}

# Different channels: the file's architecture wins (self-describing).
architecture_comes_from_the_file() {
  good_run
  "$BIN" $H --source pattern --size 64x64 --channels 4,8,8,8 --load "$T/w.safetensors" 2>"$T/err" && ok || bad "arch from file"
}

# A world (trained on a transformed input) brings its transform back on --load;
# one naming a transform this tabula does not know is exit 2 naming the file.
world_transform_loads_and_unknown_exits_2() {
  "$BIN" $H --source pattern --size 64x64 --transform grey --blur 4 --jitter 0.1 \
    --save "$T/world.safetensors" 2>"$T/err" && ok || { bad "a grey world did not train"; cat "$T/err" >&2; }
  "$BIN" $H --source pattern --size 64x64 --load "$T/world.safetensors" 2>"$T/err"
  grep -q "input transform grey, blur 4, jitter 0.1" "$T/err" && ok || { bad "the file's transform not set"; cat "$T/err" >&2; }
  perl -pe 's/"grey"/"gray"/' "$T/world.safetensors" > "$T/gray.safetensors"
  expect 2 "gray.safetensors.*\"gray\"" -- $H --source pattern --size 64x64 --load "$T/gray.safetensors"
}

help_lists_steps_per_frame() {
  "$BIN" --help | grep -q -- "--steps-per-frame" && ok || bad "--help lacks --steps-per-frame"
}

run_case bad_flags_exit_2_naming_the_problem
run_case bad_clips_exit_2_naming_the_file
run_case bad_weights_exit_2_naming_the_file
run_case sizes_and_model_errors_name_file_and_line
run_case good_run_exits_0_and_prints_the_model
run_case metrics_one_line_per_frame_with_every_field
run_case save_init_and_save_write_different_weights
run_case truncated_weights_exit_2_naming_the_file
run_case reload_continues_at_step_12
run_case architecture_comes_from_the_file
run_case world_transform_loads_and_unknown_exits_2
run_case help_lists_steps_per_frame
finish
