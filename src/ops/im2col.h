// im2col.h: the helpers conv2d.c and convt2d.c share (im2col.c).
#pragma once
#include <stddef.h>

// Rows [r0, r1) of the im2col matrix (row r = c*K*K + ki*K + kj) for output rows
// [oy0, oy1), packed as (r1-r0) rows of (oy1-oy0)*Wo: the entry for (r, oy, ox)
// is im[c][oy*S-P+ki][ox*S-P+kj], 0 outside the image.
void tb_im2col(float *cols, const float *im, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo, int r0, int r1, int oy0, int oy1);
// The adjoint, for image rows [cy0, cy1): each pixel gathers its taps (written once).
void tb_col2im(float *im, const float *cols, int C, int H, int W, int K, int S, int P, int Ho,
               int Wo, int cy0, int cy1);
// A growing scratch buffer per calling thread, reused by every op.
float *tb_scratch(size_t n);
// This thread's share [lo, hi) of n items inside a parallel region (or all of it).
void tb_split(int n, int *lo, int *hi);
