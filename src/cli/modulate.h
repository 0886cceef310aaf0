// modulate.h: what moves the live parameters (and the network) over time
// without a hand on a control: scene glides, the LFO, and the cross-fade into a
// snapshot slot. The run loop (run.c) calls modulate_step once a frame, before
// the trainer reads the parameters; every value it writes goes through
// live_params_set, so the parameter table's ranges hold.
//
// Time is an argument (`now`, seconds on any clock that only goes forward), so
// tests drive it explicitly; the live app passes the wall clock, a headless run
// its frame count over the frame rate (reproducible).
//
// Scenes: config/scenes/*.ini, one scene a file:
//     [scene]
//     name = calm          # letters, digits, - _ . (default: the file's name)
//     transition = 4       # seconds (0 to 600; default 0 = at once)
//     [params]
//     lr = 0.5             # any live parameter, by its key in the table,
//     momentum = 0.95      # checked against its type and range
// Recalling one glides every parameter it lists from where it is to its value
// over the transition: linearly on a linear parameter, geometrically on a log
// one (lr, clip, weight_decay, ring, fade_time, lfo_rate: equal ratios in equal
// times; from or to 0 = off, it glides from or to the parameter's lowest "on"
// value and turns off or on at that end). Choices and 0/1 switches change at
// the end. A hand on the parameter (any surface) stops its glide.
//
// The LFO: one, set by the live parameters lfo_param (none = off), lfo_shape
// (sine, triangle, random walk), lfo_rate (Hz) and lfo_depth, so a config file,
// a scene, MIDI or OSC can play it. It swings its parameter around a centre: the
// value the parameter had when the LFO took it, moved since by hand or by a scene
// glide. Depth is the swing either side as a fraction of the parameter's range,
// measured on the parameter's scale: linear ones over min..max, log ones over the
// logarithm from their lowest "on" value to max (lr: 1e-5..10, so depth 0.1 is
// about two octaves each way). The result is clamped into that span, so the LFO
// never leaves the parameter's range; a log parameter that is off stays off.
// Detached (lfo_param changed), the parameter goes back to its centre.
//
// The event log (--events) gets the moments, not every frame: a glide's start
// (source "scene", from, to, seconds) and end (its final value) or stop (taken
// over by hand), an LFO's attach and detach (source "lfo", the centre), a
// fade's end. The values in between show in the metrics and the view.
#pragma once
#include <stdint.h>

#include "controls.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- scenes

#define SCENE_NAME 64
#define SCENE_MAX_TRANSITION 600.0

typedef struct {
    char name[SCENE_NAME];
    char path[CFG_STR + 64];
    float transition;                // seconds
    unsigned char set[PARAM_COUNT];  // 1: the scene lists this live parameter
    float value[PARAM_COUNT];        // its value (a choice as its index)
} Scene;

typedef struct {
    Scene *v;
    int n;
} SceneList;

// One scene file. A bad line (unknown section or key, a value of the wrong type
// or out of the table's range, a key twice, a bad name): -1 with
// "FILE:LINE: problem" in err.
int scene_load(Scene *sc, const char *path, TbErr *err);
// Every *.ini in dir, in name order (scene 1, 2, ...). A folder that does not
// exist is no scenes when missing_ok, else an error; two files with one scene
// name are an error naming both.
int scenes_load_dir(SceneList *l, const char *dir, int missing_ok, TbErr *err);
void scenes_free(SceneList *l);
// The number (1..n) of the scene called name, or 0.
int scene_find(const SceneList *l, const char *name);

// ---- the LFO's arithmetic (pure functions, for the loop and the tests)

typedef enum { LFO_SINE = 0, LFO_TRIANGLE, LFO_RANDOM } LfoShape;
// A periodic wave at phase (in cycles), -1..1, starting at 0 going up.
double lfo_wave(int shape, double phase);
// Parameter id swung by w (-1..1) at depth around centre (see above), clamped
// into its range.
float lfo_value(int id, float centre, float depth, double w);
// The live parameter LFO target index k (lfo_param's value) stands for; -1 for none.
int lfo_target_param(int k);

// ---- the modulator

typedef enum {
    MOD_GLIDE_START = 0,  // value: from; to, seconds
    MOD_GLIDE_END,        // value: where it ended
    MOD_GLIDE_STOP,       // a hand took the parameter over; value: the hand's
    MOD_LFO_ATTACH,       // value: the centre
    MOD_LFO_DETACH,       // value: the centre the parameter went back to
    MOD_FADE_END,         // param: the slot; value: 1
    MOD_FADE_STOP,        // param: the slot; value: how far it had come (0..1)
} ModNoteKind;

// A moment for the event log.
typedef struct {
    int kind;    // ModNoteKind
    int param;   // ParamId (slot number for the fade notes)
    int source;  // EventSource: SRC_SCENE, SRC_LFO, or the surface that began a fade
    float value, to, seconds;
} ModNote;

#define MOD_NOTES (3 * PARAM_COUNT + 8)

typedef enum { GLIDE_LIN = 0, GLIDE_LOG, GLIDE_SWITCH } GlideKind;

typedef struct {
    int on, kind;
    float from, to;
    double t0, dur;
} Glide;

typedef struct {
    int param;     // ParamId it moves, -1 = detached
    float centre;  // the value it swings around
    double phase;  // cycles
    double walk;   // random walk position, -1..1
    TbRng rng;
} Lfo;

typedef struct {
    int on, slot, source;
    double t0, dur, done;  // done: the share of the way already blended (0..1)
} Fade;

typedef struct {
    Glide glide[PARAM_COUNT];
    Lfo lfo;
    Fade fade;
    double last;  // time of the last step
    int started;
    ModNote note[MOD_NOTES];  // since the caller last emptied it (n_notes = 0)
    int n_notes;
} Modulator;

// What a step asks of the trainer: blend the live network toward `slot` by
// alpha (trainer_slot_blend), when alpha > 0.
typedef struct {
    int slot;
    float alpha;
} ModBlend;

void modulate_init(Modulator *m, uint64_t seed);
// Recall a scene at time now: a glide for each parameter it lists.
void modulate_scene(Modulator *m, const LiveParams *p, const Scene *sc, double now);
// Around a hand's change of parameter id (any surface): hold puts the LFO's
// centre back first (so a step goes from the centre), touch takes the new value
// as the centre and stops a glide of it.
void modulate_hold(Modulator *m, LiveParams *p, int id);
void modulate_touch(Modulator *m, const LiveParams *p, int id);
// Cross-fade into slot over seconds from now (replaces a fade under way); the
// surface that asked is the source of its end note.
void modulate_fade(Modulator *m, int slot, double seconds, double now, int source);
// Stop a fade (the live network was replaced by a reset, load or recall).
void modulate_fade_stop(Modulator *m);
// One frame at time now: glides, then the LFO, then the fade's next blend.
ModBlend modulate_step(Modulator *m, LiveParams *p, double now);

#ifdef __cplusplus
}
#endif
