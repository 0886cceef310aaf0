// channels.c: the extra channels of a run (channels.h).
#include "channels.h"

#include <math.h>
#include <string.h>

#include "ops.h"
#include "params.h"
#include "run.h"
#include "session.h"

void channels_metrics_path(const char *path, int ch, char *buf, size_t n) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash) || dot == path) snprintf(buf, n, "%s.ch%d", path, ch);
    else snprintf(buf, n, "%.*s.ch%d%s", (int)(dot - path), path, ch, dot);
}

// The channel's settings: the run's, then its [chN] overrides through the
// table's rows (checked when read, so they parse here).
static void channel_settings(Settings *out, const Settings *s, int i) {
    *out = *s;
    const ChannelSpec *cs = &s->chan[i];
    for (int k = 0; k < cs->n; k++) {
        TbErr err;
        const Param *o = param_find_ini("train", cs->key[k]);
        CHECK(o && param_parse(out, o, cs->val[k], &err) == 0, "[ch%d] %s", i, cs->key[k]);
    }
}

// A history channel's ring: enough snapshots to reach `minutes` back.
static int history_open(Channel *ch, int i, size_t n_params, TbErr *err) {
    const ChannelSpec *cs = &ch->s->chan[i];
    float minutes = cs->minutes > 0 ? cs->minutes : 10, every = cs->refresh_s > 0 ? cs->refresh_s : 60;
    double need = ceil(minutes * 60.0 / every) + 1;
    if (need > CH_HISTORY_MAX)
        return tb_fail(err, "[ch%d]: minutes %g with refresh_s %g needs %.0f snapshots (at most %d): raise refresh_s",
                       i, (double)minutes, (double)every, need, CH_HISTORY_MAX);
    ch->cap = (int)need;
    ch->snap = tb_malloc((size_t)ch->cap * sizeof *ch->snap);
    for (int k = 0; k < ch->cap; k++) ch->snap[k] = tb_malloc(n_params * sizeof(float));
    ch->snap_t = tb_malloc((size_t)ch->cap * sizeof *ch->snap_t);
    ch->snap_id = tb_malloc((size_t)ch->cap * sizeof *ch->snap_id);
    ch->head = -1, ch->shown_id = -1;
    ch->back_s = minutes * 60.0, ch->refresh = every;
    tb_log("channel %d: channel 0 as it was %.4g min ago (a snapshot every %.4g s, %d kept)", i,
           (double)minutes, (double)every, ch->cap);
    return 0;
}

static void channel_free(Channel *ch) {
    if (!ch->s) return;
    if (ch->kind == CH_NET) metrics_close(&ch->m);
    trainer_free(&ch->t);
    for (int k = 0; k < ch->cap; k++) free(ch->snap[k]);
    free(ch->snap), free(ch->snap_t), free(ch->snap_id), free(ch->s);
    memset(ch, 0, sizeof *ch);
}

static int channel_open(Channel *ch, const Settings *s, int i, const Trainer *t0, TbErr *err) {
    ch->s = tb_malloc(sizeof *ch->s);
    channel_settings(ch->s, s, i);
    ch->kind = strcmp(s->chan[i].kind, "history") == 0 ? CH_HISTORY : CH_NET;
    TrainerConfig tc;
    if (session_trainer_config(ch->s, &t0->model.spec, &tc, err)) goto fail;
    if (ch->kind == CH_HISTORY) tc.ring = 1;  // forward only: the newest frame is all it needs
    int dev = s->chan[i].device;
    tc.device = dev < 0 ? 0 : dev;
    if (trainer_init(&ch->t, &tc, err)) {
        TbErr why = *err;
        if (dev >= 0) tb_fail(err, "[ch%d] device = %d: %s", i, dev, why.msg);
        goto fail;
    }
    if (dev >= 0 && ch->t.be->device < 0) {  // the CPU (backend cpu, or auto without a GPU)
        trainer_free(&ch->t);
        tb_fail(err, "[ch%d] device = %d: the CPU backend has no devices (device picks a CUDA GPU: "
                "backend = cuda, or leave device at -1)", i, dev);
        goto fail;
    }
    char path[CFG_STR + 16] = "";
    if (ch->kind == CH_NET && s->metrics[0]) channels_metrics_path(s->metrics, i, path, sizeof path);
    if (ch->kind == CH_NET && metrics_open(&ch->m, path, &ch->t, err)) {
        trainer_free(&ch->t);
        goto fail;
    }
    if (ch->kind == CH_HISTORY && history_open(ch, i, t0->model.n_params, err)) {
        trainer_free(&ch->t);
        goto fail;
    }
    live_params_from_settings(&ch->p, ch->s);
    if (ch->kind == CH_NET)
        tb_log("channel %d: a network of its own (lr %.4g, momentum %.3g%s%s)", i, (double)ch->s->lr,
               (double)ch->s->momentum, path[0] ? ", metrics " : "", path);
    return 0;
fail:
    free(ch->s);
    ch->s = NULL;
    return -1;
}

int channels_open(Channels *c, const Settings *s, const Trainer *t0, TbErr *err) {
    memset(c, 0, sizeof *c);
    c->count = 1;
    c->coupled_inside = -1;
    c->n_params = t0->model.n_params;
    for (int i = 1; i < s->ch_count; i++) {
        if (channel_open(&c->ch[i], s, i, t0, err)) {
            channels_close(c);
            return -1;
        }
        c->count = i + 1;
    }
    if (c->count > 1)
        for (int i = 0; i < c->count; i++) c->host[i] = tb_malloc(c->n_params * sizeof(float));
    return 0;
}

