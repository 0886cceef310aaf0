// optim.c: gradient norm, clipping factor, SGD with momentum and Adam over the
// flat parameter block, with PyTorch's semantics (docs/ARCHITECTURE.md, "The network"):
//   torch.nn.utils.clip_grad_norm_(params, c); torch.optim.SGD(momentum=mu,
//   weight_decay=wd, dampening=0) or torch.optim.Adam(weight_decay=wd).
// The clip factor is passed in as `scale` and applied inside the update, so
// clipping costs no extra pass over the gradients.
#include <math.h>

#include "common.h"
#include "ops.h"
#include "reduce.h"

static double sumsq_block(const void *ctx, size_t lo, size_t hi) {
    const float *g = ctx;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
    return s;
}

// Sum of squares through block_sum (reduce.h): the same bits whatever the
// thread count.
float grad_norm(const float *g, size_t n) {
    if (n == 0) return 0.0f;
    return (float)sqrt(block_sum(n, sumsq_block, g));
}

// clip_grad_norm_ (1.13): coef = c / (norm + 1e-6) in float, clamped to at most 1,
// so it is 1 unless norm > c (to within 1e-6). A NaN norm gives a NaN factor, as
// there: the step then poisons the weights visibly instead of silently skipping.
float clip_scale(float norm, float clip) {
    if (!(clip > 0.0f)) return 1.0f;
    float s = clip / (norm + 1e-6f);
    return s > 1.0f ? 1.0f : s;
}

void sgd_update(float *w, float *buf, const float *g, size_t n, float scale, float lr, float mu,
                float wd) {
#pragma omp parallel for simd schedule(static) if (n >= 32768)
    for (size_t i = 0; i < n; i++) {
        float gi = scale * g[i] + wd * w[i];  // clip, then L2 weight decay
        float b = mu * buf[i] + gi;           // buf starts at 0, so step 1 gives buf = g
        buf[i] = b;
        w[i] -= lr * b;
    }
}

void adam_update(float *w, float *m, float *v, const float *g, size_t n, float scale, float lr,
                 float beta1, float beta2, float eps, float wd, int t) {
    // As torch.optim.Adam (single-tensor path): bias corrections in double,
    // step_size = lr / (1 - beta1^t), denom = sqrt(v) / sqrt(1 - beta2^t) + eps.
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step = (float)((double)lr / bc1);
    float bc2s = (float)sqrt(bc2);
    float a1 = (float)(1.0 - (double)beta1), a2 = (float)(1.0 - (double)beta2);
#pragma omp parallel for simd schedule(static) if (n >= 32768)
    for (size_t i = 0; i < n; i++) {
        float gi = scale * g[i] + wd * w[i];
        float mi = beta1 * m[i] + a1 * gi;
        float vi = beta2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= step * (mi / (sqrtf(vi) / bc2s + eps));
    }
}
