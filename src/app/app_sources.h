// app_sources.h: the source kinds that need system libraries.
#pragma once
#include "source.h"

// Register file: (any video libav decodes), dir: and camera with the source
// registry. Call once at start, before opening sources.
void app_register_sources(void);

// dir:PATH — PNG/JPEG files in sorted name order, one per frame, looped (libjpeg,
// libpng: imgdecode.c); a file that does not decode is skipped with one message.
Source *source_open_imgdir(const char *path, TbErr *err);
// file:PATH for any video libavformat decodes (MP4, MKV, WebM, Y4M), looped.
Source *source_open_avfile(const char *path, TbErr *err);
