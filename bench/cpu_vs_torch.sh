#!/usr/bin/env bash
# cpu_vs_torch.sh: tabula's CPU training step (default network, batch 1, SGD
# with momentum and clipping) with each convolution path, oneDNN and im2col +
# GEMM, against PyTorch eager and torch.compile on the same network
# (bench/torch_bench.py), back to back, and one table at the end.
#   bench/cpu_vs_torch.sh [BUILD_DIR] [PYTHON]
# Environment: SIZES (default 128x128,256x256,448x256), ROUNDS (3), THREADS (2),
# WAIT (OMP_WAIT_POLICY for every run: passive (default, as in window runs),
# active, or default for the OpenMP runtime's own).
# PYTHON: a Python with a current torch, e.g. after
#   python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch numpy pillow
# On a machine shared with other work the wall times swing from run to run:
# compare the ratios within one round, over several rounds (the table shows
# the median and the range), and the CPU time per step, which lost time slices
# do not inflate.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
PY=${2:-/tmp/tv/bin/python}
SIZES=${SIZES:-128x128,256x256,448x256}
ROUNDS=${ROUNDS:-3}
export OMP_NUM_THREADS=${THREADS:-2} OMP_WAIT_POLICY=${WAIT:-passive}
if [ "$OMP_WAIT_POLICY" = default ]; then unset OMP_WAIT_POLICY; fi  # the runtime's own
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores, $OMP_NUM_THREADS threads," \
  "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" -c 'import torch; print("torch", torch.__version__)'
for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  for conv in dnnl gemm; do
    TABULA_CPU_CONV=$conv "$BUILD/bench_train" --backend cpu --sizes "$SIZES" | grep '^{' |
      sed "s/^{/{\"round\":$r,\"impl_name\":\"tabula-$conv\",/" >>"$OUT"
  done
  for mode in eager compile; do
    "$PY" "$ROOT/bench/torch_bench.py" --mode "$mode" --threads "$OMP_NUM_THREADS" \
      --sizes "$SIZES" 2>/dev/null | grep '^{' |
      sed "s/^{/{\"round\":$r,\"impl_name\":\"torch-$mode\",/" >>"$OUT"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" "$SIZES" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sizes = sys.argv[2].split(",")
impls = ["tabula-dnnl", "tabula-gemm", "torch-eager", "torch-compile"]
def get(impl, size, key):
    return [r[key] for r in rows if r["impl_name"] == impl and r["size"] == size and r.get(key)]
print(f"{'size':>9} {'impl':>14} {'wall ms/step':>22} {'cpu ms/step':>12} {'wall/torch best':>16}")
for s in sizes:
    best = min(statistics.median(get(i, s, "ms_per_step")) for i in impls[2:] if get(i, s, "ms_per_step"))
    for i in impls:
        w, c = get(i, s, "ms_per_step"), get(i, s, "cpu_ms_per_step")
        if not w:
            continue
        med = statistics.median(w)
        rng = f"({min(w):.1f}-{max(w):.1f})"
        print(f"{s:>9} {i:>14} {med:8.1f} {rng:>13} {statistics.median(c):12.1f} {med / best:16.2f}")
# Per round, tabula-dnnl over the better torch of the same round (back to back).
for s in sizes:
    rat = []
    for r in sorted({x["round"] for x in rows}):
        t = [x["ms_per_step"] for x in rows if x["round"] == r and x["size"] == s and x["impl_name"].startswith("torch")]
        d = [x["ms_per_step"] for x in rows if x["round"] == r and x["size"] == s and x["impl_name"] == "tabula-dnnl"]
        if t and d:
            rat.append(d[0] / min(t))
    print(f"{s}: tabula-dnnl / best torch, per round: " + " ".join(f"{v:.2f}" for v in rat))
PY
