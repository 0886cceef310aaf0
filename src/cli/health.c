// health.c: the health sample, its line and JSON, and the published copy (health.h).
#define _DEFAULT_SOURCE
#include "health.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

void health_init(Health *h, double every_s, double now) {
    memset(h, 0, sizeof *h);
    h->every_s = every_s > 0 ? every_s : 0;
    // Reports at most a second apart, a whole number of them per line, so a
    // line comes every every_s and the published sample is never older than 1 s.
    long k = h->every_s > 0 ? (long)ceil(h->every_s / HEALTH_PUBLISH_S - 1e-9) : 1;
    h->per_line = k > 0 ? k : 1;
    h->period = h->every_s > 0 ? h->every_s / (double)h->per_line : HEALTH_PUBLISH_S;
    h->t0 = h->last_t = now;
    h->next = now + h->period;
    h->last_draws = -1;
    h->rollback_t = -1;
}

long health_rss_kb(void) {
    static int fd = -1;
    char text[4096];
    const char *at = tb_proc_read("/proc/self/status", &fd, text, sizeof text) ? strstr(text, "VmRSS:") : NULL;
    long kb = -1;
    if (!at || sscanf(at, "VmRSS: %ld", &kb) != 1) return -1;
    return kb;
}

void health_backend_mem(Backend *be, HealthSample *s) {
    size_t used, total;
    if (be && be->mem_info && be->mem_info(be, &used, &total) == 0) {
        s->gpu_used_mb = (double)used / (1 << 20);
        s->gpu_total_mb = (double)total / (1 << 20);
    } else {
        s->gpu_used_mb = s->gpu_total_mb = -1;
    }
}

void health_update(Health *h, double now, HealthSample *s) {
    s->t = now;
    s->uptime_s = now - h->t0;
    double dt = now - h->last_t;
    if (s->draws < 0) s->fps = -1;
    else if (h->last_draws >= 0 && dt > 0) s->fps = (double)(s->draws - h->last_draws) / dt;
    else s->fps = s->uptime_s > 0 ? (double)s->draws / s->uptime_s : 0;
    long rss = health_rss_kb();
    s->rss_mb = rss >= 0 ? rss / 1024.0 : -1;
    uint64_t avail = tb_mem_available();
    s->mem_available_mb = avail ? (double)avail / (1 << 20) : -1;
    if (s->rollbacks > h->last_rollbacks) h->rollback_t = now;
    h->last_rollbacks = s->rollbacks;
    int rolled = h->rollback_t >= 0 && now - h->rollback_t < HEALTH_ROLLBACK_S;
    s->status = s->camera == HEALTH_CAMERA_LOST || rolled ? HEALTH_DEGRADED : HEALTH_OK;
    h->last_t = now;
    h->last_draws = s->draws;
}

void health_report(Health *h, double now, HealthSample *s) {
    health_update(h, now, s);
    health_publish(s);
    if (h->every_s > 0 && ++h->reports % h->per_line == 0) {
        char line[1024];
        health_format_line(s, line, sizeof line);
        if (s->status == HEALTH_OK) tb_log("%s", line);
        else tb_warn("%s", line);
    }
    // The next one a period from this one: never two close together after a
    // slow frame (a report may come a frame late, never early).
    h->next = now + h->period;
}

// ---------------------------------------------------------------- formats

const char *health_status_name(int status) {
    return status == HEALTH_OK ? "ok" : status == HEALTH_DEGRADED ? "degraded" : "stalled";
}

const char *health_camera_name(int camera) {
    static const char *const NAMES[] = {"none", "starting", "ok", "lost"};
    return camera >= 0 && camera <= HEALTH_CAMERA_LOST ? NAMES[camera] : "none";
}

