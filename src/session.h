// session.h: what the headless driver and the live app share at start-up:
// the default source, building the trainer (with --load / --save-init), exit.
#pragma once
#include "config.h"
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

// The source to use when none is given: a camera if one is present (app build),
// else the bundled clip, else the synthetic pattern. Writes the spec to buf.
void session_default_source(char *buf, size_t n);
// The bundled clip (app build, if present), else "pattern".
void session_default_clip(char *buf, size_t n);
// Build the trainer from settings: the architecture comes from --load's file if
// given (so a checkpoint is self-describing), else from [model]. Loads weights,
// writes --save-init, prints the model summary.
int session_setup_trainer(Trainer *t, const Settings *s, TbErr *err);
// Save --save at the end (if set). Returns 0 or -1 with err.
int session_save(Trainer *t, const Settings *s, TbErr *err);
// Headless run: train on s->source for s->frames frames. Returns an exit code.
int run_headless(const Settings *s);

#ifdef __cplusplus
}
#endif
