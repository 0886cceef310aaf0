// test_kernel_host.cc: why it exists: this machine and most CI machines have
// no GPU, so the hand-written kernels (kernels/*.cu) are otherwise only ever
// compiled. Here each one runs on the host over the grid its launcher chooses
// (cuda_host.h: blocks in turn, a block's threads as cooperating contexts) and
// is held to its CPU twin in ops.h, on fresh seeded random inputs of several
// sizes, odd ones included (part-filled blocks, grid-stride loops, several
// reduction chunks). Every case runs twice, threads and blocks in forward and
// in reverse order, and the two must agree bit for bit. The last cases prove
// the tool can fail: a launch one block short, a write one past the end, a
// barrier or a shuffle not every thread reaches, a race on shared memory.
//
// Tolerances (the kernels are written to give the CPU's IEEE results):
//   - elementwise ops (bias+act, the loss gradients, frames, lerp) and the
//     atlas's tiles (their min and max found by comparisons, in any order):
//     the same bits as the CPU op;
//   - the optimizer updates: within 8 float ulps of the largest value, since
//     the CPU op is built with -march=native, where the compiler may fuse
//     a*b+c into one rounding, and the host kernels are built without fusing;
//   - reductions in double (losses, norm) sum in another order: the double
//     sums differ by about n * 2^-53 of the total, so the float results are
//     equal or one rounding apart: relative 2^-22 (2^-23 for the norm);
//   - the bias gradient with several chunks per channel rounds each chunk's
//     partial to float before the final sum: |error| <= (chunks + 2) * 2^-24
//     * sum |d| over the channel;
//   - the bottleneck: dropped channels exactly +0, the backward pass and the
//     forward pass without noise the CPU's bits; with noise the draws go
//     through logf and cosf, whose last bits differ between the device and
//     glibc: |error| <= |m| a |g| 2^-20 + 2^-21 |y| (see bn_noise_far);
//   - the bfloat16 forms (bf16_* cases): the CPU result on the same
//     bfloat16 inputs rounded once to bfloat16, bit for bit (derivation at
//     those cases).
// Measured (each case prints its worst error as a fraction of its bound): the
// updates within one ulp (0.12 of the bound), the bias gradients 0.015 of
// theirs (0.042 in NHWC, whose column sums take more chunks); the losses and the norm gave the CPU's bits on these inputs; the
// bottleneck's noise too (0 of its bound: here the kernel calls the same glibc
// logf and cosf as the CPU op, so the bound is for the device). Each
// bound was checked to fail when the kernel is broken slightly: a shuffle
// offset, block_sum's barrier, one partial skipped, sigmoid' multiplied in
// another order (one rounding), clipping ignored, Adam's (1 - beta1); for the
// bottleneck 2*pi one float step off (227 times the bound), the draw of the
// next index, the noise added after the mask, a 32-bit pass, the mask by
// i % C, noise on for a negative amplitude, the +0 of a dropped channel, the
// last element skipped, the counter moved by 2.
#include <stdio.h>
#include <string.h>

#include <vector>

#include <cuda_bf16.h>

#include "ops_cuda.h"
#include "test.h"

// Kernels of kernels/*.cu the negative checks launch wrongly on purpose.
template <typename T>
__global__ void tensor_to_frame_kernel(uint8_t *rgb, const T *x, int HW, size_t cs, int ps);
__global__ void lerp_kernel(float *w, const float *s, size_t n, float a);

// One seeded generator; the cases draw from it in list order.
static TbRng rng = [] {
    TbRng r;
    tb_rng_seed(&r, 20261129);
    return r;
}();

// ---------------------------------------------------------------- helpers

template <typename T>
static T *dnew(size_t n) {
    void *p = NULL;
    cudaCheck(cudaMalloc(&p, (n ? n : 1) * sizeof(T)));  // poisoned: 0xFF bytes
    return (T *)p;
}

template <typename T>
static void up(T *d, const std::vector<T> &h) {
    cudaCheck(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
}

template <typename T>
static std::vector<T> down(const T *d, size_t n) {
    std::vector<T> h(n);
    cudaCheck(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

static std::vector<float> randv(size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (float &x : v) x = lo + (hi - lo) * tb_rng_uniform(&rng);
    return v;
}

// B samples of C channels x HW between NCHW and the kernels' layout (NHWC:
// channels last); lay takes NCHW to it, unlay back. The cases hold the
// kernels to the CPU ops in NCHW order either way.
static std::vector<float> relay(const std::vector<float> &v, int B, int C, int HW, int layout,
                                int to_kernel) {
    if (layout == TB_NCHW) return v;
    std::vector<float> o(v.size());
    for (size_t b = 0; b < (size_t)B; b++)
        for (size_t c = 0; c < (size_t)C; c++)
            for (size_t p = 0; p < (size_t)HW; p++) {
                size_t nchw = (b * C + c) * HW + p, nhwc = (b * HW + p) * C + c;
                if (to_kernel) o[nhwc] = v[nchw];
                else o[nchw] = v[nhwc];
            }
    return o;
}
static std::vector<float> lay(const std::vector<float> &v, int B, int C, int HW, int layout) {
    return relay(v, B, C, HW, layout, 1);
}
static std::vector<float> unlay(const std::vector<float> &v, int B, int C, int HW, int layout) {
    return relay(v, B, C, HW, layout, 0);
}

// Elements whose bits differ.
template <typename T>
static size_t diff_bits(const std::vector<T> &a, const std::vector<T> &b) {
    size_t k = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); i++) k += memcmp(&a[i], &b[i], sizeof(T)) != 0;
    return k + (a.size() > b.size() ? a.size() - b.size() : b.size() - a.size());
}

// Largest |a-b| in units of the float ulp of the largest |b| (NaN: infinite).
static double ulps_of_max(const std::vector<float> &a, const std::vector<float> &b) {
    return max_rel_err(a.data(), b.data(), a.size(), 1e-30) / ldexp(1.0, -23);
}

static float rel(float got, float want) {
    return fabsf(got - want) / (fabsf(want) > 1e-30f ? fabsf(want) : 1e-30f);
}

// Runs run(order) in forward and reverse order: both results must have the
// same bits; returns the forward one. The emulator must have seen no misuse.
template <typename F>
static auto both_orders(const char *what, F run) -> decltype(run()) {
    kh_clear();
    kh_set_reverse(0);
    auto fwd = run();
    kh_set_reverse(1);
    auto rev = run();
    kh_set_reverse(0);
    EXPECT(diff_bits(fwd, rev) == 0, "%s: %zu elements differ between thread orders", what,
           diff_bits(fwd, rev));
    EXPECT(kh_errors() == 0, "%s: %s", what, kh_first_error());
    return fwd;
}

// The worst measured error of a case as a fraction of its bound (printed).
static double worst;
static void note(double err, double bound) {
    if (err / bound > worst) worst = err / bound;
}
static void print_worst(const char *what) {
    printf("  %s: worst error %.3g of its bound\n", what, worst);
    worst = 0;
}

struct Shape {
    int B, C, HW;
};
// The last two: NHWC's channel tiles (32 lanes), whole and part-filled.
static const Shape kShapes[] = {{1, 1, 1}, {2, 3, 255}, {3, 5, 257}, {1, 4, 1000}, {2, 2, 4097},
                                {2, 3, 5000}, {4, 2, 70000}, {2, 64, 129}, {2, 40, 2100}};
static const size_t kSizes[] = {1, 31, 256, 257, 1000, 65537, 300001};  // 300001: grid-stride

// ---------------------------------------------------------------- act.cu

static void check_bias_act_forward(int layout) {
    for (const Shape &s : kShapes) {
        size_t n = (size_t)s.B * s.C * s.HW;
        for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
            for (int with_b = 0; with_b < 2; with_b++) {
                std::vector<float> y = randv(n, -4, 4), b = randv((size_t)s.C, -1, 1), want = y;
                bias_act_forward(want.data(), with_b ? b.data() : NULL, s.B, s.C, s.HW, act, 0.2f);
                float *dy = dnew<float>(n), *db = dnew<float>((size_t)s.C);
                up(db, b);
                char what[96];
                snprintf(what, sizeof what, "bias_act_forward %dx%dx%d act %d bias %d", s.B, s.C,
                         s.HW, act, with_b);
                auto got = both_orders(what, [&] {
                    up(dy, lay(y, s.B, s.C, s.HW, layout));
                    bias_act_forward_cuda(dy, with_b ? db : NULL, s.B, s.C, s.HW, act, 0.2f, layout, NULL);
                    return unlay(down(dy, n), s.B, s.C, s.HW, layout);
                });
                EXPECT(diff_bits(got, want) == 0, "%s: %zu of %zu differ", what,
                       diff_bits(got, want), n);
                cudaFree(dy);
                cudaFree(db);
            }
        }
    }
}
TEST_IMPL(bias_act_forward) { check_bias_act_forward(TB_NCHW); }
TEST_IMPL(bias_act_forward_nhwc) { check_bias_act_forward(TB_NHWC); }

// The bias gradient's bound (top of file) for channel c of the CPU's new d.
static double db_bound(const std::vector<float> &d, const Shape &s, int c, int chunks) {
    double sum_abs = 0;
    for (int b = 0; b < s.B; b++)
        for (int p = 0; p < s.HW; p++) sum_abs += fabs(d[((size_t)b * s.C + c) * s.HW + p]);
    return (chunks + 2) * ldexp(1.0, -24) * sum_abs + 1e-30;
}

static void check_bias_act_backward(int layout) {
    for (const Shape &s : kShapes) {
        size_t n = (size_t)s.B * s.C * s.HW, ns = bias_act_backward_scratch(s.B, s.C, s.HW, layout);
        int chunks = ns ? (int)(ns / (size_t)s.C) : 1;
        for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
            std::vector<float> d = randv(n, -1, 1), y = randv(n, -1, 1);
            if (act == ACT_SIGMOID) y = randv(n, 0, 1);  // an output of the sigmoid
            std::vector<float> want = d, want_db((size_t)s.C);
            bias_act_backward(want.data(), want_db.data(), y.data(), s.B, s.C, s.HW, act, 0.2f);
            float *dd = dnew<float>(n), *dout = dnew<float>(n), *ddb = dnew<float>((size_t)s.C);
            float *scratch = ns ? dnew<float>(ns) : NULL;
            unsigned *done = dnew<unsigned>(1);
            cudaMemset(done, 0, sizeof(unsigned));
            up(dout, lay(y, s.B, s.C, s.HW, layout));
            for (int with_db = 0; with_db < 2; with_db++) {
                char what[96];
                snprintf(what, sizeof what, "bias_act_backward %dx%dx%d act %d db %d (%d chunks)",
                         s.B, s.C, s.HW, act, with_db, chunks);
                auto got = both_orders(what, [&] {
                    up(dd, lay(d, s.B, s.C, s.HW, layout));
                    cudaMemset(ddb, 0xFF, (size_t)s.C * sizeof(float));
                    bias_act_backward_cuda(dd, with_db ? ddb : NULL, dout, s.B, s.C, s.HW, act,
                                           0.2f, scratch, done, layout, NULL);
                    EXPECT(down(done, 1)[0] == 0, "%s: counter left at %u", what, down(done, 1)[0]);
                    std::vector<float> out = unlay(down(dd, n), s.B, s.C, s.HW, layout), g = down(ddb, (size_t)s.C);
                    if (with_db) out.insert(out.end(), g.begin(), g.end());
                    return out;
                });
                std::vector<float> got_d(got.begin(), got.begin() + (long)n);
                EXPECT(diff_bits(got_d, want) == 0, "%s: d: %zu of %zu differ", what,
                       diff_bits(got_d, want), n);
                for (int c = 0; with_db && c < s.C; c++) {
                    double err = fabs((double)got[n + c] - want_db[c]);
                    note(err, db_bound(want, s, c, chunks));
                    EXPECT(err <= db_bound(want, s, c, chunks), "%s: db[%d] %.9g vs %.9g", what,
                           c, got[n + c], want_db[c]);
                }
            }
            cudaFree(dd);
            cudaFree(dout);
            cudaFree(ddb);
            cudaFree(scratch);
            cudaFree(done);
        }
    }
    print_worst("bias gradient");
}
TEST_IMPL(bias_act_backward) { check_bias_act_backward(TB_NCHW); }
TEST_IMPL(bias_act_backward_nhwc) { check_bias_act_backward(TB_NHWC); }

