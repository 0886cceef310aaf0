// color.h: the one YUV -> RGB conversion of tabula (BT.601, limited range), for
// Y4M files and camera frames alike.
#pragma once
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

// BT.601 limited-range YUV 4:2:0 / 4:4:4 planar to RGB8.
void yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int w,
                   int h);
void yuv444_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int w,
                   int h);

#ifdef __cplusplus
}
#endif
