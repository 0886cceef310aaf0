#!/usr/bin/env bash
# test_audio_check.sh: why it exists: before a show the technician runs
# `tabula --check` to see which microphone a take will record, and what to
# put in [record] audio_device. It must list the input devices PortAudio
# offers (JACK's dummy backend stands in for a sound card here), say when there
# is none, and still exit 0 (a silent take is no reason not to run).
set -u
BIN=${TABULA_BIN:?set by CTest}
. "$(dirname "$0")/../lib.sh"
command -v jackd >/dev/null || skip_all "no jackd (install jackd2)"
T=$(mktemp -d)
JACK_PID=
cleanup() {
  [ -n "$JACK_PID" ] && kill "$JACK_PID" 2>/dev/null && wait "$JACK_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
# A server name of this test's own: no other jackd is met, none is left.
export JACK_DEFAULT_SERVER=tabula-test-audio-check-$$
CHECK=(--check --headless --backend cpu --size 64x64 --source pattern --osc.port 0 --midi 0)

no_device_says_so() {
  "$BIN" "${CHECK[@]}" >"$T/out" 2>&1
  local rc=$?
  [ $rc = 0 ] && ok || bad "exit $rc: $(cat "$T/out")"
  check grep -q "^audio: *no input device (takes record no sound)" "$T/out"
  [ "$(grep -c "ALSA\|jack\|JACK" "$T/out")" = 0 ] && ok || bad "library noise: $(grep "ALSA\|jack\|JACK" "$T/out")"
}

jack_input_is_listed() {
  jackd -n "$JACK_DEFAULT_SERVER" --no-realtime -d dummy -r 48000 -p 256 >"$T/jack" 2>&1 &
  JACK_PID=$!
  local i
  for ((i = 0; i < 50; i++)); do  # until the server takes clients
    "$BIN" "${CHECK[@]}" --record.audio_device syst >"$T/out" 2>&1
    grep -q "^audio: *system" "$T/out" && break
    kill -0 "$JACK_PID" 2>/dev/null || { skip_case "jackd exited: $(tail -2 "$T/jack")"; JACK_PID=; return; }
    sleep 0.1
  done
  kill "$JACK_PID"; wait "$JACK_PID" 2>/dev/null; JACK_PID=
  check grep -q "^audio: *system (JACK Audio Connection Kit): 2 ch, 48000 Hz (default)" "$T/out"
  check grep -q '^ *\[record\] audio_device = "syst": a take records the first input whose name contains it' "$T/out"
}

run_case no_device_says_so
run_case jack_input_is_listed
finish