// The output layer's fused end of a step against the CPU ops in sequence:
// bias_act_forward, the loss with its gradient, bias_act_backward. y and dy
// give the CPU's bits; the loss is held to the losses' bound, the bias
// gradient to the bias gradient's (its partials are doubles here, tighter).
// Run twice in a row on the same counter: a launch leaves it ready.
static void check_out_act_loss(int layout) {
    static const Shape shapes[] = {{1, 3, 1}, {2, 3, 255}, {1, 3, 4097}, {2, 3, 70000},
                                   {3, 1, 5000}, {2, 40, 300}};
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    unsigned *done = dnew<unsigned>(1);
    float *dloss = dnew<float>(1);
    cudaMemset(done, 0, sizeof(unsigned));
    for (const Shape &s : shapes) {
        size_t n = (size_t)s.B * s.C * s.HW, ns = bias_act_backward_scratch(s.B, s.C, s.HW, layout);
        int chunks = ns ? (int)(ns / (size_t)s.C) : 1;
        for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
            for (int loss = LOSS_MSE; loss <= LOSS_L1; loss++) {
                std::vector<float> y = randv(n, -3, 3), b = randv((size_t)s.C, -1, 1);
                std::vector<float> t = randv(n, 0, 1);
                std::vector<float> want_y = y, want_dy(n), want_db((size_t)s.C);
                bias_act_forward(want_y.data(), b.data(), s.B, s.C, s.HW, act, 0.2f);
                for (size_t i = 0; i < n; i += 7) t[i] = want_y[i];  // zero errors: sign(0) = 0
                float want_loss =
                    loss == LOSS_L1
                        ? l1_forward_backward_ref(want_dy.data(), want_y.data(), t.data(), n)
                        : mse_forward_backward(want_dy.data(), want_y.data(), t.data(), n);
                bias_act_backward(want_dy.data(), want_db.data(), want_y.data(), s.B, s.C, s.HW,
                                  act, 0.2f);
                float *dy = dnew<float>(n), *ddy = dnew<float>(n), *dt = dnew<float>(n);
                float *db = dnew<float>((size_t)s.C), *ddb = dnew<float>((size_t)s.C);
                up(db, b);
                up(dt, lay(t, s.B, s.C, s.HW, layout));
                char what[96];
                snprintf(what, sizeof what, "out_act_loss %dx%dx%d act %d loss %d", s.B, s.C,
                         s.HW, act, loss);
                for (int rep = 0; rep < 2; rep++) {
                    auto got = both_orders(what, [&] {
                        up(dy, lay(y, s.B, s.C, s.HW, layout));
                        out_act_loss_cuda(dy, ddy, ddb, dloss, db, dt, s.B, s.C, s.HW, act, 0.2f,
                                          loss, scratch, done, layout, NULL);
                        std::vector<float> out = unlay(down(dy, n), s.B, s.C, s.HW, layout),
                                           g = unlay(down(ddy, n), s.B, s.C, s.HW, layout),
                                           gb = down(ddb, (size_t)s.C);
                        out.insert(out.end(), g.begin(), g.end());
                        out.insert(out.end(), gb.begin(), gb.end());
                        out.push_back(down(dloss, 1)[0]);
                        return out;
                    });
                    EXPECT(down(done, 1)[0] == 0, "%s: counter left at %u", what, down(done, 1)[0]);
                    std::vector<float> got_y(got.begin(), got.begin() + (long)n);
                    std::vector<float> got_dy(got.begin() + (long)n, got.begin() + 2 * (long)n);
                    EXPECT(diff_bits(got_y, want_y) == 0, "%s: y: %zu of %zu differ", what,
                           diff_bits(got_y, want_y), n);
                    EXPECT(diff_bits(got_dy, want_dy) == 0, "%s: dy: %zu of %zu differ", what,
                           diff_bits(got_dy, want_dy), n);
                    float got_loss = got.back();
                    note(rel(got_loss, want_loss), ldexp(1.0, -22));
                    EXPECT(rel(got_loss, want_loss) <= ldexp(1.0, -22), "%s: loss %.9g vs %.9g",
                           what, got_loss, want_loss);
                    for (int c = 0; c < s.C; c++) {
                        double err = fabs((double)got[2 * n + c] - want_db[c]);
                        note(err, db_bound(want_dy, s, c, chunks));
                        EXPECT(err <= db_bound(want_dy, s, c, chunks), "%s: db[%d] %.9g vs %.9g",
                               what, c, got[2 * n + c], want_db[c]);
                    }
                }
                cudaFree(dy);
                cudaFree(ddy);
                cudaFree(dt);
                cudaFree(db);
                cudaFree(ddb);
            }
        }
    }
    cudaFree(scratch);
    cudaFree(done);
    cudaFree(dloss);
    print_worst("out_act_loss");
}
TEST_IMPL(out_act_loss) { check_out_act_loss(TB_NCHW); }
TEST_IMPL(out_act_loss_nhwc) { check_out_act_loss(TB_NHWC); }

// ---------------------------------------------------------------- loss.cu

typedef float (*CpuLoss)(float *dy, const float *y, const float *t, size_t n);
typedef void (*CudaLoss)(float *dy, float *loss, const float *y, const float *t, size_t n,
                         double *scratch, cudaStream_t stream);

static void check_loss(const char *name, CpuLoss cpu, CudaLoss gpu) {
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    for (size_t n : kSizes) {
        std::vector<float> y = randv(n, -1, 1), t = randv(n, -1, 1);
        for (size_t i = 0; i < n; i += 7) t[i] = y[i];  // zero errors: sign(0) = 0
        float *dy = dnew<float>(n), *dt = dnew<float>(n), *ddy = dnew<float>(n);
        float *dloss = dnew<float>(1);
        up(dy, y);
        up(dt, t);
        for (int with_dy = 0; with_dy < 2; with_dy++) {
            std::vector<float> want(n);
            float want_loss = cpu(with_dy ? want.data() : NULL, y.data(), t.data(), n);
            char what[96];
            snprintf(what, sizeof what, "%s n %zu dy %d", name, n, with_dy);
            auto got = both_orders(what, [&] {
                gpu(with_dy ? ddy : NULL, dloss, dy, dt, n, scratch, NULL);
                std::vector<float> out = down(ddy, n);
                out.push_back(down(dloss, 1)[0]);
                return out;
            });
            note(rel(got[n], want_loss), ldexp(1.0, -22));
            EXPECT(rel(got[n], want_loss) <= ldexp(1.0, -22), "%s: loss %.9g vs %.9g", what,
                   got[n], want_loss);
            got.pop_back();
            EXPECT(!with_dy || diff_bits(got, want) == 0, "%s: dy: %zu of %zu differ", what,
                   diff_bits(got, want), n);
        }
        cudaFree(dy);
        cudaFree(dt);
        cudaFree(ddy);
        cudaFree(dloss);
    }
    cudaFree(scratch);
    print_worst(name);
}

TEST_IMPL(mse) { check_loss("mse", mse_forward_backward, mse_forward_backward_cuda); }
TEST_IMPL(l1) { check_loss("l1", l1_forward_backward_ref, l1_forward_backward_cuda); }

// ---------------------------------------------------------------- optim.cu

TEST_IMPL(grad_norm) {
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    float *dnorm = dnew<float>(1);
    for (size_t n : kSizes) {
        std::vector<float> g = randv(n, -2, 2);
        float *dg = dnew<float>(n);
        up(dg, g);
        float want = grad_norm(g.data(), n);
        auto got = both_orders("grad_norm", [&] {
            grad_norm_cuda(dnorm, dg, n, scratch, NULL);
            return down(dnorm, 1);
        });
        note(rel(got[0], want), ldexp(1.0, -23));
        EXPECT(rel(got[0], want) <= ldexp(1.0, -23), "grad_norm n %zu: %.9g vs %.9g", n, got[0],
               want);
        cudaFree(dg);
    }
    cudaFree(scratch);
    cudaFree(dnorm);
    print_worst("norm");
}

// Three steps of SGD or Adam on device and CPU, clipping off and on (the clip
// half the norm, so it scales). The device reads the norm it computed itself.
static void check_update(int optimizer) {
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    float *dnorm = dnew<float>(1);
    StepParams *dp = dnew<StepParams>(1);
    for (size_t n : {(size_t)1, (size_t)257, (size_t)70001}) {
        for (int clipped = 0; clipped < 2; clipped++) {
            std::vector<float> w = randv(n, -1, 1), m(n, 0.0f), v(n, 0.0f);
            float *dw = dnew<float>(n), *dm = dnew<float>(n), *dv = dnew<float>(n);
            float *dg = dnew<float>(n);
            up(dw, w);
            up(dm, m);
            up(dv, v);
            Hyper h = {};
            h.optimizer = optimizer;
            h.lr = optimizer == OPT_ADAM ? 1e-3f : 0.01f;
            h.momentum = 0.9f;
            h.weight_decay = 1e-4f;
            h.beta1 = 0.9f;
            h.beta2 = 0.999f;
            h.eps = 1e-8f;
            for (h.t = 1; h.t <= 3; h.t++) {
                std::vector<float> g = randv(n, -2, 2);
                up(dg, g);
                float norm = grad_norm(g.data(), n);
                h.clip = clipped ? 0.5f * norm : 0.0f;
                float scale = clip_scale(norm, h.clip);
                if (optimizer == OPT_ADAM)
                    adam_update(w.data(), m.data(), v.data(), g.data(), n, scale, h.lr, h.beta1,
                                h.beta2, h.eps, h.weight_decay, h.t);
                else
                    sgd_update(w.data(), m.data(), g.data(), n, scale, h.lr, h.momentum,
                               h.weight_decay);
                StepParams p;
                step_params_fill(&p, &h, 0);
                cudaCheck(cudaMemcpy(dp, &p, sizeof p, cudaMemcpyHostToDevice));
                grad_norm_cuda(dnorm, dg, n, scratch, NULL);
                if (optimizer == OPT_ADAM)
                    adam_update_cuda(dw, dm, dv, dg, n, dnorm, dp, NULL);
                else
                    sgd_update_cuda(dw, dm, dg, n, dnorm, dp, NULL);
                EXPECT(kh_errors() == 0, "%s", kh_first_error());
            }
            double ew = ulps_of_max(down(dw, n), w), em = ulps_of_max(down(dm, n), m);
            note(fmax(ew, em), 8);
            EXPECT(ew <= 8 && em <= 8, "%s n %zu clipped %d: w %.3g, state %.3g ulps",
                   optimizer == OPT_ADAM ? "adam" : "sgd", n, clipped, ew, em);
            if (optimizer == OPT_ADAM) {
                double ev = ulps_of_max(down(dv, n), v);
                note(ev, 8);
                EXPECT(ev <= 8, "adam n %zu clipped %d: v %.3g ulps", n, clipped, ev);
            }
            cudaFree(dw);
            cudaFree(dm);
            cudaFree(dv);
            cudaFree(dg);
        }
    }
    cudaFree(scratch);
    cudaFree(dnorm);
    cudaFree(dp);
    print_worst(optimizer == OPT_ADAM ? "adam" : "sgd");
}

TEST_IMPL(sgd_update) { check_update(OPT_SGD); }
TEST_IMPL(adam_update) { check_update(OPT_ADAM); }

// Several launches of the whole update in both orders give the same bits.
TEST_IMPL(update_same_bits_either_order) {
    size_t n = 70001;
    std::vector<float> w = randv(n, -1, 1), g = randv(n, -2, 2);
    float *dw = dnew<float>(n), *dm = dnew<float>(n), *dv = dnew<float>(n), *dg = dnew<float>(n);
    float *dnorm = dnew<float>(1);
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    StepParams *dp = dnew<StepParams>(1);
    Hyper h = {OPT_ADAM, LOSS_MSE, 1e-3f, 0.9f, 1.0f, 1e-4f, 0.9f, 0.999f, 1e-8f, 1};
    StepParams p;
    step_params_fill(&p, &h, 0);
    cudaMemcpy(dp, &p, sizeof p, cudaMemcpyHostToDevice);
    up(dg, g);
    both_orders("adam step", [&] {
        up(dw, w);
        cudaMemset(dm, 0, n * sizeof(float));
        cudaMemset(dv, 0, n * sizeof(float));
        grad_norm_cuda(dnorm, dg, n, scratch, NULL);
        adam_update_cuda(dw, dm, dv, dg, n, dnorm, dp, NULL);
        return down(dw, n);
    });
    cudaFree(dw);
    cudaFree(dm);
    cudaFree(dv);
    cudaFree(dg);
    cudaFree(dnorm);
    cudaFree(scratch);
    cudaFree(dp);
}

