#!/usr/bin/env bash
# test_schedule_window.sh: why it exists: opening hours are for the window in a
# gallery, and only the real window shows whether closed means closed: a black
# screen (no picture, no HUD), no training, few redraws, and systemd's watchdog
# still fed (else it would kill the show every night); that the open hours
# still train as before; and that an empty room ([presence]) stops the steps of
# the window's training thread, not its frames. Runs under Xvfb with the CPU
# backend on the pattern.
set -u
BIN=${TABULA_BIN:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_display "$@"
PY=/usr/bin/python3
$PY -c "import PIL" 2>/dev/null || skip_all "/usr/bin/python3 has no PIL (install python3-pil)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
RUN=(--backend cpu --size 32x32 --source pattern --hud 1 --autosave.minutes 0 --midi 0 --osc.port 0)

# Run tabula for SECS seconds after it says READY=1 (its first frame is on the
# screen: start-up time on a loaded machine does not count), then SIGTERM (as
# systemd stops it), collecting what it tells NOTIFY_SOCKET into $T/msgs; exit
# status as tabula's. No READY=1 within 60 s: stopped then.
cat > "$T/run.py" <<'PYEOF'
import os, signal, socket, subprocess, sys, time
secs, path, out, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.05)
p = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=path))
msgs, t0, ready = [], time.time(), False
while p.poll() is None:
    if time.time() - t0 > (secs if ready else 60):
        p.send_signal(signal.SIGTERM)
        t0 = 1e18
    try:
        m = s.recv(4096).decode().strip()
        msgs.append(m)
        if m == "READY=1" and not ready:
            ready, t0 = True, time.time()
    except socket.timeout:
        pass
open(out, "w").write("\n".join(msgs) + "\n")
sys.exit(p.returncode)
PYEOF

# A range that closed a minute ago (it may run past midnight) and one that is open now.
closed_hours() { echo "$(date -d '-61 min' +%H:%M)-$(date -d '-1 min' +%H:%M)"; }
open_hours() { echo "$(date -d '-60 min' +%H:%M)-$(date -d '+60 min' +%H:%M)"; }

closed_hours_show_black_and_train_nothing() {
  local hours; hours=$(closed_hours)
  $PY "$T/run.py" 4 "$T/sock" "$T/msgs" "$BIN" "${RUN[@]}" --schedule.hours "$hours" --frames 50 \
    --screenshot "$T/closed.png" 2>"$T/err"
  local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc: $(tail -3 "$T/err")"; return; }
  grep -q "schedule: closed, a black screen and no training until .*(hours $hours" "$T/err" && ok ||
    bad "no closed line: $(grep schedule "$T/err")"
  local sum; sum=$(grep "live summary" "$T/err")
  echo "$sum" | grep -q " 0 trained, 0 steps" && ok || bad "trained while closed: $sum"
  # Low power: a few redraws a second (6), not the monitor's rate.
  local fps; fps=$(echo "$sum" | sed -n 's/.*display \([0-9.]*\) fps.*/\1/p')
  awk -v f="$fps" 'BEGIN{exit !(f > 2 && f < 10)}' && ok || bad "display $fps fps while closed (want about 6)"
  # Black: every pixel, HUD included (it is on in RUN).
  local nonblack
  nonblack=$($PY -c "
from PIL import Image
im = Image.open('$T/closed.png').convert('RGB')
print(sum(1 for p in im.getdata() if max(p) > 8))")
  [ "$nonblack" = 0 ] && ok || bad "$nonblack pixels not black in the closed screenshot"
  if ldd "$BIN" | grep -q libsystemd; then
    local nw; nw=$(grep -c "^WATCHDOG=1$" "$T/msgs")
    [ "$nw" -ge 4 ] && ok || bad "$nw WATCHDOG=1 in 4 s closed (want them to go on)"
  fi
}

open_hours_train_as_before() {
  local hours; hours=$(open_hours)
  timeout 120 "$BIN" "${RUN[@]}" --schedule.hours "$hours" --frames 20 2>"$T/err"
  local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc: $(tail -3 "$T/err")"; return; }
  grep -q "schedule: open until " "$T/err" && ok || bad "no open line: $(grep schedule "$T/err")"
  grep "live summary" "$T/err" | grep -q " 20 trained, 20 steps" && ok || bad "$(grep "live summary" "$T/err")"
}

# [presence] in the window: the pattern moves little (about 0.03), so with a
# threshold of 0.5 the room is empty after half a second: one line, and the
# steps stop while frames go on.
presence_pauses_in_the_window() {
  timeout 120 "$BIN" "${RUN[@]}" --presence.mode pause --presence.threshold 0.5 --presence.after_s 0.5 \
    --frames 60 2>"$T/err"
  local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc: $(tail -3 "$T/err")"; return; }
  local n; n=$(grep -c "presence: empty room: learning paused" "$T/err")
  [ "$n" = 1 ] && ok || bad "$n 'empty room' lines, want 1"
  local sum steps; sum=$(grep "live summary" "$T/err")
  steps=$(echo "$sum" | sed -n 's/.* \([0-9]*\) steps (.*/\1/p')
  echo "$sum" | grep -q " 60 trained," && [ -n "$steps" ] && [ "$steps" -ge 5 ] && [ "$steps" -le 40 ] && ok ||
    bad "want 60 frames and only the first half second's steps: $sum"
}

run_case closed_hours_show_black_and_train_nothing
run_case presence_pauses_in_the_window
run_case open_hours_train_as_before
finish
