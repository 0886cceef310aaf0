// optim.cu: gradient norm, clipping and the optimizer update over the flat
// parameter block (twins of grad_norm / clip_scale / sgd_update / adam_update in
// ops.h). The norm never leaves the device: the update kernel reads it, and its
// hyperparameters, from device memory, so a captured step needs no host values.
// A step measures the norm and records its stats in one launch
// (grad_norm_stats_cuda: the block that finishes last adds the partials);
// grad_norm_cuda and stats_record_cuda do the same in three, for the tests.
// BF16 activations (TABULA_CUDA_DTYPE=bf16): the master weights, gradients and
// optimizer state stay float; cuDNN reads a bfloat16 copy of the weights
// (w16) and writes the weight gradients in bfloat16 (g16). The step's own
// launches carry both conversions, so bf16 adds none: norm_stats_kernel
// takes each weight's gradient from g16 (wmask[i] = 1: element i is a conv
// weight) into the float block before it is measured, and the update kernels
// write the new w16 with the new weights. params_to_bf16_cuda makes w16
// after the weights change outside a step (set_params, slots, coupling).
// Holds: the sum-of-squares, SGD, Adam and stats kernels, then the host side:
// step_params_fill and the launchers grad_norm_cuda, grad_norm_stats_cuda,
// sgd_update_cuda, adam_update_cuda, stats_record_cuda and params_to_bf16_cuda.
#include <math.h>

#include "ops.h"
#include "ops_cuda.h"

// ---- kernels

__global__ void sumsq_kernel(double *partial, const float *g, size_t n) {
    double s = 0.0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v = g[i];
        s += (double)v * (double)v;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// sumsq_kernel, then the block that finishes last adds the partials in block
// order: *norm = sqrt(sum), and ring[p->slot] = {*loss, *norm}.
// g16, wmask: NULL, or the bfloat16 weight gradients and which elements are
// weights: those are converted into g first (exactly).
__global__ void norm_stats_kernel(float *norm, StepStats *ring, const float *loss,
                                  const StepParams *p, double *partial, unsigned *done, float *g,
                                  const __nv_bfloat16 *g16, const uint8_t *wmask, size_t n) {
    double s = 0.0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float v;
        if (g16 && wmask[i]) g[i] = v = __bfloat162float(g16[i]);
        else v = g[i];
        s += (double)v * (double)v;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
    if (!last_block_done(done, gridDim.x)) return;
    const volatile double *vp = partial;
    double t = 0.0;
    for (unsigned k = threadIdx.x; k < gridDim.x; k += blockDim.x) t += vp[k];
    t = block_sum(t);  // after last_block_done's barrier
    if (threadIdx.x != 0) return;
    float r = (float)sqrt(t);
    *norm = r;
    int slot = p->slot;
    if (slot < 0 || slot >= TB_STATS_RING) return;  // the host CHECKs; never write outside
    ring[slot].loss = *loss;
    ring[slot].grad_norm = r;
}

// clip_grad_norm_'s factor as clip_scale() on the CPU: c/(norm+1e-6) clamped to
// at most 1 (so 1 unless norm > c), NaN for a NaN norm; clip <= 0 disables it.
// Every thread computes it from the same two scalars. __fdiv_rn: IEEE division
// whatever the compiler flags.
__device__ __forceinline__ float clip_factor(float norm, float clip) {
    if (!(clip > 0.0f)) return 1.0f;
    float s = __fdiv_rn(clip, norm + 1e-6f);
    return s > 1.0f ? 1.0f : s;
}

// w16: NULL, or the bfloat16 copy of w, written with it.
__global__ void sgd_kernel(float *w, __nv_bfloat16 *w16, float *buf, const float *g, size_t n,
                           const float *norm, const StepParams *p) {
    float scale = clip_factor(*norm, p->clip);
    float lr = p->lr, mu = p->momentum, wd = p->weight_decay;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float wi = w[i];
        float gi = scale * g[i] + wd * wi;
        float bi = mu * buf[i] + gi;
        buf[i] = bi;
        float wn = wi - lr * bi;
        w[i] = wn;
        if (w16) w16[i] = __float2bfloat16(wn);
    }
}

// torch.optim.Adam (no amsgrad): g' = scale*g + wd*w; m = b1*m + (1-b1)g';
// v = b2*v + (1-b2)g'^2; w -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
__global__ void adam_kernel(float *w, __nv_bfloat16 *w16, float *m, float *v, const float *g,
                            size_t n, const float *norm, const StepParams *p) {
    float scale = clip_factor(*norm, p->clip);
    float wd = p->weight_decay, b1 = p->beta1, b2 = p->beta2, eps = p->eps;
    float step = p->adam_step, bc2_sqrt = p->adam_bc2_sqrt;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float wi = w[i];
        float gi = scale * g[i] + wd * wi;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = __fdiv_rn(__fsqrt_rn(vi), bc2_sqrt) + eps;
        float wn = wi - step * __fdiv_rn(mi, denom);  // as the CPU: step * (m / denom)
        w[i] = wn;
        if (w16) w16[i] = __float2bfloat16(wn);
    }
}

