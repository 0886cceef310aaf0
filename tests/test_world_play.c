// test_world_play.c: why it exists: a world is sold to the artist as "a network
// that has only ever seen forest": shown a camera it never saw, it should paint
// that scene in the forest's colours, and rebuild forest it was not trained on
// better than a blank network. Played live, learning on must let the camera take
// over from it; learning frozen must keep it exactly as shipped, bit for bit,
// for weeks. And the world action must load it into its slot, bring its
// transform and fade to it. All on the shipped weights/forest.safetensors
// (trained on the hikers clip, its last 60 frames held back) and real clips.
#include <string.h>

#include "checkpoint.h"
#include "frame_fit.h"
#include "run.h"
#include "safetensors.h"
#include "settings_trainer.h"
#include "test.h"

enum { S = 256, FB = S * S * 3, BINS = 8 };
// Margins, measured below each case.
#define COLOUR_MARGIN 0.08
#define HELD_MARGIN_DB 5.0
#define TAKEOVER_FRAMES 120
#define TAKEOVER_GAIN_DB 4.5

static const char *world_file(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/weights/forest.safetensors", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    return path;
}

// Frames first, first+step, ... (n of them) of a clip, fitted to S x S.
static uint8_t *clip_frames(const char *name, int first, int step, int n) {
    TbErr err = {{0}};
    Source *s = source_open_y4m(test_data(name), &err);
    CHECK(s, "%s (set TABULA_DATA)", err.msg);
    uint8_t *rgb = tb_malloc((size_t)s->width * s->height * 3), *out = tb_malloc((size_t)n * FB);
    for (int i = 0, k = 0; k < n; i++) {
        CHECK(s->read(s, rgb, &err) == 1, "%s", err.msg);
        if (i >= first && (i - first) % step == 0) frame_fit(out + (size_t)k++ * FB, S, S, rgb, s->width, s->height);
    }
    free(rgb);
    source_close(s);
    return out;
}

// The live settings at S x S with the world to load (NULL: a blank network).
static void settings_for(Settings *s, const char *load) {
    settings_default(s);
    s->width = s->height = S;
    s->autosave_minutes = 0;
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->load, sizeof s->load, "%.200s", load ? load : "");
    s->stats_every = 1;  // the PSNR of every frame
}

static int open_world(Trainer *t, const char *load) {
    Settings s;
    settings_for(&s, load);
    TbErr err = {{0}};
    if (session_setup_trainer(t, &s, &err)) {
        EXPECT(0, "%s", err.msg);
        return -1;
    }
    return 0;
}

// Joint RGB histogram (BINS per channel), normalised to sum 1.
static void histogram(const uint8_t *px, size_t n_px, double *h) {
    memset(h, 0, sizeof(double) * BINS * BINS * BINS);
    for (size_t i = 0; i < n_px; i++) {
        const uint8_t *p = px + 3 * i;
        h[(p[0] * BINS / 256 * BINS + p[1] * BINS / 256) * BINS + p[2] * BINS / 256] += 1.0 / n_px;
    }
}

// Total variation distance: half the L1 distance (0 same, 1 disjoint).
static double tv(const double *a, const double *b) {
    double d = 0;
    for (int i = 0; i < BINS * BINS * BINS; i++) d += fabs(a[i] - b[i]);
    return d / 2;
}

// The reconstructions of n frames (forward only, with the world's transform).
static uint8_t *outputs(Trainer *t, const uint8_t *frames, int n) {
    uint8_t *out = tb_malloc((size_t)n * FB);
    for (int i = 0; i < n; i++) {
        trainer_push_frame(t, frames + (size_t)i * FB, S, S);
        trainer_train(t, 0, 0);
        trainer_output(t, out + (size_t)i * FB);
    }
    return out;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return 10 * log10(255.0 * 255.0 / (se / n + 1e-12));
}

