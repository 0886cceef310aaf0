#!/usr/bin/env bash
# test_cli.sh: the headless command line: bad inputs give exit code 2 and one
# clear message; a good run writes metrics, --save and --save-init files.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*" >&2; }

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

# Usage errors.
expect 2 "unknown option --bogus" -- --bogus
expect 2 "needs --frames" -- --headless --source pattern
expect 2 "multiples of 16" -- $H --source pattern --size 250x256
expect 2 "is not WxH" -- $H --source pattern --size big
expect 2 "out of range" -- $H --source pattern --lr 99
expect 2 "unknown backend\|is not one of" -- $H --source pattern --backend tpu
expect 2 "this build has no CUDA backend\|no usable CUDA device\|CUDA" -- $H --source pattern --backend cuda
expect 2 "not a valid source\|unknown source\|source" -- $H --source nonsense:thing

# Bad Y4M: header, truncated frame.
printf 'NOT-A-Y4M W320 H240\n' > "$T/bad.y4m"
expect 2 "bad.y4m" -- $H --source "file:$T/bad.y4m"
head -c 50000 "$CLIP" > "$T/trunc.y4m"
expect 2 "trunc.y4m: truncated" -- $H --source "file:$T/trunc.y4m"
expect 2 "No such file" -- $H --source "file:$T/missing.y4m"

# Bad weights: garbage, truncated, wrong architecture.
echo "garbage garbage garbage garbage" > "$T/garbage.safetensors"
expect 2 "garbage.safetensors" -- $H --source pattern --load "$T/garbage.safetensors"
expect 2 "No such file" -- $H --source pattern --load "$T/none.safetensors"

# A good run: metrics per frame, --save-init and --save, then load and go on.
"$BIN" --headless --backend cpu --source "file:$CLIP" --size 64x64 --frames 12 --memory 2 \
  --metrics "$T/m.jsonl" --save "$T/w.safetensors" --save-init "$T/init.safetensors" 2>"$T/err"
rc=$?
[ $rc = 0 ] && ok || { bad "good run exit $rc"; cat "$T/err" >&2; }
[ "$(wc -l < "$T/m.jsonl")" = 12 ] && ok || bad "metrics has $(wc -l < "$T/m.jsonl") lines, want 12"
for k in frame step loss psnr grad_norm lr momentum clip step_ms fps backend; do
  grep -q "\"$k\":" "$T/m.jsonl" && ok || bad "metrics lacks $k"
done
head -1 "$T/m.jsonl" | grep -q '"frame":0,"step":1,' && ok || bad "first line: $(head -1 "$T/m.jsonl")"
grep -q "model tabula-ae-v1" "$T/err" && ok || bad "no model summary"
[ -s "$T/init.safetensors" ] && [ -s "$T/w.safetensors" ] && ok || bad "weights not written"
cmp -s "$T/init.safetensors" "$T/w.safetensors" && bad "init == final weights" || ok
head -c 3000 "$T/w.safetensors" > "$T/cut.safetensors"
expect 2 "cut.safetensors" -- $H --source pattern --size 64x64 --load "$T/cut.safetensors"
"$BIN" $H --source pattern --size 64x64 --load "$T/w.safetensors" 2>"$T/err" && ok || { bad "reload failed"; cat "$T/err" >&2; }
grep -q "step 12" "$T/err" && ok || bad "reload did not report step 12"
# Different channels: the file's architecture wins (self-describing).
"$BIN" $H --source pattern --size 64x64 --channels 4,8,8,8 --load "$T/w.safetensors" 2>"$T/err" && ok || bad "arch from file"
"$BIN" --help | grep -q -- "--steps-per-frame" && ok || bad "--help lacks --steps-per-frame"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
