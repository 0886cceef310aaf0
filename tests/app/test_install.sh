#!/usr/bin/env bash
# test_install.sh: why it exists: a gallery technician installs tabula once
# (install/install.sh) and leaves it running for weeks. Every file must land
# where the README says; the installed program, run from anywhere, must find
# its bundled clip; the show config must be a file tabula reads, never
# overwritten once edited; uninstall must remove what install put there and
# keep the config and the show's state; the systemd units must load; and the
# kiosk session must run its program on its own X server, pass systemd's stop
# on to it, and exit with its status (or Restart=on-failure never sees a crash).
#
# Nothing is written outside $T (no users, no systemctl, no /etc), except the
# manifest `cmake --install` always leaves in the build folder and what any X
# server writes (as under xvfb-run): its socket and lock in /tmp, keymaps it
# compiles in /var/lib/xkb.
set -u
. "$(dirname "$0")/../lib.sh"
BIN=${TABULA_BIN:?set by CTest}
SRC=${TABULA_SRC:?set by CTest}
BUILD=$(dirname "$BIN")
tmp_and_pids
mkdir -p "$T/cwd"
# Runs of tabula here: no OSC port, no MIDI, no autosave unless asked for.
QUIET=(--osc.port 0 --midi 0 --autosave.minutes 0 --backend cpu)

# What `cmake --install --prefix P` puts under P (the README's list).
PREFIX_FILES="bin/tabula
lib/tabula/kiosk-session
share/tabula/LICENSE-default_clip.md
share/tabula/default.ini
share/tabula/default_clip.mp4
share/tabula/midi/README.md
share/tabula/midi/generic.ini
share/tabula/midi/nanoKONTROL2.ini
share/tabula/scenes/calm.ini
share/tabula/scenes/storm.ini"

# Once: the staged install that several cases read (install.sh --destdir).
staged=
stage() {
  [ -n "$staged" ] && return "$staged"
  R=$T/root
  bash "$SRC/install/install.sh" --destdir "$R" --kiosk showuser --no-build \
    --build-dir "$BUILD" >"$T/stage.out" 2>&1
  staged=$?
  [ "$staged" = 0 ] || sed 's/^/    /' "$T/stage.out" >&2
  return "$staged"
}

# Does this build have the window (the live app)? --check says.
has_app() {
  ! (cd "$T/cwd" && env -u DISPLAY -u WAYLAND_DISPLAY "$BIN" --check --source pattern --size 32x32 \
    "${QUIET[@]}" 2>&1) | grep -q "^display: *not checked"
}

# A display number no X server has (the lock files X servers leave in /tmp).
free_display() {
  local n
  for ((n = 150 + RANDOM % 300; ; n++)); do
    [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] || { echo "$n"; return; }
  done
}

install_sh_help_and_bad_options() {
  bash "$SRC/install/install.sh" --help >"$T/help" 2>&1
  check test $? = 0
  for w in --prefix --kiosk --uninstall /etc/tabula/tabula.ini /var/lib/tabula tabula-kiosk.service; do
    grep -q -- "$w" "$T/help" && ok || bad "--help does not mention $w"
  done
  bash "$SRC/install/install.sh" --bogus >"$T/out" 2>&1
  [ $? = 2 ] && grep -q "unknown option --bogus" "$T/out" && ok || bad "--bogus: $(cat "$T/out")"
  bash "$SRC/install/install.sh" --prefix relative/path --destdir "$T/x" >"$T/out" 2>&1
  [ $? = 2 ] && grep -q "absolute" "$T/out" && ok || bad "relative --prefix: $(cat "$T/out")"
  bash "$SRC/install/install.sh" --kiosk 'Bad User' --destdir "$T/x" >"$T/out" 2>&1
  [ $? = 2 ] && ok || bad "--kiosk 'Bad User' accepted: $(cat "$T/out")"
  bash "$SRC/install/install-deps.sh" --bogus >"$T/out" 2>&1
  [ $? = 2 ] && ok || bad "install-deps.sh --bogus: $(cat "$T/out")"
}

