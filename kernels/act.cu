// act.cu: bias + activation, fused (twin of bias_act_forward/backward in ops.h).
// Forward: one pass y = act(y + b[c]) right after cuDNN's convolution.
// Backward: one pass d *= act'(y) that also produces the bias gradient, summed
// per channel in two deterministic stages (block partials, then one warp per
// channel, run by the block that finishes last), so one launch, no atomic
// sums and the same bits every run.
// The output layer's bias + activation, the loss and the gradient back through
// the activation (with the bias gradient) are one kernel too: out_act_loss.
// NHWC (channels last, TB_NHWC): the same passes over rows of C channels; the
// bias gradient is then a column sum: a block takes up to 32 channels side by
// side over a range of rows and adds its columns in a fixed order, so the
// partials, the finish and the one launch are as in NCHW.
// Storage (TABULA_CUDA_DTYPE): every kernel is a template on the activations'
// type T, float or __nv_bfloat16; biases, their gradients, the loss and all
// sums are float (or double) either way. A bfloat16 value is loaded to float,
// the element's steps are the float ones, and what is stored is rounded once;
// the sums (bias gradient, loss) take the float values before that rounding.
// Holds: the activation device functions and the kernels (NCHW, then NHWC),
// then their launchers bias_act_forward_cuda / bias_act_backward_cuda /
// out_act_loss_cuda (float: extern "C"; bfloat16: C++ overloads) and the
// scratch size.
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
template <typename T>
__global__ void bias_act_forward_kernel(T *y, const float *b, int C, int HW, int planes, int act,
                                        float slope) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    for (int plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        float bias = b ? b[plane % C] : 0.0f;
        size_t i = (size_t)plane * HW + p;
        y[i] = tb_st<T>(act_apply(tb_ld(y[i]) + bias, act, slope));
    }
}

// The bias gradient from per-(channel, chunk) partials: one warp per channel
// adds its `chunks` partials in a fixed order (so the same bits whichever
// block runs it); the block's warps take the channels in turn.
template <typename T>
__device__ void bias_grad_finish(float *db, const T *partial, int C, int chunks) {
    const volatile T *part = partial;  // written by other blocks
    int lane = threadIdx.x & 31, warps = (int)(blockDim.x >> 5);
    for (int c = (int)(threadIdx.x >> 5); c < C; c += warps) {  // whole warps alike
        double s = 0.0;
        for (int k = lane; k < chunks; k += 32) s += (double)part[(size_t)c * chunks + k];
        s = warp_sum(s);
        if (lane == 0) db[c] = (float)s;
    }
}

// grid (chunks, C): block (k, c) takes the k-th range of every (b, c) plane,
// applies act' in place and writes one partial sum to partial[c*chunks + k]
// (partial may be NULL: no bias gradient). With done, the block that finishes
// last sums the partials into db.
template <typename T>
__global__ void bias_act_backward_kernel(T *d, float *partial, float *db, unsigned *done,
                                         const T *y, int B, int C, int HW, int act, float slope) {
    int c = blockIdx.y;
    int span = (HW + (int)gridDim.x - 1) / (int)gridDim.x;
    int p0 = (int)blockIdx.x * span, p1 = min(p0 + span, HW);
    double sum = 0.0;  // in double like the CPU op: sums over whole planes
    for (int b = 0; b < B; b++) {
        size_t base = ((size_t)b * C + c) * (size_t)HW;
        for (int p = p0 + (int)threadIdx.x; p < p1; p += (int)blockDim.x) {
            float g = act_backward(tb_ld(d[base + p]), tb_ld(y[base + p]), act, slope);
            d[base + p] = tb_st<T>(g);
            sum += (double)g;
        }
    }
    if (partial) {  // uniform over the block: block_sum's barriers are safe
        sum = block_sum(sum);
        if (threadIdx.x == 0) partial[(size_t)c * gridDim.x + blockIdx.x] = (float)sum;
        if (done && last_block_done(done, gridDim.x * gridDim.y))
            bias_grad_finish(db, partial, C, (int)gridDim.x);
    }
}

