// test_cuda_parity.c: why it exists: the CUDA backend must train the same
// network as the CPU backend, and nothing else holds its code to that. Without
// a GPU the CUDA code is only ever compiled, so this program is where a kernel
// that drifts from its CPU twin, or a backend step that differs from the CPU
// backend's, shows up on the first machine that has one.
//
// Every CUDA op against the CPU reference of ops.h (one case per op), then
// whole training runs of a small model on the CUDA backend against the CPU
// backend, then the snapshot slots (lerp, save / blend / recall), the
// channels' coupling, then the
// bottleneck control (the op, and training with it on both backends), then
// what must not show the device's layout (activations, decode, the atlas,
// params and state in and out) and a bad layout value. The backend cases run
// in the layout TABULA_CUDA_LAYOUT asks for (nchw by default: run again with
// nhwc for the other; the op cases are NCHW either way). TF32 is off (TABULA_NO_TF32=1, cuDNN on FMA math) so the two can
// agree to float rounding. Odd shapes, fresh random inputs per op, device
// outputs poisoned with NaN before each call. Skips (77) as a whole, with the
// reason, when built without CUDA or without a usable GPU; with
// TABULA_REQUIRE_CUDA=1 that fails (exit 1) instead, naming the cause.
// With TABULA_CUDA_DTYPE=bf16 the backend cases run on bfloat16 activations
// (test_cuda_parity_host_bf16) and the comparisons with the float CPU take
// the bounds of bf16_tol (below), plus one more case: training converges.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common.h"
#include "model.h"
#include "ops.h"
#include "test.h"
#include "trainer.h"

#ifdef TABULA_HAVE_CUDA
#include "backend_cuda.h"
#include "ops_cuda.h"

// Made by main before any case runs; every case uses them. The cases draw
// their inputs from one generator in list order, so a full run always sees
// the same numbers.
static cudnnHandle_t g_cudnn;
static cudaStream_t g_stream;
static TbRng rng;

// ---- TABULA_CUDA_DTYPE=bf16: the backend stores activations, their
// gradients and cuDNN's copy of the weights in bfloat16 (8 significant bits:
// one round-to-nearest is off by at most u = 2^-8 of the value), the CPU
// reference is float. Each comparison of the two then takes a bf16 bound,
// from u:
//   - activation i read back: the input's rounding, then per layer its
//     weights' and its output's: 2i + 1 roundings, each at most u of values
//     no larger than the largest: (2i + 1) u of the largest value (measured
//     on the host shim: at most 0.4 of it; an activation read in the wrong
//     order or type is off by O(1));
//   - a step's loss: the output's error is random-signed per pixel, and the
//     loss averages thousands of them: within 2u (measured 0.0018 = 0.46u;
//     the L1 loss the same);
//   - a step's gradient norm: each gradient is a sum of products of stored
//     activations and gradients, 2L roundings back to the first layer (L =
//     6 layers, the first two dropped by the frozen encoder's runs): 16u
//     (measured 8u at the worst, the frozen decoder's, 2-5u otherwise);
//   - the weights after the run: the update's error (below) times the
//     update, a few lr of each weight: u/2 with SGD (measured 0.00056 =
//     0.14u); Adam's update is normalised, so a weight whose gradient is
//     small moves by ~lr either way: 10 steps of lr <= 2e-3 against weights
//     ~0.5 give 4u (measured 0.0098 = 2.5u);
//   - the total update and the optimizer state, relative to their largest
//     element: a sum of 10 gradients each off as the norm's 16u, but an
//     element whose gradient nearly cancels keeps its absolute error: 0.4
//     (measured 0.18 SGD, 0.11 and 0.08 Adam's moments); Adam's total update
//     is not compared (the normalised step of a near-zero gradient is ~lr
//     with either sign);
//   - output bytes: the output's (2L + 1)u relative error is up to 13u x 255
//     = 13 bytes in the worst case, 1 on average: 4 (measured 2).
static int bf16_run(void) {
    const char *v = getenv("TABULA_CUDA_DTYPE");
    return v && strcmp(v, "bf16") == 0;
}
#define BF16_U 0.00390625  // 2^-8
// The float bound, or the bf16 one when the backend runs on bfloat16.
static double bf16_tol(double fp32, double bf16) { return bf16_run() ? bf16 : fp32; }

static void fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * tb_rng_uniform(&rng);
}

static float *hnew(size_t n) { return (float *)tb_calloc(n ? n : 1, sizeof(float)); }

static float *dnew(size_t n) {
    void *p = NULL;
    cudaCheck(cudaMalloc(&p, (n ? n : 1) * sizeof(float)));
    return (float *)p;
}

// All bits set is a NaN: any output element the op forgets to write shows up.
static void poison(void *d, size_t bytes) { cudaCheck(cudaMemset(d, 0xFF, bytes)); }

