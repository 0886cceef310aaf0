// gl_stage.h: the CUDA-GL device under recon_gpu's hand-over, shared by the
// reconstruction (recon_gpu.c) and the layer atlas (atlas_gpu.c): three RGBA8
// staging buffers, each drawn on the backend's stream, and copied by the main
// thread into a GL pixel buffer (mapped into CUDA) on a stream of its own.
// Two events a buffer order the threads' work on the GPU without either thread
// waiting: `written` (the main thread maps nothing before it) and `copied`
// (the GPU draws nothing into a buffer before the last copy out of it).
// What differs between the users is the picture: its largest size, how it is
// drawn, and what the display does with the pixel buffer (GlStageUser).
// Defined only in a build with the CUDA backend; the users call it from their
// CUDA parts.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "recon_gpu.h"

typedef struct {
    // Training thread: queue the next picture into dst (device memory, rows
    // tight, at most the stage's bytes) on `stream` (be's, a cudaStream_t),
    // without waiting for it; its size in *w, *h.
    void (*draw)(void *ctx, Backend *be, uint8_t *dst, void *stream, int *w, int *h);
    // Main thread: the w x h picture is in d's pixel buffer: onto the texture.
    void (*shown)(void *ctx, Display *d, int w, int h);
    // ctx's own resources, once nothing queued on the streams uses them.
    void (*release)(void *ctx);
} GlStageUser;

typedef struct GlStage GlStage;

// Main thread, GL context current, d's pixel buffer `pbo` (at least `bytes`)
// made: three staging buffers of `bytes` on be's device, with pbo registered.
// ctx is the stage's from now on (released with it, also when this fails).
// NULL with err where CUDA or the GL cannot do it: the caller takes the host
// path.
GlStage *gl_stage_open(Backend *be, Display *d, unsigned pbo, size_t bytes, const GlStageUser *user, void *ctx, TbErr *err);
// The stage as recon_gpu's device: recon_gpu_open(&gl_stage_dev, stage), which
// owns (and destroys) it from then on.
extern const ReconDev gl_stage_dev;

// A failing CUDA call while a device is made is an environment problem (driver,
// GL vendor), not a bug: said once in err, and the caller falls back. 0 when
// cuda_err (a cudaError_t) is cudaSuccess, else -1 with err "CUDA-GL interop:
// call: why" (the error cleared). GL_STAGE_TRY jumps to the caller's `fail`.
int gl_stage_check(int cuda_err, const char *call, TbErr *err);
#define GL_STAGE_TRY(call)                                        \
    do {                                                          \
        if (gl_stage_check((int)(call), #call, err)) goto fail;   \
    } while (0)