// Shown the ASL signer's office (a clip it never saw), the forest world paints
// in the forest's colours: the joint RGB histogram of its output is nearer the
// hikers clip's than the office's. Measured (total variation distance of 8x8x8
// bin histograms, 30 frames each): output to theme 0.52, output to camera 0.68
// (camera to theme 0.80; the world at 750 of its 1000 steps: 0.50 and 0.71).
// Asked: nearer the theme by 0.08; a world that passed the camera's colours
// through would be nearer the camera.
TEST_IMPL(unseen_camera_takes_the_themes_colours) {
    Trainer t;
    if (open_world(&t, world_file())) return;
    uint8_t *cam = clip_frames("asl_signer_a_320x240.y4m", 0, 10, 30);
    uint8_t *theme = clip_frames("hikers_forest_320x240.y4m", 0, 10, 30);
    uint8_t *out = outputs(&t, cam, 30);
    static double hc[BINS * BINS * BINS], ht[BINS * BINS * BINS], ho[BINS * BINS * BINS];
    histogram(cam, 30 * S * S, hc);
    histogram(theme, 30 * S * S, ht);
    histogram(out, 30 * S * S, ho);
    double d_theme = tv(ho, ht), d_cam = tv(ho, hc);
    printf("histogram distance of the output: to the theme %.3f, to the camera %.3f (camera to theme %.3f)\n",
           d_theme, d_cam, tv(hc, ht));
    EXPECT(d_theme < d_cam - COLOUR_MARGIN, "to the theme %.3f, to the camera %.3f", d_theme, d_cam);
    free(cam), free(theme), free(out);
    trainer_free(&t);
}

// The hikers clip's last 60 frames were held back from training: the world
// rebuilds them better than a blank network given the same transform.
// Measured: 21.5 dB against 12.1 dB (every 4th of frames 240-299; the trainer's
// own report over all 60: 21.46 and 12.07). Asked: 5 dB better.
TEST_IMPL(held_back_theme_frames_beat_the_blank_network) {
    Trainer world, blank;
    if (open_world(&world, world_file())) return;
    if (open_world(&blank, NULL)) return;
    blank.tf = world.tf;  // the same input (grey, blurred)
    uint8_t *held = clip_frames("hikers_forest_320x240.y4m", 240, 4, 15);
    uint8_t *ow = outputs(&world, held, 15), *ob = outputs(&blank, held, 15);
    double pw = psnr(ow, held, (size_t)15 * FB), pb = psnr(ob, held, (size_t)15 * FB);
    printf("held-back frames: world %.2f dB, blank network %.2f dB\n", pw, pb);
    EXPECT(pw > pb + HELD_MARGIN_DB, "world %.2f dB, blank %.2f dB", pw, pb);
    free(held), free(ow), free(ob);
    trainer_free(&world);
    trainer_free(&blank);
}

