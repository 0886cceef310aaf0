// midi_seq.h: the ALSA sequencer behind a seam. midi.c asks it for ports,
// subscriptions, events and LED sends; the default is ALSA (libasound), and a
// test supplies its own (tests/app/test_midi.c) to play whole sessions:
// controllers appearing, moving, vanishing and coming back by name.
#pragma once
#include "common.h"
#include "midi_dev.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MSE_NONE = 0,
    MSE_MIDI,         // msg from (client, port)
    MSE_PORT_START,   // System:Announce: a port appeared
    MSE_PORT_EXIT,    // a port went away
    MSE_CLIENT_EXIT,  // a client went away (port = -1)
} MidiSeqEvType;

typedef struct {
    int type;  // MidiSeqEvType
    int client, port;
    MidiMsg msg;
} MidiSeqEvent;

#define MIDI_PORT_READ 1   // others can subscribe to read from it: a controller's output
#define MIDI_PORT_WRITE 2  // it takes events: where its LEDs are lit
typedef struct {
    int client, port;
    char client_name[64], port_name[64];
    int caps;      // MIDI_PORT_READ | MIDI_PORT_WRITE
    int hardware;  // a card or USB device (not a program, not Midi Through)
} MidiPortInfo;

typedef struct MidiSeqIo {
    // A client named `name` with one input port, subscribed to
    // System:Announce. NULL with err when there is no sequencer.
    void *(*open)(const char *name, TbErr *err);
    void (*close)(void *h);
    int (*client_id)(void *h);
    // Every port of every client: how many (at most max).
    int (*ports)(void *h, MidiPortInfo *out, int max);
    // One port: 0, or -1 if it is gone.
    int (*port_info)(void *h, int client, int port, MidiPortInfo *out);
    // Subscribe our input port to (client, port). 0, or -1 with err.
    int (*connect)(void *h, int client, int port, TbErr *err);
    // Up to max events, waiting at most timeout_ms for the first: how many,
    // or -1 with err when the sequencer failed.
    int (*read)(void *h, MidiSeqEvent *ev, int max, int timeout_ms, TbErr *err);
    // One message to (client, port): 0, or -1.
    int (*send)(void *h, int client, int port, const MidiMsg *m);
    // The clock takeover's 50 ms window is measured on (seconds).
    double (*now)(void);
} MidiSeqIo;

extern const MidiSeqIo midi_seq_alsa;

// One ALSA sequencer event (a snd_seq_event_t) as our events: controllers and
// notes; CONTROL14, NONREGPARAM and REGPARAM events as the CC messages they
// stand for; port and client announcements. How many were written (0 to 4).
int midi_seq_decode(const void *alsa_event, MidiSeqEvent *out);

#ifdef __cplusplus
}
#endif
