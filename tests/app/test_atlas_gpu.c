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
// The device is made as the app makes it, through App.ag_make on the atlas's
// first show: a window that never shows the atlas must not pay for its
// buffers (tens of MB at 1280x720), and a device that cannot be made must
// leave the atlas on the host path.
// Runs itself under xvfb-run when there is no DISPLAY.
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "app_rig.h"
#include "atlas.h"
#include "live.h"
#include "stage_stub.h"
#include "test.h"
#include "xvfb.h"

enum { W = 64, H = 64, SW = 960, SH = 540 };

static Display *window(void) { return app_rig_window(SW, SH, W, H, DISPLAY_ATLAS); }

static int read_screen(uint8_t *img) {
    TbErr err = {{0}};
    int w, h;
    display_draw(window());
    return display_read_pixels(window(), img, (size_t)SW * SH * 3, &w, &h, &err) == 0 && w == SW && h == SH;
}

// ---------------------------------------------------------------- the stand-in device

// stage_stub.h's, drawing the CPU atlas for the app's AtlasWant from the CPU
// backend's activations into the display's atlas pixel buffer; each picture is
// unfinished at the first look.
static float *g_acts;  // the activations, read at each write (training thread)

static void atlas_stub_draw(StageStub *s, uint8_t *rgb, int *w, int *h) {
    const Model *m = &s->a->run.t.model;
    const AtlasWant *want = &s->a->ag_want;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    atlas_geometry(m, want->focus, want->solo != NULL, b, w, h);
    atlas_read(s->a->run.t.be, m, g_acts);
    atlas_draw(m, want->focus, g_acts, want->solo, rgb);
}

static void atlas_stub_from_pbo(int w, int h) { display_atlas_from_pbo(window(), w, h); }

// ---------------------------------------------------------------- the app around it

typedef struct {
    Settings s;
    ControlQueue q;
    App a;
    StageStub stub;
    uint64_t seen;
    const char *inject;  // TABULA_INJECT_INTEROP_FAIL for the device when it is made
    int make_fails;      // the maker reports that interop is unavailable
    long makes;          // calls of the maker (main thread)
} Rig;

static Rig *g_rig;  // the maker's (App.ag_make has the app's signature)

// The stand-in's atlas_gpu_create: its buffers are made here, not before.
static ReconGpu *stub_make(Backend *be, Display *d, const Model *m, const AtlasWant *want, TbErr *err) {
    Rig *r = g_rig;
    StageStub *s = &r->stub;
    r->makes++;
    EXPECT(be == r->a.run.t.be && d == window() && m == &r->a.run.t.model && want == &r->a.ag_want,
           "the maker got another backend, display, model or want");
    if (r->make_fails) {
        tb_fail(err, "stand-in: CUDA-GL interop unavailable");
        return NULL;
    }
    size_t most = atlas_max_bytes(m);
    s->pbo = display_atlas_pbo(d, most / 3 * 4);
    EXPECT(s->pbo != 0, "no atlas pixel buffer");
    stage_stub_alloc(s, most);
    g_acts = tb_malloc(m->act_total * sizeof(float));
    return stage_stub_open(s, r->inject, atlas_gpu_open);
}

// The rig with the training thread running; the window shows the atlas from
// the start when `shown`.
static int rig_open_as(Rig *r, const char *inject, int shown, int make_fails) {
    memset(r, 0, sizeof *r);
    app_rig_settings(&r->s, W, H, "4,8");  // tiles large enough to see
    App *a = &r->a;
    if (app_rig_open(a, &r->s, &r->q)) return -1;
    r->stub = (StageStub){.a = a, .draw = atlas_stub_draw, .from_pbo = atlas_stub_from_pbo, .gate = 1, .first_look = 1};
    r->inject = inject, r->make_fails = make_fails;
    g_rig = r;
    a->ag_make = stub_make;  // as app.c on the CUDA backend
    atlas_show(a, window(), shown, &r->seen);
    CHECK(pthread_create(&a->thread, NULL, train_thread_main, a) == 0, "pthread_create");
    return 0;
}

static int rig_open(Rig *r, const char *inject) { return rig_open_as(r, inject, 1, 0); }

static void rig_close(Rig *r) {
    App *a = &r->a;
    app_stop_training(a);
    recon_gpu_destroy(a->ag);
    stage_stub_free(&r->stub);
    free(g_acts), g_acts = NULL;
    app_rig_close(a, &r->q);
}

// One frame to the training thread (a pattern that moves).
static void rig_frame(Rig *r) { stage_frame(&r->a, W, H, 3, 5); }

