#!/usr/bin/env bash
# test_vcam_cli.sh: why it exists: --output means a virtual camera outside
# --replay, and a show that names the wrong thing must not start half-working.
# Checked with the program, headless and with the window's start-up:
# 1. Anything but v4l2:/dev/videoN (a file name, an empty device) is exit 2
#    with one message saying what --output takes.
# 2. A node that is not there is exit 2 naming it and the likely cause (no
#    v4l2loopback), in both modes, before any training or file written.
# 3. An odd [output] size is exit 2 from its row.
# 4. --check with such a node says it cannot run, naming the node, exit 2
#    (the technician's pre-show check catches it).
# The device path itself is tested against a fake device (test_vcam.c) and a
# real v4l2loopback node where one exists (test_vcam_loopback.c).
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CLIP="file:$DATA/hikers_forest_320x240.y4m"
RUN=(--backend cpu --size 64x64 --source "$CLIP" --osc.port 0 --midi 0 --autosave.minutes 0 --frames 3)
export OMP_NUM_THREADS=1
# A node number no machine here has (v4l2loopback numbers from 0 unless told).
NODE=/dev/video63

# expect_exit2 NEEDLE ARGS...: exit 2, NEEDLE in stderr, no "done:" line (nothing trained).
expect_exit2() {
  local needle=$1 rc
  shift
  timeout 60 "$BIN" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  [ "$rc" = 2 ] && ok || bad "exit $rc for $*, want 2: $(tail -3 "$T/err")"
  grep -qF -- "$needle" "$T/err" && ok || bad "no \"$needle\" in: $(tail -3 "$T/err")"
  grep -q "done:" "$T/err" && bad "it trained before failing" || ok
}

output_other_than_a_camera_is_exit_2() {
  expect_exit2 '--output "take.mkv": without --replay it is a virtual camera, v4l2:/dev/videoN' \
    --headless "${RUN[@]}" --output take.mkv
  expect_exit2 '--output "v4l2:": without --replay it is a virtual camera' --headless "${RUN[@]}" --output v4l2:
}

missing_node_is_exit_2_in_both_modes() {
  [ -e "$NODE" ] && { skip_case "$NODE exists here"; return; }
  local want="virtual camera $NODE: No such file or directory (is v4l2loopback loaded? README: Virtual camera)"
  expect_exit2 "$want" --headless "${RUN[@]}" --output "v4l2:$NODE"
  # The window's start-up opens the device before anything else (no display
  # needed to fail), so not even the final autosave is written.
  expect_exit2 "$want" "${RUN[@]}" --output "v4l2:$NODE" --autosave.minutes 10 --autosave.dir "$T/as"
  [ ! -e "$T/as" ] && ok || bad "a failed start wrote $(ls "$T/as")"
}

odd_output_size_is_exit_2() {
  expect_exit2 'is not WxH with even numbers' --headless "${RUN[@]}" --output "v4l2:$NODE" --output.size 641x480
}

check_names_a_missing_node() {
  [ -e "$NODE" ] && { skip_case "$NODE exists here"; return; }
  timeout 60 "$BIN" --check --headless "${RUN[@]}" --output "v4l2:$NODE" >"$T/out" 2>&1
  local rc=$?
  [ "$rc" = 2 ] && ok || bad "--check exit $rc, want 2: $(tail -3 "$T/out")"
  check grep -q "^verdict: *cannot run: virtual camera $NODE: No such file or directory" "$T/out"
}

run_case output_other_than_a_camera_is_exit_2
run_case missing_node_is_exit_2_in_both_modes
run_case odd_output_size_is_exit_2
run_case check_names_a_missing_node
finish