scripts_pass_bash_n() {
  for f in install/install.sh install/install-deps.sh install/kiosk-session; do
    bash -n "$SRC/$f" 2>"$T/err" && ok || bad "bash -n $f: $(cat "$T/err")"
  done
  check test -x "$SRC/install/kiosk-session"
  check test -x "$SRC/install/install.sh"
}

cmake_install_puts_every_file_in_place() {
  cmake --install "$BUILD" --prefix "$T/prefix" >"$T/out" 2>&1 || { bad "cmake --install: $(cat "$T/out")"; return; }
  local got
  got=$(cd "$T/prefix" && find . -type f | sed 's#^\./##' | sort)
  [ "$got" = "$PREFIX_FILES" ] && ok || bad "installed files differ from the list:$(diff <(echo "$PREFIX_FILES") <(echo "$got") | sed 's/^/ /')"
  check test -x "$T/prefix/bin/tabula"
  check test -x "$T/prefix/lib/tabula/kiosk-session"
  check cmp -s "$SRC/assets/default_clip.mp4" "$T/prefix/share/tabula/default_clip.mp4"
}

installed_binary_finds_the_installed_clip() {
  [ -x "$T/prefix/bin/tabula" ] || cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null 2>&1
  if compgen -G "/dev/video*" >/dev/null; then skip_case "a camera is present: it is the default source"; return; fi
  # From a folder far from the checkout and the build.
  (cd "$T/cwd" && "$T/prefix/bin/tabula" --headless --frames 3 --size 32x32 "${QUIET[@]}") >"$T/out" 2>&1
  local rc=$?
  if grep -q "headless: pattern" "$T/out" && ! has_app; then
    skip_case "this build plays no .mp4 (TABULA_APP=OFF)"; return
  fi
  [ "$rc" = 0 ] && ok || bad "exit $rc: $(tail -3 "$T/out")"
  grep -q "headless: file:$T/prefix/share/tabula/default_clip.mp4," "$T/out" && ok ||
    bad "not the installed clip: $(grep headless: "$T/out")"
  check grep -q "done: 3 frames" "$T/out"
  # Moved elsewhere with its share folder, it follows (a DESTDIR staging, a
  # relocated prefix).
  mv "$T/prefix" "$T/moved"
  (cd "$T/cwd" && "$T/moved/bin/tabula" --headless --frames 1 --size 32x32 "${QUIET[@]}") >"$T/out" 2>&1
  grep -q "headless: file:$T/moved/share/tabula/default_clip.mp4," "$T/out" && ok ||
    bad "moved prefix: $(grep headless: "$T/out")"
  mv "$T/moved" "$T/prefix"
}

