// frame_fit.c: centre-crop + resize of RGB8 frames to the training size.
#include <math.h>
#include <string.h>

#include "frame_fit.h"

// ---------------------------------------------------------------- resize

// One output sample = sum of n weighted source samples starting at first[i].
// Built once per axis per call; taps is n_out * maxtaps.
typedef struct {
    int n_out, maxtaps;
    int *first, *count;
    float *w;
} Taps;

static void taps_free(Taps *t) {
    free(t->first);
    free(t->count);
    free(t->w);
}

// Map n_in source samples (starting at offset 0 of the crop) to n_out.
// Shrinking: area averaging (each output covers [i*s, (i+1)*s) of the input,
// weights are the overlaps). Enlarging or equal: bilinear with pixel centres
// aligned, edges clamped, so the corners of the input stay the corners.
static void taps_build(Taps *t, int n_in, int n_out) {
    double s = (double)n_in / (double)n_out;
    int shrink = n_in > n_out;
    t->n_out = n_out;
    t->maxtaps = shrink ? (int)ceil(s) + 1 : 2;
    t->first = tb_malloc(sizeof(int) * (size_t)n_out);
    t->count = tb_malloc(sizeof(int) * (size_t)n_out);
    t->w = tb_calloc((size_t)n_out * (size_t)t->maxtaps, sizeof(float));
    for (int i = 0; i < n_out; i++) {
        float *w = t->w + (size_t)i * (size_t)t->maxtaps;
        if (shrink) {
            double a = i * s, b = (i + 1) * s;
            int j0 = (int)floor(a), j1 = (int)ceil(b);
            if (j1 > n_in) j1 = n_in;
            double sum = 0;
            int n = 0;
            for (int j = j0; j < j1 && n < t->maxtaps; j++) {
                double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
                double ov = hi - lo;
                if (ov <= 1e-9) {  // rounding sliver at an edge: skip it
                    if (n == 0) j0 = j + 1;
                    continue;
                }
                w[n++] = (float)ov;
                sum += ov;
            }
            for (int k = 0; k < n; k++) w[k] = (float)(w[k] / sum);  // exact partition of 1
            t->first[i] = j0;
            t->count[i] = n;
        } else {
            double x = (i + 0.5) * s - 0.5;
            if (x < 0) x = 0;
            if (x > n_in - 1) x = n_in - 1;
            int j = (int)floor(x);
            double f = x - j;
            if (j >= n_in - 1) {  // last sample (also n_in == 1)
                j = n_in - 1;
                f = 0;
            }
            t->first[i] = j;
            t->count[i] = f > 0 ? 2 : 1;
            w[0] = (float)(1.0 - f);
            w[1] = (float)f;
        }
    }
}

void frame_fit(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh) {
    CHECK(dw > 0 && dh > 0 && sw > 0 && sh > 0, "frame_fit %dx%d -> %dx%d", sw, sh, dw, dh);
    // Largest centred window of src with the aspect dw:dh (rounded to whole pixels).
    int cw = sw, ch = sh;
    if ((int64_t)sw * dh > (int64_t)sh * dw) {
        cw = (int)(((int64_t)sh * dw * 2 + dh) / (2 * (int64_t)dh));
        if (cw < 1) cw = 1;
    } else if ((int64_t)sw * dh < (int64_t)sh * dw) {
        ch = (int)(((int64_t)sw * dh * 2 + dw) / (2 * (int64_t)dw));
        if (ch < 1) ch = 1;
    }
    int x0 = (sw - cw) / 2, y0 = (sh - ch) / 2;
    size_t stride = (size_t)sw * 3;
    const uint8_t *base = src + (size_t)y0 * stride + (size_t)x0 * 3;

    if (cw == dw && ch == dh) {  // pure crop
        for (int y = 0; y < dh; y++)
            memcpy(dst + (size_t)y * dw * 3, base + (size_t)y * stride, (size_t)dw * 3);
        return;
    }

    // Separable: for each output row, blend the source rows it needs into one
    // float row (vertical pass), then resample that row horizontally. Only one
    // row of scratch, so 1920x1080 -> 256x256 touches each source byte once.
    Taps tx, ty;
    taps_build(&tx, cw, dw);
    taps_build(&ty, ch, dh);
    float *row = tb_malloc(sizeof(float) * (size_t)cw * 3);
    for (int y = 0; y < dh; y++) {
        const float *wy = ty.w + (size_t)y * ty.maxtaps;
        int ny = ty.count[y];
        const uint8_t *r0 = base + (size_t)ty.first[y] * stride;
        for (int i = 0; i < cw * 3; i++) row[i] = wy[0] * r0[i];
        for (int k = 1; k < ny; k++) {
            const uint8_t *rk = r0 + (size_t)k * stride;
            float wk = wy[k];
            for (int i = 0; i < cw * 3; i++) row[i] += wk * rk[i];
        }
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            const float *wx = tx.w + (size_t)x * tx.maxtaps;
            const float *p = row + (size_t)tx.first[x] * 3;
            float r = 0, g = 0, b = 0;
            for (int k = 0; k < tx.count[x]; k++) {
                r += wx[k] * p[3 * k];
                g += wx[k] * p[3 * k + 1];
                b += wx[k] * p[3 * k + 2];
            }
            // Weights sum to 1, so the values stay in [0,255] up to rounding.
            r += 0.5f, g += 0.5f, b += 0.5f;
            out[3 * x] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            out[3 * x + 1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
            out[3 * x + 2] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
        }
    }
    free(row);
    taps_free(&tx);
    taps_free(&ty);
}
