// replay_take.h: a take folder read back for replay (record.h lists its
// files): take.json's start (frame, step, seed, random states, live values),
// video rate and layout, and counts; events.jsonl as control events at their
// frames; metrics.jsonl's losses to compare with.
#pragma once
#include <stdint.h>

#include <libavutil/rational.h>

#include "controls.h"
#include "settings.h"

typedef enum { REPLAY_CONTROL = 0, REPLAY_REBIRTH } ReplayKind;

// One control move of events.jsonl: applied before the frame it names.
typedef struct {
    long frame, step;  // where it was applied (the run's frame count and step)
    int kind;          // REPLAY_CONTROL: ev; REPLAY_REBIRTH: an opening's fresh network
    ControlEvent ev;   // source SRC_REPLAY
} ReplayEvent;

typedef struct {
    char dir[CFG_STR];
    long start_frame, start_step;
    int have_rng;  // take.json has the seed and random states (takes before it have not)
    uint64_t seed, rng, mod_rng;
    float live[PARAM_COUNT];
    int have_live[PARAM_COUNT];
    AVRational fps;     // video.mkv's rate
    char layout[16];    // video.mkv's layout (mirror, side, triptych)
    int tw, th;         // input.mkv's frame size (the take's training size)
    long input_written, input_dropped;
    int done;           // take.json says "done" (not a take cut off by a kill)
    ReplayEvent *ev;    // in order
    int n_ev;
    long skipped;       // lines that are no move to make again (see replay_take.c)
    long *m_frame;      // metrics.jsonl: frame and its loss as written (text)
    char (*m_loss)[24];
    int n_m, have_metrics;
} ReplayTake;

// Read DIR's take.json, events.jsonl and metrics.jsonl (if there), and check
// that input.mkv, config.ini and weights.safetensors are there. 0, or -1 with
// err naming the file and what is wrong.
int replay_take_read(ReplayTake *t, const char *dir, TbErr *err);
void replay_take_free(ReplayTake *t);
// The loss the take wrote for frame (text), or NULL if none.
const char *replay_take_loss(const ReplayTake *t, long frame);