// The norm and the stats record in one launch: the norm as grad_norm's bound,
// the ring slot written with the loss and that norm, the counter left at 0.
TEST_IMPL(grad_norm_stats) {
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    float *dnorm = dnew<float>(1), *dloss = dnew<float>(1);
    unsigned *done = dnew<unsigned>(1);
    StepStats *ring = dnew<StepStats>(TB_STATS_RING);
    StepParams *dp = dnew<StepParams>(1);
    cudaMemset(done, 0, sizeof(unsigned));
    up(dloss, std::vector<float>{0.125f});
    int slot = 0;
    for (size_t n : kSizes) {
        std::vector<float> g = randv(n, -2, 2);
        float *dg = dnew<float>(n);
        up(dg, g);
        float want = grad_norm(g.data(), n);
        StepParams p = {};
        p.slot = slot = (slot + 3) % TB_STATS_RING;
        cudaMemcpy(dp, &p, sizeof p, cudaMemcpyHostToDevice);
        auto got = both_orders("grad_norm_stats", [&] {
            cudaMemset(ring, 0, TB_STATS_RING * sizeof(StepStats));
            grad_norm_stats_cuda(dnorm, ring, dloss, dp, dg, n, scratch, done, NULL);
            std::vector<float> out = down(dnorm, 1);
            std::vector<StepStats> r = down(ring, TB_STATS_RING);
            for (const StepStats &e : r) out.push_back(e.loss), out.push_back(e.grad_norm);
            return out;
        });
        note(rel(got[0], want), ldexp(1.0, -23));
        EXPECT(rel(got[0], want) <= ldexp(1.0, -23), "grad_norm_stats n %zu: %.9g vs %.9g", n,
               got[0], want);
        for (int i = 0; i < TB_STATS_RING; i++) {
            float l = got[1 + 2 * i], gn = got[2 + 2 * i];
            if (i == slot)
                EXPECT(l == 0.125f && gn == got[0], "slot %d: %g %g", i, l, gn);
            else
                EXPECT(l == 0 && gn == 0, "slot %d written (%g %g), only %d asked", i, l, gn, slot);
        }
        EXPECT(down(done, 1)[0] == 0, "grad_norm_stats: counter left at %u", down(done, 1)[0]);
        cudaFree(dg);
    }
    cudaFree(scratch);
    cudaFree(dnorm);
    cudaFree(dloss);
    cudaFree(done);
    cudaFree(ring);
    cudaFree(dp);
    print_worst("norm + stats");
}

TEST_IMPL(stats_record) {
    StepStats *ring = dnew<StepStats>(TB_STATS_RING);
    float *dloss = dnew<float>(1), *dnorm = dnew<float>(1);
    StepParams *dp = dnew<StepParams>(1);
    up(dloss, std::vector<float>{0.25f});
    up(dnorm, std::vector<float>{3.5f});
    cudaMemset(ring, 0, TB_STATS_RING * sizeof(StepStats));
    for (int slot : {5, TB_STATS_RING - 1, TB_STATS_RING, -1}) {  // the last two: ignored
        StepParams p = {};
        p.slot = slot;
        cudaMemcpy(dp, &p, sizeof p, cudaMemcpyHostToDevice);
        stats_record_cuda(ring, dloss, dnorm, dp, NULL);
    }
    std::vector<StepStats> got = down(ring, TB_STATS_RING);
    int written = 0;
    for (int i = 0; i < TB_STATS_RING; i++) written += got[i].loss != 0.0f;
    EXPECT(written == 2, "%d slots written, 2 expected", written);
    EXPECT(got[5].loss == 0.25f && got[5].grad_norm == 3.5f, "slot 5: %g %g", got[5].loss,
           got[5].grad_norm);
    EXPECT(got[TB_STATS_RING - 1].loss == 0.25f, "last slot %g", got[TB_STATS_RING - 1].loss);
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
    cudaFree(ring);
    cudaFree(dloss);
    cudaFree(dnorm);
    cudaFree(dp);
}

// ---------------------------------------------------------------- frame.cu

struct Size2 {
    int H, W;
};
static const Size2 kFrames[] = {{1, 1}, {5, 7}, {16, 17}, {9, 33}, {31, 40}};

static void check_frame_to_tensor(int layout) {
    const int B = 3;
    for (const Size2 &f : kFrames) {
        size_t hw = (size_t)f.H * f.W;
        std::vector<uint8_t> rgb(B * hw * 3);
        for (uint8_t &c : rgb) c = (uint8_t)(tb_rng_u32(&rng) & 255);
        rgb[0] = 0;
        rgb[rgb.size() - 1] = 255;
        std::vector<float> want(B * 3 * hw);
        for (int b = 0; b < B; b++)
            frame_to_tensor(want.data() + b * 3 * hw, rgb.data() + b * hw * 3, f.H, f.W);
        uint8_t *drgb = dnew<uint8_t>(rgb.size());
        float *dx = dnew<float>(want.size());
        up(drgb, rgb);
        auto got = both_orders("frame_to_tensor", [&] {
            frame_to_tensor_cuda(dx, drgb, B, f.H, f.W, layout, NULL);
            return unlay(down(dx, want.size()), B, 3, (int)hw, layout);
        });
        EXPECT(diff_bits(got, want) == 0, "frame_to_tensor %dx%d: %zu differ", f.W, f.H,
               diff_bits(got, want));
        cudaFree(drgb);
        cudaFree(dx);
    }
}
TEST_IMPL(frame_to_tensor) { check_frame_to_tensor(TB_NCHW); }
TEST_IMPL(frame_to_tensor_nhwc) { check_frame_to_tensor(TB_NHWC); }

// The batch gathered from a store of frames by slot numbers in device memory:
// each input and target the CPU's frame_to_tensor of its frame, bit for bit;
// a sample whose target slot is its input slot, and slots used twice.
static void check_frames_gather(int layout) {
    const int S = 5, B = 3;
    const int slots[2][2 * B] = {{4, 0, 4, 4, 0, 4}, {1, 3, 3, 2, 0, 3}};
    for (const Size2 &f : kFrames) {
        size_t hw = (size_t)f.H * f.W, fb = hw * 3;
        std::vector<uint8_t> store(S * fb);
        for (uint8_t &c : store) c = (uint8_t)(tb_rng_u32(&rng) & 255);
        uint8_t *dstore = dnew<uint8_t>(store.size());
        int *dslots = dnew<int>(2 * B);
        float *dx = dnew<float>(B * 3 * hw), *dt = dnew<float>(B * 3 * hw);
        up(dstore, store);
        for (const auto &sl : slots) {
            std::vector<float> want(2 * B * 3 * hw);
            for (int b = 0; b < 2 * B; b++)
                frame_to_tensor(want.data() + b * 3 * hw, store.data() + sl[b] * fb, f.H, f.W);
            up(dslots, std::vector<int>(sl, sl + 2 * B));
            auto got = both_orders("frames_gather", [&] {
                frames_gather_cuda(dx, dt, dstore, dslots, B, f.H, f.W, layout, NULL);
                std::vector<float> out = unlay(down(dx, B * 3 * hw), B, 3, (int)hw, layout),
                                   t = unlay(down(dt, B * 3 * hw), B, 3, (int)hw, layout);
                out.insert(out.end(), t.begin(), t.end());
                return out;
            });
            EXPECT(diff_bits(got, want) == 0, "frames_gather %dx%d: %zu of %zu differ", f.W, f.H,
                   diff_bits(got, want), want.size());
        }
        cudaFree(dstore);
        cudaFree(dslots);
        cudaFree(dx);
        cudaFree(dt);
    }
}
TEST_IMPL(frames_gather) { check_frames_gather(TB_NCHW); }
TEST_IMPL(frames_gather_nhwc) { check_frames_gather(TB_NHWC); }

// A reconstruction with the awkward values: out of range, NaN, infinities,
// exact k/255 and the half-way points (k+0.5)/255 of the rounding.
static std::vector<float> recon(size_t n) {
    std::vector<float> x = randv(n, -0.2f, 1.2f);
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f};
    for (size_t i = 0; i < n; i++) {
        int k = (int)(tb_rng_u32(&rng) % 256);
        if (i % 5 == 1) x[i] = (float)k / 255.0f;
        if (i % 5 == 2) x[i] = ((float)k + 0.5f) / 255.0f;
        if (i % 11 == 3) x[i] = special[i % 6];
    }
    return x;
}

static void check_tensor_to_frame(int layout) {
    for (const Size2 &f : kFrames) {
        size_t hw = (size_t)f.H * f.W;
        std::vector<float> x = recon(3 * hw);
        std::vector<uint8_t> want(hw * 3);
        tensor_to_frame(want.data(), x.data(), f.H, f.W);
        float *dx = dnew<float>(x.size());
        uint8_t *drgb = dnew<uint8_t>(want.size());
        up(dx, lay(x, 1, 3, (int)hw, layout));
        auto got = both_orders("tensor_to_frame", [&] {
            tensor_to_frame_cuda(drgb, dx, f.H, f.W, layout, NULL);
            return down(drgb, want.size());
        });
        EXPECT(diff_bits(got, want) == 0, "tensor_to_frame %dx%d: %zu of %zu bytes differ", f.W,
               f.H, diff_bits(got, want), want.size());
        cudaFree(dx);
        cudaFree(drgb);
    }
}
TEST_IMPL(tensor_to_frame) { check_tensor_to_frame(TB_NCHW); }
TEST_IMPL(tensor_to_frame_nhwc) { check_tensor_to_frame(TB_NHWC); }

static void check_tensor_to_rgba(int layout) {
    for (const Size2 &f : kFrames) {
        size_t hw = (size_t)f.H * f.W, pitch = 4 * (size_t)f.W + 12;
        std::vector<float> x = recon(3 * hw);
        std::vector<uint8_t> rgb(hw * 3), want(pitch * f.H, 0x5A);  // 0x5A: row padding, untouched
        tensor_to_frame(rgb.data(), x.data(), f.H, f.W);
        for (size_t p = 0; p < hw; p++) {
            uint8_t *o = &want[p / f.W * pitch + 4 * (p % f.W)];
            o[0] = rgb[3 * p], o[1] = rgb[3 * p + 1], o[2] = rgb[3 * p + 2], o[3] = 255;
        }
        float *dx = dnew<float>(x.size());
        uint8_t *drgba = dnew<uint8_t>(want.size());
        up(dx, lay(x, 1, 3, (int)hw, layout));
        auto got = both_orders("tensor_to_rgba", [&] {
            cudaMemset(drgba, 0x5A, want.size());
            tensor_to_rgba_cuda(drgba, pitch, dx, f.H, f.W, layout, NULL);
            return down(drgba, want.size());
        });
        EXPECT(diff_bits(got, want) == 0, "tensor_to_rgba %dx%d: %zu of %zu bytes differ", f.W,
               f.H, diff_bits(got, want), want.size());
        cudaFree(dx);
        cudaFree(drgba);
    }
}
TEST_IMPL(tensor_to_rgba) { check_tensor_to_rgba(TB_NCHW); }
TEST_IMPL(tensor_to_rgba_nhwc) { check_tensor_to_rgba(TB_NHWC); }

// ---------------------------------------------------------------- tiles.cu

// A colour map with 256 distinct entries (any will do: the op looks them up).
static std::vector<uint8_t> tile_lut() {
    std::vector<uint8_t> lut(256 * 3);
    for (int i = 0; i < 256; i++) lut[3 * i] = (uint8_t)i, lut[3 * i + 1] = (uint8_t)(255 - i), lut[3 * i + 2] = (uint8_t)(i * 7);
    return lut;
}

// Channels of different scales (as a layer's are), one flat, one with NaN and
// infinities when asked.
static std::vector<float> tile_acts(const TileGeom &g, int odd) {
    size_t hw = (size_t)g.sw * g.sh;
    std::vector<float> x(hw * g.ch);
    for (int c = 0; c < g.ch; c++) {
        float s = ldexpf(1.0f, c % 9 - 4), o = (float)(c % 3) - 1.0f;
        for (size_t i = 0; i < hw; i++) x[c * hw + i] = g.image ? -0.2f + 1.4f * tb_rng_uniform(&rng) : o + s * tb_rng_normal(&rng);
    }
    if (odd && !g.image && g.ch > 2)
        for (size_t i = 0; i < hw; i++) x[2 * hw + i] = 0.75f;  // flat: colour 0
    if (odd && g.ch > 1 && hw > 3) x[hw] = NAN, x[hw + 1] = INFINITY, x[hw + 3] = -INFINITY;
    if (odd && g.image) x[0] = NAN;
    return x;
}

