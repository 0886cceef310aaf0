// test_ops_cpu.c: why it exists: every number the CPU backend trains with goes
// through these ops, and the CUDA backend is checked against them. A wrong tap
// in a convolution, a gradient off by a factor, or an optimizer step that is
// not PyTorch's would still "train", just badly or differently from the
// reference, with nothing else in the suite pointing at the op. So each op is
// checked against its own reference:
//   (a) fast vs *_ref on odd shapes, outputs poisoned with NaN first;
//   (b) gradient checks: central differences in double of L = sum(r * y) on
//       random coordinates of every input and weight;
//   (c) loss, norm, clipping and both optimizers against numbers worked out by
//       hand here and against PyTorch 1.13's.
// Each case seeds the random numbers itself (seed 1234), so it draws the same
// data whether it runs alone or with the others.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "common.h"
#include "ops.h"
#include "test.h"

// The built-in blocked GEMM (used when there is no OpenBLAS) is compiled in here
// under other names, so it is tested on every build, BLAS or not.
#undef TABULA_HAVE_BLAS
#define gemm gemm_builtin
#define gemm_ref gemm_builtin_ref
#include "../src/ops/gemm.c"
#undef gemm
#undef gemm_ref
void gemm_builtin(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

static TbRng rng;
static void seed(void) { tb_rng_seed(&rng, 1234); }

static float *alloc_f(size_t n) { return tb_malloc(n * sizeof(float)); }
static void fill(float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * tb_rng_uniform(&rng);
}
static void poison(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}
static size_t pick(size_t n) { return tb_rng_u32(&rng) % n; }
static double dot(const float *r, const float *y, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * (double)y[i];
    return s;
}

// ---------------------------------------------------------------- GEMM
typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int,
                       float, float *, int);

static void check_gemm_one(GemmFn fn, const char *name, int tA, int tB, int M, int N, int K,
                          float beta) {
    int lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 5, ldc = N + 2;  // padded strides
    size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb;
    size_t nc = (size_t)M * ldc;
    float *A = alloc_f(na), *B = alloc_f(nb), *C = alloc_f(nc), *R = alloc_f(nc);
    fill(A, na, -1, 1);
    fill(B, nb, -1, 1);
    if (beta == 0.0f) {
        poison(C, nc);  // beta = 0 must overwrite, even NaN
        poison(R, nc);
    } else {
        fill(C, nc, -1, 1);
        memcpy(R, C, nc * sizeof(float));
    }
    fn(tA, tB, M, N, K, 0.75f, A, lda, B, ldb, beta, C, ldc);
    gemm_ref(tA, tB, M, N, K, 0.75f, A, lda, B, ldb, beta, R, ldc);
    // Compare only the M x N block (the padding columns stay as they were).
    double md = 0.0, mr = 1e-30;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double d = fabs((double)C[(size_t)i * ldc + j] - R[(size_t)i * ldc + j]);
            md = (d > md || d != d) ? d : md;
            mr = fmax(mr, fabs(R[(size_t)i * ldc + j]));
        }
    // Float sums of K <= 300 products of U(-1,1) values: the error is ~sqrt(K)*eps
    // times the typical term, under 1e-6 of max|C| here; a wrong index gives O(1).
    EXPECT(md / mr <= 1e-5, "%s tA=%d tB=%d %dx%dx%d beta=%g: rel err %.3g", name, tA, tB, M, N,
           K, beta, md / mr);
    free(A), free(B), free(C), free(R);
}

// Small (one thread), N-sliced and M-sliced shapes, all four transposes, beta 0 and 0.5.
static void check_gemm_shapes(GemmFn fn, const char *name) {
    int shapes[][3] = {{37, 53, 29}, {70, 300, 130}, {300, 21, 64}, {1, 17, 5}, {64, 64, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int bz = 0; bz < 2; bz++) {
                float beta = bz ? 0.5f : 0.0f;
                check_gemm_one(fn, name, t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2],
                               beta);
            }
}

// The GEMM the build uses (OpenBLAS or the built-in one).
TEST_IMPL(gemm_matches_reference_all_transposes) {
    seed();
    check_gemm_shapes(gemm, "gemm");
}

TEST_IMPL(builtin_gemm_matches_reference_past_cache_blocks) {
    seed();
    check_gemm_shapes(gemm_builtin, "gemm_builtin");
    // Past one cache block of the built-in GEMM in every dimension (M > MC, N > NC, K > KC).
    check_gemm_one(gemm_builtin, "gemm_builtin", 0, 1, 160, 1100, 300, 0.5f);
    check_gemm_one(gemm_builtin, "gemm_builtin", 1, 0, 160, 1100, 300, 0.0f);
}

// ---------------------------------------------------------------- convolutions
typedef struct {
    int B, C, H, W, OC, K, S, P;
} Shape;
typedef void (*FwdFn)(float *, const float *, const float *, int, int, int, int, int, int, int,
                      int);
typedef void (*BwdFn)(float *, float *, const float *, const float *, const float *, int, int,
                      int, int, int, int, int, int);
typedef struct {
    const char *name;
    int transposed;
    FwdFn fwd, fwd_ref;
    BwdFn bwd, bwd_ref;
} ConvOp;

static void out_size(const ConvOp *op, const Shape *s, int *Ho, int *Wo) {
    *Ho = op->transposed ? convt_out(s->H, s->K, s->S, s->P) : conv_out(s->H, s->K, s->S, s->P);
    *Wo = op->transposed ? convt_out(s->W, s->K, s->S, s->P) : conv_out(s->W, s->K, s->S, s->P);
}

