// act.cu: bias + activation, fused (twin of bias_act_forward/backward in ops.h).
// Forward: one pass y = act(y + b[c]) right after cuDNN's convolution.
// Backward: one pass d *= act'(y) that also produces the bias gradient, summed
// per channel in two deterministic stages (block partials, then one warp per
// channel), so no atomics and the same bits every run.
// Holds: the activation device functions and the three kernels, then their
// launchers bias_act_forward_cuda / bias_act_backward_cuda and the scratch size.
#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

// Activation from its pre-activation value, as the CPU op. __fdiv_rn: IEEE
// division whatever the compiler flags (and 1/(1+inf) = 0 for large negative x).
__device__ __forceinline__ float act_apply(float x, int act, float slope) {
    if (act == ACT_LEAKY) return x > 0.0f ? x : x * slope;
    if (act == ACT_SIGMOID) return __fdiv_rn(1.0f, 1.0f + expf(-x));
    return x;
}

// Gradient through the activation, from its OUTPUT y: LeakyReLU keeps the sign of
// its input (slope >= 0), sigmoid' = y(1-y). Products in the CPU op's order.
__device__ __forceinline__ float act_backward(float g, float y, int act, float slope) {
    if (act == ACT_LEAKY) return y > 0.0f ? g : g * slope;
    if (act == ACT_SIGMOID) return g * (1.0f - y) * y;
    return g;
}

// grid.x covers one (b, c) plane of HW elements, grid.y strides over the B*C planes
// (so no per-element division to find the channel).
__global__ void bias_act_forward_kernel(float *y, const float *b, int C, int HW, int planes,
                                        int act, float slope) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        float bias = b ? b[plane % C] : 0.0f;
        size_t i = (size_t)plane * HW + p;
        y[i] = act_apply(y[i] + bias, act, slope);
    }
}

// grid (chunks, C): block (k, c) takes the k-th range of every (b, c) plane,
// applies act' in place and writes one partial sum to partial[c*chunks + k]
// (partial may be NULL: no bias gradient).
__global__ void bias_act_backward_kernel(float *d, float *partial, const float *y, int B, int C,
                                         int HW, int act, float slope) {
    int c = blockIdx.y;
    int span = (HW + (int)gridDim.x - 1) / (int)gridDim.x;
    int p0 = (int)blockIdx.x * span, p1 = min(p0 + span, HW);
    double sum = 0.0;  // in double like the CPU op: sums over whole planes
    for (int b = 0; b < B; b++) {
        size_t base = ((size_t)b * C + c) * (size_t)HW;
        for (int p = p0 + (int)threadIdx.x; p < p1; p += (int)blockDim.x) {
            float g = act_backward(d[base + p], y[base + p], act, slope);
            d[base + p] = g;
            sum += (double)g;
        }
    }
    if (partial) {  // uniform over the block: block_sum's barriers are safe
        sum = block_sum(sum);
        if (threadIdx.x == 0) partial[(size_t)c * gridDim.x + blockIdx.x] = (float)sum;
    }
}

// One warp per channel adds that channel's `chunks` partials in a fixed order.
__global__ void bias_grad_finalize_kernel(float *db, const float *partial, int C, int chunks) {
    int c = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (c >= C) return;  // whole warps leave together (c is per warp)
    double s = 0.0;
    for (int k = lane; k < chunks; k += 32) s += (double)partial[(size_t)c * chunks + k];
    s = warp_sum(s);
    if (lane == 0) db[c] = (float)s;
}

// ---- launchers

extern "C" void bias_act_forward_cuda(float *y, const float *b, int B, int C, int HW, int act,
                                      float slope, cudaStream_t stream) {
    int planes = B * C;
    dim3 grid((unsigned)tb_ceil_div((size_t)HW, TB_BLOCK), (unsigned)(planes < 65535 ? planes : 65535));
    LAUNCH(bias_act_forward_kernel, grid, TB_BLOCK, stream, y, b, C, HW, planes, act, slope);
}

// Chunks per channel for the bias-gradient partials: enough blocks to fill the
// GPU when C is small (the RGB output layer), one when the planes are tiny. A
// chunk is a range of each plane, at least a block wide.
static int bias_chunks(int B, int HW) {
    size_t chunks = tb_ceil_div((size_t)B * HW, (size_t)TB_BLOCK * 16);
    size_t most = tb_ceil_div((size_t)HW, TB_BLOCK);
    if (chunks > most) chunks = most;
    if (chunks > 128) chunks = 128;
    if (chunks < 1) chunks = 1;
    return (int)chunks;
}

extern "C" size_t bias_act_backward_scratch(int B, int C, int HW) {
    int chunks = bias_chunks(B, HW);
    return chunks > 1 ? (size_t)C * chunks : 0;
}

extern "C" void bias_act_backward_cuda(float *d, float *db, const float *y, int B, int C, int HW,
                                       int act, float slope, float *scratch, cudaStream_t stream) {
    int chunks = bias_chunks(B, HW);
    // With one chunk per channel the block's sum is the gradient itself.
    float *partial = db == NULL ? NULL : (chunks == 1 ? db : scratch);
    CHECK(C <= 65535, "bias_act_backward: %d channels", C);
    CHECK(db == NULL || chunks == 1 || scratch != NULL,
          "bias_act_backward: %d chunks need a scratch", chunks);
    dim3 grid((unsigned)chunks, (unsigned)C);
    LAUNCH(bias_act_backward_kernel, grid, TB_BLOCK, stream, d, partial, y, B, C, HW, act, slope);
    if (db != NULL && chunks > 1) {
        int warps_per_block = TB_BLOCK / 32;
        unsigned blocks = (unsigned)tb_ceil_div((size_t)C, (size_t)warps_per_block);
        LAUNCH(bias_grad_finalize_kernel, blocks, TB_BLOCK, stream, db, partial, C, chunks);
    }
}
