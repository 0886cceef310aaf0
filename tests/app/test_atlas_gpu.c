// test_atlas_gpu.c: why it exists: on the CUDA backend the layer atlas is drawn
// on the GPU and goes to the screen through its own pixel buffer (atlas_gpu.h),
// handed between the threads by recon_gpu's three buffers. A picture stuck in
// a buffer, a size lost on the way (the atlas changes size with the solo view
// and a focused layer), a texture that is not what was drawn, or an interop
// failure that leaves the atlas frozen would each go unseen without a GPU.
// None of that needs CUDA: the app's real training thread (train_thread_main,
// atlas_feed) and main-thread half (atlas_show) run on the CPU backend, with a
// host stand-in for the CUDA-GL device that draws the picture from the CPU
// backend's activations, marks each buffer unfinished at the first look (as a
// GPU still drawing), and puts it into the display's real atlas pixel buffer.
// The interop failure is the app's own switch, TABULA_INJECT_INTEROP_FAIL.
// Runs itself under xvfb-run when there is no DISPLAY.
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include <GL/glew.h>

#include "atlas.h"
#include "live.h"
#include "test.h"
#include "xvfb.h"

enum { W = 64, H = 64, SW = 960, SH = 540 };

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static Display *g_d;
static Display *window(void) {
    if (g_d) return g_d;
    DisplayOpts o = {.width = SW, .height = SH, .hidden = 1};
    TbErr err = {{0}};
    g_d = display_open(&o, &err);
    if (!g_d) {
        fprintf(stderr, "display_open under Xvfb: %s\n", err.msg);
        exit(1);
    }
    display_set_train_size(g_d, W, H);
    display_set_layout(g_d, DISPLAY_ATLAS);
    return g_d;
}

static int read_screen(uint8_t *img) {
    TbErr err = {{0}};
    int w, h;
    display_draw(window());
    return display_read_pixels(window(), img, (size_t)SW * SH * 3, &w, &h, &err) == 0 && w == SW && h == SH;
}

// ---------------------------------------------------------------- the stand-in device

// Three RGBA pictures in host memory, drawn (training thread) by the CPU
// atlas for the app's AtlasWant; each is unfinished at the first look.
typedef struct {
    App *a;
    unsigned pbo;
    uint8_t *stage[3], *rgb, *shown;  // shown: RGB8 copy of the last picture put on the texture
    float *acts;
    int w[3], h[3], shown_w, shown_h;
    int pending[3];            // atomic
    long writes, shows, waits;  // atomic
} Stub;

static void stub_write(void *p, int k) {
    Stub *s = p;
    const Model *m = &s->a->run.t.model;
    const AtlasWant *want = &s->a->ag_want;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    atlas_geometry(m, want->focus, want->solo != NULL, b, &s->w[k], &s->h[k]);
    atlas_read(s->a->run.t.be, m, s->acts);
    atlas_draw(m, want->focus, s->acts, want->solo, s->rgb);
    for (int i = 0; i < s->w[k] * s->h[k]; i++) memcpy(&s->stage[k][4 * i], &s->rgb[3 * i], 3), s->stage[k][4 * i + 3] = 255;
    __atomic_store_n(&s->pending[k], 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&s->writes, 1, __ATOMIC_ACQ_REL);
}

static int stub_written(void *p, int k) {
    Stub *s = p;
    if (!__atomic_exchange_n(&s->pending[k], 0, __ATOMIC_ACQ_REL)) return 1;
    __atomic_add_fetch(&s->waits, 1, __ATOMIC_ACQ_REL);
    return 0;
}

static int stub_show(void *p, int k, TbErr *err) {
    Stub *s = p;
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, s->pbo);
    glBufferSubData(GL_PIXEL_UNPACK_BUFFER, 0, (GLsizeiptr)s->w[k] * s->h[k] * 4, s->stage[k]);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    display_atlas_from_pbo(window(), s->w[k], s->h[k]);
    for (int i = 0; i < s->w[k] * s->h[k]; i++) memcpy(&s->shown[3 * i], &s->stage[k][4 * i], 3);
    s->shown_w = s->w[k], s->shown_h = s->h[k];
    __atomic_add_fetch(&s->shows, 1, __ATOMIC_ACQ_REL);
    return 0;
}

static const ReconDev stub_ops = {stub_write, stub_written, stub_show, NULL};

// ---------------------------------------------------------------- the app around it

typedef struct {
    Settings s;
    ControlQueue q;
    App a;
    Stub stub;
    long frames;
    uint64_t seen;
} Rig;

