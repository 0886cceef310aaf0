// test_transform.c: why it exists: a "world" is a network trained to rebuild
// the clean frame from a degraded one (grey, blurred, jittered, edges). If a
// transform did something else than it says (grey that shifts brightness, a
// blur whose factor does not set the cut-off, jitter outside its range or
// jitter at the window), the network would learn another world than the one
// chosen; if the trainer's target were not the clean frame, it would learn
// nothing worth seeing; and a world file must bring its transform back, or say
// clearly that this build does not know it.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "settings_trainer.h"
#include "test.h"

enum { W = 320, H = 240, N = W * H };

// Frame k of a real clip (320x240), read once per name.
static const uint8_t *real_frame(const char *name, int k) {
    static uint8_t frames[2][N * 3];
    static const char *loaded[2];
    int slot = strcmp(name, "hikers_forest_320x240.y4m") == 0;
    if (loaded[slot]) return frames[slot];
    TbErr err = {{0}};
    Source *s = source_open_y4m(test_data(name), &err);
    if (!s) {
        EXPECT(0, "%s (set TABULA_DATA)", err.msg);
        return NULL;
    }
    for (int i = 0; i <= k; i++) CHECK(s->read(s, frames[slot], &err) == 1, "%s", err.msg);
    source_close(s);
    loaded[slot] = name;
    return frames[slot];
}

static double luma_at(const uint8_t *p) { return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]; }

static double channel_mean(const uint8_t *img, int w, int h, int c) {
    double s = 0;
    for (int i = 0; i < w * h; i++) s += img[3 * i + c];
    return s / (w * h);
}

// Detail: the mean absolute difference of horizontal neighbours, channel 0.
static double detail(const uint8_t *img, int w, int h) {
    double s = 0;
    for (int y = 0; y < h; y++)
        for (int x = 1; x < w; x++) s += fabs((double)img[3 * (y * w + x)] - img[3 * (y * w + x - 1)]);
    return s / ((double)(w - 1) * h);
}

static double variance(const uint8_t *img, int w, int h, int x0, int x1) {
    double s = 0, s2 = 0;
    int n = 0;
    for (int y = 0; y < h; y++)
        for (int x = x0; x < x1; x++, n++) s += img[3 * (y * w + x)], s2 += (double)img[3 * (y * w + x)] * img[3 * (y * w + x)];
    return s2 / n - (s / n) * (s / n);
}

TEST_IMPL(grey_keeps_luminance) {
    const uint8_t *in = real_frame("asl_signer_a_320x240.y4m", 0);
    if (!in) return;
    static uint8_t out[N * 3];
    Transform tf = {.kind = TF_GREY, .blur = 1};
    transform_apply(&tf, out, in, W, H, NULL);
    int worst = 0, coloured = 0;
    double lin = 0, lout = 0;
    for (int i = 0; i < N; i++) {
        const uint8_t *p = in + 3 * i, *q = out + 3 * i;
        EXPECT(q[0] == q[1] && q[1] == q[2], "pixel %d is not grey", i);
        if (q[0] != q[1] || q[1] != q[2]) break;
        int d = abs((int)q[0] - (int)lround(luma_at(p)));
        if (d > worst) worst = d;
        coloured += p[0] != p[1] || p[1] != p[2];
        lin += luma_at(p), lout += q[0];
    }
    EXPECT(coloured > N / 2, "the clip is in colour (%d coloured pixels)", coloured);
    EXPECT(worst <= 1, "a pixel's grey is %d from its BT.601 luminance", worst);
    EXPECT_NEAR(lout / N, lin / N, 0.05, "mean luminance");
}

