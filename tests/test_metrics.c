// test_metrics.c: per-frame records from the stats ring, and the divergence
// guard: a non-finite loss restores the last good weights and training goes on.
#define _DEFAULT_SOURCE
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "settings_trainer.h"
#include "test.h"

int main(void) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.channels, sizeof s.channels, "8,16");
    s.width = 32;
    s.height = 32;
    TbErr err = {{0}};
    Trainer t;
    CHECK(trainer_init_settings(&t, &s, NULL, &err) == 0, "%s", err.msg);
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-metrics-%d.jsonl", (int)getpid());
    Metrics m;
    EXPECT(metrics_open(&m, path, &t, &err) == 0, "%s", err.msg);

    uint8_t frame[32 * 32 * 3];
    for (int i = 0; i < (int)sizeof frame; i++) frame[i] = (uint8_t)(i * 7);
    // 20 frames of 2 steps with a flush every 8 frames.
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

    // Poison the weights: the next loss is NaN; the flush must restore finite ones.
    size_t n = t.model.n_params;
    float *p = tb_malloc(n * sizeof(float));
    t.be->get_params(t.be, p);
    p[3] = NAN;
    t.be->set_params(t.be, p);
    trainer_push_frame(&t, frame, 32, 32);
    int slot = trainer_train(&t, 1, 0);
    metrics_frame(&m, &t, 20, slot, 1, 0);
    EXPECT(metrics_flush(&m, &t) == 1 && m.diverged == 1, "divergence detected");
    t.be->get_params(t.be, p);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(p[i]) != 0;
    EXPECT(finite, "weights restored to finite values");
    trainer_push_frame(&t, frame, 32, 32);
    slot = trainer_train(&t, 1, 0);
    metrics_frame(&m, &t, 21, slot, 1, 0);
    EXPECT(metrics_flush(&m, &t) == 0 && isfinite(m.loss), "training goes on: loss %g", (double)m.loss);
    metrics_close(&m);

    // The file: one JSON object per frame, the NaN frame written as null.
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

    // A full disk: writes fail, training does not.
    Metrics full;
    EXPECT(metrics_open(&full, "/dev/full", &t, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        trainer_push_frame(&t, frame, 32, 32);
        metrics_frame(&full, &t, i, trainer_train(&t, 1, 0), 1, 0);
        metrics_flush(&full, &t);
    }
    EXPECT(full.write_failed == 1 && isfinite(full.loss), "full disk noticed, training on");
    metrics_close(&full);
    EXPECT(metrics_open(&full, "/nonexistent/dir/m.jsonl", &t, &err) == -1 && strstr(err.msg, "/nonexistent/dir/m.jsonl"),
           "unwritable path: %s", err.msg);
    free(p);
    trainer_free(&t);
    return test_finish();
}
