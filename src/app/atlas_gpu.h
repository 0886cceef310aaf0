// atlas_gpu.h: the layer atlas on the GPU (CUDA backend with CUDA-GL interop).
// The training thread draws each picture from the backend's activation block
// straight into one of three RGBA8 device buffers (backend_cuda_atlas_rgba:
// the tiles and the reconstruction; the solo view, a small host picture from
// the decoder, is uploaded into its block), and the main thread copies the
// newest finished one into the display's atlas pixel buffer: no activation
// crosses to the host. The hand-over between the threads, the "not written
// yet" checks and the switch to the host path for good when interop fails are
// recon_gpu's, and the buffers, events and copy gl_stage's (a ReconGpu over the
// device the reconstruction uses too, with the atlas's pictures and sizes), so
// atlas_feed.c uses it as train_thread.c uses the reconstruction's.
#pragma once
#include <stdint.h>

#include "display.h"
#include "recon_gpu.h"

// What the next picture shows: set by the training thread just before
// recon_gpu_produce, read by the device's write on the same thread.
typedef struct {
    int focus;            // as App.atlas_focus: -1 every layer, i: activation i alone
    const uint8_t *solo;  // the solo view (the training size, RGB8), or NULL for none
} AtlasWant;

// Main thread, GL context current: the atlas's ReconGpu over CUDA-GL, reading
// *want at each write. Made the first time the atlas is shown (App.ag_make,
// atlas_feed.c), not at start. NULL with err when the backend is not CUDA or
// interop is unavailable: the atlas then goes through host memory.
ReconGpu *atlas_gpu_create(Backend *be, Display *d, const Model *m, const AtlasWant *want, TbErr *err);
// The atlas's ReconGpu over any device (the CUDA-GL one above; a host stand-in
// in tests): recon_gpu_open, named for the log.
ReconGpu *atlas_gpu_open(const ReconDev *ops, void *dev);
