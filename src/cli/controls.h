// controls.h: the live values of the parameters an operator plays (their rows
// are in the parameter table, params.h), the actions, and the one queue every
// control surface (keys, MIDI, OSC, scenes, LFOs, a replayed log) writes its
// events into. The training loop (run.c) applies them in order before each
// frame, logs each one (--events), and publishes what it uses as a RunView
// that any surface can read back (the HUD, OSC's /tabula/get and status).
#pragma once
#include <pthread.h>

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CMD_SET = 0,  // param = value
    CMD_NUDGE,    // param one step up (value > 0) or down (value < 0)
    CMD_TOGGLE,   // param (0/1) flips
    CMD_RESET,    // fresh random network: value >= 0 is its seed, < 0 the next seed
    CMD_SAVE,     // snapshot to the snapshot folder
    CMD_LOAD,     // load the newest snapshot
    CMD_QUIT,
    CMD_RECORD,   // start a take, or stop the one running (run.h: RunOutput)
    // Snapshot slots (value = slot number, 1..8) and scenes (modulate.h).
    CMD_SLOT_SAVE,    // the live network into slot N (memory; the GPU's on CUDA)
    CMD_SLOT_RECALL,  // slot N becomes the live network at once
    CMD_SLOT_FADE,    // cross-fade the live network into slot N over fade_time seconds
    CMD_SLOT_WRITE,   // slot N to snapshot_dir/slot-N.safetensors
    CMD_SLOT_READ,    // snapshot_dir/slot-N.safetensors into slot N
    CMD_SCENE,        // recall scene N (1 = the first file by name): glide to its values
    CMD_WORLD,        // world N of [world] dir into [world] slot, then cross-fade to it (world.h)
    // Journeys (journey.h): value = keyframe 1..8, or < 1 the next one.
    CMD_CODE_STORE,   // the current frame's bottleneck code into a keyframe
    CMD_JOURNEY,      // play the journey through the stored codes, or stop it
} CommandId;

// Who sent an event (for the event log).
typedef enum { SRC_KEY = 0, SRC_MIDI, SRC_OSC, SRC_SCENE, SRC_LFO, SRC_REPLAY, SRC_COUNT } EventSource;
const char *event_source_name(int src);

typedef struct {
    int cmd;    // CommandId
    int param;  // ParamId for CMD_SET, CMD_NUDGE, CMD_TOGGLE
    float value;
    int source;  // EventSource
    // The channel it addresses ([channels]): 0 the main network, 1..3 another,
    // -1 (CH_ALL) every one. Parameters and reset address a channel; the other
    // actions are the run's (channel 0).
    int ch;
} ControlEvent;

// The actions a surface can trigger by name (OSC /tabula/action/NAME, MIDI
// buttons): one table.
typedef struct {
    const char *name;
    int cmd;    // CommandId
    int param;  // for CMD_TOGGLE
    const char *help;
} ActionInfo;
const ActionInfo *actions_table(size_t *n);
const ActionInfo *action_by_name(const char *name);  // NULL if none

typedef struct {
    float v[PARAM_COUNT];
} LiveParams;

// What the training loop publishes after each frame.
typedef struct {
    LiveParams p;
    float loss, psnr, grad_norm, steps_per_s;
    long step, frames;
    long rollbacks;  // times the divergence watchdog restored good weights
    // [channels]: how many, and each one's values in force and loss (chp[0] = p).
    int channels;
    LiveParams chp[TB_CHANNELS];
    float ch_loss[TB_CHANNELS];
} RunView;

// Initial values from the settings.
void live_params_from_settings(LiveParams *p, const Settings *s);
// The live value of parameter id in s (a choice as its index), unclamped.
double live_param_from_settings(const Settings *s, int id);
// Clamp to the parameter's range in the table (integers rounded); returns the
// value stored. A NaN (from a controller) leaves the value as it was.
float live_params_set(LiveParams *p, int id, float value);
// The value one step up (dir = +1) or down (-1) from the current one, by the
// row's scale and step, clamped.
float live_params_nudge(const LiveParams *p, int id, int dir);

// Bounded multi-producer queue (mutex; producers never wait on the consumer's
// work). Full: the event is dropped and counted.
#define CONTROL_QUEUE_CAP 256
typedef struct {
    pthread_mutex_t mu;
    ControlEvent ev[CONTROL_QUEUE_CAP];
    int head, len;
    long dropped;
    RunView view;  // the newest published view (under mu)
} ControlQueue;
void control_queue_init(ControlQueue *q);
void control_queue_destroy(ControlQueue *q);
int control_push(ControlQueue *q, ControlEvent e);  // 0 ok, -1 dropped
int control_pop(ControlQueue *q, ControlEvent *e);  // 1 got one, 0 empty
// The training loop's view, written after each frame and read by any thread.
void control_publish(ControlQueue *q, const RunView *v);
RunView control_view(ControlQueue *q);

#ifdef __cplusplus
}
#endif
