// bottleneck.c: the bottleneck control, on the encoder's last activation
// (x (B,C,HW)): y = mask[c] * (x + noise * N(0,1)); backward dx = mask[c] * dy.
// A channel with mask 0 is written as +0 (not 0 * x: no -0, and a NaN or inf
// there cannot leak through).
// The normal draws are a counter-based hash of (pass, NCHW index), so they do
// not depend on the layout, the thread count or the backend (bottleneck.cu
// computes the same formula).
#include <math.h>

#include "ops.h"

static uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float bottleneck_gauss(uint64_t pass, uint64_t i) {
    uint64_t h = mix64(mix64(pass * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) ^ i);
    float u1 = ((float)(uint32_t)(h >> 40) + 0.5f) * (1.0f / 16777216.0f);  // (0,1)
    float u2 = (float)(uint32_t)((h >> 16) & 0xffffff) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

void bottleneck_forward_ref(float *y, const float *x, const float *mask, int B, int C, int HW,
                            float noise, uint64_t pass) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)b * C + c) * HW + p;
                float v = x[i];
                if (noise > 0) v = fmaf(noise, bottleneck_gauss(pass, i), v);
                y[i] = mask[c] != 0 ? mask[c] * v : 0.0f;
            }
}

// Element e of a layout: its channel and its NCHW index (for the draw).
static void where(size_t e, int C, int HW, int c16, int *c, size_t *i) {
    if (!c16) {
        *c = (int)(e / HW % C);
        *i = e;
        return;
    }
    size_t per_b = (size_t)C * HW;  // nChw16c: (b, c/16, hw, c%16)
    size_t b = e / per_b, r = e % per_b;
    int cb = (int)(r / ((size_t)HW * 16)), p = (int)(r / 16 % HW);
    *c = cb * 16 + (int)(r % 16);
    *i = (b * C + *c) * HW + p;
}

void bottleneck_forward(float *y, const float *x, const float *mask, int B, int C, int HW,
                        float noise, uint64_t pass, int c16) {
    size_t n = (size_t)B * C * HW;
#pragma omp parallel for schedule(static)
    for (size_t e = 0; e < n; e++) {
        int c;
        size_t i;
        where(e, C, HW, c16, &c, &i);
        float v = x[e];
        if (noise > 0) v = fmaf(noise, bottleneck_gauss(pass, i), v);
        y[e] = mask[c] != 0 ? mask[c] * v : 0.0f;
    }
}

void bottleneck_backward_ref(float *dx, const float *dy, const float *mask, int B, int C, int HW) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)b * C + c) * HW + p;
                dx[i] = mask[c] != 0 ? mask[c] * dy[i] : 0.0f;
            }
}

void bottleneck_backward(float *dx, const float *dy, const float *mask, int B, int C, int HW,
                         int c16) {
    size_t n = (size_t)B * C * HW;
#pragma omp parallel for schedule(static)
    for (size_t e = 0; e < n; e++) {
        int c;
        size_t i;
        where(e, C, HW, c16, &c, &i);
        dx[e] = mask[c] != 0 ? mask[c] * dy[e] : 0.0f;
    }
}

void bottleneck_mask_keep(float *mask, int C, int keep) {
    for (int c = 0; c < C; c++) mask[c] = keep <= 0 || c < keep ? 1.0f : 0.0f;
}
