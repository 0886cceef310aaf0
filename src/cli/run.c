// run.c: the per-frame training loop both drivers share.
#include "run.h"

#include <string.h>

#include "session.h"
#include "snapshot.h"

int run_open(Run *r, const Settings *s, TbErr *err) {
    memset(r, 0, sizeof *r);
    r->s = s;
    if (session_setup_trainer(&r->t, s, err)) return -1;
    if (metrics_open(&r->m, s->metrics, &r->t, err)) {
        trainer_free(&r->t);
        return -1;
    }
    live_params_from_settings(&r->p, s);
    r->window_t0 = tb_now();
    return 0;
}

int run_control(Run *r, const ControlEvent *e, char *msg, size_t n) {
    TbErr err;
    char path[CFG_STR + 300];
    msg[0] = 0;
    switch (e->cmd) {
    case CMD_SET: live_params_set(&r->p, e->param, e->value); break;
    case CMD_RESET:
        trainer_reset(&r->t, r->t.seed + 1);
        snprintf(msg, n, "reset: a blank network (seed %llu)", (unsigned long long)r->t.seed);
        break;
    case CMD_SAVE:
        if (snapshot_save(r->s->snapshot_dir, &r->t, path, sizeof path, &err))
            snprintf(msg, n, "save failed: %s", err.msg);
        else snprintf(msg, n, "saved %s", path);
        break;
    case CMD_LOAD:
        if (snapshot_load_newest(r->s->snapshot_dir, &r->t, path, sizeof path, &err))
            snprintf(msg, n, "%s", err.msg);
        else snprintf(msg, n, "loaded %s", path);
        break;
    case CMD_QUIT: return 1;
    }
    return 0;
}

// The live parameters the optimizer and the replay draw read.
static void apply_params(Trainer *t, const LiveParams *p) {
    t->hyper.lr = p->v[PARAM_LR];
    t->hyper.momentum = p->v[PARAM_MOMENTUM];
    t->hyper.clip = p->v[PARAM_CLIP];
    int ring = (int)p->v[PARAM_RING];
    t->ring_limit = ring < t->ring_cap ? ring : t->ring_cap;
}

int run_frame(Run *r, const uint8_t *rgb, int w, int h) {
    Trainer *t = &r->t;
    apply_params(t, &r->p);
    trainer_push_frame(t, rgb, w, h);
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
    return diverged;
}

void run_flush(Run *r) { metrics_flush(&r->m, &r->t); }

void run_close(Run *r) {
    metrics_close(&r->m);
    trainer_free(&r->t);
}