// Several layers' shapes: the atlas's own (a near-square grid, the bottleneck
// magnified 2x, tiles shrunk to fit by a whole factor: sw, sh not multiples of
// the tile), a part-filled last row, one channel, and the reconstruction as an
// image, whole and shrunk; at an offset in a wider picture whose row padding
// and margins must stay untouched.
static void check_tiles_draw(int layout) {
    static const TileGeom kGeoms[] = {
        {32, 6, 16, 16, 16, 16, 5, 3, 0, 90, 24},      // the first layer at 32x32: 2 unused cells
        {19, 5, 8, 5, 16, 10, 0, 0, 0, 90, 24},        // magnified 2x, 1 of 4 rows part-filled
        {8, 3, 300, 170, 100, 57, 2, 7, 0, 90, 24},    // shrunk 3x, sizes not multiples of 3
        {256, 16, 2, 2, 4, 4, 1, 1, 0, 90, 24},        // many small tiles
        {1, 1, 1, 1, 3, 3, 0, 0, 0, 90, 24},           // one value
        {5, 3, 33, 1, 33, 1, 4, 0, 0, 90, 24},          // a one-row channel, 1 unused cell
        {3, 1, 37, 23, 37, 23, 3, 2, 1, 0, 0},         // the output as a picture
        {3, 1, 300, 170, 100, 57, 0, 0, 1, 0, 0},      // shrunk
    };
    std::vector<uint8_t> lut = tile_lut();
    uint8_t *dlut = dnew<uint8_t>(lut.size());
    up(dlut, lut);
    for (const TileGeom &g : kGeoms) {
        for (int odd = 0; odd < 2; odd++) {
            int bw, bh;
            tiles_size(&g, &bw, &bh);
            int cw = g.x + bw + 3, chh = g.y + bh + 2;
            size_t pitch = 4 * (size_t)cw + 8;
            std::vector<float> x = tile_acts(g, odd);
            std::vector<uint8_t> want(pitch * chh, 0x5A), rgb(3 * (size_t)cw * chh, 0x5A);
            tiles_draw(want.data(), pitch, 4, x.data(), &g, (const uint8_t(*)[3])lut.data());
            tiles_draw(rgb.data(), 3 * (size_t)cw, 3, x.data(), &g, (const uint8_t(*)[3])lut.data());
            size_t rgb_off = 0;  // the CPU's two formats: the same colours
            for (int y = 0; y < chh; y++)
                for (int u = 0; u < cw; u++) rgb_off += memcmp(&want[y * pitch + 4 * u], &rgb[3 * ((size_t)y * cw + u)], 3) != 0;
            float *dx = dnew<float>(x.size());
            uint8_t *dpic = dnew<uint8_t>(want.size());
            up(dx, lay(x, 1, g.ch, g.sw * g.sh, layout));
            char what[96];
            snprintf(what, sizeof what, "tiles %d ch %dx%d -> %dx%d%s%s", g.ch, g.sw, g.sh, g.tw, g.th,
                     g.image ? " image" : "", odd ? " (flat, NaN, inf)" : "");
            auto got = both_orders(what, [&] {
                cudaMemset(dpic, 0x5A, want.size());
                tiles_draw_cuda(dpic, pitch, dx, &g, dlut, layout, NULL);
                return down(dpic, want.size());
            });
            EXPECT(diff_bits(got, want) == 0, "%s: %zu of %zu bytes differ from tiles_draw", what,
                   diff_bits(got, want), want.size());
            EXPECT(rgb_off == 0, "%s: RGB8 and RGBA8 differ in %zu pixels", what, rgb_off);
            size_t inside = 0;  // every pixel of the block written (alpha 255), none outside
            for (int y = 0; y < chh; y++)
                for (int u = 0; u < cw; u++) {
                    int in = u >= g.x && u < g.x + bw && y >= g.y && y < g.y + bh;
                    inside += in ? want[y * pitch + 4 * u + 3] == 255 : want[y * pitch + 4 * u + 3] == 0x5A;
                }
            EXPECT(inside == (size_t)cw * chh, "%s: %zu of %d pixels as expected", what, (size_t)cw * chh - inside, cw * chh);
            cudaFree(dx);
            cudaFree(dpic);
        }
    }
    cudaFree(dlut);
}
TEST_IMPL(tiles_draw) { check_tiles_draw(TB_NCHW); }
TEST_IMPL(tiles_draw_nhwc) { check_tiles_draw(TB_NHWC); }

// ---------------------------------------------------------------- lerp.cu

TEST_IMPL(lerp) {
    for (size_t n : {(size_t)1, (size_t)255, (size_t)257, (size_t)1048577}) {  // > 4096 blocks
        std::vector<float> w = randv(n, -3, 3), s = randv(n, -3, 3);
        float *dw = dnew<float>(n), *ds = dnew<float>(n);
        up(ds, s);
        for (float a : {0.0f, 0.25f, 0.7f, 1.0f}) {
            std::vector<float> want = w, ref = w;
            lerp(want.data(), s.data(), n, a);
            lerp_ref(ref.data(), s.data(), n, a);
            auto got = both_orders("lerp", [&] {
                up(dw, w);
                lerp_cuda(dw, ds, n, a, NULL);
                return down(dw, n);
            });
            EXPECT(diff_bits(got, want) == 0, "lerp n %zu a %g: %zu differ from lerp()", n, a,
                   diff_bits(got, want));
            size_t far = 0;  // one rounding of each of two terms: 2^-22 of the larger input
            for (size_t i = 0; i < n; i++)
                far += fabs(got[i] - ref[i]) > ldexp(fmax(fabs(w[i]), fabs(s[i])), -22);
            EXPECT(far == 0, "lerp n %zu a %g: %zu beyond 2^-22 of lerp_ref", n, a, far);
            if (a == 1.0f) EXPECT(diff_bits(got, s) == 0, "lerp a = 1 is not s");
        }
        cudaFree(dw);
        cudaFree(ds);
    }
}

// ---------------------------------------------------------------- couple.cu

// k blocks toward their mean: couple()'s bits (its sum order, lerp's roundings),
// and within (k + 3) 2^-24 of the largest block's |w| of couple_ref (double):
// k - 1 additions, the reciprocal and the product for the mean, (1-c)*w and
// the fused multiply-add, each one rounding of at most that much.
TEST_IMPL(couple) {
    struct {
        size_t n;
        int k;
    } cases[] = {{1, 2}, {255, 3}, {257, 4}, {4097, 2}, {1048577, 3}};  // last: > 4096 blocks
    for (auto cs : cases) {
        size_t n = cs.n;
        int k = cs.k;
        std::vector<std::vector<float>> w(k);
        std::vector<float *> dw(k);
        for (int j = 0; j < k; j++) w[j] = randv(n, -3, 3), dw[j] = dnew<float>(n);
        float **dptr = dnew<float *>(k);
        up(dptr, dw);
        for (float c : {0.0f, 0.1f, 0.5f, 1.0f}) {
            std::vector<std::vector<float>> want = w, ref = w;
            std::vector<float *> pw(k), pr(k);
            for (int j = 0; j < k; j++) pw[j] = want[j].data(), pr[j] = ref[j].data();
            couple(pw.data(), k, n, c);
            couple_ref(pr.data(), k, n, c);
            auto got = both_orders("couple", [&] {
                for (int j = 0; j < k; j++) up(dw[j], w[j]);
                couple_cuda(dptr, k, n, c, NULL);
                std::vector<float> all;
                for (int j = 0; j < k; j++) {
                    std::vector<float> d = down(dw[j], n);
                    all.insert(all.end(), d.begin(), d.end());
                }
                return all;
            });
            size_t differ = 0, far = 0;
            for (int j = 0; j < k; j++)
                for (size_t i = 0; i < n; i++) {
                    float g = got[(size_t)j * n + i];
                    differ += memcmp(&g, &want[j][i], sizeof g) != 0;
                    double big = 0;
                    for (int q = 0; q < k; q++) big = fmax(big, fabs(w[q][i]));
                    double bound = (k + 3) * ldexp(big, -24);
                    note(fabs(g - ref[j][i]), bound);
                    far += fabs(g - ref[j][i]) > bound;
                    if (c == 0.0f) differ += memcmp(&g, &w[j][i], sizeof g) != 0;
                    if (c == 1.0f && j > 0) differ += memcmp(&g, &got[i], sizeof g) != 0;
                }
            EXPECT(differ == 0, "couple n %zu k %d c %g: %zu differ from couple()", n, k, c, differ);
            EXPECT(far == 0, "couple n %zu k %d c %g: %zu beyond (k+3) 2^-24 of couple_ref", n, k, c, far);
        }
        for (int j = 0; j < k; j++) cudaFree(dw[j]);
        cudaFree(dptr);
    }
    print_worst("couple vs couple_ref");
}

// ---------------------------------------------------------------- bottleneck.cu

// The CPU op's nChw16c output, put back in NCHW, is held to the kernel as well
// where C allows (the draws follow the NCHW index, in NHWC too).
static const Shape kBnShapes[] = {{1, 1, 1},  {2, 3, 255},   {3, 5, 257},   {1, 16, 37},
                                  {2, 32, 45}, {2, 3, 5000}, {1, 5, 262147}};  // last: grid-stride

// Mask k of C channels: dropped (+0 and -0), kept at 1, kept at another weight
// (negative ones too); k = 0 and 1 shift the pattern, so C = 1 is dropped once
// and kept once.
static std::vector<float> bn_mask(int C, int k) {
    std::vector<float> m((size_t)C);
    for (int c = 0; c < C; c++) {
        int kind = (c + k) % 3;
        float w = -1.5f + 3 * tb_rng_uniform(&rng);
        m[c] = kind == 0 ? (c % 2 ? -0.0f : 0.0f) : kind == 1 ? 1.0f : w;
    }
    return m;
}

// Inputs with NaN and infinities: a dropped channel must still give +0.
static std::vector<float> bn_input(size_t n) {
    std::vector<float> x = randv(n, -3, 3);
    for (size_t i = 5; i < n; i += 13) x[i] = NAN;
    for (size_t i = 3; i < n; i += 17) x[i] = i % 2 ? INFINITY : -INFINITY;
    return x;
}

static uint64_t rand64() { return (uint64_t)tb_rng_u32(&rng) << 32 | tb_rng_u32(&rng); }

// NCHW <-> nChw16c (C a multiple of 16), as test_bottleneck.c does.
static std::vector<float> from_c16(const std::vector<float> &v, const Shape &s) {
    std::vector<float> o(v.size());
    for (int b = 0; b < s.B; b++)
        for (int c = 0; c < s.C; c++)
            for (int p = 0; p < s.HW; p++)
                o[((size_t)b * s.C + c) * s.HW + p] =
                    v[(((size_t)b * (s.C / 16) + c / 16) * s.HW + p) * 16 + c % 16];
    return o;
}
static std::vector<float> to_c16(const std::vector<float> &v, const Shape &s) {
    std::vector<float> o(v.size());
    for (int b = 0; b < s.B; b++)
        for (int c = 0; c < s.C; c++)
            for (int p = 0; p < s.HW; p++)
                o[(((size_t)b * (s.C / 16) + c / 16) * s.HW + p) * 16 + c % 16] =
                    v[((size_t)b * s.C + c) * s.HW + p];
    return o;
}

// Values of dropped channels that are not +0 (bits 0).
static size_t bn_not_plus_zero(const std::vector<float> &y, const std::vector<float> &mask,
                               int C, int HW) {
    size_t k = 0;
    for (size_t i = 0; i < y.size(); i++)
        if (mask[i / HW % C] == 0.0f) k += y[i] != 0.0f || signbit(y[i]);
    return k;
}

// With noise the kernel's draws are bottleneck_gauss's formula through the
// device's logf (1 ulp) and cosf (2 ulps, CUDA's table), the CPU's through
// glibc's (1 ulp each): with sqrtf and the product, g differs by at most 8
// ulps: |dg| <= 2^-20 |g|. Then x + a*g (one fma) and the mask's multiply
// round once each: |got - want| <= |m| a |g| 2^-20 + 2^-21 |want| (+ 2 float
// denormal steps). Non-finite values must agree: inf the same, NaN both NaN.
// Returns the elements beyond the bound; notes the worst fraction of it.
static size_t bn_noise_far(const std::vector<float> &got, const std::vector<float> &want,
                           const std::vector<float> &mask, const Shape &s, float a, uint64_t pass) {
    size_t far = 0;
    for (size_t i = 0; i < got.size(); i++) {
        float m = mask[i / s.HW % s.C];
        if (!isfinite(want[i]) || !isfinite(got[i])) {
            far += isnan(want[i]) ? !isnan(got[i]) : memcmp(&got[i], &want[i], sizeof(float)) != 0;
            continue;
        }
        double g = bottleneck_gauss(pass, i);
        double bound = fabs(m) * a * fabs(g) * ldexp(1.0, -20) + ldexp(fabs(want[i]), -21) +
                       ldexp(1.0, -148);
        double err = fabs((double)got[i] - want[i]);
        note(err, bound);
        far += err > bound;
    }
    return far;
}

