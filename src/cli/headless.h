// headless.h: the command-line driver (--headless): every frame of the source in
// order, no window, no pacing, no dropped frames, so runs are reproducible.
#pragma once
#include "controls.h"
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// Train on s->source for s->frames frames, applying the events of q (may be
// NULL; e.g. from OSC) before each frame. Returns an exit code.
int run_headless(const Settings *s, ControlQueue *q);

#ifdef __cplusplus
}
#endif
