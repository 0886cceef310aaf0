// presence.h: presence-aware learning ([presence]). When the picture has barely
// changed for a while (an empty room), learning slows (lr x slow_factor) or
// pauses, so the network does not spend the night collapsing onto the empty
// wall; the first frame with motion in it brings learning back.
//
// The measure: each frame (fitted to the training size, before input smoothing)
// becomes a 32x18 grey thumbnail; the measure is the mean absolute difference,
// in 0..1, from a reference thumbnail renewed every quarter second (so a slow
// walk counts as much as a fast one, at any frame rate). Below `threshold` a
// frame is still; above PRESENCE_HYST x threshold it moves; in between it is
// what the frame before was (hysteresis, so noise near the threshold does not
// flicker). After `after_s` seconds of still frames the room is empty; one
// moving frame and it is not.
//
// Time is an argument (run.c passes run_now: wall clock in the app, frames/fps
// headless), so tests drive it with chosen times.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PRESENCE_TW 32
#define PRESENCE_TH 18
#define PRESENCE_HYST 1.5f   // moving above this x threshold
#define PRESENCE_REF_S 0.25  // seconds between reference thumbnails

typedef enum { PRESENCE_OFF = 0, PRESENCE_SLOW, PRESENCE_PAUSE } PresenceMode;

typedef struct {
    int mode;           // PresenceMode
    float threshold;    // still below this measure (0..1)
    float after_s;      // seconds of stillness before it acts
    float slow_factor;  // lr multiplier while the room is empty (slow mode)
} PresenceConfig;

typedef struct {
    PresenceConfig c;
    int moving;          // the last frame's class (with hysteresis)
    int empty;           // 1: the room is empty and learning is slowed or paused
    double still_since;  // when the frames went still
    float level;         // the last measure
    float ref[PRESENCE_TW * PRESENCE_TH];
    int have_ref;
    double ref_t;
} Presence;

// A mode by name ("off", "slow", "pause"): its PresenceMode, or -1.
int presence_mode_parse(const char *name);
// Starts moving (not empty): a still room acts after_s seconds from the first frame.
void presence_init(Presence *p, const PresenceConfig *c);
// The grey thumbnail (PRESENCE_TW x PRESENCE_TH box means of BT.601 luma, 0..1)
// of an RGB8 frame of any size.
void presence_thumb(const uint8_t *rgb, int w, int h, float *thumb);
// The motion measure of one frame at `now` (0 for the first frame), and the
// reference renewed when it is PRESENCE_REF_S old.
float presence_measure(Presence *p, const uint8_t *rgb, int w, int h, double now);
// One frame's measure at `now`: +1 when the room turns empty (learning slows or
// pauses), -1 when something moves in it again, else 0. Off: always 0.
int presence_feed(Presence *p, float measure, double now);
// While empty: pause mode pauses (the run takes no steps), slow mode multiplies
// the lr. Otherwise 0 and 1.
int presence_pausing(const Presence *p);
float presence_lr_factor(const Presence *p);
// The operator's line for the state: "empty room: learning paused",
// "empty room: learning slowed (lr x0.1)", "learning resumed".
void presence_describe(const Presence *p, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
