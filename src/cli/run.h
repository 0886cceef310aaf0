// run.h: one run of online training, frame by frame, shared by the headless
// driver (headless.c) and the live app's training thread (app/train_thread.c):
// the trainer, its metrics, and the live parameters in force. A frame goes in,
// K steps come out (K = steps per frame, 0 while paused), the metrics record
// it, and a diverged network goes back to its last good weights.
#pragma once
#include <stdint.h>

#include "controls.h"
#include "metrics.h"
#include "settings.h"
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const Settings *s;
    Trainer t;
    Metrics m;
    LiveParams p;       // the values in force (changed by run_control)
    long frames;        // frames taken so far
    float steps_per_s;  // over the last half second or so
    long window_steps;
    double window_t0;
} Run;

// Trainer from the settings (--load, --save-init, summary) and metrics (--metrics).
// 0, or -1 with err (nothing left open).
int run_open(Run *r, const Settings *s, TbErr *err);
// Apply one control event (set a parameter, reset, snapshot save/load). Returns
// 1 for CMD_QUIT, else 0; a line for the operator (e.g. "saved PATH") goes to
// msg, or msg[0] = 0 when there is nothing to say.
int run_control(Run *r, const ControlEvent *e, char *msg, size_t n);
// One frame (any size: it is fitted to the training size): into the replay ring,
// then the steps the live parameters ask for, then the metrics. Returns 1 if
// training diverged and the last good weights came back, else 0.
int run_frame(Run *r, const uint8_t *rgb, int w, int h);
// Read back and write what the metrics still hold (at the end of a run).
void run_flush(Run *r);
// Close the metrics and free the trainer (save first: session_save).
void run_close(Run *r);

#ifdef __cplusplus
}
#endif
