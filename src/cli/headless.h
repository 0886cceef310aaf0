// headless.h: the command-line driver (--headless): every frame of the source in
// order, no window, no pacing, no dropped frames, so runs are reproducible.
#pragma once
#include "controls.h"
#include "run.h"
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// Train on s->source for s->frames frames (or s->duration seconds of the run's
// clock), applying the events of q (may be NULL; e.g. from OSC) before each
// frame. out: nout outputs to attach (main.c gives the app's recorder and the
// virtual camera; NULL, 0 for none). Returns an exit code.
int run_headless(const Settings *s, ControlQueue *q, const RunOutput *out, int nout);

#ifdef __cplusplus
}
#endif
