// augment.h: random crops of RGB8 frames for theme training (world_train.c).
#pragma once
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

// dst (dw x dh) = a random crop of src (sw x sh) with dst's aspect, its side a
// fraction drawn from [scale_min, 1] of the largest such crop, at a random
// place, mirrored left-right half the time, then resized as frame_fit does.
// All draws come from rng (seeded: the same crops every run).
void augment_crop(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh, float scale_min,
                  TbRng *rng);

#ifdef __cplusplus
}
#endif
