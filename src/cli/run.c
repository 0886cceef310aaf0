// run.c: the per-frame training loop both drivers share.
#include "run.h"

#include <errno.h>
#include <string.h>

#include "frame_fit.h"
#include "session.h"
#include "snapshot.h"

static size_t frame_bytes(const Run *r) {
    return (size_t)r->t.model.spec.width * r->t.model.spec.height * 3;
}

int run_open(Run *r, const Settings *s, ControlQueue *q, TbErr *err) {
    memset(r, 0, sizeof *r);
    r->s = s;
    r->q = q;
    if (s->events[0]) {
        r->events = fopen(s->events, "w");
        if (!r->events) return tb_fail(err, "--events %s: %s", s->events, strerror(errno));
    }
    if (session_setup_trainer(&r->t, s, err)) goto fail_events;
    if (metrics_open(&r->m, s->metrics, &r->t, err)) goto fail_trainer;
    live_params_from_settings(&r->p, s);
    size_t n = frame_bytes(r);
    r->smooth_in = tb_malloc(n * sizeof(float));
    r->smooth_out = tb_malloc(n * sizeof(float));
    r->fitted = tb_malloc(n);
    r->window_t0 = r->t_start = tb_now();
    return 0;
fail_trainer:
    trainer_free(&r->t);
fail_events:
    if (r->events) fclose(r->events);
    return -1;
}

// One line of the event log: when, at which frame and step, from where, what.
static void log_event(Run *r, const ControlEvent *e, const char *what, float value) {
    if (!r->events || r->events_failed) return;
    int w = fprintf(r->events, "{\"t\":%.4f,\"frame\":%ld,\"step\":%ld,\"source\":\"%s\",%s,\"value\":%.7g}\n",
                    tb_now() - r->t_start, r->frames, r->t.step, event_source_name(e->source), what,
                    (double)value);
    if (w < 0 || fflush(r->events) != 0) {
        // A full disk must not stop the show: say it once, keep going.
        tb_log("events %s: %s: no more events will be written", r->s->events, strerror(errno));
        r->events_failed = 1;
    }
}

static void log_param(Run *r, const ControlEvent *e) {
    char what[96];
    snprintf(what, sizeof what, "\"param\":\"%s\"", param_live(e->param)->key);
    log_event(r, e, what, r->p.v[e->param]);
}

int run_control(Run *r, const ControlEvent *e, char *msg, size_t n) {
    TbErr err;
    char path[CFG_STR + 300];
    msg[0] = 0;
    if ((e->cmd == CMD_SET || e->cmd == CMD_NUDGE || e->cmd == CMD_TOGGLE) &&
        (e->param < 0 || e->param >= PARAM_COUNT))
        return 0;  // not a parameter: ignore (surfaces check, this is the last guard)
    switch (e->cmd) {
    case CMD_SET: live_params_set(&r->p, e->param, e->value), log_param(r, e); break;
    case CMD_NUDGE:
        live_params_set(&r->p, e->param, live_params_nudge(&r->p, e->param, e->value > 0 ? 1 : -1));
        log_param(r, e);
        break;
    case CMD_TOGGLE: live_params_set(&r->p, e->param, r->p.v[e->param] > 0 ? 0 : 1), log_param(r, e); break;
    case CMD_RESET: {
        uint64_t seed = e->value >= 0 ? (uint64_t)e->value : r->t.seed + 1;
        trainer_reset(&r->t, seed);
        r->have_out = 0;
        log_event(r, e, "\"action\":\"reset\"", (float)seed);
        snprintf(msg, n, "reset: a blank network (seed %llu)", (unsigned long long)seed);
        break;
    }
    case CMD_SAVE:
        if (snapshot_save(r->s->snapshot_dir, &r->t, path, sizeof path, &err))
            snprintf(msg, n, "save failed: %.400s", err.msg);
        else snprintf(msg, n, "saved %.400s", path);
        log_event(r, e, "\"action\":\"save\"", 0);
        break;
    case CMD_LOAD:
        if (snapshot_load_newest(r->s->snapshot_dir, &r->t, path, sizeof path, &err))
            snprintf(msg, n, "%.400s", err.msg);
        else snprintf(msg, n, "loaded %.400s", path);
        log_event(r, e, "\"action\":\"load\"", 0);
        break;
    case CMD_QUIT: return 1;
    }
    if (msg[0]) tb_log("%s", msg);
    return 0;
}

