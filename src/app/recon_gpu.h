// recon_gpu.h: the reconstruction from the CUDA backend to the screen without a
// trip through host memory (CUDA-GL interop). The training thread writes each
// reconstruction as RGBA8 into one of three device staging buffers; the main
// thread (which owns the GL context) copies the newest one into the display's
// pixel buffer, mapped into CUDA, and the texture is updated from it on the GPU.
// Neither thread waits for the other: the GPU orders the copies with events.
#pragma once
#include "backend.h"
#include "display.h"

typedef struct ReconGpu ReconGpu;

// Main thread, GL context current. NULL (with err) if the backend is not CUDA or
// interop is unavailable (e.g. Mesa's GL): the caller then uses the host path.
ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err);
// Training thread, after a step or forward: queue sample 0's reconstruction.
void recon_gpu_produce(ReconGpu *r);
// Main thread: if a newer reconstruction was queued, put it on the texture. 1 if so.
int recon_gpu_consume(ReconGpu *r);
// Main thread, after the training thread has stopped.
void recon_gpu_destroy(ReconGpu *r);