// Fast vs reference, forward and backward (with and without dx).
static void check_conv_parity(const ConvOp *op, Shape s) {
    int Ho, Wo;
    out_size(op, &s, &Ho, &Wo);
    size_t nx = (size_t)s.B * s.C * s.H * s.W, ny = (size_t)s.B * s.OC * Ho * Wo;
    size_t nw = (size_t)s.OC * s.C * s.K * s.K;
    float *x = alloc_f(nx), *w = alloc_f(nw), *dy = alloc_f(ny);
    float *y = alloc_f(ny), *yr = alloc_f(ny), *dx = alloc_f(nx), *dxr = alloc_f(nx);
    float *dw = alloc_f(nw), *dwr = alloc_f(nw), *dw2 = alloc_f(nw);
    fill(x, nx, -1, 1);
    fill(w, nw, -1, 1);
    fill(dy, ny, -1, 1);
    poison(y, ny), poison(yr, ny);
    op->fwd(y, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    op->fwd_ref(yr, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    poison(dx, nx), poison(dxr, nx), poison(dw, nw), poison(dwr, nw), poison(dw2, nw);
    op->bwd(dx, dw, dy, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    op->bwd_ref(dxr, dwr, dy, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    op->bwd(NULL, dw2, dy, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    // Each output is a float sum of at most C*K*K (or B*H*W) products of U(-1,1)
    // values, rounded in a different order than the double reference: ~1e-7
    // relative. 2e-5 leaves room and still catches any missing/extra tap.
    double ey = max_rel_err(y, yr, ny, 1e-3), ex = max_rel_err(dx, dxr, nx, 1e-3);
    double ew = max_rel_err(dw, dwr, nw, 1e-3), ew2 = max_rel_err(dw2, dwr, nw, 1e-3);
    char tag[160];
    snprintf(tag, sizeof tag, "%s B%d C%d %dx%d OC%d K%d S%d P%d", op->name, s.B, s.C, s.H, s.W,
             s.OC, s.K, s.S, s.P);
    EXPECT(ey <= 2e-5, "%s: forward rel err %.3g", tag, ey);
    EXPECT(ex <= 2e-5, "%s: dx rel err %.3g", tag, ex);
    EXPECT(ew <= 2e-5, "%s: dw rel err %.3g", tag, ew);
    EXPECT(ew2 <= 2e-5, "%s: dw (dx=NULL) rel err %.3g", tag, ew2);
    free(x), free(w), free(dy), free(y), free(yr), free(dx), free(dxr);
    free(dw), free(dwr), free(dw2);
}

// L(x, w) = sum(r * conv(x, w)); dL/dx and dL/dw from the backward op vs central
// differences of L evaluated in double from the reference forward.
static void check_conv_gradcheck(const ConvOp *op, Shape s, BwdFn bwd, const char *which) {
    int Ho, Wo;
    out_size(op, &s, &Ho, &Wo);
    size_t nx = (size_t)s.B * s.C * s.H * s.W, ny = (size_t)s.B * s.OC * Ho * Wo;
    size_t nw = (size_t)s.OC * s.C * s.K * s.K;
    float *x = alloc_f(nx), *w = alloc_f(nw), *r = alloc_f(ny), *y = alloc_f(ny);
    float *dx = alloc_f(nx), *dw = alloc_f(nw);
    fill(x, nx, -1, 1);
    fill(w, nw, -1, 1);
    fill(r, ny, -1, 1);
    poison(dx, nx), poison(dw, nw);
    bwd(dx, dw, r, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    // The op is linear in x and in w, so central differences have no truncation
    // error and h can be large: what is left is the float rounding of the (at
    // most ~200) outputs the coordinate touches, ~1e-7 each, divided by 2h = 0.5:
    // below 5e-5 in the worst case. Outputs it does not touch cancel exactly.
    const float h = 0.25f;
    for (int v = 0; v < 2; v++) {
        float *p = v ? w : x, *g = v ? dw : dx;
        size_t n = v ? nw : nx;
        for (int k = 0; k < 20; k++) {
            size_t i = pick(n);
            float p0 = p[i];
            p[i] = p0 + h;
            op->fwd_ref(y, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
            double lp = dot(r, y, ny);
            p[i] = p0 - h;
            op->fwd_ref(y, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
            double lm = dot(r, y, ny);
            p[i] = p0;
            double fd = (lp - lm) / (2.0 * h);
            double tol = 2e-4 * (1.0 + fabs(fd));
            char what[160];
            snprintf(what, sizeof what, "%s %s d%s[%zu] (C%d %dx%d K%d S%d P%d)", op->name, which,
                     v ? "w" : "x", i, s.C, s.H, s.W, s.K, s.S, s.P);
            EXPECT_NEAR(g[i], fd, tol, what);
        }
    }
    free(x), free(w), free(r), free(y), free(dx), free(dw);
}

static const ConvOp CONV_OPS[2] = {
    {"conv2d", 0, conv2d_forward, conv2d_forward_ref, conv2d_backward, conv2d_backward_ref},
    {"convt2d", 1, convt2d_forward, convt2d_forward_ref, convt2d_backward, convt2d_backward_ref},
};
static const Shape SMALL[] = {
        {2, 3, 10, 14, 5, 4, 2, 1},  // the network's geometry
        {2, 3, 10, 14, 5, 3, 1, 0},  // stride 1, no padding
        {2, 3, 11, 13, 5, 3, 2, 1},  // odd sizes: the last row/column is cut off
        {1, 4, 9, 8, 6, 5, 3, 2},    // stride 3, wide padding
        {2, 5, 5, 7, 3, 4, 2, 1},    // few outputs channels
};
// Large enough that im2col, col2im and every GEMM run on several threads; the
// last one has more channels than pixels, so the GEMMs are sliced by channel.
static const Shape BIG[] = {{1, 32, 34, 30, 24, 4, 2, 1}, {2, 24, 17, 15, 40, 4, 2, 1},
                            {2, 64, 8, 6, 96, 4, 2, 1}};

// The default network's layers at 128x128 (conv2d: the encoder; convt2d: the
// decoder, read with C and OC swapped by the test that uses it).
static const Shape NET[] = {{1, 3, 128, 128, 32, 4, 2, 1}, {1, 32, 64, 64, 64, 4, 2, 1},
                            {1, 64, 32, 32, 128, 4, 2, 1}, {1, 128, 16, 16, 256, 4, 2, 1}};
static Shape net_shape(const ConvOp *op, int i) {
    if (!op->transposed) return NET[i];
    Shape s = NET[3 - i];  // decoder layer i undoes encoder layer 3 - i
    int c = s.C;
    s.C = s.OC, s.OC = c, s.H /= 2, s.W /= 2;
    return s;
}

static void check_parity_all_shapes(const ConvOp *op) {
    seed();
    printf("  convolutions: %s\n", conv_impl_name());
    for (size_t i = 0; i < sizeof SMALL / sizeof SMALL[0]; i++) check_conv_parity(op, SMALL[i]);
    for (size_t i = 0; i < sizeof BIG / sizeof BIG[0]; i++) check_conv_parity(op, BIG[i]);
    for (int i = 0; i < 4; i++) check_conv_parity(op, net_shape(op, i));
}

// Both backward ops (fast and reference) against finite differences.
static void check_gradients_small_shapes(const ConvOp *op) {
    seed();
    for (size_t i = 0; i < sizeof SMALL / sizeof SMALL[0]; i++) {
        check_conv_gradcheck(op, SMALL[i], op->bwd, "fast");
        check_conv_gradcheck(op, SMALL[i], op->bwd_ref, "ref");
    }
}

// The ops above test whichever implementation is in force; CTest runs this
// program once as built (oneDNN when found) and once with TABULA_CPU_CONV=gemm.
// Here: the one in force is the one asked for, and oneDNN, when it is, runs
// every shape above itself (a silent fallback to GEMM would test GEMM twice).
#ifdef TABULA_HAVE_DNNL
static int dnnl_runs(const ConvOp *op, Shape s) {
    int Ho, Wo;
    out_size(op, &s, &Ho, &Wo);
    size_t nx = (size_t)s.B * s.C * s.H * s.W, ny = (size_t)s.B * s.OC * Ho * Wo;
    size_t nw = (size_t)s.OC * s.C * s.K * s.K;
    float *x = alloc_f(nx), *w = alloc_f(nw), *y = alloc_f(ny), *dx = alloc_f(nx);
    float *dw = alloc_f(nw);
    fill(x, nx, -1, 1), fill(w, nw, -1, 1), fill(y, ny, -1, 1);
    int r = conv_dnnl_forward(op->transposed, 0, y, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    r |= conv_dnnl_backward(op->transposed, 0, dx, dw, y, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S,
                            s.P);
    free(x), free(w), free(y), free(dx), free(dw);
    return r;
}
#endif

TEST_IMPL(conv_impl_is_the_one_asked_for) {
    const char *e = getenv("TABULA_CPU_CONV");
    int gemm_asked = e && !strcmp(e, "gemm");
    printf("  TABULA_CPU_CONV=%s: %s\n", e ? e : "(unset)", conv_impl_name());
#ifdef TABULA_HAVE_DNNL
    EXPECT(conv_impl() == (gemm_asked ? CONV_IMPL_GEMM : CONV_IMPL_DNNL), "conv_impl %d",
           conv_impl());
    seed();
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < sizeof SMALL / sizeof SMALL[0]; i++)
            EXPECT(!dnnl_runs(&CONV_OPS[t], SMALL[i]), "%s: oneDNN refused SMALL[%zu]",
                   CONV_OPS[t].name, i);
        for (size_t i = 0; i < sizeof BIG / sizeof BIG[0]; i++)
            EXPECT(!dnnl_runs(&CONV_OPS[t], BIG[i]), "%s: oneDNN refused BIG[%zu]",
                   CONV_OPS[t].name, i);
        for (int i = 0; i < 4; i++)
            EXPECT(!dnnl_runs(&CONV_OPS[t], net_shape(&CONV_OPS[t], i)),
                   "%s: oneDNN refused net layer %d", CONV_OPS[t].name, i);
    }
#else
    (void)gemm_asked;
    EXPECT(conv_impl() == CONV_IMPL_GEMM, "conv_impl %d without oneDNN", conv_impl());
    EXPECT(conv_impl_set(CONV_IMPL_DNNL) == -1, "oneDNN selectable without oneDNN");
#endif
}

TEST_IMPL(conv2d_fast_matches_reference) { check_parity_all_shapes(&CONV_OPS[0]); }
TEST_IMPL(conv2d_gradients_match_finite_differences) { check_gradients_small_shapes(&CONV_OPS[0]); }
TEST_IMPL(convt2d_fast_matches_reference) { check_parity_all_shapes(&CONV_OPS[1]); }
TEST_IMPL(convt2d_gradients_match_finite_differences) { check_gradients_small_shapes(&CONV_OPS[1]); }

// ---------------------------------------------------------------- bias + activation
// Forward against the definition, backward against finite differences, for
// no activation, leaky ReLU and sigmoid.
TEST_IMPL(bias_act_matches_definition_and_finite_differences) {
    seed();
    enum { B = 2, C = 3, HW = 35 };
    const size_t n = (size_t)B * C * HW;
    const char *names[3] = {"none", "leaky", "sigmoid"};
    float pre[B * C * HW], y[B * C * HW], d[B * C * HW], r[B * C * HW], t[B * C * HW];
    float b[C], db[C];
    for (int act = 0; act < 3; act++) {
        fill(b, C, -0.5f, 0.5f);
        // Pre-activations v = pre + b with |v| in [0.05, 1]: no kink within h.
        for (size_t i = 0; i < n; i++) {
            float v = 0.05f + 0.95f * tb_rng_uniform(&rng);
            if (tb_rng_u32(&rng) & 1) v = -v;
            pre[i] = v - b[(i / HW) % C];
        }
        fill(r, n, -1, 1);
        memcpy(y, pre, sizeof y);
        bias_act_forward(y, b, B, C, HW, act, 0.2f);
        // Forward against the definition.
        double ef = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = (double)pre[i] + b[(i / HW) % C];
            double e = act == ACT_LEAKY ? (v > 0 ? v : 0.2 * v)
                       : act == ACT_SIGMOID ? 1.0 / (1.0 + exp(-v))
                                            : v;
            ef = fmax(ef, fabs(e - y[i]));
        }
        EXPECT(ef <= 1e-6, "bias_act_forward %s: max err %.3g", names[act], ef);
        memcpy(d, r, sizeof d);
        poison(db, C);
        bias_act_backward(d, db, y, B, C, HW, act, 0.2f);
        // L = sum(r * act(pre + b)). h = 1e-2 stays on one side of the kink, so
        // leaky/none are exactly linear there; for the sigmoid the truncation error
        // is h^2/6 |s'''| <= 2e-6 per output. Float rounding of the touched outputs
        // (1 for pre, B*HW = 70 for b), ~6e-8 each over 2h = 0.02, adds < 2.1e-4.
        const float h = 1e-2f;
        for (int v = 0; v < 2; v++) {
            float *p = v ? b : pre, *g = v ? db : d;
            size_t np = v ? (size_t)C : n;
            int reps = v ? C : 20;
            for (int k = 0; k < reps; k++) {
                size_t i = v ? (size_t)k : pick(np);
                float p0 = p[i];
                p[i] = p0 + h;
                memcpy(t, pre, sizeof t);
                bias_act_forward(t, b, B, C, HW, act, 0.2f);
                double lp = dot(r, t, n);
                p[i] = p0 - h;
                memcpy(t, pre, sizeof t);
                bias_act_forward(t, b, B, C, HW, act, 0.2f);
                double lm = dot(r, t, n);
                p[i] = p0;
                double fd = (lp - lm) / (2.0 * h);
                char what[96];
                snprintf(what, sizeof what, "bias_act %s d%s[%zu]", names[act], v ? "b" : "pre",
                         i);
                EXPECT_NEAR(g[i], fd, 5e-4 * (1.0 + fabs(fd)), what);
            }
        }
    }
}

// The blocked twins (nChw16c, the oneDNN path's activations between layers)
// against the plain ops on the same numbers: forward and d the same bits, db
// summed in another order.
TEST_IMPL(bias_act_blocked_matches_plain) {
    seed();
    int B = 2, C = 32, HW = 37 * 29;  // more than one work block per plane
    size_t n = (size_t)B * C * HW;
    float *y = alloc_f(n), *yb = alloc_f(n), *d = alloc_f(n), *db16 = alloc_f(n), *t = alloc_f(n);
    float bias[32], g[32], g16[32];
    for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
        fill(y, n, -2, 2), fill(d, n, -1, 1), fill(bias, 32, -1, 1);
        to_c16(yb, y, B, C, HW, 0), to_c16(db16, d, B, C, HW, 0);
        bias_act_forward(y, bias, B, C, HW, act, 0.2f);
        bias_act_forward_c16(yb, bias, B, C, HW, act, 0.2f);
        to_c16(t, yb, B, C, HW, 1);
        EXPECT(!memcmp(t, y, n * sizeof(float)), "act %d: blocked forward differs", act);
        bias_act_backward(d, g, y, B, C, HW, act, 0.2f);
        bias_act_backward_c16(db16, g16, yb, B, C, HW, act, 0.2f);
        to_c16(t, db16, B, C, HW, 1);
        EXPECT(!memcmp(t, d, n * sizeof(float)), "act %d: blocked d differs", act);
        EXPECT(max_rel_err(g16, g, 32, 1e-3) <= 1e-6, "act %d: blocked db", act);
    }
    free(y), free(yb), free(d), free(db16), free(t);
}

// oneDNN's forward with bias + activation fused (the CPU backend's forward on
// that path) against the reference convolution then bias_act_forward, every
// activation, on the network's edges (3-channel image in, 3-channel sigmoid out)
// and a middle layer, at batch 2. The sums differ in order only, as in
// check_conv_parity (~1e-7 relative, 2e-5 allowed; the sigmoid is oneDNN's own
// exp): measured at most 6e-7 for every case; a LeakyReLU slope off by 0.1%
// gives 2e-4 and fails.
#ifdef TABULA_HAVE_DNNL
static double fused_err(const ConvOp *op, Shape s, int act) {
    int Ho, Wo;
    out_size(op, &s, &Ho, &Wo);
    size_t nx = (size_t)s.B * s.C * s.H * s.W, ny = (size_t)s.B * s.OC * Ho * Wo;
    size_t nw = (size_t)s.OC * s.C * s.K * s.K;
    float *x = alloc_f(nx), *w = alloc_f(nw), *bias = alloc_f(s.OC), *y = alloc_f(ny);
    float *yr = alloc_f(ny);
    fill(x, nx, -1, 1), fill(w, nw, -0.2f, 0.2f), fill(bias, s.OC, -1, 1);
    poison(y, ny);
    op->fwd_ref(yr, x, w, s.B, s.C, s.H, s.W, s.OC, s.K, s.S, s.P);
    bias_act_forward(yr, bias, s.B, s.OC, Ho * Wo, act, 0.2f);
    double e = conv_dnnl_forward_act(op->transposed, 0, y, x, w, bias, act, 0.2f, s.B, s.C, s.H,
                                     s.W, s.OC, s.K, s.S, s.P)
                   ? 1.0
                   : max_rel_err(y, yr, ny, 1e-3);
    free(x), free(w), free(bias), free(y), free(yr);
    return e;
}
#endif

TEST_IMPL(dnnl_fused_bias_act_matches_reference) {
#ifdef TABULA_HAVE_DNNL
    seed();
    Shape enc0 = {2, 3, 64, 48, 32, 4, 2, 1}, mid = {2, 32, 16, 12, 64, 4, 2, 1};
    Shape dec3 = {2, 32, 32, 24, 3, 4, 2, 1};
    for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
        double e0 = fused_err(&CONV_OPS[0], enc0, act), e1 = fused_err(&CONV_OPS[0], mid, act);
        double e2 = fused_err(&CONV_OPS[1], mid, act), e3 = fused_err(&CONV_OPS[1], dec3, act);
        EXPECT(e0 <= 2e-5 && e1 <= 2e-5, "act %d: conv2d fused %.3g %.3g", act, e0, e1);
        EXPECT(e2 <= 2e-5 && e3 <= 2e-5, "act %d: convt2d fused %.3g %.3g", act, e2, e3);
    }
#else
    printf("  built without oneDNN\n");
#endif
}

// Leaky(0.2) of -1 + 0.5 = -0.1; backward at y = -0.1 scales by 0.2;
// sigmoid(0) = 0.5 and its slope there is 0.25.
TEST_IMPL(bias_act_hand_values) {
    float v1[2] = {-1.0f, 2.0f}, bb[1] = {0.5f}, g1[2] = {1.0f, 1.0f}, db1[1];
    bias_act_forward(v1, bb, 1, 1, 2, ACT_LEAKY, 0.2f);
    EXPECT_NEAR(v1[0], -0.1, 1e-7, "leaky(-0.5)");
    EXPECT_NEAR(v1[1], 2.5, 0, "leaky(2.5)");
    bias_act_backward(g1, db1, v1, 1, 1, 2, ACT_LEAKY, 0.2f);
    EXPECT_NEAR(g1[0], 0.2, 1e-7, "leaky'(-0.5)");
    EXPECT_NEAR(g1[1], 1.0, 0, "leaky'(2.5)");
    EXPECT_NEAR(db1[0], 1.2, 1e-7, "leaky db");
    float v2[1] = {-0.5f}, g2[1] = {2.0f}, db2[1];
    bias_act_forward(v2, bb, 1, 1, 1, ACT_SIGMOID, 0.2f);
    EXPECT_NEAR(v2[0], 0.5, 0, "sigmoid(0)");
    bias_act_backward(g2, db2, v2, 1, 1, 1, ACT_SIGMOID, 0.2f);
    EXPECT_NEAR(g2[0], 0.5, 0, "2*sigmoid'(0)");
    EXPECT_NEAR(db2[0], 0.5, 0, "sigmoid db");
}

// A plane big enough to run on several threads: db against a double sum.
TEST_IMPL(bias_act_db_of_a_large_map_matches_double_sum) {
    seed();
    const int B3 = 2, C3 = 3, HW3 = 20000;
    size_t n3 = (size_t)B3 * C3 * HW3;
    float *d3 = alloc_f(n3), *y3 = alloc_f(n3), *r3 = alloc_f(n3), db3[3], b3[3] = {0.1f, -0.2f, 0.3f};
    fill(y3, n3, -1, 1);
    fill(r3, n3, -1, 1);
    memcpy(d3, r3, n3 * sizeof(float));
    bias_act_forward(y3, b3, B3, C3, HW3, ACT_LEAKY, 0.2f);
    bias_act_backward(d3, db3, y3, B3, C3, HW3, ACT_LEAKY, 0.2f);
    for (int c = 0; c < C3; c++) {
        double s = 0.0;
        for (int bi = 0; bi < B3; bi++)
            for (int i = 0; i < HW3; i++) {
                size_t j = ((size_t)bi * C3 + c) * HW3 + i;
                s += y3[j] > 0 ? r3[j] : 0.2f * r3[j];
            }
        EXPECT_NEAR(db3[c], s, 1e-5 * (1.0 + fabs(s)), "db of a 2x3x20000 map");
    }
    free(d3), free(y3), free(r3);
}

// ---------------------------------------------------------------- loss
TEST_IMPL(mse_hand_values) {
    // diffs 0.5, -0.25, 0.5, -1: squares sum to 1.5625, mean 0.390625; dy = diff/2.
    float y[4] = {0.5f, 0.25f, 1.0f, 0.0f}, t[4] = {0.0f, 0.5f, 0.5f, 1.0f}, dy[4];
    poison(dy, 4);
    float l = mse_forward_backward(dy, y, t, 4);
    EXPECT_NEAR(l, 0.390625, 0, "mse");
    const double want[4] = {0.25, -0.125, 0.25, -0.5};
    for (int i = 0; i < 4; i++) EXPECT_NEAR(dy[i], want[i], 0, "mse dy");
    EXPECT_NEAR(mse_forward_backward(NULL, y, t, 4), 0.390625, 0, "mse, loss only");
}

// Two images' worth of values in [0, 1), as the large MSE cases use them.
static size_t mse_inputs(float **a, float **b) {
    size_t n = 3 * 256 * 256 + 17;
    *a = alloc_f(n), *b = alloc_f(n);
    fill(*a, n, 0, 1);
    fill(*b, n, 0, 1);
    return n;
}

// Large n (parallel blocks) against a double sum, and its gradient.
TEST_IMPL(mse_of_196625_values_matches_double_sum) {
    seed();
    float *a, *b;
    size_t n = mse_inputs(&a, &b);
    float *g = alloc_f(n);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    poison(g, n);
    float l2 = mse_forward_backward(g, a, b, n);
    EXPECT_NEAR(l2, s / n, 1e-7 * s / n, "mse of 196625 values");
    // The quadratic has no truncation error under central differences, so h can be big.
    for (int k = 0; k < 20; k++) {
        size_t i = pick(n);
        double e = (double)a[i] - b[i], h = 0.5;
        // Only term i changes: ((e+h)^2 - (e-h)^2) / (2h n) = 2e/n.
        double fd = (((e + h) * (e + h)) - ((e - h) * (e - h))) / (2.0 * h * n);
        EXPECT_NEAR(g[i], fd, 1e-6 * fabs(fd) + 1e-12, "mse dy[i]");
    }
    free(a), free(b), free(g);
}

// The same bits on 1 and 2 threads: a run does not depend on the machine's cores.
TEST_IMPL(mse_and_grad_norm_same_bits_on_1_and_2_threads) {
#ifdef _OPENMP
    seed();
    float *a, *b;
    size_t n = mse_inputs(&a, &b);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    float l1 = mse_forward_backward(NULL, a, b, n), n1 = grad_norm(a, n);
    omp_set_num_threads(nt > 1 ? nt : 2);
    float lN = mse_forward_backward(NULL, a, b, n), nN = grad_norm(a, n);
    omp_set_num_threads(nt);
    EXPECT(memcmp(&l1, &lN, sizeof l1) == 0, "mse differs between thread counts: %.9g vs %.9g",
           l1, lN);
    EXPECT(memcmp(&n1, &nN, sizeof n1) == 0,
           "grad_norm differs between thread counts: %.9g vs %.9g", n1, nN);
    free(a), free(b);
#else
    TEST_SKIP_CASE("built without OpenMP");
#endif
}

TEST_IMPL(l1_hand_values) {
    // diffs 0.5, -0.25, 0.5, -1, 0: |.| sums to 2.25, mean 0.45; dy = sign/5, sign(0) = 0.
    float y[5] = {0.5f, 0.25f, 1.0f, 0.0f, 0.75f}, t[5] = {0.0f, 0.5f, 0.5f, 1.0f, 0.75f}, dy[5];
    poison(dy, 5);
    float l = l1_forward_backward(dy, y, t, 5);
    EXPECT_NEAR(l, (float)0.45, 0, "l1");
    const float k = (float)(1.0 / 5.0), want[5] = {k, -k, k, -k, 0.0f};
    for (int i = 0; i < 5; i++) EXPECT_NEAR(dy[i], want[i], 0, "l1 dy");
    EXPECT(dy[4] == 0.0f && !signbit(dy[4]), "l1 dy at a tie: %g, not +0", (double)dy[4]);
    EXPECT_NEAR(l1_forward_backward(NULL, y, t, 5), (float)0.45, 0, "l1, loss only");
    poison(dy, 5);
    EXPECT_NEAR(l1_forward_backward_ref(dy, y, t, 5), (float)0.45, 0, "l1_ref");
    for (int i = 0; i < 5; i++) EXPECT_NEAR(dy[i], want[i], 0, "l1_ref dy");
}

// Large n (parallel blocks), with some exact ties, against the plain loop.
TEST_IMPL(l1_of_196625_values_matches_reference) {
    seed();
    float *a, *b;
    size_t n = mse_inputs(&a, &b);
    for (size_t i = 0; i < n; i += 97) b[i] = a[i];  // sign(0) = 0 at scale too
    float *g = alloc_f(n), *gr = alloc_f(n);
    poison(g, n);
    poison(gr, n);
    float l = l1_forward_backward(g, a, b, n), lr = l1_forward_backward_ref(gr, a, b, n);
    // Only the order of the double sum differs: at most the float rounding of the mean.
    EXPECT_NEAR(l, lr, 2e-7 * lr, "l1 of 196625 values vs l1_ref");
    EXPECT(memcmp(g, gr, n * sizeof(float)) == 0, "l1 dy differs from l1_ref's");
    float l0 = l1_forward_backward(NULL, a, b, n);
    EXPECT(memcmp(&l, &l0, sizeof l) == 0, "l1 with and without dy: %.9g vs %.9g", l, l0);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += g[i] == 0.0f;
    EXPECT(zeros == (n + 96) / 97, "l1 dy zero exactly at the %zu ties: %zu zeros", (n + 96) / 97,
           zeros);
    free(a), free(b), free(g), free(gr);
}

// L = mean |y - t| in double, with y[i] moved by d.
static double l1_double(const float *y, const float *t, size_t n, size_t i, double d) {
    double s = 0.0;
    for (size_t j = 0; j < n; j++) s += fabs((double)y[j] + (j == i ? d : 0.0) - (double)t[j]);
    return s / (double)n;
}

// Central differences of the loss in double, away from the kink: with
// |y-t| > 2h the loss is linear over [y-h, y+h], so the difference is exact up
// to rounding.
TEST_IMPL(l1_gradient_matches_finite_differences) {
    seed();
    size_t n = 3 * 17 * 23;
    float *y = alloc_f(n), *t = alloc_f(n), *dy = alloc_f(n);
    fill(y, n, 0, 1);
    fill(t, n, 0, 1);
    poison(dy, n);
    l1_forward_backward(dy, y, t, n);
    const double h = 1e-3;
    int checked = 0;
    for (int k = 0; k < 200 && checked < 30; k++) {
        size_t i = pick(n);
        if (fabs((double)y[i] - t[i]) <= 2 * h) continue;
        double fd = (l1_double(y, t, n, i, h) - l1_double(y, t, n, i, -h)) / (2 * h);
        EXPECT_NEAR(dy[i], fd, 1e-6 * fabs(fd), "l1 dy[i] vs central difference");
        checked++;
    }
    EXPECT(checked == 30, "only %d coordinates away from the kink", checked);
    free(y), free(t), free(dy);
}

// The same bits on 1 and 2 threads, like the MSE.
TEST_IMPL(l1_same_bits_on_1_and_2_threads) {
#ifdef _OPENMP
    seed();
    float *a, *b;
    size_t n = mse_inputs(&a, &b);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    float l1 = l1_forward_backward(NULL, a, b, n);
    omp_set_num_threads(nt > 1 ? nt : 2);
    float lN = l1_forward_backward(NULL, a, b, n);
    omp_set_num_threads(nt);
    EXPECT(memcmp(&l1, &lN, sizeof l1) == 0, "l1 differs between thread counts: %.9g vs %.9g", l1,
           lN);
    free(a), free(b);
#else
    TEST_SKIP_CASE("built without OpenMP");
#endif
}

// ---------------------------------------------------------------- optimizer
TEST_IMPL(grad_norm_small_and_large) {
    seed();
    float g[5] = {3.0f, 0.0f, 4.0f, 0.0f, 0.0f};
    EXPECT_NEAR(grad_norm(g, 5), 5.0, 0, "norm of (3,4)");
    EXPECT_NEAR(grad_norm(g, 0), 0.0, 0, "norm of nothing");
    size_t n = 1000003;
    float *p = alloc_f(n);
    fill(p, n, -1, 1);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)p[i] * p[i];
    EXPECT_NEAR(grad_norm(p, n), sqrt(s), 1e-7 * sqrt(s), "norm of 1e6 values");
    free(p);
}

TEST_IMPL(clip_scale_clips_above_the_limit_only) {
    EXPECT_NEAR(clip_scale(10.0f, 1.0f), 1.0f / (10.0f + 1e-6f), 0, "clip 10 -> 1");
    EXPECT_NEAR(clip_scale(0.5f, 1.0f), 1.0, 0, "no clip under the limit");
    EXPECT_NEAR(clip_scale(1.0f, 1.0f), 1.0f / (1.0f + 1e-6f), 0, "at the limit: c/(n+1e-6)");
    EXPECT_NEAR(clip_scale(10.0f, 0.0f), 1.0, 0, "clip 0 disables");
    EXPECT_NEAR(clip_scale(10.0f, -1.0f), 1.0, 0, "clip < 0 disables");
    EXPECT(isnan(clip_scale(NAN, 1.0f)), "NaN norm gives a NaN factor (as PyTorch)");
}

// Two steps on w = (1, -2, 0.5), g1 = (3, 4, 0) (norm 5), g2 = (-6, 0, 8) (norm 10),
// clip 1 active on both, lr 0.1, wd 0.01; SGD momentum 0.9, Adam (0.9, 0.999, 1e-8).
// Expected: the same arithmetic done here in double, and PyTorch 1.13's result
// (torch.nn.utils.clip_grad_norm_ then opt.step(), printed to 9 digits).
static const double w0[3] = {1.0, -2.0, 0.5}, G[2][3] = {{3, 4, 0}, {-6, 0, 8}}, norms[2] = {5, 10};
static const double lr = 0.1, mu = 0.9, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;

TEST_IMPL(sgd_two_steps_match_hand_and_pytorch) {
    const double torch_sgd[2][3] = {{0.93900001, -2.07800007, 0.499500006},
                                    {0.943161011, -2.14612198, 0.418550521}};
    float w[3], buf[3] = {0, 0, 0}, g[3];
    double hw[3], hb[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) w[i] = (float)w0[i], hw[i] = w0[i];
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < 3; i++) g[i] = (float)G[step][i];
        float nrm = grad_norm(g, 3);
        EXPECT_NEAR(nrm, norms[step], 0, "sgd grad norm");
        float sc = clip_scale(nrm, 1.0f);
        sgd_update(w, buf, g, 3, sc, (float)lr, (float)mu, (float)wd);
        double hs = 1.0 / (norms[step] + 1e-6);
        for (int i = 0; i < 3; i++) {
            double gi = hs * G[step][i] + wd * hw[i];
            hb[i] = mu * hb[i] + gi;
            hw[i] -= lr * hb[i];
            // float arithmetic on values ~1: a few ulps (1e-7) per step
            EXPECT_NEAR(w[i], hw[i], 1e-6, "sgd w vs hand");
            EXPECT_NEAR(buf[i], hb[i], 1e-6, "sgd buf vs hand");
            EXPECT_NEAR(w[i], torch_sgd[step][i], 1e-6, "sgd w vs torch");
        }
    }
    // momentum buffer after step 2, from torch's optimizer state
    EXPECT_NEAR(buf[0], -0.0416100621, 1e-7, "sgd buf[0] vs torch");
    EXPECT_NEAR(buf[2], 0.809494913, 1e-6, "sgd buf[2] vs torch");
    // momentum 0: plain SGD, w -= lr * (g + wd w)
    float w1[1] = {2.0f}, bz[1] = {0.0f}, g1[1] = {1.0f};
    sgd_update(w1, bz, g1, 1, 0.5f, 0.1f, 0.0f, 0.25f);
    EXPECT_NEAR(w1[0], 2.0 - 0.1 * (0.5 + 0.5), 1e-7, "sgd without momentum");
}

TEST_IMPL(adam_two_steps_match_hand_and_pytorch) {
    const double torch_adam[2][3] = {{0.899999976, -2.0999999, 0.400000215},
                                     {0.903680682, -2.16497779, 0.325171471}};
    float w[3], g[3];
    double hw[3];
    float m[3] = {0, 0, 0}, v[3] = {0, 0, 0};
    double hm[3] = {0, 0, 0}, hv[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) w[i] = (float)w0[i], hw[i] = w0[i];
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < 3; i++) g[i] = (float)G[step][i];
        float sc = clip_scale(grad_norm(g, 3), 1.0f);
        adam_update(w, m, v, g, 3, sc, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd,
                    step + 1);
        double hs = 1.0 / (norms[step] + 1e-6);
        double bc1 = 1.0 - pow(b1, step + 1), bc2 = 1.0 - pow(b2, step + 1);
        for (int i = 0; i < 3; i++) {
            double gi = hs * G[step][i] + wd * hw[i];
            hm[i] = b1 * hm[i] + (1 - b1) * gi;
            hv[i] = b2 * hv[i] + (1 - b2) * gi * gi;
            hw[i] -= lr * (hm[i] / bc1) / (sqrt(hv[i] / bc2) + eps);
            EXPECT_NEAR(w[i], hw[i], 2e-6, "adam w vs hand");
            EXPECT_NEAR(m[i], hm[i], 1e-7, "adam m vs hand");
            // beta2 arrives as the float 0.999f, so 1 - beta2 is 1.3e-5 (relative) off
            // the double 0.001 used here and by PyTorch; v inherits that, w only half
            // of it through sqrt(v), and only in the correction term.
            EXPECT_NEAR(v[i], hv[i], 2e-5 * hv[i], "adam v vs hand");
            EXPECT_NEAR(w[i], torch_adam[step][i], 2e-6, "adam w vs torch");
        }
    }
}