// Forward: every shape, two masks, noise off (0, and a negative amplitude
// draws nothing either) and on, at random passes; in place for mask 1.
static void check_bottleneck_forward(int layout) {
    size_t bits_noise = 0;  // noisy values not bit-identical to the CPU (reported)
    for (const Shape &s : kBnShapes) {
        size_t n = (size_t)s.B * s.C * s.HW;
        std::vector<float> x = bn_input(n);
        float *dx = dnew<float>(n), *dy = dnew<float>(n), *dmask = dnew<float>((size_t)s.C);
        float *dnoise = dnew<float>(1);
        unsigned long long *dpass = dnew<unsigned long long>(1);
        up(dx, lay(x, s.B, s.C, s.HW, layout));
        for (int k = 0; k < 2; k++) {
            std::vector<float> mask = bn_mask(s.C, k);
            up(dmask, mask);
            for (float a : {0.0f, -0.25f, 0.3f, 2.0f}) {
                uint64_t pass = s.C == 1 ? (uint64_t)k : rand64();
                std::vector<float> want(n), fast(n);
                bottleneck_forward_ref(want.data(), x.data(), mask.data(), s.B, s.C, s.HW, a, pass);
                bottleneck_forward(fast.data(), x.data(), mask.data(), s.B, s.C, s.HW, a, pass, 0);
                up(dnoise, std::vector<float>{a});
                up(dpass, std::vector<unsigned long long>{pass});
                char what[128];
                snprintf(what, sizeof what, "bottleneck_forward %dx%dx%d mask %d noise %g%s", s.B,
                         s.C, s.HW, k, a, k ? " in place" : "");
                auto got = both_orders(what, [&] {
                    float *out = dy;
                    if (k) up(out, lay(x, s.B, s.C, s.HW, layout));  // y == x
                    else cudaMemset(out, 0xFF, n * sizeof(float));  // NaN where nothing writes
                    bottleneck_forward_cuda(out, k ? out : dx, dmask, dnoise, dpass, s.B, s.C,
                                            s.HW, layout, NULL);
                    return unlay(down(out, n), s.B, s.C, s.HW, layout);
                });
                EXPECT(bn_not_plus_zero(got, mask, s.C, s.HW) == 0,
                       "%s: %zu values of dropped channels are not +0", what,
                       bn_not_plus_zero(got, mask, s.C, s.HW));
                std::vector<float> c16;
                if (s.C % 16 == 0) {
                    std::vector<float> out(n);
                    bottleneck_forward(out.data(), to_c16(x, s).data(), mask.data(), s.B, s.C,
                                       s.HW, a, pass, 1);
                    c16 = from_c16(out, s);
                }
                if (a <= 0) {
                    EXPECT(diff_bits(got, want) == 0 && diff_bits(got, fast) == 0,
                           "%s: %zu differ from the _ref, %zu from the op", what,
                           diff_bits(got, want), diff_bits(got, fast));
                    EXPECT(c16.empty() || diff_bits(got, c16) == 0, "%s: %zu differ from nChw16c",
                           what, diff_bits(got, c16));
                    continue;
                }
                size_t far = bn_noise_far(got, want, mask, s, a, pass);
                EXPECT(far == 0, "%s: %zu of %zu beyond the bound of the _ref", what, far, n);
                far = bn_noise_far(got, fast, mask, s, a, pass);
                EXPECT(far == 0, "%s: %zu of %zu beyond the bound of the op", what, far, n);
                far = c16.empty() ? 0 : bn_noise_far(got, c16, mask, s, a, pass);
                EXPECT(far == 0, "%s: %zu of %zu beyond the bound of nChw16c", what, far, n);
                bits_noise += diff_bits(got, want);
            }
        }
        cudaFree(dx);
        cudaFree(dy);
        cudaFree(dmask);
        cudaFree(dnoise);
        cudaFree(dpass);
    }
    printf("  bottleneck noise: %zu values not bit-identical to the CPU\n", bits_noise);
    print_worst("bottleneck noise");
}
TEST_IMPL(bottleneck_forward) { check_bottleneck_forward(TB_NCHW); }
TEST_IMPL(bottleneck_forward_nhwc) { check_bottleneck_forward(TB_NHWC); }

// Backward: dx = mask[c] * dy, the CPU's bits in every shape (NaN and inf in
// dy stay out of dropped channels); in place for mask 1.
static void check_bottleneck_backward(int layout) {
    for (const Shape &s : kBnShapes) {
        size_t n = (size_t)s.B * s.C * s.HW;
        std::vector<float> d = bn_input(n);
        float *dd = dnew<float>(n), *ddx = dnew<float>(n), *dmask = dnew<float>((size_t)s.C);
        up(dd, lay(d, s.B, s.C, s.HW, layout));
        for (int k = 0; k < 2; k++) {
            std::vector<float> mask = bn_mask(s.C, k), want(n), fast(n);
            up(dmask, mask);
            bottleneck_backward_ref(want.data(), d.data(), mask.data(), s.B, s.C, s.HW);
            bottleneck_backward(fast.data(), d.data(), mask.data(), s.B, s.C, s.HW, 0);
            char what[128];
            snprintf(what, sizeof what, "bottleneck_backward %dx%dx%d mask %d%s", s.B, s.C, s.HW,
                     k, k ? " in place" : "");
            auto got = both_orders(what, [&] {
                float *out = ddx;
                if (k) up(out, lay(d, s.B, s.C, s.HW, layout));  // dx == dy
                else cudaMemset(out, 0xFF, n * sizeof(float));
                bottleneck_backward_cuda(out, k ? out : dd, dmask, s.B, s.C, s.HW, layout, NULL);
                return unlay(down(out, n), s.B, s.C, s.HW, layout);
            });
            EXPECT(bn_not_plus_zero(got, mask, s.C, s.HW) == 0,
                   "%s: %zu values of dropped channels are not +0", what,
                   bn_not_plus_zero(got, mask, s.C, s.HW));
            EXPECT(diff_bits(got, want) == 0 && diff_bits(got, fast) == 0,
                   "%s: %zu differ from the _ref, %zu from the op", what, diff_bits(got, want),
                   diff_bits(got, fast));
            if (s.C % 16 == 0) {
                std::vector<float> out(n);
                bottleneck_backward(out.data(), to_c16(d, s).data(), mask.data(), s.B, s.C, s.HW,
                                    1);
                EXPECT(diff_bits(got, from_c16(out, s)) == 0, "%s: %zu differ from nChw16c", what,
                       diff_bits(got, from_c16(out, s)));
            }
        }
        cudaFree(dd);
        cudaFree(ddx);
        cudaFree(dmask);
    }
}
TEST_IMPL(bottleneck_backward) { check_bottleneck_backward(TB_NCHW); }
TEST_IMPL(bottleneck_backward_nhwc) { check_bottleneck_backward(TB_NHWC); }

// bottleneck_next_cuda moves the device's counter on by one a call (across
// the 32-bit boundary and around 2^64), and the forward pass reads it when
// it runs: its draws are then the CPU's at the new pass.
TEST_IMPL(bottleneck_next) {
    unsigned long long *dpass = dnew<unsigned long long>(1);
    for (unsigned long long start : {0ull, 0xFFFFFFFEull, ~0ull - 1}) {
        up(dpass, std::vector<unsigned long long>{start});
        for (int i = 0; i < 3; i++) bottleneck_next_cuda(dpass, NULL);
        unsigned long long got = down(dpass, 1)[0];
        EXPECT(got == start + 3, "from %llu: %llu after three calls", start, got);
        EXPECT(kh_errors() == 0, "%s", kh_first_error());
    }
    Shape s = {2, 5, 301};
    size_t n = (size_t)s.B * s.C * s.HW;
    std::vector<float> x = randv(n, -1, 1), mask = bn_mask(s.C, 1), want(n), before(n);
    float *dx = dnew<float>(n), *dy = dnew<float>(n), *dmask = dnew<float>((size_t)s.C);
    float *dnoise = dnew<float>(1);
    up(dx, x);
    up(dmask, mask);
    up(dnoise, std::vector<float>{1.0f});
    up(dpass, std::vector<unsigned long long>{41});
    bottleneck_next_cuda(dpass, NULL);
    bottleneck_forward_cuda(dy, dx, dmask, dnoise, dpass, s.B, s.C, s.HW, TB_NCHW, NULL);
    std::vector<float> got = down(dy, n);
    bottleneck_forward_ref(want.data(), x.data(), mask.data(), s.B, s.C, s.HW, 1.0f, 42);
    bottleneck_forward_ref(before.data(), x.data(), mask.data(), s.B, s.C, s.HW, 1.0f, 41);
    EXPECT(bn_noise_far(got, want, mask, s, 1.0f, 42) == 0, "pass 42: %zu beyond the bound",
           bn_noise_far(got, want, mask, s, 1.0f, 42));
    EXPECT(bn_noise_far(got, before, mask, s, 1.0f, 42) > n / 2, "pass 42 drew pass 41's noise");
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
    worst = 0;
    cudaFree(dpass);
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dmask);
    cudaFree(dnoise);
}

// ---------------------------------------------------------------- the host cuDNN in NHWC

// Host floats to a device block of type dt (bfloat16: rounded to nearest even)
// and back (exact); the cuDNN cases run either type through the same code.
static void *dev_of(const std::vector<float> &v, cudnnDataType_t dt) {
    if (dt == CUDNN_DATA_FLOAT) {
        float *d = dnew<float>(v.size());
        up(d, v);
        return d;
    }
    std::vector<__nv_bfloat16> b(v.size());
    for (size_t i = 0; i < v.size(); i++) b[i] = __float2bfloat16(v[i]);
    __nv_bfloat16 *d = dnew<__nv_bfloat16>(v.size());
    up(d, b);
    return d;
}
static std::vector<float> host_of(const void *d, size_t n, cudnnDataType_t dt) {
    if (dt == CUDNN_DATA_FLOAT) return down((const float *)d, n);
    std::vector<__nv_bfloat16> b = down((const __nv_bfloat16 *)d, n);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = __bfloat162float(b[i]);
    return v;
}
static std::vector<float> bf16_round(std::vector<float> v) {
    for (float &x : v) x = __bfloat162float(__float2bfloat16(x));
    return v;
}

// One convolution's three calls in format f (CUDNN_TENSOR_NCHW, or NHWC with a
// KRSC filter) on NCHW/KCRS host data, transposed in and out: y, dx, dw in
// NCHW/KCRS order, concatenated.
struct ConvShape {
    int N, C, H, W, K, R, S, P;
};
static std::vector<float> conv3(cudnnHandle_t h, const ConvShape &c, cudnnTensorFormat_t f,
                                const std::vector<float> &x, const std::vector<float> &w,
                                const std::vector<float> &dy, int P, int Q,
                                cudnnDataType_t dt = CUDNN_DATA_FLOAT) {
    int lay_f = f == CUDNN_TENSOR_NHWC ? TB_NHWC : TB_NCHW;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnCheck(cudnnCreateTensorDescriptor(&xd));
    cudnnCheck(cudnnCreateTensorDescriptor(&yd));
    cudnnCheck(cudnnCreateFilterDescriptor(&wd));
    cudnnCheck(cudnnCreateConvolutionDescriptor(&cd));
    cudnnCheck(cudnnSetTensor4dDescriptor(xd, f, dt, c.N, c.C, c.H, c.W));
    cudnnCheck(cudnnSetTensor4dDescriptor(yd, f, dt, c.N, c.K, P, Q));
    cudnnCheck(cudnnSetFilter4dDescriptor(wd, dt, f, c.K, c.C, c.R, c.R));
    cudnnCheck(cudnnSetConvolution2dDescriptor(cd, c.P, c.P, c.S, c.S, 1, 1, CUDNN_CROSS_CORRELATION,
                                               CUDNN_DATA_FLOAT));
    cudnnCheck(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));
    size_t ws_size = 0, s1 = 0;
    cudnnCheck(cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, yd, cd, xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &ws_size));
    cudnnCheck(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, cd, wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, &s1));
    ws_size = s1 > ws_size ? s1 : ws_size;
    char *ws = dnew<char>(ws_size);
    int hw = c.H * c.W, rs = c.R * c.R, pq = P * Q;
    void *dx = dev_of(lay(x, c.N, c.C, hw, lay_f), dt);
    void *dw = dev_of(lay(w, c.K, c.C, rs, lay_f), dt);  // KCRS -> KRSC: K samples of C x RS
    void *ddy = dev_of(lay(dy, c.N, c.K, pq, lay_f), dt);
    void *dxo = dev_of(x, dt), *dwo = dev_of(w, dt), *dyo = dev_of(dy, dt);
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionForward(h, &one, xd, dx, wd, dw, cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                       ws, ws_size, &zero, yd, dyo));
    cudnnCheck(cudnnConvolutionBackwardData(h, &one, wd, dw, yd, ddy, cd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                            ws, ws_size, &zero, xd, dxo));
    cudnnCheck(cudnnConvolutionBackwardFilter(h, &one, xd, dx, yd, ddy, cd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                              ws, ws_size, &zero, wd, dwo));
    cudaCheck(cudaDeviceSynchronize());
    std::vector<float> out = unlay(host_of(dyo, dy.size(), dt), c.N, c.K, pq, lay_f);
    std::vector<float> gx = unlay(host_of(dxo, x.size(), dt), c.N, c.C, hw, lay_f);
    std::vector<float> gw = unlay(host_of(dwo, w.size(), dt), c.K, c.C, rs, lay_f);
    out.insert(out.end(), gx.begin(), gx.end());
    out.insert(out.end(), gw.begin(), gw.end());
    // What cuDNN refuses stays refused: a filter in another format than the
    // tensors, and the FFT algorithms in NHWC.
    if (f == CUDNN_TENSOR_NHWC && dt == CUDNN_DATA_FLOAT) {
        cudnnFilterDescriptor_t wn;
        cudnnCheck(cudnnCreateFilterDescriptor(&wn));
        cudnnCheck(cudnnSetFilter4dDescriptor(wn, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c.K, c.C, c.R, c.R));
        cudnnStatus_t st = cudnnConvolutionForward(h, &one, xd, dx, wn, dw, cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                   ws, ws_size, &zero, yd, dyo);
        EXPECT(st == CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, "NHWC tensors with an NCHW filter: status %d", (int)st);
        size_t b = 0;
        st = cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, CUDNN_CONVOLUTION_FWD_ALGO_FFT, &b);
        EXPECT(st == CUDNN_STATUS_NOT_SUPPORTED, "FFT in NHWC: status %d", (int)st);
        cudnnDestroyFilterDescriptor(wn);
    }
    // bfloat16 (PSEUDO_BFLOAT16_CONFIG): a float filter with bfloat16 tensors,
    // bfloat16 compute, and the FFT and Winograd algorithms are refused.
    if (dt == CUDNN_DATA_BFLOAT16) {
        cudnnFilterDescriptor_t wf;
        cudnnConvolutionDescriptor_t cb;
        cudnnCheck(cudnnCreateFilterDescriptor(&wf));
        cudnnCheck(cudnnCreateConvolutionDescriptor(&cb));
        cudnnCheck(cudnnSetFilter4dDescriptor(wf, CUDNN_DATA_FLOAT, f, c.K, c.C, c.R, c.R));
        cudnnCheck(cudnnSetConvolution2dDescriptor(cb, c.P, c.P, c.S, c.S, 1, 1,
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_BFLOAT16));
        cudnnStatus_t st = cudnnConvolutionForward(h, &one, xd, dx, wf, dw, cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                   ws, ws_size, &zero, yd, dyo);
        EXPECT(st == CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "bf16 tensors, float filter: status %d", (int)st);
        st = cudnnConvolutionForward(h, &one, xd, dx, wd, dw, cb, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                     ws, ws_size, &zero, yd, dyo);
        EXPECT(st == CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "bf16 compute: status %d", (int)st);
        size_t b = 0;
        st = cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, CUDNN_CONVOLUTION_FWD_ALGO_FFT, &b);
        EXPECT(st == CUDNN_STATUS_NOT_SUPPORTED, "FFT in bf16: status %d", (int)st);
        st = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, cd, wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, &b);
        EXPECT(st == CUDNN_STATUS_NOT_SUPPORTED, "Winograd in bf16: status %d", (int)st);
        cudnnDestroyFilterDescriptor(wf), cudnnDestroyConvolutionDescriptor(cb);
    }
    cudnnDestroyTensorDescriptor(xd), cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyFilterDescriptor(wd), cudnnDestroyConvolutionDescriptor(cd);
    for (void *d : {dx, dw, ddy, dxo, dwo, dyo, (void *)ws}) cudaFree(d);
    return out;
}