static int rig_open(Rig *r, const char *inject) {
    memset(r, 0, sizeof *r);
    settings_default(&r->s);
    r->s.width = W, r->s.height = H;
    r->s.autosave_minutes = 0;
    snprintf(r->s.channels, sizeof r->s.channels, "4,8");  // tiles large enough to see
    snprintf(r->s.backend, sizeof r->s.backend, "cpu");
    control_queue_init(&r->q);
    App *a = &r->a;
    a->s = &r->s;
    a->q = &r->q;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    TbErr err = {{0}};
    if (run_open(&a->run, &r->s, &r->q, &err)) {
        EXPECT(0, "run_open: %s", err.msg);
        return -1;
    }
    a->rec_rgb = tb_calloc(W * H, 3);
    a->net_rgb = tb_calloc(W * H, 3);
    a->in_rgb = tb_calloc(W * H, 3);
    a->in_cap = W * H * 3;
    a->atlas_focus = a->atlas_solo = -1;
    a->atlas_solo_n = 1;
    const Model *m = &a->run.t.model;
    size_t most = atlas_max_bytes(m);
    Stub *s = &r->stub;
    *s = (Stub){.a = a, .pbo = display_atlas_pbo(window(), most / 3 * 4)};
    EXPECT(s->pbo != 0, "no atlas pixel buffer");
    for (int k = 0; k < 3; k++) s->stage[k] = tb_malloc(most / 3 * 4);
    s->rgb = tb_malloc(most), s->shown = tb_malloc(most);
    s->acts = tb_malloc(m->act_total * sizeof(float));
    if (inject) setenv("TABULA_INJECT_INTEROP_FAIL", inject, 1);
    a->ag = atlas_gpu_open(&stub_ops, s);
    unsetenv("TABULA_INJECT_INTEROP_FAIL");
    atlas_show(a, window(), 1, &r->seen);  // the window shows the atlas
    CHECK(pthread_create(&a->thread, NULL, train_thread_main, a) == 0, "pthread_create");
    return 0;
}

static void rig_close(Rig *r) {
    App *a = &r->a;
    app_stop_training(a);
    recon_gpu_destroy(a->ag);
    run_close(&a->run);
    free(a->rec_rgb), free(a->net_rgb), free(a->in_rgb), free(a->atlas_mid), free(a->atlas_show);
    for (int k = 0; k < 3; k++) free(r->stub.stage[k]);
    free(r->stub.rgb), free(r->stub.shown), free(r->stub.acts);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    control_queue_destroy(&r->q);
}

// One frame to the training thread (a pattern that moves), then the main
// thread's turns until a picture is on the screen (up to 10 s). Returns 1 and
// whether it came through the GPU path in *gpu.
static int rig_step(Rig *r, int *gpu) {
    App *a = &r->a;
    pthread_mutex_lock(&a->mu);
    uint64_t before = a->atlas_seq;
    long f = r->frames++;
    for (int i = 0; i < W * H * 3; i++) a->in_rgb[i] = (uint8_t)((i % (W * 3)) * 3 + f * 23 + (i / (W * 3)) * 5);
    a->in_w = W, a->in_h = H;
    a->in_seq++;
    a->in_arrival = tb_now();
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&a->mu);
        uint64_t seq = a->atlas_seq;
        *gpu = a->atlas_on_gpu;
        pthread_mutex_unlock(&a->mu);
        if (seq > before) {
            atlas_show(a, window(), 1, &r->seen);
            if (r->seen == seq) return 1;  // else not written yet: the next turn shows it
        }
        sleep_ms(5);
    }
    return 0;
}

// Pixels of the screen that differ from the background and the gaps (tiles).
static long tile_pixels(const uint8_t *img) {
    long n = 0;
    for (int i = 0; i < SW * SH; i++) {
        const uint8_t *p = img + 3 * i;
        n += !(p[0] == p[1] && p[1] == p[2] && (p[0] == ATLAS_BG_RGB || p[0] == ATLAS_GAP_RGB || p[0] == 0));
    }
    return n;
}

// ---------------------------------------------------------------- cases

