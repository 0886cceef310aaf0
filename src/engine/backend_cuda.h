// backend_cuda.h: the CUDA/cuDNN backend (backend_cuda.cu). Built only when the
// CUDA toolkit and cuDNN were found (TABULA_HAVE_CUDA).
#pragma once
#include <stddef.h>

#include "backend.h"
#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// 1 if a CUDA device and cuDNN are usable; else 0 with the reason in err, which
// names the cause: no NVIDIA driver or one too old for this CUDA runtime, no
// device, no code in this build for the device, cuDNN missing or unusable.
int cuda_available(TbErr *err);
// The CUDA backend for batches of up to max_batch samples of model m (o may be
// NULL: defaults); NULL with the reason in err when there is no usable device,
// device memory runs out or cuDNN has no algorithm for a layer (it never exits
// for those). Makes one cuDNN handle, kept for its life.
Backend *backend_cuda_create(const Model *m, int max_batch, const BackendOpts *o, TbErr *err);
// backend_cuda_create on device o->device (backend_cuda_device.cu): NULL with
// err when the machine has no such device. Every entry point of the backend it
// returns makes that device current first (the channels share one thread).
// backend_create makes its CUDA backends so.
Backend *backend_cuda_on_device(const Model *m, int max_batch, const BackendOpts *o, TbErr *err);
// Training steps launched as a replay of a captured CUDA graph so far (0 when
// graphs are off, or fell back to eager launches after a failed capture).
long backend_cuda_graph_launches(Backend *b);
// What the last train_step enqueued, the loads before it (since the step
// before) included: kernel launches and cuDNN calls (a graph replay counts the
// kernels its graph holds), and bytes of frames sent to the device.
typedef struct {
    int kernels, cudnn;
    long long upload_bytes;
} CudaStepWork;
// *w: the last step's work; *uploaded: frame bytes sent in all. Either may be NULL.
void backend_cuda_step_work(Backend *b, CudaStepWork *w, long long *uploaded);

// Extras beyond the Backend table, for CUDA-GL interop:
// Sample i of the last forward/step as RGBA8 into device memory (rows pitch_bytes
// apart), e.g. a PBO mapped through CUDA-GL interop, without a trip through the
// host. Enqueued on the backend's stream and not waited for: unmap the resource
// on backend_cuda_stream(b) (a non-blocking stream: stream 0 does not order with
// it) before GL reads it.
void backend_cuda_output_rgba(Backend *b, int i, void *dev_rgba, size_t pitch_bytes);
// Activation `act` of sample 0 of the last pass (what get_activation reads) drawn
// as the layer atlas's tiles (tiles_draw_cuda, ops.h's TileGeom; act n_layers
// with g->image: the reconstruction as a picture) into device memory, rows
// pitch_bytes apart (a multiple of 4); dev_lut: the 256 RGB colours in device
// memory. On the backend's stream, not waited for, as backend_cuda_output_rgba.
void backend_cuda_atlas_rgba(Backend *b, int act, const TileGeom *g, const uint8_t *dev_lut, void *dev_rgba,
                             size_t pitch_bytes);
// The stream all of the backend's work runs on (a cudaStream_t). These three
// extras make the backend's device current (b->device) before they return or
// enqueue: the training thread comes to them from any channel's backend.
void *backend_cuda_stream(Backend *b);

#ifdef __cplusplus
}
#endif
