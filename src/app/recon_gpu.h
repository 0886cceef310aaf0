// recon_gpu.h: the reconstruction from the CUDA backend to the screen without a
// trip through host memory (CUDA-GL interop). The training thread writes each
// reconstruction as RGBA8 into one of three device staging buffers; the main
// thread (which owns the GL context) copies the newest finished one into the
// display's pixel buffer, mapped into CUDA, and the texture is updated from it
// on the GPU. Neither thread waits for the other or for the GPU: the main
// thread asks whether a buffer is written before it maps anything, and the
// training thread queues no new one while the newest is still being written.
//
// When interop fails (mapping the buffer, or TABULA_INJECT_INTEROP_FAIL=N, a
// test hook: the Nth show fails), it is off for good: recon_gpu_ok turns 0 for
// both threads and every later reconstruction goes through the host slot.
#pragma once
#include "backend.h"
#include "display.h"

typedef struct ReconGpu ReconGpu;

// Main thread, GL context current. NULL (with err) if the backend is not CUDA or
// interop is unavailable (e.g. Mesa's GL): the caller then uses the host path.
ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err);
// Either thread: 1 while reconstructions may go through r (0 for NULL, and for
// good once interop has failed).
int recon_gpu_ok(ReconGpu *r);
// Training thread: whether this frame's reconstruction stays on the GPU (1) or
// goes through run_output and the host slot (0): interop working and no output
// smoothing (which is done on the host).
int recon_gpu_route(ReconGpu *r, float smooth_out);
// Training thread, after a step or forward: queue sample 0's reconstruction
// (skipped while the newest queued one is still being written: the screen
// could not show this one before it anyway).
void recon_gpu_produce(ReconGpu *r);
// Main thread, without the app's lock (the driver may wait in a map): put the
// newest finished reconstruction on the texture. 1 if one was shown; 0 if
// there is none newer or it is not written yet (the screen keeps the previous
// one: try again next frame); -1 if interop is off (failed now or before).
int recon_gpu_consume(ReconGpu *r);
// Main thread, after the training thread has stopped.
void recon_gpu_destroy(ReconGpu *r);

// The device under the three buffers: CUDA-GL in the app (gl_stage.h, made by
// recon_gpu_create and atlas_gpu_create), a host stand-in in tests
// (tests/app/stage_stub.h), so the hand-over and the fallback are the same code.
typedef struct {
    // Training thread: queue the reconstruction into buffer k (does not wait).
    void (*write)(void *dev, int k);
    // Either thread: 1 when the last write into k has finished (or none was
    // made), 0 while it runs, -1 on an error.
    int (*written)(void *dev, int k);
    // Main thread: put buffer k (written) on the texture. 0, or -1 with err.
    int (*show)(void *dev, int k, TbErr *err);
    void (*destroy)(void *dev);
} ReconDev;
// A ReconGpu over dev (owned from now on: destroyed with it).
ReconGpu *recon_gpu_open(const ReconDev *ops, void *dev);
// What r's buffers carry, named in its one log line when interop fails
// ("reconstructions" unless set; a string that outlives r). The layer atlas
// (atlas_gpu.h) is the other user of the hand-over.
void recon_gpu_set_what(ReconGpu *r, const char *what);
