// transform.c: input transforms (ops.h). The network is given a degraded
// frame (grey, blurred, jittered, edges) and learns to rebuild the clean one,
// so at the window it repaints the degraded camera with what it learned.
// Per frame and cheap next to a training step: plain loops on floats in
// 0..255, interleaved like the frame, rounded once at the end.
#include <math.h>
#include <string.h>

#include "ops.h"

// BT.601 luma weights, the same standard as the YUV conversion (io/color.h).
#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f

int transform_active(const Transform *tf, int training) {
    return tf->kind != TF_NONE || tf->blur > 1 || (training && tf->jitter > 0);
}

// Area-average n samples (stride ss) into m <= n samples (stride ds): output i
// is the mean of the input over [i*n/m, (i+1)*n/m), partial pixels weighted.
static void area_1d(float *dst, int ds, const float *src, int ss, int n, int m) {
    double scale = (double)n / m;
    for (int i = 0; i < m; i++) {
        double a = i * scale, b = (i + 1) * scale, sum = 0;
        for (int x = (int)a; x < n && x < b; x++) {
            double lo = x > a ? x : a, hi = x + 1 < b ? x + 1 : b;
            sum += (hi - lo) * src[(size_t)x * ss];
        }
        dst[(size_t)i * ds] = (float)(sum / scale);
    }
}

// Where output pixel o of n falls among m samples (half-pixel centres, clamped):
// the left sample and the weight of the right one.
static void bilinear_at(int o, int n, int m, int *i0, float *f) {
    float s = ((float)o + 0.5f) * (float)m / (float)n - 0.5f;
    if (s < 0) s = 0;
    if (s > (float)(m - 1)) s = (float)(m - 1);
    *i0 = (int)s;
    *f = s - (float)*i0;
}

// img (w x h x 3) down to (sw x sh) by area, then bilinear back up, in place.
// tmp holds sw*h*3 + sw*sh*3 floats.
static void blur(float *img, int w, int h, int f, float *tmp) {
    int sw = (w + f / 2) / f, sh = (h + f / 2) / f;
    if (sw < 1) sw = 1;
    if (sh < 1) sh = 1;
    float *rows = tmp, *small = tmp + (size_t)sw * h * 3;
    for (int y = 0; y < h; y++)
        for (int c = 0; c < 3; c++)
            area_1d(rows + (size_t)y * sw * 3 + c, 3, img + (size_t)y * w * 3 + c, 3, w, sw);
    for (int x = 0; x < sw; x++)
        for (int c = 0; c < 3; c++)
            area_1d(small + (size_t)x * 3 + c, sw * 3, rows + (size_t)x * 3 + c, sw * 3, h, sh);
    for (int y = 0; y < h; y++) {
        int y0, x0;
        float fy, fx;
        bilinear_at(y, h, sh, &y0, &fy);
        int y1 = y0 + 1 < sh ? y0 + 1 : y0;
        for (int x = 0; x < w; x++) {
            bilinear_at(x, w, sw, &x0, &fx);
            int x1 = x0 + 1 < sw ? x0 + 1 : x0;
            const float *a = small + ((size_t)y0 * sw + x0) * 3, *b = small + ((size_t)y0 * sw + x1) * 3;
            const float *c = small + ((size_t)y1 * sw + x0) * 3, *d = small + ((size_t)y1 * sw + x1) * 3;
            float *o = img + ((size_t)y * w + x) * 3;
            for (int k = 0; k < 3; k++) {
                float top = a[k] + fx * (b[k] - a[k]), bot = c[k] + fx * (d[k] - c[k]);
                o[k] = top + fy * (bot - top);
            }
        }
    }
}

static void luma(float *l, const float *img, size_t n) {
    for (size_t i = 0; i < n; i++)
        l[i] = LUMA_R * img[3 * i] + LUMA_G * img[3 * i + 1] + LUMA_B * img[3 * i + 2];
}

// Sobel magnitude of the luminance (borders repeat the edge pixel), scaled so
// a full black-to-white step reads 255, as grey. l holds w*h floats.
static void edges(float *img, int w, int h, float *l) {
    luma(l, img, (size_t)w * h);
#define L(x, y) l[(size_t)((y) < 0 ? 0 : (y) >= h ? h - 1 : (y)) * w + ((x) < 0 ? 0 : (x) >= w ? w - 1 : (x))]
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float gx = L(x + 1, y - 1) + 2 * L(x + 1, y) + L(x + 1, y + 1) - L(x - 1, y - 1) -
                       2 * L(x - 1, y) - L(x - 1, y + 1);
            float gy = L(x - 1, y + 1) + 2 * L(x, y + 1) + L(x + 1, y + 1) - L(x - 1, y - 1) -
                       2 * L(x, y - 1) - L(x + 1, y - 1);
            float m = sqrtf(gx * gx + gy * gy) / 4.0f;
            float *o = img + ((size_t)y * w + x) * 3;
            o[0] = o[1] = o[2] = m;
        }
#undef L
}

static inline uint8_t to_u8(float v) {
    v = v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f;  // NaN -> 0
    return (uint8_t)(v + 0.5f);
}

void transform_apply(const Transform *tf, uint8_t *out, const uint8_t *in, int w, int h, TbRng *rng) {
    size_t n = (size_t)w * h;
    int f = tf->blur > 1 ? tf->blur : 1;
    if (f > w && f > h) f = w > h ? w : h;
    // img | blur scratch (at most n*3 + n*3) | luma (n)
    float *img = tb_thread_buffer(TB_BUF_TRANSFORM, (7 * n + 6) * sizeof(float));
    float *tmp = img + 3 * n;
    for (size_t i = 0; i < 3 * n; i++) img[i] = in[i];
    if (f > 1) blur(img, w, h, f, tmp);
    if (tf->kind == TF_GREY) {
        luma(tmp, img, n);
        for (size_t i = 0; i < n; i++) img[3 * i] = img[3 * i + 1] = img[3 * i + 2] = tmp[i];
    } else if (tf->kind == TF_EDGES) {
        edges(img, w, h, tmp);
    }
    float gain = 1, offset = 0;
    if (rng && tf->jitter > 0) {
        // One draw each per frame: the whole picture brighter or darker, flatter or harder.
        offset = (2 * tb_rng_uniform(rng) - 1) * tf->jitter * 255.0f;
        gain = 1 + (2 * tb_rng_uniform(rng) - 1) * tf->jitter;
    }
    for (size_t i = 0; i < 3 * n; i++) out[i] = to_u8((img[i] - 127.5f) * gain + 127.5f + offset);
}