static void up(float *d, const float *h, size_t n) {
    cudaCheck(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
}

static void down(float *h, const float *d, size_t n) {
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
}

// Max abs error relative to the largest reference magnitude (floor 1e-6).
#define EXPECT_CLOSE(got, want, n, tol, ...)                                            \
    do {                                                                                \
        char what_[160];                                                                \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                     \
        double e_ = max_rel_err((got), (want), (n), 1e-6);                              \
        EXPECT(e_ <= (tol), "%s: relative error %.3g > %.3g", what_, e_, (double)(tol)); \
    } while (0)

// ---------------------------------------------------------------- convolutions

typedef struct {
    int transposed, B, C, H, W, OC, K, S, P;
} ConvCase;

static void check_conv(cudnnHandle_t h, cudaStream_t s, ConvCase cc, int find) {
    const char *kind = cc.transposed ? "convT" : "conv";
    int Ho = cc.transposed ? convt_out(cc.H, cc.K, cc.S, cc.P) : conv_out(cc.H, cc.K, cc.S, cc.P);
    int Wo = cc.transposed ? convt_out(cc.W, cc.K, cc.S, cc.P) : conv_out(cc.W, cc.K, cc.S, cc.P);
    size_t nx = (size_t)cc.B * cc.C * cc.H * cc.W, ny = (size_t)cc.B * cc.OC * Ho * Wo;
    size_t nw = (size_t)cc.OC * cc.C * cc.K * cc.K;  // same count for (C,OC,K,K)

    ConvPlan plan;
    TbErr err = {{0}};
    ConvChoice ch = {.tf32 = 0, .find = find, .ws_limit = (size_t)256 << 20};
    int rc = conv_plan_init(&plan, h, cc.transposed, cc.B, cc.C, cc.H, cc.W, cc.OC, cc.K, cc.S,
                            cc.P, &ch, &err);
    EXPECT(rc == 0, "%s plan (find=%d): %s", kind, find, err.msg);
    if (rc) return;
    size_t ws_size = conv_plan_workspace(&plan);
    void *ws = NULL;
    if (ws_size) cudaCheck(cudaMalloc(&ws, ws_size));

    float *x = hnew(nx), *w = hnew(nw), *dy = hnew(ny);
    float *y_ref = hnew(ny), *dx_ref = hnew(nx), *dw_ref = hnew(nw);
    float *y_got = hnew(ny), *dx_got = hnew(nx), *dw_got = hnew(nw);
    float *d_x = dnew(nx), *d_w = dnew(nw), *d_y = dnew(ny), *d_dy = dnew(ny), *d_dx = dnew(nx),
          *d_dw = dnew(nw);

    // forward
    fill(x, nx, -1, 1);
    fill(w, nw, -0.5f, 0.5f);
    up(d_x, x, nx);
    up(d_w, w, nw);
    poison(d_y, ny * sizeof(float));
    if (cc.transposed) {
        convt2d_forward_ref(y_ref, x, w, cc.B, cc.C, cc.H, cc.W, cc.OC, cc.K, cc.S, cc.P);
        convt2d_forward_cuda(d_y, d_x, d_w, &plan, h, ws, ws_size, s);
    } else {
        conv2d_forward_ref(y_ref, x, w, cc.B, cc.C, cc.H, cc.W, cc.OC, cc.K, cc.S, cc.P);
        conv2d_forward_cuda(d_y, d_x, d_w, &plan, h, ws, ws_size, s);
    }
    down(y_got, d_y, ny);
    EXPECT_CLOSE(y_got, y_ref, ny, 1e-4, "%s forward %dx%dx%dx%d->%d k%ds%dp%d find=%d", kind,
                 cc.B, cc.C, cc.H, cc.W, cc.OC, cc.K, cc.S, cc.P, find);

    // backward, with and without the input gradient (fresh inputs for each)
    for (int with_dx = 1; with_dx >= 0; with_dx--) {
        fill(x, nx, -1, 1);
        fill(w, nw, -0.5f, 0.5f);
        fill(dy, ny, -1, 1);
        up(d_x, x, nx);
        up(d_w, w, nw);
        up(d_dy, dy, ny);
        poison(d_dx, nx * sizeof(float));
        poison(d_dw, nw * sizeof(float));
        if (cc.transposed) {
            convt2d_backward_ref(dx_ref, dw_ref, dy, x, w, cc.B, cc.C, cc.H, cc.W, cc.OC, cc.K,
                                 cc.S, cc.P);
            convt2d_backward_cuda(with_dx ? d_dx : NULL, d_dw, d_dy, d_x, d_w, &plan, h, ws,
                                  ws_size, s);
        } else {
            conv2d_backward_ref(dx_ref, dw_ref, dy, x, w, cc.B, cc.C, cc.H, cc.W, cc.OC, cc.K,
                                cc.S, cc.P);
            conv2d_backward_cuda(with_dx ? d_dx : NULL, d_dw, d_dy, d_x, d_w, &plan, h, ws,
                                 ws_size, s);
        }
        down(dw_got, d_dw, nw);
        EXPECT_CLOSE(dw_got, dw_ref, nw, 1e-4, "%s dw (dx %s) find=%d", kind,
                     with_dx ? "too" : "skipped", find);
        if (with_dx) {
            down(dx_got, d_dx, nx);
            EXPECT_CLOSE(dx_got, dx_ref, nx, 1e-4, "%s dx find=%d", kind, find);
        }
    }

    free(x), free(w), free(dy), free(y_ref), free(dx_ref), free(dw_ref);
    free(y_got), free(dx_got), free(dw_got);
    cudaFree(d_x), cudaFree(d_w), cudaFree(d_y), cudaFree(d_dy), cudaFree(d_dx), cudaFree(d_dw);
    if (ws) cudaFree(ws);
    conv_plan_destroy(&plan);
}

TEST_IMPL(conv2d) {
    static const ConvCase cases[] = {
        {0, 3, 3, 18, 26, 5, 4, 2, 1},  // the model's encoder shape, odd sizes
        {0, 2, 5, 17, 11, 7, 3, 1, 1},
        {0, 1, 4, 9, 7, 3, 4, 2, 1},  // odd input: floor in the output size
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int find = 0; find <= 1; find++) check_conv(g_cudnn, g_stream, cases[i], find);
}

TEST_IMPL(convt2d) {
    static const ConvCase cases[] = {
        {1, 3, 5, 9, 13, 3, 4, 2, 1},   // the decoder shape: 9x13 -> 18x26
        {1, 2, 4, 7, 5, 6, 3, 1, 1},
        {1, 1, 3, 5, 6, 5, 4, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int find = 0; find <= 1; find++) check_conv(g_cudnn, g_stream, cases[i], find);
}

// ---------------------------------------------------------------- bias + activation

static void check_bias_act(cudaStream_t s, int B, int C, int HW, int act) {
    size_t n = (size_t)B * C * HW;
    float slope = 0.2f;
    float *y = hnew(n), *b = hnew(C), *y_got = hnew(n), *d = hnew(n), *db_ref = hnew(C),
          *d_got = hnew(n), *db_got = hnew(C);
    float *d_y = dnew(n), *d_b = dnew(C), *d_d = dnew(n), *d_db = dnew(C);
    size_t ns = bias_act_backward_scratch(B, C, HW, TB_NCHW);
    float *d_scratch = ns ? dnew(ns) : NULL;
    unsigned *d_done = NULL;  // the last-block-done counter: zero before, and left zero
    cudaCheck(cudaMalloc((void **)&d_done, sizeof(unsigned)));
    cudaCheck(cudaMemset(d_done, 0, sizeof(unsigned)));

    // forward, in place
    fill(y, n, -3, 3);
    fill(b, C, -0.5f, 0.5f);
    up(d_y, y, n);
    up(d_b, b, C);
    bias_act_forward(y, b, B, C, HW, act, slope);
    bias_act_forward_cuda(d_y, d_b, B, C, HW, act, slope, TB_NCHW, s);
    down(y_got, d_y, n);
    EXPECT_CLOSE(y_got, y, n, 1e-5, "bias_act_forward act=%d %dx%dx%d", act, B, C, HW);

    // backward from a fresh activation output (kept away from the LeakyReLU kink)
    fill(y, n, -3, 3);
    for (size_t i = 0; i < n; i++) {
        if (fabsf(y[i]) < 1e-3f) y[i] = 0.5f;
        if (act == ACT_SIGMOID) y[i] = 1.0f / (1.0f + expf(-y[i]));
    }
    fill(d, n, -1, 1.5f);
    up(d_y, y, n);
    up(d_d, d, n);
    poison(d_db, C * sizeof(float));
    if (d_scratch) poison(d_scratch, ns * sizeof(float));
    bias_act_backward(d, db_ref, y, B, C, HW, act, slope);
    bias_act_backward_cuda(d_d, d_db, d_y, B, C, HW, act, slope, d_scratch, d_done, TB_NCHW, s);
    down(d_got, d_d, n);
    down(db_got, d_db, C);
    EXPECT_CLOSE(d_got, d, n, 1e-5, "bias_act_backward d act=%d %dx%dx%d", act, B, C, HW);
    EXPECT_CLOSE(db_got, db_ref, C, 1e-4, "bias_act_backward db act=%d %dx%dx%d (%zu partials)",
                 act, B, C, HW, ns);

    free(y), free(b), free(y_got), free(d), free(db_ref), free(d_got), free(db_got);
    unsigned left = 1;
    cudaCheck(cudaMemcpy(&left, d_done, sizeof left, cudaMemcpyDeviceToHost));
    EXPECT(left == 0, "bias_act_backward left its counter at %u", left);
    cudaFree(d_y), cudaFree(d_b), cudaFree(d_d), cudaFree(d_db), cudaFree(d_done);
    if (d_scratch) cudaFree(d_scratch);
}

TEST_IMPL(bias_act) {
    for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
        check_bias_act(g_stream, 3, 5, 18 * 26, act);     // one chunk per channel
        check_bias_act(g_stream, 3, 3, 200 * 300, act);   // many chunks: two-stage bias sum
        check_bias_act(g_stream, 1, 7, 13, act);
        check_bias_act(g_stream, 5, 2, 1111, act);        // chunks narrower than B*HW suggests
    }
}

// ---------------------------------------------------------------- loss, norm, optimizers

static double *dscratch(void) {
    void *p = NULL;
    cudaCheck(cudaMalloc(&p, TB_REDUCE_BLOCKS * sizeof(double)));
    cudaCheck(cudaMemset(p, 0xFF, TB_REDUCE_BLOCKS * sizeof(double)));
    return (double *)p;
}

static void check_mse(cudaStream_t s, size_t n) {
    float *y = hnew(n), *t = hnew(n), *dy = hnew(n), *dy_got = hnew(n), loss_got;
    float *d_y = dnew(n), *d_t = dnew(n), *d_dy = dnew(n), *d_loss = dnew(1);
    double *scr = dscratch();
    fill(y, n, 0, 1);
    fill(t, n, 0, 1);
    up(d_y, y, n);
    up(d_t, t, n);
    poison(d_dy, n * sizeof(float));
    poison(d_loss, sizeof(float));
    float loss = mse_forward_backward(dy, y, t, n);
    mse_forward_backward_cuda(d_dy, d_loss, d_y, d_t, n, scr, s);
    down(dy_got, d_dy, n);
    down(&loss_got, d_loss, 1);
    EXPECT_CLOSE(dy_got, dy, n, 1e-5, "mse dy n=%zu", n);
    EXPECT_NEAR(loss_got, loss, 1e-5 * fabs(loss), "mse loss");
    // loss only
    poison(d_loss, sizeof(float));
    mse_forward_backward_cuda(NULL, d_loss, d_y, d_t, n, scr, s);
    down(&loss_got, d_loss, 1);
    EXPECT_NEAR(loss_got, loss, 1e-5 * fabs(loss), "mse loss without dy");
    free(y), free(t), free(dy), free(dy_got);
    cudaFree(d_y), cudaFree(d_t), cudaFree(d_dy), cudaFree(d_loss), cudaFree(scr);
}

TEST_IMPL(mse_forward_backward) {
    check_mse(g_stream, (size_t)3 * 3 * 18 * 26);
    check_mse(g_stream, 1000003);  // more elements than one pass of the reduction grid
}

// L1: dy is sign(y-t) times the same float factor on both sides, so it must
// match exactly; every 97th target equals its output (sign(0) = 0 on both).
static void check_l1(cudaStream_t s, size_t n) {
    float *y = hnew(n), *t = hnew(n), *dy = hnew(n), *dy_got = hnew(n), loss_got;
    float *d_y = dnew(n), *d_t = dnew(n), *d_dy = dnew(n), *d_loss = dnew(1);
    double *scr = dscratch();
    fill(y, n, 0, 1);
    fill(t, n, 0, 1);
    for (size_t i = 0; i < n; i += 97) t[i] = y[i];
    up(d_y, y, n);
    up(d_t, t, n);
    poison(d_dy, n * sizeof(float));
    poison(d_loss, sizeof(float));
    float loss = l1_forward_backward(dy, y, t, n);
    l1_forward_backward_cuda(d_dy, d_loss, d_y, d_t, n, scr, s);
    down(dy_got, d_dy, n);
    down(&loss_got, d_loss, 1);
    EXPECT_CLOSE(dy_got, dy, n, 0, "l1 dy n=%zu", n);
    EXPECT(dy_got[0] == 0.0f, "l1 dy at a tie: %g", (double)dy_got[0]);
    EXPECT_NEAR(loss_got, loss, 1e-5 * fabs(loss), "l1 loss");
    // loss only
    poison(d_loss, sizeof(float));
    l1_forward_backward_cuda(NULL, d_loss, d_y, d_t, n, scr, s);
    down(&loss_got, d_loss, 1);
    EXPECT_NEAR(loss_got, loss, 1e-5 * fabs(loss), "l1 loss without dy");
    free(y), free(t), free(dy), free(dy_got);
    cudaFree(d_y), cudaFree(d_t), cudaFree(d_dy), cudaFree(d_loss), cudaFree(scr);
}

TEST_IMPL(l1_forward_backward) {
    check_l1(g_stream, (size_t)3 * 3 * 18 * 26);
    check_l1(g_stream, 1000003);  // more elements than one pass of the reduction grid
}

static void check_grad_norm(cudaStream_t s, size_t n) {
    float *g = hnew(n), norm_got;
    float *d_g = dnew(n), *d_norm = dnew(1);
    double *scr = dscratch();
    fill(g, n, -0.01f, 0.01f);
    up(d_g, g, n);
    poison(d_norm, sizeof(float));
    float norm = grad_norm(g, n);
    grad_norm_cuda(d_norm, d_g, n, scr, s);
    down(&norm_got, d_norm, 1);
    EXPECT(fabs((double)norm_got - norm) <= 1e-5 * norm, "grad_norm n=%zu: cuda %.9g cpu %.9g", n,
           (double)norm_got, (double)norm);
    free(g);
    cudaFree(d_g), cudaFree(d_norm), cudaFree(scr);
}

TEST_IMPL(grad_norm) {
    check_grad_norm(g_stream, 4211);
    check_grad_norm(g_stream, 1000003);
}

static void check_optimizer(cudaStream_t s, size_t n, int optimizer, float clip_mult, int t) {
    float *w = hnew(n), *m = hnew(n), *v = hnew(n), *g = hnew(n);
    float *w_got = hnew(n), *m_got = hnew(n), *v_got = hnew(n);
    float *d_w = dnew(n), *d_m = dnew(n), *d_v = dnew(n), *d_g = dnew(n), *d_norm = dnew(1);
    StepParams *d_p = NULL;
    cudaCheck(cudaMalloc((void **)&d_p, sizeof(StepParams)));
    fill(w, n, -1, 1);
    fill(m, n, -0.1f, 0.1f);
    fill(v, n, 0, 1e-3f);
    fill(g, n, -0.05f, 0.05f);
    float norm = grad_norm(g, n);
    Hyper h = {0};
    h.optimizer = optimizer;
    h.lr = optimizer == OPT_ADAM ? 1e-3f : 0.05f;
    h.momentum = 0.9f;
    h.clip = clip_mult * norm;  // 0: off; < norm: clipping; > norm: no-op
    h.weight_decay = 1e-3f;
    h.beta1 = 0.9f;
    h.beta2 = 0.999f;
    h.eps = 1e-8f;
    h.t = t;
    StepParams p;
    step_params_fill(&p, &h, 5);
    up(d_w, w, n);
    up(d_m, m, n);
    up(d_v, v, n);
    up(d_g, g, n);
    up(d_norm, &norm, 1);
    cudaCheck(cudaMemcpy(d_p, &p, sizeof p, cudaMemcpyHostToDevice));
    float scale = clip_scale(norm, h.clip);
    if (optimizer == OPT_ADAM) {
        adam_update(w, m, v, g, n, scale, h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.t);
        adam_update_cuda(d_w, d_m, d_v, d_g, n, d_norm, d_p, s);
    } else {
        sgd_update(w, m, g, n, scale, h.lr, h.momentum, h.weight_decay);
        sgd_update_cuda(d_w, d_m, d_g, n, d_norm, d_p, s);
    }
    down(w_got, d_w, n);
    down(m_got, d_m, n);
    down(v_got, d_v, n);
    const char *name = optimizer == OPT_ADAM ? "adam" : "sgd";
    EXPECT_CLOSE(w_got, w, n, 1e-5, "%s w (clip x%g, t=%d)", name, (double)clip_mult, t);
    EXPECT_CLOSE(m_got, m, n, 1e-5, "%s m (clip x%g, t=%d)", name, (double)clip_mult, t);
    if (optimizer == OPT_ADAM)
        EXPECT_CLOSE(v_got, v, n, 1e-5, "%s v (clip x%g, t=%d)", name, (double)clip_mult, t);
    free(w), free(m), free(v), free(g), free(w_got), free(m_got), free(v_got);
    cudaFree(d_w), cudaFree(d_m), cudaFree(d_v), cudaFree(d_g), cudaFree(d_norm), cudaFree(d_p);
}

TEST_IMPL(sgd_update) {
    check_optimizer(g_stream, 100003, OPT_SGD, 0.0f, 1);  // clipping off
    check_optimizer(g_stream, 100003, OPT_SGD, 0.5f, 1);  // clipped
    check_optimizer(g_stream, 100003, OPT_SGD, 2.0f, 7);  // above the norm: no clipping
}

TEST_IMPL(adam_update) {
    check_optimizer(g_stream, 100003, OPT_ADAM, 0.0f, 1);  // clipping off
    check_optimizer(g_stream, 100003, OPT_ADAM, 0.5f, 1);  // clipped
    check_optimizer(g_stream, 100003, OPT_ADAM, 2.0f, 7);  // above the norm: no clipping
}

// The slot comes from the device StepParams; only that slot is written.
TEST_IMPL(stats_record) {
    StepStats *d_ring = NULL, ring[TB_STATS_RING];
    StepParams *d_p = NULL, p;
    float vals[2] = {0.125f, 3.5f}, *d_vals = dnew(2);
    cudaCheck(cudaMalloc((void **)&d_ring, sizeof ring));
    cudaCheck(cudaMalloc((void **)&d_p, sizeof p));
    poison(d_ring, sizeof ring);
    Hyper h = {0};
    step_params_fill(&p, &h, 37);
    cudaCheck(cudaMemcpy(d_p, &p, sizeof p, cudaMemcpyHostToDevice));
    up(d_vals, vals, 2);
    stats_record_cuda(d_ring, d_vals, d_vals + 1, d_p, g_stream);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(ring, d_ring, sizeof ring, cudaMemcpyDeviceToHost));
    EXPECT(ring[37].loss == 0.125f && ring[37].grad_norm == 3.5f, "stats slot 37: %g %g",
           (double)ring[37].loss, (double)ring[37].grad_norm);
    EXPECT(isnan(ring[36].loss) && isnan(ring[38].loss), "stats: only slot 37 written");
    cudaFree(d_ring), cudaFree(d_p), cudaFree(d_vals);
}

