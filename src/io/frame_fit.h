// frame_fit.h: fit any RGB8 frame to the training size.
#pragma once
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

// Centre-crop src (sw x sh) to the aspect of dst (dw x dh), then resize with
// area averaging when shrinking and bilinear when enlarging. RGB8 interleaved.
void frame_fit(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh);

#ifdef __cplusplus
}
#endif
