// app_sources.h: sources that need system libraries (app build only).
#pragma once
#include "source.h"

// dir:PATH — PNG/JPEG files in sorted name order, one per frame, looped (stb_image).
Source *source_open_imgdir(const char *path, TbErr *err);
// file:PATH for any video libavformat decodes (MP4, MKV, WebM, Y4M), looped.
Source *source_open_avfile(const char *path, TbErr *err);
// camera or camera:/dev/videoN through V4L2/libv4l2. `want_w/want_h/want_fps` are
// the preferred capture size and rate (0 = the camera's native/default).
Source *source_open_camera(const char *device, int want_w, int want_h, int want_fps, TbErr *err);