// out_act_loss's step for element i, in either layout: the activation in
// place, the loss's gradient through it into dy, the loss and the bias
// gradient added to *ls and *bs, in the CPU ops' own order.
template <typename T>
__device__ inline void out_act_loss_at(T *y, T *dy, const T *t, size_t i, float bias, int act,
                                       float slope, int l1, float grad_scale, double *ls, double *bs) {
    float v = act_apply(tb_ld(y[i]) + bias, act, slope);
    y[i] = tb_st<T>(v);
    float e = v - tb_ld(t[i]), g;
    if (l1) {
        g = e > 0.0f ? grad_scale : e < 0.0f ? -grad_scale : 0.0f;
        *ls += fabs((double)e);
    } else {
        g = grad_scale * e;
        *ls += (double)e * (double)e;
    }
    g = act_backward(g, v, act, slope);
    dy[i] = tb_st<T>(g);
    *bs += (double)g;
}

// The output layer from its convolution's result y (B,C,HW) on: y = act(y +
// b[c]) in place, the loss against t (MSE, or L1 when l1), dy = the loss's
// gradient through the activation, and the bias gradient. grid (chunks, C) as
// bias_act_backward_kernel; each block writes a double partial of the loss
// and of the bias gradient (part[k], part[blocks + k]), and the block that
// finishes last adds them: the loss in block order, the bias a warp per
// channel. Each element takes the CPU ops' own steps in their order.
template <typename T>
__global__ void out_act_loss_kernel(T *y, T *dy, double *part, float *db, float *loss,
                                    unsigned *done, const float *b, const T *t, int B, int C,
                                    int HW, int act, float slope, int l1, float grad_scale,
                                    double n) {
    int c = blockIdx.y;
    int span = (HW + (int)gridDim.x - 1) / (int)gridDim.x;
    int p0 = (int)blockIdx.x * span, p1 = min(p0 + span, HW);
    float bias = b[c];
    double ls = 0.0, bs = 0.0;
    for (int s = 0; s < B; s++) {
        size_t base = ((size_t)s * C + c) * (size_t)HW;
        for (int p = p0 + (int)threadIdx.x; p < p1; p += (int)blockDim.x)
            out_act_loss_at(y, dy, t, base + p, bias, act, slope, l1, grad_scale, &ls, &bs);
    }
    ls = block_sum(ls);
    __syncthreads();  // block_sum's shared array, again
    bs = block_sum(bs);
    unsigned blocks = gridDim.x * gridDim.y;
    size_t k = (size_t)c * gridDim.x + blockIdx.x;
    if (threadIdx.x == 0) part[k] = ls, part[blocks + k] = bs;
    if (!last_block_done(done, blocks)) return;
    const volatile double *vp = part;
    double s = 0.0;
    for (unsigned j = threadIdx.x; j < blocks; j += blockDim.x) s += vp[j];
    s = block_sum(s);  // last_block_done's barrier came after the second one
    if (threadIdx.x == 0) *loss = (float)(s / n);
    bias_grad_finish(db, part + blocks, C, (int)gridDim.x);
}

// ---- kernels, NHWC: element (row r = b*HW + p, channel c) at r*C + c

// A block over rows of C channels: cw = min(C, 32) channel lanes side by side
// (consecutive floats), TB_BLOCK / cw rows of them at a time; threads past
// that are idle.
__device__ __forceinline__ int nhwc_lanes(int C) { return C < 32 ? C : 32; }

// The block's sum of each lane's column, in a fixed order (row 0 first):
// threads below cw get their lane's. Every thread must call it.
__device__ inline double col_sum(double v, int cw) {
    __shared__ double col_part[TB_BLOCK];
    col_part[threadIdx.x] = v;
    __syncthreads();
    double s = 0.0;
    if ((int)threadIdx.x < cw)
        for (int r = 0, rows = (int)blockDim.x / cw; r < rows; r++) s += col_part[r * cw + threadIdx.x];
    __syncthreads();
    return s;
}

