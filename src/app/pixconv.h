// pixconv.h: camera pixel formats to RGB8 interleaved (the only format the rest
// of tabula sees). YUYV is BT.601 limited range, as webcams send it, converted
// by color.h's yuyv_to_rgb (the conversion Y4M files use too).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"

// Pixel formats by their V4L2 fourcc, so a negotiated format maps 1:1.
#define PIX_FOURCC(a, b, c, d) \
    ((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))
#define PIX_YUYV PIX_FOURCC('Y', 'U', 'Y', 'V')
#define PIX_MJPEG PIX_FOURCC('M', 'J', 'P', 'G')
#define PIX_JPEG PIX_FOURCC('J', 'P', 'E', 'G')
#define PIX_RGB24 PIX_FOURCC('R', 'G', 'B', '3')
#define PIX_BGR24 PIX_FOURCC('B', 'G', 'R', '3')

// 1 if pixconv can convert this fourcc.
int pix_supported(uint32_t fourcc);

// Convert one frame of `n` bytes to rgb (w*h*3). `stride` is the source's bytes
// per line for the raw formats (0 = packed); JPEG frames must decode to w x h.
// Returns 0, or -1 with err filled (short buffer, corrupt JPEG, wrong size).
int pix_convert(uint32_t fourcc, uint8_t *rgb, int w, int h, const uint8_t *src, size_t n,
                size_t stride, TbErr *err);

// The individual converters (YUYV: yuyv_to_rgb in color.h).
void pix_bgr_to_rgb(uint8_t *rgb, const uint8_t *bgr, int w, int h, size_t stride);
// (M)JPEG through libjpeg; inserts the standard Huffman tables when the frame has
// none (most webcams omit them). A corrupt or truncated frame is an error.
int pix_jpeg_to_rgb(uint8_t *rgb, int w, int h, const uint8_t *jpeg, size_t n, TbErr *err);

// For tests: 1 if the JPEG stream has a DHT segment before its first scan.
int pix_jpeg_has_dht(const uint8_t *jpeg, size_t n);
// For tests: the DHT segment inserted into table-less frames (marker included).
const uint8_t *pix_std_dht(size_t *n);
