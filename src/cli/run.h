// run.h: one run of online training, frame by frame, shared by the headless
// driver (headless.c) and the live app's training thread (app/train_thread.c):
// the trainer, its metrics, the live parameters in force and the event log. A
// frame goes in (smoothed, or held while the camera is frozen), K steps come out
// (K = steps per frame, 0 while paused), the metrics record it, a diverged
// network goes back to its last good weights, and the numbers are published
// for every surface to read (RunView).
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "autosave.h"
#include "channels.h"
#include "controls.h"
#include "journey.h"
#include "metrics.h"
#include "modulate.h"
#include "presence.h"
#include "settings.h"
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Run Run;

// An output that follows the run: the app's recorder (app/record.h), the
// virtual camera (app/vcam.h). The run loop calls it on its own thread; every call copies or
// queues and returns at once, never waiting on a disk or an encoder. The hook
// lives here so that the loop needs no app library: the app attaches it
// (run_attach), the headless driver gets it from main.c. Any member may be NULL.
// Up to RUN_OUTPUTS are attached; the one with `record` takes the record action.
typedef struct {
    void *user;
    void (*attach)(void *user, Run *r);  // after run_attach (--record starts a take here)
    void (*detach)(void *user, Run *r);  // first in run_close: a take ends, and is waited for
    // 1 while it wants every frame (a take is running; run_output must run).
    int (*active)(void *user, Run *r);
    // The frame that went into the ring (before any input transform:
    // trainer_input has what the network was given) and the reconstruction
    // shown, RGB8 at the training size, from run_output.
    void (*frame)(void *user, Run *r, const uint8_t *input, const uint8_t *recon);
    // Each line of the event log (without its newline), as --events gets it.
    void (*event)(void *user, const char *line);
    // CMD_RECORD: start (on = 1) or stop (0) a take; a line for the operator in msg.
    void (*record)(void *user, Run *r, int on, char *msg, size_t n);
} RunOutput;
#define RUN_OUTPUTS 2

struct Run {
    const Settings *s;
    Trainer t;
    Metrics m;
    LiveParams p;       // the values in force (changed by run_control)
    ControlQueue *q;    // where events come from and the view goes (may be NULL)
    long frames;        // frames taken so far
    float steps_per_s;  // over the last half second or so
    long window_steps;
    double window_t0, t_start;
    // --events: one JSON line per applied event.
    FILE *events;
    int events_failed;
    // Smoothing state at the training size (W*H*3 floats), and the fitted frame.
    float *smooth_in, *smooth_out;
    int have_in, have_out;
    uint8_t *fitted;
    // Scenes (loaded at start), glides, the LFO and slot fades (modulate.h).
    SceneList scenes;
    Modulator mod;
    // [autosave]: a writer thread; run_frame hands it copies, run_close writes the last.
    Autosave as;
    RunOutput out[RUN_OUTPUTS];  // the outputs attached (run_attach), in order
    int nout;
    // [presence]: the empty-room detector, fed each frame; pres_change is its
    // change at the last frame (+1 empty, -1 motion again, 0 none) for the driver.
    Presence pres;
    int pres_change;
    // The feedback dream ([dream]): the last reconstruction (RGB8 at the
    // training size, before output smoothing) and its warped copy; the blend in
    // force (dream_a follows [dream] feedback with time constant tau) and when
    // it last moved (run_now).
    uint8_t *dream_prev, *dream_warp;
    int have_prev;
    // 1: the frames given already hold the dream (a replay of a take's
    // input.mkv, which records what went into the ring): it is not applied again.
    int dream_recorded;
    float dream_a;
    double dream_t;
    // Stored bottleneck codes and the journey through them (journey.h): while
    // it plays, run_output shows (and hands the outputs) its decoded frames.
    Journey jr;
    // [channels]: the other networks on the same frames (channel 0 is t above).
    Channels chans;
};

// Trainer from the settings (--load, --save-init, summary), metrics (--metrics),
// the event log (--events) and the scenes ([modulation] scenes: a bad file is an
// error naming file and line). q (may be NULL) is the queue run_drain reads and
// the view is published to. 0, or -1 with err (nothing left open).
int run_open(Run *r, const Settings *s, ControlQueue *q, TbErr *err);
// Apply one control event (set or nudge or toggle a parameter, reset,
// snapshot save/load, slots, scenes) and log it. Returns 1 for CMD_QUIT, else 0; a line for
// the operator (e.g. "saved PATH") goes to msg (also logged), or msg[0] = 0.
int run_control(Run *r, const ControlEvent *e, char *msg, size_t n);
// Apply every queued event in order. Returns 1 if one was CMD_QUIT; the last
// line for the operator goes to msg (n > 0), or msg[0] = 0.
int run_drain(Run *r, char *msg, size_t n);
// One frame (any size: it is fitted to the training size): glides, LFO and
// fade first (modulate_step), blended with the last reconstruction when the
// feedback dream is on ([dream]), into the replay ring, then the steps the live
// parameters ask for, then the metrics and the view. An empty room ([presence])
// pauses the steps as [train] pause does (the frame still goes in and the
// reconstruction follows it) or scales the lr; each change is one log line.
// Returns 1 if training diverged and the last good weights came back (the
// watchdog; then the live lr is multiplied by [train] rollback_lr_factor), else 0.
// An autosave that is due is handed to the writer thread (never waits on disk).
int run_frame(Run *r, const uint8_t *rgb, int w, int h);
// The opening of the day ([schedule], the live app): the presence detector
// starts afresh and, with [schedule] rebirth = fresh, the network is reborn from
// [schedule] seed (or [train] seed) as a fresh start with that seed has it
// (weights, optimizer state, step, replay draws, an empty replay ring), logged
// and written to --events with source "schedule". A line for the operator goes
// to msg (or msg[0] = 0).
void run_opening(Run *r, char *msg, size_t n);
// The reconstruction to show (RGB8 at the training size; while a journey
// plays, the decoder's picture of the journey's code), output smoothing
// applied. Waits for the device. It also goes to the attached output with the
// frame the network was shown, so what is recorded is what is shown.
void run_output(Run *r, uint8_t *rgb);
// Attach an output (after run_open; out may be NULL; at most RUN_OUTPUTS):
// its attach() runs now.
void run_attach(Run *r, const RunOutput *out);
// 1 while an attached output wants every frame (the drivers then call
// run_output on each frame, even where the picture stays on the GPU).
int run_output_active(Run *r);
// The run's clock for glides, LFOs and fades (seconds): the wall clock since
// the start in the app; frames / fps (30 when fps is 0) when headless, so a
// headless run is reproducible.
double run_now(const Run *r);
// The live values the optimizer, the loss and the replay draw read, into t
// (every channel's trainer takes its own); lr_scale: the empty room's factor.
void run_apply_params(Trainer *t, const LiveParams *p, float lr_scale);
// Channel i's reconstruction (RGB8 at the training size): i = 0 is run_output's
// (without its smoothing and outputs), i >= 1 the extra channels'.
void run_channel_output(Run *r, int i, uint8_t *rgb);
// Read back and write what the metrics still hold (at the end of a run).
void run_flush(Run *r);
// End the output's take (waiting for its files), write the final autosave
// (when [autosave] minutes > 0; also after a signal), stop the writer, close the metrics and the event log, free the trainer (save
// first: session_save).
void run_close(Run *r);

#ifdef __cplusplus
}
#endif
