// test_run.c: why it exists: the run loop (src/cli/run.c) is the one path from
// a control surface to a gradient step, for the headless driver and the window
// alike. Every event must land in the event log with where it came from, at
// which frame and step; smoothing, freezing, resetting to a seed and switching
// the optimizer must do exactly what the parameter table says.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "test.h"

enum { W = 32, H = 32, N = W * H * 3 };

static Settings settings(const char *events) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H;
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.events, sizeof s.events, "%s", events ? events : "");
    return s;
}

static void fill(uint8_t *rgb, uint8_t v) { memset(rgb, v, N); }

// A run on s with its own control queue (q may be NULL: no queue).
static int open_run(Run *r, const Settings *s, ControlQueue *q) {
    if (q) control_queue_init(q);
    TbErr err = {{0}};
    int rc = run_open(r, s, q, &err);
    EXPECT(rc == 0, "%s", err.msg);
    return rc == 0;
}

static void close_run(Run *r, ControlQueue *q) {
    run_close(r);
    if (q) control_queue_destroy(q);
}

static void send(ControlQueue *q, int cmd, int param, float value, int source) {
    control_push(q, (ControlEvent){.cmd = cmd, .param = param, .value = value, .source = source});
}

// Every applied event is one JSON line with its source, frame, step and value.
TEST_IMPL(event_log_names_source_frame_and_step) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-events-%d.jsonl", (int)getpid());
    Settings s = settings(path);
    ControlQueue q;
    Run r;
    if (!open_run(&r, &s, &q)) return;
    uint8_t rgb[N];
    fill(rgb, 90);
    send(&q, CMD_SET, PARAM_LR, 0.5f, SRC_OSC);
    EXPECT(run_drain(&r, NULL, 0) == 0, "no quit");
    run_frame(&r, rgb, W, H);
    run_frame(&r, rgb, W, H);
    send(&q, CMD_NUDGE, PARAM_LR, 1, SRC_MIDI);
    send(&q, CMD_TOGGLE, PARAM_PAUSE, 0, SRC_KEY);
    send(&q, CMD_RESET, -1, 5, SRC_SCENE);
    run_drain(&r, NULL, 0);
    EXPECT_NEAR(r.p.v[PARAM_LR], 0.5 * 1.77827941, 1e-6, "nudged one log step up");
    EXPECT(r.p.v[PARAM_PAUSE] == 1, "toggled pause");
    close_run(&r, &q);
    FILE *f = fopen(path, "r");
    EXPECT(f != NULL, "no event log");
    if (!f) return;
    char line[4][256];
    int n = 0;
    while (n < 4 && fgets(line[n], sizeof line[n], f)) n++;
    char extra[256];
    EXPECT(n == 4 && !fgets(extra, sizeof extra, f), "%d lines, want 4", n);
    fclose(f);
    unlink(path);
    if (n < 4) return;
    EXPECT(strstr(line[0], "\"frame\":0,\"step\":0,\"source\":\"osc\",\"param\":\"lr\",\"value\":0.5}"),
           "set: %s", line[0]);
    EXPECT(strstr(line[1], "\"frame\":2,\"step\":2,\"source\":\"midi\",\"param\":\"lr\",\"value\":0.889139"),
           "nudge: %s", line[1]);
    EXPECT(strstr(line[2], "\"source\":\"key\",\"param\":\"pause\",\"value\":1}"), "toggle: %s", line[2]);
    EXPECT(strstr(line[3], "\"source\":\"scene\",\"action\":\"reset\",\"value\":5}"), "reset: %s", line[3]);
    EXPECT(strncmp(line[0], "{\"t\":", 5) == 0, "starts with the time: %s", line[0]);
}

// Reset with a seed gives exactly the network that seed makes.
TEST_IMPL(reset_to_a_seed_is_that_network) {
    Settings s = settings(NULL);
    ControlQueue q;
    Run r;
    if (!open_run(&r, &s, &q)) return;
    uint8_t rgb[N];
    fill(rgb, 200);
    for (int i = 0; i < 3; i++) run_frame(&r, rgb, W, H);
    send(&q, CMD_RESET, -1, 77, SRC_OSC);
    run_drain(&r, NULL, 0);
    size_t np = r.t.model.n_params;
    float *have = tb_malloc(np * sizeof(float)), *want = tb_malloc(np * sizeof(float));
    r.t.be->get_params(r.t.be, have);
    model_init_params(&r.t.model, want, 77);
    EXPECT(memcmp(have, want, np * sizeof(float)) == 0 && r.t.step == 0 && r.t.seed == 77,
           "after reset to 77: step %ld, seed %llu", r.t.step, (unsigned long long)r.t.seed);
    free(have);
    free(want);
    close_run(&r, &q);
}

// Input smoothing 0.5: the frame that enters the ring is the mean of the new
// frame and the smoothed one before it.
TEST_IMPL(input_smoothing_blends_frames) {
    Settings s = settings(NULL);
    s.input_smoothing = 0.5f;
    Run r;
    if (!open_run(&r, &s, NULL)) return;
    uint8_t a[N], b[N];
    fill(a, 0), fill(b, 200);
    run_frame(&r, a, W, H);
    EXPECT(trainer_newest(&r.t)[0] == 0, "first frame as it is: %d", trainer_newest(&r.t)[0]);
    run_frame(&r, b, W, H);
    EXPECT(trainer_newest(&r.t)[0] == 100 && trainer_newest(&r.t)[N - 1] == 100, "blend: %d",
           trainer_newest(&r.t)[0]);
    run_frame(&r, b, W, H);
    EXPECT(trainer_newest(&r.t)[0] == 150, "blend again: %d", trainer_newest(&r.t)[0]);
    close_run(&r, NULL);
}

