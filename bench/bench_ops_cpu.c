// bench_ops_cpu.c: time each layer of the default network (docs/ARCHITECTURE.md, "The network") on the
// CPU ops, batch 1, at 128x128 and 256x256.
//   forward  = conv/convT + bias/activation
//   backward = bias/activation backward + conv/convT backward (no dx for layer 0)
// plus the loss and the optimizer (norm + SGD over all parameters), so the last
// line is one whole training step. Then the optional extras, none of them in a
// default step: the bottleneck op (half the channels kept, noise on; forward
// and backward) on the encoder's output and the feedback dream's warp (zoom and
// rotate, RGB8 at R x R). Warm-up first, then the median of the runs.
//   usage: bench_ops_cpu [runs]   (default 21)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "common.h"
#include "ops.h"

typedef struct {
    int convt, cin, cout, hin, hout, act;
} L;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return t[n / 2];
}

// The per-layer table: medians of forward and backward, and GFLOP/s.
static void report(int R, int runs, const L *l, double **tf, double **tb, double *tl, double *to,
                   size_t nparam, double *tx) {
    printf("%dx%d, batch 1, median of %d (ms)\n", R, R, runs);
    printf("  layer                       fwd     bwd  fwd+bwd   GFLOP/s\n");
    double sf = 0, sb = 0;
    for (int i = 0; i < 8; i++) {
        double f = median(tf[i], runs) * 1e3, bk = median(tb[i], runs) * 1e3;
        // forward 2*MACs; backward: dw and (except layer 0) dx, each as much again
        double macs = (double)l[i].cin * l[i].cout * 16 *
                      (l[i].convt ? (double)l[i].hin * l[i].hin : (double)l[i].hout * l[i].hout);
        double flops = 2.0 * macs * (i ? 3 : 2);
        sf += f, sb += bk;
        printf("  %s%d %4d->%-4d %3dx%-3d  %7.3f %7.3f  %7.3f  %8.1f\n", l[i].convt ? "dec" : "enc",
               i & 3, l[i].cin, l[i].cout, l[i].hout, l[i].hout, f, bk, f + bk,
               flops / ((f + bk) * 1e-3) * 1e-9);
    }
    double ml = median(tl, runs) * 1e3, mo = median(to, runs) * 1e3;
    printf("  layers total               %7.3f %7.3f  %7.3f\n", sf, sb, sf + sb);
    printf("  loss %.3f, optimizer %.3f (%zu params)\n", ml, mo, nparam);
    printf("  train step (sum of medians) %.2f ms\n", sf + sb + ml + mo);
    printf("  bottleneck op fwd %.3f, bwd %.3f; dream warp %.3f\n\n", median(tx, runs) * 1e3,
           median(tx + runs, runs) * 1e3, median(tx + 2 * runs, runs) * 1e3);
}

