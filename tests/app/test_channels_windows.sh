#!/usr/bin/env bash
# test_channels_windows.sh: why it exists: [channels] layout = windows (README
# "Channels", "A screen per channel"): a gallery with a monitor per network.
# Xvfb cannot give GLFW two monitors (GLFW 3.3 counts RandR outputs, Xvfb has
# one; +xinerama is ignored), so this starts its own X server with the dummy
# video driver (xserver-xorg-video-dummy), whose outputs DUMMY0..15 xrandr
# switches on and off like plugged cables: two 640x360 monitors side by side.
# 1. Two monitors, two channels: a fullscreen window on each monitor (X's own
#    window list), and the picture of the whole screen (x11grab) shows camera |
#    channel 0 on the left monitor and channel 1 alone, filling the right one's
#    height, with a picture of its own; a key pressed in channel 1's window
#    quits the run.
# 2. The right monitor unplugged while running: its window closes and channel 1
#    is a pane in the main window (four panes on the screen); plugged back in:
#    the window is back. Three channels: channel 2 stays a pane (one line).
# 3. One monitor: both channels as panes in the main window, with one line.
# 4. Monitors flapping, and channel 0's own monitor lost and back: the run
#    goes on and ends cleanly (an X error would end it: see display_windows.c).
# (test_channels_window.sh checks the one-monitor fallback under plain Xvfb.)
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_dummy_xorg_tools
tmp_and_pids
CLIP="file:$DATA/hikers_forest_320x240.y4m"
RUN=(--backend cpu --size 32x32 --channels 8,16 --source "$CLIP" --osc.port 0 --midi 0 --autosave.minutes 0
     --hud 0 --fullscreen 1 --channels.layout windows --ch1.lr 0.5 --metrics "$T/m.jsonl")
export OMP_NUM_THREADS=1

dummy_xorg  # two monitors of 640x360; DUMMY1 unplugged
# The query probes the outputs: until then the server still reports DUMMY1 as
# disconnected to clients that read its cached state, as GLFW does.
plug() { xrandr --output DUMMY1 --mode 640x360 --right-of DUMMY0 && xrandr --query >/dev/null; }
unplug() { xrandr --output DUMMY1 --off; }

# wait_for FILE PATTERN [COUNT]: until FILE has COUNT lines matching (10 s).
wait_for() {
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] && return 0
    sleep 0.1
  done
  return 1
}

# The whole screen in grey (x11grab), then the panes between columns X0 and X1:
# runs of columns with any lit pixel, at least 8 px wide (gaps are black from
# top to bottom). Prints "COUNT WIDTH..." and leaves $T/screen.gray.
screen_panes() {
  local w=$1 x0=$2 x1=$3
  ffmpeg -v error -y -f x11grab -video_size "${w}x360" -i "$DISPLAY" -frames:v 1 -f rawvideo -pix_fmt gray \
    "$T/screen.gray" || return 1
  python3 - "$T/screen.gray" "$w" 360 "$x0" "$x1" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read(); w, h, x0, x1 = map(int, sys.argv[2:6])
lit = [max(data[y * w + x] for y in range(0, h, 2)) > 8 for x in range(x0, x1)]
runs, run = [], 0
for v in lit + [False]:
    if v: run += 1
    else:
        if run >= 8: runs.append(run)
        run = 0
print(len(runs), *runs)
PY
}