// Frozen, the network keeps training on the last frame, whatever comes in.
TEST_IMPL(freeze_trains_on_the_last_frame) {
    Settings s = settings(NULL);
    ControlQueue q;
    Run r;
    if (!open_run(&r, &s, &q)) return;
    uint8_t a[N], b[N];
    fill(a, 40), fill(b, 220);
    run_frame(&r, a, W, H);
    send(&q, CMD_TOGGLE, PARAM_FREEZE, 0, SRC_OSC);
    run_drain(&r, NULL, 0);
    long step = r.t.step;
    for (int i = 0; i < 3; i++) run_frame(&r, b, W, H);
    EXPECT(trainer_newest(&r.t)[0] == 40, "frozen frame kept: %d", trainer_newest(&r.t)[0]);
    EXPECT(r.t.step == step + 3, "still training: %ld steps after %ld", r.t.step, step);
    send(&q, CMD_TOGGLE, PARAM_FREEZE, 0, SRC_OSC);
    run_drain(&r, NULL, 0);
    run_frame(&r, b, W, H);
    EXPECT(trainer_newest(&r.t)[0] == 220, "thawed: %d", trainer_newest(&r.t)[0]);
    close_run(&r, &q);
}

// Output smoothing 0.5: what is shown is the mean of the new reconstruction and
// the one shown before it.
TEST_IMPL(output_smoothing_blends_reconstructions) {
    Settings s = settings(NULL);
    s.output_smoothing = 0.5f;
    Run r;
    if (!open_run(&r, &s, NULL)) return;
    uint8_t a[N], first[N], raw[N], shown[N];
    fill(a, 250);
    run_frame(&r, a, W, H);
    run_output(&r, first);
    for (int i = 0; i < 5; i++) run_frame(&r, a, W, H);
    trainer_output(&r.t, raw);
    run_output(&r, shown);
    int worst = 0, moved = 0;
    for (int i = 0; i < N; i++) {
        int want = (int)(0.5f * first[i] + 0.5f * raw[i] + 0.5f);
        int d = abs(want - shown[i]);
        if (d > worst) worst = d;
        moved |= raw[i] != first[i];
    }
    EXPECT(moved, "the reconstruction did not change in 5 steps");
    EXPECT(worst <= 1, "shown = mean of before and now, off by %d", worst);
    close_run(&r, NULL);
}

// The view every surface reads is what the loop used for its last frame.
TEST_IMPL(view_is_published_after_each_frame) {
    Settings s = settings(NULL);
    ControlQueue q;
    Run r;
    if (!open_run(&r, &s, &q)) return;
    uint8_t a[N];
    fill(a, 128);
    send(&q, CMD_SET, PARAM_STEPS, 3, SRC_OSC);
    run_drain(&r, NULL, 0);
    run_frame(&r, a, W, H);
    run_frame(&r, a, W, H);
    RunView v = control_view(&q);
    EXPECT(v.step == 6 && v.frames == 2 && v.p.v[PARAM_STEPS] == 3, "view: step %ld frames %ld steps %g",
           v.step, v.frames, (double)v.p.v[PARAM_STEPS]);
    close_run(&r, &q);
}

// Switching to Adam live keeps the weights and starts Adam afresh (t = 1).
TEST_IMPL(optimizer_switch_keeps_weights_restarts_adam) {
    Settings s = settings(NULL);
    ControlQueue q;
    Run r;
    if (!open_run(&r, &s, &q)) return;
    uint8_t a[N];
    fill(a, 60);
    for (int i = 0; i < 4; i++) run_frame(&r, a, W, H);
    size_t np = r.t.model.n_params;
    float *before = tb_malloc(np * sizeof(float)), *after = tb_malloc(np * sizeof(float));
    r.t.be->get_params(r.t.be, before);
    send(&q, CMD_SET, PARAM_OPTIMIZER, OPT_ADAM, SRC_OSC);
    send(&q, CMD_SET, PARAM_LR, 1e-3f, SRC_OSC);
    send(&q, CMD_SET, PARAM_PAUSE, 1, SRC_OSC);
    run_drain(&r, NULL, 0);
    run_frame(&r, a, W, H);  // paused: applies the switch, takes no step
    r.t.be->get_params(r.t.be, after);
    EXPECT(memcmp(before, after, np * sizeof(float)) == 0, "weights kept across the switch");
    EXPECT(r.t.hyper.optimizer == OPT_ADAM && r.t.opt_t0 == 4, "adam from step %ld", r.t.opt_t0);
    send(&q, CMD_SET, PARAM_PAUSE, 0, SRC_OSC);
    run_drain(&r, NULL, 0);
    run_frame(&r, a, W, H);
    EXPECT(r.t.hyper.t == 1, "Adam's first step is t = 1, got %d", r.t.hyper.t);
    free(before);
    free(after);
    close_run(&r, &q);
}

TEST_MAIN(TEST_ENTRY(event_log_names_source_frame_and_step), TEST_ENTRY(reset_to_a_seed_is_that_network),
          TEST_ENTRY(input_smoothing_blends_frames), TEST_ENTRY(freeze_trains_on_the_last_frame),
          TEST_ENTRY(output_smoothing_blends_reconstructions), TEST_ENTRY(view_is_published_after_each_frame),
          TEST_ENTRY(optimizer_switch_keeps_weights_restarts_adam))
