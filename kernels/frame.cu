// frame.cu: camera frames in, reconstructions out (twins of frame_to_tensor /
// tensor_to_frame in ops.h), plus RGBA8 for a GL pixel buffer.
// A step gathers its batch from the device's frame store itself (frames_gather):
// the slots to read come from device memory, so a CUDA graph replays with
// the current batch.
// Layout (TB_NCHW or TB_NHWC): value (pixel p, channel k) of a sample sits at
// k*cs + p*ps, cs = HW, ps = 1 in NCHW (planes) and cs = 1, ps = 3 in NHWC
// (the frame's own RGB order).
// Storage: the tensors are float or bfloat16 (kernels templated on T; a byte
// / 255 is rounded once into bfloat16, and a bfloat16 read back is exact).
// Holds: the byte conversion and the kernels, then their launchers
// frame_to_tensor_cuda, frames_gather_cuda, tensor_to_frame_cuda and
// tensor_to_rgba_cuda (float: extern "C"; bfloat16: C++ overloads).
#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

// grid (pixels of a frame, B): each thread reads 3 bytes, writes one float per
// channel (cs, ps: the layout's strides).
template <typename T>
__global__ void frame_to_tensor_kernel(T *x, const uint8_t *rgb, int HW, size_t cs, int ps) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    size_t b = blockIdx.y;
    const uint8_t *px = rgb + (b * HW + p) * 3;
    T *xb = x + b * 3 * (size_t)HW + (size_t)p * ps;
    // IEEE division, as the CPU's v / 255.0f (fast math would round differently).
    xb[0] = tb_st<T>(__fdiv_rn((float)px[0], 255.0f));
    xb[cs] = tb_st<T>(__fdiv_rn((float)px[1], 255.0f));
    xb[2 * cs] = tb_st<T>(__fdiv_rn((float)px[2], 255.0f));
}

// grid (pixels of a frame, B): sample b's input from store slot slots[b] into
// x, its target from slot slots[B + b] into t (the same values when the two
// slots are one).
template <typename T>
__global__ void frames_gather_kernel(T *x, T *t, const uint8_t *store, size_t frame_bytes,
                                     const int *slots, int B, int HW, size_t cs, int ps) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    size_t b = blockIdx.y;
    int si = slots[b], st = slots[B + b];
    const uint8_t *px = store + (size_t)si * frame_bytes + (size_t)p * 3;
    float r = __fdiv_rn((float)px[0], 255.0f), g = __fdiv_rn((float)px[1], 255.0f);
    float bl = __fdiv_rn((float)px[2], 255.0f);
    size_t at = b * 3 * (size_t)HW + (size_t)p * ps;
    T *xb = x + at, *tb = t + at;
    xb[0] = tb_st<T>(r), xb[cs] = tb_st<T>(g), xb[2 * cs] = tb_st<T>(bl);
    if (st != si) {
        px = store + (size_t)st * frame_bytes + (size_t)p * 3;
        r = __fdiv_rn((float)px[0], 255.0f), g = __fdiv_rn((float)px[1], 255.0f);
        bl = __fdiv_rn((float)px[2], 255.0f);
    }
    tb[0] = tb_st<T>(r), tb[cs] = tb_st<T>(g), tb[2 * cs] = tb_st<T>(bl);
}

// [0,1] -> 0..255, clamped and rounded half up; NaN becomes 0 (fmaxf drops it).
__device__ __forceinline__ uint8_t to_u8(float v) {
    v = fminf(fmaxf(v, 0.0f), 1.0f);
    return (uint8_t)__fadd_rn(__fmul_rn(v, 255.0f), 0.5f);  // no fused multiply-add: as the CPU
}

template <typename T>
__global__ void tensor_to_frame_kernel(uint8_t *rgb, const T *x, int HW, size_t cs, int ps) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    const T *xp = x + (size_t)p * ps;
    rgb[3 * (size_t)p] = to_u8(tb_ld(xp[0]));
    rgb[3 * (size_t)p + 1] = to_u8(tb_ld(xp[cs]));
    rgb[3 * (size_t)p + 2] = to_u8(tb_ld(xp[2 * cs]));
}
// Made here for test_kernel_host, which launches it wrongly on purpose.
template __global__ void tensor_to_frame_kernel<float>(uint8_t *rgb, const float *x, int HW,
                                                       size_t cs, int ps);

// 2D grid over (W, H); each thread writes one 4-byte pixel.
template <typename T>
__global__ void tensor_to_rgba_kernel(uint8_t *rgba, size_t pitch, const T *x, int H, int W,
                                      int nhwc) {
    int px = blockIdx.x * blockDim.x + threadIdx.x;
    int py = blockIdx.y * blockDim.y + threadIdx.y;
    if (px >= W || py >= H) return;
    size_t p = (size_t)py * W + px, cs = nhwc ? 1 : (size_t)H * W;
    const T *xp = x + p * (nhwc ? 3 : 1);
    uchar4 out = make_uchar4(to_u8(tb_ld(xp[0])), to_u8(tb_ld(xp[cs])), to_u8(tb_ld(xp[2 * cs])), 255);
    *(uchar4 *)(rgba + (size_t)py * pitch + 4 * (size_t)px) = out;
}

