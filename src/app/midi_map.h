// midi_map.h: MIDI mapping files (config/midi/*.ini), value conversion between
// a control's position and a live parameter, and soft takeover. Pure logic: no
// ALSA, no threads (midi_dev.h decodes messages with it, midi.c runs it).
//
// A mapping file:
//
//   [device]
//   match = nanoKONTROL2   # part of the ALSA client or port name (any case); * = any
//   leds = 1               # buttons bound to toggles get their state sent back
//   takeover = pickup      # default for the rows: jump | pickup | scale
//
//   [map]
//   # target = kind channel number [options]
//   lr     = cc 1 0                  # fader: 0..127 over lr's range, log scale
//   clip   = rel2c 1 16 step=2       # encoder: two table steps per tick
//   pause  = button 1 42             # press: toggle (LED when leds = 1)
//   learn  = button 1 62             # arm MIDI learn / next target
//
// target: a live parameter by the table's key (lr, momentum, ...), an action
// from actions_table() (reset, pause, freeze, save, load), or learn /
// learn_prev / learn_off. kind: cc | cc14 | nrpn | rel2c | relbin | relsign |
// note | button. channel: 1-16 or * (any). number: the CC (cc14: the MSB's,
// 0-31), the NRPN parameter (0-16383) or the note. Options: takeover=MODE,
// step=N (relative encoders and buttons: table steps per tick, 1-16),
// min=X max=X (an absolute control covers this part of the range), dir=up|down
// (a button on a parameter that is not a toggle), invert (LED lit when off),
// ch=N (parameters and reset of [channels] channel N, 0-3; such a control sets
// its value at once: soft takeover and LEDs follow channel 0 only).
#pragma once
#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MK_CC = 0,  // absolute 7-bit
    MK_CC14,    // MSB on CC n, LSB on CC n+32
    MK_NRPN,    // CC 99/98 select, 6/38 data (14-bit)
    MK_REL2C,   // relative, two's complement: 1..64 up, 127..65 down
    MK_RELBIN,  // relative, binary offset: 64 = 0
    MK_RELSIGN, // relative, signed bit: 65..127 up, 1..63 down
    MK_NOTE,    // note on (velocity > 0) presses
    MK_BUTTON,  // CC > 0 presses
    MK_COUNT
} MidiKind;

typedef enum { TO_JUMP = 0, TO_PICKUP, TO_SCALE } MidiTakeover;

// What a row drives.
typedef enum { MT_PARAM = 0, MT_ACTION, MT_LEARN, MT_LEARN_PREV, MT_LEARN_OFF } MidiTargetKind;

typedef struct {
    MidiTargetKind tkind;
    int target;     // MT_PARAM: ParamId; MT_ACTION: index in actions_table()
    MidiKind kind;
    int channel;    // 0-15, -1 = any
    int number;
    MidiTakeover takeover;
    int step;       // table steps per tick (relative, buttons)
    int dir;        // +1 / -1: a button on a parameter that is not a toggle
    int invert;     // LED lit while the value is 0
    int n;          // actions on slots and scenes: which one (n=N, 1-based; 0 = none)
    int ch;         // ch=N: the [channels] channel it plays (0 = the main network)
    double lo, hi;  // the part of the range an absolute control covers (lo < hi)
    int line;       // where it was read (0 = made by learn)
} MidiBinding;

#define MIDI_MAX_BINDINGS 256
typedef struct {
    char path[1024];
    char match[128];  // "" when the file has none (it is then only a fallback)
    int leds;
    MidiTakeover takeover;
    int n;
    MidiBinding b[MIDI_MAX_BINDINGS];
} MidiMap;

// Names (for files, logs and errors).
const char *midi_kind_name(MidiKind k);
const char *midi_takeover_name(MidiTakeover t);
// "lr", "pause" (the action), "learn"...
const char *midi_target_name(const MidiBinding *b);
// Parse "lr" / "reset" / "learn" into b's target; 0, or -1.
int midi_target_parse(const char *text, MidiBinding *b);

