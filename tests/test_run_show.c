// test_run_show.c: why it exists: a gallery day through the run loop
// (src/cli/run.c), the path both drivers share. An empty room must stop the
// steps the way [train] pause does, while frames still go in and the
// reconstruction still follows them (a visitor sees the mirror, not a frozen
// picture); motion must bring the steps back on its very frame; each change is
// one event, not one per frame. A rebirth at opening must be exactly the
// network a fresh start with that seed makes, or "fresh every morning" would
// quietly drift.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "test.h"

enum { W = 32, H = 32, N = W * H * 3 };

// Headless: the run's clock is frames / 30, so times are exact.
static Settings settings(const char *events) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H;
    s.headless = 1;
    s.autosave_minutes = 0;  // no files
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.events, sizeof s.events, "%s", events ? events : "");
    return s;
}

static int open_run(Run *r, const Settings *s) {
    TbErr err = {{0}};
    int rc = run_open(r, s, NULL, &err);
    EXPECT(rc == 0, "%s", err.msg);
    return rc == 0;
}

// A still picture with structure, brightened by `plus`.
static void picture(uint8_t *rgb, int plus) {
    for (int i = 0; i < N; i++) rgb[i] = (uint8_t)(20 + i % 97 + plus);
}

static float *weights(Run *r) {
    float *p = tb_malloc(r->t.model.n_params * sizeof(float));
    r->t.be->get_params(r->t.be, p);
    return p;
}

// [presence] mode pause, after 1 s, threshold 0.2 (a change of 30 levels is
// 0.12: still; 120 levels is 0.47: motion).
TEST_IMPL(empty_room_pauses_steps_but_not_the_mirror) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-show-%d.jsonl", (int)getpid());
    Settings s = settings(path);
    snprintf(s.presence_mode, sizeof s.presence_mode, "pause");
    s.presence_threshold = 0.2f, s.presence_after_s = 1;
    Run r;
    if (!open_run(&r, &s)) return;
    static uint8_t a[N], b[N], c[N], out_a[N], out_b[N];
    picture(a, 0), picture(b, 30), picture(c, 120);
    int entered_at = -1;
    for (int f = 0; f < 40; f++) {
        run_frame(&r, a, W, H);
        if (r.pres_change > 0 && entered_at < 0) entered_at = f;
    }
    EXPECT(entered_at == 30 && r.t.step == 30, "empty at frame %d (want 30 = 1 s), %ld steps (want 30)",
           entered_at, r.t.step);
    float *w0 = weights(&r);
    run_output(&r, out_a);
    run_frame(&r, b, W, H);  // a small change: still empty, no step
    run_output(&r, out_b);
    float *w1 = weights(&r);
    EXPECT(r.t.step == 30 && r.pres.empty, "paused: %ld steps, empty %d", r.t.step, r.pres.empty);
    EXPECT(memcmp(w0, w1, r.t.model.n_params * sizeof(float)) == 0, "weights moved while paused");
    EXPECT(trainer_newest(&r.t)[0] == b[0] && trainer_newest(&r.t)[N - 1] == b[N - 1], "the frame went in");
    int differ = 0;
    for (int i = 0; i < N; i++) differ += out_a[i] != out_b[i];
    EXPECT(differ > N / 10, "the reconstruction follows the new frame: %d of %d values changed", differ, N);
    run_frame(&r, c, W, H);  // motion
    EXPECT(r.pres_change == -1 && r.t.step == 31 && r.frames == 42, "motion: change %d, %ld steps, %ld frames",
           r.pres_change, r.t.step, r.frames);
    run_close(&r);
    const char *log = test_read_all(path);
    EXPECT(test_count(log, "\"source\":\"presence\"") == 2, "%d presence events, want 2:\n%s",
           test_count(log, "\"source\":\"presence\""), log ? log : "");
    EXPECT(test_count(log, "\"frame\":30,\"step\":30,\"source\":\"presence\",\"action\":\"empty\"") == 1 &&
               test_count(log, "\"frame\":41,\"step\":30,\"source\":\"presence\",\"action\":\"motion\"") == 1,
           "events:\n%s", log ? log : "");
    unlink(path);
    free(w0);
    free(w1);
}

// An operator's pause stays a pause when the room fills again; slow mode
// scales the lr the trainer uses, not the live value every surface shows.
TEST_IMPL(hand_pause_holds_and_slow_mode_scales_lr) {
    Settings s = settings(NULL);
    snprintf(s.presence_mode, sizeof s.presence_mode, "pause");
    s.presence_after_s = 0.5f;
    s.pause = 1;
    Run r;
    if (!open_run(&r, &s)) return;
    static uint8_t a[N], c[N];
    picture(a, 0), picture(c, 120);
    for (int f = 0; f < 20; f++) run_frame(&r, a, W, H);
    run_frame(&r, c, W, H);
    EXPECT(!r.pres.empty && r.t.step == 0, "moving again but paused by hand: empty %d, %ld steps", r.pres.empty,
           r.t.step);
    run_close(&r);

    s = settings(NULL);
    snprintf(s.presence_mode, sizeof s.presence_mode, "slow");
    s.presence_after_s = 0.5f, s.presence_slow_factor = 0.25f, s.lr = 2;
    if (!open_run(&r, &s)) return;
    for (int f = 0; f < 20; f++) run_frame(&r, a, W, H);
    EXPECT(r.pres.empty && r.t.step == 20, "slow: empty %d, still stepping: %ld steps", r.pres.empty, r.t.step);
    EXPECT(r.t.hyper.lr == 0.5f && r.p.v[PARAM_LR] == 2.0f, "trainer lr %g (want 0.5), live lr %g (want 2)",
           (double)r.t.hyper.lr, (double)r.p.v[PARAM_LR]);
    run_frame(&r, c, W, H);
    EXPECT(r.t.hyper.lr == 2.0f, "after motion the lr is back: %g", (double)r.t.hyper.lr);
    run_close(&r);
}