TEST_IMPL(blur_factor_sets_the_cutoff) {
    static uint8_t img[64 * 64 * 3], out[64 * 64 * 3];
    Transform tf = {.kind = TF_NONE, .blur = 8};
    // A flat picture stays exactly what it was.
    memset(img, 200, sizeof img);
    transform_apply(&tf, out, img, 64, 64, NULL);
    EXPECT(memcmp(out, img, sizeof img) == 0, "flat picture changed");
    // Stripes finer than the factor (period 2 < 8) are gone: their mean is left.
    for (int i = 0; i < 64 * 64; i++) memset(img + 3 * i, (i % 64) & 1 ? 255 : 0, 3);
    transform_apply(&tf, out, img, 64, 64, NULL);
    EXPECT(variance(out, 64, 64, 0, 64) < 1e-3 * variance(img, 64, 64, 0, 64), "fine stripes kept: %g",
           variance(out, 64, 64, 0, 64));
    EXPECT_NEAR(channel_mean(out, 64, 64, 0), channel_mean(img, 64, 64, 0), 1.0, "fine stripes' mean");
    // Bars far coarser than the factor (period 64 > 8) keep most of their energy.
    for (int i = 0; i < 64 * 64; i++) memset(img + 3 * i, (i % 64) < 32 ? 255 : 0, 3);
    transform_apply(&tf, out, img, 64, 64, NULL);
    EXPECT(variance(out, 64, 64, 0, 64) > 0.75 * variance(img, 64, 64, 0, 64), "coarse bars lost: %g of %g",
           variance(out, 64, 64, 0, 64), variance(img, 64, 64, 0, 64));

    // A real frame: more factor, less detail; the colours' means stay.
    const uint8_t *in = real_frame("hikers_forest_320x240.y4m", 0);
    if (!in) return;
    static uint8_t b[N * 3];
    double last = detail(in, W, H);
    const int fs[] = {2, 8, 24};
    for (int k = 0; k < 3; k++) {
        tf.blur = fs[k];
        transform_apply(&tf, b, in, W, H, NULL);
        double d = detail(b, W, H);
        EXPECT(d < 0.75 * last, "blur %d: detail %.3f, was %.3f", fs[k], d, last);
        last = d;
        for (int c = 0; c < 3; c++) EXPECT_NEAR(channel_mean(b, W, H, c), channel_mean(in, W, H, c), 1.5, "mean");
    }
    EXPECT(last < 0.1 * detail(in, W, H), "blur 24 leaves %.3f of %.3f", last, detail(in, W, H));
}

TEST_IMPL(jitter_stays_in_range_and_only_trains) {
    const uint8_t *in = real_frame("asl_signer_a_320x240.y4m", 0);
    if (!in) return;
    static uint8_t out[N * 3];
    Transform tf = {.kind = TF_NONE, .blur = 1, .jitter = 0.2f};
    // Not training (the window, a paused forward): identity, and nothing to do.
    EXPECT(!transform_active(&tf, 0) && transform_active(&tf, 1), "jitter is active only in training");
    transform_apply(&tf, out, in, W, H, NULL);
    EXPECT(memcmp(out, in, sizeof out) == 0, "jitter changed a frame outside training");
    // Flat frames at three levels, 500 draws each: within brightness +-J*255 and
    // contrast x(1+-J) about mid-grey, and reaching near both ends.
    TbRng rng;
    tb_rng_seed(&rng, 7);
    static uint8_t flat[8 * 8 * 3], o[8 * 8 * 3];
    const int levels[] = {0, 100, 255};
    for (int k = 0; k < 3; k++) {
        memset(flat, levels[k], sizeof flat);
        double v = levels[k] - 127.5, lo = 1e9, hi = -1e9;
        double want_lo = v * (v > 0 ? 0.8 : 1.2) + 127.5 - 0.2 * 255, want_hi = v * (v > 0 ? 1.2 : 0.8) + 127.5 + 0.2 * 255;
        for (int i = 0; i < 500; i++) {
            transform_apply(&tf, o, flat, 8, 8, &rng);
            int same = 1;
            for (size_t j = 0; j < sizeof o; j++) same &= o[j] == o[0];
            EXPECT(same, "one draw per frame, the same for every pixel");
            if (o[0] < lo) lo = o[0];
            if (o[0] > hi) hi = o[0];
        }
        EXPECT(lo >= floor(fmax(want_lo, 0)) && hi <= ceil(fmin(want_hi, 255)), "level %d: %g..%g outside %g..%g",
               levels[k], lo, hi, want_lo, want_hi);
        double span = fmin(want_hi, 255) - fmax(want_lo, 0);
        EXPECT(hi - lo > 0.8 * span, "level %d: draws cover %g of %g", levels[k], hi - lo, span);
    }
}

