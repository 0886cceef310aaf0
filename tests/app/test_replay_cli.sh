#!/usr/bin/env bash
# test_replay_cli.sh: why it exists: --replay is how a show is rendered again,
# larger or with more training, from what a take kept; it must say clearly
# when the take cannot be replayed. Checked with the program and ffprobe on a
# headless take of a real clip (64x64, 60 frames, 128x96 video):
# 1. At the recorded settings the replay's losses are the take's, bit for bit
#    (the program says so, and its --metrics equal the take's metrics.jsonl up
#    to the timings), and the video has the take's 60 frames at its size.
# 2. At twice the training size (128x128), a triptych at 256x192: it trains at
#    that size (its losses differ from frame 0) and renders 60 frames at 256x192.
# 3. --steps-per-frame 2 holds: two steps on every frame, 120 in all.
# 4. The take's sound (a tone added to its video.mkv with ffmpeg) is copied
#    into the replay as it is: the same codec, rate and length.
# 5. Bad input exits 2 with one message naming the problem, leaving no file:
#    no such folder, a take without input.mkv, a truncated input.mkv, an
#    output that cannot be written, no --output, a camera as --output.
set -u
BIN=${TABULA_BIN:?set by CTest}
DATA=${TABULA_DATA:?set by CTest}
. "$(dirname "$0")/../lib.sh"
command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null || skip_all "no ffprobe/ffmpeg (install ffmpeg)"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CLIP="file:$DATA/hikers_forest_320x240.y4m"
export OMP_NUM_THREADS=1
TAKE=$T/take

# frames FILE: the frames ffprobe decodes in the first video stream.
frames() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }
# stream FILE SEL KEYS: those entries of the first stream of a kind (v or a), "k=v|k=v".
stream() { ffprobe -v error -select_streams "$2:0" -show_entries "stream=$3" -of compact=p=0 "$1"; }
# no_timings FILE: metrics lines without step_ms, fps and backend (they vary).
no_timings() { sed 's/,"step_ms".*//' "$1"; }

# The take every case replays (made once).
make_take() {
  [ -f "$TAKE/take.json" ] && return 0
  timeout 120 "$BIN" --headless --backend cpu --size 64x64 --memory 2 --source "$CLIP" --osc.port 0 --midi 0 \
    --autosave.minutes 0 --record.size 128x96 --frames 60 --record "$TAKE" 2>"$T/rec.err" ||
    { bad "recording failed: $(tail -3 "$T/rec.err")"; return 1; }
}

recorded_settings_are_bit_for_bit() {
  make_take || return
  if ! timeout 120 "$BIN" --replay "$TAKE" --output "$T/same.mkv" --backend cpu --metrics "$T/same.jsonl" 2>"$T/err"; then
    bad "replay failed: $(tail -3 "$T/err")"; return
  fi
  grep -q "replay: losses: 60 of 60 frames identical to the take's, bit for bit" "$T/err" && ok ||
    bad "no bit-for-bit line: $(grep 'replay:' "$T/err")"
  [ "$(no_timings "$T/same.jsonl" | md5sum)" = "$(no_timings "$TAKE/metrics.jsonl" | md5sum)" ] &&
    [ "$(wc -l < "$T/same.jsonl")" = 60 ] && ok || bad "metrics differ: $(diff <(no_timings "$T/same.jsonl") <(no_timings "$TAKE/metrics.jsonl") | head -4)"
  local v; v="$(frames "$T/same.mkv") $(stream "$T/same.mkv" v codec_name,width,height,r_frame_rate)"
  [ "$v" = "60 codec_name=h264|width=128|height=96|r_frame_rate=30/1" ] && ok || bad "same.mkv: $v"
}

twice_the_training_size_renders() {
  make_take || return
  if ! timeout 300 "$BIN" --replay "$TAKE" --output "$T/big.mkv" --backend cpu --size 128x128 --layout triptych \
       --record.size 256x192 2>"$T/err"; then
    bad "replay failed: $(tail -3 "$T/err")"; return
  fi
  grep -q "replay: $TAKE: 60 frames at 128x128" "$T/err" && grep -q "the first to differ is frame 0" "$T/err" &&
    ok || bad "not trained at 128x128: $(grep 'replay:' "$T/err")"
  local v; v="$(frames "$T/big.mkv") $(stream "$T/big.mkv" v width,height)"
  [ "$v" = "60 width=256|height=192" ] && ok || bad "big.mkv: $v"
  grep -q "rendered $T/big.mkv: 60 frames, 256x192 triptych" "$T/err" && ok || bad "$(grep rendered "$T/err")"
}