// One frame of a net channel: as run_frame does for channel 0.
static void net_frame(Channel *ch, long frame, int paused, float lr_scale) {
    Trainer *t = &ch->t;
    run_apply_params(t, &ch->p, lr_scale);
    int K = paused || ch->p.v[PARAM_PAUSE] > 0 ? 0 : (int)ch->p.v[PARAM_STEPS];
    int R = (int)ch->p.v[PARAM_MEMORY];
    if (metrics_need_flush(&ch->m, t, K, ch->s->stats_every) && metrics_flush(&ch->m, t) &&
        ch->s->rollback_lr_factor != 1.0f) {
        live_params_set(&ch->p, PARAM_LR, ch->p.v[PARAM_LR] * ch->s->rollback_lr_factor);
        run_apply_params(t, &ch->p, lr_scale);
    }
    int slot = trainer_train(t, K, R);
    metrics_frame(&ch->m, t, frame, slot, K, R);
}

// A history channel: a snapshot of channel 0 when one is due, then the newest
// snapshot at least `minutes` old (the oldest while none is) runs forward.
static void history_frame(Channel *ch, const Trainer *t0, double now) {
    if (ch->next_id == 0 || now >= ch->next_t - 1e-9) {  // the first frame takes one
        ch->next_t = (ch->next_id == 0 ? now : ch->next_t) + ch->refresh;
        ch->head = (ch->head + 1) % ch->cap;
        if (ch->len < ch->cap) ch->len++;
        t0->be->get_params(t0->be, ch->snap[ch->head]);
        ch->snap_t[ch->head] = now;
        ch->snap_id[ch->head] = ch->next_id++;
    }
    int pick = (ch->head - ch->len + 1 + ch->cap) % ch->cap;  // the oldest
    for (int k = 0; k < ch->len; k++) {
        int j = (ch->head - k + ch->cap) % ch->cap;
        if (ch->snap_t[j] <= now - ch->back_s + 1e-9) {
            pick = j;
            break;
        }
    }
    if (ch->snap_id[pick] != ch->shown_id) {
        ch->t.be->set_params(ch->t.be, ch->snap[pick]);
        ch->shown_id = ch->snap_id[pick];
    }
    trainer_train(&ch->t, 0, 0);
}

// Every net (channel 0 and the net channels) toward their mean by `coupling`,
// inside the backends when they allow it (backend_couple), else on host copies.
static void couple_nets(Channels *c, Trainer *t0, float coupling) {
    Backend *nets[TB_CHANNELS];
    int k = 0;
    nets[k++] = t0->be;
    for (int i = 1; i < c->count; i++)
        if (c->ch[i].kind == CH_NET) nets[k++] = c->ch[i].t.be;
    if (k < 2) return;
    int inside = backend_couple(nets, k, coupling, c->host);
    if (inside != c->coupled_inside)
        tb_log("channels: coupling %d nets %s", k, inside ? "in the backends' own memory" : "through host copies");
    c->coupled_inside = inside;
}

void channels_frame(Channels *c, Trainer *t0, long frame, int pushed, int paused, float lr_scale,
                    float coupling, double now) {
    const uint8_t *newest = trainer_newest(t0);
    int W = t0->model.spec.width, H = t0->model.spec.height;
    for (int i = 1; i < c->count; i++) {
        Channel *ch = &c->ch[i];
        if ((pushed || !trainer_newest(&ch->t)) && newest) trainer_push_frame(&ch->t, newest, W, H);
        if (ch->kind == CH_NET) net_frame(ch, frame, paused, lr_scale);
        else history_frame(ch, t0, now);
    }
    if (coupling > 0) couple_nets(c, t0, coupling);
}

void channels_rebirth(Channels *c, int sched_seed) {
    for (int i = 1; i < c->count; i++) {
        Channel *ch = &c->ch[i];
        ch->t.ring_len = 0, ch->t.ring_head = 0;
        if (ch->kind == CH_HISTORY) {  // yesterday's snapshots are not minutes ago
            ch->len = 0, ch->head = -1, ch->next_id = 0, ch->shown_id = -1;
            continue;
        }
        trainer_reset(&ch->t, (uint64_t)(sched_seed >= 0 ? sched_seed : ch->s->seed));
        metrics_watchdog_reset(&ch->m);
    }
}

void channels_flush(Channels *c) {
    for (int i = 1; i < c->count; i++)
        if (c->ch[i].kind == CH_NET) metrics_flush(&c->ch[i].m, &c->ch[i].t);
}

void channels_close(Channels *c) {
    for (int i = 1; i < TB_CHANNELS; i++) channel_free(&c->ch[i]);
    for (int i = 0; i < TB_CHANNELS; i++) free(c->host[i]);
    memset(c, 0, sizeof *c);
}

double channels_distance(Channels *c, const Trainer *t0, int i) {
    CHECK(i >= 1 && i < c->count, "channel %d", i);
    size_t n = c->n_params;
    float *a = tb_malloc(n * sizeof(float)), *b = tb_malloc(n * sizeof(float));
    t0->be->get_params(t0->be, a);
    c->ch[i].t.be->get_params(c->ch[i].t.be, b);
    double sum = 0;
    for (size_t k = 0; k < n; k++) sum += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
    free(a), free(b);
    return sqrt(sum / (double)n);
}
