// test_journey.c: why it exists: a journey is only worth playing if it lands
// on the moments the performer stored. Checked on the CPU backend, with
// channels in multiples of 16 (oneDNN keeps them blocked between layers, the
// case where a read-out or a decode must convert) and without: the read-out
// of each encoder activation against the reference convolutions; decode of a
// frame's code is that frame's reconstruction bit for bit, and leaves the
// batch as it was; a journey renders each stored frame's reconstruction at
// its keyframe; the linear path's midpoint is the mean code's decode; slerp
// and the curve end exactly on their keys, and slerp keeps the length that
// linear loses; the run loop plays the stored frames at their times. With a GPU, the CUDA read-out and decode against the CPU's
// (skipped without one).
#include <string.h>

#include "journey.h"
#include "run.h"
#include "settings_trainer.h"
#include "test.h"

enum { W = 32, H = 32 };

static int small_trainer(Trainer *t, const char *channels) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.channels, sizeof s.channels, "%s", channels);
    s.width = W, s.height = H, s.lr = 0.05f;
    TbErr err = {{0}};
    int rc = trainer_init_settings(t, &s, NULL, &err);
    EXPECT(rc == 0, "trainer: %s", err.msg);
    return rc;
}

// A frame that changes with k.
static void make_frame(uint8_t *rgb, int k) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                rgb[((size_t)y * W + x) * 3 + c] = (uint8_t)((x * 7 + y * (3 + c) + 29 * k) & 255);
}

// Some learning, so the codes are not those of a blank network.
static void train(Trainer *t, int frames) {
    uint8_t rgb[W * H * 3];
    StepStats st[TB_STATS_RING];
    for (int k = 0; k < frames; k++) {
        make_frame(rgb, k);
        trainer_push_frame(t, rgb, W, H);
        trainer_train(t, 2, 2);
        trainer_read_stats(t, st);
    }
}

// Frame k through the network alone (no step), as the display shows a paused run.
static void forward_frame(Trainer *t, int k) {
    uint8_t rgb[W * H * 3];
    make_frame(rgb, k);
    trainer_push_frame(t, rgb, W, H);
    trainer_train(t, 0, 0);
}

static void readout_is_nchw(const char *channels) {
    Trainer t;
    if (small_trainer(&t, channels)) return;
    train(&t, 3);
    forward_frame(&t, 7);
    const Model *m = &t.model;
    float *p = tb_malloc(m->n_params * sizeof(float));
    float *x = tb_malloc(m->act_total * sizeof(float)), *y = tb_malloc(m->act_total * sizeof(float));
    float *got = tb_malloc(m->act_total * sizeof(float));
    t.be->get_params(t.be, p);
    t.be->get_activation(t.be, 0, x);
    for (int l = 0; l < m->spec.n_enc; l++) {
        const Layer *L = &m->layers[l];
        conv2d_forward_ref(y, x, p + L->w_off, 1, L->cin, L->hin, L->win, L->cout, L->k, L->stride, L->pad);
        bias_act_forward(y, p + L->b_off, 1, L->cout, L->hout * L->wout, L->act, m->spec.slope);
        t.be->get_activation(t.be, l + 1, got);
        // oneDNN and the plain loops sum in different orders: measured
        // differences are below 2e-6 of the largest value; 1e-4 leaves room,
        // while a wrong layout puts whole values in the wrong place.
        double worst = 0, big = 1e-6;
        for (size_t i = 0; i < m->act_n[l + 1]; i++) {
            double d = fabs((double)got[i] - y[i]);
            worst = d > worst ? d : worst;
            big = fabs(y[i]) > big ? fabs(y[i]) : big;
        }
        EXPECT(worst <= 1e-4 * big, "%s: layer %d read out differs by %g (largest %g)", channels, l, worst, big);
        memcpy(x, y, m->act_n[l + 1] * sizeof(float));
    }
    free(p), free(x), free(y), free(got);
    trainer_free(&t);
}

TEST_IMPL(readout_nchw_blocked) { readout_is_nchw("16,32"); }
TEST_IMPL(readout_nchw_plain) { readout_is_nchw("8,12"); }

