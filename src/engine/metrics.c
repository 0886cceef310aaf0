// metrics.c: per-frame JSON lines, and the divergence guard.
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int metrics_open(Metrics *m, const char *path, const Trainer *t, TbErr *err) {
    memset(m, 0, sizeof *m);
    if (path && path[0]) {
        m->f = fopen(path, "w");
        if (!m->f) return tb_fail(err, "--metrics %s: %s", path, strerror(errno));
        snprintf(m->path, sizeof m->path, "%s", path);
    }
    m->window_start = tb_now();
    m->good_params = tb_malloc(t->model.n_params * sizeof(float));
    m->scratch = tb_malloc(t->model.n_params * sizeof(float));
    t->be->get_params(t->be, m->good_params);
    m->good_step = t->step;
    return 0;
}

void metrics_close(Metrics *m) {
    if (m->f && fclose(m->f) != 0 && !m->write_failed)
        tb_warn("metrics %s: %s", m->path, strerror(errno));
    free(m->good_params);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

void metrics_frame(Metrics *m, Trainer *t, long frame, int slot, int steps, int memory) {
    CHECK(m->n_pending < TB_STATS_RING, "metrics: pending list full (flush first)");
    PendingFrame *p = &m->pending[m->n_pending++];
    p->frame = frame;
    p->step = t->step;
    p->slot = slot;
    p->lr = t->hyper.lr;
    p->momentum = t->hyper.momentum;
    p->clip = t->hyper.clip;
    p->steps = steps;
    p->memory = memory;
    p->loss_kind = t->hyper.loss;
    m->window_steps += steps;
}

int metrics_need_flush(const Metrics *m, const Trainer *t, int next_steps, int every) {
    return m->n_pending >= every || m->n_pending >= TB_STATS_RING ||
           trainer_slots_free(t) < next_steps;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

// Median of the recent finite losses (0 when there are none).
static float median_recent(const Metrics *m) {
    if (!m->n_recent) return 0;
    float v[METRICS_RECENT];
    memcpy(v, m->recent, (size_t)m->n_recent * sizeof(float));
    qsort(v, (size_t)m->n_recent, sizeof(float), cmp_float);
    return v[m->n_recent / 2];
}

// One frame's JSON line (a write error is said once; training goes on).
static void write_line(Metrics *m, const PendingFrame *p, const StepStats *st, const char *backend) {
    if (m->f && !m->write_failed) {
        // JSON has no NaN: write null for a non-finite value.
        char loss[32], psnr[32], gn[32];
        // The loss and the norm exactly (a replayed take compares them bit for bit).
        if (isfinite(st->loss)) tb_fmt_float(loss, st->loss); else strcpy(loss, "null");
        if (isfinite(m->psnr)) snprintf(psnr, sizeof psnr, "%.4f", (double)m->psnr); else strcpy(psnr, "null");
        if (isfinite(st->grad_norm)) tb_fmt_float(gn, st->grad_norm); else strcpy(gn, "null");
        int w = fprintf(m->f,
                        "{\"frame\":%ld,\"step\":%ld,\"loss\":%s,\"psnr\":%s,\"grad_norm\":%s,"
                        "\"lr\":%.7g,\"momentum\":%.7g,\"clip\":%.7g,\"steps_per_frame\":%d,"
                        "\"memory\":%d,\"loss_fn\":\"%s\",\"step_ms\":%.3f,\"fps\":%.2f,\"backend\":\"%s\"}\n",
                        p->frame, p->step, loss, psnr, gn, (double)p->lr, (double)p->momentum,
                        (double)p->clip, p->steps, p->memory, p->loss_kind == LOSS_L1 ? "l1" : "mse",
                        (double)m->step_ms,
                        (double)m->fps, backend);
        if (w < 0) {
            // A full disk must not stop the show: say it once, keep training.
            tb_warn("metrics %s: %s: no more metrics will be written", m->path, strerror(errno));
            m->write_failed = 1;
        }
        m->frames_written++;
    }
}

int metrics_flush(Metrics *m, Trainer *t) {
    StepStats st[TB_STATS_RING];
    int n = trainer_read_stats(t, st);
    double now = tb_now(), dt = now - m->window_start;
    int frames = m->n_pending;
    if (frames) {
        m->fps = dt > 0 ? (float)(frames / dt) : 0;
        m->step_ms = m->window_steps ? (float)(1e3 * dt / m->window_steps) : 0;
    }
    const char *why = NULL;
    for (int i = 0; i < n && !why; i++)
        if (!isfinite(st[i].loss)) why = "loss not finite";
        else if (!isfinite(st[i].grad_norm)) why = "gradient norm not finite";
    // A network driven into saturation (lr far too high) has a loss stuck high
    // and no gradient left: it would never learn again.
    int dead = n >= 4;
    for (int i = 0; i < n && dead; i++) dead = st[i].grad_norm < 1e-10f && st[i].loss > 1e-3f;
    if (!why && dead) why = "gradient vanished: a dead network";
    float med = median_recent(m), worst = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(st[i].loss) && st[i].loss > worst) worst = st[i].loss;
    if (!why && m->steps_seen >= METRICS_WARMUP && m->n_recent >= METRICS_RECENT / 2 &&
        worst > METRICS_EXPLODE * med)
        why = "loss exploded";
    // The weights themselves (one device->host copy a flush): a step can leave
    // them non-finite before any loss shows it.
    size_t np = t->model.n_params;
    int have_weights = 0;
    if (!why && n) {
        t->be->get_params(t->be, m->scratch);
        have_weights = 1;
        for (size_t i = 0; i < np && !why; i++)
            if (!isfinite(m->scratch[i])) why = "weights not finite";
    }
    int bad = why != NULL;
    for (int i = 0; i < frames; i++) {
        PendingFrame *p = &m->pending[i];
        if (p->slot < 0 || p->slot >= n) continue;  // a frozen frame: nothing measured
        StepStats s = st[p->slot];
        m->loss = s.loss;
        m->grad_norm = s.grad_norm;
        // PSNR from the MSE; under L1 the loss is no MSE, so there is none (null).
        m->psnr = p->loss_kind != LOSS_MSE ? NAN : s.loss > 0 ? (float)(10.0 * log10(1.0 / s.loss)) : 99.0f;
        write_line(m, p, &s, t->be->name);
    }
    if (m->f && !m->write_failed && fflush(m->f) != 0) {
        tb_warn("metrics %s: %s: no more metrics will be written", m->path, strerror(errno));
        m->write_failed = 1;
    }
    m->n_pending = 0;
    m->window_steps = 0;
    m->window_start = now;
    if (bad) {
        // Training diverged (lr too high for the scene, say): go back to the last
        // good weights, with fresh optimizer state.
        m->diverged++;
        snprintf(m->why, sizeof m->why, "%s", why);
        tb_warn("training diverged (%s) at step %ld: rolled back to the weights of step %ld (rollback %ld)",
               why, t->step, m->good_step, m->diverged);
        t->be->set_params(t->be, m->good_params);
        t->be->reset_opt_state(t->be);
        // An explosion may be a new scene: the loss level is learned afresh, so
        // one cut never rolls back twice.
        if (strcmp(why, "loss exploded") == 0) m->n_recent = m->recent_head = 0;
        return 1;
    }
    for (int i = 0; i < n; i++) {
        m->recent[m->recent_head] = st[i].loss;
        m->recent_head = (m->recent_head + 1) % METRICS_RECENT;
        if (m->n_recent < METRICS_RECENT) m->n_recent++;
    }
    m->steps_seen += n;
    // Remember good weights now and then (checked finite above), but not while
    // the loss climbs well above its level (an explosion in the making).
    int calm = m->n_recent < METRICS_RECENT / 2 || worst <= 4.0f * med;
    if (have_weights && calm && (t->step - m->good_step >= 64 || t->step < m->good_step)) {
        memcpy(m->good_params, m->scratch, np * sizeof(float));
        m->good_step = t->step;
    }
    return 0;
}

void metrics_watchdog_reset(Metrics *m) {
    m->n_recent = m->recent_head = 0;
    m->steps_seen = 0;
}
