// augment.c: random scale, crop and flip, in plain loops; the resize is frame_fit's.
#include "augment.h"

#include <string.h>

#include "frame_fit.h"

// A whole number in [0, n] drawn from rng.
static int draw(TbRng *rng, int n) { return n > 0 ? (int)(tb_rng_u32(rng) % (uint32_t)(n + 1)) : 0; }

void augment_crop(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh, float scale_min,
                  TbRng *rng) {
    // The largest crop with dst's aspect, then scaled down by s in [scale_min, 1].
    int cw = sw, ch = sh;
    if ((int64_t)sw * dh > (int64_t)sh * dw) cw = (int)((int64_t)sh * dw / dh);
    else ch = (int)((int64_t)sw * dh / dw);
    float s = scale_min + (1.0f - scale_min) * tb_rng_uniform(rng);
    cw = (int)(cw * s + 0.5f), ch = (int)(ch * s + 0.5f);
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    int x0 = draw(rng, sw - cw), y0 = draw(rng, sh - ch);
    int flip = tb_rng_u32(rng) & 1;
    uint8_t *crop = tb_malloc((size_t)cw * ch * 3);
    for (int y = 0; y < ch; y++) {
        const uint8_t *row = src + ((size_t)(y0 + y) * sw + x0) * 3;
        uint8_t *out = crop + (size_t)y * cw * 3;
        if (!flip) {
            memcpy(out, row, (size_t)cw * 3);
            continue;
        }
        for (int x = 0; x < cw; x++) memcpy(out + (size_t)x * 3, row + (size_t)(cw - 1 - x) * 3, 3);
    }
    frame_fit(dst, dw, dh, crop, cw, ch);
    free(crop);
}