TEST_IMPL(edges_respond_to_a_step_edge) {
    enum { S = 32 };
    static uint8_t img[S * S * 3], out[S * S * 3];
    Transform tf = {.kind = TF_EDGES, .blur = 1};
    for (int i = 0; i < S * S; i++) memset(img + 3 * i, (i % S) < S / 2 ? 0 : 255, 3);
    transform_apply(&tf, out, img, S, S, NULL);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const uint8_t *q = out + 3 * (y * S + x);
            int at_edge = x == S / 2 - 1 || x == S / 2;
            EXPECT(q[0] == q[1] && q[1] == q[2], "(%d,%d) not grey", x, y);
            EXPECT(at_edge ? q[0] == 255 : q[0] == 0, "(%d,%d) = %d", x, y, q[0]);
        }
    // A flat colour has no edges.
    for (int i = 0; i < S * S; i++) img[3 * i] = 200, img[3 * i + 1] = 40, img[3 * i + 2] = 90;
    transform_apply(&tf, out, img, S, S, NULL);
    int most = 0;
    for (int i = 0; i < S * S * 3; i++) most = out[i] > most ? out[i] : most;
    EXPECT(most == 0, "flat colour gives edges up to %d", most);
}

static void small_settings(Settings *s) {
    settings_default(s);
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->channels, sizeof s->channels, "8,16");
    s->width = 32, s->height = 32;
    s->lr = 0.05f;
}

static uint8_t frame32[32 * 32 * 3];
static void make_frame(void) {
    for (int i = 0; i < 32 * 32; i++)
        frame32[3 * i] = (uint8_t)(i * 7), frame32[3 * i + 1] = (uint8_t)(i / 3), frame32[3 * i + 2] = 50;
}

// Without a transform the trainer's step is the step of before: the batch is
// the frame itself (no copy), the loss and weights equal a backend driven
// directly with load_batch alone.
TEST_IMPL(no_transform_step_is_unchanged) {
    Settings s;
    small_settings(&s);
    Trainer a, b;
    TbErr err;
    make_frame();
    CHECK(trainer_init_settings(&a, &s, NULL, &err) == 0 && trainer_init_settings(&b, &s, NULL, &err) == 0, "%s", err.msg);
    trainer_push_frame(&a, frame32, 32, 32);
    trainer_train(&a, 1, 0);
    EXPECT(trainer_input(&a) == trainer_newest(&a), "the input is the ring's frame");
    const uint8_t *f[1] = {frame32};
    b.be->load_batch(b.be, f, 1);
    b.be->train_step(b.be, 1, &a.hyper, 0);
    StepStats sa[TB_STATS_RING], sb[2];
    trainer_read_stats(&a, sa);
    b.be->read_stats(b.be, sb, 1);
    EXPECT(sa[0].loss == sb[0].loss, "loss %.9g vs %.9g", (double)sa[0].loss, (double)sb[0].loss);
    size_t n = a.model.n_params;
    float *pa = tb_malloc(n * sizeof(float)), *pb = tb_malloc(n * sizeof(float));
    a.be->get_params(a.be, pa), b.be->get_params(b.be, pb);
    EXPECT(memcmp(pa, pb, n * sizeof(float)) == 0, "weights differ");
    free(pa), free(pb);
    trainer_free(&a), trainer_free(&b);
}

// grey: the network is given grey, the loss compares with the colour frame.
TEST_IMPL(grey_input_colour_target) {
    Settings s;
    small_settings(&s);
    snprintf(s.transform, sizeof s.transform, "grey");
    Trainer a, b;
    TbErr err;
    make_frame();
    CHECK(trainer_init_settings(&a, &s, NULL, &err) == 0 && trainer_init_settings(&b, &s, NULL, &err) == 0, "%s", err.msg);
    EXPECT(a.tf.kind == TF_GREY, "transform from the settings: %d", a.tf.kind);
    trainer_push_frame(&a, frame32, 32, 32);
    trainer_train(&a, 1, 0);
    const uint8_t *in = trainer_input(&a), *ring = trainer_newest(&a);
    int grey = 1, colour = 0;
    for (int i = 0; i < 32 * 32; i++) {
        grey &= in[3 * i] == in[3 * i + 1] && in[3 * i + 1] == in[3 * i + 2];
        colour |= ring[3 * i] != ring[3 * i + 1];
    }
    EXPECT(grey && colour, "input grey (%d), ring still in colour (%d)", grey, colour);
    // The same step by hand: grey in, colour as the target.
    static uint8_t g[32 * 32 * 3];
    transform_apply(&a.tf, g, frame32, 32, 32, NULL);
    const uint8_t *fi[1] = {g}, *ft[1] = {frame32};
    b.be->load_batch(b.be, fi, 1);
    b.be->load_targets(b.be, ft, 1);
    b.be->train_step(b.be, 1, &a.hyper, 0);
    StepStats sa[TB_STATS_RING], sb[2];
    trainer_read_stats(&a, sa);
    b.be->read_stats(b.be, sb, 1);
    EXPECT(sa[0].loss == sb[0].loss, "loss %.9g vs %.9g", (double)sa[0].loss, (double)sb[0].loss);
    // Grey as its own target would be another loss.
    b.be->load_batch(b.be, fi, 1);
    b.be->train_step(b.be, 1, &a.hyper, 1);
    b.be->read_stats(b.be, sb, 2);
    EXPECT(sb[1].loss != sa[0].loss, "the target is not the clean frame");
    trainer_free(&a), trainer_free(&b);
}