// ---- launchers

// The layout's strides for 3-channel samples of HW pixels.
static size_t chan_stride(int layout, int HW) { return layout == TB_NHWC ? 1 : (size_t)HW; }
static int pix_stride(int layout) { return layout == TB_NHWC ? 3 : 1; }

template <typename T>
static void frame_to_tensor_t(T *x, const uint8_t *rgb, int B, int H, int W, int layout,
                              cudaStream_t stream) {
    int HW = H * W;
    CHECK(B >= 1 && B <= 65535, "frame_to_tensor: batch %d", B);
    dim3 grid((unsigned)tb_ceil_div((size_t)HW, TB_BLOCK), (unsigned)B);
    LAUNCH(frame_to_tensor_kernel<T>, grid, TB_BLOCK, stream, x, rgb, HW,
           chan_stride(layout, HW), pix_stride(layout));
}

template <typename T>
static void frames_gather_t(T *x, T *t, const uint8_t *store, const int *slots, int B, int H,
                            int W, int layout, cudaStream_t stream) {
    int HW = H * W;
    CHECK(B >= 1 && B <= 65535, "frames_gather: batch %d", B);
    dim3 grid((unsigned)tb_ceil_div((size_t)HW, TB_BLOCK), (unsigned)B);
    LAUNCH(frames_gather_kernel<T>, grid, TB_BLOCK, stream, x, t, store, (size_t)HW * 3, slots, B,
           HW, chan_stride(layout, HW), pix_stride(layout));
}

template <typename T>
static void tensor_to_frame_t(uint8_t *rgb, const T *x, int H, int W, int layout,
                              cudaStream_t stream) {
    int HW = H * W;
    LAUNCH(tensor_to_frame_kernel<T>, (unsigned)tb_ceil_div((size_t)HW, TB_BLOCK), TB_BLOCK,
           stream, rgb, x, HW, chan_stride(layout, HW), pix_stride(layout));
}

template <typename T>
static void tensor_to_rgba_t(uint8_t *rgba, size_t pitch, const T *x, int H, int W, int layout,
                             cudaStream_t stream) {
    // uchar4 stores need 4-byte aligned rows.
    CHECK(pitch >= 4 * (size_t)W && pitch % 4 == 0 && ((uintptr_t)rgba & 3) == 0,
          "rgba pitch %zu for width %d", pitch, W);
    dim3 block(32, 8);
    dim3 grid((unsigned)tb_ceil_div((size_t)W, 32), (unsigned)tb_ceil_div((size_t)H, 8));
    LAUNCH(tensor_to_rgba_kernel<T>, grid, block, stream, rgba, pitch, x, H, W,
           layout == TB_NHWC);
}

extern "C" void frame_to_tensor_cuda(float *x, const uint8_t *rgb, int B, int H, int W,
                                     int layout, cudaStream_t stream) {
    frame_to_tensor_t(x, rgb, B, H, W, layout, stream);
}
void frame_to_tensor_cuda(__nv_bfloat16 *x, const uint8_t *rgb, int B, int H, int W, int layout,
                          cudaStream_t stream) {
    frame_to_tensor_t(x, rgb, B, H, W, layout, stream);
}

extern "C" void frames_gather_cuda(float *x, float *t, const uint8_t *store, const int *slots,
                                   int B, int H, int W, int layout, cudaStream_t stream) {
    frames_gather_t(x, t, store, slots, B, H, W, layout, stream);
}
void frames_gather_cuda(__nv_bfloat16 *x, __nv_bfloat16 *t, const uint8_t *store,
                        const int *slots, int B, int H, int W, int layout, cudaStream_t stream) {
    frames_gather_t(x, t, store, slots, B, H, W, layout, stream);
}

extern "C" void tensor_to_frame_cuda(uint8_t *rgb, const float *x, int H, int W, int layout,
                                     cudaStream_t stream) {
    tensor_to_frame_t(rgb, x, H, W, layout, stream);
}
void tensor_to_frame_cuda(uint8_t *rgb, const __nv_bfloat16 *x, int H, int W, int layout,
                          cudaStream_t stream) {
    tensor_to_frame_t(rgb, x, H, W, layout, stream);
}

extern "C" void tensor_to_rgba_cuda(uint8_t *rgba, size_t pitch, const float *x, int H, int W,
                                    int layout, cudaStream_t stream) {
    tensor_to_rgba_t(rgba, pitch, x, H, W, layout, stream);
}
void tensor_to_rgba_cuda(uint8_t *rgba, size_t pitch, const __nv_bfloat16 *x, int H, int W,
                         int layout, cudaStream_t stream) {
    tensor_to_rgba_t(rgba, pitch, x, H, W, layout, stream);
}
