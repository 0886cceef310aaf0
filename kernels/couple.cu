// couple.cu: the channels' coupling (twin of couple in ops.h): k weight blocks
// of n floats, every one pulled toward their mean by c, the mean taken before
// any block moves. Launched between training steps on the first backend's
// stream, never inside a captured graph (c is a host value).
// Holds: couple_kernel, then its launcher.
#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

// One element of every block per thread: the sum in block order, mean = sum *
// inv, then lerp's (1-c)*w rounded on its own and one fused multiply-add, as
// the CPU op. The explicit intrinsics keep nvcc (which contracts a*b+c by
// default) from fusing anything the CPU op keeps apart.
__global__ void couple_kernel(float *const *w, int k, size_t n, float c) {
    float b = 1.0f - c, inv = __fdiv_rn(1.0f, (float)k);
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float sum = 0;
        for (int j = 0; j < k; j++) sum = __fadd_rn(sum, w[j][i]);
        float mean = __fmul_rn(sum, inv);
        for (int j = 0; j < k; j++) w[j][i] = __fmaf_rn(c, mean, __fmul_rn(b, w[j][i]));
    }
}

// ---- launchers

extern "C" void couple_cuda(float *const *w, int k, size_t n, float c, cudaStream_t stream) {
    if (n == 0 || k < 2 || c == 0.0f) return;
    LAUNCH(couple_kernel, tb_grid(n, TB_BLOCK, 4096), TB_BLOCK, stream, w, k, n, c);
}
