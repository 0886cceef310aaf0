// headless.h: the command-line driver (--headless): every frame of the source in
// order, no window, no pacing, no dropped frames, so runs are reproducible.
#pragma once
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// Train on s->source for s->frames frames. Returns an exit code.
int run_headless(const Settings *s);

#ifdef __cplusplus
}
#endif
