// osc.h: OSC control over UDP (liblo): a control surface on its own thread.
// It turns what it receives into ControlEvents (source SRC_OSC) on the app's
// ControlQueue, answers /tabula/get from the RunView the run loop publishes,
// and sends /tabula/status bundles at [osc] status_rate to [osc] status_to. It
// never touches the trainer and never waits on the training loop.
//
// Address space (README.md "OSC"):
//   /tabula/param/KEY  f|i|d|h|T|F  set a live parameter (KEY as in the table:
//                      lr, momentum, ...; a choice takes its index)
//   /tabula/param/KEY  s            "+" / "-": one step up / down (CMD_NUDGE);
//                                   a choice's name ("adam") sets it
//   /tabula/get/KEY                 reply to the sender: /tabula/param/KEY f VALUE
//   /tabula/get                     reply to the sender: one status bundle
//   /tabula/action/NAME [number]    an action of actions_table(): reset, pause,
//                                   freeze, save, load. A number 0 (a button's
//                                   release) does nothing, another (its press)
//                                   or none does it; for reset an integer
//                                   (i, h) >= 0 is the seed, else the next seed
//   status bundle: /tabula/status/{loss,psnr,steps_per_s,step,frame} f and
//                  /tabula/param/KEY f for every live parameter
// A message with an unknown address or name, a wrong type, no value or a value
// that is not a finite number is ignored and counted; a value out of range is
// passed on (the run loop clamps it as it does every surface's) and counted.
#pragma once
#include "controls.h"
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Osc Osc;

// Why a message was ignored.
typedef enum {
    OSC_BAD_PACKET = 0,  // not OSC (or a broken bundle)
    OSC_UNKNOWN_ADDRESS, // not under /tabula/param, /get or /action
    OSC_UNKNOWN_NAME,    // no such parameter or action
    OSC_NO_VALUE,        // /tabula/param/KEY without an argument
    OSC_WRONG_TYPE,      // e.g. a blob, or a string that is no choice, "+" or "-"
    OSC_NOT_FINITE,      // NaN or infinity
    OSC_IGNORE_COUNT
} OscIgnore;

typedef struct {
    long received;  // messages taken (each of a bundle; a packet that is not OSC: one)
    long queued;    // control events pushed onto the queue
    long dropped;   // events the full queue refused
    long ignored;   // messages ignored, the sum of why[]
    long why[OSC_IGNORE_COUNT];
    long clamped;   // values out of range (passed on; the run loop clamps them)
    long replies;   // answers to /tabula/get
    long status;    // status bundles sent to status_to
} OscStats;

// Listen on [osc] address:port. Returns NULL when OSC is off (port 0; err->msg
// empty), or NULL with one line in err when it cannot listen (address in use,
// bad address): the caller logs it and runs on without OSC. A bad status_to is
// logged here and only the status goes.
Osc *osc_start(const Settings *s, ControlQueue *q, TbErr *err);
// Stop the thread, close the sockets and log one summary line. NULL: nothing.
void osc_stop(Osc *o);
// The counters so far (from any thread).
void osc_stats(Osc *o, OscStats *st);
// The port it listens on.
int osc_port(const Osc *o);
// The README's table of the parameters OSC plays: key, range, a "+"/"-" step
// (from the parameter table; tests/app/test_osc.c checks the README has it).
void osc_params_markdown(FILE *f);

#ifdef __cplusplus
}
#endif