// A frame, then the main thread's turns (atlas hidden) until the training
// thread has published its reconstruction, after its atlas_feed (up to 10 s).
static int rig_hidden_step(Rig *r) {
    App *a = &r->a;
    pthread_mutex_lock(&a->mu);
    uint64_t before = a->rec_seq;
    rig_frame(r);
    pthread_mutex_unlock(&a->mu);
    for (int i = 0; i < 2000; i++) {
        atlas_show(a, window(), 0, &r->seen);
        pthread_mutex_lock(&a->mu);
        uint64_t seq = a->rec_seq;
        pthread_mutex_unlock(&a->mu);
        if (seq > before) return 1;
        sleep_ms(5);
    }
    return 0;
}

// A frame, then the main thread's turns until a picture is on the screen (up
// to 10 s). Returns 1 and whether it came through the GPU path in *gpu.
static int rig_step(Rig *r, int *gpu) {
    App *a = &r->a;
    pthread_mutex_lock(&a->mu);
    uint64_t before = a->atlas_seq;
    rig_frame(r);
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
    unsigned long last = 0;  // a hash of the screen (unsigned: it wraps)
    for (int f = 0; f < 40 && host < 6 && ok; f++) {
        ok = rig_step(&r, &gpu);
        if (!ok || gpu) continue;
        host++;
        ok = read_screen(img);
        long t = tile_pixels(img);
        unsigned long sum = 1;
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

// The device is made on the atlas's first show, not before: frames trained
// while the window shows something else make nothing and draw no atlas; at
// the first show it is made once, before the training thread draws, and every
// picture goes through it; hiding and showing again makes no second one.
TEST_IMPL(made_at_first_show) {
    Rig r;
    if (rig_open_as(&r, NULL, 0, 0)) return;
    App *a = &r.a;
    int ok = 1, gpu = 0, on_gpu = 0;
    for (int f = 0; f < 3 && ok; f++) ok = rig_hidden_step(&r);
    pthread_mutex_lock(&a->mu);
    ReconGpu *ag = a->ag;
    uint64_t seq = a->atlas_seq;
    int bufs = a->atlas_mid != NULL;
    pthread_mutex_unlock(&a->mu);
    EXPECT(ok, "the training thread took no frame while the atlas was hidden");
    EXPECT(r.makes == 0 && ag == NULL && r.stub.stage[0] == NULL, "hidden: %ld makes, device %p", r.makes,
           (void *)ag);
    EXPECT(seq == 0 && !bufs, "hidden: %llu pictures drawn", (unsigned long long)seq);
    atlas_show(a, window(), 1, &r.seen);  // the first show
    EXPECT(r.makes == 1 && recon_gpu_ok(a->ag) == 1, "first show: %ld makes, interop %d", r.makes,
           recon_gpu_ok(a->ag));
    for (int f = 0; f < 4 && ok; f++) ok = rig_step(&r, &gpu), on_gpu += ok && gpu;
    EXPECT(ok && on_gpu == 4, "%d of 4 pictures through the GPU path after the first show", on_gpu);
    EXPECT(a->atlas_w == 0, "the host path drew a picture (%dx%d)", a->atlas_w, a->atlas_h);
    ok = ok && rig_hidden_step(&r);
    atlas_show(a, window(), 1, &r.seen);
    ok = ok && rig_step(&r, &gpu);
    EXPECT(ok && gpu && r.makes == 1, "shown again: %ld makes, GPU path %d", r.makes, gpu);
    printf("made at first show: %ld makes, %d pictures through it\n", r.makes, on_gpu);
    rig_close(&r);
}

// A device that cannot be made at the first show (no interop): tried once,
// and the atlas goes through host memory from the first picture on.
TEST_IMPL(make_failure_falls_back_to_host) {
    Rig r;
    if (rig_open_as(&r, NULL, 0, 1)) return;
    App *a = &r.a;
    int ok = rig_hidden_step(&r), gpu = 1, host = 0;
    EXPECT(ok && r.makes == 0, "hidden: %ld makes", r.makes);
    atlas_show(a, window(), 1, &r.seen);
    EXPECT(r.makes == 1 && a->ag == NULL, "first show: %ld makes, device %p", r.makes, (void *)a->ag);
    for (int f = 0; f < 4 && ok; f++) ok = rig_step(&r, &gpu), host += ok && !gpu;
    EXPECT(ok && host == 4, "%d of 4 pictures through the host after the device failed", host);
    EXPECT(r.makes == 1, "the device was tried %ld times", r.makes);
    int aw, ah;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    atlas_geometry(&a->run.t.model, -1, 0, b, &aw, &ah);
    EXPECT(a->atlas_w == aw && a->atlas_h == ah, "host picture %dx%d, the atlas is %dx%d", a->atlas_w,
           a->atlas_h, aw, ah);
    rig_close(&r);
}

int main(int argc, char **argv) {
    test_ensure_display();
    static const TestCase cases[] = {TEST_ENTRY(pictures_through_the_pixel_buffer),
                                     TEST_ENTRY(interop_failure_falls_back_to_host),
                                     TEST_ENTRY(made_at_first_show), TEST_ENTRY(make_failure_falls_back_to_host)};
    return test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
