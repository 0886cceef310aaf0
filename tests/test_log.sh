#!/usr/bin/env bash
# test_log.sh: why it exists: under systemd the log goes to the journal, which
# reads each line's priority from a "<N>" prefix and stamps the time itself;
# run by hand or into a file, a line needs its own time. The mode must follow
# JOURNAL_STREAM only when it names tabula's own stderr (systemd leaves the
# variable set for a service that redirects its output elsewhere), problems
# must be marked so `journalctl -p warning` and `grep warn` find them, and
# [health] log_level must hide what is below it.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

# A short run with a warning in it: a NaN written into the weights after step
# 4 makes the watchdog roll back (logged as a warning). stderr appended to $1.
run() {
  local err=$1; shift
  TABULA_INJECT_NAN_AT_STEP=4 "$BIN" --osc.port 0 --midi 0 --headless --backend cpu --width 32 --height 32 \
    --channels 8,16 --autosave.minutes 0 --source pattern --frames 20 --train.stats_every 1 "$@" \
    >/dev/null 2>>"$err"
}

STAMP='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} tabula: '

# Lines of $1 that are tabula's (the model table has no prefix) and do not match $2.
others() { grep 'tabula: ' "$1" | grep -vE "$2"; }

plain_lines_have_time_and_level() {
  : >"$T/err"
  (unset JOURNAL_STREAM; run "$T/err")
  check [ $? = 0 ]
  [ -z "$(others "$T/err" "$STAMP")" ] && ok || bad "lines without a time: $(others "$T/err" "$STAMP" | head -3)"
  check grep -qE "$STAMP"'warn: training diverged' "$T/err"
  check grep -qE "$STAMP"'done: 20 frames' "$T/err"  # info: no level word
}

journal_lines_have_priority() {
  : >"$T/jerr"
  JOURNAL_STREAM=$(stat -c '%d:%i' "$T/jerr") run "$T/jerr"
  check [ $? = 0 ]
  [ -z "$(others "$T/jerr" '^<[3467]>tabula: ')" ] && ok ||
    bad "lines without a priority: $(others "$T/jerr" '^<[3467]>tabula: ' | head -3)"
  check grep -q '^<4>tabula: warn: training diverged' "$T/jerr"
  check grep -q '^<6>tabula: done: 20 frames' "$T/jerr"
  # An error: the start fails.
  JOURNAL_STREAM=$(stat -c '%d:%i' "$T/jerr") "$BIN" --headless --source pattern 2>>"$T/jerr"
  check [ $? = 2 ]
  check grep -q '^<3>tabula: error: --headless needs --frames' "$T/jerr"
}

journal_stream_of_another_file_is_ignored() {
  : >"$T/err2"
  : >"$T/elsewhere"
  JOURNAL_STREAM=$(stat -c '%d:%i' "$T/elsewhere") run "$T/err2"
  check [ $? = 0 ]
  check grep -qE "$STAMP"'warn: training diverged' "$T/err2"
  grep -q '^<' "$T/err2" && bad "a journal priority on a file's lines" || ok
}

log_level_hides_what_is_below() {
  : >"$T/err3"
  run "$T/err3" --health.log_level warn
  check [ $? = 0 ]
  check grep -q 'tabula: warn: training diverged' "$T/err3"
  grep -q 'tabula: done:' "$T/err3" && bad "an info line at log_level warn" || ok
  : >"$T/err4"
  run "$T/err4" --health.log_level error
  grep -q 'tabula: warn:' "$T/err4" && bad "a warning at log_level error" || ok
  "$BIN" --headless --frames 1 --health.log_level loud 2>"$T/err5"
  check [ $? = 2 ]
  check grep -q 'log_level: "loud" is not one of debug|info|warn|error' "$T/err5"
}

run_case plain_lines_have_time_and_level
run_case journal_lines_have_priority
run_case journal_stream_of_another_file_is_ignored
run_case log_level_hides_what_is_below
finish
