// app_rig.h: the App that app_run sets up around the training thread, for the
// tests that drive the hand-over between the two threads (the reconstruction's
// interop path, the atlas) without app_run's window and camera: the CPU
// backend at w x h, the given encoder channels, no autosave. The caller
// adjusts settings between app_rig_settings and app_rig_open, and starts the
// training thread itself (after its own set-up).
#pragma once
#include <pthread.h>
#include <stdlib.h>

#include "live.h"
#include "test.h"

static inline void app_rig_settings(Settings *s, int w, int h, const char *channels) {
    settings_default(s);
    s->width = w, s->height = h;
    s->autosave_minutes = 0;  // nothing written where the test runs
    snprintf(s->channels, sizeof s->channels, "%s", channels);
    snprintf(s->backend, sizeof s->backend, "cpu");
}

// The queue, the lock (error-checking: a wrong unlock fails loudly), the run
// and the frame buffers app.c gives the threads. 0, or -1 (run_open failed:
// said as a failed check).
static inline int app_rig_open(App *a, Settings *s, ControlQueue *q) {
    control_queue_init(q);
    a->s = s;
    a->q = q;
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_settype(&at, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&a->mu, &at);
    pthread_mutexattr_destroy(&at);
    pthread_cond_init(&a->cond, NULL);
    TbErr err = {{0}};
    if (run_open(&a->run, s, q, &err)) {
        EXPECT(0, "run_open: %s", err.msg);
        return -1;
    }
    size_t n = (size_t)s->width * s->height;
    a->rec_rgb = tb_calloc(n, 3);
    a->net_rgb = tb_calloc(n, 3);
    a->in_rgb = tb_calloc(n, 3);
    a->in_cap = n * 3;
    a->atlas_focus = a->atlas_solo = -1;
    a->atlas_solo_n = 1;
    return 0;
}

// After the training thread has stopped (app_stop_training) and the caller's
// own devices are gone.
static inline void app_rig_close(App *a, ControlQueue *q) {
    run_close(&a->run);
    free(a->rec_rgb), free(a->net_rgb), free(a->in_rgb), free(a->atlas_mid), free(a->atlas_show);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    control_queue_destroy(q);
}

// The one window of the process (one display per process), hidden, opened at
// the first call: sw x sh, for the training size tw x th. Under our own Xvfb a
// window must open: failing to is a failure, not a skip.
static Display *app_rig_win;
static inline Display *app_rig_window(int sw, int sh, int tw, int th, DisplayLayout layout) {
    if (app_rig_win) return app_rig_win;
    DisplayOpts o = {.width = sw, .height = sh, .hidden = 1};
    TbErr err = {{0}};
    app_rig_win = display_open(&o, &err);
    if (!app_rig_win) {
        fprintf(stderr, "display_open under Xvfb: %s\n", err.msg);
        exit(1);
    }
    display_set_train_size(app_rig_win, tw, th);
    display_set_layout(app_rig_win, layout);
    return app_rig_win;
}