// Grid-stride over the n = R*C elements.
template <typename T>
__global__ void bias_act_forward_nhwc_kernel(T *y, const float *b, int C, size_t n, int act,
                                             float slope) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = tb_st<T>(act_apply(tb_ld(y[i]) + (b ? b[i % C] : 0.0f), act, slope));
}

// grid (chunks, channel tiles of cw): block (k, j) takes the k-th range of
// the R rows for channels j*cw + lane, applies act' in place and writes one
// partial per channel to partial[c*chunks + k], then as the NCHW kernel.
template <typename T>
__global__ void bias_act_backward_nhwc_kernel(T *d, float *partial, float *db, unsigned *done,
                                              const T *y, int R, int C, int act, float slope) {
    int cw = nhwc_lanes(C), lane = (int)threadIdx.x % cw, row = (int)threadIdx.x / cw;
    int rows = (int)blockDim.x / cw, c = (int)blockIdx.y * cw + lane;
    int span = (R + (int)gridDim.x - 1) / (int)gridDim.x;
    int r0 = (int)blockIdx.x * span, r1 = min(r0 + span, R);
    double sum = 0.0;
    if (row < rows && c < C)
        for (int r = r0 + row; r < r1; r += rows) {
            size_t i = (size_t)r * C + c;
            float g = act_backward(tb_ld(d[i]), tb_ld(y[i]), act, slope);
            d[i] = tb_st<T>(g);
            sum += (double)g;
        }
    if (partial) {  // uniform over the block
        sum = col_sum(sum, cw);
        if ((int)threadIdx.x < cw && c < C) partial[(size_t)c * gridDim.x + blockIdx.x] = (float)sum;
        __threadfence();  // every writer's partial is seen before the block counts
        __syncthreads();
        if (done && last_block_done(done, gridDim.x * gridDim.y))
            bias_grad_finish(db, partial, C, (int)gridDim.x);
    }
}

// out_act_loss over NHWC, grid as bias_act_backward_nhwc_kernel: the loss
// partials at part[0 .. blocks), the bias partials at part[blocks + c*chunks + k].
template <typename T>
__global__ void out_act_loss_nhwc_kernel(T *y, T *dy, double *part, float *db, float *loss,
                                         unsigned *done, const float *b, const T *t, int R, int C,
                                         int act, float slope, int l1, float grad_scale,
                                         double n) {
    int cw = nhwc_lanes(C), lane = (int)threadIdx.x % cw, row = (int)threadIdx.x / cw;
    int rows = (int)blockDim.x / cw, c = (int)blockIdx.y * cw + lane;
    int span = (R + (int)gridDim.x - 1) / (int)gridDim.x;
    int r0 = (int)blockIdx.x * span, r1 = min(r0 + span, R);
    double ls = 0.0, bs = 0.0;
    if (row < rows && c < C) {
        float bias = b[c];
        for (int r = r0 + row; r < r1; r += rows)
            out_act_loss_at(y, dy, t, (size_t)r * C + c, bias, act, slope, l1, grad_scale, &ls, &bs);
    }
    ls = block_sum(ls);
    __syncthreads();
    bs = col_sum(bs, cw);
    unsigned blocks = gridDim.x * gridDim.y;
    double *bpart = part + blocks;
    if (threadIdx.x == 0) part[(size_t)blockIdx.y * gridDim.x + blockIdx.x] = ls;
    if ((int)threadIdx.x < cw && c < C) bpart[(size_t)c * gridDim.x + blockIdx.x] = bs;
    __threadfence();
    __syncthreads();
    if (!last_block_done(done, blocks)) return;
    const volatile double *vp = part;
    double s = 0.0;
    for (unsigned j = threadIdx.x; j < blocks; j += blockDim.x) s += vp[j];
    s = block_sum(s);
    if (threadIdx.x == 0) *loss = (float)(s / n);
    bias_grad_finish(db, bpart, C, (int)gridDim.x);
}

// ---- launchers

