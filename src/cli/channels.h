// channels.h: several minds on the same camera ([channels], README "Channels").
// Channel 0 is the run's own network (run.h); channels 1..count-1 are either
// networks of their own (kind = net: own trainer and backend, own live values
// from [train] with the [chN] overrides, own metrics file) or the main network
// as it was some minutes ago (kind = history: a ring of snapshots of channel 0
// taken every refresh_s, shown forward only). Each frame the run loop hands the
// frame channel 0 was given to every channel in turn, on the same thread, so a
// run stays reproducible; then, with coupling > 0, every net's weights move
// toward the nets' mean (ops couple(), through backend_couple: inside the
// backends when they share a kind and a layout, else on host copies). With
// coupling 0 a channel is bit for bit the single run its settings describe.
// [chN] device puts a channel's CUDA backend on another GPU (-1: channel 0's).
#pragma once
#include <stdint.h>

#include "controls.h"
#include "metrics.h"
#include "settings.h"
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { CH_NET = 0, CH_HISTORY = 1 };
#define CH_ALL (-1)        // ControlEvent.ch: every channel
#define CH_HISTORY_MAX 64  // snapshots a history channel keeps, at most

typedef struct {
    int kind;      // CH_NET or CH_HISTORY
    Settings *s;   // the run's settings with this channel's [chN] overrides
    Trainer t;     // a net trains it; a history channel only runs it forward
    Metrics m;     // net: --metrics M.jsonl -> M.chN.jsonl
    LiveParams p;  // the values in force for this channel
    // History: snapshots of channel 0 (host copies, n_params floats each),
    // a ring of cap, the newest at head; snap_t is the run's clock when taken.
    float **snap;
    double *snap_t;
    long *snap_id;
    int cap, len, head;
    long next_id, shown_id;  // shown_id: the snapshot in t's weights (-1 none)
    double next_t;           // when the next snapshot is due
    double back_s, refresh;  // how far back it shows, and the time between snapshots (s)
} Channel;

typedef struct {
    int count;                  // 1..TB_CHANNELS; 1 = channel 0 alone
    Channel ch[TB_CHANNELS];    // ch[0] unused: channel 0 is the run's
    float *host[TB_CHANNELS];   // the nets' weights when coupled through the host
    size_t n_params;
    int coupled_inside;         // the last coupling: 1 in the backends, 0 through the host, -1 none yet
} Channels;

// Channels 1..s->ch_count-1, each from s with its [chN] overrides, with the
// architecture of t0 (channel 0). 0, or -1 with err (nothing left open).
int channels_open(Channels *c, const Settings *s, const Trainer *t0, TbErr *err);
// One frame for every channel after channel 0's steps: pushed = 1 if channel 0
// took a new frame (its newest goes to each), paused = the empty room's pause,
// lr_scale its slow factor; coupling from the live value; now = run_now.
void channels_frame(Channels *c, Trainer *t0, long frame, int pushed, int paused, float lr_scale,
                    float coupling, double now);
// The opening's rebirth ([schedule] rebirth = fresh): every net afresh from
// sched_seed (or its own seed when < 0), every history channel without snapshots.
void channels_rebirth(Channels *c, int sched_seed);
// Read back and write what the channels' metrics hold.
void channels_flush(Channels *c);
void channels_close(Channels *c);
// "m.jsonl" -> "m.ch1.jsonl" (before the last extension, else appended).
void channels_metrics_path(const char *path, int ch, char *buf, size_t n);
// Weight distance between channel 0 and channel i (root mean square), for
// tests and the log; reads the weights back (waits for the device).
double channels_distance(Channels *c, const Trainer *t0, int i);

#ifdef __cplusplus
}
#endif
