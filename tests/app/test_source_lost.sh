#!/usr/bin/env bash
# test_source_lost.sh: why it exists: a camera that fails in a gallery (a pulled
# cable, a driver that stops sending) must not teach the network its last frozen
# frame for hours. While the source is lost, training pauses and the window
# keeps running; when the source returns, training goes on by itself.
# The fault is real, not a hook: an image folder whose files are moved away
# fails to read (LOST), and reopens when they are back (OK). The metrics file
# has one line per trained frame, so its length says whether training moved.
set -u
. "$(dirname "$0")/../lib.sh"
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
need_display "$@"
T=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$T"' EXIT
PID=
mkdir -p "$T/imgs" "$T/away"
i=0
for f in "$DATA"/photos_nature/*.jpg; do
  cp "$f" "$T/imgs/"; i=$((i + 1)); [ $i -ge 3 ] && break
done

lines() { [ -f "$T/m.jsonl" ] && wc -l <"$T/m.jsonl" || echo 0; }
# wait_for SECONDS CMD...: poll until CMD succeeds; 1 if it never did.
wait_for() {
  local n=$(($1 * 20)) i; shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.05; done
  return 1
}
logged() { grep -q "$1" "$T/err"; }
trained_more_than() { [ "$(lines)" -gt "$1" ]; }

ok_lost_paused_ok() {
  "$BIN" --backend cpu --size 32x32 --source "dir:$T/imgs" --fps 20 --hud 1 \
    --metrics "$T/m.jsonl" 2>"$T/err" &
  PID=$!
  wait_for 30 trained_more_than 5 && ok || { bad "never trained: $(tail -3 "$T/err")"; return; }

  mv "$T"/imgs/* "$T/away/"
  wait_for 10 logged "source lost" && ok || { bad "not lost: $(tail -3 "$T/err")"; return; }
  sleep 0.3  # a frame already handed over may still be trained on
  local n0 n1
  n0=$(lines)
  sleep 1.5
  n1=$(lines)
  echo "lost: $n0 -> $n1"; [ "$n1" = "$n0" ] && ok || bad "trained $((n1 - n0)) frames while the source was lost"

  mv "$T"/away/* "$T/imgs/"
  wait_for 10 logged "reopened" && ok || { bad "not reopened: $(tail -3 "$T/err")"; return; }
  wait_for 10 trained_more_than "$((n1 + 5))" && ok || bad "training did not resume ($(lines) lines)"
  kill -TERM "$PID"
  wait "$PID"
  local rc=$?
  PID=
  [ "$rc" = 0 ] && ok || bad "exit $rc after SIGTERM: $(tail -2 "$T/err")"
}

run_case ok_lost_paused_ok
finish
