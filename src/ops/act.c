// act.c: bias + activation, fused and in place, forward and backward.
// The work is cut into blocks of one channel plane (or a piece of one), so both
// a 256-channel 8x8 map and a 3-channel 256x256 map spread over the threads.
// The bias gradient is summed in double per block, then per channel in block
// order: the same bits whatever the thread count.
#include <math.h>

#include "common.h"
#include "ops.h"

#define BLOCK 4096  // floats per work block (16 KiB)

void bias_act_forward(float *y, const float *b, int B, int C, int HW, int act, float slope) {
    int nblk = (HW + BLOCK - 1) / BLOCK;  // blocks per plane
    long total = (long)B * C * nblk;
#pragma omp parallel for schedule(static) if ((long)B * C * HW >= 32768)
    for (long t = 0; t < total; t++) {
        long plane = t / nblk;
        int c = (int)(plane % C), k = (int)(t % nblk);
        int lo = k * BLOCK, hi = lo + BLOCK < HW ? lo + BLOCK : HW;
        float *p = y + plane * HW;
        float bc = b ? b[c] : 0.0f;
        if (act == ACT_LEAKY) {
            for (int i = lo; i < hi; i++) {
                float v = p[i] + bc;
                p[i] = v > 0.0f ? v : v * slope;
            }
        } else if (act == ACT_SIGMOID) {
            for (int i = lo; i < hi; i++) p[i] = 1.0f / (1.0f + expf(-(p[i] + bc)));
        } else {
            for (int i = lo; i < hi; i++) p[i] += bc;
        }
    }
}

void bias_act_backward(float *d, float *db, const float *y, int B, int C, int HW, int act,
                       float slope) {
    int nblk = (HW + BLOCK - 1) / BLOCK;
    long total = (long)B * C * nblk;
    // Per-block sums of the bias gradient, in the calling thread's buffer (a
    // local copy of the pointer goes into the parallel loop).
    double *part = db ? tb_thread_buffer(TB_BUF_BIAS_SUMS, (size_t)total * sizeof(double)) : NULL;
#pragma omp parallel for schedule(static) if ((long)B * C * HW >= 32768)
    for (long t = 0; t < total; t++) {
        long plane = t / nblk;
        int k = (int)(t % nblk);
        int lo = k * BLOCK, hi = lo + BLOCK < HW ? lo + BLOCK : HW;
        float *g = d + plane * HW;
        const float *o = y + plane * HW;
        double s = 0.0;
        if (act == ACT_LEAKY) {
#pragma omp simd reduction(+ : s)
            for (int i = lo; i < hi; i++) {
                float v = o[i] > 0.0f ? g[i] : g[i] * slope;
                g[i] = v;
                s += v;
            }
        } else if (act == ACT_SIGMOID) {
#pragma omp simd reduction(+ : s)
            for (int i = lo; i < hi; i++) {
                float v = g[i] * (1.0f - o[i]) * o[i];
                g[i] = v;
                s += v;
            }
        } else {
#pragma omp simd reduction(+ : s)
            for (int i = lo; i < hi; i++) s += g[i];
        }
        if (db) part[t] = s;
    }
    if (!db) return;
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < nblk; k++) s += part[((long)b * C + c) * nblk + k];
        db[c] = (float)s;
    }
}

// ---------------------------------------------------------------- blocked layout
// The same on oneDNN's blocked layout nChw16c (C a multiple of 16), which the CPU
// backend keeps between layers on the oneDNN path: channel c of pixel p of
// sample b is at ((b*C/16 + c/16)*HW + p)*16 + c%16. Blocks of BLOCK floats
// again, here BLOCK/16 pixels of 16 channels.

static inline float act_fwd(float v, int act, float slope) {
    if (act == ACT_LEAKY) return v > 0.0f ? v : v * slope;
    if (act == ACT_SIGMOID) return 1.0f / (1.0f + expf(-v));
    return v;
}

static inline float act_bwd(float g, float o, int act, float slope) {
    if (act == ACT_LEAKY) return o > 0.0f ? g : g * slope;
    if (act == ACT_SIGMOID) return g * (1.0f - o) * o;
    return g;
}

void bias_act_forward_c16(float *y, const float *b, int B, int C, int HW, int act, float slope) {
    CHECK(C % 16 == 0, "blocked bias_act with C = %d", C);
    int CB = C / 16, PB = BLOCK / 16, nblk = (HW + PB - 1) / PB;
    long total = (long)B * CB * nblk;
#pragma omp parallel for schedule(static) if ((long)B * C * HW >= 32768)
    for (long t = 0; t < total; t++) {
        long plane = t / nblk;
        int cb = (int)(plane % CB), k = (int)(t % nblk);
        int lo = k * PB, hi = lo + PB < HW ? lo + PB : HW;
        float *p = y + plane * HW * 16, bc[16];
        for (int j = 0; j < 16; j++) bc[j] = b ? b[cb * 16 + j] : 0.0f;
        for (int i = lo; i < hi; i++)
#pragma omp simd
            for (int j = 0; j < 16; j++) p[i * 16 + j] = act_fwd(p[i * 16 + j] + bc[j], act, slope);
    }
}

void bias_act_backward_c16(float *d, float *db, const float *y, int B, int C, int HW, int act,
                           float slope) {
    CHECK(C % 16 == 0, "blocked bias_act with C = %d", C);
    int CB = C / 16, PB = BLOCK / 16, nblk = (HW + PB - 1) / PB;
    long total = (long)B * CB * nblk;
    double *part = db ? tb_thread_buffer(TB_BUF_BIAS_SUMS, (size_t)total * 16 * sizeof(double))
                      : NULL;
#pragma omp parallel for schedule(static) if ((long)B * C * HW >= 32768)
    for (long t = 0; t < total; t++) {
        long plane = t / nblk;
        int k = (int)(t % nblk);
        int lo = k * PB, hi = lo + PB < HW ? lo + PB : HW;
        float *g = d + plane * HW * 16;
        const float *o = y + plane * HW * 16;
        double s[16] = {0};
        for (int i = lo; i < hi; i++)
#pragma omp simd
            for (int j = 0; j < 16; j++) {
                float v = act_bwd(g[i * 16 + j], o[i * 16 + j], act, slope);
                g[i * 16 + j] = v;
                s[j] += v;
            }
        if (db)
            for (int j = 0; j < 16; j++) part[t * 16 + j] = s[j];
    }
    if (!db) return;
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < nblk; k++)
                s += part[(((long)b * CB + c / 16) * nblk + k) * 16 + c % 16];
        db[c] = (float)s;
    }
}
