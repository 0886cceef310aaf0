// color.h: the one YUV <-> RGB conversion of tabula (BT.601, limited range), for
// Y4M files and camera frames (YUYV) alike, and back for the virtual camera. One per-pixel formula in 16.16 fixed
// point: it rounds like exact arithmetic on all but 0.002% of the channel values
// of the real clips, and is within 1 of libswscale's on every value
// (tests/app/test_color_sws.c has the figures).
#pragma once
#include <stddef.h>
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
// Packed YUYV 4:2:2 (Y0 U Y1 V per pixel pair, as webcams send it) to RGB8.
// `stride` is the source's bytes per line (0 = packed: 2 * w rounded up to a
// whole pair); an odd width ends on the first pixel of a pair.
void yuyv_to_rgb(uint8_t *rgb, const uint8_t *yuyv, int w, int h, size_t stride);

// RGB8 to BT.601 limited range, the inverse of the above (16.16 fixed point,
// rounded; checked against libswscale by tests/app/test_color_sws.c). Chroma
// is the mean of the pixels it covers: a pair for YUYV (w even), a 2x2 block
// for I420 (planes ceil(w/2) x ceil(h/2); edge blocks average what they have).
// `stride`: the destination's bytes per line (0 = packed); I420's chroma rows
// take stride / 2 (0 = ceil(w/2)).
void rgb_to_yuyv(uint8_t *yuyv, const uint8_t *rgb, int w, int h, size_t stride);
void rgb_to_i420(uint8_t *y, uint8_t *u, uint8_t *v, const uint8_t *rgb, int w, int h, size_t stride);

#ifdef __cplusplus
}
#endif
