// bottleneck.cu: the bottleneck control's CUDA twin (ops.h, bottleneck_*): y =
// mask[c] * (x + noise * N(0,1)), dx = mask[c] * dy. The noise amplitude and
// the pass counter of the draws are read from device memory, so a captured
// graph replays with the current amplitude and draws anew each pass
// (bottleneck_next_cuda moves the counter on, in stream order). The draws are
// bottleneck_gauss's formula (src/ops/bottleneck.c): the same hash, so the
// CPU and the GPU draw the same numbers (to the last bits of logf and cosf).
// NHWC (TB_NHWC): the channel of element i is i % C, and its draw is the one
// of its NCHW index, so both layouts add the same noise to the same value.
// Holds: the hash, the kernels, then their launchers.
#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

__device__ static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__device__ static float gauss(uint64_t pass, uint64_t i) {
    uint64_t h = mix64(mix64(pass * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) ^ i);
    float u1 = ((float)(uint32_t)(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
    float u2 = (float)(uint32_t)((h >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

// Element i's channel, and its index in NCHW order (the draw's).
__device__ __forceinline__ int chan_of(size_t i, int C, int HW, int nhwc) {
    return nhwc ? (int)(i % C) : (int)(i / HW % C);
}
__device__ __forceinline__ size_t nchw_index(size_t i, int C, int HW, int nhwc) {
    if (!nhwc) return i;
    size_t per = (size_t)C * HW, b = i / per, r = i % per;
    return b * per + (r % C) * HW + r / C;
}

template <typename T>
__global__ void bottleneck_forward_kernel(T *y, const T *x, const float *mask,
                                          const float *noise, const unsigned long long *pass,
                                          int C, int HW, size_t n, int nhwc) {
    float a = *noise;
    uint64_t p = *pass;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float m = mask[chan_of(i, C, HW, nhwc)], v = tb_ld(x[i]);
        if (a > 0) v = __fmaf_rn(a, gauss(p, nchw_index(i, C, HW, nhwc)), v);
        y[i] = tb_st<T>(m != 0 ? __fmul_rn(m, v) : 0.0f);
    }
}

template <typename T>
__global__ void bottleneck_backward_kernel(T *dx, const T *dy, const float *mask, int C, int HW,
                                           size_t n, int nhwc) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float m = mask[chan_of(i, C, HW, nhwc)];
        dx[i] = tb_st<T>(m != 0 ? __fmul_rn(m, tb_ld(dy[i])) : 0.0f);
    }
}

__global__ void bottleneck_next_kernel(unsigned long long *pass) { *pass += 1; }

// ---- launchers

// The tensors float or bfloat16 (T): loaded to float, one rounding on store.
template <typename T>
static void bottleneck_forward_t(T *y, const T *x, const float *mask, const float *noise,
                                 const unsigned long long *pass, int B, int C, int HW, int layout,
                                 cudaStream_t stream) {
    size_t n = (size_t)B * C * HW;
    LAUNCH(bottleneck_forward_kernel<T>, tb_grid(n, TB_BLOCK, 4096), TB_BLOCK, stream, y, x, mask,
           noise, pass, C, HW, n, layout == TB_NHWC);
}
template <typename T>
static void bottleneck_backward_t(T *dx, const T *dy, const float *mask, int B, int C, int HW,
                                  int layout, cudaStream_t stream) {
    size_t n = (size_t)B * C * HW;
    LAUNCH(bottleneck_backward_kernel<T>, tb_grid(n, TB_BLOCK, 4096), TB_BLOCK, stream, dx, dy,
           mask, C, HW, n, layout == TB_NHWC);
}

extern "C" void bottleneck_forward_cuda(float *y, const float *x, const float *mask,
                                        const float *noise, const unsigned long long *pass, int B,
                                        int C, int HW, int layout, cudaStream_t stream) {
    bottleneck_forward_t(y, x, mask, noise, pass, B, C, HW, layout, stream);
}
void bottleneck_forward_cuda(__nv_bfloat16 *y, const __nv_bfloat16 *x, const float *mask,
                             const float *noise, const unsigned long long *pass, int B, int C,
                             int HW, int layout, cudaStream_t stream) {
    bottleneck_forward_t(y, x, mask, noise, pass, B, C, HW, layout, stream);
}

extern "C" void bottleneck_backward_cuda(float *dx, const float *dy, const float *mask, int B,
                                         int C, int HW, int layout, cudaStream_t stream) {
    bottleneck_backward_t(dx, dy, mask, B, C, HW, layout, stream);
}
void bottleneck_backward_cuda(__nv_bfloat16 *dx, const __nv_bfloat16 *dy, const float *mask, int B,
                              int C, int HW, int layout, cudaStream_t stream) {
    bottleneck_backward_t(dx, dy, mask, B, C, HW, layout, stream);
}

extern "C" void bottleneck_next_cuda(unsigned long long *pass, cudaStream_t stream) {
    LAUNCH(bottleneck_next_kernel, 1, 1, stream, pass);
}
