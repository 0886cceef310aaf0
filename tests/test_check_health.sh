#!/usr/bin/env bash
# test_check_health.sh: why it exists: the technician installing tabula for a
# show runs `tabula --check` first, and reads the health lines in the journal
# after weeks of running. --check must say one line per thing it probes and
# exit 0 only when the configured setup can run (2 with the reason, naming a
# missing file); the health line must come at its rate, with its fields, and
# never per frame.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

check_prints_each_line_and_exits_0_with_a_pattern() {
  "$BIN" --check --headless --source pattern --size 64x64 >"$T/out" 2>"$T/err"; local rc=$?
  [ "$rc" = 0 ] && ok || { bad "exit $rc (want 0)"; cat "$T/out" "$T/err" >&2; }
  local what
  for what in backend cameras audio display midi snapshots source training verdict; do
    grep -q "^$what: " "$T/out" && ok || bad "no \"$what:\" line in: $(cat "$T/out")"
  done
  # What this machine has: a GPU or not, cameras, a sequencer (the lines must
  # say so); the audio inputs (none here without a JACK server; not checked
  # in a build without the app).
  check grep -qE "^backend: *(cpu|cuda)" "$T/out"
  if ls /dev/video* >/dev/null 2>&1; then
    grep -qE "^cameras: *none" "$T/out" && bad "a /dev/video node exists, the line says none" || ok
  else check grep -qE "^cameras: *(none|not checked)" "$T/out"; fi
  if [ -e /dev/snd/seq ]; then
    grep -qE "^midi: *none" "$T/out" && bad "/dev/snd/seq exists, the line says none" || ok
  else check grep -q "^midi: *none" "$T/out"; fi
  check grep -qE "^audio: *(not checked|no input device|.*: [0-9]+ ch, [0-9]+ Hz)" "$T/out"
  check grep -q "^source: *pattern opens" "$T/out"
  check grep -q "^training: *64x64 fits" "$T/out"
  check grep -q "^verdict: *ready" "$T/out"
  # The folders a show writes into, each with its state.
  check grep -qE "^autosave: *autosave.*(writable|NOT writable), .*free" "$T/out"
  check grep -qE "^takes: *takes.*(writable|NOT writable), .*free" "$T/out"
}

check_says_a_folder_it_cannot_write() {
  : > "$T/a-file"  # a file where a folder should be (root may write anywhere else)
  "$BIN" --check --headless --source pattern --size 64x64 --record.dir "$T/a-file/takes" \
    --autosave.dir "$T/a-file" >"$T/out" 2>"$T/err"
  check grep -q "^takes: *$T/a-file/takes (to be created): NOT writable" "$T/out"
  check grep -q "^autosave: *$T/a-file: NOT writable" "$T/out"
}

check_exits_2_naming_a_missing_file() {
  "$BIN" --check --headless --source "file:$T/missing.y4m" >"$T/out" 2>"$T/err"; local rc=$?
  [ "$rc" = 2 ] && ok || bad "exit $rc (want 2)"
  check grep -q "missing.y4m" "$T/err"
  check grep -q "^verdict: *cannot run:.*missing.y4m" "$T/out"
}

check_exits_2_when_training_cannot_fit() {
  "$BIN" --check --headless --source pattern --size 4096x4096 --ring 1024 >"$T/out" 2>"$T/err"; local rc=$?
  [ "$rc" = 2 ] && ok || bad "exit $rc (want 2)"
  check grep -q "^training: .*does not fit" "$T/out"
}

check_without_display_fails_only_for_the_window() {
  env -u DISPLAY -u WAYLAND_DISPLAY "$BIN" --check --source pattern --size 64x64 >"$T/out" 2>"$T/err"; local rc=$?
  if grep -q "^display: *not checked" "$T/out"; then skip_case "this build has no window"; return; fi
  [ "$rc" = 2 ] && ok || bad "exit $rc (want 2: a window run with no display)"
  check grep -q "^verdict: .*no display" "$T/out"
}

# A run stopped after ~3 s: health lines every 0.5 s, with their fields.
health_lines_at_their_rate() {
  # Three seconds from the start of training (loading the libraries can take
  # seconds on a busy machine, and a signal then would find no handler yet).
  "$BIN" --headless --backend cpu --source pattern --size 32x32 --frames 100000000 \
    --health.every_s 0.5 2>"$T/err" &
  local pid=$! i
  for i in $(seq 600); do grep -q "headless: " "$T/err" && break; sleep 0.05; done
  sleep 3
  kill -TERM "$pid"
  wait "$pid"; local rc=$?
  [ "$rc" = 0 ] && ok || bad "exit $rc (want 0 after SIGTERM)"
  local n; n=$(grep -c "health " "$T/err")
  # About 6 (fewer when the machine is busy and a frame comes late), never more.
  [ "$n" -ge 2 ] && [ "$n" -le 7 ] && ok || bad "$n health lines in ~3 s (want about 6)"
  local f
  for f in "uptime" "steps/s" "loss" "rss" "dropped" "rollbacks"; do
    grep "health " "$T/err" | head -1 | grep -q "$f " && ok || bad "no $f in: $(grep -m1 "health " "$T/err")"
  done
  # A wall-clock timestamp (the log's, to the millisecond) and the status.
  check grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3} tabula: health ok: uptime" "$T/err"
  # The uptimes step by 0.5 s or a frame more, never less (printed to 0.1 s).
  grep "health " "$T/err" | sed -n 's/.*uptime \([0-9.]*\) s.*/\1/p' >"$T/up"
  awk 'NR > 1 { d = $1 - p; if (d < 0.35) bad = 1; sum += d } { p = $1 }
       END { if (NR > 1 && sum / (NR - 1) > 1.2) bad = 1; exit bad }' "$T/up" && ok ||
    bad "uptimes not about 0.5 s apart: $(tr '\n' ' ' <"$T/up")"
}

health_off_and_default_print_none() {
  "$BIN" --headless --backend cpu --source pattern --size 32x32 --frames 20 --health.every_s 0 2>"$T/err"
  check test "$(grep -c 'health ' "$T/err")" = 0
  "$BIN" --headless --backend cpu --source pattern --size 32x32 --frames 20 2>"$T/err"
  check test "$(grep -c 'health ' "$T/err")" = 0
}

run_case check_prints_each_line_and_exits_0_with_a_pattern
run_case check_says_a_folder_it_cannot_write
run_case check_exits_2_naming_a_missing_file
run_case check_exits_2_when_training_cannot_fit
run_case check_without_display_fails_only_for_the_window
run_case health_lines_at_their_rate
run_case health_off_and_default_print_none
finish
