// test_torch_ref.c: why it exists: tabula claims to train the same network
// PyTorch would, step for step, so weights move freely between the two and the
// CPU backend can serve as the reference for the CUDA one. This is the
// end-to-end check of that claim: if a layer, the loss, clipping or an
// optimizer drifted from PyTorch, the per-step losses and final weights here
// would stop matching.
//
// tests/fixtures/torch_ref.safetensors (made by tests/torch_reference.py) holds a
// tiny tabula network (encoder channels 8,16 at 48x32), its initial weights, six
// real frames, the batches of 10 training steps, and what PyTorch computed:
// per-step losses and gradient norms, final weights and optimizer state, for SGD
// (momentum, weight decay, clipping) and for Adam; and 5 Adam steps on batches
// of 4 frames (the theme trainer's batch path). We replay the same steps with
// the CPU backend and compare.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "safetensors.h"
#include "test.h"

#define STEPS 10
#define BATCH 2
#define B4_STEPS 5
#define B4 4

// Tolerances: per-step loss and gradient norm (relative), and the largest error
// over a tensor relative to that tensor's largest |value|. The weight change
// over the run (final - init) is checked too, since for SGD it is small next to
// the weights; it carries the rounding of two subtractions, hence its own bound.
#define TOL_STEP 1e-4
#define TOL_TENSOR 1e-4
#define TOL_DELTA 1e-3

static StFile st;

// A tensor of the fixture that must exist with this dtype and element count.
static const StTensor *need(const char *name, const char *dtype, int64_t numel) {
    const StTensor *t = st_find(&st, name);
    if (!t) {
        fprintf(stderr, "fixture: tensor %s missing\n", name);
        exit(1);
    }
    if (strcmp(t->dtype, dtype) != 0 || st_numel(t) != numel) {
        fprintf(stderr, "fixture: %s is %s with %lld elements, expected %s with %lld\n", name,
                t->dtype, (long long)st_numel(t), dtype, (long long)numel);
        exit(1);
    }
    return t;
}

static float meta_f(const char *key) {
    const char *v = st_meta(&st, key);
    if (!v) {
        fprintf(stderr, "fixture: metadata %s missing\n", key);
        exit(1);
    }
    return strtof(v, NULL);
}

// Gather the tensors `<prefix><layer>.weight` / `.bias` into a flat parameter
// block laid out as the model says (w_off / b_off), checking PyTorch's shapes.
static void gather(const Model *m, const char *prefix, float *out) {
    char name[ST_MAX_NAME];
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        snprintf(name, sizeof name, "%s%s.weight", prefix, L->name);
        const StTensor *w = need(name, "F32", (int64_t)L->w_n);
        // Conv2d (OC, C, K, K); ConvTranspose2d (C, OC, K, K).
        int64_t d0 = L->kind == LAYER_CONV ? L->cout : L->cin;
        int64_t d1 = L->kind == LAYER_CONV ? L->cin : L->cout;
        EXPECT(w->ndim == 4 && w->shape[0] == d0 && w->shape[1] == d1 && w->shape[2] == L->k &&
                   w->shape[3] == L->k,
               "%s: shape does not match layer %d", name, l);
        memcpy(out + L->w_off, w->data, L->w_n * sizeof(float));
        snprintf(name, sizeof name, "%s%s.bias", prefix, L->name);
        const StTensor *b = need(name, "F32", (int64_t)L->b_n);
        memcpy(out + L->b_off, b->data, L->b_n * sizeof(float));
    }
}

// Compare a flat block with the reference, tensor by tensor.
static void compare_block(const Model *m, const char *what, const float *got, const float *ref,
                          double tol) {
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        double ew = max_rel_err(got + L->w_off, ref + L->w_off, L->w_n, 1e-12);
        double eb = max_rel_err(got + L->b_off, ref + L->b_off, L->b_n, 1e-12);
        EXPECT(ew <= tol, "%s %s.weight: max relative error %.3g > %.3g", what, L->name, ew, tol);
        EXPECT(eb <= tol, "%s %s.bias: max relative error %.3g > %.3g", what, L->name, eb, tol);
        printf("  %-14s %-6s weight %.2e  bias %.2e\n", what, L->name, ew, eb);
    }
}

// Compare final - init (the change over the run) with PyTorch's.
static void compare_delta(const Model *m, const char *what, const float *got, const float *ref,
                          const float *init) {
    size_t n = m->n_params;
    float *dg = tb_malloc(n * sizeof(float)), *dr = tb_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        dg[i] = got[i] - init[i];
        dr[i] = ref[i] - init[i];
    }
    compare_block(m, what, dg, dr, TOL_DELTA);
    free(dg);
    free(dr);
}

