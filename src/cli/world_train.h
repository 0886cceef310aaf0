// world_train.h: --train-world DATA --save FILE: train a "world", a network that
// has only ever seen one theme (an image folder or a video file), in batches of
// random crops, then write it where --load and the world action take it.
#pragma once
#include "settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// The whole run with s's [world] settings; returns the exit code (2: bad input,
// with one message: no --save, data that cannot be read or holds no frame).
int world_train_run(const Settings *s);

// The learning rate at step (0-based) of steps: a linear warm-up over the first
// 2% of the steps (at least 1), then cosine down to 0, step (x0.1 at 60% and
// at 85%) or constant. schedule: "cosine", "step" or "constant".
float world_lr_at(const char *schedule, float peak, long step, long steps);

#ifdef __cplusplus
}
#endif
