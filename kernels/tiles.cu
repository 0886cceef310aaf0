// tiles.cu: the layer atlas's tiles on the GPU (twin of tiles_draw in ops.h),
// straight from an activation block in device memory into an RGBA8 picture in
// device memory (e.g. a staging buffer for a GL pixel buffer).
// NHWC (TB_NHWC): channel c's value i at c + i*ch instead of c*hw + i.
// Holds: the value -> colour index (the CPU's arithmetic), the tiles kernel (a
// block per grid cell: the channel's min and max, then its tile and gaps), the
// image kernel (the output as a picture), and the launcher tiles_draw_cuda.
#include "ops.h"
#include "ops_cuda.h"

// ---- arithmetic: as tiles.c, with the roundings spelled out (no FMA nvcc might add)

__device__ __forceinline__ int tile_index(float v, float lo, float k) {
    float f = __fmaf_rn(__fsub_rn(v, lo), k, 0.5f);
    return f >= 0.0f ? (f < 255.0f ? (int)f : 255) : 0;
}

__device__ __forceinline__ unsigned char image_byte(float v) {
    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    return (unsigned char)__fmaf_rn(v, 255.0f, 0.5f);
}

// Min and max over a block (blockDim.x a multiple of 32, at most 1024), NaN left
// out as by the CPU's comparisons; every thread must call it, once per kernel,
// and every thread gets the result. The order of the comparisons does not
// change the result (signed zeros aside, which give the same pixels).
__device__ inline void block_minmax(float *lo, float *hi) {
    __shared__ float part[2][32];
    __shared__ float res[2];
    float l = *lo, h = *hi;
    for (int o = 16; o > 0; o >>= 1) {
        float lo2 = __shfl_down_sync(0xffffffffu, l, o), hi2 = __shfl_down_sync(0xffffffffu, h, o);
        l = lo2 < l ? lo2 : l, h = hi2 > h ? hi2 : h;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[0][warp] = l, part[1][warp] = h;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            l = part[0][w] < l ? part[0][w] : l, h = part[1][w] > h ? part[1][w] : h;
        res[0] = l, res[1] = h;
    }
    __syncthreads();
    *lo = res[0], *hi = res[1];
}

// ---- kernels

// grid (cols * rows): block c is grid cell c: channel c's min and max, then its
// tile and the gaps right of and below it (clipped at the block's edges), or,
// past the last channel, background. Every pixel of the block is one cell's.
template <typename T>
__global__ void tiles_kernel(uint8_t *rgba, size_t pitch, const T *act, TileGeom g,
                             const uint8_t *lut, int nhwc) {
    __shared__ uint8_t s_lut[256 * 3];
    for (int i = threadIdx.x; i < 256 * 3; i += blockDim.x) s_lut[i] = lut[i];
    int c = blockIdx.x, rows = (g.ch + g.cols - 1) / g.cols;
    int cx = c % g.cols, cy = c / g.cols;
    int W = g.cols * (g.tw + 1) - 1, H = rows * (g.th + 1) - 1;
    int used = g.ch - (rows - 1) * g.cols, bg_x = used * (g.tw + 1) - 1;  // the last row's unused cells
    size_t hw = (size_t)g.sw * g.sh;
    size_t ps = nhwc ? (size_t)g.ch : 1;  // one value to the next
    const T *x = act + (size_t)(c < g.ch ? c : 0) * (nhwc ? 1 : hw);
    float lo = INFINITY, hi = -INFINITY;
    if (c < g.ch)  // uniform over the block: every thread reaches the barriers below
        for (size_t i = threadIdx.x; i < hw; i += blockDim.x) {
            float v = tb_ld(x[i * ps]);
            lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        }
    block_minmax(&lo, &hi);  // its barriers also publish s_lut
    float k = hi > lo ? __fdiv_rn(255.0f, __fsub_rn(hi, lo)) : 0.0f;
    int u0 = cx * (g.tw + 1), v0 = cy * (g.th + 1);
    int cw = min(g.tw + 1, W - u0), ch = min(g.th + 1, H - v0);
    for (int p = threadIdx.x; p < cw * ch; p += blockDim.x) {
        int iu = p % cw, iv = p / cw, u = u0 + iu, v = v0 + iv, col;
        if (cy == rows - 1 && used < g.cols && u >= bg_x) col = -2;
        else if (iu == g.tw || iv == g.th) col = -1;
        else col = tile_index(tb_ld(x[((size_t)(iv * g.sh / g.th) * g.sw + iu * g.sw / g.tw) * ps]), lo, k);
        uchar4 out;
        if (col >= 0) out = make_uchar4(s_lut[3 * col], s_lut[3 * col + 1], s_lut[3 * col + 2], 255);
        else if (col == -1) out = make_uchar4(g.gap, g.gap, g.gap, 255);
        else out = make_uchar4(g.bg, g.bg, g.bg, 255);
        *(uchar4 *)(rgba + (size_t)(g.y + v) * pitch + 4 * (size_t)(g.x + u)) = out;
    }
}