int run_drain(Run *r, char *msg, size_t n) {
    if (n) msg[0] = 0;
    if (!r->q) return 0;
    ControlEvent e;
    char line[512];
    while (control_pop(r->q, &e)) {
        if (run_control(r, &e, line, sizeof line)) return 1;
        if (line[0] && n) snprintf(msg, n, "%s", line);
    }
    return 0;
}

// The live parameters the optimizer, the loss and the replay draw read.
static void apply_params(Trainer *t, const LiveParams *p) {
    t->hyper.lr = p->v[PARAM_LR];
    t->hyper.momentum = p->v[PARAM_MOMENTUM];
    t->hyper.clip = p->v[PARAM_CLIP];
    t->hyper.weight_decay = p->v[PARAM_WEIGHT_DECAY];
    t->hyper.loss = (int)p->v[PARAM_LOSS];
    trainer_set_optimizer(t, (int)p->v[PARAM_OPTIMIZER]);
    int ring = (int)p->v[PARAM_RING];
    t->ring_limit = ring < t->ring_cap ? ring : t->ring_cap;
}

// acc = a*acc + (1-a)*x over n bytes (acc starts at x), written back as bytes.
static void smooth(float *acc, int *have, uint8_t *x, size_t n, float a) {
    if (!*have || a <= 0) {
        for (size_t i = 0; i < n; i++) acc[i] = x[i];
        *have = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        acc[i] = a * acc[i] + (1 - a) * (float)x[i];
        x[i] = (uint8_t)(acc[i] + 0.5f);
    }
}

// The frame that goes into the ring: fitted, then blended with the ones before.
static void push_frame(Run *r, const uint8_t *rgb, int w, int h) {
    Trainer *t = &r->t;
    int W = t->model.spec.width, H = t->model.spec.height;
    float a = r->p.v[PARAM_SMOOTH_IN];
    if (a <= 0) {
        r->have_in = 0;  // start afresh when smoothing comes back on
        trainer_push_frame(t, rgb, w, h);
        return;
    }
    if (w == W && h == H) memcpy(r->fitted, rgb, frame_bytes(r));
    else frame_fit(r->fitted, W, H, rgb, w, h);
    smooth(r->smooth_in, &r->have_in, r->fitted, frame_bytes(r), a);
    trainer_push_frame(t, r->fitted, W, H);
}

static void publish(Run *r) {
    if (!r->q) return;
    RunView v = {.p = r->p, .loss = r->m.loss, .psnr = r->m.psnr, .grad_norm = r->m.grad_norm,
                 .steps_per_s = r->steps_per_s, .step = r->t.step, .frames = r->frames};
    control_publish(r->q, &v);
}

int run_frame(Run *r, const uint8_t *rgb, int w, int h) {
    Trainer *t = &r->t;
    apply_params(t, &r->p);
    // Frozen, the network keeps training on (and showing) the last frame.
    if (!(r->p.v[PARAM_FREEZE] > 0 && trainer_newest(t))) push_frame(r, rgb, w, h);
    int K = r->p.v[PARAM_PAUSE] > 0 ? 0 : (int)r->p.v[PARAM_STEPS];
    int R = (int)r->p.v[PARAM_MEMORY];
    int diverged = 0;
    if (metrics_need_flush(&r->m, t, K, r->s->stats_every)) diverged = metrics_flush(&r->m, t);
    int slot = trainer_train(t, K, R);
    metrics_frame(&r->m, t, r->frames, slot, K, R);
    r->frames++;
    r->window_steps += K;
    double now = tb_now();
    if (now - r->window_t0 > 0.5) {
        r->steps_per_s = (float)(r->window_steps / (now - r->window_t0));
        r->window_steps = 0;
        r->window_t0 = now;
    }
    publish(r);
    return diverged;
}

void run_output(Run *r, uint8_t *rgb) {
    trainer_output(&r->t, rgb);
    float a = r->p.v[PARAM_SMOOTH_OUT];
    if (a <= 0) r->have_out = 0;
    else smooth(r->smooth_out, &r->have_out, rgb, frame_bytes(r), a);
}

void run_flush(Run *r) {
    metrics_flush(&r->m, &r->t);
    publish(r);
}

void run_close(Run *r) {
    metrics_close(&r->m);
    trainer_free(&r->t);
    if (r->events && fclose(r->events) != 0 && !r->events_failed)
        tb_log("events %s: %s", r->s->events, strerror(errno));
    free(r->smooth_in);
    free(r->smooth_out);
    free(r->fitted);
    memset(r, 0, sizeof *r);
}
