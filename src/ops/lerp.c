// lerp.c: w = (1-a)*w + a*s over a flat block, the blend of the live network
// toward a snapshot slot (a cross-fade takes one blend a frame). Not part of a
// training step, so it has no gradient. a = 0 leaves w as it was and a = 1
// makes it s, bit for bit.
#include <math.h>

#include "ops.h"

// The product (1-a)*w rounded first, then one fused multiply-add: the CUDA
// twin (kernels/lerp.cu) does the same, so the two agree to the bit.
void lerp(float *w, const float *s, size_t n, float a) {
    if (a == 0.0f) return;
    float b = 1.0f - a;
#pragma omp parallel for simd schedule(static) if (n >= 32768)
    for (size_t i = 0; i < n; i++) {
        float keep = b * w[i];
        w[i] = fmaf(a, s[i], keep);
    }
}

void lerp_ref(float *w, const float *s, size_t n, float a) {
    for (size_t i = 0; i < n; i++) w[i] = (float)((1.0 - (double)a) * w[i] + (double)a * s[i]);
}
