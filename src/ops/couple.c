// couple.c: the channels' coupling (cli/channels.h): k weight blocks of n
// floats each, every one pulled toward their mean by c,
//   w_j += c * (mean_i w_i - w_j),
// with the mean taken before any block moves. The pull is lerp's arithmetic
// ((1-c)*w rounded, then one fused multiply-add), so c = 0 leaves every block
// as it was, bit for bit, and c = 1 makes each the mean.
#include <math.h>

#include "ops.h"

void couple(float *const *w, int k, size_t n, float c) {
    if (c == 0.0f || k < 2) return;
    float b = 1.0f - c, inv = 1.0f / (float)k;
#pragma omp parallel for schedule(static) if (n >= 32768)
    for (size_t i = 0; i < n; i++) {
        float sum = 0;
        for (int j = 0; j < k; j++) sum += w[j][i];
        float mean = sum * inv;
        for (int j = 0; j < k; j++) w[j][i] = fmaf(c, mean, b * w[j][i]);
    }
}

void couple_ref(float *const *w, int k, size_t n, float c) {
    for (size_t i = 0; i < n; i++) {
        double mean = 0;
        for (int j = 0; j < k; j++) mean += w[j][i];
        mean /= k;
        for (int j = 0; j < k; j++) w[j][i] = (float)(w[j][i] + (double)c * (mean - w[j][i]));
    }
}