// ---------------------------------------------------------------- frames

static void check_frames(cudaStream_t s, int B, int H, int W) {
    size_t fb = (size_t)H * W * 3, n = (size_t)B * 3 * H * W;
    uint8_t *rgb = (uint8_t *)tb_malloc(B * fb), *rgb_ref = (uint8_t *)tb_malloc(fb),
            *rgb_got = (uint8_t *)tb_malloc(fb);
    float *x_ref = hnew(n), *x_got = hnew(n);
    for (size_t i = 0; i < B * fb; i++) rgb[i] = (uint8_t)(tb_rng_u32(&rng) & 255);
    uint8_t *d_rgb = NULL, *d_rgba = NULL;
    float *d_x = dnew(n);
    cudaCheck(cudaMalloc((void **)&d_rgb, B * fb));
    cudaCheck(cudaMemcpy(d_rgb, rgb, B * fb, cudaMemcpyHostToDevice));
    poison(d_x, n * sizeof(float));
    for (int i = 0; i < B; i++) frame_to_tensor(x_ref + (size_t)i * 3 * H * W, rgb + i * fb, H, W);
    frame_to_tensor_cuda(d_x, d_rgb, B, H, W, TB_NCHW, s);
    down(x_got, d_x, n);
    EXPECT_CLOSE(x_got, x_ref, n, 1e-6, "frame_to_tensor %dx%dx%d", B, H, W);

    // Back to bytes: values a little outside [0,1] exercise the clamp.
    size_t n1 = (size_t)3 * H * W;
    fill(x_ref, n1, -0.2f, 1.2f);
    up(d_x, x_ref, n1);
    cudaCheck(cudaMemset(d_rgb, 0xAB, fb));
    tensor_to_frame(rgb_ref, x_ref, H, W);
    tensor_to_frame_cuda(d_rgb, d_x, H, W, TB_NCHW, s);
    cudaCheck(cudaDeviceSynchronize());
    cudaCheck(cudaMemcpy(rgb_got, d_rgb, fb, cudaMemcpyDeviceToHost));
    int maxd = 0;
    size_t ndiff = 0;
    for (size_t i = 0; i < fb; i++) {
        int dd = abs((int)rgb_got[i] - (int)rgb_ref[i]);
        if (dd) ndiff++;
        if (dd > maxd) maxd = dd;
    }
    EXPECT(maxd <= 1, "tensor_to_frame: max byte difference %d (%zu bytes differ)", maxd, ndiff);

    // RGBA into a padded pitch: the padding must stay untouched.
    size_t pitch = (size_t)W * 4 + 36;
    cudaCheck(cudaMalloc((void **)&d_rgba, pitch * H));
    cudaCheck(cudaMemset(d_rgba, 0xAB, pitch * H));
    tensor_to_rgba_cuda(d_rgba, pitch, d_x, H, W, TB_NCHW, s);
    cudaCheck(cudaDeviceSynchronize());
    uint8_t *rgba = (uint8_t *)tb_malloc(pitch * H);
    cudaCheck(cudaMemcpy(rgba, d_rgba, pitch * H, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int yy = 0; yy < H; yy++)
        for (size_t xx = 0; xx < pitch; xx++) {
            uint8_t v = rgba[yy * pitch + xx];
            if (xx >= (size_t)W * 4) bad += v != 0xAB;
            else if (xx % 4 == 3) bad += v != 255;
            else bad += v != rgb_got[((size_t)yy * W + xx / 4) * 3 + xx % 4];
        }
    EXPECT(bad == 0, "tensor_to_rgba: %d bytes wrong", bad);

    free(rgb), free(rgb_ref), free(rgb_got), free(x_ref), free(x_got), free(rgba);
    cudaFree(d_rgb), cudaFree(d_rgba), cudaFree(d_x);
}

// frame_to_tensor_cuda, tensor_to_frame_cuda and tensor_to_rgba_cuda (checked
// against the bytes of tensor_to_frame_cuda).
TEST_IMPL(frame_conversions) {
    check_frames(g_stream, 3, 18, 26);
    check_frames(g_stream, 1, 7, 5);
}

// ---------------------------------------------------------------- whole training runs

#define NFRAMES 9
#define NSTEPS 10

typedef struct {
    StepStats stats[NSTEPS];
    float *params, *state;
    uint8_t out[48 * 32 * 3];
} RunResult;

// 6 steps at batch 2, then 4 at batch 3 (each batch size's cuDNN algorithms
// timed at its first step), with the learning rate changing every step so a
// replayed graph that kept stale hyperparameters would show. loss_every > 0:
// the loss goes MSE, L1, MSE, ... every loss_every steps (else base's loss).
// with_ids: the frames go in through load_batch_ids, numbered by their index.
static void run_training_ids(Backend *be, const Model *m, const float *p0, uint8_t **frames,
                             const Hyper *base, int loss_every, int with_ids, RunResult *r) {
    be->set_params(be, p0);
    be->reset_opt_state(be);
    for (int k = 0; k < NSTEPS; k++) {
        int B = k < 6 ? 2 : 3;
        const uint8_t *batch[3];
        uint64_t ids[3];
        for (int i = 0; i < B; i++) {
            ids[i] = (uint64_t)((k + 4 * i) % NFRAMES);
            batch[i] = frames[ids[i]];
        }
        if (with_ids) be->load_batch_ids(be, batch, ids, B);
        else be->load_batch(be, batch, B);
        Hyper h = *base;
        h.lr = base->lr * (1.0f + 0.1f * (float)k);
        h.t = k + 1;
        if (loss_every > 0) h.loss = (k / loss_every) % 2 ? LOSS_L1 : LOSS_MSE;
        be->train_step(be, B, &h, k);
    }
    be->read_stats(be, r->stats, NSTEPS);
    r->params = hnew(m->n_params);
    r->state = hnew(2 * m->n_params);
    be->get_params(be, r->params);
    be->get_opt_state(be, r->state, base->optimizer);
    be->get_output(be, 0, r->out);
}

static void run_training(Backend *be, const Model *m, const float *p0, uint8_t **frames,
                         const Hyper *base, int loss_every, RunResult *r) {
    run_training_ids(be, m, p0, frames, base, loss_every, 0, r);
}

// Per-step loss and gradient norm; the total update (final - initial params),
// which is far more sensitive than the params themselves; optimizer state.
static void compare_runs(const Model *m, const float *p0, const RunResult *cpu,
                         const RunResult *gpu, const char *name, double tol) {
    double el = 0, eg = 0;
    for (int k = 0; k < NSTEPS; k++) {
        double l0 = cpu->stats[k].loss, l1 = gpu->stats[k].loss;
        double g0 = cpu->stats[k].grad_norm, g1 = gpu->stats[k].grad_norm;
        double dl = fabs(l1 - l0) / fabs(l0), dg = fabs(g1 - g0) / fabs(g0);
        if (!(dl <= el)) el = dl;  // NaN sticks
        if (!(dg <= eg)) eg = dg;
        EXPECT(dl <= bf16_tol(1e-4, 2 * BF16_U), "%s step %d loss: cuda %.9g cpu %.9g", name, k, l1, l0);
        EXPECT(dg <= bf16_tol(1e-4, 16 * BF16_U), "%s step %d grad norm: cuda %.9g cpu %.9g", name, k,
               g1, g0);
    }
    size_t n = m->n_params;
    float *du_c = hnew(n), *du_g = hnew(n);
    for (size_t i = 0; i < n; i++) du_c[i] = cpu->params[i] - p0[i], du_g[i] = gpu->params[i] - p0[i];
    double ep = max_rel_err(gpu->params, cpu->params, n, 1e-6);
    double eu = max_rel_err(du_g, du_c, n, 1e-12);
    double es = max_rel_err(gpu->state, cpu->state, n, 1e-12);
    double ev = strstr(name, "adam") ? max_rel_err(gpu->state + n, cpu->state + n, n, 1e-20) : 0;
    printf("%s: loss %.6f -> %.6f; rel. errors: loss %.2g, grad norm %.2g, params %.2g, "
           "update %.2g, state %.2g/%.2g\n",
           name, (double)cpu->stats[0].loss, (double)cpu->stats[NSTEPS - 1].loss, el, eg, ep, eu,
           es, ev);
    int adam = strstr(name, "adam") != NULL;
    EXPECT(ep <= bf16_tol(1e-5, adam ? 4 * BF16_U : BF16_U / 2), "%s final params: relative error %.3g",
           name, ep);
    tol = bf16_tol(tol, 0.4);
    if (!(bf16_run() && adam))
        EXPECT(eu <= tol, "%s total update: relative error %.3g > %.3g", name, eu, tol);
    EXPECT(es <= tol, "%s first optimizer state: relative error %.3g > %.3g", name, es, tol);
    EXPECT(ev <= tol, "%s second moment: relative error %.3g > %.3g", name, ev, tol);
    int maxd = 0;
    for (size_t i = 0; i < sizeof cpu->out; i++) {
        int d = abs((int)gpu->out[i] - (int)cpu->out[i]);
        if (d > maxd) maxd = d;
    }
    EXPECT(maxd <= bf16_tol(1, 4), "%s output frame: max byte difference %d", name, maxd);
    free(du_c), free(du_g);
}

// What the training cases share, made by the first of them to run: the model,
// both backends (max batch 3), the initial parameters, the frames, the
// hyperparameters, and the SGD runs of both backends from p0. Freed by main.
typedef struct {
    int made;
    Model m;
    Backend *cpu, *gpu;
    TbErr gpu_err;  // why gpu is NULL
    float *p0;
    uint8_t *frames[NFRAMES];
    Hyper sgd, adam;
    RunResult rc, rg;  // SGD: the CPU reference, the CUDA backend with graphs
} Training;
static Training tr;

// Smooth images plus noise: something an autoencoder can start to learn.
static void make_frames(uint8_t **frames) {
    size_t fb = (size_t)48 * 32 * 3;
    for (int f = 0; f < NFRAMES; f++) {
        frames[f] = (uint8_t *)tb_malloc(fb);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 48; x++)
                for (int c = 0; c < 3; c++) {
                    double v = 128 + 90 * sin(0.13 * (x + 7 * f) + 0.21 * y * (c + 1)) +
                               20 * (tb_rng_uniform(&rng) - 0.5);
                    frames[f][((size_t)y * 48 + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
    }
}

// SGD and Adam, clipping at 60% of the first step's gradient norm (measured on
// the CPU) so clipping is exercised.
static void make_hypers(Training *t) {
    Hyper probe = {0};
    probe.optimizer = OPT_SGD;
    const uint8_t *b2[2] = {t->frames[0], t->frames[4]};
    t->cpu->set_params(t->cpu, t->p0);
    t->cpu->reset_opt_state(t->cpu);
    t->cpu->load_batch(t->cpu, b2, 2);
    t->cpu->train_step(t->cpu, 2, &probe, 0);
    StepStats st;
    t->cpu->read_stats(t->cpu, &st, 1);
    printf("first gradient norm %.6f, clipping at %.6f\n", (double)st.grad_norm,
           0.6 * (double)st.grad_norm);

    Hyper sgd = {0};
    sgd.optimizer = OPT_SGD;
    sgd.lr = 0.05f;
    sgd.momentum = 0.9f;
    sgd.weight_decay = 1e-4f;
    sgd.clip = 0.6f * st.grad_norm;
    Hyper adam = sgd;
    adam.optimizer = OPT_ADAM;
    adam.lr = 1e-3f;
    adam.beta1 = 0.9f;
    adam.beta2 = 0.999f;
    adam.eps = 1e-8f;
    t->sgd = sgd;
    t->adam = adam;
}

// The shared setup, or NULL (after a failed check) when the CUDA backend
// cannot be made.
static Training *training(void) {
    if (!tr.made) {
        tr.made = 1;
        ModelSpec spec = model_spec_default(48, 32);
        spec.n_enc = 3;
        spec.channels[0] = 8;
        spec.channels[1] = 12;
        spec.channels[2] = 16;
        TbErr err = {{0}};
        CHECK(model_build(&tr.m, &spec, &err) == 0, "%s", err.msg);
        tr.cpu = backend_cpu_create(&tr.m, 3, &err);
        CHECK(tr.cpu, "%s", err.msg);
        tr.gpu = backend_cuda_create(&tr.m, 3, NULL, &tr.gpu_err);
        if (tr.gpu) {
            tr.p0 = hnew(tr.m.n_params);
            model_init_params(&tr.m, tr.p0, 1234);
            make_frames(tr.frames);
            make_hypers(&tr);
            run_training(tr.cpu, &tr.m, tr.p0, tr.frames, &tr.sgd, 0, &tr.rc);
            run_training(tr.gpu, &tr.m, tr.p0, tr.frames, &tr.sgd, 0, &tr.rg);
        }
    }
    EXPECT(tr.gpu != NULL, "backend_cuda_create: %s", tr.gpu_err.msg);
    return tr.gpu ? &tr : NULL;
}

static void training_free(void) {
    if (!tr.made) return;
    if (tr.gpu) {
        free(tr.rc.params), free(tr.rc.state), free(tr.rg.params), free(tr.rg.state);
        for (int f = 0; f < NFRAMES; f++) free(tr.frames[f]);
        free(tr.p0);
        backend_destroy(tr.gpu);
    }
    backend_destroy(tr.cpu);
}

// SGD with momentum, weight decay and clipping, the step captured as CUDA graphs
// (and replayed: batches 2 and 3 each run eagerly once, are captured at their
// second step, and the later steps replay them).
TEST_IMPL(training_sgd_graphs) {
    Training *t = training();
    if (!t) return;
    compare_runs(&t->m, t->p0, &t->rc, &t->rg, "sgd (graphs)", 1e-3);
    long launches = backend_cuda_graph_launches(t->gpu);
    printf("sgd (graphs): %ld of %d steps replayed from a CUDA graph\n", launches, NSTEPS);
    // All but the first step of each batch size (run eagerly before the capture).
    EXPECT(launches == NSTEPS - 2, "%ld of %d steps were graph replays, want %d", launches, NSTEPS,
           NSTEPS - 2);
    int clipped = 0;
    for (int k = 0; k < NSTEPS; k++) clipped += t->rc.stats[k].grad_norm > t->sgd.clip;
    EXPECT(clipped > 0, "no step was clipped (clip %g)", (double)t->sgd.clip);
}

// What a step enqueues, as backend_cuda_step_work counts it, for this model
// (L = 6 layers, batch 3, SGD, MSE, a graph replay): the gather, L - 1 bias +
// activation passes, the fused output layer + loss, L - 1 bias backward
// passes (their finish inside), the norm + stats, the update: 2L + 2 kernels;
// L forward and 2L - 1 backward convolutions (no data gradient for the
// image). The batch went in through load_batch: its 3 frames sent.
TEST_IMPL(step_work) {
    Training *t = training();
    if (!t) return;
    CudaStepWork w;
    long long total = 0;
    backend_cuda_step_work(t->gpu, &w, &total);
    int L = t->m.n_layers;
    printf("last step: %d kernels + %d cuDNN calls, %lld bytes sent\n", w.kernels, w.cudnn,
           w.upload_bytes);
    EXPECT(w.kernels == 2 * L + 2, "%d kernels in a step, want %d", w.kernels, 2 * L + 2);
    EXPECT(w.cudnn == 3 * L - 1, "%d cuDNN calls in a step, want %d", w.cudnn, 3 * L - 1);
    EXPECT(w.upload_bytes == 3 * 48 * 32 * 3, "%lld bytes sent in the last step", w.upload_bytes);
}

// Frames kept on the device (load_batch_ids): the same run as the CPU's, and
// each frame sent only when the store does not hold it. Kept: all 9 (each
// sent once), 5 (a cache: frame n in slot n % 5; 14 sends, simulated on the
// host from the batches of run_training) and 1 (two frames of a batch share
// the slot, one goes through scratch: all 24 sent).
TEST_IMPL(frames_kept_on_device) {
    Training *t = training();
    if (!t) return;
    const int kept[3] = {NFRAMES, 5, 1}, sends[3] = {NFRAMES, 14, 24};
    for (int k = 0; k < 3; k++) {
        TbErr err = {{0}};
        BackendOpts o = {.frames = kept[k]};
        Backend *be = backend_cuda_create(&t->m, 3, &o, &err);
        EXPECT(be != NULL, "backend_cuda_create: %s", err.msg);
        if (!be) return;
        RunResult r;
        char name[64];
        snprintf(name, sizeof name, "sgd (%d frames kept)", kept[k]);
        run_training_ids(be, &t->m, t->p0, t->frames, &t->sgd, 0, 1, &r);
        compare_runs(&t->m, t->p0, &t->rc, &r, name, 1e-3);
        long long total = 0;
        backend_cuda_step_work(be, NULL, &total);
        printf("%s: %lld bytes sent (%lld frames)\n", name, total, total / (48 * 32 * 3));
        EXPECT(total == (long long)sends[k] * 48 * 32 * 3, "%s: %lld bytes sent, want %d frames",
               name, total, sends[k]);
        free(r.params), free(r.state);
        backend_destroy(be);
    }
}

// The trainer numbers its ring frames (load_batch_ids): a CUDA trainer sends
// each pushed frame to the device once, however often it is replayed (9
// frames, 2 steps of batch 3 each: 54 frame uses), and learns as the CPU one
// does: each step's loss and gradient norm within the runs' 1e-4, the weights
// within 1e-5 (the runs' bound; measured here on the host shim: 1e-7).
TEST_IMPL(trainer_sends_each_frame_once) {
    Training *t = training();
    if (!t) return;
    TrainerConfig cfg = {0};
    cfg.spec = t->m.spec;
    cfg.hyper = t->sgd;
    cfg.ring = 6;
    cfg.max_batch = 3;
    cfg.seed = 77;
    Trainer tc, tg;
    TbErr err = {{0}};
    cfg.backend = "cpu";
    CHECK(trainer_init(&tc, &cfg, &err) == 0, "%s", err.msg);
    cfg.backend = "cuda";
    EXPECT(trainer_init(&tg, &cfg, &err) == 0, "cuda trainer: %s", err.msg);
    if (err.msg[0]) {
        trainer_free(&tc);
        return;
    }
    double worst = 0;
    for (int f = 0; f < NFRAMES; f++) {
        StepStats sc[TB_STATS_RING], sg[TB_STATS_RING];
        trainer_push_frame(&tc, t->frames[f], 48, 32);
        trainer_push_frame(&tg, t->frames[f], 48, 32);
        trainer_train(&tc, 2, 2);
        trainer_train(&tg, 2, 2);
        int n = trainer_read_stats(&tc, sc);
        EXPECT(trainer_read_stats(&tg, sg) == n, "stats slots differ");
        for (int k = 0; k < n; k++) {
            double dl = fabs(sg[k].loss - sc[k].loss) / fabs(sc[k].loss);
            double dg = fabs(sg[k].grad_norm - sc[k].grad_norm) / fabs(sc[k].grad_norm);
            if (!(dl <= worst)) worst = dl;
            if (!(dg <= worst)) worst = dg;
        }
    }
    EXPECT(worst <= bf16_tol(1e-4, 16 * BF16_U), "trainer steps: loss or norm relative error %.3g", worst);
    float *pc = hnew(t->m.n_params), *pg = hnew(t->m.n_params);
    tc.be->get_params(tc.be, pc);
    tg.be->get_params(tg.be, pg);
    double ep = max_rel_err(pg, pc, t->m.n_params, 1e-6);
    long long sent = 0;
    backend_cuda_step_work(tg.be, NULL, &sent);
    printf("trainer: %d frames pushed, %lld bytes sent (%lld frames); steps within %.2g, "
           "weights within %.2g\n", NFRAMES, sent, sent / (48 * 32 * 3), worst, ep);
    EXPECT(ep <= bf16_tol(1e-5, BF16_U / 2), "trainer weights: relative error %.3g", ep);
    EXPECT(sent == (long long)NFRAMES * 48 * 32 * 3, "%lld bytes sent for %d frames", sent, NFRAMES);
    free(pc), free(pg);
    trainer_free(&tc);
    trainer_free(&tg);
}

// Inputs and targets apart (an input transform: load_batch the inputs,
// load_targets the clean frames): the step gathers each from its own store
// slot, the inputs kept (numbered), the targets through scratch. 6 steps of
// batch 2 on both backends: each step's loss and norm within the runs' 1e-4,
// the weights within 1e-5 (measured on the host shim: 1e-7).
TEST_IMPL(targets_apart_match_cpu) {
    Training *t = training();
    if (!t) return;
    TbErr err = {{0}};
    BackendOpts o = {.frames = NFRAMES};
    Backend *be[2] = {t->cpu, backend_cuda_create(&t->m, 3, &o, &err)};
    EXPECT(be[1] != NULL, "backend_cuda_create: %s", err.msg);
    if (!be[1]) return;
    StepStats st[2][6];
    float *p[2];
    for (int k = 0; k < 2; k++) {
        be[k]->set_params(be[k], t->p0);
        be[k]->reset_opt_state(be[k]);
        for (int s = 0; s < 6; s++) {
            uint64_t ids[2] = {(uint64_t)(s + 1) % NFRAMES, (uint64_t)(s + 5) % NFRAMES};
            const uint8_t *in[2] = {t->frames[ids[0]], t->frames[ids[1]]};
            const uint8_t *tg[2] = {t->frames[s % NFRAMES], t->frames[(s + 4) % NFRAMES]};
            be[k]->load_batch_ids(be[k], in, ids, 2);
            be[k]->load_targets(be[k], tg, 2);
            be[k]->train_step(be[k], 2, &t->sgd, s);
        }
        be[k]->read_stats(be[k], st[k], 6);
        p[k] = hnew(t->m.n_params);
        be[k]->get_params(be[k], p[k]);
    }
    double worst = 0;
    for (int s = 0; s < 6; s++) {
        double dl = fabs(st[1][s].loss - st[0][s].loss) / fabs(st[0][s].loss);
        double dg = fabs(st[1][s].grad_norm - st[0][s].grad_norm) / fabs(st[0][s].grad_norm);
        if (!(dl <= worst)) worst = dl;
        if (!(dg <= worst)) worst = dg;
    }
    double ep = max_rel_err(p[1], p[0], t->m.n_params, 1e-6);
    printf("targets apart: steps within %.2g, weights within %.2g\n", worst, ep);
    EXPECT(worst <= bf16_tol(1e-4, 16 * BF16_U), "targets apart: loss or norm relative error %.3g", worst);
    EXPECT(ep <= bf16_tol(1e-5, BF16_U / 2), "targets apart: weights relative error %.3g", ep);
    free(p[0]), free(p[1]);
    backend_destroy(be[1]);
}

// output_recent never waits: the first call only asks; once the device is
// idle the next gives that read-back (get_output's bytes); after one more
// step it gives first the one asked before the step, then the step's own.
TEST_IMPL(output_recent_never_waits) {
    Training *t = training();
    if (!t) return;
    TbErr err = {{0}};
    Backend *be = backend_cuda_create(&t->m, 3, NULL, &err);
    EXPECT(be != NULL, "backend_cuda_create: %s", err.msg);
    if (!be) return;
    enum { FB = 48 * 32 * 3 };
    uint8_t got[FB], want0[FB], want1[FB];
    be->set_params(be, t->p0);
    const uint8_t *b1[1] = {t->frames[0]}, *b2[1] = {t->frames[5]};
    be->load_batch(be, b1, 1);
    be->train_step(be, 1, &t->sgd, 0);
    EXPECT(be->output_recent(be, got) == 0, "a read-back given before any arrived");
    cudaCheck(cudaDeviceSynchronize());
    be->get_output(be, 0, want0);
    memset(got, 0, FB);
    EXPECT(be->output_recent(be, got) == 1, "no read-back once the device is idle");
    EXPECT(memcmp(got, want0, FB) == 0, "the read-back differs from get_output");
    be->load_batch(be, b2, 1);
    be->train_step(be, 1, &t->sgd, 1);  // behind the read-back asked above
    cudaCheck(cudaDeviceSynchronize());
    be->get_output(be, 0, want1);
    EXPECT(memcmp(want0, want1, FB) != 0, "the step changed nothing to see");
    EXPECT(be->output_recent(be, got) == 1 && memcmp(got, want0, FB) == 0,
           "the read-back asked before the step is not given first");
    cudaCheck(cudaDeviceSynchronize());
    EXPECT(be->output_recent(be, got) == 1 && memcmp(got, want1, FB) == 0,
           "the step's own read-back is not given next");
    backend_destroy(be);
}

// The CUDA output helpers against get_output of the same step.
TEST_IMPL(output_rgba_matches_get_output) {
    Training *t = training();
    if (!t) return;
    uint8_t out[48 * 32 * 3];
    t->gpu->get_output(t->gpu, 0, out);
    uint8_t *d_rgba = NULL, rgba[48 * 32 * 4];
    cudaCheck(cudaMalloc((void **)&d_rgba, sizeof rgba));
    backend_cuda_output_rgba(t->gpu, 0, d_rgba, 48 * 4);
    cudaCheck(cudaStreamSynchronize((cudaStream_t)backend_cuda_stream(t->gpu)));
    cudaCheck(cudaMemcpy(rgba, d_rgba, sizeof rgba, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < 48 * 32; i++)
        for (int c = 0; c < 4; c++) bad += rgba[4 * i + c] != (c == 3 ? 255 : out[3 * i + c]);
    EXPECT(bad == 0, "backend_cuda_output_rgba: %d bytes differ from get_output", bad);
    cudaFree(d_rgba);
}

// The interop extras from a thread whose current device is another's (the
// channels share one thread, and each table entry leaves its own device
// current): backend_cuda_output_rgba of a net on device 0, called right after
// an entry of a net on device 1, still writes the first net's picture (a
// launch on a stream of another device than the current one is refused).
// Needs two devices; the host shim gives two under KH_DEVICES=2.
TEST_IMPL(interop_extras_on_their_device) {
    Training *t = training();
    if (!t) return;
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess) (void)cudaGetLastError();
    if (ndev < 2) TEST_SKIP_CASE("%d CUDA device: no other one to leave current", ndev);
    TbErr err = {{0}};
    BackendOpts o1 = {0};
    o1.device = 1;
    Backend *a = backend_create("cuda", &t->m, 1, &err);
    EXPECT(a != NULL, "backend_create cuda: %s", err.msg);
    Backend *b = a ? backend_create_opts("cuda", &t->m, 1, &o1, &err) : NULL;
    EXPECT(b != NULL, "backend_create cuda on device 1: %s", err.msg);
    if (!a || !b) {
        if (a) backend_destroy(a);
        return;
    }
    const uint8_t *b1[1] = {t->frames[2]};
    uint8_t out[48 * 32 * 3], rgba[48 * 32 * 4], *d_rgba = NULL;
    a->set_params(a, t->p0), b->set_params(b, t->p0);
    a->load_batch(a, b1, 1), a->forward(a, 1);
    a->get_output(a, 0, out);
    cudaCheck(cudaSetDevice(a->device));
    cudaCheck(cudaMalloc((void **)&d_rgba, sizeof rgba));
    b->load_batch(b, b1, 1), b->forward(b, 1);  // leaves device 1 current
    backend_cuda_output_rgba(a, 0, d_rgba, 48 * 4);
    cudaCheck(cudaStreamSynchronize((cudaStream_t)backend_cuda_stream(a)));
    cudaCheck(cudaMemcpy(rgba, d_rgba, sizeof rgba, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < 48 * 32; i++)
        for (int c = 0; c < 4; c++) bad += rgba[4 * i + c] != (c == 3 ? 255 : out[3 * i + c]);
    EXPECT(bad == 0, "backend_cuda_output_rgba after device 1's entry: %d bytes differ", bad);
    cudaFree(d_rgba);
    backend_destroy(b);
    backend_destroy(a);
}

// Forward only, after the same training on both: the same reconstruction.
TEST_IMPL(forward_only_matches_cpu) {
    Training *t = training();
    if (!t) return;
    const uint8_t *b1[1] = {t->frames[3]};
    uint8_t oc[48 * 32 * 3], og[48 * 32 * 3];
    t->cpu->load_batch(t->cpu, b1, 1);
    t->gpu->load_batch(t->gpu, b1, 1);
    t->cpu->forward(t->cpu, 1);
    t->gpu->forward(t->gpu, 1);
    t->cpu->get_output(t->cpu, 0, oc);
    t->gpu->get_output(t->gpu, 0, og);
    int maxd = 0;
    for (size_t i = 0; i < sizeof oc; i++) {
        int d = abs((int)oc[i] - (int)og[i]);
        if (d > maxd) maxd = d;
    }
    EXPECT(maxd <= bf16_tol(1, 4), "forward-only output: max byte difference %d", maxd);
}

TEST_IMPL(training_adam_graphs) {
    Training *t = training();
    if (!t) return;
    RunResult ac, ag;
    run_training(t->cpu, &t->m, t->p0, t->frames, &t->adam, 0, &ac);
    run_training(t->gpu, &t->m, t->p0, t->frames, &t->adam, 0, &ag);
    compare_runs(&t->m, t->p0, &ac, &ag, "adam (graphs)", 1e-3);
    free(ac.params), free(ac.state), free(ag.params), free(ag.state);
}

// The same SGD run without CUDA graphs (eager launches), on a backend of its own.
TEST_IMPL(training_sgd_eager) {
    Training *t = training();
    if (!t) return;
    TbErr err = {{0}};
    setenv("TABULA_NO_GRAPH", "1", 1);
    Backend *eager = backend_cuda_create(&t->m, 3, NULL, &err);
    EXPECT(eager != NULL, "backend_cuda_create without graphs: %s", err.msg);
    if (eager) {
        RunResult re;
        run_training(eager, &t->m, t->p0, t->frames, &t->sgd, 0, &re);
        compare_runs(&t->m, t->p0, &t->rc, &re, "sgd (eager)", 1e-3);
        EXPECT(backend_cuda_graph_launches(eager) == 0, "%ld graph launches with graphs off",
               backend_cuda_graph_launches(eager));
        free(re.params), free(re.state);
        backend_destroy(eager);
    }
    unsetenv("TABULA_NO_GRAPH");
}

// A failure inside the capture of a step (injected: the first check in it
// reports one) must not exit: the capture is ended, that step and every later
// one run eagerly, and the run is the same as the CPU's.
TEST_IMPL(capture_failure_falls_back_to_eager) {
    Training *t = training();
    if (!t) return;
    TbErr err = {{0}};
    setenv("TABULA_INJECT_CAPTURE_FAIL", "1", 1);
    Backend *be = backend_cuda_create(&t->m, 3, NULL, &err);
    unsetenv("TABULA_INJECT_CAPTURE_FAIL");
    EXPECT(be != NULL, "backend_cuda_create: %s", err.msg);
    if (!be) return;
    RunResult rf;
    run_training(be, &t->m, t->p0, t->frames, &t->sgd, 0, &rf);
    compare_runs(&t->m, t->p0, &t->rc, &rf, "sgd (capture failed, eager)", 1e-3);
    EXPECT(backend_cuda_graph_launches(be) == 0, "%ld graph launches after the capture failed",
           backend_cuda_graph_launches(be));
    free(rf.params), free(rf.state);
    backend_destroy(be);
}

// [train] deterministic = 1: two runs from the same start give the same bits
// (graphs on, batch sizes 2 and 3), and still agree with the CPU.
TEST_IMPL(deterministic_runs_repeat_bit_for_bit) {
    Training *t = training();
    if (!t) return;
    TbErr err = {{0}};
    BackendOpts o = {.deterministic = 1};
    RunResult r[2];
    for (int k = 0; k < 2; k++) {
        Backend *be = backend_cuda_create(&t->m, 3, &o, &err);
        EXPECT(be != NULL, "backend_cuda_create (deterministic): %s", err.msg);
        if (!be) return;
        run_training(be, &t->m, t->p0, t->frames, &t->sgd, 0, &r[k]);
        backend_destroy(be);
    }
    compare_runs(&t->m, t->p0, &t->rc, &r[0], "sgd (deterministic)", 1e-3);
    size_t n = t->m.n_params;
    EXPECT(memcmp(r[0].params, r[1].params, n * sizeof(float)) == 0, "weights differ between two deterministic runs");
    EXPECT(memcmp(r[0].stats, r[1].stats, sizeof r[0].stats) == 0, "losses differ between two deterministic runs");
    for (int k = 0; k < 2; k++) free(r[k].params), free(r[k].state);
}

// Training still learns as on the CPU (the point of the bf16 bounds above:
// the step-by-step errors must not add up to a network that learns less):
// 60 Adam steps at batch 2 over the frames from the same start on both
// backends; the loss must fall by at least 90% of the CPU's fall (mean of
// the last 5 steps against the first), and end within 0.5 dB of the CPU's
// (a loss at most 10^0.05 = 1.122 times it: the GPU session's quality rule
// for bf16). Measured on the host shim: fp32 the CPU's fall and final loss
// to 2e-5; bf16 99.7% of the fall, the final loss 3% higher (0.13 dB).
TEST_IMPL(training_converges_as_cpu) {
    Training *t = training();
    if (!t) return;
    enum { N = 60 };
    Backend *be[2] = {t->cpu, t->gpu};
    double first[2] = {0}, last[2] = {0};
    for (int k = 0; k < 2; k++) {
        be[k]->set_params(be[k], t->p0);
        be[k]->reset_opt_state(be[k]);
        StepStats st[TB_STATS_RING];
        for (int s = 0; s < N; s++) {
            const uint8_t *batch[2] = {t->frames[s % NFRAMES], t->frames[(s + 4) % NFRAMES]};
            be[k]->load_batch(be[k], batch, 2);
            Hyper h = t->adam;
            h.lr = 3e-3f;
            h.t = s + 1;
            be[k]->train_step(be[k], 2, &h, s % TB_STATS_RING);
            if (s % TB_STATS_RING == TB_STATS_RING - 1 || s == N - 1) {
                int got = s % TB_STATS_RING + 1;
                be[k]->read_stats(be[k], st, got);
                for (int j = 0; j < got; j++) {
                    int step = s - (got - 1) + j;
                    if (step < 5) first[k] += st[j].loss / 5.0;
                    if (step >= N - 5) last[k] += st[j].loss / 5.0;
                }
            }
        }
    }
    double fall_c = first[0] - last[0], fall_g = first[1] - last[1];
    double db = 10.0 * log10(last[1] / last[0]);
    printf("training converges: loss %.6f -> %.6f (cpu), %.6f -> %.6f (cuda%s): fall %.3g of the "
           "cpu's, final loss %+.2f dB\n", first[0], last[0], first[1], last[1],
           bf16_run() ? ", bf16" : "", fall_g / fall_c, db);
    EXPECT(fall_c > 0.1 * first[0], "the CPU run did not learn: %.6f -> %.6f", first[0], last[0]);
    EXPECT(fall_g >= 0.9 * fall_c, "cuda's loss fell %.6f, the CPU's %.6f", fall_g, fall_c);
    EXPECT(db <= 0.5, "final loss: cuda %.6f cpu %.6f (%+.2f dB)", last[1], last[0], db);
}

// The loss switched MSE -> L1 -> ... every 2 steps, graphs on: each (batch,
// loss) pair runs eagerly, is captured, and the MSE graph of batch 2 is replayed
// after the L1 steps, so a graph kept across a switch (or a loss the step
// ignores) would report the wrong loss. Compared per step loss only, at 1e-3:
// an output within rounding of its target can take the other sign on the GPU,
// which moves that step's gradient by 2/n in one element (no bug, but more
// than compare_runs allows for the gradient norm and the update).
TEST_IMPL(training_loss_switch_graphs) {
    Training *t = training();
    if (!t) return;
    RunResult sc, sg;
    run_training(t->cpu, &t->m, t->p0, t->frames, &t->sgd, 2, &sc);
    run_training(t->gpu, &t->m, t->p0, t->frames, &t->sgd, 2, &sg);
    double el = 0;
    for (int k = 0; k < NSTEPS; k++) {
        double l0 = sc.stats[k].loss, l1 = sg.stats[k].loss, dl = fabs(l1 - l0) / fabs(l0);
        if (!(dl <= el)) el = dl;
        EXPECT(dl <= bf16_tol(1e-3, 2 * BF16_U), "loss switch step %d (%s) loss: cuda %.9g cpu %.9g", k,
               (k / 2) % 2 ? "l1" : "mse", l1, l0);
    }
    printf("loss switch (graphs): losses %.6f %.6f %.6f %.6f ...; max rel. error %.2g\n",
           (double)sc.stats[0].loss, (double)sc.stats[1].loss, (double)sc.stats[2].loss,
           (double)sc.stats[3].loss, el);
    free(sc.params), free(sc.state), free(sg.params), free(sg.state);
}

// lerp_cuda against lerp: the same formula ((1-a)*w rounded, then one fma),
// so the same bits are expected; both ends exact.
TEST_IMPL(lerp) {
    size_t n = 1000003;
    float *w = hnew(n), *sl = hnew(n), *want = hnew(n), *got = hnew(n);
    float *d_w = dnew(n), *d_s = dnew(n);
    fill(w, n, -2, 2);
    fill(sl, n, -1, 1);
    up(d_s, sl, n);
    const float alphas[] = {0.5f, 0.125f, 0.7f, 1.0f};
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        float a = alphas[k];
        memcpy(want, w, n * sizeof(float));
        lerp(want, sl, n, a);
        up(d_w, w, n);
        lerp_cuda(d_w, d_s, n, a, g_stream);
        down(got, d_w, n);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) differ += memcmp(&got[i], &want[i], sizeof(float)) != 0;
        printf("lerp a=%g: %zu of %zu elements differ from the CPU in their bits\n", (double)a, differ, n);
        EXPECT_CLOSE(got, want, n, 1e-7, "lerp a=%g", (double)a);
        if (a == 1.0f) EXPECT(memcmp(got, sl, n * sizeof(float)) == 0, "a = 1 gives the slot bit for bit");
    }
    up(d_w, w, n);
    lerp_cuda(d_w, d_s, n, 0.0f, g_stream);
    down(got, d_w, n);
    EXPECT(memcmp(got, w, n * sizeof(float)) == 0, "a = 0 leaves w bit for bit");
    free(w), free(sl), free(want), free(got);
    cudaFree(d_w), cudaFree(d_s);
}

// The backends' snapshot slots: the same blend of weights and optimizer state
// on both, and a recall on the GPU gives back what was saved bit for bit (slots
// 0 and TB_SLOTS included: the trainer's scratch and its last).
TEST_IMPL(slots_match_cpu) {
    Training *t = training();
    if (!t) return;
    size_t n = t->m.n_params;
    float *st0 = hnew(2 * n);
    fill(st0, 2 * n, 0, 0.01f);
    Backend *be[2] = {t->cpu, t->gpu};
    float *p[2], *st[2];
    const int slots[] = {0, 4, TB_SLOTS};
    for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++) {
        int i = slots[k];
        for (int b = 0; b < 2; b++) {
            TbErr err = {{0}};
            be[b]->set_params(be[b], t->p0);
            be[b]->set_opt_state(be[b], st0, OPT_ADAM);
            EXPECT(be[b]->slot_save(be[b], i, &err) == 0, "%s slot_save %d: %s", be[b]->name, i, err.msg);
            be[b]->set_params(be[b], t->rc.params);
            be[b]->reset_opt_state(be[b]);
            be[b]->slot_blend(be[b], i, 0.3f, 1);
            p[b] = hnew(n);
            st[b] = hnew(2 * n);
            be[b]->get_params(be[b], p[b]);
            be[b]->get_opt_state(be[b], st[b], OPT_ADAM);
        }
        EXPECT_CLOSE(p[1], p[0], n, 1e-7, "slot %d: blended weights", i);
        EXPECT_CLOSE(st[1], st[0], 2 * n, 1e-7, "slot %d: blended optimizer state", i);
        t->gpu->slot_blend(t->gpu, i, 0.5f, 0);  // weights only: the state stays as it was
        t->gpu->get_opt_state(t->gpu, st[0], OPT_ADAM);
        EXPECT(memcmp(st[0], st[1], 2 * n * sizeof(float)) == 0, "slot %d: a blend without state leaves it", i);
        t->gpu->slot_recall(t->gpu, i);
        t->gpu->get_params(t->gpu, p[1]);
        t->gpu->get_opt_state(t->gpu, st[1], OPT_ADAM);
        EXPECT(memcmp(p[1], t->p0, n * sizeof(float)) == 0, "slot %d: recalled weights bit for bit", i);
        EXPECT(memcmp(st[1], st0, 2 * n * sizeof(float)) == 0, "slot %d: recalled state bit for bit", i);
        for (int b = 0; b < 2; b++) free(p[b]), free(st[b]);
    }
    free(st0);
}

// The weights a forward pass uses are the ones the table reports after each
// way they change outside a step (slot recall, a blend, the coupling inside
// the backends): the output after each is the output after set_params of
// the same weights (get_params), bit for bit. With bf16 this holds cuDNN's
// bfloat16 copy of the weights to the float ones (a copy left stale by any of
// the three gives another picture).
TEST_IMPL(weights_in_use_after_changes) {
    Training *t = training();
    if (!t) return;
    size_t n = t->m.n_params;
    float *p = hnew(n), *host[2] = {hnew(n), hnew(n)};
    const uint8_t *b1[1] = {t->frames[2]};
    uint8_t a[48 * 32 * 3], b[48 * 32 * 3];
    TbErr err = {{0}};  // made as the channels make them, so the two couple inside
    Backend *g = backend_create("cuda", &t->m, 3, &err), *g2 = backend_create("cuda", &t->m, 3, &err);
    EXPECT(g && g2, "backend_create cuda: %s", err.msg);
    if (!g || !g2) return;
    fill(p, n, -0.5f, 0.5f);
    g2->set_params(g2, p);
    static const char *what[3] = {"slot recall", "slot blend", "coupling"};
    for (int op = 0; op < 3; op++) {
        g->set_params(g, t->p0);
        EXPECT(g->slot_save(g, 1, &err) == 0, "slot_save: %s", err.msg);
        g->set_params(g, t->rc.params);
        if (op == 0) g->slot_recall(g, 1);
        else if (op == 1) g->slot_blend(g, 1, 0.5f, 0);
        else {
            Backend *pair[2] = {g, g2};
            EXPECT(backend_couple(pair, 2, 0.5f, host) == 1, "two CUDA nets not coupled inside");
        }
        g->load_batch(g, b1, 1);
        g->forward(g, 1);
        g->get_output(g, 0, a);
        g->get_params(g, p);
        g->set_params(g, p);
        g->forward(g, 1);
        g->get_output(g, 0, b);
        EXPECT(memcmp(a, b, sizeof a) == 0, "after %s: the forward pass used other weights than "
               "the ones reported", what[op]);
    }
    backend_destroy(g), backend_destroy(g2);
    free(p), free(host[0]), free(host[1]);
}

// The channels' coupling: three CUDA backends made as the channels make them
// (backend_create: each entry makes its device current first), coupled on the
// device (couple_cuda on the first one's stream, the others ordered by
// events) behind a step queued on each, give the bits of three CPU backends
// coupled the same way; one CPU net with two CUDA ones goes through
// host copies and gives them too.
TEST_IMPL(coupling_matches_cpu) {
    Training *t = training();
    if (!t) return;
    enum { K = 3 };
    size_t n = t->m.n_params;
    Backend *g[K], *c[K];
    float *w[K], *host[K], *got = hnew(n), *want = hnew(n);
    for (int j = 0; j < K; j++) {
        TbErr err = {{0}};
        g[j] = backend_create("cuda", &t->m, 3, &err);
        EXPECT(g[j] != NULL, "backend_create cuda: %s", err.msg);
        if (!g[j]) return;
        c[j] = backend_create("cpu", &t->m, 3, &err);
        w[j] = hnew(n), host[j] = hnew(n);
        fill(w[j], n, -0.5f, 0.5f);
        g[j]->set_params(g[j], w[j]), c[j]->set_params(c[j], w[j]);
        // A step queued on each CUDA net, which the coupling must wait for; at
        // lr 0 it leaves the weights as they are (the CPU's need none).
        const uint8_t *b1[1] = {t->frames[j]};
        Hyper h0 = t->sgd;
        h0.lr = 0, h0.weight_decay = 0;
        g[j]->load_batch(g[j], b1, 1);
        g[j]->train_step(g[j], 1, &h0, 0);
    }
    EXPECT(backend_couple(g, K, 0.3f, host) == 1, "the CUDA nets were coupled through the host");
    EXPECT(backend_couple(c, K, 0.3f, host) == 1, "the CPU nets were coupled through the host");
    for (int j = 0; j < K; j++) {
        g[j]->get_params(g[j], got), c[j]->get_params(c[j], want);
        EXPECT(memcmp(got, want, n * sizeof(float)) == 0, "net %d: coupled on the device is not the CPU's", j);
    }
    // Net 0 on the CPU, 1 and 2 on CUDA; then the same start all on the CPU.
    Backend *mixed[K] = {c[0], g[1], g[2]}, *cpus[K] = {c[0], c[1], c[2]};
    float *start0 = hnew(n), *mixed0 = hnew(n);
    c[0]->get_params(c[0], start0);
    EXPECT(backend_couple(mixed, K, 0.5f, host) == 0, "a CPU net and CUDA nets coupled inside");
    c[0]->get_params(c[0], mixed0);
    c[0]->set_params(c[0], start0);
    backend_couple(cpus, K, 0.5f, host);
    c[0]->get_params(c[0], want);
    EXPECT(memcmp(mixed0, want, n * sizeof(float)) == 0, "net 0: mixed coupling is not the CPU's");
    for (int j = 1; j < K; j++) {
        g[j]->get_params(g[j], got), c[j]->get_params(c[j], want);
        EXPECT(memcmp(got, want, n * sizeof(float)) == 0, "net %d: mixed coupling is not the CPU's", j);
    }
    free(start0), free(mixed0);
    for (int j = 0; j < K; j++) backend_destroy(g[j]), backend_destroy(c[j]), free(w[j]), free(host[j]);
    free(got), free(want);
}

// The coupling must wait for the step queued on every net, not only the
// first's: three deterministic CUDA nets each take a step that changes their
// weights (lr > 0), then are coupled with nothing read back between, and the
// last net is read first (so neither its step nor the coupling is forced
// through by reading net 0). The same again with each step read back before
// the coupling and net 0 read first gives the bits to match. A coupling that
// did not wait for the others' steps would blend their old weights, and a net
// whose stream did not wait for the coupling would be read uncoupled; the
// host shim runs only the work a wait needs, newest first, so both show.
TEST_IMPL(coupling_waits_for_every_step) {
    Training *t = training();
    if (!t) return;
    enum { K = 3 };
    size_t n = t->m.n_params;
    BackendOpts o = {.deterministic = 1};
    float *w = hnew(n), *got = hnew(n), *want[K], *host[K];
    fill(w, n, -0.5f, 0.5f);
    for (int j = 0; j < K; j++) want[j] = hnew(n), host[j] = hnew(n);
    for (int pass = 0; pass < 2; pass++) {  // 0: read back after each step; 1: not
        Backend *g[K];
        for (int j = 0; j < K; j++) {
            TbErr err = {{0}};
            g[j] = backend_cuda_create(&t->m, 3, &o, &err);
            EXPECT(g[j] != NULL, "backend_cuda_create: %s", err.msg);
            if (!g[j]) return;
            g[j]->set_params(g[j], w);
            const uint8_t *b1[1] = {t->frames[j]};
            g[j]->load_batch(g[j], b1, 1);
            g[j]->train_step(g[j], 1, &t->sgd, 0);
            if (pass == 0) g[j]->get_params(g[j], got);
        }
        EXPECT(backend_couple(g, K, 0.3f, host) == 1, "the CUDA nets were coupled inside");
        for (int i = 0; i < K; i++) {  // pass 0 reads net 0 first, which runs the coupling
            int j = pass ? K - 1 - i : i;
            g[j]->get_params(g[j], pass ? got : want[j]);
            if (pass) EXPECT(memcmp(got, want[j], n * sizeof(float)) == 0, "net %d: not its step then the coupling", j);
        }
        if (pass == 0) EXPECT(memcmp(want[0], w, n * sizeof(float)) != 0, "the step left the weights as they were");
        for (int j = 0; j < K; j++) backend_destroy(g[j]);
    }
    for (int j = 0; j < K; j++) free(want[j]), free(host[j]);
    free(w), free(got);
}

// Coupling again and again, as the channels do every few steps: the pointer
// array (made at the first coupling, sent from pinned memory only when the
// set of nets changes) serves three couplings of nets 0,1,2, then the set
// changes (net 3 for net 1), then shrinks (0,3), then grows (all four), each
// change right behind the last coupling with nothing read back between (so
// the host does not yet know the last copy done: the shim reports a pinned
// source rewritten too soon). Read back after each group: the bits of the CPU
// nets coupled in the same order. A set change the array missed would couple
// net 1 instead of net 3.
TEST_IMPL(coupling_repeated_set_changes) {
    Training *t = training();
    if (!t) return;
    enum { K = 4 };
    size_t n = t->m.n_params;
    Backend *g[K], *c[K];
    float *host[K], *got = hnew(n), *want = hnew(n);
    for (int j = 0; j < K; j++) {
        TbErr err = {{0}};
        g[j] = backend_create("cuda", &t->m, 3, &err);
        EXPECT(g[j] != NULL, "backend_create cuda: %s", err.msg);
        if (!g[j]) return;
        c[j] = backend_create("cpu", &t->m, 3, &err);
        host[j] = hnew(n);
        fill(host[j], n, -0.5f, 0.5f);
        g[j]->set_params(g[j], host[j]), c[j]->set_params(c[j], host[j]);
    }
    // k, the nets, then 1 where the group ends (weights read back and compared).
    static const int sets[][6] = {{3, 0, 1, 2, 0, 0}, {3, 0, 1, 2, 0, 0}, {3, 0, 1, 2, 0, 1},
                                  {3, 0, 3, 2, 0, 0}, {2, 0, 3, 0, 0, 0}, {4, 0, 1, 2, 3, 1}};
    for (size_t r = 0; r < sizeof sets / sizeof sets[0]; r++) {
        int k = sets[r][0];
        Backend *gs[K], *cs[K];
        for (int j = 0; j < k; j++) gs[j] = g[sets[r][1 + j]], cs[j] = c[sets[r][1 + j]];
        float c_r = 0.1f + 0.1f * (float)r;
        EXPECT(backend_couple(gs, k, c_r, host) == 1, "round %zu: coupled through the host", r);
        backend_couple(cs, k, c_r, host);
        if (!sets[r][5]) continue;
        for (int j = 0; j < K; j++) {
            g[j]->get_params(g[j], got), c[j]->get_params(c[j], want);
            EXPECT(memcmp(got, want, n * sizeof(float)) == 0, "round %zu, net %d: not the CPU's bits", r, j);
        }
    }
    for (int j = 0; j < K; j++) backend_destroy(g[j]), backend_destroy(c[j]), free(host[j]);
    free(got), free(want);
}

// The bottleneck op against its CPU reference: 11 of 16 channels kept and one
// at half weight; the dropped ones +0 exactly on the GPU too; the noise the
// same counter-hash draws (to the last bits of logf and cosf), the counter
// moved on by bottleneck_next_cuda; backward one multiply: the same bits.
TEST_IMPL(bottleneck) {
    int B = 3, C = 16, HW = 13 * 7;
    size_t n = (size_t)B * C * HW;
    float *x = hnew(n), *dy = hnew(n), *want = hnew(n), *got = hnew(n), mask[16];
    float *d_x = dnew(n), *d_y = dnew(n), *d_mask = dnew(C), *d_noise = dnew(1);
    unsigned long long pass = 7, *d_pass = NULL;
    cudaCheck(cudaMalloc((void **)&d_pass, sizeof pass));
    cudaCheck(cudaMemcpy(d_pass, &pass, sizeof pass, cudaMemcpyHostToDevice));
    fill(x, n, -2, 2);
    bottleneck_mask_keep(mask, C, 11);
    mask[3] = 0.5f;
    up(d_x, x, n);
    up(d_mask, mask, C);
    for (int k = 0; k < 2; k++) {
        float noise = k ? 0.5f : 0.0f;
        up(d_noise, &noise, 1);
        poison(d_y, n * sizeof(float));
        bottleneck_forward_ref(want, x, mask, B, C, HW, noise, pass);
        bottleneck_forward_cuda(d_y, d_x, d_mask, d_noise, d_pass, B, C, HW, TB_NCHW, g_stream);
        down(got, d_y, n);
        EXPECT_CLOSE(got, want, n, 1e-5, "bottleneck forward, noise %g", (double)noise);
        int bad = 0;
        for (size_t i = 0; i < n; i++)
            if (mask[i / HW % C] == 0) bad += got[i] != 0.0f || signbit(got[i]);
        EXPECT(bad == 0, "noise %g: %d values of dropped channels are not +0", (double)noise, bad);
    }
    bottleneck_next_cuda(d_pass, g_stream);
    cudaCheck(cudaStreamSynchronize(g_stream));
    cudaCheck(cudaMemcpy(&pass, d_pass, sizeof pass, cudaMemcpyDeviceToHost));
    EXPECT(pass == 8, "the pass counter moved to %llu, want 8", pass);
    fill(dy, n, -1, 1);
    up(d_x, dy, n);
    bottleneck_backward_ref(want, dy, mask, B, C, HW);
    bottleneck_backward_cuda(d_x, d_x, d_mask, B, C, HW, TB_NCHW, g_stream);  // in place
    down(got, d_x, n);
    EXPECT(memcmp(got, want, n * sizeof(float)) == 0, "bottleneck backward: the same bits");
    free(x), free(dy), free(want), free(got);
    cudaFree(d_x), cudaFree(d_y), cudaFree(d_mask), cudaFree(d_noise), cudaFree(d_pass);
}

// The backends' bottleneck control in training (graphs): half the channels
// kept plus noise, then a latent freeze, the same on both; frozen, the
// encoder's weights stay bit for bit on the GPU. Left off at the end.
TEST_IMPL(bottleneck_training_matches_cpu) {
    Training *t = training();
    if (!t) return;
    int C = model_bottleneck_channels(&t->m);
    float *mask = hnew(C);
    bottleneck_mask_keep(mask, C, C / 2);
    Backend *be[2] = {t->cpu, t->gpu};
    for (int frozen = 0; frozen < 2; frozen++) {
        RunResult rc = {0}, rg = {0};
        for (int b = 0; b < 2; b++) be[b]->bottleneck(be[b], mask, frozen ? 0.0f : 0.1f, frozen);
        run_training(t->cpu, &t->m, t->p0, t->frames, &t->sgd, 0, &rc);
        run_training(t->gpu, &t->m, t->p0, t->frames, &t->sgd, 0, &rg);
        compare_runs(&t->m, t->p0, &rc, &rg, frozen ? "sgd, latent freeze" : "sgd, keep half + noise", 1e-3);
        size_t dec = model_decoder_off(&t->m);
        if (frozen)
            EXPECT(memcmp(rg.params, t->p0, dec * sizeof(float)) == 0, "frozen: the GPU moved the encoder");
        free(rc.params), free(rc.state), free(rg.params), free(rg.state);
    }
    for (int b = 0; b < 2; b++) be[b]->bottleneck(be[b], NULL, 0, 0);
    free(mask);
}

// Activation i's shape (channels, width, height): the input of layer i, or the output.
static void act_shape(const Model *m, int i, int *c, int *w, int *h) {
    const Layer *L = &m->layers[i < m->n_layers ? i : m->n_layers - 1];
    *c = i < m->n_layers ? L->cin : L->cout;
    *w = i < m->n_layers ? L->win : L->wout;
    *h = i < m->n_layers ? L->hin : L->hout;
}

// The device's layout (TABULA_CUDA_LAYOUT) stays inside the backend: after a
// forward pass of the same weights (set through set_params) on both, every
// activation read back matches the CPU's, in NCHW; decode of the CPU's code
// gives the CPU's picture; the atlas drawn from the device's activation block
// is tiles_draw of what get_activation read, to the bit. Measured (host
// build, FMA math): activations within 9e-7 of their largest value in either
// layout (bound 1e-5); a read-out in the wrong order is off by O(1).
TEST_IMPL(activations_decode_atlas_match_cpu) {
    Training *t = training();
    if (!t) return;
    const Model *m = &t->m;
    const uint8_t *b1[1] = {t->frames[5]};
    Backend *be[2] = {t->cpu, t->gpu};
    for (int k = 0; k < 2; k++) {
        be[k]->set_params(be[k], t->rc.params);
        be[k]->load_batch(be[k], b1, 1);
        be[k]->forward(be[k], 1);
    }
    uint8_t lut[256][3], *d_lut = NULL, *d_pic = NULL;
    for (int i = 0; i < 256; i++) lut[i][0] = (uint8_t)i, lut[i][1] = (uint8_t)(255 - i), lut[i][2] = (uint8_t)(i * 7);
    cudaCheck(cudaMalloc((void **)&d_lut, sizeof lut));
    cudaCheck(cudaMemcpy(d_lut, lut, sizeof lut, cudaMemcpyHostToDevice));
    for (int i = 0; i <= m->n_layers; i++) {
        size_t n = m->act_n[i];
        float *a = hnew(n), *g = hnew(n);
        t->cpu->get_activation(t->cpu, i, a);
        t->gpu->get_activation(t->gpu, i, g);
        double most = 0, err = 0;
        for (size_t k = 0; k < n; k++) {
            most = fmax(most, fabs(a[k]));
            err = fmax(err, fabs((double)g[k] - a[k]));
        }
        printf("activation %d: max error %.2g of its largest value %.3g\n", i, err / most, most);
        EXPECT(err <= bf16_tol(1e-5, (2 * i + 1) * BF16_U) * most,
               "activation %d: max error %.3g, largest value %.3g", i, err, most);
        // The atlas of this activation (the output as a picture) against the CPU's tiles.
        int c, w, h;
        act_shape(m, i, &c, &w, &h);
        TileGeom tg = {c, c == 3 && i == m->n_layers ? 1 : 4, w, h, w, h, 2, 1, i == m->n_layers, 90, 24};
        int bw, bh;
        tiles_size(&tg, &bw, &bh);
        size_t pitch = 4 * (size_t)(bw + 4), bytes = pitch * (size_t)(bh + 2);
        uint8_t *want = (uint8_t *)tb_calloc(bytes, 1), *got = (uint8_t *)tb_calloc(bytes, 1);
        tiles_draw(want, pitch, 4, g, &tg, (const uint8_t(*)[3])lut);
        cudaCheck(cudaMalloc((void **)&d_pic, bytes));
        cudaCheck(cudaMemset(d_pic, 0, bytes));
        backend_cuda_atlas_rgba(t->gpu, i, &tg, d_lut, d_pic, pitch);
        cudaCheck(cudaStreamSynchronize((cudaStream_t)backend_cuda_stream(t->gpu)));
        cudaCheck(cudaMemcpy(got, d_pic, bytes, cudaMemcpyDeviceToHost));
        EXPECT(memcmp(got, want, bytes) == 0, "atlas of activation %d: differs from tiles_draw", i);
        cudaFree(d_pic);
        free(want), free(got), free(a), free(g);
    }
    cudaFree(d_lut);
    int nb = model_bottleneck_act(m);
    float *code = hnew(m->act_n[nb]);
    t->cpu->get_activation(t->cpu, nb, code);
    uint8_t oc[48 * 32 * 3], og[48 * 32 * 3];
    t->cpu->decode(t->cpu, code, oc);
    t->gpu->decode(t->gpu, code, og);
    int maxd = 0;
    for (size_t i = 0; i < sizeof oc; i++) maxd = abs((int)oc[i] - (int)og[i]) > maxd ? abs((int)oc[i] - (int)og[i]) : maxd;
    EXPECT(maxd <= bf16_tol(1, 4), "decode: max byte difference %d", maxd);
    free(code);
}

// What crosses the table keeps PyTorch's layout in both device layouts:
// parameters and optimizer state (SGD's one block, Adam's two) come back bit
// for bit as they were set, whatever the device holds them in.
TEST_IMPL(params_and_state_round_trip) {
    Training *t = training();
    if (!t) return;
    size_t n = t->m.n_params;
    float *p = hnew(2 * n), *q = hnew(2 * n);
    fill(p, 2 * n, -1, 1);
    t->gpu->set_params(t->gpu, p);
    t->gpu->get_params(t->gpu, q);
    EXPECT(memcmp(p, q, n * sizeof(float)) == 0, "params: not the bits set");
    for (int opt = OPT_SGD; opt <= OPT_ADAM; opt++) {
        size_t k = opt == OPT_ADAM ? 2 * n : n;
        memset(q, 0, 2 * n * sizeof(float));
        t->gpu->set_opt_state(t->gpu, p, opt);
        t->gpu->get_opt_state(t->gpu, q, opt);
        EXPECT(memcmp(p, q, k * sizeof(float)) == 0, "optimizer %d state: not the bits set", opt);
    }
    t->gpu->reset_opt_state(t->gpu);
    free(p), free(q);
}

// TABULA_CUDA_LAYOUT other than nchw or nhwc: creation fails, naming the
// value and the two allowed. The value in force is restored after.
TEST_IMPL(bad_layout_is_refused) {
    Training *t = training();
    if (!t) return;
    const char *was = getenv("TABULA_CUDA_LAYOUT");
    char keep[32] = "";
    if (was) snprintf(keep, sizeof keep, "%s", was);
    printf("layout: %s\n", was ? keep : "nchw (default)");
    setenv("TABULA_CUDA_LAYOUT", "NHWC8", 1);
    TbErr err = {{0}};
    Backend *be = backend_create("cuda", &t->m, 1, &err);
    EXPECT(be == NULL, "TABULA_CUDA_LAYOUT=NHWC8 accepted");
    EXPECT(strstr(err.msg, "TABULA_CUDA_LAYOUT=NHWC8") && strstr(err.msg, "nchw or nhwc"),
           "the error does not name the value and the two allowed: %s", err.msg);
    printf("NHWC8: %s\n", err.msg);
    if (be) backend_destroy(be);
    if (was) setenv("TABULA_CUDA_LAYOUT", keep, 1);
    else unsetenv("TABULA_CUDA_LAYOUT");
}

// TABULA_CUDA_DTYPE other than fp32 or bf16: creation fails, naming the
// value and the two allowed. The value in force is restored after.
TEST_IMPL(bad_dtype_is_refused) {
    Training *t = training();
    if (!t) return;
    const char *was = getenv("TABULA_CUDA_DTYPE");
    char keep[32] = "";
    if (was) snprintf(keep, sizeof keep, "%s", was);
    printf("activations: %s\n", was ? keep : "fp32 (default)");
    setenv("TABULA_CUDA_DTYPE", "fp16", 1);
    TbErr err = {{0}};
    Backend *be = backend_create("cuda", &t->m, 1, &err);
    EXPECT(be == NULL, "TABULA_CUDA_DTYPE=fp16 accepted");
    EXPECT(strstr(err.msg, "TABULA_CUDA_DTYPE=fp16") && strstr(err.msg, "fp32 or bf16"),
           "the error does not name the value and the two allowed: %s", err.msg);
    printf("fp16: %s\n", err.msg);
    if (be) backend_destroy(be);
    if (was) setenv("TABULA_CUDA_DTYPE", keep, 1);
    else unsetenv("TABULA_CUDA_DTYPE");
}

// The parity cases rely on it: TABULA_NO_TF32=1 (set by main) turns TF32 off.
TEST_IMPL(tf32_off) { EXPECT(!cuda_tf32_enabled(), "TF32 still on with TABULA_NO_TF32=1"); }
#endif  // TABULA_HAVE_CUDA

// TABULA_REQUIRE_CUDA=1 (bench/gpu_session.sh sets it on the GPU machine): a
// GPU that cannot be used is a failure, named, not a skip.
static int require_cuda(void) {
    const char *r = getenv("TABULA_REQUIRE_CUDA");
    return r && strcmp(r, "1") == 0;
}

static int no_gpu(const char *why) {
    if (require_cuda()) {
        fprintf(stderr, "FAIL: TABULA_REQUIRE_CUDA=1 but %s\n", why);
        return 1;
    }
    TEST_SKIP("%s", why);
}

// Not TEST_MAIN: the cases share a cuDNN handle and a stream made here, after
// the whole program has skipped if there is no GPU, and freed after them.
int main(int argc, char **argv) {
#ifndef TABULA_HAVE_CUDA
    (void)argc, (void)argv;
    return no_gpu("built without the CUDA backend");
#else
    // Before anything touches cuDNN: FMA math, so CUDA and CPU agree to rounding.
    setenv("TABULA_NO_TF32", "1", 1);
    TbErr err = {{0}};
    if (!cuda_available(&err)) return no_gpu(err.msg);
    tb_rng_seed(&rng, 42);
    cudnnCheck(cudnnCreate(&g_cudnn));
    cudaCheck(cudaStreamCreate(&g_stream));

    static const TestCase cases[] = {
        TEST_ENTRY(tf32_off),
        TEST_ENTRY(conv2d),
        TEST_ENTRY(convt2d),
        TEST_ENTRY(bias_act),
        TEST_ENTRY(mse_forward_backward),
        TEST_ENTRY(l1_forward_backward),
        TEST_ENTRY(grad_norm),
        TEST_ENTRY(sgd_update),
        TEST_ENTRY(adam_update),
        TEST_ENTRY(stats_record),
        TEST_ENTRY(frame_conversions),
        TEST_ENTRY(training_sgd_graphs),
        TEST_ENTRY(step_work),
        TEST_ENTRY(frames_kept_on_device),
        TEST_ENTRY(output_rgba_matches_get_output),
        TEST_ENTRY(output_recent_never_waits),
        TEST_ENTRY(interop_extras_on_their_device),
        TEST_ENTRY(trainer_sends_each_frame_once),
        TEST_ENTRY(targets_apart_match_cpu),
        TEST_ENTRY(forward_only_matches_cpu),
        TEST_ENTRY(training_adam_graphs),
        TEST_ENTRY(training_sgd_eager),
        TEST_ENTRY(capture_failure_falls_back_to_eager),
        TEST_ENTRY(deterministic_runs_repeat_bit_for_bit),
        TEST_ENTRY(training_loss_switch_graphs), TEST_ENTRY(training_converges_as_cpu),
        TEST_ENTRY(lerp),
        TEST_ENTRY(slots_match_cpu),
        TEST_ENTRY(coupling_matches_cpu), TEST_ENTRY(weights_in_use_after_changes),
        TEST_ENTRY(coupling_waits_for_every_step),
        TEST_ENTRY(coupling_repeated_set_changes),
        TEST_ENTRY(bottleneck),
        TEST_ENTRY(bottleneck_training_matches_cpu),
        TEST_ENTRY(activations_decode_atlas_match_cpu),
        TEST_ENTRY(params_and_state_round_trip),
        TEST_ENTRY(bad_layout_is_refused),
        TEST_ENTRY(bad_dtype_is_refused),
    };
    int rc = test_run(cases, sizeof cases / sizeof cases[0], argc, argv);

    training_free();
    cudaCheck(cudaStreamDestroy(g_stream));
    cudnnCheck(cudnnDestroy(g_cudnn));
    return rc;
#endif
}
