#!/usr/bin/env bash
# test_cuda_build.sh: why it exists: how the CUDA backend is built decides what
# runs on the GPU machine, and none of it shows without one. One CUDA runtime
# (two copies, shared and static, each with its own state, break interop and
# graphs in ways no test here can see); one cuDNN handle per backend, never
# one per call; no --use_fast_math, since the kernels are held to the CPU's
# IEEE results. Skips in a build without CUDA.
set -u
. "$(dirname "$0")/lib.sh"
BIN=${TABULA_BIN:?set by CTest}
SRC=${TABULA_SRC:?set by CTest}
BUILD=$(dirname "$BIN")
ldd "$BIN" 2>/dev/null | grep -q libcudart || skip_all "built without the CUDA backend"

one_shared_cuda_runtime() {
  local n
  n=$(ldd "$BIN" | grep -c "libcudart\.so")
  [ "$n" = 1 ] && ok || bad "$n libcudart lines in ldd $BIN"
  # No program of the build links the static runtime as well.
  local f bad_links=""
  for f in "$BUILD"/CMakeFiles/*.dir/link.txt "$BUILD"/CMakeFiles/*.dir/linkLibs.rsp; do
    [ -e "$f" ] || continue
    grep -q "cudart_static" "$f" && bad_links="$bad_links $f"
  done
  [ -z "$bad_links" ] && ok || bad "the static CUDA runtime is linked by:$bad_links"
  check test -e "$BUILD/CMakeFiles/tabula.dir/link.txt"
}

one_cudnn_handle_per_backend() {
  # cuda_available's probe (created and destroyed) and the backend's own handle.
  local where
  where=$(grep -rn "cudnnCreate(" "$SRC/src" "$SRC/kernels" | grep -v "^[^:]*:[0-9]*: *//")
  [ "$(echo "$where" | wc -l)" = 2 ] && ok || bad "cudnnCreate( calls: $where"
  echo "$where" | grep -q "backend_cuda.cu:.*cudnnCreate(&c->cudnn)" && ok ||
    bad "the backend's handle is not made in backend_cuda.cu: $where"
}

no_fast_math() {
  grep -n "use_fast_math" "$SRC/CMakeLists.txt" | grep -v "#" && bad "--use_fast_math in CMakeLists.txt" || ok
  grep -q -- "--use_fast_math" "$BUILD"/CMakeFiles/tabula_kernels.dir/flags.make 2>/dev/null &&
    bad "--use_fast_math in the kernels' flags" || ok
}

run_case one_shared_cuda_runtime
run_case one_cudnn_handle_per_backend
run_case no_fast_math
finish