// A long vector runs on several threads: every element as the scalar formula.
TEST_IMPL(sgd_on_100003_values_matches_scalar_formula) {
    seed();
    size_t n = 100003;
    float *W = alloc_f(n), *Bf = alloc_f(n), *Gr = alloc_f(n), *W0 = alloc_f(n), *B0 = alloc_f(n);
    fill(W, n, -1, 1), fill(Bf, n, -1, 1), fill(Gr, n, -1, 1);
    memcpy(W0, W, n * sizeof(float)), memcpy(B0, Bf, n * sizeof(float));
    sgd_update(W, Bf, Gr, n, 0.5f, 0.1f, 0.9f, 0.01f);
    double me = 0.0;
    for (size_t i = 0; i < n; i++) {
        double gi = 0.5 * Gr[i] + 0.01 * W0[i], bi = 0.9 * B0[i] + gi;
        me = fmax(me, fabs(W[i] - (W0[i] - 0.1 * bi)));
        me = fmax(me, fabs(Bf[i] - bi));
    }
    EXPECT(me <= 1e-6, "sgd on 100003 values: max err %.3g", me);
    free(W), free(Bf), free(Gr), free(W0), free(B0);
}

// ---------------------------------------------------------------- frames
TEST_IMPL(frame_tensor_layout_and_round_trip) {
    enum { H = 3, W = 5 };
    uint8_t rgb[H * W * 3], back[H * W * 3];
    float x[3 * H * W];
    for (int i = 0; i < H * W * 3; i++) rgb[i] = (uint8_t)(i * 17 + 3);
    poison(x, 3 * H * W);
    frame_to_tensor(x, rgb, H, W);
    int lay = 0;
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++)
            for (int c = 0; c < 3; c++)
                lay += x[(c * H + y) * W + xx] != (float)rgb[(y * W + xx) * 3 + c] / 255.0f;
    EXPECT(lay == 0, "frame_to_tensor: %d values not v/255 in CHW order", lay);
    tensor_to_frame(back, x, H, W);
    EXPECT(memcmp(back, rgb, sizeof rgb) == 0, "frame -> tensor -> frame is not the identity");
    // Every byte value survives the round trip.
    uint8_t all[256 * 3], all2[256 * 3];
    float xa[256 * 3];
    for (int i = 0; i < 256 * 3; i++) all[i] = (uint8_t)(i / 3);
    frame_to_tensor(xa, all, 16, 16);
    EXPECT(xa[0] == 0.0f && xa[255] == 1.0f, "0 -> 0 and 255 -> 1");
    tensor_to_frame(all2, xa, 16, 16);
    EXPECT(memcmp(all, all2, sizeof all) == 0, "byte values change on the round trip");
}

