// journey.h: journeys through stored bottleneck codes. A keyframe is the code
// of one moment (the encoder's last activation, sample 0 of the last pass) and
// the reconstruction shown with it; a journey plays the decoder alone on codes
// interpolated between the keyframes, in the order stored, back to the first
// and round again, `seconds` per segment. The path passes through each stored
// code exactly at its keyframe (the weights of the interpolation are exactly
// 1 and 0 there), so with the same decoder weights the picture there is the
// stored frame's reconstruction, bit for bit on the CPU.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define JOURNEY_KEYS 8

// [journey] mode, in the order of its choice list.
typedef enum { JOURNEY_LINEAR = 0, JOURNEY_SLERP, JOURNEY_CURVE } JourneyMode;

typedef struct {
    size_t n_code;      // floats in one code (act_n[n_enc])
    size_t frame_bytes; // one reconstruction, RGB8 at the training size
    float *code[JOURNEY_KEYS];    // NULL until stored
    uint8_t *rec[JOURNEY_KEYS];   // the reconstruction shown when it was stored
    int n;              // keyframes stored: slots 0..n-1 are full
    int mode;           // JourneyMode
    float seconds;      // per segment, > 0
    int playing;
    double t0;          // when the journey started (the run's clock)
    float *cur;         // the code being shown (n_code floats)
} Journey;

void journey_init(Journey *j, size_t n_code, size_t frame_bytes, int mode, float seconds);
void journey_free(Journey *j);
// Store a code and its reconstruction in keyframe slot i (0-based, at most one
// past the last full one: slots stay contiguous), or the next one with i < 0
// (past the last: the oldest is overwritten, the others move down). Returns the
// slot used, or -1 (i out of range).
int journey_store(Journey *j, int i, const float *code, const uint8_t *rec);
// The code at position p along the path (p = k: keyframe k mod n exactly;
// between, per mode). Needs n >= 1.
void journey_at(const Journey *j, double p, float *out);
// The pure interpolations on flattened codes of n floats (u in [0, 1]):
// linear; spherical (the angle between the codes as vectors, their lengths
// interpolated with them; nearly parallel or zero codes: linear); and
// Catmull-Rom through p1 (u = 0) and p2 (u = 1) with neighbours p0 and p3.
void journey_lerp(float *out, const float *a, const float *b, size_t n, double u);
void journey_slerp(float *out, const float *a, const float *b, size_t n, double u);
void journey_curve(float *out, const float *p0, const float *p1, const float *p2, const float *p3,
                   size_t n, double u);
// Start (needs a keyframe; 0, or -1) or stop playing at time now.
int journey_start(Journey *j, double now);
void journey_stop(Journey *j);
// The code to show at time now while playing (into j->cur, returned).
const float *journey_code(Journey *j, double now);
// Store the trainer's current code (activation n_enc of the last pass) and
// its reconstruction as journey_store does. Returns the slot, or -1.
int journey_store_trainer(Journey *j, Trainer *t, int i);
// The decoder's picture of the code at time now (RGB8 at the training size).
void journey_render(Journey *j, Trainer *t, double now, uint8_t *rgb);

#ifdef __cplusplus
}
#endif