// Run the steps (B frames each, as batch_index says) with one optimizer from the
// initial weights and compare; the optimizer state too where the fixture has it.
static void run_steps(const char *tag, Backend *b, const Model *m, const Hyper *base, const float *init,
                      const uint8_t *frames, const int64_t *batch_index, int steps, int B, int with_state) {
    size_t n = m->n_params, frame_bytes = (size_t)m->spec.width * m->spec.height * 3;
    char name[ST_MAX_NAME];
    printf("%s\n", tag);

    b->set_params(b, init);
    b->reset_opt_state(b);
    for (int s = 0; s < steps; s++) {
        const uint8_t *batch[B4];
        for (int j = 0; j < B; j++) batch[j] = frames + (size_t)batch_index[s * B + j] * frame_bytes;
        b->load_batch(b, batch, B);
        Hyper h = *base;
        h.t = s + 1;
        b->train_step(b, B, &h, s);
    }
    StepStats stats[STEPS];
    b->read_stats(b, stats, steps);

    float loss[STEPS], norm[STEPS];
    snprintf(name, sizeof name, "%s.loss", tag);
    memcpy(loss, need(name, "F32", steps)->data, sizeof(float) * steps);
    snprintf(name, sizeof name, "%s.grad_norm", tag);
    memcpy(norm, need(name, "F32", steps)->data, sizeof(float) * steps);
    printf("  step  loss (tabula)  loss (torch)   norm (tabula)  norm (torch)\n");
    for (int s = 0; s < steps; s++) {
        printf("  %4d  %.9f  %.9f  %.9f  %.9f\n", s, stats[s].loss, loss[s], stats[s].grad_norm,
               norm[s]);
        snprintf(name, sizeof name, "%s step %d loss", tag, s);
        EXPECT_NEAR(stats[s].loss, loss[s], TOL_STEP * fabs(loss[s]), name);
        snprintf(name, sizeof name, "%s step %d grad_norm", tag, s);
        EXPECT_NEAR(stats[s].grad_norm, norm[s], TOL_STEP * fabs(norm[s]), name);
    }

    // Final weights, their change, and the optimizer state.
    float *got = tb_malloc(2 * n * sizeof(float)), *ref = tb_malloc(2 * n * sizeof(float));
    b->get_params(b, got);
    snprintf(name, sizeof name, "%s.final.", tag);
    gather(m, name, ref);
    compare_block(m, "final", got, ref, TOL_TENSOR);
    compare_delta(m, "final-init", got, ref, init);

    int adam = base->optimizer == OPT_ADAM;
    b->get_opt_state(b, got, base->optimizer);
    if (!with_state) {
    } else if (adam) {
        snprintf(name, sizeof name, "%s.final_exp_avg.", tag);
        gather(m, name, ref);
        snprintf(name, sizeof name, "%s.final_exp_avg_sq.", tag);
        gather(m, name, ref + n);
        compare_block(m, "adam m", got, ref, TOL_TENSOR);
        compare_block(m, "adam v", got + n, ref + n, TOL_TENSOR);
    } else {
        snprintf(name, sizeof name, "%s.final_momentum.", tag);
        gather(m, name, ref);
        compare_block(m, "momentum", got, ref, TOL_TENSOR);
    }
    free(got);
    free(ref);
}

static void run(const char *tag, Backend *b, const Model *m, const Hyper *base, const float *init,
                const uint8_t *frames, const int64_t *batch_index) {
    run_steps(tag, b, m, base, init, frames, batch_index, STEPS, BATCH, 1);
}

// The fixture, the model and CPU backend it describes, and its frames and
// batches: loaded once, shared by the cases.
static Model net;
static Backend *be;
static const StTensor *ft;
static int64_t batch_index[STEPS * BATCH];
static float *init;

static void cleanup(void) {
    free(init);
    if (be) backend_destroy(be);
    st_free(&st);
}

