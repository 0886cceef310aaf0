// recon_gpu.c: CUDA-GL interop for the reconstruction (see recon_gpu.h).
// Compiled to stubs that always decline when the build has no CUDA backend.
#include "recon_gpu.h"

#ifndef TABULA_HAVE_CUDA

ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err) {
    tb_fail(err, "no CUDA in this build");
    return NULL;
}
void recon_gpu_produce(ReconGpu *r) {}
int recon_gpu_consume(ReconGpu *r) { return 0; }
void recon_gpu_destroy(ReconGpu *r) {}

#else

#include <GL/glew.h>
#include <cuda_gl_interop.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <string.h>

#include "backend_cuda.h"
#include "cuda_common.h"

// A failing CUDA call here is an environment problem (driver, GL vendor), not a
// bug: say it once and let the caller fall back.
#define TRY(call)                                                                    \
    do {                                                                             \
        cudaError_t e_ = (call);                                                     \
        if (e_ != cudaSuccess) {                                                     \
            tb_fail(err, "CUDA-GL interop: %s: %s", #call, cudaGetErrorString(e_));  \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

struct ReconGpu {
    Backend *be;
    Display *d;
    int w, h;
    cudaStream_t stream;  // the main thread's copies
    void *stage[3];       // RGBA8 w*h*4 each, written on the backend's stream
    cudaEvent_t written[3], copied[3];
    unsigned pbo;
    struct cudaGraphicsResource *res;
    pthread_mutex_t mu;
    int ready;    // newest written buffer, -1 none (guarded by mu)
    int reading;  // buffer the main thread is copying from, -1 none
    int last;     // buffer last written by the training thread
    unsigned long produced, consumed;
    int failed;
};

ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err) {
    if (!be || strcmp(be->name, "cuda") != 0) {
        tb_fail(err, "not the CUDA backend");
        return NULL;
    }
    ReconGpu *r = tb_calloc(1, sizeof *r);
    r->be = be;
    r->d = d;
    r->w = w;
    r->h = h;
    r->ready = r->reading = r->last = -1;
    pthread_mutex_init(&r->mu, NULL);
    r->pbo = display_recon_pbo(d, w, h);
    if (!r->pbo) {
        tb_fail(err, "CUDA-GL interop: no pixel buffer");
        goto fail;
    }
    TRY(cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking));
    for (int i = 0; i < 3; i++) {
        TRY(cudaMalloc(&r->stage[i], (size_t)w * h * 4));
        TRY(cudaEventCreateWithFlags(&r->written[i], cudaEventDisableTiming));
        TRY(cudaEventCreateWithFlags(&r->copied[i], cudaEventDisableTiming));
        TRY(cudaEventRecord(r->copied[i], r->stream));  // free at start
    }
    // Needs the GL context current and a GL from the same vendor as the GPU.
    TRY(cudaGraphicsGLRegisterBuffer(&r->res, r->pbo, cudaGraphicsRegisterFlagsWriteDiscard));
    return r;
fail:
    recon_gpu_destroy(r);
    return NULL;
}

void recon_gpu_produce(ReconGpu *r) {
    if (r->failed) return;
    // A buffer that is neither the newest published nor being read.
    pthread_mutex_lock(&r->mu);
    int k = 0;
    while (k == r->ready || k == r->reading) k++;
    pthread_mutex_unlock(&r->mu);
    cudaStream_t s = (cudaStream_t)backend_cuda_stream(r->be);
    // The GPU (not this thread) waits until the main thread's last copy out of k is done.
    cudaCheck(cudaStreamWaitEvent(s, r->copied[k], 0));
    backend_cuda_output_rgba(r->be, 0, r->stage[k], (size_t)r->w * 4);
    cudaCheck(cudaEventRecord(r->written[k], s));
    pthread_mutex_lock(&r->mu);
    r->ready = k;
    r->produced++;
    pthread_mutex_unlock(&r->mu);
}

int recon_gpu_consume(ReconGpu *r) {
    if (r->failed) return 0;
    pthread_mutex_lock(&r->mu);
    int k = r->ready;
    int fresh = k >= 0 && r->produced != r->consumed;
    if (fresh) {
        r->reading = k;
        r->consumed = r->produced;
    }
    pthread_mutex_unlock(&r->mu);
    if (!fresh) return 0;
    void *dst = NULL;
    size_t bytes = 0;
    cudaError_t e;
    cudaCheck(cudaStreamWaitEvent(r->stream, r->written[k], 0));
    e = cudaGraphicsMapResources(1, &r->res, r->stream);
    if (e == cudaSuccess) {
        cudaCheck(cudaGraphicsResourceGetMappedPointer(&dst, &bytes, r->res));
        CHECK(bytes >= (size_t)r->w * r->h * 4, "pixel buffer of %zu bytes", bytes);
        cudaCheck(cudaMemcpyAsync(dst, r->stage[k], (size_t)r->w * r->h * 4, cudaMemcpyDeviceToDevice,
                                  r->stream));
        cudaCheck(cudaEventRecord(r->copied[k], r->stream));
        // Unmapping orders the copy before any GL work issued after it.
        cudaCheck(cudaGraphicsUnmapResources(1, &r->res, r->stream));
    } else {
        tb_log("CUDA-GL interop: map failed (%s): showing reconstructions through the host",
               cudaGetErrorString(e));
        r->failed = 1;
    }
    pthread_mutex_lock(&r->mu);
    r->reading = -1;
    pthread_mutex_unlock(&r->mu);
    if (r->failed) return 0;
    display_recon_from_pbo(r->d);
    return 1;
}

void recon_gpu_destroy(ReconGpu *r) {
    if (!r) return;
    if (r->stream) cudaStreamSynchronize(r->stream);
    if (r->res) cudaGraphicsUnregisterResource(r->res);
    for (int i = 0; i < 3; i++) {
        if (r->stage[i]) cudaFree(r->stage[i]);
        if (r->written[i]) cudaEventDestroy(r->written[i]);
        if (r->copied[i]) cudaEventDestroy(r->copied[i]);
    }
    if (r->stream) cudaStreamDestroy(r->stream);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

#endif
