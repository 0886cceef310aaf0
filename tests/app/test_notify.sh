#!/usr/bin/env bash
# test_notify.sh: why it exists: install/tabula.service runs the window as
# Type=notify with WatchdogSec=30. If READY=1 never came, systemd would kill
# the start; if WATCHDOG=1 stopped while frames are presented, it would kill a
# healthy show every 30 s. A unix datagram socket stands in for systemd
# (NOTIFY_SOCKET), and the window runs under Xvfb. Also: --check sees the
# display, and the window's health line has fps and the camera's state.
set -u
BIN=${TABULA_BIN:?set by CTest}
. "$(dirname "$0")/../lib.sh"
need_display "$@"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
RUN=(--backend cpu --size 32x32 --source pattern --hud 0)

notify_ready_watchdog_stopping() {
  if ! ldd "$BIN" | grep -q libsystemd; then skip_case "built without libsystemd (no sd_notify)"; return; fi
  # The listener: collect every datagram until tabula exits, one per line.
  "$PY" - "$T/notify.sock" "$T/msgs" "$BIN" "${RUN[@]}" --frames 150 --health.every_s 0.5 <<'PYEOF' 2>"$T/err"
import os, socket, subprocess, sys
path, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.1)
p = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=path))
msgs = []
def drain():
    while True:
        try:
            msgs.append(s.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            return
try:
    while p.poll() is None:
        drain()
    drain()
except KeyboardInterrupt:
    p.kill()
with open(out, "w") as f:
    for m in msgs:
        f.write(m.replace("\n", " ").strip() + "\n")
sys.exit(p.returncode)
PYEOF
  local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc: $(tail -3 "$T/err")"; return; }
  [ "$(head -1 "$T/msgs")" = "READY=1" ] && ok || bad "first message '$(head -1 "$T/msgs")' (want READY=1)"
  local nw; nw=$(grep -c "^WATCHDOG=1$" "$T/msgs")
  [ "$nw" -ge 1 ] && ok || bad "no WATCHDOG=1 after READY=1: $(tr '\n' ' ' <"$T/msgs")"
  [ "$(tail -1 "$T/msgs")" = "STOPPING=1" ] && ok || bad "last message '$(tail -1 "$T/msgs")' (want STOPPING=1)"
  # Rate-limited: never one per frame (150 frames).
  [ "$nw" -lt 100 ] && ok || bad "$nw WATCHDOG=1 messages for 150 frames: rate-limit them"
  # The window's health line: fps and the camera (source) state.
  if grep -q "health " "$T/err"; then
    grep "health " "$T/err" | head -1 | grep -q "fps [0-9.]*.*camera " && ok ||
      bad "window health line lacks fps or camera: $(grep -m1 "health " "$T/err")"
  else
    echo "note: the run ended before its first health line"; ok
  fi
}

not_under_systemd_is_harmless() {
  env -u NOTIFY_SOCKET "$BIN" "${RUN[@]}" --frames 5 2>"$T/err"; local rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc without NOTIFY_SOCKET: $(tail -2 "$T/err")"
  NOTIFY_SOCKET="$T/nobody-listens" "$BIN" "${RUN[@]}" --frames 5 2>"$T/err"; rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc with a dead NOTIFY_SOCKET: $(tail -2 "$T/err")"
}

check_sees_the_display() {
  "$BIN" --check --source pattern --size 64x64 >"$T/out" 2>"$T/err"; local rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc (want 0 under Xvfb): $(cat "$T/out")"
  check grep -q "^display: .*DISPLAY=$DISPLAY.*a window can open" "$T/out"
}

run_case notify_ready_watchdog_stopping
run_case not_under_systemd_is_harmless
run_case check_sees_the_display
finish
