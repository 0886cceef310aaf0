#!/bin/sh
# Rebuilds assets/default_clip.mp4, the clip tabula plays when no camera is
# present, from the shared test data (see LICENSE-default_clip.md).
#   assets/make_default_clip.sh [DATA_DIR]   (default: ../shared/data beside the repo)
# Needs Debian's ffmpeg (5.1, with libx264).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-${TABULA_DATA:-$here/../../shared/data}}
src=$data/asl_signer_a_320x240.y4m
out=$here/default_clip.mp4
[ -f "$src" ] || { echo "make_default_clip: $src not found" >&2; exit 1; }

# All 300 frames, 320x240, 30 fps, H.264 High at CRF 16 (about 46 dB PSNR
# against the source), tagged BT.601 limited range like the source, no audio,
# no metadata; moov first so playback starts without reading the whole file.
ffmpeg -v error -y -i "$src" -an -c:v libx264 -preset veryslow -crf 16 -pix_fmt yuv420p \
  -color_range tv -colorspace smpte170m -color_primaries smpte170m -color_trc smpte170m \
  -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact "$out"

frames=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
  -of csv=p=0 "$out")
echo "$out: $(wc -c <"$out") bytes, $frames frames"
[ "$frames" = 300 ] || { echo "make_default_clip: expected 300 frames" >&2; exit 1; }
