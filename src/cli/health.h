// health.h: how the show is doing, in one struct (HealthSample) that each
// driver fills and three outputs read: the health line in the log (every
// [health] every_s seconds, never one per frame), the JSON of the HTTP /health
// endpoint (app/http_health.c) and the OSC status (app/osc.c). One formatter
// for the line and one field list for JSON and OSC, so they cannot disagree.
//
// A driver calls health_report when health_due says so (about once a second):
// it fills in what is derived (uptime, fps, memory, status), publishes the
// sample for the other threads (health_latest), and logs the line when one is
// due. A gallery technician greps the journal for "health" to see how weeks of
// running went; a monitor polls /health.
#pragma once
#include "controls.h"
#include "run.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HEALTH_PUBLISH_S 1.0    // a fresh sample for /health and OSC this often
#define HEALTH_ROLLBACK_S 60.0  // a rollback leaves the status degraded this long
#define HEALTH_STALE_S 10.0     // no sample for this long: the run is stalled

typedef enum { HEALTH_CAMERA_NONE = 0, HEALTH_CAMERA_STARTING, HEALTH_CAMERA_OK, HEALTH_CAMERA_LOST } HealthCamera;
// ok; degraded: the camera is lost or the watchdog rolled back in the last
// minute; stalled: the driver has published nothing for HEALTH_STALE_S.
typedef enum { HEALTH_OK = 0, HEALTH_DEGRADED, HEALTH_STALLED } HealthStatus;

typedef struct {
    // Filled by the driver.
    long step, frame;          // steps taken, frames trained so far
    double loss, steps_per_s;  // as the run publishes them (RunView)
    long draws;                // frames presented so far; < 0: no window
    int camera;                // HealthCamera (NONE: headless, no capture thread)
    char camera_msg[200];      // why, while lost
    long dropped_frames;       // captured but never trained on (window runs; 0 headless)
    long dropped_events;       // control events the full queue dropped
    long rollbacks;            // times the watchdog restored the last good weights
    double gpu_used_mb, gpu_total_mb;  // device-wide (as nvidia-smi); < 0: not on CUDA
    // Filled by health_report (health_update).
    double t;                         // tb_now() when taken
    double uptime_s, fps;             // fps < 0: no window
    double rss_mb, mem_available_mb;  // this process's resident memory, the host's available; < 0 unknown
    int status;                       // HealthStatus
} HealthSample;

// What a driver keeps between reports.
typedef struct {
    double every_s;  // seconds between lines; 0 = no lines (samples are still published)
    double period;   // seconds between reports (at most HEALTH_PUBLISH_S)
    long per_line;   // reports per line
    long reports;
    double t0, next;
    double last_t;
    long last_draws;
    long last_rollbacks;
    double rollback_t;  // when the rollback count last rose (< 0: never)
} Health;

void health_init(Health *h, double every_s, double now);
// A sample is due (cheap: call once a frame).
static inline int health_due(const Health *h, double now) { return now >= h->next; }
// The derived fields of s at now (rates over the time since the last update).
void health_update(Health *h, double now, HealthSample *s);
// health_update, publish, and the line when it is due (a degraded one as a warning).
void health_report(Health *h, double now, HealthSample *s);

// The line without the log prefix: "health ok: uptime 3600.0 s, fps 59.9, ...";
// fields unknown here (fps headless, GPU memory on the CPU) are left out.
void health_format_line(const HealthSample *s, char *buf, size_t n);
// One JSON object: {"status":"ok","uptime_s":3600.0,...}; unknown fields are null.
void health_format_json(const HealthSample *s, char *buf, size_t n);

// The sample as named fields in the JSON's order (the OSC status walks them too).
typedef enum { HF_NULL = 0, HF_INT, HF_FIX1, HF_REAL, HF_TEXT } HealthFieldKind;
typedef struct {
    const char *key;  // JSON key, and /tabula/status/KEY
    int kind;         // HealthFieldKind; HF_NULL: not known here
    double num;
    const char *text;
    int in_run_view;  // also in the RunView, which OSC sends at its own rate
} HealthField;
#define HEALTH_FIELDS 16
int health_fields(const HealthSample *s, HealthField out[HEALTH_FIELDS]);
const char *health_status_name(int status);
const char *health_camera_name(int camera);

// The newest sample for other threads (HTTP, OSC): health_report publishes;
// health_publish(NULL) forgets it. health_latest: 1 with *s (its status
// HEALTH_STALLED when older than HEALTH_STALE_S at now), 0 before the first.
// One run per process, so one published sample.
void health_publish(const HealthSample *s);
int health_latest(HealthSample *s, double now);

// Resident memory of this process in kB (VmRSS in /proc/self/status), -1 if unknown.
long health_rss_kb(void);
// The GPU memory fields of s from the backend (-1 when it has no mem_info).
void health_backend_mem(Backend *be, HealthSample *s);
// The headless driver's per-frame hook: a report when one is due (cheap otherwise).
void health_tick_run(Health *h, const Run *r, ControlQueue *q);

#ifdef __cplusplus
}
#endif
