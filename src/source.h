// source.h: where frames come from. Every source yields RGB8 interleaved frames
// (H, W, 3) at its own native size; the trainer fits them to the training size
// with frame_fit() (centre-crop to the training aspect, then resize).
//
// Specs: "pattern", "file:PATH" (.y4m natively; other video through libavformat in
// the app build), "dir:PATH" (PNG/JPEG, app build), "camera", "camera:/dev/videoN".
#pragma once
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Source Source;
struct Source {
    char spec[1024];
    // Size of the frame the NEXT read() returns. It may change across a read()
    // (image folders of mixed sizes, camera reconnect): take it before each
    // read(), and use that copy both to size the buffer and for the frame read.
    int width, height;
    double fps;         // native frame rate; 0 if none (image folders, pattern: 30)
    void *ctx;
    // Next frame into rgb (width*height*3 bytes, allocated by the caller from the
    // current width/height). Returns 1: a frame; 0: no new frame yet (live
    // sources); -1: error, err filled. File sources loop at the end.
    int (*read)(Source *s, uint8_t *rgb, TbErr *err);
    void (*close)(Source *s);
};

// Open by spec. Returns NULL with a one-line reason in err (bad input).
Source *source_open(const char *spec, TbErr *err);
void source_close(Source *s);

// Openers (one file each). The app build registers more through
// source_open_app() (dir:, video files through libav, camera).
Source *source_open_y4m(const char *path, TbErr *err);
Source *source_open_pattern(int width, int height, TbErr *err);
// Implemented by the app library when built; the engine-only build returns NULL
// with "not available in this build".
Source *source_open_app(const char *spec, TbErr *err);

// Centre-crop src (sw x sh) to the aspect of dst (dw x dh), then resize with
// area averaging when shrinking and bilinear when enlarging. RGB8 interleaved.
void frame_fit(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh);

// BT.601 limited-range YUV 4:2:0 / 4:4:4 planar to RGB8 (Y4M and camera paths).
void yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int w,
                   int h);
void yuv444_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int w,
                   int h);

#ifdef __cplusplus
}
#endif
