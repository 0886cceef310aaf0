// test_dream.c: why it exists: the feedback dream feeds the network its own
// output. With the amount at 0 the mirror must be exactly what it was without
// the feature (a show that never dreams must not change by a bit); at 1 the
// camera must have no say at all (else it is not dreaming alone); the warp
// must move the picture by what the knobs say; and a take must record what
// went into the ring (the dream), so that a replay is exact.
#define _DEFAULT_SOURCE
#include <string.h>

#include "run.h"
#include "source.h"
#include "test.h"

enum { W = 64, H = 48, N = W * H * 3, CW = 320, CH = 240 };

static Settings settings(void) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H;
    s.headless = 1;
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.scenes, sizeof s.scenes, "%s", "");
    return s;
}

// n frames of a real clip (320x240).
static uint8_t *clip(const char *name, int n) {
    TbErr err = {{0}};
    Source *s = source_open_y4m(test_data(name), &err);
    EXPECT(s != NULL, "%s (set TABULA_DATA)", err.msg);
    if (!s) return NULL;
    uint8_t *f = tb_malloc((size_t)n * CW * CH * 3);
    for (int i = 0; i < n; i++) CHECK(s->read(s, f + (size_t)i * CW * CH * 3, &err) == 1, "%s", err.msg);
    source_close(s);
    return f;
}

// A run of n frames from `frames` (frame 0 from `first` when given), each
// frame's output into out (n * N bytes).
static int run_frames(const Settings *s, const uint8_t *first, const uint8_t *frames, int n, uint8_t *out) {
    Run r;
    TbErr err = {{0}};
    if (run_open(&r, s, NULL, &err)) {
        EXPECT(0, "%s", err.msg);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *f = i == 0 && first ? first : frames + (size_t)i * CW * CH * 3;
        run_frame(&r, f, CW, CH);
        run_output(&r, out + (size_t)i * N);
    }
    run_close(&r);
    return 1;
}

enum { FRAMES = 6 };

// Feedback 0 with every other dream knob turned: the same bits as a plain run.
TEST_IMPL(amount_zero_is_the_plain_mirror) {
    uint8_t *f = clip("hikers_forest_320x240.y4m", FRAMES);
    if (!f) return;
    uint8_t *a = tb_malloc((size_t)FRAMES * N), *b = tb_malloc((size_t)FRAMES * N);
    Settings s = settings();
    run_frames(&s, NULL, f, FRAMES, a);
    s.zoom = 1.1f, s.rotate = 5, s.shift_x = 2, s.tau = 0.5f;
    run_frames(&s, NULL, f, FRAMES, b);
    EXPECT(memcmp(a, b, (size_t)FRAMES * N) == 0, "feedback 0 changed the output");
    s.feedback = 0.5f, s.tau = 0;
    run_frames(&s, NULL, f, FRAMES, b);
    EXPECT(memcmp(a, b, (size_t)FRAMES * N) != 0, "feedback 0.5 leaves the output as it was");
    free(a), free(b), free(f);
}

// Feedback 1: after the first frame (the dream's seed) another clip gives the
// same outputs, learning paused (it dreams alone) or on (it learns its dream).
TEST_IMPL(full_feedback_ignores_the_camera) {
    uint8_t *f = clip("hikers_forest_320x240.y4m", FRAMES), *g = clip("flower_timelapse_320x240.y4m", FRAMES);
    if (!f || !g) return;
    uint8_t *a = tb_malloc((size_t)FRAMES * N), *b = tb_malloc((size_t)FRAMES * N);
    for (int pause = 1; pause >= 0; pause--) {
        Settings s = settings();
        s.feedback = 1, s.pause = pause, s.zoom = 1.02f, s.rotate = 1;
        run_frames(&s, NULL, f, FRAMES, a);
        run_frames(&s, f, g, FRAMES, b);
        EXPECT(memcmp(a, b, (size_t)FRAMES * N) == 0, "pause %d: the camera changed the dream", pause);
        s.feedback = 0.9f;
        run_frames(&s, f, g, FRAMES, b);
        EXPECT(memcmp(a, b, (size_t)FRAMES * N) != 0, "pause %d: feedback 0.9 ignores the camera", pause);
    }
    free(a), free(b), free(f), free(g);
}

