// stage_stub.h: a host stand-in for gl_stage.h's CUDA-GL device, for the tests
// that run the two threads' hand-over on the CPU backend (test_recon_fallback.c:
// the reconstruction; test_atlas_gpu.c: the layer atlas). Three RGBA8 pictures
// in host memory: write (training thread) fills one from the test's draw, as
// the backend's kernels fill a staging buffer; show (main thread) puts one into
// the display's real pixel buffer and the test's from_pbo puts that on the
// texture, as the CUDA copy and the display do. A buffer is unfinished
// (written says 0) while `gate` is 0, as a GPU still running the step, and,
// with `first_look`, once at its first look after each write, as a GPU still
// drawing. Also what both tests give the training thread: the frames.
#pragma once
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <GL/glew.h>

#include "app_rig.h"
#include "live.h"
#include "test.h"

typedef struct StageStub StageStub;
struct StageStub {
    App *a;
    unsigned pbo;
    // Training thread: the next picture, RGB8, into rgb; its size in *w, *h.
    void (*draw)(StageStub *s, uint8_t *rgb, int *w, int *h);
    // Main thread: the w x h picture is in the pixel buffer: onto the texture.
    void (*from_pbo)(int w, int h);
    uint8_t *stage[3], *rgb, *shown;  // shown: RGB8 copy of the last picture put on the texture
    int w[3], h[3], shown_w, shown_h;
    int gate;                   // 1: writes may finish (atomic)
    int first_look;             // each write is unfinished at its first look
    int pending[3];             // (atomic)
    long writes, shows, waits;  // waits: looks at unfinished buffers (atomic)
    long shown_under_lock;      // show found the app's lock held by its own thread
};

// Buffers for pictures of up to `rgb_bytes` (RGB8).
static inline void stage_stub_alloc(StageStub *s, size_t rgb_bytes) {
    for (int k = 0; k < 3; k++) s->stage[k] = tb_malloc(rgb_bytes / 3 * 4);
    s->rgb = tb_malloc(rgb_bytes), s->shown = tb_malloc(rgb_bytes);
}

static inline void stage_stub_free(StageStub *s) {
    for (int k = 0; k < 3; k++) free(s->stage[k]);
    free(s->rgb), free(s->shown);
}

static void stage_stub_write(void *p, int k) {
    StageStub *s = p;
    s->draw(s, s->rgb, &s->w[k], &s->h[k]);
    for (int i = 0; i < s->w[k] * s->h[k]; i++) memcpy(&s->stage[k][4 * i], &s->rgb[3 * i], 3), s->stage[k][4 * i + 3] = 255;
    __atomic_store_n(&s->pending[k], s->first_look, __ATOMIC_RELEASE);
    __atomic_add_fetch(&s->writes, 1, __ATOMIC_ACQ_REL);
}

static int stage_stub_written(void *p, int k) {
    StageStub *s = p;
    if (!__atomic_load_n(&s->gate, __ATOMIC_ACQUIRE)) return 0;
    if (!__atomic_exchange_n(&s->pending[k], 0, __ATOMIC_ACQ_REL)) return 1;
    __atomic_add_fetch(&s->waits, 1, __ATOMIC_ACQ_REL);
    return 0;
}

static int stage_stub_show(void *p, int k, TbErr *err) {
    StageStub *s = p;
    // The app's mutex is an error-checking one (app_rig_open): locking it again
    // from the thread that holds it says so instead of deadlocking.
    int rc = pthread_mutex_lock(&s->a->mu);
    if (rc == EDEADLK) s->shown_under_lock++;
    else if (rc == 0) pthread_mutex_unlock(&s->a->mu);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, s->pbo);
    glBufferSubData(GL_PIXEL_UNPACK_BUFFER, 0, (GLsizeiptr)s->w[k] * s->h[k] * 4, s->stage[k]);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    s->from_pbo(s->w[k], s->h[k]);
    for (int i = 0; i < s->w[k] * s->h[k]; i++) memcpy(&s->shown[3 * i], &s->stage[k][4 * i], 3);
    s->shown_w = s->w[k], s->shown_h = s->h[k];
    __atomic_add_fetch(&s->shows, 1, __ATOMIC_ACQ_REL);
    return 0;
}

static const ReconDev stage_stub_ops = {stage_stub_write, stage_stub_written, stage_stub_show, NULL};

// s as the device of open (recon_gpu_open, atlas_gpu_open), with the app's
// TABULA_INJECT_INTEROP_FAIL set to `inject` (NULL: unset) while it is made.
static inline ReconGpu *stage_stub_open(StageStub *s, const char *inject, ReconGpu *(*open)(const ReconDev *, void *)) {
    if (inject) setenv("TABULA_INJECT_INTEROP_FAIL", inject, 1);
    else unsetenv("TABULA_INJECT_INTEROP_FAIL");
    ReconGpu *r = open(&stage_stub_ops, s);
    unsetenv("TABULA_INJECT_INTEROP_FAIL");
    return r;
}

// ---------------------------------------------------------------- around it

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// A new w x h camera frame for the training thread, as app.c's hand_frame
// gives it: a pattern that moves with every frame (sx, sy: its steps across
// and down). The caller holds a->mu.
static inline void stage_frame(App *a, int w, int h, int sx, int sy) {
    long f = (long)a->in_seq;  // the frames handed so far
    for (int i = 0; i < w * h * 3; i++) a->in_rgb[i] = (uint8_t)((i % (w * 3)) * sx + f * 23 + (i / (w * 3)) * sy);
    a->in_w = w, a->in_h = h;
    a->in_seq++;
    a->in_arrival = tb_now();
    pthread_cond_signal(&a->cond);
}