install_sh_stages_config_units_and_state() {
  stage || { bad "install.sh --destdir failed"; return; }
  local P=$R/usr/local f
  for f in $PREFIX_FILES; do check test -e "$P/$f"; done
  for f in etc/tabula/tabula.ini usr/local/share/tabula/show.ini \
    usr/local/lib/systemd/user/tabula.service etc/systemd/system/tabula-kiosk.service; do
    check test -s "$R/$f"
  done
  for d in autosave snapshots takes midi; do check test -d "$R/var/lib/tabula/$d"; done
  check test -s "$R/var/lib/tabula/midi/nanoKONTROL2.ini"
  check cmp -s "$R/etc/tabula/tabula.ini" "$P/share/tabula/show.ini"
  # Every placeholder filled in.
  ! grep -rl "@[A-Z]*@" "$R/etc" "$P/share/tabula/show.ini" "$P/lib/systemd" >"$T/out" && ok ||
    bad "placeholders left in: $(cat "$T/out")"
  local unit=$R/etc/systemd/system/tabula-kiosk.service
  check grep -qx "User=showuser" "$unit"
  check grep -qx "Type=notify" "$unit"
  check grep -qx "NotifyAccess=all" "$unit"
  check grep -qx "WatchdogSec=30" "$unit"
  check grep -qx "Restart=on-failure" "$unit"
  check grep -qx "WorkingDirectory=/var/lib/tabula" "$unit"
  check grep -q "^ExecStart=/usr/local/lib/tabula/kiosk-session" "$unit"
  check grep -q "/usr/local/bin/tabula --config /etc/tabula/tabula.ini --fullscreen 1" "$unit"
  check grep -q -- "-nocursor -s 0 -dpms" "$unit"
  check grep -q "^ExecStart=/usr/local/bin/tabula" "$P/lib/systemd/user/tabula.service"
  # Another prefix reaches every path.
  bash "$SRC/install/install.sh" --destdir "$T/root2" --prefix /opt/tabula --kiosk k --no-build \
    --build-dir "$BUILD" >"$T/out" 2>&1 || { bad "--prefix /opt/tabula: $(cat "$T/out")"; return; }
  check test -x "$T/root2/opt/tabula/bin/tabula"
  check grep -q "^ExecStart=/opt/tabula/lib/tabula/kiosk-session" "$T/root2/etc/systemd/system/tabula-kiosk.service"
  check grep -q "^ExecStart=/opt/tabula/bin/tabula" "$T/root2/opt/tabula/lib/systemd/user/tabula.service"
  check grep -qx "scenes = /opt/tabula/share/tabula/scenes" "$T/root2/etc/tabula/tabula.ini"
  ! grep -q "/usr/local" "$T/root2/etc/systemd/system/tabula-kiosk.service" && ok ||
    bad "/usr/local left in the kiosk unit of --prefix /opt/tabula"
}

# The show config is a file tabula takes: every key, the scenes and MIDI maps
# it names, autosaves where it says, and resume after a restart. Its paths are
# moved into the staged tree.
show_config_runs_and_resumes() {
  stage || { bad "install.sh --destdir failed"; return; }
  sed -e "s#/usr/local/#$R/usr/local/#g" -e "s#/var/lib/tabula/#$R/var/lib/tabula/#g" \
    "$R/etc/tabula/tabula.ini" >"$T/show.ini"
  local run=("$R/usr/local/bin/tabula" --config "$T/show.ini" --headless --frames 2 --size 32x32
    --source pattern --osc.port 0 --backend cpu)
  (cd "$T/cwd" && "${run[@]}") >"$T/out" 2>&1
  local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc with the show config: $(tail -3 "$T/out")"; return; }
  compgen -G "$R/var/lib/tabula/autosave/auto-*.safetensors" >/dev/null && ok ||
    bad "no autosave in the state folder: $(tail -3 "$T/out")"
  (cd "$T/cwd" && "${run[@]}") >"$T/out" 2>&1
  grep -q "resumed from autosave $R/var/lib/tabula/autosave/auto-" "$T/out" && ok ||
    bad "the second run did not resume: $(tail -3 "$T/out")"
  # A bad scenes folder is an error naming it (so the config's paths matter).
  sed -i "s#^scenes = .*#scenes = $T/none#" "$T/show.ini"
  (cd "$T/cwd" && "${run[@]}") >"$T/out" 2>&1
  [ $? = 2 ] && grep -q "$T/none" "$T/out" && ok || bad "a missing scenes folder was not an error: $(tail -2 "$T/out")"
}

install_sh_again_keeps_the_edited_config() {
  stage || { bad "install.sh --destdir failed"; return; }
  echo "# edited on site" >>"$R/etc/tabula/tabula.ini"
  cp "$R/etc/tabula/tabula.ini" "$T/edited.ini"
  echo "# learned" >>"$R/var/lib/tabula/midi/generic.ini"
  cp "$R/var/lib/tabula/midi/generic.ini" "$T/learned.ini"
  bash "$SRC/install/install.sh" --destdir "$R" --kiosk showuser --no-build --build-dir "$BUILD" >"$T/out" 2>&1
  check test $? = 0
  check cmp -s "$R/etc/tabula/tabula.ini" "$T/edited.ini"
  check cmp -s "$R/var/lib/tabula/midi/generic.ini" "$T/learned.ini"
  check grep -q "kept /etc/tabula/tabula.ini" "$T/out"
}