__global__ void to_bf16_kernel(__nv_bfloat16 *w16, const float *w, size_t n) {
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        w16[i] = __float2bfloat16(w[i]);
}

__global__ void stats_record_kernel(StepStats *ring, const float *loss, const float *norm,
                                    const StepParams *p) {
    int slot = p->slot;
    if (slot < 0 || slot >= TB_STATS_RING) return;  // the host CHECKs; never write outside
    ring[slot].loss = *loss;
    ring[slot].grad_norm = *norm;
}

// ---- launchers (and step_params_fill, which fills what they read on the device)

extern "C" void step_params_fill(StepParams *p, const Hyper *h, int slot) {
    p->optimizer = h->optimizer;
    p->slot = slot;
    p->t = h->t;
    p->pad_ = 0;
    p->lr = h->lr;
    p->momentum = h->momentum;
    p->weight_decay = h->weight_decay;
    p->clip = h->clip;
    p->beta1 = h->beta1;
    p->beta2 = h->beta2;
    p->eps = h->eps;
    // Bias corrections as PyTorch forms them (Python floats, i.e. double).
    int t = h->t > 0 ? h->t : 1;
    double bc1 = 1.0 - pow((double)h->beta1, (double)t);
    double bc2 = 1.0 - pow((double)h->beta2, (double)t);
    p->adam_step = (float)((double)h->lr / bc1);
    p->adam_bc2_sqrt = (float)sqrt(bc2);
}

extern "C" void grad_norm_cuda(float *norm, const float *g, size_t n, double *scratch,
                               cudaStream_t stream) {
    CHECK(n > 0, "grad_norm over 0 elements");
    unsigned blocks = tb_grid(n, TB_BLOCK, TB_REDUCE_BLOCKS);
    LAUNCH(sumsq_kernel, blocks, TB_BLOCK, stream, scratch, g, n);
    sum_partials_cuda(norm, scratch, (int)blocks, 1.0, 1, stream);
}

void grad_norm_stats_cuda(float *norm, StepStats *ring, const float *loss, const StepParams *p,
                          float *g, const __nv_bfloat16 *g16, const uint8_t *wmask, size_t n,
                          double *scratch, unsigned *done, cudaStream_t stream) {
    CHECK(n > 0, "grad_norm over 0 elements");
    CHECK(!g16 == !wmask, "grad_norm_stats: bf16 gradients without their mask, or the reverse");
    unsigned blocks = tb_grid(n, TB_BLOCK, TB_REDUCE_BLOCKS);
    LAUNCH(norm_stats_kernel, blocks, TB_BLOCK, stream, norm, ring, loss, p, scratch, done, g, g16,
           wmask, n);
}
// Float: g is only read (g16 NULL), so the const goes.
extern "C" void grad_norm_stats_cuda(float *norm, StepStats *ring, const float *loss,
                                     const StepParams *p, const float *g, size_t n, double *scratch,
                                     unsigned *done, cudaStream_t stream) {
    grad_norm_stats_cuda(norm, ring, loss, p, (float *)g, (const __nv_bfloat16 *)NULL,
                         (const uint8_t *)NULL, n, scratch, done, stream);
}

void sgd_update_cuda(float *w, __nv_bfloat16 *w16, float *buf, const float *g, size_t n,
                     const float *norm, const StepParams *p, cudaStream_t stream) {
    unsigned blocks = tb_grid(n, TB_BLOCK, 65535);
    LAUNCH(sgd_kernel, blocks, TB_BLOCK, stream, w, w16, buf, g, n, norm, p);
}
extern "C" void sgd_update_cuda(float *w, float *buf, const float *g, size_t n, const float *norm,
                                const StepParams *p, cudaStream_t stream) {
    sgd_update_cuda(w, (__nv_bfloat16 *)NULL, buf, g, n, norm, p, stream);
}

void adam_update_cuda(float *w, __nv_bfloat16 *w16, float *m, float *v, const float *g, size_t n,
                      const float *norm, const StepParams *p, cudaStream_t stream) {
    unsigned blocks = tb_grid(n, TB_BLOCK, 65535);
    LAUNCH(adam_kernel, blocks, TB_BLOCK, stream, w, w16, m, v, g, n, norm, p);
}
extern "C" void adam_update_cuda(float *w, float *m, float *v, const float *g, size_t n,
                                 const float *norm, const StepParams *p, cudaStream_t stream) {
    adam_update_cuda(w, (__nv_bfloat16 *)NULL, m, v, g, n, norm, p, stream);
}

void params_to_bf16_cuda(__nv_bfloat16 *w16, const float *w, size_t n, cudaStream_t stream) {
    LAUNCH(to_bf16_kernel, tb_grid(n, TB_BLOCK, 65535), TB_BLOCK, stream, w16, w, n);
}

extern "C" void stats_record_cuda(StepStats *ring, const float *loss, const float *norm,
                                  const StepParams *p, cudaStream_t stream) {
    LAUNCH(stats_record_kernel, 1, 1, stream, ring, loss, norm, p);
}
