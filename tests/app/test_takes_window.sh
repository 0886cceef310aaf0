#!/usr/bin/env bash
# test_takes_window.sh: why it exists: an operator starts and stops takes
# during a show, from OSC (or MIDI, or F12: the same record action), while the
# window runs. Two takes started and stopped with oscsend
# /tabula/action/record: two folders named by the time in [record] dir, each
# a playable video.mkv and an events.jsonl that begins with its start and ends
# with its stop; the window keeps running and exits 0 on SIGTERM.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_display "$@"
command -v oscsend >/dev/null || skip_all "no oscsend (install liblo-tools)"
command -v ffprobe >/dev/null || skip_all "no ffprobe (install ffmpeg)"
command -v ss >/dev/null || skip_all "no ss (install iproute2)"
KILL_SIGNAL=KILL
tmp_and_pids
export OMP_NUM_THREADS=1

free_port() {
  local p i
  for i in $(seq 100); do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -Hulnp "sport = :$p")" ] && { echo "$p"; return; }
  done
  echo 0
}

# wait_count SECS FILE PATTERN N PID: until FILE has N lines matching PATTERN
# while PID runs. 0 if they came.
wait_count() {
  local secs=$1 file=$2 pat=$3 n=$4 pid=$5 i
  for ((i = 0; i < secs * 10; i++)); do
    [ "$(grep -cE "$pat" "$file" 2>/dev/null)" -ge "$n" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

two_takes_from_osc_in_the_window() {
  local P pid rc i d n first last
  P=$(free_port)
  "$BIN" --backend cpu --size 32x32 --source "file:$DATA/hikers_forest_320x240.y4m" --frames 100000 \
    --osc.port "$P" --midi 0 --autosave.minutes 0 --record.dir "$T/takes" --record.size 320x240 \
    --events "$T/ev.jsonl" 2>"$T/err" &
  pid=$!; PIDS+=("$pid")
  wait_count 90 "$T/err" "osc: listening" 1 "$pid" || { bad "no OSC in 90 s: $(tail -3 "$T/err")"; return; }
  wait_count 90 "$T/err" "live: source" 1 "$pid" || { bad "no window in 90 s: $(tail -3 "$T/err")"; return; }
  for i in 1 2; do
    oscsend 127.0.0.1 "$P" /tabula/action/record
    wait_count 30 "$T/err" "recording to $T/takes/" "$i" "$pid" || { bad "take $i did not start: $(tail -3 "$T/err")"; return; }
    sleep 1.5
    oscsend 127.0.0.1 "$P" /tabula/action/record f 1
    wait_count 30 "$T/err" "record: take $T/takes/.*ended: stopped" "$i" "$pid" ||
      { bad "take $i did not end: $(tail -3 "$T/err")"; return; }
  done
  kill -TERM "$pid"; wait "$pid"; rc=$?
  [ "$rc" = 0 ] && ok || bad "window exit $rc: $(tail -3 "$T/err")"
  n=$(find "$T/takes" -mindepth 1 -maxdepth 1 -type d | wc -l)
  [ "$n" = 2 ] && ok || bad "$n take folders: $(ls "$T/takes")"
  for d in "$T"/takes/*/; do
    n=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$d/video.mkv")
    [ "${n:-0}" -ge 20 ] && ok || bad "$d: video.mkv has ${n:-no} frames"
    first=$(head -1 "$d/events.jsonl") last=$(tail -1 "$d/events.jsonl")
    [[ "$first" == *'"source":"osc","action":"record","value":1}' && "$last" == *'"source":"osc","action":"record","value":0}' ]] &&
      ok || bad "$d: events.jsonl from '$first' to '$last'"
    grep -q '"end_reason": "stopped"' "$d/take.json" && ok || bad "$d: take.json $(cat "$d/take.json")"
  done
  [ "$(grep -c '"action":"record"' "$T/ev.jsonl")" = 4 ] && ok || bad "--events: $(cat "$T/ev.jsonl")"
}

run_case two_takes_from_osc_in_the_window
finish
