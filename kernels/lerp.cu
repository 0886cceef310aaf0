// lerp.cu: the blend of a block toward a stored one, w = (1-a)*w + a*s (twin of
// lerp in ops.h), for the snapshot slots' cross-fade. Launched between training
// steps on the backend's stream, never inside a captured graph.
// Holds: lerp_kernel, then its launcher.
#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

// (1-a)*w rounded on its own, then one fused multiply-add, as the CPU op: the
// explicit intrinsics keep nvcc (which contracts a*b+c by default) from fusing
// it differently.
__global__ void lerp_kernel(float *w, const float *s, size_t n, float a) {
    float b = 1.0f - a;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        w[i] = __fmaf_rn(a, s[i], __fmul_rn(b, w[i]));
}

// ---- launchers

extern "C" void lerp_cuda(float *w, const float *s, size_t n, float a, cudaStream_t stream) {
    if (n == 0 || a == 0.0f) return;
    LAUNCH(lerp_kernel, tb_grid(n, TB_BLOCK, 4096), TB_BLOCK, stream, w, s, n, a);
}
