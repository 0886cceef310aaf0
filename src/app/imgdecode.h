// imgdecode.h: PNG and JPEG files to RGB8, with libpng and libjpeg(-turbo).
//
// Every byte is untrusted (a gallery folder is filled by whoever has the
// share): sizes are bounded before anything is allocated, and every libpng or
// libjpeg error or data-losing warning comes back as a TbErr that names the
// file; nothing here exits, prints or blocks.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"

// Limits: each side, the pixel count (so w*h*3 fits easily and one image
// costs at most 192 MiB of RGB8), the bytes read from one file, and the
// scans of a progressive JPEG (libjpeg-turbo's own TurboJPEG limit: a crafted
// file with thousands of scans would take minutes to decode).
#define IMG_MAX_SIDE 16384
#define IMG_MAX_PIXELS ((size_t)1 << 26)
#define IMG_MAX_FILE_BYTES ((size_t)256 << 20)
#define IMG_MAX_JPEG_SCANS 500

typedef struct {
    uint8_t *rgb;  // width*height*3 bytes, rows top to bottom; NULL when empty
    int width, height;
} Image;

// A whole file's bytes (*data: malloc'd, *n > 0). Only a regular file is
// opened (O_NONBLOCK, so nothing can block): a FIFO, device, socket or folder
// is refused at once, saying which it is; so is a file larger than max_bytes
// or an empty one. Returns 0, or -1 with err naming the path.
int img_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *n, TbErr *err);

// Decode PNG or JPEG bytes (told apart by their signature, not the name) to
// RGB8 in *out. Grey, palette, 16-bit and alpha become RGB8: grey is copied
// to R=G=B, 16-bit samples are scaled to 8 (v*255/65535, rounded), alpha is
// dropped (as before with stb_image and as ffmpeg's rgb24 does), Adobe CMYK
// and YCCK JPEGs are converted (R = C*K/255). No gamma or colour-profile
// correction: the stored values, as the camera path sees them. A file over
// the limits, corrupt or truncated data (a JPEG that runs out early or loses
// sync, a PNG short of image data or failing a CRC) is refused. Returns 0, or
// -1 with err "NAME: ..." and *out empty.
int img_decode(const uint8_t *data, size_t n, const char *name, Image *out, TbErr *err);

// img_read_file (IMG_MAX_FILE_BYTES) then img_decode.
int img_load(const char *path, Image *out, TbErr *err);

void img_free(Image *im);
