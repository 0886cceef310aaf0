#!/usr/bin/env bash
# test_osc_window.sh: why it exists: OSC must play the window as it plays a
# headless run (main.c starts it for both), with the stock liblo tools an
# operator tries first (oscsend to play, oscdump to watch the status), and a
# port someone else holds must not stop the show. (test_osc.c checks the
# address space in detail and the headless program end to end.)
# 1. The window on a real clip: oscsend sets and nudges, the status bundles
#    oscdump receives show the new values, the event log has them from "osc",
#    and it listens on 127.0.0.1 only.
# 2. The port is taken: one line says so and the run goes on without OSC.
# 3. [osc] port = 0: no OSC at all.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_display "$@"
command -v oscsend >/dev/null && command -v oscdump >/dev/null || skip_all "no oscsend/oscdump (install liblo-tools)"
command -v ss >/dev/null || skip_all "no ss (install iproute2)"
tmp_and_pids
CLIP="file:$DATA/asl_signer_a_320x240.y4m"
RUN=(--backend cpu --size 32x32 --source "$CLIP" --steps-per-frame 1)
export OMP_NUM_THREADS=1

# A UDP port nobody listens on now.
free_port() {
  local p i
  for i in $(seq 100); do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -Hulnp "sport = :$p")" ] && { echo "$p"; return; }
  done
  echo 0
}

# wait_for SECS FILE PATTERN [PID]: until FILE has a line matching PATTERN
# (and PID, if given, still runs). 0 if it came.
wait_for() {
  local secs=$1 file=$2 pat=$3 pid=${4:-} i
  for ((i = 0; i < secs * 10; i++)); do
    grep -qE "$pat" "$file" 2>/dev/null && return 0
    [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && { grep -qE "$pat" "$file" 2>/dev/null; return; }
    sleep 0.1
  done
  return 1
}

window_plays_osc_from_liblo_tools() {
  local P Q tpid dpid rc
  P=$(free_port) Q=$(free_port)
  oscdump -L "$Q" >"$T/dump" 2>&1 &
  dpid=$!; PIDS+=("$dpid")
  # 300 frames of a 30 fps clip: at least ten seconds of window.
  "$BIN" "${RUN[@]}" --frames 300 --osc.port "$P" --osc.status_to "127.0.0.1:$Q" --osc.status_rate 20 \
    --events "$T/ev.jsonl" --metrics "$T/m.jsonl" 2>"$T/err" &
  tpid=$!; PIDS+=("$tpid")
  if ! wait_for 90 "$T/dump" '/tabula/status/frame f [1-9]' "$tpid"; then
    bad "no status with frames in 90 s: $(tail -3 "$T/err"); dump: $(tail -3 "$T/dump")"
    return
  fi
  local where; where=$(ss -Hulnp "sport = :$P")
  [[ "$where" == *"127.0.0.1:$P "* && "$where" != *"0.0.0.0:$P "* && "$where" != *"*:$P "* ]] && ok ||
    bad "not on loopback only: $where"
  oscsend 127.0.0.1 "$P" /tabula/param/lr f 0.5
  oscsend 127.0.0.1 "$P" /tabula/param/momentum s -
  oscsend 127.0.0.1 "$P" /tabula/action/reset i 7
  check wait_for 30 "$T/dump" '/tabula/param/lr f 0\.500000' "$tpid"
  check wait_for 30 "$T/dump" '/tabula/param/momentum f 0\.890000' "$tpid"
  wait "$tpid"; rc=$?
  [ "$rc" = 0 ] && ok || bad "window exit $rc: $(tail -3 "$T/err")"
  grep -q "osc: listening on 127.0.0.1:$P, status to 127.0.0.1:$Q at 20 Hz" "$T/err" && ok ||
    bad "no listening line: $(cat "$T/err")"
  grep -q "osc: 3 messages: 3 events, 0 ignored" "$T/err" && ok || bad "summary: $(grep 'osc:' "$T/err")"
  local want
  for want in '"source":"osc","param":"lr","value":0.5}' '"source":"osc","param":"momentum","value":0.89}' \
              '"source":"osc","action":"reset","value":7}'; do
    grep -qF "$want" "$T/ev.jsonl" && ok || bad "event log lacks $want: $(cat "$T/ev.jsonl")"
  done
  grep -q '"lr":0.5,"momentum":0.89,' "$T/m.jsonl" && ok || bad "no metrics line with lr 0.5, momentum 0.89"
}

port_taken_runs_on_without_osc() {
  local P dpid rc n
  P=$(free_port)
  oscdump "$P" >/dev/null 2>&1 &
  dpid=$!; PIDS+=("$dpid")
  sleep 0.3
  "$BIN" "${RUN[@]}" --headless --frames 6 --osc.port "$P" --metrics "$T/taken.jsonl" 2>"$T/err-taken"; rc=$?
  kill "$dpid" 2>/dev/null
  n=$(wc -l <"$T/taken.jsonl" 2>/dev/null)
  [ "$rc" = 0 ] && [ "$n" = 6 ] && ok || bad "exit $rc, $n metrics lines: $(cat "$T/err-taken")"
  [ "$(grep -c "osc: cannot listen on 127.0.0.1 port $P: Address already in use.*: running without OSC" "$T/err-taken")" = 1 ] &&
    ok || bad "want one clear line: $(grep osc "$T/err-taken")"
}

port_0_is_off() {
  "$BIN" "${RUN[@]}" --headless --frames 2 --osc.port 0 2>"$T/err-off" && ! grep -q "tabula: osc" "$T/err-off" && ok ||
    bad "$(cat "$T/err-off")"
}

run_case window_plays_osc_from_liblo_tools
run_case port_taken_runs_on_without_osc
run_case port_0_is_off
finish
