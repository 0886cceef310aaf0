// controls.c: live values (clamped and stepped by the parameter table), and the
// event queue.
#include "controls.h"

#include <math.h>
#include <string.h>

double live_param_from_settings(const Settings *s, int id) {
    const Param *r = param_live(id);
    const char *f = (const char *)s + r->off;
    return r->type == P_FLOAT  ? *(const float *)f
         : r->type == P_LONG   ? (double)*(const long *)f
         : r->type == P_CHOICE ? param_choice_index(r, f)
                               : *(const int *)f;
}

void live_params_from_settings(LiveParams *p, const Settings *s) {
    memset(p, 0, sizeof *p);
    for (int id = 0; id < PARAM_COUNT; id++) live_params_set(p, id, (float)live_param_from_settings(s, id));
}

static float clamp_round(int id, float v) {
    double lo, hi;
    param_live_range(id, &lo, &hi);
    if (v < lo) v = (float)lo;
    if (v > hi) v = (float)hi;
    return param_is_int(id) ? roundf(v) : v;
}

float live_params_set(LiveParams *p, int id, float value) {
    if (value != value) return p->v[id];  // NaN from a controller: ignore
    return p->v[id] = clamp_round(id, value);
}

float live_params_nudge(const LiveParams *p, int id, int dir) {
    const Param *r = param_live(id);
    float v = p->v[id], nv;
    if (r->scale == SCALE_LOG) {
        // With 0 in range (off): a step up from 0 lands on zero_up, and a step
        // down below floor turns it off.
        if (v <= 0) nv = dir > 0 ? (float)r->zero_up : 0;
        else nv = dir > 0 ? v * (float)r->step : v / (float)r->step;
        if (r->min <= 0 && dir < 0 && nv < (float)r->floor * 0.999f) nv = 0;  // not on rounding
    } else {
        nv = v + (float)dir * (float)r->step;
        // Kill float drift of repeated 0.01 steps.
        if (!param_is_int(id)) nv = roundf(nv / (float)r->step) * (float)r->step;
    }
    return clamp_round(id, nv);
}

const char *event_source_name(int src) {
    static const char *const names[SRC_COUNT] = {"key", "midi", "osc", "scene", "lfo", "replay"};
    return src >= 0 && src < SRC_COUNT ? names[src] : "?";
}

static const ActionInfo ACTIONS[] = {
    {"reset", CMD_RESET, -1, "a fresh blank network (a number argument: its seed)"},
    {"pause", CMD_TOGGLE, PARAM_PAUSE, "pause / resume learning"},
    {"freeze", CMD_TOGGLE, PARAM_FREEZE, "freeze / unfreeze the camera"},
    {"latent_freeze", CMD_TOGGLE, PARAM_BN_FREEZE, "hold the bottleneck (only the decoder learns) / let go"},
    {"save", CMD_SAVE, -1, "save a snapshot of the weights"},
    {"load", CMD_LOAD, -1, "load the newest snapshot"},
    {"record", CMD_RECORD, -1, "start a take (record dir), or stop the one running"},
    {"slot_save", CMD_SLOT_SAVE, -1, "save the live network into slot N (1 to 8; in memory)"},
    {"slot_recall", CMD_SLOT_RECALL, -1, "slot N (1 to 8) becomes the live network at once"},
    {"slot_fade", CMD_SLOT_FADE, -1, "cross-fade the live network into slot N over fade_time seconds"},
    {"slot_write", CMD_SLOT_WRITE, -1, "write slot N to snapshot_dir/slot-N.safetensors"},
    {"slot_read", CMD_SLOT_READ, -1, "read snapshot_dir/slot-N.safetensors into slot N"},
    {"scene", CMD_SCENE, -1, "recall scene N (1 = the first file in the scenes folder by name)"},
    {"world", CMD_WORLD, -1, "load world N (the Nth .safetensors in [world] dir by name) into [world] slot "
     "and cross-fade to it over fade_time, with its transform"},
};

const ActionInfo *actions_table(size_t *n) {
    *n = sizeof ACTIONS / sizeof ACTIONS[0];
    return ACTIONS;
}

const ActionInfo *action_by_name(const char *name) {
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
        if (strcmp(ACTIONS[i].name, name) == 0) return &ACTIONS[i];
    return NULL;
}

void control_publish(ControlQueue *q, const RunView *v) {
    pthread_mutex_lock(&q->mu);
    q->view = *v;
    pthread_mutex_unlock(&q->mu);
}

RunView control_view(ControlQueue *q) {
    pthread_mutex_lock(&q->mu);
    RunView v = q->view;
    pthread_mutex_unlock(&q->mu);
    return v;
}

void control_queue_init(ControlQueue *q) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
}

void control_queue_destroy(ControlQueue *q) { pthread_mutex_destroy(&q->mu); }

int control_push(ControlQueue *q, ControlEvent e) {
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (q->len == CONTROL_QUEUE_CAP) {
        q->dropped++;
        rc = -1;
    } else {
        q->ev[(q->head + q->len) % CONTROL_QUEUE_CAP] = e;
        q->len++;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int control_pop(ControlQueue *q, ControlEvent *e) {
    pthread_mutex_lock(&q->mu);
    int got = q->len > 0;
    if (got) {
        *e = q->ev[q->head];
        q->head = (q->head + 1) % CONTROL_QUEUE_CAP;
        q->len--;
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}
