// test_metrics.c: why it exists: the per-frame metrics file is how a user sees
// what a run learned (loss, PSNR, every setting, frame by frame), and the
// divergence guard is what keeps a live run alive when a loss goes NaN: it
// restores the last good weights and training goes on. Without them a bad
// step would end the mirror, and a full disk would take training down with it.
//
// The cases follow one trainer through a run, in order; each one first brings
// the shared run up to where it starts, so any of them also runs alone.
#define _DEFAULT_SOURCE
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "settings_trainer.h"
#include "test.h"

static Trainer t;
static Metrics m;
static char path[64];
static uint8_t frame[32 * 32 * 3];
static float *params;  // a copy of the weights, n_params long

static void cleanup(void) {
    if (path[0]) unlink(path);
    free(params);
    trainer_free(&t);
}

// A 32x32 trainer with encoder channels 8,16 on the CPU, metrics to a temp file.
static void open_run(void) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.channels, sizeof s.channels, "8,16");
    s.width = 32;
    s.height = 32;
    TbErr err = {{0}};
    CHECK(trainer_init_settings(&t, &s, NULL, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "/tmp/tabula-metrics-%d.jsonl", (int)getpid());
    atexit(cleanup);
    EXPECT(metrics_open(&m, path, &t, &err) == 0, "%s", err.msg);
    for (int i = 0; i < (int)sizeof frame; i++) frame[i] = (uint8_t)(i * 7);
    params = tb_malloc(t.model.n_params * sizeof(float));
}

// 20 frames of 2 steps with a flush every 8 frames.
static void twenty_frames(void) {
    for (int f = 0; f < 20; f++) {
        trainer_push_frame(&t, frame, 32, 32);
        if (metrics_need_flush(&m, &t, 2, 8)) EXPECT(metrics_flush(&m, &t) == 0, "no divergence yet");
        int slot = trainer_train(&t, 2, 0);
        metrics_frame(&m, &t, f, slot, 2, 0);
    }
    EXPECT(metrics_flush(&m, &t) == 0, "clean flush");
    EXPECT(m.frames_written == 20, "20 lines, got %ld", m.frames_written);
    EXPECT(isfinite(m.loss) && m.loss > 0 && fabsf(m.psnr - 10 * log10f(1 / m.loss)) < 1e-3f,
           "psnr from loss: %g %g", (double)m.loss, (double)m.psnr);
}

// Poison the weights: the next loss is NaN; the flush must restore finite ones.
static void poisoned_step(void) {
    size_t n = t.model.n_params;
    t.be->get_params(t.be, params);
    params[3] = NAN;
    t.be->set_params(t.be, params);
    trainer_push_frame(&t, frame, 32, 32);
    int slot = trainer_train(&t, 1, 0);
    metrics_frame(&m, &t, 20, slot, 1, 0);
    EXPECT(metrics_flush(&m, &t) == 1 && m.diverged == 1, "divergence detected");
    t.be->get_params(t.be, params);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(params[i]) != 0;
    EXPECT(finite, "weights restored to finite values");
}

static void step_after_divergence(void) {
    trainer_push_frame(&t, frame, 32, 32);
    int slot = trainer_train(&t, 1, 0);
    metrics_frame(&m, &t, 21, slot, 1, 0);
    EXPECT(metrics_flush(&m, &t) == 0 && isfinite(m.loss), "training goes on: loss %g", (double)m.loss);
    metrics_close(&m);
}

// The file: one JSON object per frame, the NaN frame written as null.
static void read_file(void) {
    FILE *f = fopen(path, "r");
    char line[1024];
    int lines = 0, nulls = 0, frame0 = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        if (strstr(line, "\"loss\":null")) nulls++;
        if (strncmp(line, "{\"frame\":0,\"step\":2,\"loss\":", 27) == 0) frame0 = 1;
    }
    fclose(f);
    EXPECT(lines == 22 && nulls == 1 && frame0, "%d lines, %d null losses, frame 0 line ok %d", lines, nulls, frame0);
    unlink(path);
}

// A full disk: writes fail, training does not.
static void full_disk(void) {
    Metrics full;
    TbErr err = {{0}};
    EXPECT(metrics_open(&full, "/dev/full", &t, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        trainer_push_frame(&t, frame, 32, 32);
        metrics_frame(&full, &t, i, trainer_train(&t, 1, 0), 1, 0);
        metrics_flush(&full, &t);
    }
    EXPECT(full.write_failed == 1 && isfinite(full.loss), "full disk noticed, training on");
    metrics_close(&full);
}

static void unwritable_path(void) {
    Metrics full;
    TbErr err = {{0}};
    EXPECT(metrics_open(&full, "/nonexistent/dir/m.jsonl", &t, &err) == -1 && strstr(err.msg, "/nonexistent/dir/m.jsonl"),
           "unwritable path: %s", err.msg);
}

// The run's stages in order; run_to(k) runs those not run yet, up to k.
static void (*const stages[])(void) = {open_run,  twenty_frames, poisoned_step, step_after_divergence,
                                       read_file, full_disk,     unwritable_path};
static int stages_done;
static void run_to(int k) {
    while (stages_done <= k) stages[stages_done++]();
}

TEST_IMPL(twenty_frames_give_twenty_records_psnr_from_loss) { run_to(1); }
TEST_IMPL(nan_loss_restores_last_good_weights) { run_to(2); }
TEST_IMPL(training_goes_on_after_divergence) { run_to(3); }
TEST_IMPL(file_has_one_json_per_frame_nan_as_null) { run_to(4); }
TEST_IMPL(full_disk_fails_writes_not_training) { run_to(5); }
TEST_IMPL(unwritable_path_is_named) { run_to(6); }

TEST_MAIN(TEST_ENTRY(twenty_frames_give_twenty_records_psnr_from_loss),
          TEST_ENTRY(nan_loss_restores_last_good_weights), TEST_ENTRY(training_goes_on_after_divergence),
          TEST_ENTRY(file_has_one_json_per_frame_nan_as_null), TEST_ENTRY(full_disk_fails_writes_not_training),
          TEST_ENTRY(unwritable_path_is_named))
