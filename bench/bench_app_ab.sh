#!/usr/bin/env bash
# bench_app_ab.sh [SIZE] [ROUNDS]: the live app (bench_app.sh, CPU backend) with
# TABULA_CPU_CONV=gemm (A) and =dnnl (B) alternately, A B A B ..., so that the
# load of a shared machine falls on both alike; then the medians of training
# steps/s, display fps and the app's CPU seconds per training step.
#   bench/bench_app_ab.sh 256x256 3
set -u
cd "$(dirname "$0")/.."
SIZE=${1:-256x256}
ROUNDS=${2:-3}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "$(nproc) cores, load before $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for conv in gemm dnnl; do
    TABULA_CPU_CONV=$conv bench/bench_app.sh cpu "$SIZE" | grep '^{' |
      sed "s/^{/{\"round\":$r,\"conv\":\"$conv\",/" | tee -a "$OUT"
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" <<'PY'
import json, re, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'conv':>5} {'steps/s':>16} {'display fps':>16} {'cpu ms/step':>12} {'cpu/wall':>9}")
for conv in ("gemm", "dnnl"):
    sps, fps, cms, util = [], [], [], []
    for r in rows:
        if r["conv"] != conv:
            continue
        m = re.search(r"(\d+) steps \(([\d.]+) steps/s\), display ([\d.]+) fps", r["summary"])
        steps = int(m.group(1))
        sps.append(float(m.group(2))), fps.append(float(m.group(3)))
        cms.append(1e3 * r["cpu_s"] / max(steps, 1)), util.append(r["cpu_s"] / r["wall_s"])
    med = statistics.median
    print(f"{conv:>5} {med(sps):6.1f} ({min(sps):.1f}-{max(sps):.1f}) {med(fps):6.1f} "
          f"({min(fps):.1f}-{max(fps):.1f}) {med(cms):12.1f} {med(util):9.2f}")
PY