static void decode_is_reconstruction(const char *channels) {
    Trainer t;
    if (small_trainer(&t, channels)) return;
    train(&t, 3);
    const Model *m = &t.model;
    size_t nc = m->act_n[model_bottleneck_act(m)], fb = (size_t)W * H * 3;
    float *code = tb_malloc(nc * sizeof(float));
    uint8_t *rec = tb_malloc(fb), *out = tb_malloc(fb), *again = tb_malloc(fb);
    for (int k = 10; k < 13; k++) {
        forward_frame(&t, k);
        t.be->get_activation(t.be, model_bottleneck_act(m), code);
        trainer_output(&t, rec);
        t.be->decode(t.be, code, out);
        EXPECT(memcmp(out, rec, fb) == 0, "%s: frame %d: decode(code) is not the reconstruction", channels, k);
        trainer_output(&t, again);
        EXPECT(memcmp(again, rec, fb) == 0, "%s: frame %d: decode disturbed the batch", channels, k);
    }
    // A zero code decodes to something else (the check can fail).
    memset(code, 0, nc * sizeof(float));
    t.be->decode(t.be, code, out);
    EXPECT(memcmp(out, rec, fb) != 0, "%s: a zero code gave the reconstruction", channels);
    free(code), free(rec), free(out), free(again);
    trainer_free(&t);
}

TEST_IMPL(decode_is_reconstruction_blocked) { decode_is_reconstruction("16,32"); }
TEST_IMPL(decode_is_reconstruction_plain) { decode_is_reconstruction("8,12"); }

// Three keyframes stored from three frames (no step between: the decoder is
// the one that made them); the rendered journey at each keyframe's time.
static void keyframes_exact(int mode) {
    Trainer t;
    if (small_trainer(&t, "16,32")) return;
    train(&t, 3);
    const Model *m = &t.model;
    size_t fb = (size_t)W * H * 3;
    Journey j;
    journey_init(&j, m->act_n[model_bottleneck_act(m)], fb, mode, 2.0f);
    for (int k = 0; k < 3; k++) {
        forward_frame(&t, 20 + 5 * k);
        EXPECT(journey_store_trainer(&j, &t, -1) == k, "mode %d: stored into slot %d", mode, k);
    }
    EXPECT(journey_start(&j, 100.0) == 0, "mode %d: start", mode);
    uint8_t *out = tb_malloc(fb), *mid = tb_malloc(fb);
    for (int k = 0; k < 4; k++) {  // k = 3: round again to the first
        journey_render(&j, &t, 100.0 + 2.0 * k, out);
        EXPECT(memcmp(out, j.rec[k % 3], fb) == 0, "mode %d: keyframe %d is not its frame's reconstruction", mode, k);
    }
    journey_render(&j, &t, 101.0, mid);  // between keys 0 and 1: neither
    EXPECT(memcmp(mid, j.rec[0], fb) != 0 && memcmp(mid, j.rec[1], fb) != 0, "mode %d: the midpoint is a keyframe",
           mode);
    free(out), free(mid);
    journey_free(&j);
    trainer_free(&t);
}

TEST_IMPL(keyframes_exact_linear) { keyframes_exact(JOURNEY_LINEAR); }
TEST_IMPL(keyframes_exact_slerp) { keyframes_exact(JOURNEY_SLERP); }
TEST_IMPL(keyframes_exact_curve) { keyframes_exact(JOURNEY_CURVE); }

TEST_IMPL(linear_midpoint_is_mean) {
    Trainer t;
    if (small_trainer(&t, "16,32")) return;
    train(&t, 3);
    const Model *m = &t.model;
    size_t nc = m->act_n[model_bottleneck_act(m)], fb = (size_t)W * H * 3;
    Journey j;
    journey_init(&j, nc, fb, JOURNEY_LINEAR, 1.0f);
    forward_frame(&t, 30);
    journey_store_trainer(&j, &t, -1);
    forward_frame(&t, 40);
    journey_store_trainer(&j, &t, -1);
    float *mean = tb_malloc(nc * sizeof(float)), *half = tb_malloc(nc * sizeof(float));
    for (size_t i = 0; i < nc; i++) mean[i] = (j.code[0][i] + j.code[1][i]) / 2;
    journey_at(&j, 0.5, half);
    uint8_t *a = tb_malloc(fb), *b = tb_malloc(fb);
    t.be->decode(t.be, mean, a);
    t.be->decode(t.be, half, b);
    EXPECT(memcmp(a, b, fb) == 0, "the linear midpoint's decode is not the mean code's");
    EXPECT(memcmp(a, j.rec[0], fb) != 0 && memcmp(a, j.rec[1], fb) != 0, "the mean is one of the ends");
    free(mean), free(half), free(a), free(b);
    journey_free(&j);
    trainer_free(&t);
}

