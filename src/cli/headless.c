// headless.c: the command-line driver. Reads every frame of the source in order
#define _DEFAULT_SOURCE
// (no pacing, no dropped frames: runs are reproducible), trains, writes metrics.
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "headless.h"
#include "session.h"
#include "source.h"

int run_headless(const Settings *s) {
    TbErr err = {{0}};
    if (s->frames <= 0) {
        tb_log("--headless needs --frames N (N > 0)");
        return TB_EXIT_INPUT;
    }
    char spec[CFG_STR + 8];
    if (s->source[0]) snprintf(spec, sizeof spec, "%s", s->source);
    else session_default_source(spec, sizeof spec);

    SourceOpts so = session_source_opts(s);
    Source *src = source_open(spec, &so, &err);
    if (!src) {
        tb_log("%s", err.msg);
        return TB_EXIT_INPUT;
    }
    Trainer t;
    if (session_setup_trainer(&t, s, &err)) {
        tb_log("%s", err.msg);
        source_close(src);
        return TB_EXIT_INPUT;
    }
    Metrics m;
    if (metrics_open(&m, s->metrics, &t, &err)) {
        tb_log("%s", err.msg);
        trainer_free(&t);
        source_close(src);
        return TB_EXIT_INPUT;
    }
    tb_log("headless: %s, %ld frames, backend %s, %d step(s)/frame, memory %d", spec, s->frames,
           t.be->name, s->steps_per_frame, s->memory);

    int rc = TB_EXIT_OK;
    size_t cap = 0;
    uint8_t *frame = NULL;
    double t0 = tb_now();
    for (long f = 0; f < s->frames; f++) {
        // The size of the frame read() returns now (an image folder changes it in read()).
        int w = src->width, h = src->height;
        size_t need = (size_t)w * h * 3;
        if (need > cap) {
            free(frame);
            frame = tb_malloc(need);
            cap = need;
        }
        int got;
        while ((got = src->read(src, frame, &err)) == 0) usleep(1000);  // live source: wait
        if (got < 0) {
            tb_log("%s", err.msg);
            rc = TB_EXIT_INPUT;
            break;
        }
        trainer_push_frame(&t, frame, w, h);
        int K = s->steps_per_frame;
        if (metrics_need_flush(&m, &t, K, s->stats_every)) metrics_flush(&m, &t);
        int slot = trainer_train(&t, K, s->memory);
        metrics_frame(&m, &t, f, slot, K, s->memory);
    }
    metrics_flush(&m, &t);
    double dt = tb_now() - t0;
    if (rc == TB_EXIT_OK) {
        tb_log("done: %ld frames, %ld steps in %.2f s (%.1f steps/s), last loss %.5f (PSNR %.2f dB)",
               s->frames, t.step, dt, t.step / (dt > 0 ? dt : 1), (double)m.loss, (double)m.psnr);
        if (session_save(&t, s, &err)) {
            tb_log("%s", err.msg);
            rc = TB_EXIT_INPUT;
        }
    }
    free(frame);
    metrics_close(&m);
    trainer_free(&t);
    source_close(src);
    return rc;
}
