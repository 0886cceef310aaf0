// session.h: start-up shared by the headless driver and the live app: which
// source to use by default, the trainer built from the settings (with --load /
// --save-init), and --save at the end.
#pragma once
#include "settings.h"
#include "source.h"
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

// The source to use when none is given: a camera if one is present and a
// camera kind is registered, else the bundled clip, else the test pattern.
void session_default_source(char *buf, size_t n);
// The bundled clip (when a registered kind can play it), else "pattern".
void session_default_clip(char *buf, size_t n);
// The camera options of the settings, as the source registry takes them.
SourceOpts session_source_opts(const Settings *s);
// The trainer the settings describe. arch (may be NULL) overrides [model] (a
// checkpoint's own architecture); the training size always comes from s.
int session_trainer_config(const Settings *s, const ModelSpec *arch, TrainerConfig *c, TbErr *err);
// Settings that cannot make a network together (a size no multiple of the
// strides' product): -1 with the reason and where they were set (file:line, --flag).
int session_check(const Settings *s, TbErr *err);
// Build the trainer from settings: the architecture comes from --load's file if
// given (so a checkpoint is self-describing), else from [model]. Loads weights,
// writes --save-init, prints the model summary.
int session_setup_trainer(Trainer *t, const Settings *s, TbErr *err);
// Save --save at the end (if set). Returns 0 or -1 with err.
int session_save(Trainer *t, const Settings *s, TbErr *err);

#ifdef __cplusplus
}
#endif
