# shellcheck shell=bash
# tests/lib.sh: named cases for the shell tests, the way tests/test.h does it
# for the C ones. Source it, write each case as a function, run them in order:
#
#   . "$(dirname "$0")/../lib.sh"      # or tests/lib.sh from tests/
#   good_run_writes_metrics() {
#     check test -s "$T/m.jsonl"        # a check: passes if the command does
#     [ "$n" = 12 ] && ok || bad "metrics has $n lines, want 12"
#   }
#   run_case good_run_writes_metrics  # prints "ok NAME" or "FAIL NAME"
#   finish                            # "N passed, N failed, N skipped" (cases)
#
# A failed check prints "FAIL [case]: what" on stderr; a case with one fails.
# A case that makes no check fails too (a test that cannot fail is no test).
# `bash test_x.sh NAME` runs that case only. skip_all REASON: the program
# cannot run here (exit 77); skip_case REASON (then return): this case cannot,
# the others still run. finish exits 1 if any case failed, 77 if all skipped.

_only=${1:-}
_n_pass=0 _n_fail=0 _n_skip=0 _n_ran=0
_case=main _checks=0 _bad=0 _skipped=0

ok() { _checks=$((_checks + 1)); }
bad() {
  _checks=$((_checks + 1)) _bad=$((_bad + 1))
  echo "FAIL [$_case]: $*" >&2
}
# check CMD...: one check, passing when CMD exits 0.
check() { if "$@"; then ok; else bad "$*"; fi; }

skip_case() { _skipped=1; echo "SKIP $_case: $*"; }
# A window test needs a display: with none, run this script again inside a
# virtual one (Xvfb), or skip when there is none to be had. Call as
# need_display "$@" before anything else runs.
need_display() {
  [ -n "${DISPLAY:-}" ] && return
  command -v xvfb-run >/dev/null || skip_all "no DISPLAY and no xvfb-run (install xvfb)"
  exec xvfb-run -a -s "-screen 0 1280x720x24" bash "$0" "$@"
}
# sample_run PID METRICS OUT: until PID ends, every 0.2 s append a line
# "metrics-lines rss-kB open-descriptors" to OUT (the soak tests' samples).
sample_run() {
  local pid=$1 metrics=$2 out=$3 rss fds lines
  while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    lines=$(wc -l < "$metrics" 2>/dev/null || echo 0)
    [ -n "$rss" ] && echo "$lines $rss $fds" >> "$out"
    sleep 0.2
  done
}
skip_all() { echo "SKIP: $*"; exit 77; }

# A temporary folder $T and a list $PIDS of background programs the test
# starts; at exit the programs get KILL_SIGNAL (default TERM) and $T goes.
tmp_and_pids() {
  T=$(mktemp -d)
  PIDS=()
  trap _tmp_and_pids_cleanup EXIT
}
_tmp_and_pids_cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -"${KILL_SIGNAL:-TERM}" "$p" 2>/dev/null; done
  rm -rf "$T"
}

# need_dummy_xorg_tools: skips the whole test, saying why, without what the
# monitor tests use: Xorg with the dummy driver, xrandr, xwininfo, xdotool,
# python3, and ffmpeg able to photograph the screen (x11grab).
need_dummy_xorg_tools() {
  local p
  for p in Xorg xrandr xwininfo xdotool ffmpeg python3; do
    command -v "$p" >/dev/null || skip_all "no $p (an X server with the dummy driver: install xserver-xorg-core, xserver-xorg-video-dummy, x11-xserver-utils, x11-utils, xdotool, ffmpeg)"
  done
  ffmpeg -hide_banner -devices 2>/dev/null | grep -q x11grab || skip_all "ffmpeg has no x11grab (to photograph the screen)"
}

# dummy_xorg: an X server with two monitors that can be plugged and unplugged
# (Xorg's dummy driver: outputs DUMMY0, DUMMY1 of 640x360 on a screen of at
# most 1280x360; xrandr --output DUMMY1 --off is a cable pulled). Xvfb gives
# GLFW one monitor only. Needs tmp_and_pids first; sets DISPLAY and XPID (the
# server ends before $T goes), and skips the whole test, saying why, where the
# server or its second output cannot be had. DUMMY1 has its mode but is off.
dummy_xorg() {
  cat >"$T/xorg.conf" <<'CONF'
Section "ServerFlags"
  Option "AutoAddDevices" "false"
  Option "AutoEnableDevices" "false"
  Option "DontVTSwitch" "true"
EndSection
Section "Device"
  Identifier "dev"
  Driver "dummy"
  VideoRam 65536
EndSection
Section "Monitor"
  Identifier "mon"
  HorizSync 1.0 - 2000.0
  VertRefresh 1.0 - 200.0
  Modeline "640x360" 18.00 640 664 728 816 360 363 368 372 -hsync +vsync
EndSection
Section "Screen"
  Identifier "scr"
  Device "dev"
  Monitor "mon"
  DefaultDepth 24
  SubSection "Display"
    Depth 24
    Modes "640x360"
    Virtual 1280 360
  EndSubSection
EndSection
CONF
  # -displayfd: the server picks a free display number itself and writes it
  # when it is ready (no race with xvfb-run -a in tests running alongside).
  Xorg -displayfd 3 -config "$T/xorg.conf" -noreset -nolisten tcp -logfile "$T/xorg.log" \
    >"$T/xorg.out" 2>&1 3>"$T/dpy" &
  XPID=$!
  trap 'kill "$XPID" 2>/dev/null; wait "$XPID"; _tmp_and_pids_cleanup' EXIT
  local i
  for ((i = 0; i < 100; i++)); do [ -s "$T/dpy" ] && break; kill -0 "$XPID" 2>/dev/null || break; sleep 0.1; done
  export DISPLAY=":$(tr -dc 0-9 <"$T/dpy")"
  xrandr >/dev/null 2>&1 || skip_all "the dummy X server did not start: $(grep -h -m2 '(EE)' "$T/xorg.log" "$T/xorg.out" 2>/dev/null | tr '\n' ' ')"
  xrandr --query | grep -q '^DUMMY1 ' || skip_all "the dummy driver has no second output (DUMMY1): xserver-xorg-video-dummy 0.4 or newer"
  xrandr --addmode DUMMY1 640x360 || skip_all "xrandr cannot give DUMMY1 a mode"
}

# run_case NAME: runs the function NAME as a case (unless another was asked for).
run_case() {
  local name=$1
  if [ -n "$_only" ] && [ "$_only" != "$name" ]; then return 0; fi
  _case=$name _checks=0 _bad=0 _skipped=0
  "$name"
  _n_ran=$((_n_ran + 1))
  if [ "$_bad" = 0 ] && [ "$_skipped" = 0 ] && [ "$_checks" = 0 ]; then
    echo "FAIL [$name]: the case made no check" >&2
    _bad=1
  fi
  if [ "$_bad" != 0 ]; then
    _n_fail=$((_n_fail + 1)); echo "FAIL $name"
  elif [ "$_skipped" != 0 ]; then
    _n_skip=$((_n_skip + 1)); echo "skip $name"
  else
    _n_pass=$((_n_pass + 1)); echo "ok $name"
  fi
  _case=main
}

finish() {
  if [ -n "$_only" ] && [ "$_n_ran" = 0 ]; then
    echo "no case named \"$_only\"" >&2
    exit 2
  fi
  echo "$_n_pass passed, $_n_fail failed, $_n_skip skipped"
  [ "$_n_fail" = 0 ] || exit 1
  if [ "$_n_ran" -gt 0 ] && [ "$_n_skip" = "$_n_ran" ]; then exit 77; fi
  exit 0
}