static void run(int R, int runs) {
    const int ch[5] = {3, 32, 64, 128, 256};
    L l[8];
    for (int i = 0; i < 4; i++) l[i] = (L){0, ch[i], ch[i + 1], R >> i, R >> (i + 1), ACT_LEAKY};
    for (int i = 0; i < 4; i++)
        l[4 + i] = (L){1, ch[4 - i], ch[3 - i], R >> (4 - i), R >> (3 - i),
                       i == 3 ? ACT_SIGMOID : ACT_LEAKY};
    // activations a[0..8], their gradients, parameters and gradients in one block each
    float *a[9], *g[9], *w[8], *b[8], *dw[8], *db[8];
    size_t nparam = 0;
    for (int i = 0; i < 8; i++) nparam += (size_t)l[i].cin * l[i].cout * 16 + l[i].cout;
    float *P = tb_calloc(nparam, sizeof(float)), *G = tb_calloc(nparam, sizeof(float));
    float *M = tb_calloc(nparam, sizeof(float));
    TbRng rng;
    tb_rng_seed(&rng, 7);
    for (size_t i = 0; i < nparam; i++) P[i] = 0.05f * tb_rng_normal(&rng);
    size_t off = 0;
    for (int i = 0; i < 9; i++) {
        size_t n = i == 0 ? (size_t)3 * R * R : (size_t)l[i - 1].cout * l[i - 1].hout * l[i - 1].hout;
        a[i] = tb_calloc(n, sizeof(float));
        g[i] = tb_calloc(n, sizeof(float));
    }
    for (int i = 0; i < 8; i++) {
        size_t nw = (size_t)l[i].cin * l[i].cout * 16;
        w[i] = P + off, dw[i] = G + off, off += nw;
        b[i] = P + off, db[i] = G + off, off += (size_t)l[i].cout;
    }
    size_t nin = (size_t)3 * R * R;
    for (size_t i = 0; i < nin; i++) a[0][i] = tb_rng_uniform(&rng);

    double *tf[8], *tb[8], *tl = malloc(sizeof(double) * runs), *to = malloc(sizeof(double) * runs);
    double *tx = malloc(sizeof(double) * 3 * runs);  // bottleneck fwd, bwd; warp
    int bc = l[3].cout, bhw = l[3].hout * l[3].hout;
    float *bn = tb_calloc((size_t)bc * bhw, sizeof(float)), *mask = tb_calloc((size_t)bc, sizeof(float));
    bottleneck_mask_keep(mask, bc, bc / 2);
    uint8_t *img = tb_calloc((size_t)R * R, 3), *warped = tb_calloc((size_t)R * R, 3);
    for (size_t i = 0; i < (size_t)R * R * 3; i++) img[i] = (uint8_t)(i * 37 % 251);
    Warp wp = {.zoom = 1.01f, .rotate = 0.5f};
    for (int i = 0; i < 8; i++) {
        tf[i] = malloc(sizeof(double) * runs);
        tb[i] = malloc(sizeof(double) * runs);
    }
    for (int it = -5; it < runs; it++) {  // 5 warm-up steps
        double t0;
        for (int i = 0; i < 8; i++) {
            t0 = tb_now();
            if (l[i].convt)
                convt2d_forward(a[i + 1], a[i], w[i], 1, l[i].cin, l[i].hin, l[i].hin, l[i].cout, 4, 2, 1);
            else
                conv2d_forward(a[i + 1], a[i], w[i], 1, l[i].cin, l[i].hin, l[i].hin, l[i].cout, 4, 2, 1);
            bias_act_forward(a[i + 1], b[i], 1, l[i].cout, l[i].hout * l[i].hout, l[i].act, 0.2f);
            if (it >= 0) tf[i][it] = tb_now() - t0;
        }
        t0 = tb_now();
        float loss = mse_forward_backward(g[8], a[8], a[0], nin);
        if (it >= 0) tl[it] = tb_now() - t0;
        if (loss != loss) fprintf(stderr, "NaN loss\n");
        for (int i = 7; i >= 0; i--) {
            t0 = tb_now();
            bias_act_backward(g[i + 1], db[i], a[i + 1], 1, l[i].cout, l[i].hout * l[i].hout, l[i].act, 0.2f);
            float *dx = i ? g[i] : NULL;
            if (l[i].convt)
                convt2d_backward(dx, dw[i], g[i + 1], a[i], w[i], 1, l[i].cin, l[i].hin, l[i].hin, l[i].cout, 4, 2, 1);
            else
                conv2d_backward(dx, dw[i], g[i + 1], a[i], w[i], 1, l[i].cin, l[i].hin, l[i].hin, l[i].cout, 4, 2, 1);
            if (it >= 0) tb[i][it] = tb_now() - t0;
        }
        t0 = tb_now();
        float sc = clip_scale(grad_norm(G, nparam), 1.0f);
        sgd_update(P, M, G, nparam, sc, 1e-4f, 0.9f, 1e-5f);
        if (it >= 0) to[it] = tb_now() - t0;
        t0 = tb_now();
        bottleneck_forward(bn, a[4], mask, 1, bc, bhw, 0.3f, (uint64_t)(it + 5), 0);
        double t1 = tb_now();
        bottleneck_backward(bn, g[4], mask, 1, bc, bhw, 0);
        double t2 = tb_now();
        warp_apply(&wp, warped, img, R, R);
        if (it >= 0) tx[it] = t1 - t0, tx[runs + it] = t2 - t1, tx[2 * runs + it] = tb_now() - t2;
    }
    report(R, runs, l, tf, tb, tl, to, nparam, tx);
    free(tx), free(bn), free(mask), free(img), free(warped);
    for (int i = 0; i < 9; i++) free(a[i]), free(g[i]);
    for (int i = 0; i < 8; i++) free(tf[i]), free(tb[i]);
    free(tl), free(to), free(P), free(G), free(M);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 21;
    if (runs < 1) runs = 1;
#ifdef _OPENMP
    printf("OpenMP threads: %d\n", omp_get_max_threads());
#endif
#ifdef TABULA_HAVE_BLAS
    printf("GEMM: OpenBLAS (one thread per OpenMP thread)\n");
#else
    printf("GEMM: built-in blocked\n");
#endif
    run(128, runs);
    run(256, runs);
    return 0;
}
