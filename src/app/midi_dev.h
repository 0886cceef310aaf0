// midi_dev.h: one connected controller: its messages, decoded through its
// mapping (14-bit pairs, NRPN, relative encoders, buttons, notes), become
// control events with soft takeover; values changed from elsewhere (read back
// from the run's view) engage takeover again and update the LEDs; MIDI learn
// captures the next moved control. Pure logic, no ALSA (midi.c feeds it).
#pragma once
#include "controls.h"
#include "midi_map.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MM_CC = 0, MM_NOTEON, MM_NOTEOFF } MidiMsgType;

typedef struct {
    int type;     // MidiMsgType (a note on with velocity 0 is a note off)
    int channel;  // 0-15
    int number;   // controller or note, 0-127
    int value;    // 0-127
} MidiMsg;

// Messages a device is sent back (LEDs).
typedef void (*MidiSendFn)(void *ctx, const MidiMsg *m);

typedef struct {
    Takeover to;
    int msb;  // cc14: the last MSB (-1 none)
    int led;  // the LED state last sent (-1 none)
} MidiBindState;

// MIDI learn, shared by every device: the target armed, and the control
// found (a CC from 0 to 31 waits briefly for its LSB partner: then cc14).
#define MIDI_LEARN_CC14_WAIT 0.05
typedef struct {
    int target;  // -1 off; 0..PARAM_COUNT-1 a parameter; PARAM_COUNT + i action i
    int pending;     // a CC 0-31 seen, waiting for its LSB
    double pending_t;
    MidiBinding found;  // the control (kind, channel, number) with the target set
    int done;           // found is complete: the owner binds it
} MidiLearn;
// Number of learn targets (parameters, then actions).
int midi_learn_count(void);
// The name of learn target t ("lr", "reset"; "off" for -1).
const char *midi_learn_name(int t);
// Arm learn for target t (-1 = off), forgetting any control half found.
void midi_learn_arm(MidiLearn *l, int t);

// NRPN per channel: the parameter selected (-1 none; rpn = 1 when an RPN
// was selected last), the data MSB (-1 none).
typedef struct {
    int sel_msb, sel_lsb, rpn, data_msb;
} MidiNrpnState;

#define MIDI_SENT_RING 16
typedef struct {
    MidiMap *map;
    MidiBindState st[MIDI_MAX_BINDINGS];
    MidiNrpnState nrpn[16];
    // What this device believes is in force: its own changes at once, and the
    // run's view for the rest. Values it sent lately, to tell its own echo in
    // the view from a change from elsewhere.
    LiveParams known, seen;
    int have_view;
    float sent[PARAM_COUNT][MIDI_SENT_RING];
    int nsent[PARAM_COUNT];
    ControlQueue *q;
    MidiSendFn send;
    void *send_ctx;
    int ch;  // the [channels] channel of the binding being handled (its ch=N)
} MidiDev;

// What an input asked of the owner.
typedef enum { MD_NONE = 0, MD_LEARN_NEXT, MD_LEARN_PREV, MD_LEARN_OFF, MD_LEARNED } MidiDevResult;

// Start with map m (not owned), the settings' values as known, every
// takeover engaged and every LED to be sent.
void midi_dev_init(MidiDev *d, MidiMap *m, const LiveParams *start, ControlQueue *q, MidiSendFn send,
                   void *send_ctx);
// A new map (after learn): rows that stayed keep their takeover state.
void midi_dev_set_map(MidiDev *d, MidiMap *m);
// One message at time now (seconds). With learn armed (l->target >= 0) the
// message may be captured instead (MD_LEARNED once l->found is complete).
MidiDevResult midi_dev_input(MidiDev *d, const MidiMsg *msg, double now, MidiLearn *l);
// Time passes: a CC waiting to become cc14 in learn is settled as cc
// (MD_LEARNED), else MD_NONE.
MidiDevResult midi_dev_tick(MidiDev *d, double now, MidiLearn *l);
// The run's view: a value that changed from elsewhere engages takeover again;
// LEDs follow. A view before the first frame (frames 0, step 0) is ignored.
void midi_dev_sync(MidiDev *d, const RunView *v);
// Send the LED state of every toggle bound to a button (map->leds) that
// changed since last sent (all after init).
void midi_dev_leds(MidiDev *d);

// For the HUD's ghost marker: binding i's takeover state. 1 if it is an
// absolute control of a parameter (then *param, *picked, *hw (0..1, -1 not
// heard yet), *hw_value (the value at the hardware's position)), else 0.
int midi_dev_ghost(const MidiDev *d, int i, int *param, int *picked, double *hw, float *hw_value);

#ifdef __cplusplus
}
#endif
