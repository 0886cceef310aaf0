#!/usr/bin/env bash
# test_cuda_require.sh: why it exists: on the machine lent for GPU checks, a
# broken CUDA setup (a driver too old for the runtime, no device, cuDNN
# missing) must not read as "skipped": bench/gpu_session.sh sets
# TABULA_REQUIRE_CUDA=1, and then test_cuda_parity fails, naming the cause.
# Without it, a machine with no GPU skips (77) with the same reason. Runs here,
# where there is no GPU; on a machine with a usable one it skips.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
PAR="$(dirname "$BIN")/test_cuda_parity"
[ -x "$PAR" ] || skip_all "no test_cuda_parity beside $BIN"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# One cheap case of the parity test; main checks the GPU before any case runs.
env -u TABULA_REQUIRE_CUDA "$PAR" tf32_off >"$T/skip.out" 2>"$T/skip.err"
SKIP_RC=$?
[ "$SKIP_RC" = 0 ] && skip_all "a usable GPU is here: the no-GPU paths cannot be shown"
REASON=$(sed -n 's/^SKIP: //p' "$T/skip.out")

without_require_it_skips_with_the_reason() {
  [ "$SKIP_RC" = 77 ] && ok || bad "exit $SKIP_RC (want 77): $(cat "$T/skip.out" "$T/skip.err")"
  [ -n "$REASON" ] && ok || bad "no \"SKIP: reason\" line in: $(cat "$T/skip.out")"
}

with_require_it_fails_naming_the_cause() {
  TABULA_REQUIRE_CUDA=1 "$PAR" tf32_off >"$T/req.out" 2>"$T/req.err"; local rc=$?
  [ "$rc" = 1 ] && ok || bad "exit $rc (want 1): $(cat "$T/req.out" "$T/req.err")"
  grep -q "^SKIP" "$T/req.out" && bad "it still says SKIP: $(cat "$T/req.out")" || ok
  grep -qF "FAIL: TABULA_REQUIRE_CUDA=1 but $REASON" "$T/req.err" && ok ||
    bad "the failure does not name the cause \"$REASON\": $(cat "$T/req.err")"
}

# The cause named is this machine's: no driver at all here (no
# /proc/driver/nvidia), else one of the others.
the_cause_is_this_machines() {
  if [ "$REASON" = "built without the CUDA backend" ]; then
    skip_case "built without the CUDA backend (the reason given, checked above)"; return
  fi
  if [ ! -e /proc/driver/nvidia/version ]; then
    echo "$REASON" | grep -q "no NVIDIA driver is loaded" && ok || bad "no driver here, the reason says: $REASON"
  else
    echo "$REASON" | grep -qE "too old for the CUDA|no CUDA device found|no code for it|cuDNN" && ok ||
      bad "no known cause in: $REASON"
  fi
}

run_case without_require_it_skips_with_the_reason
run_case with_require_it_fails_naming_the_cause
run_case the_cause_is_this_machines
finish
