#!/usr/bin/env bash
# gpu_prepare.sh: run here before a GPU session on another machine that gets a
# copy of this checkout (at most 64 MiB) but not ../shared: the start of each
# real clip and the photos are copied into gpu-data/ (kept out of git through
# .git/info/exclude): hikers 300 frames (the learning-curve check), asl and
# flower 60 frames (the tests' few frames). Copy gpu-data/ along with the
# checkout and run bench/gpu_session.sh there.
set -eu
cd "$(dirname "$0")/.."
SRC=${TABULA_DATA:-../shared/data}
mkdir -p gpu-data
grep -qx '/gpu-data/' .git/info/exclude 2>/dev/null || echo '/gpu-data/' >> .git/info/exclude
head_y4m() {  # clip frames: the header and the first N frames
  python3 - "$SRC/$1" "gpu-data/$1" "$2" <<'PY'
import sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "rb") as f:
    hdr = f.readline()
    w = int(next(t[1:] for t in hdr.split() if t.startswith(b"W")))
    h = int(next(t[1:] for t in hdr.split() if t.startswith(b"H")))
    frame = 6 + w * h * 3 // 2  # "FRAME\n" + 4:2:0
    data = f.read(n * frame)
with open(dst, "wb") as g:
    g.write(hdr + data)
PY
}
head_y4m hikers_forest_320x240.y4m 300
head_y4m asl_signer_a_320x240.y4m 60
head_y4m flower_timelapse_320x240.y4m 60
cp -r "$SRC/photos_nature" gpu-data/
cp "$SRC/LICENSES.md" gpu-data/
du -sh gpu-data
