// settings_trainer.h: build a trainer from Settings, as the program does
// (session_trainer_config, then trainer_init), for the engine tests.
#pragma once
#include "session.h"

static inline int trainer_init_settings(Trainer *t, const Settings *s, const ModelSpec *arch,
                                        TbErr *err) {
    TrainerConfig c;
    if (session_trainer_config(s, arch, &c, err)) return -1;
    return trainer_init(t, &c, err);
}
