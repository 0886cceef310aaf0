// autosave.h: what the network learned, kept on disk without ever making the
// training thread wait for it. Every `minutes` the run loop copies the weights
// and the optimizer's state to host memory (the only part on the training
// thread) and hands them to a writer thread, which writes
// DIR/auto-YYYYmmdd-HHMMSS.safetensors (checkpoint.c: temp file + rename) and
// then deletes the oldest beyond `keep`. A writer still busy: that autosave is
// skipped (logged once). A failed write (disk full): logged once, the older
// files stay, training goes on. [autosave] resume = 1 starts from the newest
// file that loads (session.c).
#pragma once
#include <pthread.h>

#include "settings.h"
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char dir[CFG_STR];
    double interval;  // seconds between autosaves (<= 0: off)
    int keep;
    double last;      // tb_now() of the last hand-over (or the start)
    int on, started;  // on: autosaves wanted; started: the writer thread runs
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy, quit;   // under mu: a job waits or is being written; the thread should end
    // The job (owned by the writer while busy).
    Model model;
    Hyper hyper;
    Transform tf;  // the input transform in force (recorded in the file)
    long step, opt_t0;
    uint64_t seed;
    float *params, *opt;  // n_params and 2 * n_params floats
    size_t n;
    // The writer's own state.
    char stamp[32];       // the last file's time stamp
    int stamp_n;          // files written in that second
    int fail_logged, skip_logged;
    long written, failed, skipped;  // counts (under mu)
    char last_path[CFG_STR + 64];   // the newest file written (under mu)
} Autosave;

// Settings [autosave] dir, minutes, keep. Starts the writer thread when
// minutes > 0. t gives the buffer sizes. 0, or -1 with err.
int autosave_open(Autosave *a, const Settings *s, const Trainer *t, TbErr *err);
// Called once a frame by the run loop with the time now: when an autosave is
// due, copy the network and hand it to the writer (never waits on disk).
// Returns 1 if a copy was handed over.
int autosave_tick(Autosave *a, Trainer *t, double now);
// Wait for the writer, then write the network now (end of a run). 0, or -1
// (logged). Does nothing (0) when autosave is off.
int autosave_final(Autosave *a, Trainer *t);
// Wait for the writer to finish what it holds (tests).
void autosave_wait(Autosave *a);
// Stop the writer (after what it holds) and free everything.
void autosave_close(Autosave *a);

// The autosave files in dir, newest first (names only, "auto-*.safetensors").
// Returns how many were put in names (at most max).
int autosave_list(const char *dir, char (*names)[256], int max);

#ifdef __cplusplus
}
#endif