// Read a mapping file. 0, or -1 with "FILE:LINE: problem" in err.
int midi_map_load(const char *path, MidiMap *m, TbErr *err);
// One row in the file's syntax ("lr = cc 1 7 takeover=scale").
void midi_binding_format(const MidiBinding *b, char *buf, size_t n);
// 1 if a and b listen to the same control (channel, CC / note / NRPN).
int midi_same_control(const MidiBinding *a, const MidiBinding *b);

// Every mapping file of a folder, read at start (so a bad one stops tabula
// with its file and line before the show, not when its device is plugged).
#define MIDI_MAX_MAPS 64
typedef struct {
    char dir[512];
    int n;
    MidiMap *m[MIDI_MAX_MAPS];
} MidiMapSet;
// Read every *.ini in dir. 0, or -1 with "FILE:LINE: problem" in err.
int midi_maps_load(MidiMapSet *set, const char *dir, TbErr *err);
void midi_maps_free(MidiMapSet *set);
// The map for a device ("client:port" names): the one whose match is the
// longest part of the name (any case); else one whose match is "*" or empty,
// generic.ini first; else an empty map (learn then makes its file).
MidiMap *midi_maps_pick(MidiMapSet *set, const char *device);
// 1 if m was picked for `device` by its match (not as a fallback).
int midi_map_names(const MidiMap *m, const char *device);

// MIDI learn: bind `b` in the file of m, the map `device` uses. The file is
// read from disk first (it may have been edited since): if it does not read,
// nothing is written, m stays in use and err says why ("FILE:LINE: ..."). Rows
// of the same control are removed and the row is appended to the file's last
// [map] section. When m is a fallback (its match does not name the device), a
// new file for the device is made from it ("<client>.ini", match = client) and
// added to the set. The file is written atomically (temp file + rename), then
// read back into a new map: it takes m's place in the set (then the caller
// moves m's users to it and frees m), or joins the set beside the fallback.
// Returns the map the device uses now, or NULL with err (m untouched).
MidiMap *midi_maps_learn(MidiMapSet *set, MidiMap *m, const char *device, const char *client,
                         const MidiBinding *b, TbErr *err);

// ---------------------------------------------------------------- values
// The top raw value of an absolute control: 127, or 16383 for 14 bits.
int midi_maxv(MidiKind k);
// The parameter value of an absolute control at position pos (raw / maxv,
// 0..1) over binding b's part of its parameter's range: linear, or
// logarithmic for a log-scaled row. A log range from 0 keeps raw 0 for 0
// (off) and runs raw 1..maxv from the row's floor (else zero_up) to the top.
// Integers rounded, clamped by the table.
float midi_value_at(const MidiBinding *b, double pos);
// The inverse: where the control would sit (0..1) for parameter value v.
double midi_pos_of(const MidiBinding *b, float v);
// A relative encoder's value: signed ticks (0 = none).
int midi_rel_ticks(MidiKind k, int value);
// 1 if binding b's target toggles on a press (an action that toggles, or a
// parameter whose range is 0..1 in whole numbers); *param gets the parameter.
int midi_is_toggle(const MidiBinding *b, int *param);

// ---------------------------------------------------------------- takeover
// Soft takeover of one absolute control. pos, hw, target in 0..1.
typedef struct {
    int picked;   // the control drives the value
    double hw;    // where the hardware sits (-1: not heard yet)
    double t;     // when it was last heard
    int fresh;    // 1 = no move since (re)binding: the first value only locates the control
} Takeover;

#define TAKEOVER_WINDOW 0.050  // a jump across the value within this long counts
#define TAKEOVER_TOL (3.0 / 128.0)

void takeover_reset(Takeover *t);  // engage: unpicked, hardware position kept
// The control moved to pos at time now; target = where the value sits. Returns
// 1 with *out (0..1, the position to set the value to) when the value should
// follow, 0 when it must not move.
int takeover_move(Takeover *t, MidiTakeover mode, double pos, double target, double now,
                  double *out);

#ifdef __cplusplus
}
#endif
