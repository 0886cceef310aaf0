// loss.c: mean squared error and its gradient in one pass.
// The sum is taken in double over fixed blocks, then over the blocks in order,
// so the loss has the same bits whatever the thread count.
#include "common.h"
#include "ops.h"

#define MAX_BLOCKS 1024

float mse_forward_backward(float *dy, const float *y, const float *t, size_t n) {
    if (n == 0) return 0.0f;
    size_t bs = 8192;  // block size depends on n only
    if ((n + bs - 1) / bs > MAX_BLOCKS) bs = (n + MAX_BLOCKS - 1) / MAX_BLOCKS;
    long nb = (long)((n + bs - 1) / bs);
    double part[MAX_BLOCKS];
    // PyTorch's mse_loss backward: grad = (2/n) * (y - t), the factor rounded to float.
    float k = (float)(2.0 / (double)n);
#pragma omp parallel for schedule(static) if (n >= 32768)
    for (long blk = 0; blk < nb; blk++) {
        size_t lo = (size_t)blk * bs, hi = lo + bs < n ? lo + bs : n;
        double s = 0.0;
        if (dy) {
#pragma omp simd reduction(+ : s)
            for (size_t i = lo; i < hi; i++) {
                float e = y[i] - t[i];
                dy[i] = k * e;
                s += (double)e * (double)e;
            }
        } else {
#pragma omp simd reduction(+ : s)
            for (size_t i = lo; i < hi; i++) {
                double e = (double)y[i] - (double)t[i];
                s += e * e;
            }
        }
        part[blk] = s;
    }
    double s = 0.0;
    for (long blk = 0; blk < nb; blk++) s += part[blk];
    return (float)(s / (double)n);
}
