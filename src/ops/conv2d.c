// conv2d.c: Conv2d without bias, x (B,C,H,W) * w (OC,C,K,K) -> y (B,OC,Ho,Wo).
//
// Fast path, per sample: im2col turns the input into a (C*K*K) x (Ho*Wo) matrix
// "cols" (row r = (c,ki,kj) holds the input pixel each output pixel sees through
// tap (ki,kj) of channel c, 0 in the padding), and then
//   forward:  y  = w · cols                 (OC x CKK)(CKK x HoWo)
//   backward: dw += dy · cols^T             (OC x HoWo)(HoWo x CKK)
//             dcols = w^T · dy, dx = col2im(dcols)
// The transposes are BLAS flags, never copies. cols lives in a scratch buffer
// that only grows, so once warm a training step allocates nothing.
//
// Threads: one OpenMP region per sample, as a rule with no barrier inside. Each
// thread builds the part of cols it needs and multiplies it at once
// (single-threaded GEMM, see gemm.c), while it is still in its cache:
//   forward:  a band of output rows (its columns of cols, then its columns of y),
//             or, when w is larger than cols, some output channels after a
//             shared im2col (each thread packs only its part of w);
//   backward: a group of input channels (its rows of cols -> its columns of dw,
//             its rows of dcols -> its channels of dx).
// Fewer fork/joins matter on 2 cores: under load every join waits for the
// slowest thread's time slice.
// The im2col/col2im helpers (im2col.c) are shared with convt2d.c
// (ConvTranspose2d is the same pair of matrices read the other way round).
#include <string.h>

#include "common.h"
#include "im2col.h"
#include "ops.h"


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

// ---------------------------------------------------------------- fast path

// Worth a second thread: ~1 MFLOP of GEMM (about 10 us of work).
static inline int big(double flops) { return flops >= 1e6; }

void conv2d_forward(float *y, const float *x, const float *w, int B, int C, int H, int W, int OC,
                    int K, int S, int P) {
    if (conv_impl() == CONV_IMPL_DNNL &&
        !conv_dnnl_forward(0, 0, y, x, w, B, C, H, W, OC, K, S, P))
        return;
    int Ho = conv_out(H, K, S, P), Wo = conv_out(W, K, S, P);
    int CKK = C * K * K, N = Ho * Wo;
    float *cols = tb_scratch((size_t)CKK * N);
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * C * H * W;
        float *yb = y + (size_t)b * OC * N;
#pragma omp parallel if (big(2.0 * OC * N * CKK))
        {
            if (OC > N) {
                // More weights than columns (deep layers on small maps): share cols
                // and give each thread some output channels, so that no thread
                // packs all of w.
                int r0, r1, o0, o1;
                tb_split(CKK, &r0, &r1);
                tb_im2col(cols + (size_t)r0 * N, xb, C, H, W, K, S, P, Ho, Wo, r0, r1, 0, Ho);
#pragma omp barrier
                tb_split(OC, &o0, &o1);
                if (o1 > o0)
                    gemm(0, 0, o1 - o0, N, CKK, 1.0f, w + (size_t)o0 * CKK, CKK, cols, N, 0.0f,
                         yb + (size_t)o0 * N, N);
            } else {
                int oy0, oy1;
                tb_split(Ho, &oy0, &oy1);  // a band of output rows = columns [n0, n0 + n)
                int n0 = oy0 * Wo, n = (oy1 - oy0) * Wo;
                if (n > 0) {
                    float *ct = cols + (size_t)CKK * n0;  // this thread's CKK x n block
                    tb_im2col(ct, xb, C, H, W, K, S, P, Ho, Wo, 0, CKK, oy0, oy1);
                    gemm(0, 0, OC, n, CKK, 1.0f, w, CKK, ct, n, 0.0f, yb + n0, N);
                }
            }
        }
    }
}

void conv2d_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int B,
                     int C, int H, int W, int OC, int K, int S, int P) {
    if (conv_impl() == CONV_IMPL_DNNL &&
        !conv_dnnl_backward(0, 0, dx, dw, dy, x, w, B, C, H, W, OC, K, S, P))
        return;
    int Ho = conv_out(H, K, S, P), Wo = conv_out(W, K, S, P);
    int KK = K * K, CKK = C * KK, N = Ho * Wo;
    float *cols = tb_scratch((size_t)CKK * N);
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * C * H * W, *dyb = dy + (size_t)b * OC * N;
        float beta = b ? 1.0f : 0.0f;  // dw sums over the batch
#pragma omp parallel if (big(2.0 * OC * N * CKK))
        {
            // Rows of cols: whole channels when dx is wanted (col2im needs all K*K
            // taps of a channel), any rows otherwise.
            int r0, r1;
            if (dx) {
                int c0, c1;
                tb_split(C, &c0, &c1);
                r0 = c0 * KK, r1 = c1 * KK;
            } else {
                tb_split(CKK, &r0, &r1);
            }
            int nr = r1 - r0;
            if (nr > 0) {
                float *ct = cols + (size_t)r0 * N;  // rows [r0, r1), all N columns
                tb_im2col(ct, xb, C, H, W, K, S, P, Ho, Wo, r0, r1, 0, Ho);
                gemm(0, 1, OC, nr, N, 1.0f, dyb, N, ct, N, beta, dw + r0, CKK);
                if (dx) {  // this block of cols is free again: reuse it for dcols
                    gemm(1, 0, nr, N, OC, 1.0f, w + r0, CKK, dyb, N, 0.0f, ct, N);
                    int c0 = r0 / KK, c1 = r1 / KK;
                    tb_col2im(dx + ((size_t)b * C + c0) * H * W, ct, c1 - c0, H, W, K, S, P, Ho,
                              Wo, 0, (c1 - c0) * H);
                }
            }
        }
    }
}
