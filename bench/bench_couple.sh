#!/usr/bin/env bash
# bench_couple.sh: what coupling costs: frames/s of a headless run on a real
# clip at 128x128 (default network, one step a frame, CPU backend) with 4 net
# channels, coupling 0 and COUPLING, for each build given (e.g. one before and
# one after a change) and each CPU convolution path. Runs alternate ROUNDS
# times so that a noisy machine weighs on each alike; the median and the best
# are shown (on a shared machine the best is the run least disturbed).
# usage: bench/bench_couple.sh FRAMES ROUNDS COUPLING BUILD_DIR...
set -eu
F=${1:-150} R=${2:-3} C=${3:-0.1}
shift 3
DATA=${TABULA_DATA:-../shared/data}
RUN=(--headless --backend cpu --size 128x128 --source "file:$DATA/hikers_forest_320x240.y4m" --frames "$F"
     --channel-count 4 --ch1.lr 0.5 --ch2.lr 1 --ch3.momentum 0.5)
declare -A T
for ((r = 0; r < R; r++)); do
  for conv in dnnl gemm; do
    for b in "$@"; do
      for c in 0 "$C"; do
        t0=$(date +%s.%N)
        TABULA_CPU_CONV=$conv "$b/tabula" "${RUN[@]}" --coupling "$c" 2>/dev/null
        t1=$(date +%s.%N)
        T[$conv $b $c]="${T[$conv $b $c]:-} $(echo "$t1 - $t0" | bc -l)"
      done
    done
  done
done
echo "| conv | build | coupling | frames/s (median of $R) | frames/s (best) | s per $F frames (each round) |"
echo "|---|---|---|---|---|---|"
for conv in dnnl gemm; do
  for b in "$@"; do
    for c in 0 "$C"; do
      k="$conv $b $c"
      med=$(printf '%s\n' ${T[$k]} | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
      best=$(printf '%s\n' ${T[$k]} | sort -g | head -1)
      printf '| %s | %s | %s | %.1f | %.1f | %s |\n' "$conv" "$b" "$c" "$(echo "$F / $med" | bc -l)" \
        "$(echo "$F / $best" | bc -l)" "$(printf '%.1f ' ${T[$k]})"
    done
  done
done
