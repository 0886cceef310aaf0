// compose.h: the recorded picture, made on the CPU from the frame the network
// was shown and its reconstruction, so that a headless take and a window take
// record the same thing, at a size of their own, without reading the screen
// back. The layouts are the window's (display.c): mirror = the reconstruction
// alone; side = input | reconstruction; triptych = input | reconstruction |
// error, where the error is |input - reconstruction| averaged over the colours,
// times a gain, through the inferno colour map (shaders/display_frag.glsl).
// Panes keep the training aspect, side by side with the window's gap (1.25% of
// the height), centred on black, and are mirrored left-right with flip on.
// With an input transform in force (a world) the triptych is input | what the
// network was given | reconstruction, as in the window. The input pane is the
// frame that went into the replay ring (fitted to the training size), where
// the window shows the camera's crop at the camera's resolution.
#pragma once
#include <stdint.h>

#include "common.h"

typedef enum { COMPOSE_MIRROR = 0, COMPOSE_SIDE, COMPOSE_TRIPTYCH, COMPOSE_LAYOUTS } ComposeLayout;

typedef struct {
    int layout;      // ComposeLayout
    int tw, th;      // training size (of both frames in)
    int ow, oh;      // the picture out
    int flip;        // 1: mirror left-right
    float gain;      // error pane amplification (the window's default is 4)
} ComposeOpts;

typedef struct Composer Composer;

// NULL with err (a size swscale cannot take).
Composer *compose_new(const ComposeOpts *o, TbErr *err);
void compose_free(Composer *c);
// The picture (ow*oh*3 bytes, RGB8) from the input frame, what the network
// was given (NULL: no transform in force) and the reconstruction (tw*th*3 each).
void compose_frame(Composer *c, const uint8_t *input, const uint8_t *net, const uint8_t *recon, uint8_t *out);
// Where pane i of n lies in an ow x oh picture (x, y, w, h), as the window
// places it: returns n, the number of panes of the layout.
int compose_panes(int layout, int tw, int th, int ow, int oh, int rect[3][4]);
// The error pane's colour for a mean absolute difference d in [0, 1] (after
// the gain): inferno, as the shader computes it.
void compose_inferno(float d, uint8_t rgb[3]);
