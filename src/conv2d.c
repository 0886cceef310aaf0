// conv2d.c: Conv2d without bias, x (B,C,H,W) * w (OC,C,K,K) -> y (B,OC,Ho,Wo).
//
// Fast path, per sample: im2col turns the input into a (C*K*K) x (Ho*Wo) matrix
// "cols" (row r = (c,ki,kj) holds the input pixel each output pixel sees through
// tap (ki,kj) of channel c, 0 in the padding), and then
//   forward:  y  = w · cols                 (OC x CKK)(CKK x HoWo)
//   backward: dw += dy · cols^T             (OC x HoWo)(HoWo x CKK)
//             dcols = w^T · dy, dx = col2im(dcols)
// The transposes are BLAS flags, never copies. cols lives in a per-thread
// scratch that only grows, so a training step allocates nothing.
// The im2col/col2im helpers are shared with convt2d.c (ConvTranspose2d is the
// same pair of matrices read the other way round).
#include <string.h>

#include "common.h"
#include "ops.h"

void tb_im2col(float *cols, const float *im, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo);
void tb_col2im(float *im, const float *cols, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo);
float *tb_scratch(size_t n);

// ---------------------------------------------------------------- reference
// The definitions, one output at a time, summed in double.

void conv2d_forward_ref(float *y, const float *x, const float *w, int B, int C, int H, int W,
                        int OC, int K, int S, int P) {
    int Ho = conv_out(H, K, S, P), Wo = conv_out(W, K, S, P);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int iy = oy * S - P + ki, ix = ox * S - P + kj;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)x[(((size_t)b * C + c) * H + iy) * W + ix] *
                                     (double)w[(((size_t)o * C + c) * K + ki) * K + kj];
                            }
                    y[(((size_t)b * OC + o) * Ho + oy) * Wo + ox] = (float)s;
                }
}

void conv2d_backward_ref(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         int B, int C, int H, int W, int OC, int K, int S, int P) {
    int Ho = conv_out(H, K, S, P), Wo = conv_out(W, K, S, P);
    // dw[o][c][ki][kj] = sum over samples and output pixels of dy * the input pixel it saw.
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++)
            for (int ki = 0; ki < K; ki++)
                for (int kj = 0; kj < K; kj++) {
                    double s = 0.0;
                    for (int b = 0; b < B; b++)
                        for (int oy = 0; oy < Ho; oy++)
                            for (int ox = 0; ox < Wo; ox++) {
                                int iy = oy * S - P + ki, ix = ox * S - P + kj;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)dy[(((size_t)b * OC + o) * Ho + oy) * Wo + ox] *
                                     (double)x[(((size_t)b * C + c) * H + iy) * W + ix];
                            }
                    dw[(((size_t)o * C + c) * K + ki) * K + kj] = (float)s;
                }
    if (!dx) return;
    // dx[b][c][iy][ix] = sum over the outputs that saw this pixel (oy*S - P + ki = iy).
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int iy = 0; iy < H; iy++)
                for (int ix = 0; ix < W; ix++) {
                    double s = 0.0;
                    for (int o = 0; o < OC; o++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ty = iy + P - ki, tx = ix + P - kj;
                                if (ty < 0 || tx < 0 || ty % S || tx % S) continue;
                                int oy = ty / S, ox = tx / S;
                                if (oy >= Ho || ox >= Wo) continue;
                                s += (double)dy[(((size_t)b * OC + o) * Ho + oy) * Wo + ox] *
                                     (double)w[(((size_t)o * C + c) * K + ki) * K + kj];
                            }
                    dx[(((size_t)b * C + c) * H + iy) * W + ix] = (float)s;
                }
}

// ---------------------------------------------------------------- im2col / col2im

// A growing buffer per calling thread (the backend's thread), reused by every op.
float *tb_scratch(size_t n) {
    static _Thread_local float *buf;
    static _Thread_local size_t cap;
    if (n > cap) {
        free(buf);
        cap = (n + 4095) & ~(size_t)4095;  // whole 16 KiB steps, a multiple of 64 bytes
        buf = aligned_alloc(64, cap * sizeof(float));
        CHECK(buf != NULL, "out of memory for a %zu-float scratch buffer", cap);
    }
    return buf;
}