TEST_IMPL(tensor_to_frame_clamps_and_rounds) {
    // Clamping and rounding: -0.5 -> 0, 1.5 -> 255, NaN -> 0, 0.5 -> 128, 0.2 -> 51.
    float odd[3] = {-0.5f, 1.5f, NAN}, odd2[3] = {0.5f, 0.2f, 0.998f};
    float t6[6] = {odd[0], odd2[0], odd[1], odd2[1], odd[2], odd2[2]};
    uint8_t o[6];
    tensor_to_frame(o, t6, 1, 2);  // pixel 0 = (t6[0], t6[2], t6[4]), pixel 1 = (t6[1], ...)
    EXPECT(o[0] == 0 && o[1] == 255 && o[2] == 0, "clamp: %d %d %d", o[0], o[1], o[2]);
    EXPECT(o[3] == 128 && o[4] == 51 && o[5] == 254, "round: %d %d %d", o[3], o[4], o[5]);
}

TEST_MAIN(TEST_ENTRY(gemm_matches_reference_all_transposes),
          TEST_ENTRY(builtin_gemm_matches_reference_past_cache_blocks),
          TEST_ENTRY(conv_impl_is_the_one_asked_for),
          TEST_ENTRY(conv2d_fast_matches_reference), TEST_ENTRY(conv2d_gradients_match_finite_differences),
          TEST_ENTRY(convt2d_fast_matches_reference), TEST_ENTRY(convt2d_gradients_match_finite_differences),
          TEST_ENTRY(bias_act_matches_definition_and_finite_differences), TEST_ENTRY(bias_act_hand_values),
          TEST_ENTRY(bias_act_blocked_matches_plain),
          TEST_ENTRY(dnnl_fused_bias_act_matches_reference),
          TEST_ENTRY(bias_act_db_of_a_large_map_matches_double_sum), TEST_ENTRY(mse_hand_values),
          TEST_ENTRY(mse_of_196625_values_matches_double_sum),
          TEST_ENTRY(mse_and_grad_norm_same_bits_on_1_and_2_threads), TEST_ENTRY(l1_hand_values),
          TEST_ENTRY(l1_of_196625_values_matches_reference), TEST_ENTRY(l1_gradient_matches_finite_differences),
          TEST_ENTRY(l1_same_bits_on_1_and_2_threads), TEST_ENTRY(grad_norm_small_and_large),
          TEST_ENTRY(clip_scale_clips_above_the_limit_only), TEST_ENTRY(sgd_two_steps_match_hand_and_pytorch),
          TEST_ENTRY(adam_two_steps_match_hand_and_pytorch),
          TEST_ENTRY(sgd_on_100003_values_matches_scalar_formula),
          TEST_ENTRY(frame_tensor_layout_and_round_trip), TEST_ENTRY(tensor_to_frame_clamps_and_rounds))
