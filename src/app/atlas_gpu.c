// atlas_gpu.c: the layer atlas's CUDA-GL device (atlas_gpu.h): three RGBA8
// staging buffers drawn on the backend's stream and copied into the display's
// atlas pixel buffer on a stream of the main thread. Compiled only when the
// build has the CUDA backend; the hand-over is recon_gpu.c's.
#include "atlas_gpu.h"

ReconGpu *atlas_gpu_open(const ReconDev *ops, void *dev) {
    ReconGpu *r = recon_gpu_open(ops, dev);
    recon_gpu_set_what(r, "atlas pictures");
    return r;
}

#ifndef TABULA_HAVE_CUDA

ReconGpu *atlas_gpu_create(Backend *be, Display *d, const Model *m, const AtlasWant *want, TbErr *err) {
    (void)be, (void)d, (void)m, (void)want;
    tb_fail(err, "no CUDA in this build");
    return NULL;
}

#else

#include <GL/glew.h>
#include <cuda_gl_interop.h>
#include <cuda_runtime.h>
#include <string.h>

#include "atlas.h"
#include "backend_cuda.h"
#include "cuda_common.h"

typedef struct {
    Backend *be;
    Display *d;
    const Model *m;
    const AtlasWant *want;
    size_t bytes;          // the largest picture (RGBA8)
    cudaStream_t stream;   // the main thread's copies
    void *stage[3];        // RGBA8 pictures, rows tight, written on the backend's stream
    int w[3], h[3];        // each one's size (written before the hand-over publishes it)
    cudaEvent_t written[3], copied[3];
    uint8_t *lut;          // the colour map, on the device
    uint8_t *solo;         // the solo view's block, RGBA8, pinned host memory
    cudaEvent_t solo_sent; // after its last copy to the device
    unsigned pbo;
    struct cudaGraphicsResource *res;
} AtlasDev;

// Training thread: the picture for *want into buffer k: background, then each
// block from the activations where they are; only the solo view comes from the
// host (a picture of at most ATLAS_IMAGE_MAX on a side, made by the decoder).
static void atlas_write(void *p, int k) {
    AtlasDev *g = p;
    cudaStream_t s = (cudaStream_t)backend_cuda_stream(g->be);
    cudaCheck(cudaStreamWaitEvent(s, g->copied[k], 0));  // the GPU waits for the last copy out of k
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h, n = atlas_geometry(g->m, g->want->focus, g->want->solo != NULL, b, &w, &h);
    size_t pitch = (size_t)w * 4;
    uint8_t *pic = g->stage[k];
    cudaCheck(cudaMemsetAsync(pic, ATLAS_BG_RGB, pitch * h, s));  // alpha too: the shader reads rgb
    for (int i = 0; i < n; i++) {
        uint8_t *at = pic + (size_t)b[i].y * pitch + (size_t)b[i].x * 4;
        if (b[i].act < 0) {
            AtlasBlock o = b[i];
            o.x = o.y = 0;
            // Pinned, so the copy is queued and the host does not wait for the
            // stream. Rewritten only after its last copy: that was part of an
            // earlier picture, finished before recon_gpu_produce asks for this
            // one (one in flight at most), so this does not wait either.
            cudaCheck(cudaEventSynchronize(g->solo_sent));
            atlas_draw_rgb(&o, g->want->solo, g->solo, (size_t)o.w * 4, 4);
            cudaCheck(cudaMemcpy2DAsync(at, pitch, g->solo, (size_t)o.w * 4, (size_t)o.w * 4, o.h,
                                        cudaMemcpyHostToDevice, s));
            cudaCheck(cudaEventRecord(g->solo_sent, s));
            continue;
        }
        TileGeom tg;
        atlas_tile_geom(g->m, &b[i], &tg);
        backend_cuda_atlas_rgba(g->be, b[i].act, &tg, g->lut, pic, pitch);
    }
    g->w[k] = w, g->h[k] = h;
    cudaCheck(cudaEventRecord(g->written[k], s));
}

