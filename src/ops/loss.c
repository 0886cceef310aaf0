// loss.c: mean squared error and its gradient in one pass.
// The sum is block_sum's (reduce.h): the loss has the same bits whatever the
// thread count.
#include "common.h"
#include "ops.h"
#include "reduce.h"

typedef struct {
    float *dy;
    const float *y, *t;
    float k;
} Mse;

// Squared errors of one block, writing the gradient alongside.
static double se_grad_block(const void *ctx, size_t lo, size_t hi) {
    const Mse *a = ctx;
    float *dy = a->dy, k = a->k;
    const float *y = a->y, *t = a->t;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = lo; i < hi; i++) {
        float e = y[i] - t[i];
        dy[i] = k * e;
        s += (double)e * (double)e;
    }
    return s;
}

// Squared errors of one block, loss only.
static double se_block(const void *ctx, size_t lo, size_t hi) {
    const Mse *a = ctx;
    const float *y = a->y, *t = a->t;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = lo; i < hi; i++) {
        double e = (double)y[i] - (double)t[i];
        s += e * e;
    }
    return s;
}

float mse_forward_backward(float *dy, const float *y, const float *t, size_t n) {
    if (n == 0) return 0.0f;
    // PyTorch's mse_loss backward: grad = (2/n) * (y - t), the factor rounded to float.
    Mse a = {dy, y, t, (float)(2.0 / (double)n)};
    double s = block_sum(n, dy ? se_grad_block : se_block, &a);
    return (float)(s / (double)n);
}