static void load_fixture(void) {
    static int loaded;
    if (loaded) return;
    loaded = 1;
    char path[1024];
    const char *src = getenv("TABULA_SRC");
    snprintf(path, sizeof path, "%s/tests/fixtures/torch_ref.safetensors", src ? src : ".");
    TbErr err;
    if (st_read(&st, path, &err)) {
        fprintf(stderr, "cannot read the fixture: %s\n", err.msg);
        exit(1);
    }
    atexit(cleanup);

    // The network of the fixture.
    ModelSpec spec = {0};
    spec.width = (int)meta_f("width");
    spec.height = (int)meta_f("height");
    spec.n_enc = 2;
    spec.channels[0] = 8;
    spec.channels[1] = 16;
    spec.kernel = 4;
    spec.stride = 2;
    spec.pad = 1;
    spec.slope = meta_f("slope");
    EXPECT(spec.width == 48 && spec.height == 32, "fixture size %dx%d", spec.width, spec.height);
    EXPECT(strcmp(st_meta(&st, "channels") ? st_meta(&st, "channels") : "", "8,16") == 0,
           "fixture channels");
    if (model_build(&net, &spec, &err)) {
        fprintf(stderr, "model_build: %s\n", err.msg);
        exit(1);
    }
    be = backend_cpu_create(&net, B4, &err);
    if (!be) {
        fprintf(stderr, "backend_cpu_create: %s\n", err.msg);
        exit(1);
    }

    // Frames (U8 [6, H, W, 3]) and batches (I64 [10, 2]).
    ft = st_find(&st, "frames");
    if (!ft || strcmp(ft->dtype, "U8") != 0 || ft->ndim != 4 || ft->shape[1] != spec.height ||
        ft->shape[2] != spec.width || ft->shape[3] != 3) {
        fprintf(stderr, "fixture: frames missing or not U8 [N, %d, %d, 3]\n", spec.height,
                spec.width);
        exit(1);
    }
    int n_frames = (int)ft->shape[0];
    memcpy(batch_index, need("batch_index", "I64", STEPS * BATCH)->data, sizeof batch_index);
    for (int i = 0; i < STEPS * BATCH; i++)
        CHECK(batch_index[i] >= 0 && batch_index[i] < n_frames, "batch_index %lld",
              (long long)batch_index[i]);

    init = tb_malloc(net.n_params * sizeof(float));
    gather(&net, "init.", init);
}

// The fixture's network, in PyTorch's layouts: its size, channels, and every
// initial weight's shape.
TEST_IMPL(fixture_describes_the_network) { load_fixture(); }

// Momentum, weight decay and clipping: losses, gradient norms, final weights
// and momentum buffers as PyTorch's.
TEST_IMPL(sgd_ten_steps_match_pytorch) {
    load_fixture();
    Hyper sgd = {0};
    sgd.optimizer = OPT_SGD;
    sgd.lr = meta_f("sgd_lr");
    sgd.momentum = meta_f("sgd_momentum");
    sgd.weight_decay = meta_f("sgd_weight_decay");
    sgd.clip = meta_f("clip");
    run("sgd", be, &net, &sgd, init, ft->data, batch_index);
}

static Hyper adam_hyper(void) {
    Hyper adam = {0};
    adam.optimizer = OPT_ADAM;
    adam.lr = meta_f("adam_lr");
    adam.beta1 = meta_f("adam_beta1");
    adam.beta2 = meta_f("adam_beta2");
    adam.eps = meta_f("adam_eps");
    adam.weight_decay = meta_f("adam_weight_decay");
    adam.clip = meta_f("clip");
    return adam;
}

// Adam with weight decay and clipping: losses, gradient norms, final weights
// and both moment buffers as PyTorch's.
TEST_IMPL(adam_ten_steps_match_pytorch) {
    load_fixture();
    Hyper adam = adam_hyper();
    run("adam", be, &net, &adam, init, ft->data, batch_index);
}

// Batches of 4 (theme training's): the loss is the mean over the batch and
// the gradient its mean, as PyTorch's F.mse_loss; losses, norms and final
// weights after 5 Adam steps as PyTorch's.
TEST_IMPL(adam_batch4_matches_pytorch) {
    load_fixture();
    int64_t idx[B4_STEPS * B4];
    memcpy(idx, need("b4.batch_index", "I64", B4_STEPS * B4)->data, sizeof idx);
    for (int i = 0; i < B4_STEPS * B4; i++)
        CHECK(idx[i] >= 0 && idx[i] < ft->shape[0], "b4.batch_index %lld", (long long)idx[i]);
    Hyper adam = adam_hyper();
    run_steps("b4", be, &net, &adam, init, ft->data, idx, B4_STEPS, B4, 0);
}

TEST_MAIN(TEST_ENTRY(fixture_describes_the_network), TEST_ENTRY(sgd_ten_steps_match_pytorch),
          TEST_ENTRY(adam_ten_steps_match_pytorch), TEST_ENTRY(adam_batch4_matches_pytorch))
