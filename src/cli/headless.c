// headless.c: the command-line driver. Reads every frame of the source in order
// (no pacing, no dropped frames: runs are reproducible), trains, writes metrics.
#define _DEFAULT_SOURCE
#include "headless.h"

#include <string.h>
#include <unistd.h>

#include "health.h"
#include "run.h"
#include "session.h"
#include "signals.h"
#include "source.h"

// Next frame of src into *frame (grown as needed). 1, 0 if a stop was asked for
// while waiting, or -1 with err.
static int read_frame(Source *src, uint8_t **frame, size_t *cap, int *w, int *h, TbErr *err) {
    // The size of the frame read() returns now (an image folder changes it in read()).
    *w = src->width, *h = src->height;
    size_t need = (size_t)*w * *h * 3;
    if (need > *cap) {
        free(*frame);
        *frame = tb_malloc(need);
        *cap = need;
    }
    int got;
    while ((got = src->read(src, *frame, err)) == 0 && !signals_stop_requested())
        usleep(1000);  // live source: wait
    return got;
}

// The frame limit: --frames, and --duration on the run's clock (frames / fps).
static int done(const Settings *s, Run *r) {
    return (s->frames > 0 && r->frames >= s->frames) || (s->duration > 0 && run_now(r) >= s->duration - 1e-9);
}

int run_headless(const Settings *s, ControlQueue *q, const RunOutput *out, int nout) {
    TbErr err = {{0}};
    if (s->frames <= 0 && s->duration <= 0) {
        tb_error("--headless needs --frames N (N > 0) or --duration S");
        return TB_EXIT_INPUT;
    }
    char spec[CFG_STR + 8];
    if (s->source[0]) snprintf(spec, sizeof spec, "%s", s->source);
    else session_default_source(spec, sizeof spec);

    SourceOpts so = session_source_opts(s);
    Source *src = source_open(spec, &so, &err);
    if (!src) {
        tb_error("%s", err.msg);
        return TB_EXIT_INPUT;
    }
    Run r;
    if (run_open(&r, s, q, &err)) {
        tb_error("%s", err.msg);
        source_close(src);
        return TB_EXIT_INPUT;
    }
    // Opening hours are for the window; a headless run is reproducible, so it
    // processes every frame whatever the time ([presence] does apply: it is about frames).
    if (s->sched_hours[0] || s->sched_days[0]) tb_log("schedule: opening hours do not apply to --headless runs");
    tb_log("headless: %s, %ld frames, backend %s, %d step(s)/frame, memory %d", spec, s->frames,
           r.t.be->name, (int)r.p.v[PARAM_STEPS], (int)r.p.v[PARAM_MEMORY]);
    for (int i = 0; i < nout; i++) run_attach(&r, &out[i]);  // --record starts its take here

    int rc = TB_EXIT_OK;
    size_t cap = 0;
    uint8_t *frame = NULL;
    // The reconstruction, made only while an output (a take) wants it.
    uint8_t *rec = tb_malloc((size_t)r.t.model.spec.width * r.t.model.spec.height * 3);
    double t0 = tb_now();
    Health hl;
    health_init(&hl, s->health_every_s, t0);
    for (long f = 0; !done(s, &r); f++) {
        int w, h;
        int got = read_frame(src, &frame, &cap, &w, &h, &err);
        if (got < 0) {
            tb_error("%s", err.msg);
            rc = TB_EXIT_INPUT;
            break;
        }
        if (!got || run_drain(&r, NULL, 0) || signals_stop_requested()) {  // asked to stop
            tb_log("stopping after %ld frames", f);
            break;
        }
        run_frame(&r, frame, w, h);
        if (run_output_active(&r)) run_output(&r, rec);
        health_tick_run(&hl, &r, q);
    }
    run_flush(&r);
    double dt = tb_now() - t0;
    if (rc == TB_EXIT_OK) {
        tb_log("done: %ld frames, %ld steps in %.2f s (%.1f steps/s), last loss %.5f (PSNR %.2f dB)",
               r.frames, r.t.step, dt, r.t.step / (dt > 0 ? dt : 1), (double)r.m.loss,
               (double)r.m.psnr);
        if (session_save(&r.t, s, &err)) {
            tb_error("%s", err.msg);
            rc = TB_EXIT_INPUT;
        }
    }
    free(frame);
    free(rec);
    run_close(&r);
    source_close(src);
    return rc;
}