uninstall_removes_all_but_config_and_state() {
  stage || { bad "install.sh --destdir failed"; return; }
  cp -a "$R" "$T/un"
  touch "$T/un/var/lib/tabula/autosave/auto-20260101-000000.safetensors"
  bash "$SRC/install/install.sh" --destdir "$T/un" --uninstall >"$T/out" 2>&1
  check test $? = 0
  local left
  left=$(cd "$T/un" && find . -type f | sed 's#^\./##' | grep -v "^etc/tabula/\|^var/lib/tabula/" | sort)
  [ -z "$left" ] && ok || bad "left after --uninstall: $left"
  check test -s "$T/un/etc/tabula/tabula.ini"
  check test -e "$T/un/var/lib/tabula/autosave/auto-20260101-000000.safetensors"
  check test ! -e "$T/un/usr/local/share/tabula"
  check grep -q "kept /etc/tabula" "$T/out"
  check grep -q "the user showuser" "$T/out"
}

# systemd-analyze verify on copies whose programs are the staged ones (the
# real paths do not exist here). It exits 0 on unknown keys and bad values,
# so its output must be empty too.
units_pass_systemd_analyze_verify() {
  command -v systemd-analyze >/dev/null || { skip_case "no systemd-analyze (package systemd)"; return; }
  stage || { bad "install.sh --destdir failed"; return; }
  mkdir -p "$T/units" "$T/run"
  local chvt
  chvt=$(command -v chvt || command -v true)  # kbd's chvt is on a kiosk, maybe not here
  sed -e "s#/usr/local/#$R/usr/local/#g" -e "s#/usr/bin/chvt#$chvt#" \
    "$R/etc/systemd/system/tabula-kiosk.service" >"$T/units/tabula-kiosk.service"
  sed -e "s#/usr/local/#$R/usr/local/#g" "$R/usr/local/lib/systemd/user/tabula.service" >"$T/units/tabula.service"
  # As root, system-mode verify touches /run/systemd/systemd-units-load: run it
  # as nobody, who can read the copies and the staged programs.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || { skip_case "root, and no setpriv to verify as nobody"; return; }
    as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chmod 755 "$T"
  fi
  "${as[@]}" systemd-analyze verify "$T/units/tabula-kiosk.service" >"$T/out" 2>&1
  local rc=$?
  [ "$rc" = 0 ] && [ ! -s "$T/out" ] && ok || bad "kiosk unit: exit $rc: $(cat "$T/out")"
  XDG_RUNTIME_DIR=$T/run systemd-analyze --user verify "$T/units/tabula.service" >"$T/out" 2>&1
  rc=$?
  [ "$rc" = 0 ] && [ ! -s "$T/out" ] && ok || bad "user unit: exit $rc: $(cat "$T/out")"
  # And it does complain about a broken unit (the check can fail).
  sed 's/^KillMode=mixed/KillMode=mixd/' "$T/units/tabula-kiosk.service" >"$T/units/broken.service"
  "${as[@]}" systemd-analyze verify "$T/units/broken.service" >"$T/out" 2>&1
  [ -s "$T/out" ] && ok || bad "systemd-analyze verify says nothing about KillMode=mixd"
}

# A stand-in X server for the session: Xvfb, on a free display.
need_xvfb() { command -v Xvfb >/dev/null; }