// The host cuDNN's NHWC tensors and KRSC filters (conv_cudnn.cu's NHWC plans
// rest on them): forward, backward data and backward filter give the NCHW
// calls' bits on the transposed data (the same sums in the same order); an
// NCHW run off by one index would not. Shapes: odd sizes, stride 1 and 2.
TEST_IMPL(cudnn_nhwc_matches_nchw) {
    static const ConvShape kConvs[] = {{2, 3, 9, 11, 5, 3, 1, 1}, {1, 8, 16, 12, 6, 4, 2, 1}, {2, 5, 7, 6, 3, 1, 1, 0}};
    cudnnHandle_t h;
    cudnnCheck(cudnnCreate(&h));
    for (const ConvShape &c : kConvs) {
        int P = (c.H + 2 * c.P - c.R) / c.S + 1, Q = (c.W + 2 * c.P - c.R) / c.S + 1;
        std::vector<float> x = randv((size_t)c.N * c.C * c.H * c.W, -1, 1);
        std::vector<float> w = randv((size_t)c.K * c.C * c.R * c.R, -1, 1);
        std::vector<float> dy = randv((size_t)c.N * c.K * P * Q, -1, 1);
        std::vector<float> a = conv3(h, c, CUDNN_TENSOR_NCHW, x, w, dy, P, Q);
        std::vector<float> b = conv3(h, c, CUDNN_TENSOR_NHWC, x, w, dy, P, Q);
        EXPECT(diff_bits(a, b) == 0, "conv %dx%dx%dx%d -> %d k%d s%d: NHWC %zu of %zu values differ",
               c.N, c.C, c.H, c.W, c.K, c.R, c.S, diff_bits(a, b), a.size());
    }
    cudnnCheck(cudnnDestroy(h));
}

// The host cuDNN's PSEUDO_BFLOAT16_CONFIG (conv_cudnn.cu's bf16 plans rest on
// it), in both formats: bfloat16 inputs are read exactly and summed in float
// as the float call sums the same (bf16-rounded) values, so each result is
// the float call's result rounded once to bfloat16: the same bits, not a
// bound (bf16's own error, 2^-9 relative, is the parity test's business). A
// result stored in float, or rounded by truncation, or inputs read as float
// bits, would differ.
TEST_IMPL(cudnn_bf16_rounds_the_float_sums) {
    static const ConvShape kConvs[] = {{2, 3, 9, 11, 5, 3, 1, 1}, {1, 8, 16, 12, 6, 4, 2, 1}};
    cudnnHandle_t h;
    cudnnCheck(cudnnCreate(&h));
    for (const ConvShape &c : kConvs) {
        int P = (c.H + 2 * c.P - c.R) / c.S + 1, Q = (c.W + 2 * c.P - c.R) / c.S + 1;
        std::vector<float> x = bf16_round(randv((size_t)c.N * c.C * c.H * c.W, -1, 1));
        std::vector<float> w = bf16_round(randv((size_t)c.K * c.C * c.R * c.R, -1, 1));
        std::vector<float> dy = bf16_round(randv((size_t)c.N * c.K * P * Q, -1, 1));
        std::vector<float> want = bf16_round(conv3(h, c, CUDNN_TENSOR_NCHW, x, w, dy, P, Q));
        for (cudnnTensorFormat_t f : {CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NHWC}) {
            std::vector<float> got = conv3(h, c, f, x, w, dy, P, Q, CUDNN_DATA_BFLOAT16);
            EXPECT(diff_bits(got, want) == 0, "conv %dx%dx%dx%d -> %d k%d s%d, format %d: bf16 %zu of %zu values differ",
                   c.N, c.C, c.H, c.W, c.K, c.R, c.S, (int)f, diff_bits(got, want), want.size());
        }
    }
    cudnnCheck(cudnnDestroy(h));
}

// ---------------------------------------------------------------- bfloat16 forms (TABULA_CUDA_DTYPE=bf16)
//
// Each kernel's bfloat16 form on bfloat16 inputs (random floats rounded to
// bfloat16, which is what such a kernel is ever given) against the CPU op on
// the same values as floats. The kernel loads them exactly and does the float
// op's steps, so what it stores is the CPU result rounded once to bfloat16:
// the same bits as bf16(CPU), not a bound. Against the float result that is
// |got - cpu| <= 2^-8 |cpu| (bf16 keeps 8 significant bits: the relative
// error of one round-to-nearest is at most 2^-8), also asserted. The float
// results of a bfloat16 form (bias gradients, loss, norm: sums of the float
// values before the store's rounding) have the bits of the float kernel on
// the same inputs, which the cases above hold to the CPU. A kernel that
// stored a float, truncated instead of rounding, read a bfloat16 as a float,
// or summed the rounded values would fail these.

static std::vector<float> bf16_rt(const void *d, size_t n) { return host_of(d, n, CUDNN_DATA_BFLOAT16); }
static void *bf16_dev(const std::vector<float> &v) { return dev_of(v, CUDNN_DATA_BFLOAT16); }

// got == bf16(want) bit for bit, and within 2^-8 of want (NaN to NaN).
static void expect_bf16_of(const std::vector<float> &got, const std::vector<float> &want, const char *what) {
    std::vector<float> r = bf16_round(want);
    EXPECT(diff_bits(got, r) == 0, "%s: %zu of %zu are not the float result rounded to bf16", what,
           diff_bits(got, r), r.size());
    size_t far = 0;
    for (size_t i = 0; i < got.size(); i++)
        if (!(fabsf(got[i] - want[i]) <= ldexpf(1.0f, -8) * fabsf(want[i])) && !(isnan(got[i]) && isnan(want[i])) &&
            got[i] != want[i])
            far++;
    EXPECT(far == 0, "%s: %zu beyond 2^-8 relative", what, far);
}

static const Shape kBfShapes[] = {{2, 3, 255}, {1, 4, 1000}, {2, 64, 129}, {2, 40, 2100}};

TEST_IMPL(bf16_bias_act) {
    for (int layout : {TB_NCHW, TB_NHWC})
        for (const Shape &s : kBfShapes)
            for (int act = ACT_NONE; act <= ACT_SIGMOID; act++) {
                size_t n = (size_t)s.B * s.C * s.HW, ns = bias_act_backward_scratch(s.B, s.C, s.HW, layout);
                std::vector<float> y = bf16_round(randv(n, -4, 4)), d = bf16_round(randv(n, -1, 1));
                std::vector<float> b = randv((size_t)s.C, -1, 1), want_y = y, want_d = d, want_db((size_t)s.C);
                bias_act_forward(want_y.data(), b.data(), s.B, s.C, s.HW, act, 0.2f);
                bias_act_backward(want_d.data(), want_db.data(), y.data(), s.B, s.C, s.HW, act, 0.2f);
                float *db = dnew<float>((size_t)s.C), *dgb = dnew<float>((size_t)s.C), *fgb = dnew<float>((size_t)s.C);
                float *scratch = dnew<float>(ns ? ns : 1), *fd = dnew<float>(n), *fy = dnew<float>(n);
                unsigned *done = dnew<unsigned>(1);
                cudaMemset(done, 0, sizeof(unsigned));
                up(db, b);
                char what[96];
                snprintf(what, sizeof what, "bf16 bias_act %dx%dx%d act %d layout %d", s.B, s.C, s.HW, act, layout);
                void *hy = bf16_dev(lay(y, s.B, s.C, s.HW, layout));
                void *hy2 = bf16_dev(lay(y, s.B, s.C, s.HW, layout)), *hd = bf16_dev(lay(d, s.B, s.C, s.HW, layout));
                auto got = both_orders(what, [&] {
                    cudaMemcpy(hy, hy2, n * 2, cudaMemcpyDeviceToDevice);
                    bias_act_forward_cuda((__nv_bfloat16 *)hy, db, s.B, s.C, s.HW, act, 0.2f, layout, NULL);
                    return unlay(bf16_rt(hy, n), s.B, s.C, s.HW, layout);
                });
                expect_bf16_of(got, want_y, what);
                void *hd2 = bf16_dev(lay(d, s.B, s.C, s.HW, layout));
                auto gotd = both_orders(what, [&] {
                    cudaMemcpy(hd, hd2, n * 2, cudaMemcpyDeviceToDevice);
                    bias_act_backward_cuda((__nv_bfloat16 *)hd, dgb, (const __nv_bfloat16 *)hy2, s.B, s.C, s.HW, act,
                                           0.2f, scratch, done, layout, NULL);
                    std::vector<float> out = unlay(bf16_rt(hd, n), s.B, s.C, s.HW, layout), g = down(dgb, (size_t)s.C);
                    out.insert(out.end(), g.begin(), g.end());
                    return out;
                });
                expect_bf16_of(std::vector<float>(gotd.begin(), gotd.begin() + (long)n), want_d, what);
                up(fd, lay(d, s.B, s.C, s.HW, layout));
                up(fy, lay(y, s.B, s.C, s.HW, layout));
                bias_act_backward_cuda(fd, fgb, fy, s.B, s.C, s.HW, act, 0.2f, scratch, done, layout, NULL);
                std::vector<float> fdb = down(fgb, (size_t)s.C);
                EXPECT(diff_bits(std::vector<float>(gotd.begin() + (long)n, gotd.end()), fdb) == 0,
                       "%s: bias gradient not the float kernel's bits", what);
                for (void *p : {(void *)db, (void *)dgb, (void *)fgb, (void *)scratch, (void *)fd, (void *)fy,
                                (void *)done, hy, hy2, hd, hd2})
                    cudaFree(p);
            }
}