static double norm(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

TEST_IMPL(slerp_ends_and_length) {
    enum { N = 64 };
    float a[N], b[N], out[N], lin[N];
    TbRng rng;
    tb_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) a[i] = tb_rng_normal(&rng), b[i] = tb_rng_normal(&rng);
    double na = norm(a, N), nb = norm(b, N);
    for (int i = 0; i < N; i++) b[i] = (float)(b[i] * na / nb);  // the same length
    journey_slerp(out, a, b, N, 0.0);
    EXPECT(memcmp(out, a, sizeof a) == 0, "slerp at 0 is not a");
    journey_slerp(out, a, b, N, 1.0);
    EXPECT(memcmp(out, b, sizeof b) == 0, "slerp at 1 is not b");
    // Between, slerp keeps the length (to float rounding, 1e-5 relative) where
    // linear shortens it: two random 64-vectors are near orthogonal, so the
    // linear midpoint is about 0.7 as long.
    journey_slerp(out, a, b, N, 0.5);
    journey_lerp(lin, a, b, N, 0.5);
    EXPECT_NEAR(norm(out, N) / na, 1.0, 1e-5, "slerp midpoint length / |a|");
    EXPECT(norm(lin, N) / na < 0.9, "linear midpoint length %g of |a|", norm(lin, N) / na);
    // And its angle to each end is half the whole.
    double ab = 0, ao = 0, bo = 0;
    for (int i = 0; i < N; i++) ab += a[i] * b[i], ao += a[i] * out[i], bo += b[i] * out[i];
    double n2 = na * na;
    EXPECT_NEAR(acos(ao / n2), acos(ab / n2) / 2, 1e-4, "angle a..mid");
    EXPECT_NEAR(acos(bo / n2), acos(ab / n2) / 2, 1e-4, "angle mid..b");
}

TEST_IMPL(curve_through_keys) {
    enum { N = 16 };
    Journey j;
    journey_init(&j, N, 3, JOURNEY_CURVE, 1.0f);
    float c[5][N], out[N], lin[N];
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < N; i++) c[k][i] = (float)((k * k * 3 + i * (k + 1)) % 11) - 5.0f + 0.1f * k;
    for (int k = 0; k < 5; k++) journey_store(&j, -1, c[k], NULL);
    for (int k = 0; k < 10; k++) {
        journey_at(&j, k, out);
        EXPECT(memcmp(out, c[k % 5], sizeof out) == 0, "curve at key %d", k);
    }
    // Between keys it is not the straight line (the neighbours bend it).
    journey_at(&j, 1.5, out);
    journey_lerp(lin, c[1], c[2], N, 0.5);
    EXPECT(memcmp(out, lin, sizeof out) != 0, "the curve is the straight line");
    // Slots: a ninth store drops the oldest; a slot past the last full one is refused.
    for (int k = 5; k < JOURNEY_KEYS; k++) journey_store(&j, -1, c[0], NULL);
    EXPECT(journey_store(&j, -1, c[4], NULL) == JOURNEY_KEYS - 1 && j.n == JOURNEY_KEYS, "ninth store");
    EXPECT(memcmp(j.code[0], c[1], sizeof c[1]) == 0, "the oldest went");
    journey_free(&j);
    journey_init(&j, N, 3, JOURNEY_CURVE, 1.0f);
    EXPECT(journey_store(&j, 2, c[0], NULL) == -1 && journey_start(&j, 0) == -1, "gaps and empty journeys refused");
    journey_free(&j);
}

