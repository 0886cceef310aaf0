#!/usr/bin/env bash
# bench_channels.sh: what [channels] costs on this machine: frames/s of a
# headless run on a real clip at 128x128 (default network, 1 step a frame) with
# 1, 2 and 4 channels (every extra channel a net of its own), then 4 with
# coupling 0.05 and 2 with a history channel. Runs alternate (1, 2, 4, ...)
# ROUNDS times so that a noisy machine weighs on each alike; the median is shown
# (the lower middle one for an even ROUNDS).
# usage: bench/bench_channels.sh [BUILD_DIR] [FRAMES] [ROUNDS]
set -eu
B=${1:-build} F=${2:-150} R=${3:-3}
DATA=${TABULA_DATA:-../shared/data}
CLIP="file:$DATA/hikers_forest_320x240.y4m"
RUN=(--headless --backend cpu --size 128x128 --source "$CLIP" --frames "$F")
declare -A CFG=(
  [1]="--channel-count 1"
  [2]="--channel-count 2 --ch1.lr 0.5"
  [4]="--channel-count 4 --ch1.lr 0.5 --ch2.lr 1 --ch3.momentum 0.5"
  [4c]="--channel-count 4 --ch1.lr 0.5 --ch2.lr 1 --ch3.momentum 0.5 --coupling 0.05"
  [2h]="--channel-count 2 --ch1.kind history --ch1.minutes 0.05 --ch1.refresh_s 1"
)
ORDER=(1 2 4 4c 2h)
declare -A T
for ((r = 0; r < R; r++)); do
  for k in "${ORDER[@]}"; do
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$B/tabula" "${RUN[@]}" ${CFG[$k]} 2>/dev/null
    t1=$(date +%s.%N)
    T[$k]="${T[$k]:-} $(echo "$t1 - $t0" | bc -l)"
  done
done
echo "| channels | frames/s (median of $R) | s per $F frames (each round) | cost vs 1 |"
echo "|---|---|---|---|"
base=
for k in "${ORDER[@]}"; do
  med=$(printf '%s\n' ${T[$k]} | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  fps=$(echo "$F / $med" | bc -l)
  [ -z "$base" ] && base=$med
  printf '| %s | %.1f | %s | %.2fx |\n' "$k" "$fps" "$(printf '%.1f ' ${T[$k]})" "$(echo "$med / $base" | bc -l)"
done
