// gl_stage.c: the CUDA-GL device shared by the reconstruction and the layer
// atlas (gl_stage.h). Compiled only when the build has the CUDA backend.
#ifdef TABULA_HAVE_CUDA
#include "gl_stage.h"

#include <GL/glew.h>
#include <cuda_gl_interop.h>
#include <cuda_runtime.h>
#include <stdlib.h>

#include "backend_cuda.h"
#include "cuda_common.h"

struct GlStage {
    Backend *be;
    Display *d;
    GlStageUser user;
    void *ctx;
    cudaStream_t stream;  // the main thread's copies
    uint8_t *stage[3];    // RGBA8 pictures, rows tight, drawn on the backend's stream
    int w[3], h[3];       // each one's size (set before the hand-over publishes it)
    cudaEvent_t written[3], copied[3];
    struct cudaGraphicsResource *res;
};

int gl_stage_check(int cuda_err, const char *call, TbErr *err) {
    cudaError_t e = (cudaError_t)cuda_err;
    if (e == cudaSuccess) return 0;
    (void)cudaGetLastError();
    return tb_fail(err, "CUDA-GL interop: %s: %s", call, cudaGetErrorString(e));
}

static void stage_write(void *p, int k) {
    GlStage *g = p;
    cudaStream_t s = (cudaStream_t)backend_cuda_stream(g->be);
    // The GPU (not this thread) waits until the main thread's last copy out of k is done.
    cudaCheck(cudaStreamWaitEvent(s, g->copied[k], 0));
    g->user.draw(g->ctx, g->be, g->stage[k], s, &g->w[k], &g->h[k]);
    cudaCheck(cudaEventRecord(g->written[k], s));
}

static int stage_written(void *p, int k) {
    GlStage *g = p;
    cudaError_t e = cudaEventQuery(g->written[k]);
    if (e == cudaSuccess) return 1;
    // Not ready is no error: leave nothing behind for the next launch check.
    (void)cudaGetLastError();
    return e == cudaErrorNotReady ? 0 : -1;
}

// One call of a sequence, skipped after the first failure, which it names.
#define STEP(call)                                                         \
    do {                                                                   \
        if (e == cudaSuccess && (e = (call)) != cudaSuccess) what = #call; \
    } while (0)

// The map, the copy and the unmap may each fail where the GL or the driver
// cannot share the buffer: an environment problem, reported, never fatal.
static int stage_show(void *p, int k, TbErr *err) {
    GlStage *g = p;
    void *dst = NULL;
    size_t bytes = 0, need = (size_t)g->w[k] * g->h[k] * 4;
    cudaError_t e = cudaSuccess;
    const char *what = "";
    STEP(cudaSetDevice(g->be->device));  // g->stream's; a thunk on this thread may have left another
    STEP(cudaGraphicsMapResources(1, &g->res, g->stream));
    if (e == cudaSuccess) {
        STEP(cudaGraphicsResourceGetMappedPointer(&dst, &bytes, g->res));
        if (e == cudaSuccess && bytes < need) e = cudaErrorInvalidValue, what = "the mapped pixel buffer is too small";
        STEP(cudaMemcpyAsync(dst, g->stage[k], need, cudaMemcpyDeviceToDevice, g->stream));
        STEP(cudaEventRecord(g->copied[k], g->stream));
        // Unmapping orders the copy before any GL work issued after it.
        cudaError_t u = cudaGraphicsUnmapResources(1, &g->res, g->stream);
        if (e == cudaSuccess && u != cudaSuccess) e = u, what = "cudaGraphicsUnmapResources";
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tb_fail(err, "%s: %s", what, cudaGetErrorString(e));
    }
    g->user.shown(g->ctx, g->d, g->w[k], g->h[k]);
    return 0;
}

static void stage_destroy(void *p) {
    GlStage *g = p;
    if (!g) return;
    // The backend's stream writes the staging buffers (the last write may still
    // be queued): done before they are freed, as are this side's copies.
    cudaStreamSynchronize((cudaStream_t)backend_cuda_stream(g->be));
    if (g->stream) cudaStreamSynchronize(g->stream);
    if (g->res) cudaGraphicsUnregisterResource(g->res);
    for (int i = 0; i < 3; i++) {
        if (g->stage[i]) cudaFree(g->stage[i]);
        if (g->written[i]) cudaEventDestroy(g->written[i]);
        if (g->copied[i]) cudaEventDestroy(g->copied[i]);
    }
    if (g->stream) cudaStreamDestroy(g->stream);
    g->user.release(g->ctx);
    free(g);
}

const ReconDev gl_stage_dev = {stage_write, stage_written, stage_show, stage_destroy};

GlStage *gl_stage_open(Backend *be, Display *d, unsigned pbo, size_t bytes, const GlStageUser *user, void *ctx, TbErr *err) {
    GlStage *g = tb_calloc(1, sizeof *g);
    g->be = be;
    g->d = d;
    g->user = *user;
    g->ctx = ctx;
    // On channel 0's device: making the channels' backends (on this thread)
    // may have left another one current.
    GL_STAGE_TRY(cudaSetDevice(be->device));
    GL_STAGE_TRY(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    for (int i = 0; i < 3; i++) {
        GL_STAGE_TRY(cudaMalloc((void **)&g->stage[i], bytes));
        GL_STAGE_TRY(cudaEventCreateWithFlags(&g->written[i], cudaEventDisableTiming));
        GL_STAGE_TRY(cudaEventCreateWithFlags(&g->copied[i], cudaEventDisableTiming));
        GL_STAGE_TRY(cudaEventRecord(g->copied[i], g->stream));  // free at start
    }
    // Needs the GL context current and a GL from the same vendor as the GPU.
    GL_STAGE_TRY(cudaGraphicsGLRegisterBuffer(&g->res, pbo, cudaGraphicsRegisterFlagsWriteDiscard));
    return g;
fail:
    stage_destroy(g);
    return NULL;
}

#endif
