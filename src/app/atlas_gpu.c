// atlas_gpu.c: the layer atlas on the CUDA-GL device (atlas_gpu.h): pictures
// drawn from the activations on the backend's stream into gl_stage.c's staging
// buffers and copied into the display's atlas pixel buffer, whose sizes change
// with the focus and the solo view. The CUDA part is compiled only when the
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

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "atlas.h"
#include "backend_cuda.h"
#include "cuda_common.h"
#include "gl_stage.h"

// What the atlas adds to the shared CUDA-GL device (gl_stage.h): the colour
// map and the solo view's upload; its pictures change size.
typedef struct {
    const Model *m;
    const AtlasWant *want;
    uint8_t *lut;          // the colour map, on the device
    uint8_t *solo;         // the solo view's block, RGBA8, pinned host memory
    cudaEvent_t solo_sent; // after its last copy to the device
} AtlasPic;

// Training thread: the picture for *want into pic: background, then each
// block from the activations where they are; only the solo view comes from the
// host (a picture of at most ATLAS_IMAGE_MAX on a side, made by the decoder).
static void atlas_pic_draw(void *p, Backend *be, uint8_t *pic, void *stream, int *pw, int *ph) {
    AtlasPic *g = p;
    cudaStream_t s = stream;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h, n = atlas_geometry(g->m, g->want->focus, g->want->solo != NULL, b, &w, &h);
    size_t pitch = (size_t)w * 4;
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
        backend_cuda_atlas_rgba(be, b[i].act, &tg, g->lut, pic, pitch);
    }
    *pw = w, *ph = h;
}

static void atlas_pic_shown(void *p, Display *d, int w, int h) { display_atlas_from_pbo(d, w, h); }

// After the stage's streams are done (the backend's last picture may have used
// the colour map and the solo view).
static void atlas_pic_release(void *p) {
    AtlasPic *g = p;
    if (g->lut) cudaFree(g->lut);
    if (g->solo) cudaFreeHost(g->solo);
    if (g->solo_sent) cudaEventDestroy(g->solo_sent);
    free(g);
}

ReconGpu *atlas_gpu_create(Backend *be, Display *d, const Model *m, const AtlasWant *want, TbErr *err) {
    static const GlStageUser user = {atlas_pic_draw, atlas_pic_shown, atlas_pic_release};
    if (!be || strcmp(be->name, "cuda") != 0) {
        tb_fail(err, "not the CUDA backend");
        return NULL;
    }
    size_t bytes = atlas_max_bytes(m) / 3 * 4;  // the largest picture (RGBA8)
    unsigned pbo = display_atlas_pbo(d, bytes);
    if (!pbo) {
        tb_fail(err, "CUDA-GL interop: no atlas pixel buffer");
        return NULL;
    }
    AtlasPic *g = tb_calloc(1, sizeof *g);
    g->m = m, g->want = want;
    uint8_t lut[256][3];
    atlas_lut(lut);
    // On channel 0's device: making the channels' backends (on this thread)
    // may have left another one current.
    GL_STAGE_TRY(cudaSetDevice(be->device));
    GL_STAGE_TRY(cudaMalloc((void **)&g->lut, sizeof lut));
    GL_STAGE_TRY(cudaMemcpy(g->lut, lut, sizeof lut, cudaMemcpyHostToDevice));
    GL_STAGE_TRY(cudaHostAlloc((void **)&g->solo, (size_t)ATLAS_IMAGE_MAX * ATLAS_IMAGE_MAX * 4, cudaHostAllocDefault));
    GL_STAGE_TRY(cudaEventCreateWithFlags(&g->solo_sent, cudaEventDisableTiming));
    GlStage *st = gl_stage_open(be, d, pbo, bytes, &user, g, err);
    return st ? atlas_gpu_open(&gl_stage_dev, st) : NULL;
fail:
    atlas_pic_release(g);
    return NULL;
}

#endif
