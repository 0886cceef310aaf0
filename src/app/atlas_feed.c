// atlas_feed.c: the atlas between the threads (live.h): the training thread
// reads the activations and draws the picture after a frame, only while the
// window shows the atlas; the main thread puts the newest on the screen.
#include <string.h>

#include "atlas.h"
#include "live.h"

struct AtlasFeed {
    float *acts, *scratch;  // every activation of sample 0; the solo code
    uint8_t *pic, *solo;    // the picture being drawn; the solo view
};

static AtlasFeed *atlas_feed_new(const Model *m) {
    AtlasFeed *f = tb_calloc(1, sizeof *f);
    f->acts = tb_malloc(m->act_total * sizeof(float));
    f->scratch = tb_malloc(m->act_n[model_bottleneck_act(m)] * sizeof(float));
    f->pic = tb_calloc(atlas_max_bytes(m), 1);
    f->solo = tb_malloc((size_t)m->spec.width * m->spec.height * 3);
    return f;
}

void atlas_feed_free(AtlasFeed *f) {
    if (!f) return;
    free(f->acts), free(f->scratch), free(f->pic), free(f->solo);
    free(f);
}

void atlas_feed(App *a, AtlasFeed **fp) {
    pthread_mutex_lock(&a->mu);
    int on = a->atlas_on && a->atlas_mid, focus = a->atlas_focus, solo = a->atlas_solo, solo_n = a->atlas_solo_n;
    pthread_mutex_unlock(&a->mu);
    Trainer *t = &a->run.t;
    const Model *m = &t->model;
    if (!on || !t->last_batch) return;  // not shown, or no pass yet to read
    if (!*fp) *fp = atlas_feed_new(m);  // on first use: a window that never shows it pays nothing
    AtlasFeed *f = *fp;
    atlas_read(t->be, m, f->acts);
    if (solo >= 0) atlas_solo(t->be, m, f->acts + m->act_off[model_bottleneck_act(m)], solo, solo_n, f->scratch, f->solo);
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h;
    atlas_geometry(m, focus, solo >= 0, b, &w, &h);
    atlas_draw(m, focus, f->acts, solo >= 0 ? f->solo : NULL, f->pic);
    pthread_mutex_lock(&a->mu);
    uint8_t *mid = a->atlas_mid;
    a->atlas_mid = f->pic;
    f->pic = mid;
    a->atlas_w = w, a->atlas_h = h;
    a->atlas_seq++;
    pthread_mutex_unlock(&a->mu);
}

void atlas_show(App *a, Display *d, int on, uint64_t *seen) {
    pthread_mutex_lock(&a->mu);
    if (on && !a->atlas_mid) {  // first shown: the two buffers this side swaps
        size_t n = atlas_max_bytes(&a->run.t.model);
        a->atlas_mid = tb_calloc(n, 1);
        a->atlas_show = tb_calloc(n, 1);
    }
    a->atlas_on = on;
    int fresh = a->atlas_seq != *seen, w = a->atlas_w, h = a->atlas_h;
    if (fresh) {
        uint8_t *mid = a->atlas_mid;
        a->atlas_mid = a->atlas_show;
        a->atlas_show = mid;
        *seen = a->atlas_seq;
    }
    pthread_mutex_unlock(&a->mu);
    if (fresh) display_set_atlas(d, a->atlas_show, w, h);  // outside mu: an upload takes a while
}