template <typename T>
static void bias_act_forward_t(T *y, const float *b, int B, int C, int HW, int act, float slope,
                               int layout, cudaStream_t stream) {
    if (layout == TB_NHWC) {
        size_t n = (size_t)B * C * HW;
        LAUNCH(bias_act_forward_nhwc_kernel<T>, tb_grid(n, TB_BLOCK, 4096), TB_BLOCK, stream, y, b,
               C, n, act, slope);
        return;
    }
    int planes = B * C;
    dim3 grid((unsigned)tb_ceil_div((size_t)HW, TB_BLOCK), (unsigned)(planes < 65535 ? planes : 65535));
    LAUNCH(bias_act_forward_kernel<T>, grid, TB_BLOCK, stream, y, b, C, HW, planes, act, slope);
}
extern "C" void bias_act_forward_cuda(float *y, const float *b, int B, int C, int HW, int act,
                                      float slope, int layout, cudaStream_t stream) {
    bias_act_forward_t(y, b, B, C, HW, act, slope, layout, stream);
}
void bias_act_forward_cuda(__nv_bfloat16 *y, const float *b, int B, int C, int HW, int act,
                           float slope, int layout, cudaStream_t stream) {
    bias_act_forward_t(y, b, B, C, HW, act, slope, layout, stream);
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

// NHWC: the channel tiles of a block's lanes (nhwc_lanes).
static unsigned nhwc_tiles(int C) { return (unsigned)tb_ceil_div((size_t)C, C < 32 ? (size_t)C : 32); }

// NHWC: chunks of the B*HW rows, each about as many values as an NCHW chunk
// (a block of cw channels side by side: more chunks than NCHW's per channel,
// since there are fewer tiles than channels), at least one pass of the
// block's rows, at most `most`.
static int nhwc_chunks(int B, int C, int HW, int most) {
    size_t rows = (size_t)B * HW, cw = C < 32 ? (size_t)C : 32;
    size_t chunks = tb_ceil_div(rows * cw, (size_t)TB_BLOCK * 16);
    size_t pass = tb_ceil_div(rows, TB_BLOCK / cw);
    if (chunks > pass) chunks = pass;
    if (chunks > (size_t)most) chunks = (size_t)most;
    return chunks < 1 ? 1 : (int)chunks;
}

// Chunks of a bias gradient in the layout.
static int act_chunks(int B, int C, int HW, int layout) {
    return layout == TB_NHWC ? nhwc_chunks(B, C, HW, 1024) : bias_chunks(B, HW);
}

// out_act_loss's chunks: its loss partials (one a block) and bias partials (C
// a chunk) fit TB_REDUCE_BLOCKS doubles in NHWC.
static int loss_chunks(int B, int C, int HW, int layout) {
    if (layout != TB_NHWC) return bias_chunks(B, HW);
    return nhwc_chunks(B, C, HW, TB_REDUCE_BLOCKS / (int)(nhwc_tiles(C) + (unsigned)C));
}

extern "C" size_t bias_act_backward_scratch(int B, int C, int HW, int layout) {
    int chunks = act_chunks(B, C, HW, layout);
    return chunks > 1 ? (size_t)C * chunks : 0;
}

template <typename T>
static void bias_act_backward_t(T *d, float *db, const T *y, int B, int C, int HW, int act,
                                float slope, float *scratch, unsigned *done, int layout,
                                cudaStream_t stream) {
    int chunks = act_chunks(B, C, HW, layout);
    // With one chunk per channel the block's sum is the gradient itself.
    float *partial = db == NULL ? NULL : (chunks == 1 ? db : scratch);
    unsigned *fin = db != NULL && chunks > 1 ? done : NULL;
    CHECK(C <= 65535, "bias_act_backward: %d channels", C);
    CHECK(db == NULL || chunks == 1 || (scratch != NULL && done != NULL),
          "bias_act_backward: %d chunks need a scratch and a counter", chunks);
    if (layout == TB_NHWC) {
        CHECK((size_t)B * HW <= 0x7fffffff, "bias_act_backward: %d x %d rows", B, HW);
        dim3 grid((unsigned)chunks, nhwc_tiles(C));
        LAUNCH(bias_act_backward_nhwc_kernel<T>, grid, TB_BLOCK, stream, d, partial, db, fin, y,
               B * HW, C, act, slope);
        return;
    }
    dim3 grid((unsigned)chunks, (unsigned)C);
    LAUNCH(bias_act_backward_kernel<T>, grid, TB_BLOCK, stream, d, partial, db, fin, y, B, C, HW,
           act, slope);
}
extern "C" void bias_act_backward_cuda(float *d, float *db, const float *y, int B, int C, int HW,
                                       int act, float slope, float *scratch, unsigned *done,
                                       int layout, cudaStream_t stream) {
    bias_act_backward_t(d, db, y, B, C, HW, act, slope, scratch, done, layout, stream);
}
void bias_act_backward_cuda(__nv_bfloat16 *d, float *db, const __nv_bfloat16 *y, int B, int C,
                            int HW, int act, float slope, float *scratch, unsigned *done,
                            int layout, cudaStream_t stream) {
    bias_act_backward_t(d, db, y, B, C, HW, act, slope, scratch, done, layout, stream);
}

// The loss partials (one a block), then the bias partials (C a chunk).
extern "C" size_t out_act_loss_scratch(int B, int C, int HW, int layout) {
    size_t chunks = (size_t)loss_chunks(B, C, HW, layout);
    size_t tiles = layout == TB_NHWC ? nhwc_tiles(C) : (size_t)C;
    return chunks * tiles + (size_t)C * chunks;
}

template <typename T>
static void out_act_loss_t(T *y, T *dy, float *db, float *loss, const float *b, const T *t, int B,
                           int C, int HW, int act, float slope, int loss_kind, double *scratch,
                           unsigned *done, int layout, cudaStream_t stream) {
    int chunks = loss_chunks(B, C, HW, layout);
    size_t n = (size_t)B * C * HW;
    CHECK(n > 0 && C <= 65535, "out_act_loss: %dx%dx%d", B, C, HW);
    CHECK(out_act_loss_scratch(B, C, HW, layout) <= TB_REDUCE_BLOCKS,
          "out_act_loss: %d channels x %d chunks over the scratch", C, chunks);
    int l1 = loss_kind == LOSS_L1;
    // The factor as the CPU ops form it: 2/n (MSE) or 1/n (L1), rounded to float once.
    float grad_scale = (float)((l1 ? 1.0 : 2.0) / (double)n);
    if (layout == TB_NHWC) {
        CHECK((size_t)B * HW <= 0x7fffffff, "out_act_loss: %d x %d rows", B, HW);
        dim3 grid((unsigned)chunks, nhwc_tiles(C));
        LAUNCH(out_act_loss_nhwc_kernel<T>, grid, TB_BLOCK, stream, y, dy, scratch, db, loss, done,
               b, t, B * HW, C, act, slope, l1, grad_scale, (double)n);
        return;
    }
    dim3 grid((unsigned)chunks, (unsigned)C);
    LAUNCH(out_act_loss_kernel<T>, grid, TB_BLOCK, stream, y, dy, scratch, db, loss, done, b, t, B,
           C, HW, act, slope, l1, grad_scale, (double)n);
}
extern "C" void out_act_loss_cuda(float *y, float *dy, float *db, float *loss, const float *b,
                                  const float *t, int B, int C, int HW, int act, float slope,
                                  int loss_kind, double *scratch, unsigned *done, int layout,
                                  cudaStream_t stream) {
    out_act_loss_t(y, dy, db, loss, b, t, B, C, HW, act, slope, loss_kind, scratch, done, layout,
                   stream);
}
void out_act_loss_cuda(__nv_bfloat16 *y, __nv_bfloat16 *dy, float *db, float *loss, const float *b,
                       const __nv_bfloat16 *t, int B, int C, int HW, int act, float slope,
                       int loss_kind, double *scratch, unsigned *done, int layout,
                       cudaStream_t stream) {
    out_act_loss_t(y, dy, db, loss, b, t, B, C, HW, act, slope, loss_kind, scratch, done, layout,
                   stream);
}