// out_act_loss: y and dy as bf16(CPU), the loss and the bias gradient the
// float kernel's bits on the same inputs.
TEST_IMPL(bf16_out_act_loss) {
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    unsigned *done = dnew<unsigned>(1);
    float *dloss = dnew<float>(1);
    cudaMemset(done, 0, sizeof(unsigned));
    static const Shape shapes[] = {{2, 3, 255}, {3, 3, 5000}, {2, 40, 300}};
    for (int layout : {TB_NCHW, TB_NHWC})
        for (const Shape &s : shapes)
            for (int act = ACT_NONE; act <= ACT_SIGMOID; act++)
                for (int loss = LOSS_MSE; loss <= LOSS_L1; loss++) {
                    size_t n = (size_t)s.B * s.C * s.HW;
                    std::vector<float> y = bf16_round(randv(n, -3, 3)), t = bf16_round(randv(n, 0, 1));
                    std::vector<float> b = randv((size_t)s.C, -1, 1), want_y = y, want_dy(n), want_db((size_t)s.C);
                    bias_act_forward(want_y.data(), b.data(), s.B, s.C, s.HW, act, 0.2f);
                    if (loss == LOSS_L1) l1_forward_backward_ref(want_dy.data(), want_y.data(), t.data(), n);
                    else mse_forward_backward(want_dy.data(), want_y.data(), t.data(), n);
                    bias_act_backward(want_dy.data(), want_db.data(), want_y.data(), s.B, s.C, s.HW, act, 0.2f);
                    float *db = dnew<float>((size_t)s.C), *ddb = dnew<float>((size_t)s.C);
                    float *fy = dnew<float>(n), *fdy = dnew<float>(n), *ft = dnew<float>(n);
                    up(db, b);
                    up(fy, lay(y, s.B, s.C, s.HW, layout));
                    up(ft, lay(t, s.B, s.C, s.HW, layout));
                    out_act_loss_cuda(fy, fdy, ddb, dloss, db, ft, s.B, s.C, s.HW, act, 0.2f, loss, scratch, done,
                                      layout, NULL);
                    std::vector<float> fref = down(ddb, (size_t)s.C);
                    fref.push_back(down(dloss, 1)[0]);
                    void *hy = bf16_dev(lay(y, s.B, s.C, s.HW, layout)), *hy0 = bf16_dev(lay(y, s.B, s.C, s.HW, layout));
                    void *hdy = bf16_dev(y), *ht = bf16_dev(lay(t, s.B, s.C, s.HW, layout));
                    char what[96];
                    snprintf(what, sizeof what, "bf16 out_act_loss %dx%dx%d act %d loss %d layout %d", s.B, s.C,
                             s.HW, act, loss, layout);
                    auto got = both_orders(what, [&] {
                        cudaMemcpy(hy, hy0, n * 2, cudaMemcpyDeviceToDevice);
                        out_act_loss_cuda((__nv_bfloat16 *)hy, (__nv_bfloat16 *)hdy, ddb, dloss, db,
                                          (const __nv_bfloat16 *)ht, s.B, s.C, s.HW, act, 0.2f, loss, scratch,
                                          done, layout, NULL);
                        std::vector<float> out = unlay(bf16_rt(hy, n), s.B, s.C, s.HW, layout),
                                           g = unlay(bf16_rt(hdy, n), s.B, s.C, s.HW, layout), gb = down(ddb, (size_t)s.C);
                        out.insert(out.end(), g.begin(), g.end());
                        out.insert(out.end(), gb.begin(), gb.end());
                        out.push_back(down(dloss, 1)[0]);
                        return out;
                    });
                    expect_bf16_of(std::vector<float>(got.begin(), got.begin() + (long)n), want_y, what);
                    expect_bf16_of(std::vector<float>(got.begin() + (long)n, got.begin() + 2 * (long)n), want_dy, what);
                    EXPECT(diff_bits(std::vector<float>(got.begin() + 2 * (long)n, got.end()), fref) == 0,
                           "%s: bias gradient or loss not the float kernel's bits", what);
                    for (void *p : {(void *)db, (void *)ddb, (void *)fy, (void *)fdy, (void *)ft, hy, hy0, hdy, ht})
                        cudaFree(p);
                }
    cudaFree(scratch);
    cudaFree(done);
    cudaFree(dloss);
}

// Frames in (bf16 of the CPU's v/255), reconstructions out (a bf16 value
// gives the CPU's byte of that value; RGBA and the atlas's tiles the float
// kernels' bytes on the same values).
TEST_IMPL(bf16_frames_and_tiles) {
    const int B = 2;
    for (int layout : {TB_NCHW, TB_NHWC})
        for (const Size2 &f : kFrames) {
            size_t hw = (size_t)f.H * f.W, fb = hw * 3;
            std::vector<uint8_t> store(2 * fb);
            for (uint8_t &c : store) c = (uint8_t)(tb_rng_u32(&rng) & 255);
            std::vector<float> want(2 * B * 3 * hw);
            const int sl[2 * B] = {1, 0, 0, 0};
            for (int b = 0; b < 2 * B; b++) frame_to_tensor(want.data() + b * 3 * hw, store.data() + sl[b] * fb, f.H, f.W);
            uint8_t *dstore = dnew<uint8_t>(store.size());
            int *dslots = dnew<int>(2 * B);
            up(dstore, store);
            up(dslots, std::vector<int>(sl, sl + 2 * B));
            void *hx = bf16_dev(std::vector<float>(B * 3 * hw)), *ht = bf16_dev(std::vector<float>(B * 3 * hw));
            auto got = both_orders("bf16 frames_gather", [&] {
                frames_gather_cuda((__nv_bfloat16 *)hx, (__nv_bfloat16 *)ht, dstore, dslots, B, f.H, f.W, layout, NULL);
                std::vector<float> out = unlay(bf16_rt(hx, B * 3 * hw), B, 3, (int)hw, layout),
                                   t = unlay(bf16_rt(ht, B * 3 * hw), B, 3, (int)hw, layout);
                out.insert(out.end(), t.begin(), t.end());
                return out;
            });
            expect_bf16_of(got, want, "bf16 frames_gather");
            frame_to_tensor_cuda((__nv_bfloat16 *)hx, dstore, B, f.H, f.W, layout, NULL);
            std::vector<float> ft = unlay(bf16_rt(hx, B * 3 * hw), B, 3, (int)hw, layout);
            std::vector<float> want_ft(B * 3 * hw);  // frames 0 and 1 of the store, in order
            for (int k = 0; k < B; k++) frame_to_tensor(want_ft.data() + k * 3 * hw, store.data() + k * fb, f.H, f.W);
            expect_bf16_of(ft, want_ft, "bf16 frame_to_tensor");
            std::vector<float> x = bf16_round(recon(3 * hw));
            std::vector<uint8_t> want_rgb(fb);
            tensor_to_frame(want_rgb.data(), x.data(), f.H, f.W);
            void *hr = bf16_dev(lay(x, 1, 3, (int)hw, layout));
            float *fx = dnew<float>(3 * hw);
            up(fx, lay(x, 1, 3, (int)hw, layout));
            uint8_t *drgb = dnew<uint8_t>(fb), *da = dnew<uint8_t>(4 * hw), *fa = dnew<uint8_t>(4 * hw);
            auto rgb = both_orders("bf16 tensor_to_frame", [&] {
                tensor_to_frame_cuda(drgb, (const __nv_bfloat16 *)hr, f.H, f.W, layout, NULL);
                return down(drgb, fb);
            });
            EXPECT(diff_bits(rgb, want_rgb) == 0, "bf16 tensor_to_frame %dx%d: %zu bytes differ", f.W, f.H,
                   diff_bits(rgb, want_rgb));
            tensor_to_rgba_cuda(da, 4 * (size_t)f.W, (const __nv_bfloat16 *)hr, f.H, f.W, layout, NULL);
            tensor_to_rgba_cuda(fa, 4 * (size_t)f.W, fx, f.H, f.W, layout, NULL);
            EXPECT(diff_bits(down(da, 4 * hw), down(fa, 4 * hw)) == 0, "bf16 tensor_to_rgba %dx%d differs", f.W, f.H);
            for (void *p : {(void *)dstore, (void *)dslots, hx, ht, hr, (void *)fx, (void *)drgb, (void *)da, (void *)fa})
                cudaFree(p);
        }
    std::vector<uint8_t> lut = tile_lut();
    uint8_t *dlut = dnew<uint8_t>(lut.size());
    up(dlut, lut);
    static const TileGeom kGeoms[] = {{19, 5, 8, 5, 16, 10, 0, 0, 0, 90, 24}, {3, 1, 37, 23, 37, 23, 3, 2, 1, 0, 0}};
    for (int layout : {TB_NCHW, TB_NHWC})
        for (const TileGeom &g : kGeoms) {
            int bw, bh;
            tiles_size(&g, &bw, &bh);
            size_t pitch = 4 * (size_t)(g.x + bw), bytes = pitch * (size_t)(g.y + bh);
            std::vector<float> x = bf16_round(tile_acts(g, 1));
            std::vector<uint8_t> want(bytes, 0x5A);
            tiles_draw(want.data(), pitch, 4, x.data(), &g, (const uint8_t(*)[3])lut.data());
            void *hx = bf16_dev(lay(x, 1, g.ch, g.sw * g.sh, layout));
            uint8_t *dpic = dnew<uint8_t>(bytes);
            auto got = both_orders("bf16 tiles", [&] {
                cudaMemset(dpic, 0x5A, bytes);
                tiles_draw_cuda(dpic, pitch, (const __nv_bfloat16 *)hx, &g, dlut, layout, NULL);
                return down(dpic, bytes);
            });
            EXPECT(diff_bits(got, want) == 0, "bf16 tiles %d ch: %zu bytes differ from tiles_draw", g.ch,
                   diff_bits(got, want));
            cudaFree(hx);
            cudaFree(dpic);
        }
    cudaFree(dlut);
}

// The bottleneck op on bf16: bf16 of the float kernel's result on the same
// values (which the cases above hold to the CPU), noise on and off.
TEST_IMPL(bf16_bottleneck) {
    for (int layout : {TB_NCHW, TB_NHWC})
        for (const Shape &s : kBfShapes)
            for (float a : {0.0f, 0.5f}) {
                size_t n = (size_t)s.B * s.C * s.HW;
                std::vector<float> x = bf16_round(randv(n, -2, 2)), mask = bn_mask(s.C, 3);
                float *dmask = dnew<float>((size_t)s.C), *dn = dnew<float>(1), *fx = dnew<float>(n), *fy = dnew<float>(n);
                unsigned long long *dpass = dnew<unsigned long long>(1);
                up(dmask, mask);
                up(dn, std::vector<float>{a});
                up(dpass, std::vector<unsigned long long>{7});
                up(fx, x);
                void *hx = bf16_dev(x), *hy = bf16_dev(x);
                bottleneck_forward_cuda(fy, fx, dmask, dn, dpass, s.B, s.C, s.HW, layout, NULL);
                std::vector<float> want = down(fy, n);
                auto got = both_orders("bf16 bottleneck_forward", [&] {
                    bottleneck_forward_cuda((__nv_bfloat16 *)hy, (const __nv_bfloat16 *)hx, dmask, dn, dpass, s.B,
                                            s.C, s.HW, layout, NULL);
                    return bf16_rt(hy, n);
                });
                expect_bf16_of(got, want, "bf16 bottleneck_forward");
                bottleneck_backward_cuda(fy, fx, dmask, s.B, s.C, s.HW, layout, NULL);
                bottleneck_backward_cuda((__nv_bfloat16 *)hy, (const __nv_bfloat16 *)hx, dmask, s.B, s.C, s.HW, layout, NULL);
                expect_bf16_of(bf16_rt(hy, n), down(fy, n), "bf16 bottleneck_backward");
                for (void *p : {(void *)dmask, (void *)dn, (void *)fx, (void *)fy, (void *)dpass, hx, hy}) cudaFree(p);
            }
}