// Copy a checkpoint with one metadata value replaced.
static void rewrite_meta(const char *src, const char *dst, const char *key, const char *value) {
    StFile f;
    TbErr err;
    CHECK(st_read(&f, src, &err) == 0, "%s", err.msg);
    StWriter w;
    st_writer_init(&w);
    for (int i = 0; i < f.n; i++) st_writer_add(&w, f.t[i].name, f.t[i].dtype, f.t[i].ndim, f.t[i].shape, f.t[i].data);
    for (int i = 0; i < f.n_meta; i++)
        st_writer_meta(&w, f.meta_key[i], strcmp(f.meta_key[i], key) == 0 ? value : f.meta_val[i]);
    CHECK(st_writer_save(&w, dst, &err) == 0, "%s", err.msg);
    st_writer_free(&w);
    st_free(&f);
}

TEST_IMPL(checkpoint_brings_the_transform) {
    Settings s;
    small_settings(&s);
    snprintf(s.transform, sizeof s.transform, "grey");
    s.blur = 24, s.jitter = 0.1f;
    Trainer a, b;
    TbErr err = {{0}};
    char path[96], bad[96];
    snprintf(path, sizeof path, "/tmp/tabula-tf-%d.safetensors", (int)getpid());
    snprintf(bad, sizeof bad, "/tmp/tabula-tf-%d-bad.safetensors", (int)getpid());
    CHECK(trainer_init_settings(&a, &s, NULL, &err) == 0, "%s", err.msg);
    EXPECT(checkpoint_save(path, &a, 1, &err) == 0, "%s", err.msg);
    small_settings(&s);  // transform none
    CHECK(trainer_init_settings(&b, &s, NULL, &err) == 0, "%s", err.msg);
    EXPECT(checkpoint_load(path, &b, &err) == 0, "%s", err.msg);
    EXPECT(b.tf_from_file && b.tf.kind == TF_GREY && b.tf.blur == 24 && b.tf.jitter == 0.1f,
           "loaded: from file %d, kind %d blur %d jitter %g", b.tf_from_file, b.tf.kind, b.tf.blur, (double)b.tf.jitter);
    // A transform this build does not know: an error naming the file and the
    // transform; the trainer keeps what it had.
    rewrite_meta(path, bad, "transform", "sepia");
    EXPECT(checkpoint_load(bad, &b, &err) == -1 && strstr(err.msg, bad) && strstr(err.msg, "sepia"), "%s", err.msg);
    rewrite_meta(path, bad, "blur", "0");
    EXPECT(checkpoint_load(bad, &b, &err) == -1 && strstr(err.msg, "blur"), "%s", err.msg);
    rewrite_meta(path, bad, "jitter", "nan");
    EXPECT(checkpoint_load(bad, &b, &err) == -1 && strstr(err.msg, "jitter"), "%s", err.msg);
    EXPECT(b.tf.kind == TF_GREY, "a refused file changed the transform");
    unlink(path), unlink(bad);
    trainer_free(&a), trainer_free(&b);
}

TEST_MAIN(TEST_ENTRY(grey_keeps_luminance), TEST_ENTRY(blur_factor_sets_the_cutoff),
          TEST_ENTRY(jitter_stays_in_range_and_only_trains), TEST_ENTRY(edges_respond_to_a_step_edge),
          TEST_ENTRY(no_transform_step_is_unchanged), TEST_ENTRY(grey_input_colour_target),
          TEST_ENTRY(checkpoint_brings_the_transform))
