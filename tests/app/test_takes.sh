#!/usr/bin/env bash
# test_takes.sh: why it exists: a take is what is left of a show, and what
# others open with their own tools. Checked with the program and ffprobe:
# 1. A headless take of a real clip (--record DIR --frames N): every file is
#    there, ffprobe sees N frames at 30 fps and the recording size in video.mkv
#    and N frames in input.mkv, take.json has the counts, one summary line.
# 2. --duration sets an unattended take's length on the run's clock.
# 3. A recording process killed (SIGKILL) mid-take: video.mkv still opens and
#    decodes up to its last seconds (Matroska written as it goes).
# 4. A file size limit (ulimit -f): the write fails (EFBIG, SIGXFSZ ignored),
#    the take ends cleanly saying why, the run goes on to its last frame, exit 0.
# 5. Too little free space ([record] min_free_mb): the take ends saying so.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
command -v ffprobe >/dev/null || skip_all "no ffprobe (install ffmpeg)"
KILL_SIGNAL=KILL
tmp_and_pids
CLIP="file:$DATA/hikers_forest_320x240.y4m"
RUN=(--headless --backend cpu --size 64x64 --source "$CLIP" --osc.port 0 --midi 0 --autosave.minutes 0
     --record.size 320x240)
export OMP_NUM_THREADS=1

# frames FILE: the frames ffprobe decodes in the first video stream.
frames() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }
# stream FILE KEYS: those entries of the video stream, "k=v|k=v".
stream() { ffprobe -v error -select_streams v:0 -show_entries "stream=$2" -of compact=p=0 "$1"; }
# json_num FILE KEY: the number after "KEY": in take.json.
json_num() { sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p" "$1" | head -1; }

headless_take_of_a_real_clip() {
  local d=$T/take f
  if ! timeout 120 "$BIN" "${RUN[@]}" --frames 45 --record "$d" 2>"$T/err"; then
    bad "run failed: $(tail -3 "$T/err")"; return
  fi
  for f in video.mkv input.mkv events.jsonl take.json config.ini weights.safetensors; do
    [ -f "$d/$f" ] && ok || bad "no $f in the take"
  done
  [ "$(frames "$d/video.mkv")" = 45 ] && ok || bad "video.mkv: $(frames "$d/video.mkv") frames, want 45"
  local v; v=$(stream "$d/video.mkv" codec_name,width,height,r_frame_rate,pix_fmt)
  [ "$v" = "codec_name=h264|width=320|height=240|pix_fmt=yuv420p|r_frame_rate=30/1" ] && ok || bad "video.mkv: $v"
  [ "$(frames "$d/input.mkv")" = 45 ] && ok || bad "input.mkv: $(frames "$d/input.mkv") frames, want 45"
  v=$(stream "$d/input.mkv" codec_name,width,height)
  [ "$v" = "codec_name=ffv1|width=64|height=64" ] && ok || bad "input.mkv: $v"
  grep -q '"trained": 45, "written": 45, "repeated": 0, "dropped_encoder": 0, "dropped_disk": 0' "$d/take.json" &&
    grep -q '"state": "done"' "$d/take.json" && ok || bad "take.json: $(cat "$d/take.json")"
  grep -qE "record: take $d: 1\.5 s, 45 frames written \(0 repeated\), dropped 0 \(encoder overloaded\) \+ 0 \(disk too slow\), [0-9.]+ MB on disk; ended: run ended" "$T/err" &&
    ok || bad "no summary line: $(grep record "$T/err")"
}

duration_sets_an_unattended_takes_length() {
  local d=$T/dur
  if ! timeout 120 "$BIN" "${RUN[@]}" --duration 1 --fps 20 --record "$d" 2>"$T/err"; then
    bad "run failed: $(tail -3 "$T/err")"; return
  fi
  local v; v="$(frames "$d/video.mkv") $(stream "$d/video.mkv" r_frame_rate)"
  [ "$v" = "20 r_frame_rate=20/1" ] && ok || bad "video.mkv: $v (want 20 frames at 20/1)"
}

killed_take_stays_playable() {
  local d=$T/killed pid i written n
  "$BIN" "${RUN[@]}" --frames 100000000 --record "$d" 2>"$T/err" &
  pid=$!; PIDS+=("$pid")
  for ((i = 0; i < 200; i++)); do  # until take.json says 3 s are written (it is rewritten each second)
    written=$(json_num "$d/take.json" written 2>/dev/null)
    [ "${written:-0}" -ge 90 ] && break
    sleep 0.1
  done
  sleep 0.5
  kill -9 "$pid"; wait "$pid" 2>/dev/null
  written=$(json_num "$d/take.json" written)
  [ "${written:-0}" -ge 90 ] || { bad "take.json says ${written:-no} frames written: $(tail -3 "$T/err")"; return; }
  grep -q '"state": "recording"' "$d/take.json" && ok || bad "take.json: $(cat "$d/take.json")"
  n=$(frames "$d/video.mkv")
  # All but the last seconds: what take.json counted (a second old at most),
  # less the cluster the muxer still held (a second at most).
  [ "${n:-0}" -ge $((written - 60)) ] && ok || bad "video.mkv decodes ${n:-no} frames; take.json had $written"
  timeout 60 ffmpeg -v error -i "$d/video.mkv" -f null - 2>"$T/ff" && ok || bad "ffmpeg: $(tail -2 "$T/ff")"
  n=$(frames "$d/input.mkv")
  [ "${n:-0}" -ge $((written - 60)) ] && ok || bad "input.mkv decodes ${n:-no} frames; take.json had $written"
}

file_size_limit_ends_the_take_cleanly() {
  local d=$T/fsize rc
  # A tiny network (its weights file is small); input.mkv reaches 300 KB first.
  (ulimit -f 300; exec timeout 120 "$BIN" "${RUN[@]}" --model.channels 4,8 --frames 150 --record "$d") 2>"$T/err"
  rc=$?
  [ $rc = 0 ] && ok || bad "exit $rc: $(tail -3 "$T/err")"
  grep -qE "record: .*File too large: the take ends \(the mirror goes on\)" "$T/err" && ok ||
    bad "no message saying why: $(grep record "$T/err")"
  grep -q "done: 150 frames" "$T/err" && ok || bad "the run did not go on: $(tail -3 "$T/err")"
  grep -qE "record: take $d: .*ended: .*File too large" "$T/err" && ok || bad "no summary: $(grep record "$T/err")"
  [ "$(frames "$d/video.mkv")" -gt 0 ] && ok || bad "video.mkv does not decode"
}

low_free_space_ends_the_take() {
  local d=$T/space rc
  timeout 120 "$BIN" "${RUN[@]}" --frames 10 --record "$d" --record.min_free_mb 10000000 2>"$T/err"
  rc=$?
  [ $rc = 0 ] && grep -qE "record: the disk is nearly full: [0-9]+ MB free, under \[record\] min_free_mb 10000000: the take ends" "$T/err" &&
    grep -q "done: 10 frames" "$T/err" && ok || bad "exit $rc: $(grep -E 'record|done' "$T/err")"
}

run_case headless_take_of_a_real_clip
run_case duration_sets_an_unattended_takes_length
run_case killed_take_stays_playable
run_case file_size_limit_ends_the_take_cleanly
run_case low_free_space_ends_the_take
finish
