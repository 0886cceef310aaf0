// warp.c: the feedback dream's per-pass transform on an RGB8 frame: zoom and
// rotate about the centre, then shift, by bilinear sampling (edges clamped, so
// no black border creeps in over many passes). Plain loops, on the host.
#include <math.h>
#include <string.h>

#include "ops.h"

int warp_identity(const Warp *wp) {
    return wp->zoom == 1.0f && wp->rotate == 0.0f && wp->shift_x == 0.0f && wp->shift_y == 0.0f;
}

static float px(const uint8_t *in, int w, int h, int x, int y, int ch) {
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    return in[((size_t)y * w + x) * 3 + ch];
}

// Output pixel p shows input point R(-a) (p - c - s) / z + c (c the centre of
// the pixel grid), so what is at q in the input lands at R(a) z (q - c) + c + s.
void warp_apply(const Warp *wp, uint8_t *out, const uint8_t *in, int w, int h) {
    if (warp_identity(wp) || !(wp->zoom > 0)) {
        memcpy(out, in, (size_t)w * h * 3);
        return;
    }
    float a = wp->rotate * 3.14159265f / 180.0f;
    float ca = cosf(a) / wp->zoom, sa = sinf(a) / wp->zoom;
    float cx = (w - 1) * 0.5f, cy = (h - 1) * 0.5f;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float dx = x - cx - wp->shift_x, dy = y - cy - wp->shift_y;
            float sx = ca * dx + sa * dy + cx, sy = -sa * dx + ca * dy + cy;
            int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
            float fx = sx - x0, fy = sy - y0;
            for (int ch = 0; ch < 3; ch++) {
                float top = px(in, w, h, x0, y0, ch) * (1 - fx) + px(in, w, h, x0 + 1, y0, ch) * fx;
                float bot = px(in, w, h, x0, y0 + 1, ch) * (1 - fx) + px(in, w, h, x0 + 1, y0 + 1, ch) * fx;
                float v = top * (1 - fy) + bot * fy + 0.5f;
                out[((size_t)y * w + x) * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}