// The optimizer side: the norm takes the weights' gradients from the bf16
// block (mask 1) and writes them into the float block, exactly; the updates
// write the float weights with the float kernel's bits and their bf16 copy
// as bf16(w); params_to_bf16 rounds each weight.
TEST_IMPL(bf16_optimizer) {
    double *scratch = dnew<double>(TB_REDUCE_BLOCKS);
    float *dnorm = dnew<float>(1), *dloss = dnew<float>(1);
    unsigned *done = dnew<unsigned>(1);
    StepStats *ring = dnew<StepStats>(TB_STATS_RING);
    StepParams *dp = dnew<StepParams>(1);
    cudaMemset(done, 0, sizeof(unsigned));
    up(dloss, std::vector<float>{0.5f});
    for (size_t n : {(size_t)1, (size_t)257, (size_t)70001}) {
        std::vector<float> g = randv(n, -2, 2), g16 = bf16_round(randv(n, -2, 2)), merged = g;
        std::vector<uint8_t> mask(n);
        for (size_t i = 0; i < n; i++) mask[i] = (i / 7) % 3 != 0, merged[i] = mask[i] ? g16[i] : g[i];
        float *dg = dnew<float>(n), *fg = dnew<float>(n);
        uint8_t *dmask = dnew<uint8_t>(n);
        void *hg = bf16_dev(g16);
        up(dmask, mask);
        up(fg, merged);
        for (int opt : {OPT_SGD, OPT_ADAM}) {
            Hyper h = {};
            h.optimizer = opt, h.lr = 0.01f, h.momentum = 0.9f, h.weight_decay = 1e-4f, h.beta1 = 0.9f;
            h.beta2 = 0.999f, h.eps = 1e-8f, h.t = 1, h.clip = 1.0f;
            StepParams p;
            step_params_fill(&p, &h, 2);
            cudaMemcpy(dp, &p, sizeof p, cudaMemcpyHostToDevice);
            grad_norm_stats_cuda(dnorm, ring, dloss, dp, fg, n, scratch, done, NULL);
            float want_norm = down(dnorm, 1)[0];
            up(dg, g);
            grad_norm_stats_cuda(dnorm, ring, dloss, dp, dg, (const __nv_bfloat16 *)hg, dmask, n, scratch, done, NULL);
            EXPECT(down(dnorm, 1)[0] == want_norm, "bf16 norm n %zu: %.9g vs %.9g", n, down(dnorm, 1)[0], want_norm);
            EXPECT(diff_bits(down(dg, n), merged) == 0, "bf16 norm n %zu: %zu gradients not converted", n,
                   diff_bits(down(dg, n), merged));
            std::vector<float> w = randv(n, -1, 1);
            float *fw = dnew<float>(n), *dw = dnew<float>(n), *st = dnew<float>(2 * n), *st2 = dnew<float>(2 * n);
            void *hw16 = bf16_dev(std::vector<float>(n));
            up(fw, w), up(dw, w);
            cudaMemset(st, 0, 2 * n * sizeof(float)), cudaMemset(st2, 0, 2 * n * sizeof(float));
            if (opt == OPT_ADAM) {
                adam_update_cuda(fw, st, st + n, fg, n, dnorm, dp, NULL);
                adam_update_cuda(dw, (__nv_bfloat16 *)hw16, st2, st2 + n, dg, n, dnorm, dp, NULL);
            } else {
                sgd_update_cuda(fw, st, fg, n, dnorm, dp, NULL);
                sgd_update_cuda(dw, (__nv_bfloat16 *)hw16, st2, dg, n, dnorm, dp, NULL);
            }
            std::vector<float> wf = down(fw, n);
            EXPECT(diff_bits(down(dw, n), wf) == 0, "bf16 update opt %d n %zu: weights differ", opt, n);
            expect_bf16_of(bf16_rt(hw16, n), wf, "bf16 update's copy");
            params_to_bf16_cuda((__nv_bfloat16 *)hw16, fg, n, NULL);
            expect_bf16_of(bf16_rt(hw16, n), merged, "params_to_bf16");
            for (void *q : {(void *)fw, (void *)dw, (void *)st, (void *)st2, hw16}) cudaFree(q);
        }
        EXPECT(down(done, 1)[0] == 0, "bf16 norm: counter left at %u", down(done, 1)[0]);
        for (void *q : {(void *)dg, (void *)fg, (void *)dmask, hg}) cudaFree(q);
    }
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
    for (void *q : {(void *)scratch, (void *)dnorm, (void *)dloss, (void *)done, (void *)ring, (void *)dp}) cudaFree(q);
}

// The noise bound is tight enough to see a wrong draw or a wrong formula:
// the draws of the next index, and the noise added after the mask (m x + a g:
// the same as the op where m = 1, off by (1 - m) a g elsewhere).
TEST_IMPL(bottleneck_wrong_noise_is_caught) {
    Shape s = {2, 6, 257};
    size_t n = (size_t)s.B * s.C * s.HW, kept_off_one = 0;
    std::vector<float> x = randv(n, -1, 1), mask = bn_mask(s.C, 0), want(n), shifted(n), after(n);
    float a = 0.3f;
    uint64_t pass = rand64();
    bottleneck_forward_ref(want.data(), x.data(), mask.data(), s.B, s.C, s.HW, a, pass);
    for (size_t i = 0; i < n; i++) {
        float m = mask[i / s.HW % s.C];
        shifted[i] = m != 0 ? m * fmaf(a, bottleneck_gauss(pass, i + 1), x[i]) : 0.0f;
        after[i] = m != 0 ? fmaf(a, bottleneck_gauss(pass, i), m * x[i]) : 0.0f;
        kept_off_one += m != 0 && m != 1;
    }
    size_t far_shifted = bn_noise_far(shifted, want, mask, s, a, pass);
    size_t far_after = bn_noise_far(after, want, mask, s, a, pass);
    worst = 0;
    EXPECT(far_shifted > n / 2, "draws of the next index: only %zu of %zu beyond", far_shifted, n);
    EXPECT(far_after > kept_off_one * 9 / 10, "noise after the mask: %zu of %zu beyond",
           far_after, kept_off_one);
    printf("  wrong noise: next index %zu of %zu, after the mask %zu of %zu beyond the bound\n",
           far_shifted, n, far_after, kept_off_one);
}

// ---------------------------------------------------------------- capture.cu

TEST_IMPL(capture_records_failures) {
    char msg[640];
    cuda_capture_begin(0);
    cudaCheck(cudaErrorInvalidValue);       // recorded, no exit
    cudaCheck(cudaErrorMemoryAllocation);   // later failures are not
    EXPECT(cuda_capture_end(msg, sizeof msg) == 1, "no failure recorded");
    EXPECT(strstr(msg, "cudaErrorInvalidValue") && strstr(msg, "test_kernel_host.cc"), "%s", msg);
    EXPECT(cuda_capture_failing_(1) == -1, "still in capture mode after the end");

    cuda_capture_begin(1);  // the injected failure: the first check, though it passed
    cudaCheck(cudaSuccess);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 1 && strstr(msg, "injected"), "%s", msg);

    // A launch the device would refuse (2048 threads a block), recorded by name.
    float *w = dnew<float>(4);
    cuda_capture_begin(0);
    LAUNCH(lerp_kernel, 1, 2048, NULL, w, w, (size_t)4, 0.5f);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 1 &&
               strstr(msg, "(cudaErrorInvalidConfiguration) launching lerp_kernel"),
           "%s", msg);

    cuda_capture_begin(0);  // a clean capture stays clean
    lerp_cuda(w, w, 4, 0.5f, NULL);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 0 && msg[0] == 0, "%s", msg);
    cudaFree(w);
}

// ---------------------------------------------------------------- the tool can fail

// tensor_to_frame launched one block short: the last pixels are never written.
TEST_IMPL(missing_block_is_caught) {
    int H = 20, W = 50, HW = H * W;  // 4 blocks of 256
    std::vector<float> x = recon(3 * (size_t)HW);
    std::vector<uint8_t> want(3 * (size_t)HW);
    tensor_to_frame(want.data(), x.data(), H, W);
    float *dx = dnew<float>(x.size());
    uint8_t *drgb = dnew<uint8_t>(want.size());
    up(dx, x);
    LAUNCH(tensor_to_frame_kernel<float>, (unsigned)tb_ceil_div((size_t)HW, TB_BLOCK) - 1, TB_BLOCK, NULL,
           drgb, dx, HW, (size_t)HW, 1);
    size_t bad = diff_bits(down(drgb, want.size()), want);
    EXPECT(bad > 0, "a launch one block short matched the CPU");
    printf("  one block short: %zu of %zu bytes differ\n", bad, want.size());
    cudaFree(dx);
    cudaFree(drgb);
}

__global__ void double_past_end_kernel(float *x, int n) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i > n) return;  // the bug: i == n passes
    x[i] *= 2.0f;
}

TEST_IMPL(write_past_end_is_caught) {
    int n = 256;
    float *x = dnew<float>((size_t)n);
    kh_clear();
    LAUNCH(double_past_end_kernel, 2, TB_BLOCK, NULL, x, n);
    EXPECT(kh_errors() == 1 && strstr(kh_first_error(), "1024-byte device allocation") &&
               strstr(kh_first_error(), "past its end"),
           "%s", kh_first_error());
    kh_clear();
    cudaFree(x);
}

__global__ void early_exit_sync_kernel(float *out, int n) {
    if ((int)threadIdx.x >= n) return;
    out[threadIdx.x] = 1.0f;
    __syncthreads();
}

TEST_IMPL(divergent_syncthreads_is_caught) {
    float *out = dnew<float>(128);
    kh_clear();
    LAUNCH(early_exit_sync_kernel, 1, 128, NULL, out, 100);
    EXPECT(kh_errors() == 1 && strstr(kh_first_error(), "reached by 100 of the block's 128"),
           "%s", kh_first_error());
    kh_clear();
    cudaFree(out);
}

__global__ void block_sum_kernel(double *out, int lanes_out) {
    double v = (double)threadIdx.x;
    if ((int)(threadIdx.x % 32) >= 32 - lanes_out) return;  // lanes_out lanes leave early
    v = block_sum(v);
    if (threadIdx.x == 0) *out = v;
}

TEST_IMPL(bad_warp_sum_is_caught) {
    double *out = dnew<double>(1);
    kh_clear();
    LAUNCH(block_sum_kernel, 1, 256, NULL, out, 0);  // the right use
    EXPECT(kh_errors() == 0 && down(out, 1)[0] == 255.0 * 256 / 2, "block_sum %g: %s",
           down(out, 1)[0], kh_first_error());
    LAUNCH(block_sum_kernel, 1, 48, NULL, out, 0);  // not a multiple of 32
    EXPECT(kh_errors() >= 1 && strstr(kh_first_error(), "__shfl_down_sync with mask 0xffffffff "
                                                        "in a warp of 16 threads"),
           "%s", kh_first_error());
    kh_clear();
    LAUNCH(block_sum_kernel, 1, 64, NULL, out, 1);  // lane 31 of each warp has exited
    EXPECT(kh_errors() >= 1 && strstr(kh_first_error(), "lanes have exited"), "%s",
           kh_first_error());
    kh_clear();
    cudaFree(out);
}

// Lane 0 at __syncthreads, the rest of its warp in a warp_sum: a GPU hangs.
__global__ void deadlock_kernel(float *out) {
    float v = 1.0f;
    if (threadIdx.x == 0)
        __syncthreads();
    else
        v = warp_sum(v);
    out[threadIdx.x] = v;
}

TEST_IMPL(deadlock_is_caught) {
    float *out = dnew<float>(64);
    kh_clear();
    LAUNCH(deadlock_kernel, 1, 32, NULL, out);
    EXPECT(kh_errors() >= 1 && strstr(kh_first_error(), "deadlock"), "%s", kh_first_error());
    kh_clear();
    cudaFree(out);
}

// Thread 0 writes what the others read, with no barrier between: a race, seen
// here as a result that depends on the order the threads run in.
__global__ void racy_kernel(float *out) {
    __shared__ float first;
    if (threadIdx.x == 0) first = (float)blockIdx.x + 1.0f;
    out[blockIdx.x * blockDim.x + threadIdx.x] = first;
}

TEST_IMPL(shared_memory_race_is_caught) {
    float *out = dnew<float>(512);
    kh_clear();
    kh_set_reverse(0);
    LAUNCH(racy_kernel, 2, 256, NULL, out);
    std::vector<float> fwd = down(out, 512);
    kh_set_reverse(1);
    LAUNCH(racy_kernel, 2, 256, NULL, out);
    std::vector<float> rev = down(out, 512);
    kh_set_reverse(0);
    EXPECT(diff_bits(fwd, rev) > 0, "a race on shared memory gave the same result in both orders");
    cudaFree(out);
}

TEST_MAIN(TEST_ENTRY(bias_act_forward), TEST_ENTRY(bias_act_forward_nhwc), TEST_ENTRY(bias_act_backward), TEST_ENTRY(bias_act_backward_nhwc), TEST_ENTRY(out_act_loss), TEST_ENTRY(out_act_loss_nhwc),
          TEST_ENTRY(mse), TEST_ENTRY(l1), TEST_ENTRY(grad_norm), TEST_ENTRY(grad_norm_stats),
          TEST_ENTRY(sgd_update), TEST_ENTRY(adam_update),
          TEST_ENTRY(update_same_bits_either_order), TEST_ENTRY(stats_record),
          TEST_ENTRY(frame_to_tensor), TEST_ENTRY(frame_to_tensor_nhwc), TEST_ENTRY(frames_gather), TEST_ENTRY(frames_gather_nhwc), TEST_ENTRY(tensor_to_frame), TEST_ENTRY(tensor_to_frame_nhwc),
          TEST_ENTRY(tensor_to_rgba), TEST_ENTRY(tensor_to_rgba_nhwc), TEST_ENTRY(tiles_draw), TEST_ENTRY(tiles_draw_nhwc), TEST_ENTRY(lerp), TEST_ENTRY(couple),
          TEST_ENTRY(bottleneck_forward), TEST_ENTRY(bottleneck_forward_nhwc), TEST_ENTRY(bottleneck_backward), TEST_ENTRY(bottleneck_backward_nhwc),
          TEST_ENTRY(bottleneck_next), TEST_ENTRY(cudnn_nhwc_matches_nchw), TEST_ENTRY(cudnn_bf16_rounds_the_float_sums), TEST_ENTRY(bf16_bias_act), TEST_ENTRY(bf16_out_act_loss),
          TEST_ENTRY(bf16_frames_and_tiles), TEST_ENTRY(bf16_bottleneck), TEST_ENTRY(bf16_optimizer), TEST_ENTRY(bottleneck_wrong_noise_is_caught),
          TEST_ENTRY(capture_records_failures),
          TEST_ENTRY(missing_block_is_caught), TEST_ENTRY(write_past_end_is_caught),
          TEST_ENTRY(divergent_syncthreads_is_caught), TEST_ENTRY(bad_warp_sum_is_caught),
          TEST_ENTRY(deadlock_is_caught), TEST_ENTRY(shared_memory_race_is_caught))
