#!/usr/bin/env bash
# gpu_session.sh [OUTDIR]: everything only a GPU can show, in one go, on a machine
# with nvcc, CMake and PyTorch but none of the desktop libraries: builds the engine
# (TABULA_APP=OFF) against cuDNN from the nvidia-cudnn wheel if there is no system
# cuDNN, runs the CUDA parity test and the whole engine suite, then the train-step
# benchmark of tabula and of PyTorch (eager and torch.compile) back to back.
# Logs go to OUTDIR (default $OUT or ./gpu-out); a short table is printed last.
# TABULA_REQUIRE_CUDA=1: here a GPU that cannot be used (driver, device, cuDNN)
# fails the parity test, naming why, instead of skipping it.
set -u
export TABULA_REQUIRE_CUDA=1
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-gpu-out}}
mkdir -p "$OUTDIR"
nvidia-smi > "$OUTDIR/nvidia-smi.txt" 2>&1 || true
CUDNN_ROOT=""
if ! ls /usr/local/cuda/include/cudnn.h >/dev/null 2>&1; then
  CUDNN_ROOT=$(python3 -c "import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))" 2>/dev/null)
  [ -n "$CUDNN_ROOT" ] && export LD_LIBRARY_PATH="$CUDNN_ROOT/lib:${LD_LIBRARY_PATH:-}"
  # The wheel ships libcudnn.so.9 only: give the linker the plain name.
  if [ -n "$CUDNN_ROOT" ] && [ ! -e "$CUDNN_ROOT/lib/libcudnn.so" ]; then
    mkdir -p build-gpu/cudnn-link && ln -sf "$CUDNN_ROOT/lib/libcudnn.so.9" build-gpu/cudnn-link/libcudnn.so
    export LIBRARY_PATH="$PWD/build-gpu/cudnn-link:${LIBRARY_PATH:-}"
  fi
fi
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
cmake -S . -B build-gpu -DTABULA_APP=OFF -DTABULA_CUDA=ON ${ARCH:+-DCMAKE_CUDA_ARCHITECTURES=$ARCH} \
  ${CUDNN_ROOT:+-DCUDNN_ROOT=$CUDNN_ROOT} > "$OUTDIR/cmake.log" 2>&1 || { tail -30 "$OUTDIR/cmake.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" > "$OUTDIR/build.log" 2>&1 || { grep -E "error" "$OUTDIR/build.log" | head -30; exit 1; }
(cd build-gpu && ./test_cuda_parity) > "$OUTDIR/parity.log" 2>&1; echo "parity exit $?" >> "$OUTDIR/parity.log"
(cd build-gpu && ctest --output-on-failure -j4) > "$OUTDIR/ctest.log" 2>&1
SIZES=128x128,256x256,448x256,1280x720,1920x1088
./build-gpu/bench_train --backend cuda --sizes $SIZES > "$OUTDIR/bench_tabula.log" 2>&1
python3 bench/torch_bench.py --device cuda --mode eager --sizes $SIZES > "$OUTDIR/bench_torch_eager.log" 2>&1
python3 bench/torch_bench.py --device cuda --mode compile --sizes $SIZES > "$OUTDIR/bench_torch_compile.log" 2>&1
echo "== parity";  tail -3 "$OUTDIR/parity.log"
echo "== ctest";   grep -E "tests passed|Failed|SKIP" "$OUTDIR/ctest.log" | head
echo "== tabula";  grep -v '^{' "$OUTDIR/bench_tabula.log"
echo "== torch eager";   grep -v '^{' "$OUTDIR/bench_torch_eager.log" | tail -6
echo "== torch compile"; grep -v '^{' "$OUTDIR/bench_torch_compile.log" | tail -6