# The session starts the server before the program, gives it DISPLAY, turns
# blanking off (through xset: a stand-in records the calls), exits with the
# program's status, and leaves no server behind.
kiosk_session_runs_a_program_on_its_own_server() {
  need_xvfb || { skip_case "no Xvfb (package xvfb)"; return; }
  local n; n=$(free_display)
  mkdir -p "$T/shim"
  local real_xset; real_xset=$(command -v xset || true)
  cat >"$T/shim/xset" <<EOF
#!/bin/sh
echo "\$*" >>"$T/xset.calls"
[ -z "$real_xset" ] || exec "$real_xset" "\$@"
EOF
  cat >"$T/client" <<EOF
#!/bin/sh
echo "DISPLAY=\$DISPLAY" >"$T/client.out"
[ -S /tmp/.X11-unix/X$n ] && echo "server up" >>"$T/client.out"
[ -z "$real_xset" ] || "$real_xset" q >>"$T/client.out"
exit 3
EOF
  chmod +x "$T/shim/xset" "$T/client"
  PATH=$T/shim:$PATH timeout 30 "$SRC/install/kiosk-session" "$T/client" -- Xvfb ":$n" -nolisten tcp -s 0 \
    >"$T/out" 2>&1
  local rc=$?
  [ "$rc" = 3 ] && ok || bad "exit $rc (want the program's 3): $(cat "$T/out")"
  check grep -qx "DISPLAY=:$n" "$T/client.out"
  check grep -qx "server up" "$T/client.out"
  for c in "s off" "s noblank" "-dpms"; do
    grep -qx -- "$c" "$T/xset.calls" 2>/dev/null && ok || bad "no 'xset $c' before the program"
  done
  if [ -n "$real_xset" ]; then
    # -noreset (added by the session) keeps what xset set; -s 0 came through.
    grep -q "prefer blanking: *no" "$T/client.out" && ok || bad "blanking still preferred: $(cat "$T/client.out")"
    grep -q "timeout: *0 " "$T/client.out" && ok || bad "screen saver timeout not 0: $(cat "$T/client.out")"
  fi
  check test ! -e "/tmp/.X11-unix/X$n"
  check grep -q "exited with status 3" "$T/out"
}

# systemctl stop: SIGTERM reaches the program while the server still runs,
# the session exits with the program's status (0), and the server is gone.
kiosk_session_passes_sigterm_on() {
  need_xvfb || { skip_case "no Xvfb (package xvfb)"; return; }
  local n; n=$(free_display)
  cat >"$T/client2" <<EOF
#!/bin/bash
trap '[ -S /tmp/.X11-unix/X$n ] && echo "TERM with the server up" >"$T/term.out"; exit 0' TERM
touch "$T/started"
while :; do sleep 0.05; done
EOF
  chmod +x "$T/client2"
  "$SRC/install/kiosk-session" "$T/client2" -- Xvfb ":$n" -nolisten tcp >"$T/out" 2>&1 &
  local s=$! i
  PIDS+=("$s")
  for ((i = 0; i < 200; i++)); do [ -e "$T/started" ] && break; sleep 0.05; done
  check test -e "$T/started"
  kill -TERM "$s"
  local rc=0
  wait "$s" || rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc after SIGTERM (want 0): $(cat "$T/out")"
  check grep -q "TERM with the server up" "$T/term.out"
  check test ! -e "/tmp/.X11-unix/X$n"
}

kiosk_session_fails_when_the_server_does() {
  timeout 30 "$SRC/install/kiosk-session" /bin/true -- /bin/false >"$T/out" 2>&1
  local rc=$?
  [ "$rc" = 1 ] && ok || bad "exit $rc (want 1) when the X server cannot start: $(cat "$T/out")"
  check grep -q "exited at start" "$T/out"
  "$SRC/install/kiosk-session" /bin/true >"$T/out" 2>&1
  [ $? = 1 ] && grep -q usage "$T/out" && ok || bad "no usage without -- XSERVER: $(cat "$T/out")"
}

