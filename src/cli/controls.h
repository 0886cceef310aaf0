// controls.h: the live values of the parameters an operator plays (their rows
// are in the parameter table, params.h), and the one queue every
// control surface (keyboard now; MIDI, OSC and replayed logs later) writes
// "set parameter P to V" events into. The training thread drains the queue
// before each step and publishes the values it uses as a snapshot.
#pragma once
#include <pthread.h>

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CMD_SET = 0,  // param = value
    CMD_RESET,    // fresh random network
    CMD_SAVE,     // snapshot to the snapshot folder
    CMD_LOAD,     // load the newest snapshot
    CMD_QUIT,
} CommandId;

typedef struct {
    int cmd;    // CommandId
    int param;  // ParamId for CMD_SET
    float value;
} ControlEvent;

typedef struct {
    float v[PARAM_COUNT];
} LiveParams;

// Initial values from the settings.
void live_params_from_settings(LiveParams *p, const Settings *s);
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
} ControlQueue;
void control_queue_init(ControlQueue *q);
void control_queue_destroy(ControlQueue *q);
int control_push(ControlQueue *q, ControlEvent e);  // 0 ok, -1 dropped
int control_pop(ControlQueue *q, ControlEvent *e);  // 1 got one, 0 empty

#ifdef __cplusplus
}
#endif