// [schedule] rebirth = fresh: at opening, the network a fresh start with the
// seed makes (weights, step 0, optimizer state reset), logged with source
// "schedule"; the presence detector starts afresh.
TEST_IMPL(rebirth_is_a_fresh_network_from_the_seed) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-rebirth-%d.jsonl", (int)getpid());
    Settings s = settings(path);
    snprintf(s.sched_rebirth, sizeof s.sched_rebirth, "fresh");
    s.sched_seed = 77;
    snprintf(s.presence_mode, sizeof s.presence_mode, "pause");
    s.presence_after_s = 0.1f;
    Run r;
    if (!open_run(&r, &s)) return;
    static uint8_t a[N];
    picture(a, 0);
    for (int f = 0; f < 6; f++) run_frame(&r, a, W, H);
    EXPECT(r.pres.empty && r.t.step > 0, "before: empty %d, %ld steps", r.pres.empty, r.t.step);
    char msg[160];
    run_opening(&r, msg, sizeof msg);
    float *have = weights(&r), *want = tb_malloc(r.t.model.n_params * sizeof(float));
    model_init_params(&r.t.model, want, 77);
    EXPECT(memcmp(have, want, r.t.model.n_params * sizeof(float)) == 0, "weights are not seed 77's");
    EXPECT(r.t.step == 0 && r.t.seed == 77 && !r.pres.empty, "step %ld, seed %llu, empty %d", r.t.step,
           (unsigned long long)r.t.seed, r.pres.empty);
    EXPECT(strstr(msg, "seed 77") != NULL, "message: %s", msg);
    // The next frames train the new network as a fresh run's first frames
    // would: optimizer state, replay ring and draws (memory 2) start afresh too.
    Settings s2 = settings(NULL);
    s2.seed = 77;
    s2.memory = 2;
    r.p.v[PARAM_MEMORY] = 2;
    Run fresh;
    if (open_run(&fresh, &s2)) {
        static uint8_t b[N];
        for (int f = 0; f < 4; f++) {
            picture(b, 10 * f);
            run_frame(&r, b, W, H);
            run_frame(&fresh, b, W, H);
        }
        float *x = weights(&r), *y = weights(&fresh);
        EXPECT(memcmp(x, y, r.t.model.n_params * sizeof(float)) == 0, "4 steps after rebirth != a fresh run's");
        free(x);
        free(y);
        run_close(&fresh);
    }
    run_close(&r);
    const char *log = test_read_all(path);
    EXPECT(test_count(log, "\"source\":\"schedule\",\"action\":\"rebirth\",\"value\":77}") == 1, "events:\n%s",
           log ? log : "");
    unlink(path);
    free(have);
    free(want);
}

// continue (the default) keeps the network; fresh with seed -1 takes [train] seed.
TEST_IMPL(rebirth_continue_keeps_and_seed_defaults_to_train_seed) {
    Settings s = settings(NULL);
    Run r;
    if (!open_run(&r, &s)) return;
    static uint8_t a[N];
    picture(a, 0);
    for (int f = 0; f < 3; f++) run_frame(&r, a, W, H);
    float *before = weights(&r);
    char msg[160];
    run_opening(&r, msg, sizeof msg);
    float *after = weights(&r);
    EXPECT(memcmp(before, after, r.t.model.n_params * sizeof(float)) == 0 && r.t.step == 3 && !msg[0],
           "continue: step %ld, message \"%s\"", r.t.step, msg);
    run_close(&r);
    free(before);
    free(after);
    s = settings(NULL);
    snprintf(s.sched_rebirth, sizeof s.sched_rebirth, "fresh");
    s.seed = 5;
    if (!open_run(&r, &s)) return;
    for (int f = 0; f < 3; f++) run_frame(&r, a, W, H);
    run_opening(&r, msg, sizeof msg);
    EXPECT(r.t.seed == 5 && r.t.step == 0, "seed -1: [train] seed 5, got %llu", (unsigned long long)r.t.seed);
    run_close(&r);
}

TEST_MAIN(TEST_ENTRY(empty_room_pauses_steps_but_not_the_mirror), TEST_ENTRY(hand_pause_holds_and_slow_mode_scales_lr),
          TEST_ENTRY(rebirth_is_a_fresh_network_from_the_seed),
          TEST_ENTRY(rebirth_continue_keeps_and_seed_defaults_to_train_seed))
