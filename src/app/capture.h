// capture.h: any Source on its own thread. The reader always gets the newest
// complete frame (triple buffer: no queue, nothing to fall behind on), and a
// source that fails (camera unplugged) is closed and reopened about once a
// second until it works again, with the state and reason readable meanwhile.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "source.h"

typedef struct Capture Capture;

typedef enum {
    CAPTURE_STARTING = 0,  // opened, no frame yet
    CAPTURE_OK = 1,        // frames arriving
    CAPTURE_LOST = 2,      // source failed; retrying (message says why)
} CaptureState;

// Opens a spec (first try and every retry). Returns NULL with err filled.
typedef Source *(*CaptureOpenFn)(const char *spec, void *user, TbErr *err);

typedef struct {
    double fps;       // pace of non-live sources (0 = the source's fps, else 30)
    int live;         // -1: live iff the spec starts with "camera"; 0: paced; 1: live
    double retry_s;   // reopen interval while lost (0 = 1 s)
    double stall_s;   // live source silent this long counts as lost (0 = 5 s; < 0 never)
    double stop_s;    // capture_stop waits this long for a stuck source (0 = 2 s)
    SourceOpts source;   // what a camera is asked for (size, rate, locks)
    CaptureOpenFn open;  // NULL = source_open (with `source`); a test's own opener
    void *open_user;
} CaptureOpts;

// Opens the source here (so a bad spec or an absent camera fails now and the
// caller can fall back), then starts the thread. fps_override > 0 paces file
// sources at that rate instead of their own.
Capture *capture_start(const char *spec, double fps_override, TbErr *err);
Capture *capture_start_opts(const char *spec, const CaptureOpts *o, TbErr *err);

// Non-blocking. Returns 1 when a frame newer than the last one returned is
// ready, and points *rgb at it (w*h*3 bytes, valid until the next call);
// returns 0 otherwise, with the outputs describing the last frame returned
// (still valid) or rgb = NULL, w = h = 0 before the first. seq counts frames
// from 1 across reconnects; t_arrival is tb_now() when the frame was read.
// One reader thread only.
int capture_latest(Capture *c, const uint8_t **rgb, int *w, int *h, uint64_t *seq,
                   double *t_arrival);

// Current CaptureState; msg (if n > 0) gets a one-line description, e.g.
// "camera lost: camera /dev/video0: VIDIOC_DQBUF: No such device — retrying".
int capture_state(Capture *c, char *msg, size_t n);

typedef struct {
    uint64_t frames;      // frames read from the source
    uint64_t reconnects;  // successful reopens after a loss
    double fps;           // frames per second over the last second or so
} CaptureStats;
void capture_stats(Capture *c, CaptureStats *st);

// Stops the thread and frees everything. Returns within about stop_s even if
// the source is stuck in a call (the thread is then left to finish on its
// own and frees its state when it does).
void capture_stop(Capture *c);
