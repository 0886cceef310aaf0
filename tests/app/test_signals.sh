#!/usr/bin/env bash
# test_signals.sh: why it exists: a gallery machine is stopped by systemctl
# (SIGTERM), a terminal by Ctrl+C (SIGINT), a session logout by SIGHUP. Each must
# end the run as quitting does: --save and --screenshot written, the metrics
# lines complete, exit 0, within a couple of seconds.
set -u
. "$(dirname "$0")/../lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
need_display "$@"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
RUN=(--backend cpu --size 32x32 --source "file:$DATA/asl_signer_a_320x240.y4m" --frames 100000)

# stop_with SIG MODE: start a run, wait for its first metrics lines, send SIG,
# and check what it leaves behind.
stop_with() {
  local sig=$1 mode=$2 extra=() pid rc i
  [ "$mode" = headless ] && extra=(--headless) || extra=(--screenshot "$T/$sig.png")
  rm -f "$T/m.jsonl" "$T/w.safetensors"
  "$BIN" "${RUN[@]}" "${extra[@]}" --metrics "$T/m.jsonl" --save "$T/w.safetensors" 2>"$T/err" &
  pid=$!
  for i in $(seq 200); do [ -s "$T/m.jsonl" ] && break; sleep 0.05; done
  sleep 0.3
  local t0; t0=$(date +%s.%N)
  kill -"$sig" "$pid"
  wait "$pid"; rc=$?
  local dt; dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
  [ "$rc" = 0 ] && ok || bad "$mode $sig: exit $rc: $(tail -2 "$T/err")"
  awk -v d="$dt" 'BEGIN{exit !(d < 3)}' && ok || bad "$mode $sig: took $dt s to stop"
  grep -q "saved $T/w.safetensors (step [1-9]" "$T/err" && [ -s "$T/w.safetensors" ] && ok ||
    bad "$mode $sig: weights not saved: $(tail -3 "$T/err")"
  # Every metrics line is whole (a JSON object ending in "}").
  [ -s "$T/m.jsonl" ] && ! grep -qv '}$' "$T/m.jsonl" && ok || bad "$mode $sig: a metrics line is cut"
  if [ "$mode" = window ]; then [ -s "$T/$sig.png" ] && ok || bad "window $sig: no screenshot"; fi
}

sigterm_headless_saves_and_exits_0() { stop_with TERM headless; }
sigint_headless_saves_and_exits_0() { stop_with INT headless; }
sighup_headless_saves_and_exits_0() { stop_with HUP headless; }
sigterm_window_saves_screenshot_and_exits_0() { stop_with TERM window; }

run_case sigterm_headless_saves_and_exits_0
run_case sigint_headless_saves_and_exits_0
run_case sighup_headless_saves_and_exits_0
run_case sigterm_window_saves_screenshot_and_exits_0
finish
