// health.h: the health line. Every [health] every_s seconds (0 = off) one log
// line with a wall-clock timestamp: uptime, display fps (window runs), steps/s,
// loss, the process's resident memory, the camera's state (window runs),
// control events dropped and divergence rollbacks. A gallery technician greps
// the journal for "health" to see how weeks of running went; never a line per
// frame.
#pragma once
#include "controls.h"
#include "run.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double every_s;  // 0 = off
    double t0, next, last_t;
    long last_steps, last_draws;
} Health;

// What one line reports. Fields a driver does not have: draws < 0 (no window),
// camera NULL, dropped or rollbacks < 0.
typedef struct {
    long steps, frames;
    float loss;
    long draws;          // frames presented so far (window runs)
    const char *camera;  // the source's state
    long dropped;        // control events dropped (ControlQueue.dropped)
    long rollbacks;      // times the last good weights came back
} HealthSample;

void health_init(Health *h, double every_s, double now);
static inline int health_due(const Health *h, double now) {
    return h->every_s > 0 && now >= h->next;
}
// Format and log the line for s at `now`, and schedule the next one.
void health_log(Health *h, double now, const HealthSample *s);
// Resident memory of this process in kB (VmRSS in /proc/self/status), -1 if unknown.
long health_rss_kb(void);
// The headless driver's per-frame hook: a line when one is due (cheap otherwise).
void health_tick_run(Health *h, const Run *r, ControlQueue *q);

#ifdef __cplusplus
}
#endif