// Pictures go through the stand-in's buffers and the atlas pixel buffer, each
// shown a turn after it was looked at unfinished; the texture is exactly the
// picture drawn (the same screen as a host upload of it); the solo view and a
// focused layer change the picture's size, and the size comes along.
TEST_IMPL(pictures_through_the_pixel_buffer) {
    Rig r;
    if (rig_open(&r, NULL)) return;
    App *a = &r.a;
    const Model *m = &a->run.t.model;
    int gpu = 0, ok = 1, on_gpu = 0;
    for (int f = 0; f < 8 && ok; f++) ok = rig_step(&r, &gpu), on_gpu += ok && gpu;
    EXPECT(ok && on_gpu == 8, "%d of 8 pictures through the GPU path", on_gpu);
    long shows = __atomic_load_n(&r.stub.shows, __ATOMIC_ACQUIRE), waits = __atomic_load_n(&r.stub.waits, __ATOMIC_ACQUIRE);
    // Each frame's picture is looked at once unfinished (by the main thread,
    // or by the training thread, which then skips a frame): 8 shows measured.
    EXPECT(shows >= 6 && waits >= shows, "%ld shows, %ld looks at unfinished buffers", shows, waits);
    EXPECT(a->atlas_w == 0, "the host path drew a picture (%dx%d)", a->atlas_w, a->atlas_h);
    static uint8_t s1[SW * SH * 3], s2[SW * SH * 3];
    int aw, ah;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    atlas_geometry(m, -1, 0, b, &aw, &ah);
    EXPECT(r.stub.shown_w == aw && r.stub.shown_h == ah, "shown %dx%d, the atlas is %dx%d", r.stub.shown_w,
           r.stub.shown_h, aw, ah);
    ok = ok && read_screen(s1);
    display_set_atlas(window(), r.stub.shown, r.stub.shown_w, r.stub.shown_h);
    ok = ok && read_screen(s2);
    size_t diff = 0;
    for (size_t i = 0; i < sizeof s1; i++) diff += s1[i] != s2[i];
    long tiles = tile_pixels(s1);
    printf("through the pixel buffer: %ld shows, %ld tile pixels on the screen, %zu bytes differ from a host upload\n", shows,
           tiles, diff);
    EXPECT(ok && diff == 0, "the screen from the pixel buffer differs from the picture in %zu bytes", diff);
    // The 4, 8, 4 tiles of 32, 16 (bottleneck 2x: 16) and 32 px, scaled up to the
    // 960x540 window: 181503 pixels measured; an empty texture gives 0.
    EXPECT(tiles > 20000, "%ld tile pixels on the screen", tiles);
    // Solo: the picture grows by the solo view, and the texture with it.
    pthread_mutex_lock(&a->mu);
    a->atlas_solo = 0;
    pthread_mutex_unlock(&a->mu);
    for (int f = 0; f < 2 && ok; f++) ok = rig_step(&r, &gpu);
    atlas_geometry(m, -1, 1, b, &aw, &ah);
    EXPECT(ok && gpu && r.stub.shown_w == aw && r.stub.shown_h == ah, "solo: shown %dx%d, the atlas is %dx%d",
           r.stub.shown_w, r.stub.shown_h, aw, ah);
    pthread_mutex_lock(&a->mu);
    a->atlas_solo = -1, a->atlas_focus = 2;
    pthread_mutex_unlock(&a->mu);
    for (int f = 0; f < 2 && ok; f++) ok = rig_step(&r, &gpu);
    atlas_geometry(m, 2, 0, b, &aw, &ah);
    EXPECT(ok && gpu && r.stub.shown_w == aw && r.stub.shown_h == ah, "focus: shown %dx%d, the layer is %dx%d",
           r.stub.shown_w, r.stub.shown_h, aw, ah);
    EXPECT(recon_gpu_ok(a->ag) == 1, "interop turned off");
    rig_close(&r);
}

// TABULA_INJECT_INTEROP_FAIL=3: two pictures go through the pixel buffer, the
// third show fails; from then on the atlas is drawn on the host, keeps coming
// and keeps changing, and nothing more is written into the dead path.
TEST_IMPL(interop_failure_falls_back_to_host) {
    Rig r;
    if (rig_open(&r, "3")) return;
    App *a = &r.a;
    static uint8_t img[SW * SH * 3];
    int gpu = 1, host = 0, changed = 0, ok = 1;
    long last = -1;
    for (int f = 0; f < 40 && host < 6 && ok; f++) {
        ok = rig_step(&r, &gpu);
        if (!ok || gpu) continue;
        host++;
        ok = read_screen(img);
        long t = tile_pixels(img), sum = 0;
        for (size_t i = 0; i < sizeof img; i += 7) sum = sum * 31 + img[i];
        changed += sum != last;
        last = sum;
        EXPECT(t > 20000, "host picture %d: %ld tile pixels on the screen", host, t);
    }
    long shows = __atomic_load_n(&r.stub.shows, __ATOMIC_ACQUIRE), writes = __atomic_load_n(&r.stub.writes, __ATOMIC_ACQUIRE);
    printf("interop failure: %ld shows, %ld writes, then %d host pictures (%d changes)\n", shows, writes, host, changed);
    EXPECT(shows == 2, "%ld pictures through the pixel buffer, want 2 (the third failed)", shows);
    EXPECT(recon_gpu_ok(a->ag) == 0, "interop still on after the failure");
    EXPECT(ok && host >= 6, "only %d pictures through the host after the failure", host);
    EXPECT(changed >= 5, "the screen changed %d times in %d host pictures", changed, host);
    EXPECT(writes <= 4, "%ld writes into the dead interop path", writes);
    rig_close(&r);
}

int main(int argc, char **argv) {
    test_ensure_display();
    static const TestCase cases[] = {TEST_ENTRY(pictures_through_the_pixel_buffer),
                                     TEST_ENTRY(interop_failure_falls_back_to_host)};
    return test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
