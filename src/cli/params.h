// params.h: the one parameter table of tabula. Every setting has exactly one
// row: its INI section and key, its command-line flag, its type, range,
// default and help, and, for the parameters an operator plays live, its scale
// (linear or log) and step. The INI reader, the flags, --help, the written
// default.ini, live clamping, key steps, the HUD (and next MIDI and OSC) all
// read these rows, so a headless run and the window accept the same values.
#pragma once
#include <stddef.h>

#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { P_INT, P_LONG, P_FLOAT, P_STR, P_CHOICE, P_FLAG } ParamType;
typedef enum { SCALE_LIN = 0, SCALE_LOG } ParamScale;

// The parameters played live (keys now; MIDI, OSC and replayed logs next).
// The order is the HUD's. A choice (optimizer, loss) plays as the index of its
// value in the row's choices.
typedef enum {
    PARAM_LR = 0,
    PARAM_MOMENTUM,
    PARAM_CLIP,          // 0 = off
    PARAM_WEIGHT_DECAY,
    PARAM_OPTIMIZER,     // 0 sgd, 1 adam: switching keeps the weights
    PARAM_LOSS,          // 0 mse, 1 l1
    PARAM_STEPS,         // steps per frame
    PARAM_MEMORY,        // replayed frames per step
    PARAM_RING,          // how far back memory reaches (frames)
    PARAM_SMOOTH_IN,     // blend of each new frame with the previous one
    PARAM_SMOOTH_OUT,    // blend of each reconstruction with the previous one
    PARAM_FREEZE,        // 1 = train on and show the last frame
    PARAM_PAUSE,         // 1 = frozen: keep showing reconstructions, no steps
    PARAM_TRANSFORM,     // what the network is given: 0 none, 1 grey, 2 edges (TF_*)
    PARAM_BLUR,          // blur factor of the network's input (1 = off)
    PARAM_JITTER,        // brightness/contrast jitter of training inputs (0 = off)
    PARAM_FADE_TIME,     // seconds a slot cross-fade takes (modulate.h)
    PARAM_LFO_PARAM,     // the parameter the LFO moves: 0 none, else an index in LFO_TARGETS
    PARAM_LFO_SHAPE,     // 0 sine, 1 triangle, 2 random walk
    PARAM_LFO_RATE,      // Hz
    PARAM_LFO_DEPTH,     // swing either side, as a fraction of the parameter's range
    PARAM_BN_KEEP,       // bottleneck channels kept (0 = all; the rest are zeroed)
    PARAM_BN_NOISE,      // std of the Gaussian noise added to the bottleneck
    PARAM_BN_FREEZE,     // 1 = the decoder sees a held code; only the decoder learns
    PARAM_FEEDBACK,      // dream: 0 = camera only, 1 = the network's own output only
    PARAM_ZOOM,          // dream: zoom of the fed-back picture per pass
    PARAM_ROTATE,        // dream: degrees per pass, clockwise
    PARAM_SHIFT_X,       // dream: pixels per pass, right
    PARAM_SHIFT_Y,       // dream: pixels per pass, down
    PARAM_TAU,           // dream: seconds the blend takes to follow feedback (0 = at once)
    PARAM_COUPLING,      // [channels] coupling: pull of each net toward the channels' mean
    PARAM_COUNT
} ParamId;

// The parameters an LFO can move (the choices of lfo_param): every numeric live
// parameter but fade_time and the LFO's own (not a choice, not a 0/1 switch;
// tests/test_modulate.c checks the list against the table).
#define LFO_TARGETS \
    "none|lr|momentum|clip|weight_decay|steps_per_frame|memory|ring|input_smoothing|output_smoothing|" \
    "blur|jitter|keep_channels|noise|feedback|zoom|rotate|shift_x|shift_y|tau|coupling"

typedef struct {
    const char *section, *key;  // INI name; section NULL = command line only
    const char *flag;           // command-line name without "--" (NULL = INI only)
    ParamType type;
    size_t off;                 // field in Settings
    double min, max;            // P_INT, P_LONG, P_FLOAT (and live clamping)
    const char *choices;        // P_CHOICE: "a|b|c"
    const char *def;            // default, as text
    const char *help;
    // Live parameters only (live = ParamId, else -1 for a setting read at start).
    int live;
    ParamScale scale;
    double step;     // SCALE_LIN: added per step; SCALE_LOG: factor per step up
    double zero_up;  // SCALE_LOG with min 0: where a step up from 0 (off) lands
    double floor;    // SCALE_LOG with min 0: a step down below this goes to 0
    const char *label;  // short name on the HUD
    // P_STR with a form (NULL: any text): 0, or -1 with what is wrong in err.
    int (*valid)(const char *text, TbErr *err);
} Param;

// All rows, in the order of default.ini and --help.
const Param *params_table(size_t *n);
// The row of a live parameter.
const Param *param_live(int id);
// Row by INI "section", "key"; by flag name or "section.key". NULL if none.
const Param *param_find_ini(const char *section, const char *key);
const Param *param_find_flag(const char *name);
// Live id by key ("lr", "steps_per_frame"); -1 if none.
int param_by_name(const char *key);
// 1 if the value of a live parameter is a whole number (steps, ring, a choice).
int param_is_int(int id);
// A choice row: how many choices, the index of `text` (-1 if none), and the
// name of choice i (NULL past the end).
int param_choice_count(const Param *p);
int param_choice_index(const Param *p, const char *text);
const char *param_choice_name(const Param *p, int i, char *buf, size_t n);
// The range a live value is clamped to: the row's min and max, or 0 to
// count-1 for a choice.
void param_live_range(int id, double *min, double *max);

// Sizes that follow from the table: the largest batch (1 + the most replayed
// frames per step).
int params_max_batch(void);

// Parse text into the setting (range and type checked): 0, or -1 with err
// naming the key and the allowed range.
int param_parse(Settings *s, const Param *p, const char *text, TbErr *err);

#ifdef __cplusplus
}
#endif
