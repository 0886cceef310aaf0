// recon_gpu.c: the reconstruction on the GPU to the screen (see recon_gpu.h).
// First the hand-over between the two threads, which is the same for every
// device (CUDA-GL, a host stand-in in tests); then the reconstruction's CUDA-GL
// device (gl_stage.c's, shared with the atlas), compiled only when the build
// has the CUDA backend.
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

#include "backend_cuda.h"
#include "gl_stage.h"

// The reconstruction on the shared CUDA-GL device (gl_stage.h): every picture
// the training size, drawn by the backend's output op.
typedef struct {
    int w, h;
} ReconSize;

static void recon_draw(void *p, Backend *be, uint8_t *dst, void *stream, int *w, int *h) {
    const ReconSize *c = p;
    backend_cuda_output_rgba(be, 0, dst, (size_t)c->w * 4);  // on the backend's stream
    *w = c->w, *h = c->h;
}

static void recon_shown(void *p, Display *d, int w, int h) { display_recon_from_pbo(d); }

ReconGpu *recon_gpu_create(Backend *be, Display *d, int w, int h, TbErr *err) {
    static const GlStageUser user = {recon_draw, recon_shown, free};
    if (!be || strcmp(be->name, "cuda") != 0) {
        tb_fail(err, "not the CUDA backend");
        return NULL;
    }
    unsigned pbo = display_recon_pbo(d, w, h);
    if (!pbo) {
        tb_fail(err, "CUDA-GL interop: no pixel buffer");
        return NULL;
    }
    ReconSize *c = tb_malloc(sizeof *c);
    c->w = w, c->h = h;
    GlStage *g = gl_stage_open(be, d, pbo, (size_t)w * h * 4, &user, c, err);
    return g ? recon_gpu_open(&gl_stage_dev, g) : NULL;
}

#endif
