// loss.c: the losses and their gradients, each in one pass: mean squared error
// and mean absolute error (L1, with its plain-loop `_ref`).
// The sums are block_sum's (reduce.h): a loss has the same bits whatever the
// thread count.
#include <math.h>

#include "common.h"
#include "ops.h"
#include "reduce.h"

typedef struct {
    float *dy;
    const float *y, *t;
    float k;
} LossArgs;

// Squared errors of one block, writing the gradient alongside.
static double se_grad_block(const void *ctx, size_t lo, size_t hi) {
    const LossArgs *a = ctx;
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
    const LossArgs *a = ctx;
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
    LossArgs a = {dy, y, t, (float)(2.0 / (double)n)};
    double s = block_sum(n, dy ? se_grad_block : se_block, &a);
    return (float)(s / (double)n);
}

// ---- L1: mean absolute error. The error e = y - t is formed in float (as
// PyTorch does) with or without dy, so the loss has the same bits either way.

// Absolute errors of one block, writing the gradient alongside: k * sign(e),
// sign(0) = 0 (PyTorch's abs backward).
static double ae_grad_block(const void *ctx, size_t lo, size_t hi) {
    const LossArgs *a = ctx;
    float *dy = a->dy, k = a->k;
    const float *y = a->y, *t = a->t;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = lo; i < hi; i++) {
        float e = y[i] - t[i];
        dy[i] = e > 0.0f ? k : e < 0.0f ? -k : 0.0f;
        s += fabs((double)e);
    }
    return s;
}

// Absolute errors of one block, loss only.
static double ae_block(const void *ctx, size_t lo, size_t hi) {
    const LossArgs *a = ctx;
    const float *y = a->y, *t = a->t;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (size_t i = lo; i < hi; i++) {
        float e = y[i] - t[i];
        s += fabs((double)e);
    }
    return s;
}

float l1_forward_backward(float *dy, const float *y, const float *t, size_t n) {
    if (n == 0) return 0.0f;
    // PyTorch's l1_loss backward: grad = sign(y - t) / n, the factor rounded to float.
    LossArgs a = {dy, y, t, (float)(1.0 / (double)n)};
    double s = block_sum(n, dy ? ae_grad_block : ae_block, &a);
    return (float)(s / (double)n);
}

// The same in one plain loop: the sum in element order instead of by blocks.
float l1_forward_backward_ref(float *dy, const float *y, const float *t, size_t n) {
    if (n == 0) return 0.0f;
    float k = (float)(1.0 / (double)n);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        float e = y[i] - t[i];
        if (dy) dy[i] = e > 0.0f ? k : e < 0.0f ? -k : 0.0f;
        s += fabs((double)e);
    }
    return (float)(s / (double)n);
}
