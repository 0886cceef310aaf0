// vcam.h: the virtual camera (--output v4l2:/dev/videoN): the picture in a
// layout ([output] layout: the window's by default), at [output] size (else
// [record] size), sent to a v4l2loopback device for OBS, browsers and video
// calls. A run-loop output (run.h: RunOutput): on the loop thread it only
// copies the frame into a one-frame slot where the newest wins (the one it
// replaces is counted dropped), and a thread of its own composes, converts and
// writes it (vcam_dev.h). A device that goes away (write: ENODEV, EIO) is
// reported once and reopened about once a second, as a lost camera is; the
// show never waits for it.
#pragma once
#include "run.h"
#include "settings.h"
#include "vcam_dev.h"

typedef struct Vcam Vcam;

typedef struct {
    const V4l2Io *io;  // NULL = the real device
    double retry_s;    // between reopen attempts once the device went away (0 = 1)
} VcamOpts;

typedef struct {
    long written;  // frames written to the device
    long dropped;  // frames replaced in the slot by a newer one, or not taken (busy, away)
    long lost;     // times the device went away
    int away;      // 1 while it is away (reopening)
    VcamDevInfo dev;
} VcamStats;

// 1 if s->output names a virtual camera ("v4l2:..."), with the device path.
int vcam_wanted(const Settings *s, const char **path);
// Open and negotiate the device now (a bad node is the user's error: exit 2)
// and start the thread. NULL with err. o may be NULL.
Vcam *vcam_start(const Settings *s, const VcamOpts *o, TbErr *err);
// For --check: open and negotiate the device as vcam_start would, fill info,
// close it again. 0, or -1 with err (the message vcam_start would give).
int vcam_probe(const Settings *s, const VcamOpts *o, VcamDevInfo *info, TbErr *err);
// The hook to attach (run_attach); v must outlive the run.
RunOutput vcam_output(Vcam *v);
// The window's layout (0 mirror, 1 side, 2 triptych) and flip, followed with
// [output] layout = display (any thread; headless runs use [display]).
void vcam_view(Vcam *v, int layout, int flip);
void vcam_stats(Vcam *v, VcamStats *st);
// The HUD's line for these counts: the device, its picture and what was sent
// and dropped, or that it is away and being reopened. Returns snprintf's count.
int vcam_hud_line(const VcamStats *st, char *buf, size_t n);
// Stop the thread, close the device, log the counts.
void vcam_stop(Vcam *v);
