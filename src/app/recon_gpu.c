// recon_gpu.c: the reconstruction on the GPU to the screen (see recon_gpu.h).
// First the hand-over between the two threads, which is the same for every
// device (CUDA-GL here, a host stand-in in tests); then the CUDA-GL device,
// compiled only when the build has the CUDA backend.
#include "recon_gpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ReconGpu {
    const ReconDev *ops;
    void *dev;
    pthread_mutex_t mu;
    int ready;    // newest written buffer, -1 none (guarded by mu)
    int reading;  // buffer the main thread is showing, -1 none (mu)
    unsigned long produced, consumed;  // (mu)
    int ok;        // 1 while interop works; both threads read it (__atomic)
    long fail_at;  // TABULA_INJECT_INTEROP_FAIL=N: the Nth show fails (0 = never)
    long shows;    // shows tried (main thread)
    const char *what;  // what goes through it, for the log line
};

ReconGpu *recon_gpu_open(const ReconDev *ops, void *dev) {
    ReconGpu *r = tb_calloc(1, sizeof *r);
    r->ops = ops;
    r->dev = dev;
    r->ready = r->reading = -1;
    r->ok = 1;
    r->what = "reconstructions";
    const char *inj = getenv("TABULA_INJECT_INTEROP_FAIL");
    r->fail_at = inj ? atol(inj) : 0;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

int recon_gpu_ok(ReconGpu *r) { return r && __atomic_load_n(&r->ok, __ATOMIC_ACQUIRE); }

int recon_gpu_route(ReconGpu *r, float smooth_out) { return recon_gpu_ok(r) && smooth_out <= 0; }

// Interop off for good, said once; both threads see it through ok.
static void recon_off(ReconGpu *r, const char *why) {
    if (__atomic_exchange_n(&r->ok, 0, __ATOMIC_ACQ_REL))
        tb_log("CUDA-GL interop: %s: %s go through host memory from now on", why, r->what);
}

void recon_gpu_set_what(ReconGpu *r, const char *what) { r->what = what; }

void recon_gpu_produce(ReconGpu *r) {
    if (!recon_gpu_ok(r)) return;
    // A buffer that is neither the newest published nor being shown.
    pthread_mutex_lock(&r->mu);
    int newest = r->ready, k = 0;
    while (k == r->ready || k == r->reading) k++;
    pthread_mutex_unlock(&r->mu);
    // The GPU is still writing the newest: the screen cannot show this one
    // before it, and queueing more behind it could leave no buffer finished
    // whenever the main thread looks. One in flight at most.
    int done = newest >= 0 ? r->ops->written(r->dev, newest) : 1;
    if (done < 0) recon_off(r, "a staging buffer's event failed");
    if (done <= 0) return;
    r->ops->write(r->dev, k);
    pthread_mutex_lock(&r->mu);
    r->ready = k;
    r->produced++;
    pthread_mutex_unlock(&r->mu);
}

int recon_gpu_consume(ReconGpu *r) {
    if (!recon_gpu_ok(r)) return -1;
    pthread_mutex_lock(&r->mu);
    int k = r->ready;
    unsigned long seq = r->produced;
    int fresh = k >= 0 && seq != r->consumed;
    if (fresh) r->reading = k;
    pthread_mutex_unlock(&r->mu);
    if (!fresh) return 0;
    // Nothing is mapped before the buffer is written, so this thread never
    // waits for the training step behind it.
    TbErr err = {{0}};
    int rc = r->ops->written(r->dev, k);
    if (rc < 0) {
        tb_fail(&err, "a staging buffer's event failed");
    } else if (rc > 0 && r->fail_at > 0 && ++r->shows >= r->fail_at) {
        tb_fail(&err, "injected failure (TABULA_INJECT_INTEROP_FAIL=%ld)", r->fail_at);
        rc = -1;
    } else if (rc > 0 && r->ops->show(r->dev, k, &err)) {
        rc = -1;
    }
    pthread_mutex_lock(&r->mu);
    r->reading = -1;
    if (rc > 0) r->consumed = seq;
    pthread_mutex_unlock(&r->mu);
    if (rc < 0) recon_off(r, err.msg);
    return rc;
}

void recon_gpu_destroy(ReconGpu *r) {
    if (!r) return;
    if (r->ops->destroy) r->ops->destroy(r->dev);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

#ifndef TABULA_HAVE_CUDA

ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err) {
    tb_fail(err, "no CUDA in this build");
    return NULL;
}

#else

#include <GL/glew.h>
#include <cuda_gl_interop.h>
#include <cuda_runtime.h>

#include "backend_cuda.h"
#include "cuda_common.h"

// The CUDA-GL device: three RGBA8 staging buffers written on the backend's
// stream, copied into the display's pixel buffer on a stream of the main thread.
typedef struct {
    Backend *be;
    Display *d;
    int w, h;
    cudaStream_t stream;  // the main thread's copies
    void *stage[3];       // RGBA8 w*h*4 each, written on the backend's stream
    cudaEvent_t written[3], copied[3];
    unsigned pbo;
    struct cudaGraphicsResource *res;
} GlDev;

static void gl_write(void *p, int k) {
    GlDev *g = p;
    cudaStream_t s = (cudaStream_t)backend_cuda_stream(g->be);
    // The GPU (not this thread) waits until the main thread's last copy out of k is done.
    cudaCheck(cudaStreamWaitEvent(s, g->copied[k], 0));
    backend_cuda_output_rgba(g->be, 0, g->stage[k], (size_t)g->w * 4);
    cudaCheck(cudaEventRecord(g->written[k], s));
}

static int gl_written(void *p, int k) {
    GlDev *g = p;
    cudaError_t e = cudaEventQuery(g->written[k]);
    if (e == cudaSuccess) return 1;
    // Not ready is no error: leave nothing behind for the next launch check.
    (void)cudaGetLastError();
    return e == cudaErrorNotReady ? 0 : -1;
}

// One call of a sequence, skipped after the first failure, which it names.
#define STEP(call)                                                  \
    do {                                                            \
        if (e == cudaSuccess && (e = (call)) != cudaSuccess) what = #call; \
    } while (0)

// The map, the copy and the unmap may each fail where the GL or the driver
// cannot share the buffer: an environment problem, reported, never fatal.
static int gl_show(void *p, int k, TbErr *err) {
    GlDev *g = p;
    void *dst = NULL;
    size_t bytes = 0, need = (size_t)g->w * g->h * 4;
    cudaError_t e = cudaSuccess;
    const char *what = "";
    STEP(cudaSetDevice(g->be->device));  // g->stream's; a thunk on this thread may have left another
    STEP(cudaGraphicsMapResources(1, &g->res, g->stream));
    if (e == cudaSuccess) {
        STEP(cudaGraphicsResourceGetMappedPointer(&dst, &bytes, g->res));
        if (e == cudaSuccess && bytes < need)
            e = cudaErrorInvalidValue, what = "the mapped pixel buffer is too small";
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
    display_recon_from_pbo(g->d);
    return 0;
}

static void gl_destroy(void *p) {
    GlDev *g = p;
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
    free(g);
}

// A failing CUDA call here is an environment problem (driver, GL vendor), not a
// bug: say it once and let the caller fall back.
#define TRY(call)                                                                    \
    do {                                                                             \
        cudaError_t e_ = (call);                                                     \
        if (e_ != cudaSuccess) {                                                     \
            (void)cudaGetLastError();                                                \
            tb_fail(err, "CUDA-GL interop: %s: %s", #call, cudaGetErrorString(e_));  \
            goto fail;                                                               \
        }                                                                            \
    } while (0)

ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err) {
    static const ReconDev ops = {gl_write, gl_written, gl_show, gl_destroy};
    if (!be || strcmp(be->name, "cuda") != 0) {
        tb_fail(err, "not the CUDA backend");
        return NULL;
    }
    GlDev *g = tb_calloc(1, sizeof *g);
    g->be = be;
    g->d = d;
    g->w = w;
    g->h = h;
    g->pbo = display_recon_pbo(d, w, h);
    if (!g->pbo) {
        tb_fail(err, "CUDA-GL interop: no pixel buffer");
        goto fail;
    }
    // On channel 0's device: making the channels' backends (on this thread)
    // may have left another one current.
    TRY(cudaSetDevice(be->device));
    TRY(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    for (int i = 0; i < 3; i++) {
        TRY(cudaMalloc(&g->stage[i], (size_t)w * h * 4));
        TRY(cudaEventCreateWithFlags(&g->written[i], cudaEventDisableTiming));
        TRY(cudaEventCreateWithFlags(&g->copied[i], cudaEventDisableTiming));
        TRY(cudaEventRecord(g->copied[i], g->stream));  // free at start
    }
    // Needs the GL context current and a GL from the same vendor as the GPU.
    TRY(cudaGraphicsGLRegisterBuffer(&g->res, g->pbo, cudaGraphicsRegisterFlagsWriteDiscard));
    return recon_gpu_open(&ops, g);
fail:
    gl_destroy(g);
    return NULL;
}

#endif
