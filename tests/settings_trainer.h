// settings_trainer.h: build a trainer from Settings, as the program does
// (session_trainer_config, then trainer_init), for the engine tests.
#pragma once
#include "session.h"
#include "source.h"

static inline int trainer_init_settings(Trainer *t, const Settings *s, const ModelSpec *arch,
                                        TbErr *err) {
    TrainerConfig c;
    if (session_trainer_config(s, arch, &c, err)) return -1;
    return trainer_init(t, &c, err);
}

// n frames of src on t, 2 steps each; the last step's loss of each frame into
// out (may be NULL).
static inline void train_frames(Trainer *t, Source *src, int n, float *out) {
    uint8_t *rgb = tb_malloc((size_t)src->width * src->height * 3);
    TbErr err;
    for (int i = 0; i < n; i++) {
        CHECK(src->read(src, rgb, &err) == 1, "%s", err.msg);
        trainer_push_frame(t, rgb, src->width, src->height);
        trainer_train(t, 2, 0);
        StepStats st[TB_STATS_RING];
        int k = trainer_read_stats(t, st);
        if (out) out[i] = st[k - 1].loss;
    }
    free(rgb);
}
