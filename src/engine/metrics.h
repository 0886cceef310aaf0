// metrics.h: the per-frame JSON-lines stream (--metrics FILE) and the bookkeeping
// that turns the trainer's stats slots back into per-frame records.
// Stats are read back from the backend in batches (each read waits for the GPU),
// so frames wait in a pending list until the next flush.
#pragma once
#include <stdio.h>

#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

// Divergence watchdog: roll back when a loss or gradient norm is not finite,
// when the weights are not, or when a loss exceeds METRICS_EXPLODE times the
// median of the last METRICS_RECENT finite losses (after METRICS_WARMUP steps),
// or when the gradient has vanished (norm < 1e-10 at a loss > 1e-3 over a whole
// window of at least 4 steps: a network saturated for good).
#define METRICS_RECENT 48
#define METRICS_WARMUP 64
#define METRICS_EXPLODE 20.0f

typedef struct {
    long frame;
    long step;  // steps taken so far, after this frame's
    int slot;   // stats slot of the frame's last step, -1 if no step
    float lr, momentum, clip;
    int steps, memory;
    int loss_kind;  // LOSS_MSE or LOSS_L1 (PSNR only means something under MSE)
} PendingFrame;

typedef struct {
    FILE *f;        // NULL: no file, but the latest values are still kept
    char path[256];
    PendingFrame pending[TB_STATS_RING];
    int n_pending;
    double window_start;
    int window_steps;
    // Latest values, for the HUD.
    float loss, psnr, grad_norm, step_ms, fps;  // psnr: NaN when the loss is not MSE
    long frames_written;
    int write_failed;
    // Divergence guard: known-good weights, restored when a loss is not finite.
    float *good_params;
    long good_step;
    long diverged;  // how many times it was restored (rollbacks)
    // The watchdog's memory of recent finite losses (explosion = far above their median).
    float recent[METRICS_RECENT];
    int n_recent, recent_head;
    long steps_seen;
    float *scratch;  // n_params floats: the weights read back for the checks
    char why[64];   // what the last rollback was for
} Metrics;

// path NULL/"" = no file. Fails if the file cannot be created.
int metrics_open(Metrics *m, const char *path, const Trainer *t, TbErr *err);
void metrics_close(Metrics *m);
// Record that frame `frame` took its steps (slot from trainer_train).
void metrics_frame(Metrics *m, Trainer *t, long frame, int slot, int steps, int memory);
// 1 if a flush is due before the next frame's K steps (slots or pending full).
int metrics_need_flush(const Metrics *m, const Trainer *t, int next_steps, int every);
// Read stats back, write lines, check for divergence (the watchdog above:
// restores the good weights with fresh optimizer state, logs). Returns 1 if it
// restored, else 0.
int metrics_flush(Metrics *m, Trainer *t);
// Forget the recent loss level (a new network or loss function: its losses are
// not an explosion): the explosion check waits for a new warm-up.
void metrics_watchdog_reset(Metrics *m);

#ifdef __cplusplus
}
#endif
