// controls.c: parameter table, clamping, stepping, and the event queue.
#include "controls.h"

#include <math.h>
#include <string.h>

// Learning rate and clip move on a log scale (4 steps per decade for lr, as a
// knob would feel); momentum linearly in 0.01 steps.
static const ParamInfo INFO[PARAM_COUNT] = {
    [PARAM_LR] = {"lr", 1e-5f, 10.0f, 1.77827941f, 0},  // 10^(1/4)
    [PARAM_MOMENTUM] = {"momentum", 0.0f, 0.99f, 0, 0.01f},
    [PARAM_CLIP] = {"clip", 0.0f, 1000.0f, 1.41421356f, 0},  // sqrt(2); 0 = off
    [PARAM_STEPS] = {"steps_per_frame", 0, 16, 0, 1},
    [PARAM_MEMORY] = {"memory", 0, 15, 0, 1},
    [PARAM_RING] = {"ring", 2, 1024, 2.0f, 0},
    [PARAM_PAUSE] = {"pause", 0, 1, 0, 1},
};

const ParamInfo *param_info(int id) {
    CHECK(id >= 0 && id < PARAM_COUNT, "param %d", id);
    return &INFO[id];
}

int param_by_name(const char *name) {
    for (int i = 0; i < PARAM_COUNT; i++)
        if (strcmp(INFO[i].name, name) == 0) return i;
    return -1;
}

void live_params_from_settings(LiveParams *p, const Settings *s) {
    memset(p, 0, sizeof *p);
    live_params_set(p, PARAM_LR, s->lr);
    live_params_set(p, PARAM_MOMENTUM, s->momentum);
    live_params_set(p, PARAM_CLIP, s->clip);
    live_params_set(p, PARAM_STEPS, (float)s->steps_per_frame);
    live_params_set(p, PARAM_MEMORY, (float)s->memory);
    live_params_set(p, PARAM_RING, (float)s->ring);
    live_params_set(p, PARAM_PAUSE, 0);
}

static int is_int(int id) { return id == PARAM_STEPS || id == PARAM_MEMORY || id == PARAM_RING || id == PARAM_PAUSE; }

float live_params_set(LiveParams *p, int id, float value) {
    const ParamInfo *in = param_info(id);
    if (!(value == value)) return p->v[id];  // NaN from a controller: ignore
    if (value < in->min) value = in->min;
    if (value > in->max) value = in->max;
    if (is_int(id)) value = roundf(value);
    p->v[id] = value;
    return value;
}

float live_params_nudge(const LiveParams *p, int id, int dir) {
    const ParamInfo *in = param_info(id);
    float v = p->v[id], nv;
    if (in->factor > 1) {
        // From 0 (clip off) a step up goes to 1; a step down below the minimum
        // of clip turns it off.
        if (v <= 0) nv = dir > 0 ? 1.0f : 0.0f;
        else nv = dir > 0 ? v * in->factor : v / in->factor;
        if (id == PARAM_CLIP && dir < 0 && nv < 0.01f) nv = 0;
    } else {
        nv = v + (float)dir * in->step;
        // Kill float drift of repeated 0.01 steps.
        if (!is_int(id)) nv = roundf(nv / in->step) * in->step;
    }
    if (nv < in->min) nv = in->min;
    if (nv > in->max) nv = in->max;
    if (is_int(id)) nv = roundf(nv);
    return nv;
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