static int atlas_written(void *p, int k) {
    AtlasDev *g = p;
    cudaError_t e = cudaEventQuery(g->written[k]);
    if (e == cudaSuccess) return 1;
    (void)cudaGetLastError();  // not ready is no error: nothing left for the next launch check
    return e == cudaErrorNotReady ? 0 : -1;
}

// One call of a sequence, skipped after the first failure, which it names.
#define STEP(call)                                                         \
    do {                                                                   \
        if (e == cudaSuccess && (e = (call)) != cudaSuccess) what = #call; \
    } while (0)

// As the reconstruction's: map, copy, unmap may fail where the GL or the
// driver cannot share the buffer: reported, never fatal.
static int atlas_show(void *p, int k, TbErr *err) {
    AtlasDev *g = p;
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
        cudaError_t u = cudaGraphicsUnmapResources(1, &g->res, g->stream);  // orders the copy before GL
        if (e == cudaSuccess && u != cudaSuccess) e = u, what = "cudaGraphicsUnmapResources";
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tb_fail(err, "%s: %s", what, cudaGetErrorString(e));
    }
    display_atlas_from_pbo(g->d, g->w[k], g->h[k]);
    return 0;
}

static void atlas_destroy(void *p) {
    AtlasDev *g = p;
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
    if (g->lut) cudaFree(g->lut);
    if (g->stream) cudaStreamDestroy(g->stream);
    if (g->solo) cudaFreeHost(g->solo);
    if (g->solo_sent) cudaEventDestroy(g->solo_sent);
    free(g);
}

#define TRY(call)                                                                   \
    do {                                                                            \
        cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) {                                                    \
            (void)cudaGetLastError();                                               \
            tb_fail(err, "CUDA-GL interop: %s: %s", #call, cudaGetErrorString(e_)); \
            goto fail;                                                              \
        }                                                                           \
    } while (0)

ReconGpu *atlas_gpu_create(Backend *be, Display *d, const Model *m, const AtlasWant *want, TbErr *err) {
    static const ReconDev ops = {atlas_write, atlas_written, atlas_show, atlas_destroy};
    if (!be || strcmp(be->name, "cuda") != 0) {
        tb_fail(err, "not the CUDA backend");
        return NULL;
    }
    AtlasDev *g = tb_calloc(1, sizeof *g);
    g->be = be, g->d = d, g->m = m, g->want = want;
    g->bytes = atlas_max_bytes(m) / 3 * 4;
    uint8_t lut[256][3];
    atlas_lut(lut);
    g->pbo = display_atlas_pbo(d, g->bytes);
    if (!g->pbo) {
        tb_fail(err, "CUDA-GL interop: no atlas pixel buffer");
        goto fail;
    }
    // On channel 0's device: making the channels' backends (on this thread)
    // may have left another one current.
    TRY(cudaSetDevice(be->device));
    TRY(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    TRY(cudaMalloc((void **)&g->lut, sizeof lut));
    TRY(cudaMemcpy(g->lut, lut, sizeof lut, cudaMemcpyHostToDevice));
    TRY(cudaHostAlloc((void **)&g->solo, (size_t)ATLAS_IMAGE_MAX * ATLAS_IMAGE_MAX * 4, cudaHostAllocDefault));
    TRY(cudaEventCreateWithFlags(&g->solo_sent, cudaEventDisableTiming));
    for (int i = 0; i < 3; i++) {
        TRY(cudaMalloc(&g->stage[i], g->bytes));
        TRY(cudaEventCreateWithFlags(&g->written[i], cudaEventDisableTiming));
        TRY(cudaEventCreateWithFlags(&g->copied[i], cudaEventDisableTiming));
        TRY(cudaEventRecord(g->copied[i], g->stream));  // free at start
    }
    TRY(cudaGraphicsGLRegisterBuffer(&g->res, g->pbo, cudaGraphicsRegisterFlagsWriteDiscard));
    return atlas_gpu_open(&ops, g);
fail:
    atlas_destroy(g);
    return NULL;
}

#endif