// The mean PSNR against the camera over frames [a, b) of a live run from the
// world on the ASL clip, one step a frame with the default settings; freeze
// (pause = 1) keeps learning off. The run's own metrics give the PSNR.
static void live_run(int pause, int frames, float *psnr_out, float *params) {
    Settings s;
    settings_for(&s, world_file());
    s.pause = pause;
    Run r;
    TbErr err = {{0}};
    CHECK(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    uint8_t *cam = clip_frames("asl_signer_a_320x240.y4m", 0, 1, frames);
    for (int i = 0; i < frames; i++) {
        run_frame(&r, cam + (size_t)i * FB, S, S);
        run_flush(&r);
        psnr_out[i] = r.m.psnr;
    }
    r.t.be->get_params(r.t.be, params);
    free(cam);
    run_close(&r);
}

static double mean(const float *v, int a, int b) {
    double s = 0;
    for (int i = a; i < b; i++) s += v[i];
    return s / (b - a);
}

// Learning on: the camera's scene takes over from the world. Start: the PSNR
// of the world's own picture of the first frame (before any step). Taken over:
// the first frame where the mean of the last 10 frames is 3 dB above it.
// Measured (forest world, ASL clip, defaults: SGD lr 2, one step a frame):
// start 18.7 dB; the first steps shake it (about 10 dB at frames 1-10), taken
// over at frame 57 (README: about 60 steps), 25.4 dB at frames 110-120 (+6.8 dB).
// Asked: taken over within 90 frames (the README says about 60) and +4.5 dB at
// the end.
TEST_IMPL(learning_on_the_camera_takes_over) {
    enum { N = TAKEOVER_FRAMES };
    float p[N];
    Trainer t;
    if (open_world(&t, world_file())) return;
    float *w = tb_malloc(t.model.n_params * sizeof(float));
    trainer_free(&t);
    live_run(0, N, p, w);
    double start = p[0], end = mean(p, N - 10, N);
    int over = -1;
    for (int i = 10; i <= N && over < 0; i++)
        if (mean(p, i - 10, i) > start + 3) over = i;
    printf("learning on: PSNR against the camera %.2f dB (the world's, frame 0) -> %.2f dB (frames %d-%d); "
           "taken over (10-frame mean +3 dB) at frame %d\n", start, end, N - 10, N, over);
    for (int i = 0; i < N; i += 5) printf("  frame %3d: %.2f dB\n", i, p[i]);
    EXPECT(over > 0 && over <= 90, "the camera took over at frame %d (-1: not in %d)", over, N);
    EXPECT(end > start + TAKEOVER_GAIN_DB, "%.2f -> %.2f dB", start, end);
    free(w);
}

// Learning frozen: after 30 frames the weights are the file's, bit for bit.
TEST_IMPL(frozen_world_stays_bit_for_bit) {
    Trainer t;
    if (open_world(&t, world_file())) return;
    size_t n = t.model.n_params;
    float *file = tb_malloc(n * sizeof(float)), *live = tb_malloc(n * sizeof(float)), p[30];
    t.be->get_params(t.be, file);
    Model m = t.model;
    trainer_free(&t);
    live_run(1, 30, p, live);
    EXPECT(memcmp(file, live, n * sizeof(float)) == 0, "the frozen world's weights changed");
    // The same 30 frames with learning on do change them (the check can fail).
    live_run(0, 30, p, live);
    EXPECT(memcmp(file, live, n * sizeof(float)) != 0, "learning on left the weights as they were");
    (void)m;
    free(file), free(live);
}

// The world action (keys, MIDI, OSC): world 1 of [world] dir (forest, first by
// name) into [world] slot, with its transform; fade_time 0 makes it the live
// network at once, bit for bit. A world that is not there is a message.
TEST_IMPL(world_action_loads_its_slot_and_transform) {
    Trainer t;
    if (open_world(&t, world_file())) return;
    size_t n = t.model.n_params;
    float *file = tb_malloc(n * sizeof(float)), *live = tb_malloc(n * sizeof(float));
    t.be->get_params(t.be, file);
    trainer_free(&t);
    Settings s;
    settings_for(&s, NULL);
    snprintf(s.world_dir, sizeof s.world_dir, "%.200s/weights", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    s.fade_time = 0;
    Run r;
    TbErr err = {{0}};
    CHECK(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    char msg[512];
    ControlEvent e = {.cmd = CMD_WORLD, .value = 1, .source = SRC_OSC};
    run_control(&r, &e, msg, sizeof msg);
    r.t.be->get_params(r.t.be, live);
    EXPECT(memcmp(file, live, n * sizeof(float)) == 0, "world 1 is not the live network: %s", msg);
    EXPECT(trainer_slot_full(&r.t, s.world_slot), "slot %d is empty", s.world_slot);
    EXPECT(r.p.v[PARAM_TRANSFORM] == TF_GREY && r.p.v[PARAM_BLUR] == 8, "transform %g, blur %g",
           (double)r.p.v[PARAM_TRANSFORM], (double)r.p.v[PARAM_BLUR]);
    e.value = 9;
    run_control(&r, &e, msg, sizeof msg);
    EXPECT(strstr(msg, "world 9:") && strstr(msg, "worlds"), "%s", msg);
    run_close(&r);
    free(file), free(live);
}

TEST_MAIN(TEST_ENTRY(unseen_camera_takes_the_themes_colours), TEST_ENTRY(held_back_theme_frames_beat_the_blank_network),
          TEST_ENTRY(learning_on_the_camera_takes_over), TEST_ENTRY(frozen_world_stays_bit_for_bit),
          TEST_ENTRY(world_action_loads_its_slot_and_transform))