// 2D grid over (tw, th): each thread one pixel of the picture of the 3 planes.
template <typename T>
__global__ void tiles_image_kernel(uint8_t *rgba, size_t pitch, const T *x, TileGeom g, int nhwc) {
    int u = blockIdx.x * blockDim.x + threadIdx.x;
    int v = blockIdx.y * blockDim.y + threadIdx.y;
    if (u >= g.tw || v >= g.th) return;
    size_t n = nhwc ? 1 : (size_t)g.sw * g.sh, i = (size_t)(v * g.sh / g.th) * g.sw + u * g.sw / g.tw;
    const T *xp = x + i * (nhwc ? 3 : 1);
    uchar4 out = make_uchar4(image_byte(tb_ld(xp[0])), image_byte(tb_ld(xp[n])),
                             image_byte(tb_ld(xp[2 * n])), 255);
    *(uchar4 *)(rgba + (size_t)(g.y + v) * pitch + 4 * (size_t)(g.x + u)) = out;
}

// ---- launcher

// The activations float or bfloat16 (T): read exactly, drawn from those values.
template <typename T>
static void tiles_draw_t(uint8_t *rgba, size_t pitch, const T *act, const TileGeom *g,
                         const uint8_t *lut, int layout, cudaStream_t stream) {
    // uchar4 stores need 4-byte aligned rows.
    CHECK(pitch % 4 == 0 && ((uintptr_t)rgba & 3) == 0, "tiles: rgba pitch %zu", pitch);
    CHECK(g->ch >= 1 && g->cols >= 1 && g->tw >= 1 && g->th >= 1 && g->sw >= 1 && g->sh >= 1,
          "tiles: %d channels, %d columns, tile %dx%d of %dx%d", g->ch, g->cols, g->tw, g->th, g->sw, g->sh);
    if (g->image) {
        CHECK(g->ch == 3, "tiles: an image of %d planes", g->ch);
        dim3 block(32, 8);
        dim3 grid((unsigned)tb_ceil_div((size_t)g->tw, 32), (unsigned)tb_ceil_div((size_t)g->th, 8));
        LAUNCH(tiles_image_kernel<T>, grid, block, stream, rgba, pitch, act, *g,
               layout == TB_NHWC);
        return;
    }
    int rows = (g->ch + g->cols - 1) / g->cols;
    LAUNCH(tiles_kernel<T>, (unsigned)(rows * g->cols), TB_BLOCK, stream, rgba, pitch, act, *g,
           lut, layout == TB_NHWC);
}

extern "C" void tiles_draw_cuda(uint8_t *rgba, size_t pitch, const float *act, const TileGeom *g,
                                const uint8_t *lut, int layout, cudaStream_t stream) {
    tiles_draw_t(rgba, pitch, act, g, lut, layout, stream);
}
void tiles_draw_cuda(uint8_t *rgba, size_t pitch, const __nv_bfloat16 *act, const TileGeom *g,
                     const uint8_t *lut, int layout, cudaStream_t stream) {
    tiles_draw_t(rgba, pitch, act, g, lut, layout, stream);
}
