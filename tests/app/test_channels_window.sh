#!/usr/bin/env bash
# test_channels_window.sh: why it exists: [channels] in the window (README
# "Channels"): every network gets a pane beside the camera, and OSC's
# /tabula/ch/N/param/KEY plays channel N alone, as its metrics file shows.
# 1. Three channels (channel 1 a net at lr 0.5, channel 2 channel 0 as it was
#    a few seconds ago) on a real clip: the screenshot shows 4 panes in a row
#    (camera + 3), /tabula/ch/1/param/lr 0.05 reaches m.ch1.jsonl and the event
#    log (with "ch":1) and never m.jsonl.
# 2. layout = windows on one monitor (Xvfb has one): one line says the channels
#    stay panes, and no channel window opens (test_channels_windows.sh has the
#    multi-monitor cases).
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_display "$@"
command -v oscsend >/dev/null || skip_all "no oscsend (install liblo-tools)"
command -v ffmpeg >/dev/null || skip_all "no ffmpeg (to read the screenshot)"
tmp_and_pids
CLIP="file:$DATA/hikers_forest_320x240.y4m"
RUN=(--backend cpu --size 32x32 --channels 8,16 --source "$CLIP" --hud 0 --channel-count 3 --ch1.lr 0.5
     --ch2.kind history --ch2.minutes 0.05 --ch2.refresh_s 1)
export OMP_NUM_THREADS=1

# The panes in the screenshot: runs of columns with any lit pixel, at least
# 8 px wide (the gaps between panes are black from top to bottom).
count_panes() {
  local png=$1 w h
  IFS=, read -r w h < <(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 "$png")
  ffmpeg -v error -y -i "$png" -f rawvideo -pix_fmt gray "$T/shot.gray" || return 1
  python3 - "$T/shot.gray" "$w" "$h" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read(); w, h = int(sys.argv[2]), int(sys.argv[3])
lit = [max(data[y * w + x] for y in range(0, h, 2)) > 8 for x in range(w)]
runs, run = 0, 0
for v in lit + [False]:
    if v: run += 1
    else:
        if run >= 8: runs += 1
        run = 0
print(runs)
PY
}

panes_and_osc_per_channel() {
  local P=$((20000 + RANDOM % 30000)) tpid rc n i
  "$BIN" "${RUN[@]}" --frames 150 --osc.port "$P" --events "$T/ev.jsonl" --metrics "$T/m.jsonl" \
    --screenshot "$T/shot.png" 2>"$T/err" &
  tpid=$!; PIDS+=("$tpid")
  for ((i = 0; i < 900; i++)); do  # the first metrics lines: the window runs
    n=$(wc -l <"$T/m.ch1.jsonl" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 10 ] && break
    kill -0 "$tpid" 2>/dev/null || break
    sleep 0.1
  done
  oscsend 127.0.0.1 "$P" /tabula/ch/1/param/lr f 0.05
  wait "$tpid"; rc=$?
  [ "$rc" = 0 ] && ok || bad "window exit $rc: $(tail -3 "$T/err")"
  grep -q '"lr":0.05,' "$T/m.ch1.jsonl" && ok || bad "m.ch1.jsonl never has lr 0.05: $(tail -2 "$T/m.ch1.jsonl")"
  grep -q '"lr":0.5,' "$T/m.ch1.jsonl" && ok || bad "m.ch1.jsonl never had its own lr 0.5"
  ! grep -q '"lr":0.05,' "$T/m.jsonl" && grep -q '"lr":2,' "$T/m.jsonl" && ok || bad "channel 0's lr moved"
  [ ! -e "$T/m.ch2.jsonl" ] && ok || bad "a history channel takes no steps: no metrics file"
  grep -qF '"source":"osc","ch":1,"param":"lr","value":0.05}' "$T/ev.jsonl" && ok ||
    bad "event log: $(cat "$T/ev.jsonl")"
  grep -q "channel 2: channel 0 as it was" "$T/err" && ok || bad "no history line: $(grep channel "$T/err")"
  n=$(count_panes "$T/shot.png")
  [ "$n" = 4 ] && ok || bad "want 4 panes (camera + 3 channels), found $n"
}

windows_layout_falls_back_to_panes() {
  "$BIN" "${RUN[@]}" --frames 3 --channels.layout windows 2>"$T/err-w"; local rc=$?
  [ "$rc" = 0 ] && [ "$(grep -c '3 channels, 1 monitor: channels 1, 2 shown as panes in the main window' "$T/err-w")" = 1 ] &&
    ! grep -q 'fullscreen window' "$T/err-w" && ok || bad "exit $rc: $(grep -i display "$T/err-w")"
}

run_case panes_and_osc_per_channel
run_case windows_layout_falls_back_to_panes
finish
