// frame.c: camera frames (RGB8, interleaved) to network tensors (float CHW in
// [0,1]) and back.
#include "common.h"
#include "ops.h"

void frame_to_tensor(float *x, const uint8_t *rgb, int H, int W) {
    size_t n = (size_t)H * W;
    float *r = x, *g = x + n, *b = x + 2 * n;
    // v/255 as a float division, exactly what torchvision's ToTensor computes.
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) {
        r[i] = (float)rgb[3 * i] / 255.0f;
        g[i] = (float)rgb[3 * i + 1] / 255.0f;
        b[i] = (float)rgb[3 * i + 2] / 255.0f;
    }
}

// Clamp to [0,1] (NaN -> 0), scale and round half up.
static inline uint8_t to_u8(float v) {
    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    return (uint8_t)(v * 255.0f + 0.5f);
}

void tensor_to_frame(uint8_t *rgb, const float *x, int H, int W) {
    size_t n = (size_t)H * W;
    const float *r = x, *g = x + n, *b = x + 2 * n;
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) {
        rgb[3 * i] = to_u8(r[i]);
        rgb[3 * i + 1] = to_u8(g[i]);
        rgb[3 * i + 2] = to_u8(b[i]);
    }
}
