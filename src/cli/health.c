// health.c: the periodic health line (health.h).
#define _DEFAULT_SOURCE
#include "health.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void health_init(Health *h, double every_s, double now) {
    memset(h, 0, sizeof *h);
    h->every_s = every_s > 0 ? every_s : 0;
    h->t0 = h->last_t = now;
    h->next = now + h->every_s;
    h->last_draws = -1;
}

long health_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

void health_log(Health *h, double now, const HealthSample *s) {
    double dt = now - h->last_t;
    if (dt <= 0) dt = 1e-9;
    char stamp[32];
    time_t wall = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", localtime_r(&wall, &tm));
    char extra[512] = "";
    size_t n = 0;
    if (s->draws >= 0 && h->last_draws >= 0)
        n += (size_t)snprintf(extra + n, sizeof extra - n, ", fps %.1f",
                              (double)(s->draws - h->last_draws) / dt);
    else if (s->draws >= 0)
        n += (size_t)snprintf(extra + n, sizeof extra - n, ", fps %.1f",
                              (double)s->draws / (now - h->t0 > 0 ? now - h->t0 : 1e-9));
    long rss = health_rss_kb();
    tb_log("health %s: uptime %.1f s%s, steps/s %.1f, loss %.5f, frames %ld, rss %.1f MB%s%s, "
           "dropped %ld, rollbacks %ld",
           stamp, now - h->t0, extra, (double)(s->steps - h->last_steps) / dt, (double)s->loss,
           s->frames, rss >= 0 ? rss / 1024.0 : -1.0, s->camera ? ", camera " : "",
           s->camera ? s->camera : "", s->dropped, s->rollbacks);
    h->last_t = now;
    h->last_steps = s->steps;
    h->last_draws = s->draws;
    // The next line every_s from this one: never two close together after a
    // slow frame (a line may come a frame late, never early).
    h->next = now + h->every_s;
}

void health_tick_run(Health *h, const Run *r, ControlQueue *q) {
    double now = tb_now();
    if (!health_due(h, now)) return;
    long dropped = -1;
    if (q) {
        pthread_mutex_lock(&q->mu);
        dropped = q->dropped;
        pthread_mutex_unlock(&q->mu);
    }
    HealthSample s = {.steps = r->t.step, .frames = r->frames, .loss = r->m.loss, .draws = -1,
                      .camera = NULL, .dropped = dropped, .rollbacks = r->m.diverged};
    health_log(h, now, &s);
}
