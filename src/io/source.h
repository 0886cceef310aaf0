// source.h: where frames come from. Every source yields RGB8 interleaved frames
// (H, W, 3) at its own native size; the trainer fits them to the training size
// with frame_fit() (frame_fit.h: centre-crop to the training aspect, then resize).
//
// Specs: "pattern", "pattern:WxH", "file:PATH" (.y4m built in; other video through
// libavformat, registered by the app), "dir:PATH" (PNG/JPEG, app), "camera",
// "camera:/dev/videoN" (app). Kinds are looked up in one registry.
#pragma once
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Source Source;
struct Source {
    char spec[1024];
    // The spec to reopen it with after a failure, when that differs from the one
    // it was opened by: a camera's stable /dev/v4l/by-id path, so a camera that
    // comes back as another /dev/videoN is found again. "" = the same spec.
    char reopen[1024];
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

// What a live source should ask its device for (camera settings); 0 = its own.
// Sources that have no such choice ignore it.
typedef struct {
    int width, height, fps;
    int lock_exposure;       // hold the exposure auto settled on
    int lock_white_balance;  // likewise the white balance
} SourceOpts;

// One kind of source in the registry. A spec is "SCHEME" or "SCHEME:ARG";
// the opener gets ARG ("" when there is none) and the options.
typedef Source *(*SourceOpenFn)(const char *arg, const SourceOpts *o, TbErr *err);
typedef struct {
    const char *scheme;  // "pattern", "file", "dir", "camera"
    const char *suffix;  // file names it takes (".y4m", case-insensitive); NULL = any
    SourceOpenFn open;
} SourceKind;

// Add a kind (the app registers its video files, image folders and cameras at
// start). For "file:" specs a kind whose suffix matches wins over one with
// none. Built in: "pattern" and "file" for .y4m. Not thread-safe: register
// before opening anything.
void source_register(const SourceKind *k);
// 1 if a registered kind would take this spec (the file need not exist).
int source_can_open(const char *spec);

// Open by spec; o may be NULL (no preferences). Returns NULL with a one-line
// reason in err (bad input, missing file, no kind for this spec in this build).
Source *source_open(const char *spec, const SourceOpts *o, TbErr *err);
void source_close(Source *s);

// The built-in openers (one file each).
Source *source_open_y4m(const char *path, TbErr *err);
Source *source_open_pattern(int width, int height, TbErr *err);

#ifdef __cplusplus
}
#endif