// Through the run loop as the drivers use it: code_store and journey events,
// then run_output each frame shows the journey. Learning paused (the decoder
// that made the codes stays) and the run's clock headless (frames / fps, with
// fps 32 every time is exact in binary): at every whole second after the start
// the frame shown is a stored frame's reconstruction, in order and round
// again; half-way it is neither neighbour.
TEST_IMPL(run_loop_plays_the_keyframes) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.channels, sizeof s.channels, "16,32");
    s.width = W, s.height = H, s.headless = 1, s.fps = 32, s.pause = 1;
    s.autosave_minutes = 0, s.journey_seconds = 1;
    snprintf(s.journey_mode, sizeof s.journey_mode, "curve");
    Run r;
    TbErr err = {{0}};
    if (run_open(&r, &s, NULL, &err)) {
        EXPECT(0, "run_open: %s", err.msg);
        return;
    }
    uint8_t rgb[W * H * 3], out[W * H * 3];
    char msg[256];
    ControlEvent store = {.cmd = CMD_CODE_STORE, .value = -1}, play = {.cmd = CMD_JOURNEY};
    run_control(&r, &store, msg, sizeof msg);
    EXPECT(r.jr.n == 0 && strstr(msg, "no frame"), "a store before any frame: %s", msg);
    for (int k = 0; k < 3; k++) {
        make_frame(rgb, 50 + 9 * k);
        run_frame(&r, rgb, W, H);
        run_control(&r, &store, msg, sizeof msg);
    }
    EXPECT(r.jr.n == 3, "%d keyframes stored (%s)", r.jr.n, msg);
    run_control(&r, &play, msg, sizeof msg);
    EXPECT(r.jr.playing, "not playing: %s", msg);
    long f0 = r.frames, hits = 0;
    for (int k = 0; k < 4 * 32 && r.jr.playing; k++) {
        make_frame(rgb, k);
        run_frame(&r, rgb, W, H);
        run_output(&r, out);
        long since = r.frames - f0;
        int key = (int)(since / 32) % 3;
        if (since % 32 == 0) {
            EXPECT(memcmp(out, r.jr.rec[key], sizeof out) == 0, "second %ld: not keyframe %d", since / 32, key);
            hits++;
        } else if (since % 32 == 16) {
            EXPECT(memcmp(out, r.jr.rec[key], sizeof out) != 0 && memcmp(out, r.jr.rec[(key + 1) % 3], sizeof out) != 0,
                   "half-way after keyframe %d is a keyframe", key);
        }
    }
    EXPECT(hits == 4, "%ld keyframe times checked", hits);
    run_control(&r, &play, msg, sizeof msg);
    run_output(&r, out);
    EXPECT(!r.jr.playing && memcmp(out, r.jr.rec[0], sizeof out) != 0, "stopped: the mirror again (%s)", msg);
    run_close(&r);
}

// On a GPU: the CUDA backend's read-out agrees with the CPU's on the same
// weights and frame (cuDNN sums in other orders: 1e-4 of the largest value),
// and its decode of its own code is its reconstruction (the same plans at
// batch 1: to the bit measured nowhere yet, so within one level).
TEST_IMPL(cuda_readout_and_decode) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cuda");
    snprintf(s.channels, sizeof s.channels, "16,32");
    s.width = W, s.height = H;
    Trainer g, c;
    TbErr err = {{0}};
    if (trainer_init_settings(&g, &s, NULL, &err)) TEST_SKIP_CASE("no CUDA backend: %s", err.msg);
    if (small_trainer(&c, "16,32")) return;
    const Model *m = &c.model;
    float *p = tb_malloc(m->n_params * sizeof(float));
    c.be->get_params(c.be, p);
    g.be->set_params(g.be, p);
    forward_frame(&c, 3);
    forward_frame(&g, 3);
    float *a = tb_malloc(m->act_total * sizeof(float)), *b = tb_malloc(m->act_total * sizeof(float));
    for (int i = 0; i <= m->n_layers; i++) {
        c.be->get_activation(c.be, i, a);
        g.be->get_activation(g.be, i, b);
        double worst = 0, big = 1e-6;
        for (size_t k = 0; k < m->act_n[i]; k++) {
            worst = fmax(worst, fabs((double)a[k] - b[k]));
            big = fmax(big, fabs((double)a[k]));
        }
        EXPECT(worst <= 1e-4 * big, "activation %d: CUDA differs by %g (largest %g)", i, worst, big);
    }
    size_t fb = (size_t)W * H * 3;
    uint8_t *rec = tb_malloc(fb), *out = tb_malloc(fb);
    g.be->get_activation(g.be, model_bottleneck_act(m), a);
    trainer_output(&g, rec);
    g.be->decode(g.be, a, out);
    int worst = 0;
    for (size_t k = 0; k < fb; k++) worst = abs(out[k] - rec[k]) > worst ? abs(out[k] - rec[k]) : worst;
    EXPECT(worst <= 1, "CUDA decode(code) differs from the reconstruction by %d levels", worst);
    free(p), free(a), free(b), free(rec), free(out);
    trainer_free(&g);
    trainer_free(&c);
}

TEST_MAIN(TEST_ENTRY(readout_nchw_blocked), TEST_ENTRY(readout_nchw_plain), TEST_ENTRY(decode_is_reconstruction_blocked),
          TEST_ENTRY(decode_is_reconstruction_plain), TEST_ENTRY(keyframes_exact_linear),
          TEST_ENTRY(keyframes_exact_slerp), TEST_ENTRY(keyframes_exact_curve), TEST_ENTRY(linear_midpoint_is_mean),
          TEST_ENTRY(slerp_ends_and_length), TEST_ENTRY(curve_through_keys), TEST_ENTRY(run_loop_plays_the_keyframes),
          TEST_ENTRY(cuda_readout_and_decode))