// Appends to buf at *at (never past n).
static void put(char *buf, size_t n, size_t *at, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void put(char *buf, size_t n, size_t *at, const char *fmt, ...) {
    if (*at >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + *at, n - *at, fmt, ap);
    va_end(ap);
    if (m > 0) *at += (size_t)m < n - *at ? (size_t)m : n - *at - 1;
}

void health_format_line(const HealthSample *s, char *buf, size_t n) {
    size_t at = 0;
    buf[0] = 0;
    put(buf, n, &at, "health %s: uptime %.1f s", health_status_name(s->status), s->uptime_s);
    if (s->fps >= 0) put(buf, n, &at, ", fps %.1f", s->fps);
    put(buf, n, &at, ", steps/s %.1f, loss %.6g, steps %ld, frames %ld", s->steps_per_s, s->loss, s->step,
        s->frame);
    if (s->rss_mb >= 0) put(buf, n, &at, ", rss %.1f MB", s->rss_mb);
    if (s->mem_available_mb >= 0) put(buf, n, &at, ", mem available %.1f MB", s->mem_available_mb);
    if (s->gpu_total_mb >= 0) put(buf, n, &at, ", gpu %.1f/%.1f MB", s->gpu_used_mb, s->gpu_total_mb);
    if (s->camera == HEALTH_CAMERA_LOST && s->camera_msg[0])
        put(buf, n, &at, ", camera lost (%s)", s->camera_msg);
    else if (s->camera != HEALTH_CAMERA_NONE) put(buf, n, &at, ", camera %s", health_camera_name(s->camera));
    put(buf, n, &at, ", dropped frames %ld", s->dropped_frames);
    if (s->dropped_events >= 0) put(buf, n, &at, ", dropped events %ld", s->dropped_events);
    put(buf, n, &at, ", rollbacks %ld", s->rollbacks);
}

int health_fields(const HealthSample *s, HealthField f[HEALTH_FIELDS]) {
    int k = 0;
#define NUM(name, kd, v, known, rv) f[k++] = (HealthField){name, (known) ? (kd) : HF_NULL, (double)(v), NULL, rv}
#define TXT(name, v, known) f[k++] = (HealthField){name, (known) ? HF_TEXT : HF_NULL, 0, v, 0}
    TXT("status", health_status_name(s->status), 1);
    NUM("uptime_s", HF_FIX1, s->uptime_s, 1, 0);
    NUM("fps", HF_FIX1, s->fps, s->fps >= 0, 0);
    NUM("steps_per_s", HF_FIX1, s->steps_per_s, 1, 1);
    NUM("loss", HF_REAL, s->loss, isfinite(s->loss), 1);
    NUM("step", HF_INT, s->step, 1, 1);
    NUM("frame", HF_INT, s->frame, 1, 1);
    NUM("rss_mb", HF_FIX1, s->rss_mb, s->rss_mb >= 0, 0);
    NUM("mem_available_mb", HF_FIX1, s->mem_available_mb, s->mem_available_mb >= 0, 0);
    NUM("gpu_mem_used_mb", HF_FIX1, s->gpu_used_mb, s->gpu_total_mb >= 0, 0);
    NUM("gpu_mem_total_mb", HF_FIX1, s->gpu_total_mb, s->gpu_total_mb >= 0, 0);
    TXT("camera", health_camera_name(s->camera), s->camera != HEALTH_CAMERA_NONE);
    TXT("camera_msg", s->camera_msg, s->camera == HEALTH_CAMERA_LOST && s->camera_msg[0]);
    NUM("dropped_frames", HF_INT, s->dropped_frames, 1, 0);
    NUM("dropped_events", HF_INT, s->dropped_events, s->dropped_events >= 0, 0);
    NUM("rollbacks", HF_INT, s->rollbacks, 1, 0);
#undef NUM
#undef TXT
    CHECK(k == HEALTH_FIELDS, "health_fields: %d fields, HEALTH_FIELDS is %d", k, HEALTH_FIELDS);
    return k;
}

// A JSON string: quotes, backslashes and control characters escaped (the
// camera's message comes from drivers and file names).
static void put_json_string(char *buf, size_t n, size_t *at, const char *v) {
    put(buf, n, at, "\"");
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if (*c == '"' || *c == '\\') put(buf, n, at, "\\%c", *c);
        else if (*c < 0x20) put(buf, n, at, "\\u%04x", *c);
        else put(buf, n, at, "%c", *c);
    }
    put(buf, n, at, "\"");
}

void health_format_json(const HealthSample *s, char *buf, size_t n) {
    HealthField f[HEALTH_FIELDS];
    int k = health_fields(s, f);
    size_t at = 0;
    buf[0] = 0;
    put(buf, n, &at, "{");
    for (int i = 0; i < k; i++) {
        put(buf, n, &at, "%s\"%s\":", i ? "," : "", f[i].key);
        switch (f[i].kind) {
        case HF_INT: put(buf, n, &at, "%.0f", f[i].num); break;
        case HF_FIX1: put(buf, n, &at, "%.1f", f[i].num); break;
        case HF_REAL: put(buf, n, &at, "%.6g", f[i].num); break;
        case HF_TEXT: put_json_string(buf, n, &at, f[i].text); break;
        default: put(buf, n, &at, "null");
        }
    }
    put(buf, n, &at, "}");
}

// ---------------------------------------------------------------- published

static pthread_mutex_t board_mu = PTHREAD_MUTEX_INITIALIZER;
static HealthSample board;
static int board_have;

void health_publish(const HealthSample *s) {
    pthread_mutex_lock(&board_mu);
    if (s) board = *s;
    board_have = s != NULL;
    pthread_mutex_unlock(&board_mu);
}

int health_latest(HealthSample *s, double now) {
    pthread_mutex_lock(&board_mu);
    int have = board_have;
    if (have) *s = board;
    pthread_mutex_unlock(&board_mu);
    if (have && now - s->t > HEALTH_STALE_S) s->status = HEALTH_STALLED;
    return have;
}

// ---------------------------------------------------------------- headless

void health_tick_run(Health *h, const Run *r, ControlQueue *q) {
    double now = tb_now();
    if (!health_due(h, now)) return;
    long dropped = -1;
    if (q) {
        pthread_mutex_lock(&q->mu);
        dropped = q->dropped;
        pthread_mutex_unlock(&q->mu);
    }
    // Headless reads every frame of the source in order: none is dropped.
    HealthSample s = {.step = r->t.step, .frame = r->frames, .loss = r->m.loss,
                      .steps_per_s = r->steps_per_s, .draws = -1, .camera = HEALTH_CAMERA_NONE,
                      .dropped_frames = 0, .dropped_events = dropped, .rollbacks = r->m.diverged};
    health_backend_mem(r->t.be, &s);
    health_report(h, now, &s);
}
