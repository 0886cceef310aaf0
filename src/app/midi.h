// midi.h: MIDI controllers through the ALSA sequencer, a control surface like
// the keys: tabula is a sequencer client named "tabula" with one input port;
// it connects to controllers by name ([midi] devices), follows System:Announce
// so a controller unplugged and plugged back reconnects by itself, maps each
// one through its mapping file (config/midi/*.ini, chosen by device name; see
// midi_map.h for the format) and pushes the events onto the app's control
// queue from its own thread. Without a sequencer it says so in one line and
// tabula runs without MIDI.
#pragma once
#include "controls.h"
#include "midi_seq.h"
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Midi Midi;

// Read every mapping file (a bad one: NULL with "FILE:LINE: problem" in err,
// so main exits 2), open the sequencer, connect the controllers and start the
// thread. No sequencer, or [midi] enable = 0: one log line and a handle that
// does nothing (never NULL for that).
Midi *midi_start(const Settings *s, ControlQueue *q, TbErr *err);
// The same on another sequencer (a test's); thread = 0 starts no thread: the
// caller turns the crank with midi_poll.
Midi *midi_start_io(const Settings *s, ControlQueue *q, const MidiSeqIo *io, int thread, TbErr *err);
// One turn: events read (waiting at most timeout_ms), decoded and applied;
// the run's view read back (takeover, LEDs); learn settled. 0, or -1 when the
// sequencer failed (logged; MIDI stops, tabula goes on).
int midi_poll(Midi *m, int timeout_ms);
// Stop the thread, close the sequencer. NULL is fine.
void midi_stop(Midi *m);

// MIDI learn: arm target t (0..midi_learn_count()-1: the live parameters, then
// the actions; -1 = off); the next control moved on any connected controller
// is bound to it and written to that controller's mapping file. A line for the
// operator goes to msg. 0, or -1 when MIDI is not running.
int midi_learn(Midi *m, int t, char *msg, size_t n);
// The running instance's learn target one step on (dir +1) or back (-1),
// through "off" after the last: the K key. 0, or -1 (msg says why).
int midi_learn_step(int dir, char *msg, size_t n);

// Where each absolute control of a parameter sits, for a ghost marker on the
// HUD: one row per binding of every connected controller. How many rows.
// m = NULL: the running instance (none: 0).
typedef struct {
    char device[64];
    int param;       // ParamId
    int picked;      // 1 = it drives the value; 0 = waiting to pick it up
    double hw;       // the hardware's position 0..1 (-1 = not moved yet)
    float hw_value;  // the value at that position (NaN when not moved yet)
} MidiGhost;
int midi_ghosts(Midi *m, MidiGhost *out, int max);
// Names ("client:port") of the connected controllers. How many.
int midi_connected(Midi *m, char (*names)[160], int max);

#ifdef __cplusplus
}
#endif
