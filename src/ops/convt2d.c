// convt2d.c: ConvTranspose2d without bias, x (B,C,H,W), w (C,OC,K,K) as in
// PyTorch -> y (B,OC,Ho,Wo), Ho = (H-1)*S - 2P + K.
//
// It is the adjoint of Conv2d(OC -> C) on a Ho x Wo image, so the same im2col
// geometry serves with the roles swapped (the "image" is y, the "cols" grid is x):
//   forward:  cols = w^T · x, y = col2im(cols)   (OKK x C)(C x HW)
//   backward: dcols = im2col(dy)                 (OKK x HW)
//             dw += x · dcols^T                  (C x HW)(HW x OKK)
//             dx  = w · dcols                    (C x OKK)(OKK x HW)
// Threads: one OpenMP region per sample with one barrier, between the part that
// is split by rows of cols and the part split by its columns:
//   forward:  each thread computes a slice of cols, then gathers a band of
//             output rows (every tap reaches across the slices);
//   backward: each thread builds some rows of dcols and the matching columns of
//             dw, then a slice of dx (a sum over all rows of dcols).
// GEMMs are sliced along the larger operand (w on small deep maps, x or cols on
// large ones), so that the one every thread packs whole is the small one.
#include "common.h"
#include "im2col.h"
#include "ops.h"


// ---------------------------------------------------------------- reference
// The definitions, one output at a time, summed in double. Input pixel (iy, ix)
// reaches output pixel (iy*S - P + ki, ix*S - P + kj) through tap (ki, kj).

void convt2d_forward_ref(float *y, const float *x, const float *w, int B, int C, int H, int W,
                         int OC, int K, int S, int P) {
    int Ho = convt_out(H, K, S, P), Wo = convt_out(W, K, S, P);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ty = oy + P - ki, tx = ox + P - kj;
                                if (ty < 0 || tx < 0 || ty % S || tx % S) continue;
                                int iy = ty / S, ix = tx / S;
                                if (iy >= H || ix >= W) continue;
                                s += (double)x[(((size_t)b * C + c) * H + iy) * W + ix] *
                                     (double)w[(((size_t)c * OC + o) * K + ki) * K + kj];
                            }
                    y[(((size_t)b * OC + o) * Ho + oy) * Wo + ox] = (float)s;
                }
}

void convt2d_backward_ref(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          int B, int C, int H, int W, int OC, int K, int S, int P) {
    int Ho = convt_out(H, K, S, P), Wo = convt_out(W, K, S, P);
    for (int c = 0; c < C; c++)
        for (int o = 0; o < OC; o++)
            for (int ki = 0; ki < K; ki++)
                for (int kj = 0; kj < K; kj++) {
                    double s = 0.0;
                    for (int b = 0; b < B; b++)
                        for (int iy = 0; iy < H; iy++)
                            for (int ix = 0; ix < W; ix++) {
                                int oy = iy * S - P + ki, ox = ix * S - P + kj;
                                if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                                s += (double)x[(((size_t)b * C + c) * H + iy) * W + ix] *
                                     (double)dy[(((size_t)b * OC + o) * Ho + oy) * Wo + ox];
                            }
                    dw[(((size_t)c * OC + o) * K + ki) * K + kj] = (float)s;
                }
    if (!dx) return;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int iy = 0; iy < H; iy++)
                for (int ix = 0; ix < W; ix++) {
                    double s = 0.0;
                    for (int o = 0; o < OC; o++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int oy = iy * S - P + ki, ox = ix * S - P + kj;
                                if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                                s += (double)dy[(((size_t)b * OC + o) * Ho + oy) * Wo + ox] *
                                     (double)w[(((size_t)c * OC + o) * K + ki) * K + kj];
                            }
                    dx[(((size_t)b * C + c) * H + iy) * W + ix] = (float)s;
                }
}

// ---------------------------------------------------------------- fast path

void convt2d_forward(float *y, const float *x, const float *w, int B, int C, int H, int W, int OC,
                     int K, int S, int P) {
    if (conv_impl() == CONV_IMPL_DNNL &&
        !conv_dnnl_forward(1, 0, y, x, w, B, C, H, W, OC, K, S, P))
        return;
    int Ho = convt_out(H, K, S, P), Wo = convt_out(W, K, S, P);
    int OKK = OC * K * K, N = H * W;
    float *cols = tb_scratch((size_t)OKK * N);
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * C * N;
        float *yb = y + (size_t)b * OC * Ho * Wo;
#pragma omp parallel if (2.0 * OKK * N * C >= 1e6)
        {
            if (OKK > N) {  // slice the larger operand, so that its packing is not repeated
                int r0, r1;
                tb_split(OKK, &r0, &r1);
                if (r1 > r0)
                    gemm(1, 0, r1 - r0, N, C, 1.0f, w + r0, OKK, xb, N, 0.0f,
                         cols + (size_t)r0 * N, N);
            } else {
                int iy0, iy1;
                tb_split(H, &iy0, &iy1);
                int n0 = iy0 * W, n = (iy1 - iy0) * W;
                if (n > 0) gemm(1, 0, OKK, n, C, 1.0f, w, OKK, xb + n0, N, 0.0f, cols + n0, N);
            }
#pragma omp barrier
            int cy0, cy1;
            tb_split(OC * Ho, &cy0, &cy1);
            tb_col2im(yb, cols, OC, Ho, Wo, K, S, P, H, W, cy0, cy1);
        }
    }
}

void convt2d_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      int B, int C, int H, int W, int OC, int K, int S, int P) {
    if (conv_impl() == CONV_IMPL_DNNL &&
        !conv_dnnl_backward(1, 0, dx, dw, dy, x, w, B, C, H, W, OC, K, S, P))
        return;
    int Ho = convt_out(H, K, S, P), Wo = convt_out(W, K, S, P);
    int OKK = OC * K * K, N = H * W;
    float *cols = tb_scratch((size_t)OKK * N);
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * C * N, *dyb = dy + (size_t)b * OC * Ho * Wo;
        float beta = b ? 1.0f : 0.0f;  // dw sums over the batch
#pragma omp parallel if (2.0 * OKK * N * C >= 1e6)
        {
            int r0, r1;
            tb_split(OKK, &r0, &r1);
            if (r1 > r0) {
                float *ct = cols + (size_t)r0 * N;
                tb_im2col(ct, dyb, OC, Ho, Wo, K, S, P, H, W, r0, r1, 0, H);
                gemm(0, 1, C, r1 - r0, N, 1.0f, xb, N, ct, N, beta, dw + r0, OKK);
            }
            if (dx) {
#pragma omp barrier
                float *dxb = dx + (size_t)b * C * N;
                if (C > N) {  // again slice the larger operand (w here)
                    int c0, c1;
                    tb_split(C, &c0, &c1);
                    if (c1 > c0)
                        gemm(0, 0, c1 - c0, N, OKK, 1.0f, w + (size_t)c0 * OKK, OKK, cols, N,
                             0.0f, dxb + (size_t)c0 * N, N);
                } else {
                    int iy0, iy1;
                    tb_split(H, &iy0, &iy1);
                    int n0 = iy0 * W, n = (iy1 - iy0) * W;
                    if (n > 0)
                        gemm(0, 0, C, n, OKK, 1.0f, w, OKK, cols + n0, N, 0.0f, dxb + n0, N);
                }
            }
        }
    }
}
