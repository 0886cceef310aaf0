// atlas_feed.c: the atlas between the threads (live.h): the training thread
// draws the picture after a frame, only while the window shows the atlas, from
// host copies of the activations (atlas.c) or, on CUDA with interop, on the
// GPU (atlas_gpu.h); the main thread puts the newest on the screen.
#include <string.h>

#include "atlas.h"
#include "live.h"

struct AtlasFeed {
    float *acts, *scratch;  // every activation of sample 0 (host path); the solo code
    float *code;            // the bottleneck's code (GPU path, while a channel is solo)
    uint8_t *pic, *solo;    // the picture being drawn (host path); the solo view
};

static AtlasFeed *atlas_feed_new(const Model *m) {
    AtlasFeed *f = tb_calloc(1, sizeof *f);
    size_t code = m->act_n[model_bottleneck_act(m)];
    f->scratch = tb_malloc(code * sizeof(float));
    f->code = tb_malloc(code * sizeof(float));
    f->solo = tb_malloc((size_t)m->spec.width * m->spec.height * 3);
    return f;
}

void atlas_feed_free(AtlasFeed *f) {
    if (!f) return;
    free(f->acts), free(f->scratch), free(f->code), free(f->pic), free(f->solo);
    free(f);
}

// The host path: read every activation, draw, hand the picture over by swapping.
static void feed_host(App *a, AtlasFeed *f, int focus, int solo, int c, int n) {
    Trainer *t = &a->run.t;
    const Model *m = &t->model;
    if (!f->acts) {  // the GPU path never needs these (tens of MB at 1280x720)
        f->acts = tb_malloc(m->act_total * sizeof(float));
        f->pic = tb_calloc(atlas_max_bytes(m), 1);
    }
    atlas_read(t->be, m, f->acts);
    if (solo) atlas_solo(t->be, m, f->acts + m->act_off[model_bottleneck_act(m)], c, n, f->scratch, f->solo);
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h;
    atlas_geometry(m, focus, solo, b, &w, &h);
    atlas_draw(m, focus, f->acts, solo ? f->solo : NULL, f->pic);
    pthread_mutex_lock(&a->mu);
    uint8_t *mid = a->atlas_mid;
    a->atlas_mid = f->pic;
    f->pic = mid;
    a->atlas_w = w, a->atlas_h = h;
    a->atlas_on_gpu = 0;
    a->atlas_seq++;
    pthread_mutex_unlock(&a->mu);
}

// The GPU path (atlas_gpu.h): only the bottleneck's code comes to the host, and
// only while a channel is solo (the decoder's input).
static void feed_gpu(App *a, ReconGpu *ag, AtlasFeed *f, int focus, int solo, int c, int n) {
    Trainer *t = &a->run.t;
    const Model *m = &t->model;
    int nb = model_bottleneck_act(m);
    if (solo) {
        t->be->get_activation(t->be, nb, f->code);
        atlas_solo(t->be, m, f->code, c, n, f->scratch, f->solo);
    }
    a->ag_want = (AtlasWant){focus, solo ? f->solo : NULL};
    recon_gpu_produce(ag);
    pthread_mutex_lock(&a->mu);
    a->atlas_on_gpu = 1;
    a->atlas_seq++;
    pthread_mutex_unlock(&a->mu);
}

void atlas_feed(App *a, AtlasFeed **fp) {
    pthread_mutex_lock(&a->mu);
    int on = a->atlas_on && a->atlas_mid, focus = a->atlas_focus, solo = a->atlas_solo, solo_n = a->atlas_solo_n;
    ReconGpu *ag = a->ag;  // set before atlas_on (atlas_show): never used before it exists
    pthread_mutex_unlock(&a->mu);
    Trainer *t = &a->run.t;
    if (!on || !t->last_batch) return;  // not shown, or no pass yet to read
    if (!*fp) *fp = atlas_feed_new(&t->model);  // on first use: a window that never shows it pays nothing
    // Once interop has failed recon_gpu_ok says 0 for good: the host path from then on.
    if (recon_gpu_ok(ag)) feed_gpu(a, ag, *fp, focus, solo >= 0, solo, solo_n);
    else feed_host(a, *fp, focus, solo >= 0, solo, solo_n);
}

// Main thread (GL context current), the first time the atlas is shown: the
// GPU path's device (ag_make: tried once), published under mu before the
// training thread is told the atlas is on. If it cannot be made, the atlas
// goes through host memory, as when interop fails later.
static void atlas_gpu_first(App *a, Display *d) {
    ReconGpu *(*make)(Backend *, Display *, const Model *, const AtlasWant *, TbErr *) = a->ag_make;
    a->ag_make = NULL;
    TbErr err = {{0}};
    Trainer *t = &a->run.t;
    ReconGpu *ag = make(t->be, d, &t->model, &a->ag_want, &err);
    if (!ag) tb_log("%s: the layer atlas goes through host memory", err.msg);
    pthread_mutex_lock(&a->mu);
    a->ag = ag;
    pthread_mutex_unlock(&a->mu);
}

void atlas_show(App *a, Display *d, int on, uint64_t *seen) {
    if (on && a->ag_make) atlas_gpu_first(a, d);  // outside mu: it allocates on the device
    pthread_mutex_lock(&a->mu);
    if (on && !a->atlas_mid) {  // first shown: the two buffers this side swaps
        size_t n = atlas_max_bytes(&a->run.t.model);
        a->atlas_mid = tb_calloc(n, 1);
        a->atlas_show = tb_calloc(n, 1);
    }
    a->atlas_on = on;
    uint64_t seq = a->atlas_seq;
    int fresh = seq != *seen, on_gpu = a->atlas_on_gpu, w = a->atlas_w, h = a->atlas_h;
    ReconGpu *ag = a->ag;
    if (fresh && !on_gpu) {
        uint8_t *mid = a->atlas_mid;
        a->atlas_mid = a->atlas_show;
        a->atlas_show = mid;
    }
    pthread_mutex_unlock(&a->mu);
    if (!fresh) return;
    // Outside mu: an upload takes a while, and a map can wait on the driver.
    if (on_gpu && recon_gpu_consume(ag) == 0) return;  // not written yet: the screen keeps the last, try next turn
    if (!on_gpu) display_set_atlas(d, a->atlas_show, w, h);
    *seen = seq;  // (-1 from consume: interop is off; the next picture comes through the host)
}