# The real thing: tabula fullscreen on the session's server, READY=1 through
# the session to a stand-in for systemd's notify socket.
kiosk_session_runs_tabula_fullscreen() {
  need_xvfb || { skip_case "no Xvfb (package xvfb)"; return; }
  has_app || { skip_case "this build has no window"; return; }
  local n; n=$(free_display)
  local PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
  (cd "$T/cwd" && timeout 60 "$PY" - "$T/notify.sock" "$T/msgs" "$SRC/install/kiosk-session" \
    "$BIN" --fullscreen 1 --hud 0 --layout mirror --frames 5 --size 32x32 --source pattern \
    --screenshot "$T/shot.png" "${QUIET[@]}" -- Xvfb ":$n" -screen 0 640x480x24 -nolisten tcp -nocursor -s 0 \
    <<'PYEOF') >"$T/out" 2>&1
import os, socket, subprocess, sys
path, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.1)
p = subprocess.Popen(cmd, env=dict(os.environ, NOTIFY_SOCKET=path))
msgs = []
while True:
    try:
        msgs.append(s.recv(4096).decode())
    except socket.timeout:
        if p.poll() is not None:
            break
open(out, "w").write("\n".join(msgs) + "\n")
sys.exit(p.returncode)
PYEOF
  local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc: $(tail -5 "$T/out")"; return; }
  check grep -q "display: fullscreen 640x480" "$T/out"
  check test -s "$T/shot.png"
  if ldd "$BIN" | grep -q libsystemd; then
    grep -qx "READY=1" "$T/msgs" && ok || bad "no READY=1 through the session: $(tr '\n' ' ' <"$T/msgs")"
  fi
  check test ! -e "/tmp/.X11-unix/X$n"
}

# No window manager in the kiosk: the fullscreen window must still get the
# keyboard focus, or the operator's keys (and Esc) would go nowhere.
kiosk_session_keys_reach_tabula() {
  need_xvfb || { skip_case "no Xvfb (package xvfb)"; return; }
  command -v xdotool >/dev/null || { skip_case "no xdotool (install-deps.sh --test)"; return; }
  has_app || { skip_case "this build has no window"; return; }
  local n; n=$(free_display)
  (cd "$T/cwd" && exec "$SRC/install/kiosk-session" "$BIN" --fullscreen 1 --hud 0 --size 32x32 \
    --source pattern "${QUIET[@]}" -- Xvfb ":$n" -screen 0 640x480x24 -nolisten tcp -nocursor) >"$T/out" 2>&1 &
  local s=$! i focus=
  PIDS+=("$s")
  for ((i = 0; i < 300; i++)); do  # up to 30 s for the window on a busy machine
    focus=$(DISPLAY=:$n xdotool getwindowfocus getwindowname 2>/dev/null) && [ "$focus" = tabula ] && break
    kill -0 "$s" 2>/dev/null || break
    sleep 0.1
  done
  [ "$focus" = tabula ] && ok || { bad "the focus is on '$focus', not tabula: $(tail -3 "$T/out")"; kill "$s"; return; }
  DISPLAY=:$n xdotool key q
  for ((i = 0; i < 100; i++)); do kill -0 "$s" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$s" 2>/dev/null; then
    bad "Q did not quit tabula in 10 s"
    kill "$s"
  fi
  local rc=0
  wait "$s" || rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc after Q (want 0): $(tail -3 "$T/out")"
  check test ! -e "/tmp/.X11-unix/X$n"
}

run_case install_sh_help_and_bad_options
run_case scripts_pass_bash_n
run_case cmake_install_puts_every_file_in_place
run_case installed_binary_finds_the_installed_clip
run_case install_sh_stages_config_units_and_state
run_case show_config_runs_and_resumes
run_case install_sh_again_keeps_the_edited_config
run_case uninstall_removes_all_but_config_and_state
run_case units_pass_systemd_analyze_verify
run_case kiosk_session_runs_a_program_on_its_own_server
run_case kiosk_session_passes_sigterm_on
run_case kiosk_session_fails_when_the_server_does
run_case kiosk_session_runs_tabula_fullscreen
run_case kiosk_session_keys_reach_tabula
finish