# Mean |a - b| (grey, 0..255) between two screen regions x,y,w,h sampled on a
# 32x32 grid: how different two panes' pictures are.
pane_diff() {
  python3 - "$T/screen.gray" 1280 "$@" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read(); W = int(sys.argv[2])
a, b = list(map(int, sys.argv[3:7])), list(map(int, sys.argv[7:11]))
def at(r, i, j): return data[(r[1] + (j * r[3]) // 32 + r[3] // 64) * W + r[0] + (i * r[2]) // 32 + r[2] // 64]
print(round(sum(abs(at(a, i, j) - at(b, i, j)) for i in range(32) for j in range(32)) / 1024, 1))
PY
}

# start_run LOG [ARGS...]: tabula in the background until its windows are up
# and channel 1 has trained a few frames; TPID is its process.
start_run() {
  local log=$1; shift
  rm -f "$T"/m*.jsonl
  "$BIN" "${RUN[@]}" --frames 100000 "$@" 2>"$log" &
  TPID=$!; PIDS+=("$TPID")
  local i n
  for ((i = 0; i < 300; i++)); do
    n=$(cat "$T/m.ch1.jsonl" 2>/dev/null | wc -l)
    [ "$n" -ge 10 ] && break
    kill -0 "$TPID" 2>/dev/null || break
    sleep 0.1
  done
  sleep 0.5  # a few more draws after the first frames
}

# stop_run LOG: SIGTERM, a clean exit (0) within 10 s.
stop_run() {
  local i
  kill -TERM "$TPID" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
  wait "$TPID"; local rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc: $(tail -3 "$1")"
}

two_monitors_two_windows() {
  plug
  start_run "$T/err1" --channel-count 2 --layout side
  grep -q "channel 1 in a fullscreen window on 'DUMMY1' (640x360 at 640,0)" "$T/err1" && ok ||
    bad "no window on DUMMY1: $(grep display "$T/err1")"
  ! grep -q 'shown as' "$T/err1" && ok || bad "a pane fallback with enough monitors: $(grep 'shown as' "$T/err1")"
  # X's own list: each window covers its monitor.
  local tree; tree=$(xwininfo -root -tree)
  grep -q '"tabula": .* 640x360+0+0' <<<"$tree" && ok || bad "main window not on DUMMY0: $(grep tabula <<<"$tree")"
  grep -q '"tabula ch 1": .* 640x360+640+0' <<<"$tree" && ok || bad "channel window not on DUMMY1: $(grep tabula <<<"$tree")"
  # The screen: side layout on the left (camera | channel 0: two panes of 317 px),
  # channel 1 alone on the right (32x32 fills the height: one pane of 360 px).
  local left right; left=$(screen_panes 1280 0 640) right=$(screen_panes 1280 640 1280)
  [ "${left%% *}" = 2 ] && ok || bad "left monitor: want 2 panes, found: $left"
  [[ "$right" =~ ^1\ 3(59|60|61)$ ]] && ok || bad "right monitor: want one pane 360 px wide, found: $right"
  # Channel 1 (lr 0.5) against channel 0 (lr 2), each at its pane: side in
  # 640x360 (compose_panes) puts channel 0 at 322,21 (317 px square), channel
  # 1's window at 140,0 of its monitor (360 px). Measured: 23.5-25.5 grey
  # levels apart; channel 0's texture drawn in that window instead: 0.7.
  local d; d=$(pane_diff 322 21 317 317 780 0 360 360)
  echo "channel 0 vs channel 1 window: mean grey difference $d"
  python3 -c "import sys; sys.exit(0 if float('$d') > 5 else 1)" && ok ||
    bad "channel 1's window shows channel 0's picture (mean difference $d)"
  # A key pressed in channel 1's window reaches the run: Q quits.
  xdotool key --window "$(xdotool search --name 'tabula ch 1' | head -1)" q
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
  wait "$TPID"; local rc=$?
  [ "$rc" = 0 ] && ok || bad "Q in channel 1's window: exit $rc (or still running): $(tail -2 "$T/err1")"
}

unplugged_monitor_gives_its_channel_back() {
  plug
  start_run "$T/err2" --channel-count 3 --layout side
  [ "$(grep -c 'display: 3 channels, 2 monitors: channel 2 shown as a pane in the main window' "$T/err2")" = 1 ] &&
    ok || bad "no line for channel 2's pane: $(grep display "$T/err2")"
  local s; s=$(screen_panes 1280 0 640)
  [ "${s%% *}" = 3 ] && ok || bad "plugged: left monitor wants camera | ch 0 | ch 2, found: $s"
  unplug
  wait_for "$T/err2" "channel 1's monitor is gone: it is a pane in the main window again" && ok ||
    bad "unplugged: no line: $(grep display "$T/err2")"
  sleep 0.5
  ! xwininfo -root -tree | grep -q '"tabula ch 1"' && ok || bad "unplugged: channel 1's window still exists"
  s=$(screen_panes 640 0 640)  # the screen is one monitor wide now
  [ "${s%% *}" = 4 ] && ok || bad "unplugged: want camera | ch 0 | ch 1 | ch 2, found: $s"
  plug
  wait_for "$T/err2" "channel 1 in a fullscreen window on 'DUMMY1'" 2 && ok ||
    bad "plugged back: no window: $(grep display "$T/err2")"
  sleep 0.5
  xwininfo -root -tree | grep -q '"tabula ch 1": .* 640x360+640+0' && ok || bad "plugged back: no window on DUMMY1"
  s=$(screen_panes 1280 0 640)
  [ "${s%% *}" = 3 ] && ok || bad "plugged back: left monitor wants 3 panes again, found: $s"
  kill -0 "$TPID" 2>/dev/null && ok || bad "the run ended: $(tail -3 "$T/err2")"
  stop_run "$T/err2"
}

one_monitor_panes() {
  unplug
  start_run "$T/err3" --channel-count 2
  [ "$(grep -c 'display: 2 channels, 1 monitor: channel 1 shown as a pane in the main window' "$T/err3")" = 1 ] &&
    ok || bad "no fallback line: $(grep display "$T/err3")"
  ! grep -q 'fullscreen window' "$T/err3" && ok || bad "a channel window with one monitor"
  local s; s=$(screen_panes 640 0 640)
  [ "${s%% *}" = 3 ] && ok || bad "want camera | ch 0 | ch 1, found: $s"
  stop_run "$T/err3"
}

# A projector in standby flaps its cable's hot-plug line: 20 quick unplugs and
# plugs, then channel 0's own monitor goes (channel 0 takes the other one, from
# channel 1) and comes back (channel 1 gets it). The show never stops.
# (Channel windows made as GLFW fullscreen windows died here in 3 runs of 3,
# on an X error from RRSetCrtcConfig; the undecorated ones pass.)
flapping_monitors_never_end_the_show() {
  plug
  start_run "$T/err4" --channel-count 2
  local k
  for ((k = 0; k < 20; k++)); do
    unplug; sleep "0.0$((RANDOM % 9))"; plug; sleep "0.0$((RANDOM % 9))"
  done
  wait_for "$T/err4" "channel 1 in a fullscreen window on 'DUMMY1'" 2 && ok || bad "no window after the flapping"
  xrandr --output DUMMY1 --pos 0x0 && xrandr --output DUMMY0 --off && xrandr --query >/dev/null
  wait_for "$T/err4" "the main window's monitor is gone: channel 0 moves to 'DUMMY1'" && ok ||
    bad "channel 0 did not move: $(grep display "$T/err4" | tail -3)"
  sleep 0.5
  local tree; tree=$(xwininfo -root -tree)
  grep -q '"tabula": .* 640x360+0+0' <<<"$tree" && ! grep -q '"tabula ch 1"' <<<"$tree" && ok ||
    bad "channel 0 alone on DUMMY1 wanted: $(grep tabula <<<"$tree")"
  xrandr --output DUMMY0 --mode 640x360 --right-of DUMMY1 && xrandr --query >/dev/null
  wait_for "$T/err4" "channel 1 in a fullscreen window on 'DUMMY0' (640x360 at 640,0)" && ok ||
    bad "channel 1 did not get DUMMY0: $(grep display "$T/err4" | tail -3)"
  kill -0 "$TPID" 2>/dev/null && ok || bad "the run ended: $(tail -3 "$T/err4")"
  stop_run "$T/err4"
  xrandr --output DUMMY0 --pos 0x0 && xrandr --output DUMMY1 --right-of DUMMY0  # as the other cases expect
}

run_case two_monitors_two_windows
run_case unplugged_monitor_gives_its_channel_back
run_case one_monitor_panes
run_case flapping_monitors_never_end_the_show
finish