// tau: the blend in force follows feedback over time and lands exactly.
TEST_IMPL(tau_glides_and_lands) {
    uint8_t *f = clip("hikers_forest_320x240.y4m", 1);
    if (!f) return;
    Settings s = settings();
    s.fps = 10, s.tau = 0.5f, s.feedback = 1, s.pause = 1;  // forward passes only: quicker
    Run r;
    TbErr err = {{0}};
    if (run_open(&r, &s, NULL, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    run_frame(&r, f, CW, CH);  // t = 0: nothing has passed yet
    run_frame(&r, f, CW, CH);  // t = 0.1 s
    EXPECT_NEAR(r.dream_a, 1 - exp(-0.1 / 0.5), 1e-5, "one frame of tau 0.5 s at 10 fps");
    live_params_set(&r.p, PARAM_FEEDBACK, 0);
    for (int i = 0; i < 60; i++) run_frame(&r, f, CW, CH);
    EXPECT(r.dream_a == 0, "after 6 s (12 tau) the blend is exactly 0, not %g", (double)r.dream_a);
    run_close(&r);
    free(f);
}

// The recorder gets what went into the ring (the dream), not the camera.
static uint8_t got_[N];
static int got_n_;
static int always(void *u, Run *r) { return (void)u, (void)r, 1; }
static void take(void *u, Run *r, const uint8_t *in, const uint8_t *recon) {
    (void)u, (void)r, (void)recon;
    memcpy(got_, in, N);
    got_n_++;
}

TEST_IMPL(a_take_records_the_dream) {
    uint8_t *f = clip("hikers_forest_320x240.y4m", 3);
    if (!f) return;
    Settings s = settings();
    s.feedback = 1;
    Run r;
    TbErr err = {{0}};
    if (run_open(&r, &s, NULL, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    RunOutput o = {.active = always, .frame = take};
    run_attach(&r, &o);
    uint8_t out[N], prev[N];
    for (int i = 0; i < 3; i++) {
        memcpy(prev, r.dream_prev, N);
        run_frame(&r, f + (size_t)i * CW * CH * 3, CW, CH);
        run_output(&r, out);
    }
    EXPECT(got_n_ == 3, "%d frames recorded", got_n_);
    EXPECT(memcmp(got_, trainer_newest(&r.t), N) == 0, "the take got the ring's frame");
    EXPECT(memcmp(got_, prev, N) == 0, "feedback 1, no warp: the ring's frame is the last output");
    run_close(&r);
    free(f);
}

// A replay feeds the recorded ring frames back with dream_recorded set: the
// same outputs, bit for bit, as the dreamed run (learning on).
static uint8_t rec_[FRAMES][N];
static int rec_n_;
static void keep_ring(void *u, Run *r, const uint8_t *in, const uint8_t *recon) {
    (void)u, (void)r, (void)recon;
    if (rec_n_ < FRAMES) memcpy(rec_[rec_n_++], in, N);
}

TEST_IMPL(a_replay_is_not_dreamed_twice) {
    uint8_t *f = clip("hikers_forest_320x240.y4m", FRAMES);
    if (!f) return;
    uint8_t *a = tb_malloc((size_t)FRAMES * N), *b = tb_malloc((size_t)FRAMES * N);
    Settings s = settings();
    s.feedback = 0.6f, s.zoom = 1.05f;
    for (int replay = 0; replay < 2; replay++) {
        Run r;
        TbErr err = {{0}};
        if (run_open(&r, &s, NULL, &err)) {
            EXPECT(0, "%s", err.msg);
            break;
        }
        RunOutput o = {.active = always, .frame = keep_ring};
        if (!replay) run_attach(&r, &o);
        r.dream_recorded = replay;
        for (int i = 0; i < FRAMES; i++) {
            if (replay) run_frame(&r, rec_[i], W, H);
            else run_frame(&r, f + (size_t)i * CW * CH * 3, CW, CH);
            run_output(&r, (replay ? b : a) + (size_t)i * N);
        }
        run_close(&r);
    }
    EXPECT(rec_n_ == FRAMES, "%d frames recorded", rec_n_);
    EXPECT(memcmp(a, b, (size_t)FRAMES * N) == 0, "the replay differs from the dreamed run");
    free(a), free(b), free(f);
}

// A white square on black, moved by the warp: its centroid and its size.
static void centroid(const uint8_t *img, int w, int h, double *cx, double *cy, double *mass) {
    double sx = 0, sy = 0, m = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = img[((size_t)y * w + x) * 3 + 1];
            sx += v * x, sy += v * y, m += v;
        }
    *cx = sx / m, *cy = sy / m, *mass = m;
}

TEST_IMPL(warp_moves_a_square_by_the_set_amount) {
    enum { WW = 96, WH = 64 };
    static uint8_t in[WW * WH * 3], out[WW * WH * 3];
    for (int y = 40; y < 50; y++)  // a 10x10 square right of and below the centre
        for (int x = 60; x < 70; x++) memset(in + ((size_t)y * WW + x) * 3, 255, 3);
    double cx0, cy0, m0, cx, cy, m;
    double mx = (WW - 1) / 2.0, my = (WH - 1) / 2.0;
    centroid(in, WW, WH, &cx0, &cy0, &m0);
    Warp id = {.zoom = 1};
    warp_apply(&id, out, in, WW, WH);
    EXPECT(memcmp(in, out, sizeof in) == 0, "the identity copies bit for bit");
    Warp sh = {.zoom = 1, .shift_x = 3, .shift_y = -2};
    warp_apply(&sh, out, in, WW, WH);
    centroid(out, WW, WH, &cx, &cy, &m);
    EXPECT(fabs(cx - cx0 - 3) < 1e-9 && fabs(cy - cy0 + 2) < 1e-9 && m == m0, "shift (3,-2): moved (%.4f,%.4f)",
           cx - cx0, cy - cy0);
    Warp half = {.zoom = 1, .shift_x = 0.5f};  // bilinear: half a pixel moves the centroid half a pixel
    warp_apply(&half, out, in, WW, WH);
    centroid(out, WW, WH, &cx, &cy, &m);
    EXPECT(fabs(cx - cx0 - 0.5) < 0.01 && fabs(cy - cy0) < 1e-9, "shift 0.5: moved %.4f", cx - cx0);
    Warp z = {.zoom = 1.5f};
    warp_apply(&z, out, in, WW, WH);
    centroid(out, WW, WH, &cx, &cy, &m);
    EXPECT(fabs((cx - mx) / (cx0 - mx) - 1.5) < 0.02 && fabs((cy - my) / (cy0 - my) - 1.5) < 0.02,
           "zoom 1.5: %.3f x, %.3f y from the centre", (cx - mx) / (cx0 - mx), (cy - my) / (cy0 - my));
    EXPECT(fabs(m / m0 - 2.25) < 0.05, "zoom 1.5: area x%.3f, want 2.25", m / m0);
    Warp r = {.zoom = 1, .rotate = 90};  // clockwise on screen: right of the centre goes below it
    warp_apply(&r, out, in, WW, WH);
    centroid(out, WW, WH, &cx, &cy, &m);
    EXPECT(fabs(cx - (mx - (cy0 - my))) < 0.01 && fabs(cy - (my + (cx0 - mx))) < 0.01,
           "rotate 90: (%.3f,%.3f) -> (%.3f,%.3f)", cx0 - mx, cy0 - my, cx - mx, cy - my);
}

TEST_MAIN(TEST_ENTRY(amount_zero_is_the_plain_mirror), TEST_ENTRY(full_feedback_ignores_the_camera),
          TEST_ENTRY(tau_glides_and_lands), TEST_ENTRY(a_take_records_the_dream),
          TEST_ENTRY(a_replay_is_not_dreamed_twice),
          TEST_ENTRY(warp_moves_a_square_by_the_set_amount))
