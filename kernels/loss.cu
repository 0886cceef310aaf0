// loss.cu: the losses and their gradients, each in one pass (twins of
// mse_forward_backward and l1_forward_backward in ops.h). The loss stays on the
// device: per-block double partials, then one block adds them in a fixed order
// into the scalar.
// Holds: mse_kernel, l1_kernel and sum_partials_kernel (the second stage shared
// with optim.cu's gradient norm), then their launchers.
#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

__global__ void mse_kernel(float *dy, double *partial, const float *y, const float *t, size_t n,
                           float grad_scale) {
    double s = 0.0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float d = y[i] - t[i];
        if (dy) dy[i] = grad_scale * d;
        s += (double)d * (double)d;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// |y - t| summed per block, dy = grad_scale * sign(y - t) with sign(0) = 0 (as
// the CPU op: the error formed in float, its magnitude summed in double).
__global__ void l1_kernel(float *dy, double *partial, const float *y, const float *t, size_t n,
                          float grad_scale) {
    double s = 0.0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float d = y[i] - t[i];
        if (dy) dy[i] = d > 0.0f ? grad_scale : d < 0.0f ? -grad_scale : 0.0f;
        s += fabs((double)d);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block: *out = sum(partial[0..count)) / div, or its square root.
__global__ void sum_partials_kernel(float *out, const double *partial, int count, double div,
                                    int take_sqrt) {
    double s = 0.0;
    for (int k = threadIdx.x; k < count; k += blockDim.x) s += partial[k];
    s = block_sum(s);
    if (threadIdx.x == 0) {
        s /= div;
        *out = (float)(take_sqrt ? sqrt(s) : s);
    }
}

// ---- launchers

extern "C" void sum_partials_cuda(float *out, const double *partial, int count, double div,
                                  int take_sqrt, cudaStream_t stream) {
    CHECK(count >= 1 && count <= TB_REDUCE_BLOCKS, "%d partials", count);
    LAUNCH(sum_partials_kernel, 1, 1024, stream, out, partial, count, div, take_sqrt);
}

extern "C" void mse_forward_backward_cuda(float *dy, float *loss, const float *y, const float *t,
                                          size_t n, double *scratch, cudaStream_t stream) {
    CHECK(n > 0, "mse over 0 elements");
    unsigned blocks = tb_grid(n, TB_BLOCK, TB_REDUCE_BLOCKS);
    // dy = (2/n)(y-t) as PyTorch and the CPU op: the factor rounded to float once.
    float grad_scale = (float)(2.0 / (double)n);
    LAUNCH(mse_kernel, blocks, TB_BLOCK, stream, dy, scratch, y, t, n, grad_scale);
    sum_partials_cuda(loss, scratch, (int)blocks, (double)n, 0, stream);
}

extern "C" void l1_forward_backward_cuda(float *dy, float *loss, const float *y, const float *t,
                                         size_t n, double *scratch, cudaStream_t stream) {
    CHECK(n > 0, "l1 over 0 elements");
    unsigned blocks = tb_grid(n, TB_BLOCK, TB_REDUCE_BLOCKS);
    // dy = sign(y-t)/n as PyTorch and the CPU op: the factor rounded to float once.
    float grad_scale = (float)(1.0 / (double)n);
    LAUNCH(l1_kernel, blocks, TB_BLOCK, stream, dy, scratch, y, t, n, grad_scale);
    sum_partials_cuda(loss, scratch, (int)blocks, (double)n, 0, stream);
}
