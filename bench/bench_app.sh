#!/usr/bin/env bash
# bench_app.sh [BACKEND] [SIZES]: the live app end to end: display fps, training
# steps/s, frames trained of frames captured, and the delay from a frame's
# arrival to its reconstruction on screen (median, p95). Plays a real clip paced
# at 60 fps; opens a real window (under Xvfb when there is no display).
#   bench/bench_app.sh cpu "256x256 128x128"
#   bench/bench_app.sh cuda "256x256 1280x720"
set -u
cd "$(dirname "$0")/.."
BIN=${TABULA_BIN:-build/tabula}
BACKEND=${1:-auto}
SIZES=${2:-"256x256 1280x720"}
FRAMES=${FRAMES:-300}
CLIP=${CLIP:-../shared/data/asl_signer_a_320x240.y4m}
if [ -z "${DISPLAY:-}" ]; then
  exec xvfb-run -a -s "-screen 0 1920x1080x24" "$0" "$@"
fi
# cpu_s: the app's CPU time (all its threads: training, window, capture) over
# its wall time wall_s; a thread spinning while it waits shows as cpu_s near
# 2 x wall_s on two cores.
printf '%-10s %-8s %10s %10s %12s %10s %10s %8s %8s\n' size backend steps/s display trained/capt \
  delay_ms p95_ms cpu_s wall_s
for size in $SIZES; do
  log=$(mktemp)
  tm=$(mktemp)
  /usr/bin/time -o "$tm" -f '%U %S %e' "$BIN" --backend "$BACKEND" --size "$size" \
    --source "file:$CLIP" --fps 60 --frames "$FRAMES" --layout side 2>"$log" >/dev/null
  line=$(grep "live summary" "$log")
  be=$(grep -o "backend [a-z]*, training" "$log" | head -1 | awk '{print $2}' | tr -d ,)
  cpu=$(tail -1 "$tm" | awk '{printf "%.2f", $1 + $2}')
  wall=$(tail -1 "$tm" | awk '{printf "%.2f", $3}')
  echo "$line" | sed -E 's/.*: ([0-9.]+) s, ([0-9]+) frames captured, ([0-9]+) trained, ([0-9]+) steps \(([0-9.]+) steps\/s\), display ([0-9.]+) fps, delay median ([0-9.]+) ms, p95 ([0-9.]+) ms/\5 \6 \3\/\2 \7 \8/' |
    awk -v s="$size" -v b="$be" -v c="$cpu" -v w="$wall" \
      '{printf "%-10s %-8s %10s %10s %12s %10s %10s %8s %8s\n", s, b, $1, $2, $3, $4, $5, c, w}'
  echo "{\"bench\":\"app\",\"size\":\"$size\",\"backend\":\"$be\",\"cpu_s\":$cpu,\"wall_s\":$wall,\"summary\":\"${line#*live summary: }\"}"
  rm -f "$log" "$tm"
done