// Output columns ox in [*lo, *hi) read input column ox*S + a (a = kj - P) inside [0, W).
static inline void valid_range(int a, int S, int W, int Wo, int *lo, int *hi) {
    int l = a >= 0 ? 0 : (-a + S - 1) / S;
    int h = W - 1 - a < 0 ? 0 : (W - 1 - a) / S + 1;
    *lo = l < Wo ? l : Wo;
    *hi = h < Wo ? h : Wo;
    if (*hi < *lo) *hi = *lo;
}

// cols[(c*K + ki)*K + kj][oy*Wo + ox] = im[c][oy*S - P + ki][ox*S - P + kj], 0 outside.
void tb_im2col(float *cols, const float *im, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo) {
    int rows = C * K * K;
    size_t plane = (size_t)Ho * Wo;
#pragma omp parallel for schedule(static) if (rows * plane >= 32768)
    for (int r = 0; r < rows; r++) {
        int c = r / (K * K), ki = r / K % K, kj = r % K;
        int lo, hi;
        valid_range(kj - P, S, W, Wo, &lo, &hi);
        float *dst = cols + (size_t)r * plane;
        for (int oy = 0; oy < Ho; oy++, dst += Wo) {
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

// The adjoint of tb_im2col: im[c][iy][ix] = sum of the cols entries that copied it.
// Written as a gather, one image row per iteration, so that threads never write
// the same pixel and each pixel is stored once. A row is accumulated in S
// "phases" (ix = q*S + phase) so every tap adds a contiguous run, then
// interleaved back.
void tb_col2im(float *im, const float *cols, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo) {
    int Wq = (W + S - 1) / S;  // columns per phase
    size_t plane = (size_t)Ho * Wo;
#pragma omp parallel if ((size_t)C * H * W >= 16384)
    {
        float ph[S * (Wq + 1)];  // one image row, S phases (W + 2S floats)
#pragma omp for schedule(static)
        for (int cy = 0; cy < C * H; cy++) {
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
                    const float *src = cols + ((size_t)(c * K + ki) * K + kj) * plane +
                                       (size_t)oy * Wo;
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
}

// ---------------------------------------------------------------- fast path

void conv2d_forward(float *y, const float *x, const float *w, int B, int C, int H, int W, int OC,
                    int K, int S, int P) {
    int Ho = conv_out(H, K, S, P), Wo = conv_out(W, K, S, P);
    int CKK = C * K * K, N = Ho * Wo;
    float *cols = tb_scratch((size_t)CKK * N);
    for (int b = 0; b < B; b++) {
        tb_im2col(cols, x + (size_t)b * C * H * W, C, H, W, K, S, P, Ho, Wo);
        gemm(0, 0, OC, N, CKK, 1.0f, w, CKK, cols, N, 0.0f, y + (size_t)b * OC * N, N);
    }
}

void conv2d_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int B,
                     int C, int H, int W, int OC, int K, int S, int P) {
    int Ho = conv_out(H, K, S, P), Wo = conv_out(W, K, S, P);
    int CKK = C * K * K, N = Ho * Wo;
    float *cols = tb_scratch((size_t)CKK * N);
    for (int b = 0; b < B; b++) {
        const float *dyb = dy + (size_t)b * OC * N;
        tb_im2col(cols, x + (size_t)b * C * H * W, C, H, W, K, S, P, Ho, Wo);
        gemm(0, 1, OC, CKK, N, 1.0f, dyb, N, cols, N, b ? 1.0f : 0.0f, dw, CKK);
        if (dx) {  // cols is free again: reuse it for dcols
            gemm(1, 0, CKK, N, OC, 1.0f, w, CKK, dyb, N, 0.0f, cols, N);
            tb_col2im(dx + (size_t)b * C * H * W, cols, C, H, W, K, S, P, Ho, Wo);
        }
    }
}
