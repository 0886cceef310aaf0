// im2col.c: the helpers conv2d.c and convt2d.c share: im2col and its adjoint,
// a per-thread scratch buffer, and a thread's share of a loop.
#include <string.h>

#include "common.h"
#include "im2col.h"
#include "ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

// A growing buffer per calling thread (the backend's thread), reused by every op.
float *tb_scratch(size_t n) { return tb_thread_buffer(TB_BUF_COLS, n * sizeof(float)); }

// This thread's share [lo, hi) of n items, inside a parallel region (or all of it).
void tb_split(int n, int *lo, int *hi) {
    int t = 0, nt = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    *lo = (int)((long)n * t / nt);
    *hi = (int)((long)n * (t + 1) / nt);
}

// Output columns ox in [*lo, *hi) read input column ox*S + a (a = kj - P) inside [0, W).
static inline void valid_range(int a, int S, int W, int Wo, int *lo, int *hi) {
    int l = a >= 0 ? 0 : (-a + S - 1) / S;
    int h = W - 1 - a < 0 ? 0 : (W - 1 - a) / S + 1;
    *lo = l < Wo ? l : Wo;
    *hi = h < Wo ? h : Wo;
    if (*hi < *lo) *hi = *lo;
}

// Rows [r0, r1) and output rows [oy0, oy1) of cols, written densely to `cols`
// (row r - r0 holds (oy1 - oy0) * Wo values):
//   cols[(c*K + ki)*K + kj][oy*Wo + ox] = im[c][oy*S - P + ki][ox*S - P + kj], 0 outside.
void tb_im2col(float *cols, const float *im, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo, int r0, int r1, int oy0, int oy1) {
    (void)C, (void)Ho;
    for (int r = r0; r < r1; r++) {
        int c = r / (K * K), ki = r / K % K, kj = r % K;
        int lo, hi;
        valid_range(kj - P, S, W, Wo, &lo, &hi);
        float *dst = cols + (size_t)(r - r0) * (oy1 - oy0) * Wo;
        for (int oy = oy0; oy < oy1; oy++, dst += Wo) {
            int iy = oy * S - P + ki;
            if (iy < 0 || iy >= H) {
                memset(dst, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *src = im + ((size_t)c * H + iy) * W + kj - P;
            for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
            if (S == 1) {
                memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            } else if (S == 2) {
                for (int ox = lo; ox < hi; ox++) dst[ox] = src[2 * ox];
            } else {
                for (int ox = lo; ox < hi; ox++) dst[ox] = src[(size_t)ox * S];
            }
            for (int ox = hi; ox < Wo; ox++) dst[ox] = 0.0f;
        }
    }
}

// The adjoint of tb_im2col (all rows, all Ho*Wo columns) for image rows
// cy in [cy0, cy1), cy = c*H + iy: im[c][iy][:] = sum of the cols entries that
// copied it. A gather, so each pixel is stored once and threads that own
// different rows never meet. A row is accumulated in S "phases"
// (ix = q*S + phase) so that every tap adds a contiguous run, then interleaved.
void tb_col2im(float *im, const float *cols, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo, int cy0, int cy1) {
    (void)C;
    int Wq = (W + S - 1) / S;  // columns per phase
    size_t plane = (size_t)Ho * Wo;
    float ph[S * (Wq + 1)];  // one image row, S phases: W + 2S floats
    for (int cy = cy0; cy < cy1; cy++) {
        int c = cy / H, iy = cy % H;
        memset(ph, 0, sizeof ph);
        for (int ki = 0; ki < K; ki++) {
            int ty = iy + P - ki;
            if (ty < 0 || ty % S) continue;
            int oy = ty / S;
            if (oy >= Ho) continue;
            for (int kj = 0; kj < K; kj++) {
                // ix = ox*S + a with a = kj - P: phase pa = a mod S, q = ox + qa.
                int a = kj - P, lo, hi;
                valid_range(a, S, W, Wo, &lo, &hi);
                int pa = ((a % S) + S) % S, qa = (a - pa) / S;
                const float *src =
                    cols + ((size_t)(c * K + ki) * K + kj) * plane + (size_t)oy * Wo;
                float *dst = ph + (size_t)pa * (Wq + 1);
                for (int ox = lo; ox < hi; ox++) dst[ox + qa] += src[ox];
            }
        }
        float *out = im + (size_t)cy * W;
        if (S == 1) {
            memcpy(out, ph, (size_t)W * sizeof(float));
        } else if (S == 2 && W % 2 == 0) {
            const float *e = ph, *o = ph + (Wq + 1);
            for (int q = 0; q < W / 2; q++) {
                out[2 * q] = e[q];
                out[2 * q + 1] = o[q];
            }
        } else {
            for (int ix = 0; ix < W; ix++) out[ix] = ph[(size_t)(ix % S) * (Wq + 1) + ix / S];
        }
    }
}