steps_per_frame_holds() {
  make_take || return
  if ! timeout 120 "$BIN" --replay "$TAKE" --output "$T/k2.mkv" --backend cpu --steps-per-frame 2 \
       --metrics "$T/k2.jsonl" 2>"$T/err"; then
    bad "replay failed: $(tail -3 "$T/err")"; return
  fi
  local k last
  k=$(grep -c '"steps_per_frame":2,' "$T/k2.jsonl"); last=$(tail -1 "$T/k2.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
  [ "$k" = 60 ] && [ "$last" = 120 ] && ok || bad "$k lines at 2 steps, last step $last (want 60, 120)"
}

sound_is_copied() {
  make_take || return
  local a=$T/atake
  rm -rf "$a"; cp -r "$TAKE" "$a"
  # A 2 s tone beside the take's picture (the recorder's sound is not built yet).
  if ! ffmpeg -v error -i "$TAKE/video.mkv" -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=2" \
       -map 0:v -map 1:a -c:v copy -c:a flac "$a/video.mkv" -y 2>"$T/ff"; then
    bad "ffmpeg: $(tail -2 "$T/ff")"; return
  fi
  if ! timeout 120 "$BIN" --replay "$a" --output "$T/snd.mkv" --backend cpu 2>"$T/err"; then
    bad "replay failed: $(tail -3 "$T/err")"; return
  fi
  local want got
  want=$(stream "$a/video.mkv" a codec_name,sample_rate,channels)
  got=$(stream "$T/snd.mkv" a codec_name,sample_rate,channels)
  [ -n "$got" ] && [ "$got" = "$want" ] && ok || bad "audio: '$got', the take's '$want'"
  # The same samples: the decoded sound's checksum.
  want=$(ffmpeg -v error -i "$a/video.mkv" -map 0:a -f md5 - 2>&1); got=$(ffmpeg -v error -i "$T/snd.mkv" -map 0:a -f md5 - 2>&1)
  [ "$got" = "$want" ] && ok || bad "sound differs: $got vs $want"
  [ "$(frames "$T/snd.mkv")" = 60 ] && ok || bad "snd.mkv: $(frames "$T/snd.mkv") video frames"
  [ ! -e "$T/snd.mkv.part" ] && ok || bad "the video-only file was left behind"
}

# bad_input WANT_MESSAGE OUTPUT ARGS...: exit 2, the message, and no OUTPUT left.
bad_input() {
  local want=$1 out=$2 rc; shift 2
  timeout 60 "$BIN" "$@" 2>"$T/err"; rc=$?
  [ $rc = 2 ] && grep -q -- "$want" "$T/err" && [ ! -e "$out" ] && ok ||
    bad "$*: exit $rc, $(grep -v '^ ' "$T/err" | tail -2)"
}

bad_takes_exit_2() {
  make_take || return
  local b=$T/bad
  bad_input "--replay $T/none: no such take folder" "$T/o1.mkv" --replay "$T/none" --output "$T/o1.mkv"
  rm -rf "$b"; cp -r "$TAKE" "$b"; rm "$b/input.mkv"
  bad_input "not a complete take: input.mkv is missing" "$T/o2.mkv" --replay "$b" --output "$T/o2.mkv"
  rm -rf "$b"; cp -r "$TAKE" "$b"
  head -c $(($(stat -c %s "$TAKE/input.mkv") / 2)) "$TAKE/input.mkv" > "$b/input.mkv"
  bad_input "$b/input.mkv: truncated: [0-9]* of the 60 frames take.json counts" "$T/o3.mkv" \
    --replay "$b" --output "$T/o3.mkv" --backend cpu
  bad_input "$TAKE/take.json/o.mkv" "$TAKE/take.json/o.mkv" --replay "$TAKE" --output "$TAKE/take.json/o.mkv" --backend cpu
  bad_input "needs --output FILE.mkv" "$T/none.mkv" --replay "$TAKE"
  bad_input "renders a video file: --output FILE.mkv, not v4l2:/dev/video9" "$T/none.mkv" --replay "$TAKE" \
    --output v4l2:/dev/video9
}

run_case recorded_settings_are_bit_for_bit
run_case twice_the_training_size_renders
run_case steps_per_frame_holds
run_case sound_is_copied
run_case bad_takes_exit_2
finish
