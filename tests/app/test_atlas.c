// test_atlas.c: why it exists: the layer atlas is how a performer sees what
// each layer makes of the room. A tile lost or merged, a layer read in the
// wrong layout, a picture that stopped following the frames, or a solo view
// that showed the full reconstruction would each mislead without an error.
// So the real training thread (train_thread_main) runs on the CPU backend on
// frames of the hikers clip, the main thread's half (atlas_show) puts the
// atlas on a real window, and the checks count tiles and compare pixels in
// what is drawn (read back). The default network's picture is counted on the
// CPU (atlas_draw; its 1000-odd tiles are too small to count on a 960x540
// screen). Runs itself under xvfb-run when there is no DISPLAY; set
// TABULA_SHOT_DIR to keep the screenshots.
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "app_rig.h"
#include "atlas.h"
#include "clip_frame.h"
#include "live.h"
#include "test.h"
#include "xvfb.h"

enum { SW = 960, SH = 540, TW = 64, TH = 64 };

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// ---------------------------------------------------------------- counting tiles

// Tile pixels: neither a gap nor the background (neither is a colour of the map).
static int is_tile(const uint8_t *p) {
    int grey = p[0] == p[1] && p[1] == p[2];
    return !(grey && (p[0] == ATLAS_GAP_RGB || p[0] == ATLAS_BG_RGB));
}

// 4-connected regions of tile pixels inside (x0, y0, w, h) of a w_img-wide
// RGB picture; regions under `min_px` pixels are not counted (none were seen:
// a safety for a stray pixel of a scaled edge).
static int count_tiles(const uint8_t *img, int w_img, int x0, int y0, int w, int h, int min_px) {
    uint8_t *seen = tb_calloc((size_t)w * h, 1);
    int *stack = tb_malloc((size_t)w * h * sizeof(int)), n = 0;
    for (int i = 0; i < w * h; i++) {
        if (seen[i] || !is_tile(img + ((size_t)(y0 + i / w) * w_img + x0 + i % w) * 3)) continue;
        int top = 0, px = 0;
        stack[top++] = i;
        seen[i] = 1;
        while (top) {
            int j = stack[--top], x = j % w, y = j / w;
            px++;
            int nb[4] = {x > 0 ? j - 1 : -1, x < w - 1 ? j + 1 : -1, y > 0 ? j - w : -1, y < h - 1 ? j + w : -1};
            for (int k = 0; k < 4; k++)
                if (nb[k] >= 0 && !seen[nb[k]] &&
                    is_tile(img + ((size_t)(y0 + nb[k] / w) * w_img + x0 + nb[k] % w) * 3))
                    seen[nb[k]] = 1, stack[top++] = nb[k];
        }
        n += px >= min_px;
    }
    free(seen);
    free(stack);
    return n;
}

// The default network at 256x256 ("tabula-ae-v1": 32, 64, 128, 256 channels),
// drawn from random activations: one tile per channel in every layer's block.
TEST_IMPL(default_net_one_tile_per_channel) {
    Model m;
    TbErr err = {{0}};
    ModelSpec sp = model_spec_default(256, 256);
    EXPECT(model_build(&m, &sp, &err) == 0, "%s", err.msg);
    float *acts = tb_malloc(m.act_total * sizeof(float));
    TbRng rng;
    tb_rng_seed(&rng, 3);
    for (size_t i = 0; i < m.act_total; i++) acts[i] = tb_rng_normal(&rng);
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h, n = atlas_geometry(&m, -1, 0, b, &w, &h);
    uint8_t *pic = tb_malloc(atlas_max_bytes(&m));
    atlas_draw(&m, -1, acts, NULL, pic);
    static const int want[] = {32, 64, 128, 256, 128, 64, 32};
    EXPECT(n == 8, "%d blocks (7 layers and the reconstruction)", n);
    for (int k = 0; k < 7 && k < n; k++) {
        int c = count_tiles(pic, w, b[k].x, b[k].y, b[k].w, b[k].h, 1);
        EXPECT(b[k].ch == want[k] && c == want[k], "layer %d: %d tiles drawn, %d channels", b[k].act, c, want[k]);
    }
    EXPECT(b[3].tw == 2 * 16 && b[3].scale == ATLAS_BN_SCALE, "the bottleneck's tiles are %d px", b[3].tw);
    printf("default net: atlas %dx%d\n", w, h);
    // At 1920x1088 the large layers' tiles are shrunk: the picture stays a
    // texture any GL 3.3 device takes (8192): measured 5108x1879.
    ModelSpec big = model_spec_default(1920, 1088);
    Model mb;
    EXPECT(model_build(&mb, &big, &err) == 0, "%s", err.msg);
    int bw, bh;
    atlas_geometry(&mb, -1, 1, b, &bw, &bh);
    EXPECT(bw <= 8192 && bh <= 8192 && b[0].tw <= ATLAS_TILE_MAX, "1920x1088: atlas %dx%d, tiles %d px", bw, bh, b[0].tw);
    free(pic);
    free(acts);
}

// ---------------------------------------------------------------- the app around it

static Display *window(void) {
    test_ensure_display();
    return app_rig_window(SW, SH, TW, TH, DISPLAY_ATLAS);
}

// What app_run sets up for the two threads: the CPU backend, a small network
// (4 and 8 channels: every tile large enough to count on the screen).
typedef struct {
    Settings s;
    ControlQueue q;
    App a;
    long frames;
    uint64_t shown;
} Rig;

static int rig_open(Rig *r) {
    memset(r, 0, sizeof *r);
    app_rig_settings(&r->s, TW, TH, "4,8");
    r->s.steps_per_frame = 4;  // the scene's shapes within the test's 60 frames
    App *a = &r->a;
    if (app_rig_open(a, &r->s, &r->q)) return -1;
    atlas_show(a, window(), 1, &r->shown);  // the window shows the atlas: the training thread draws it
    CHECK(pthread_create(&a->thread, NULL, train_thread_main, a) == 0, "pthread_create");
    return 0;
}

static void rig_close(Rig *r) {
    app_stop_training(&r->a);
    app_rig_close(&r->a, &r->q);
}

// Frame k of the hikers clip to the training thread (as hand_frame does), and
// wait (up to 20 s) for the atlas drawn after it; then show and read it back
// into img (SW*SH*3). Returns 1 when a picture came.
static int rig_step(Rig *r, int k, uint8_t *img, const char *shot) {
    App *a = &r->a;
    int w, h;
    uint8_t *f = clip_y4m_frame(test_data("hikers_forest_320x240.y4m"), k, &w, &h);
    if (!f) return 0;
    pthread_mutex_lock(&a->mu);
    uint64_t before = a->atlas_seq;
    free(a->in_rgb);
    a->in_rgb = f, a->in_w = w, a->in_h = h, a->in_cap = (size_t)w * h * 3;
    a->in_seq++;
    a->in_arrival = tb_now();
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    int got = 0;
    for (int i = 0; i < 2000 && !got; i++) {
        pthread_mutex_lock(&a->mu);
        got = a->atlas_seq > before;
        pthread_mutex_unlock(&a->mu);
        if (!got) sleep_ms(10);
    }
    if (!got) return 0;
    Display *d = window();
    atlas_show(a, d, 1, &r->shown);
    display_draw(d);
    TbErr err = {{0}};
    int rw, rh;
    if (display_read_pixels(d, img, (size_t)SW * SH * 3, &rw, &rh, &err) || rw != SW || rh != SH) return 0;
    const char *dir = getenv("TABULA_SHOT_DIR");
    if (dir && shot) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.png", dir, shot);
        display_screenshot(d, path, &err);
    }
    return 1;
}

// Block k of the atlas as drawn: its rectangle on the screen (pixels whose
// centres fall inside it), from the pane and the picture's size.
static void block_on_screen(Display *d, const AtlasBlock *b, int aw, int ah, int out[4]) {
    int r[4];
    display_pane_rect(d, 0, r);
    double sx = (double)r[2] / aw, sy = (double)r[3] / ah;
    int x0 = r[0] + (int)ceil(b->x * sx - 0.5), x1 = r[0] + (int)ceil((b->x + b->w) * sx - 0.5);
    int y0 = r[1] + (int)ceil(b->y * sy - 0.5), y1 = r[1] + (int)ceil((b->y + b->h) * sy - 0.5);
    out[0] = x0, out[1] = y0, out[2] = x1 - x0, out[3] = y1 - y0;
}

static int skip_without_clip(void) {
    int w, h;
    uint8_t *f = clip_y4m_frame(test_data("hikers_forest_320x240.y4m"), 0, &w, &h);
    free(f);
    return f == NULL;
}

// Mean absolute difference of two screen rectangles of the same size.
static double rect_diff(const uint8_t *a, const int ra[4], const uint8_t *b, const int rb[4]) {
    double s = 0;
    int w = ra[2] < rb[2] ? ra[2] : rb[2], h = ra[3] < rb[3] ? ra[3] : rb[3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++)
            s += abs(a[((size_t)(ra[1] + y) * SW + ra[0]) * 3 + x] - b[((size_t)(rb[1] + y) * SW + rb[0]) * 3 + x]);
    return s / ((double)w * h * 3);
}

// The screen: one tile per channel in every layer (4, 8, 4), the bottleneck
// twice as large, and tiles that change from one frame to another.
TEST_IMPL(screen_tiles_counted_and_changing) {
    if (skip_without_clip()) TEST_SKIP_CASE("no clip at %s", test_data("hikers_forest_320x240.y4m"));
    Rig r;
    if (rig_open(&r)) return;
    static uint8_t s1[SW * SH * 3], s2[SW * SH * 3];
    int ok = 1;
    for (int k = 0; k < 20 && ok; k++) ok = rig_step(&r, k, s1, NULL);  // some learning first
    ok = ok && rig_step(&r, 20, s1, "atlas-frame20") && rig_step(&r, 120, s2, "atlas-frame120");
    EXPECT(ok, "no atlas picture came from the training thread");
    const Model *m = &r.a.run.t.model;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int aw, ah, n = atlas_geometry(m, -1, 0, b, &aw, &ah);
    static const int want[] = {4, 8, 4};
    EXPECT(n == 4, "%d blocks", n);
    for (int k = 0; k < 3 && ok; k++) {
        int sr[4];
        block_on_screen(window(), &b[k], aw, ah, sr);
        int c1 = count_tiles(s1, SW, sr[0], sr[1], sr[2], sr[3], 4), c2 = count_tiles(s2, SW, sr[0], sr[1], sr[2], sr[3], 4);
        EXPECT(c1 == want[k] && c2 == want[k], "layer %d: %d and %d tiles on the screen, %d channels", b[k].act, c1, c2,
               want[k]);
        // Frames 20 and 120 of the clip (the hikers far, then near): measured
        // mean differences of 19 to 27 levels per layer (the run is the same
        // every time: CPU backend, fixed frames); an atlas that stopped
        // following the frames gives 0.
        double dm = rect_diff(s1, sr, s2, sr);
        printf("layer %d: %d tiles, mean change %.1f levels\n", b[k].act, c1, dm);
        EXPECT(dm > 5, "layer %d: the tiles barely changed between frames (%.2f)", b[k].act, dm);
    }
    rig_close(&r);
}

// Solo: bottleneck channel 1 alone through the decoder is another picture than
// the reconstruction beside it, a group of every channel nearly the same one;
// one layer alone fills the pane with its tiles.
TEST_IMPL(solo_differs_and_one_layer_fills_the_pane) {
    if (skip_without_clip()) TEST_SKIP_CASE("no clip at %s", test_data("hikers_forest_320x240.y4m"));
    Rig r;
    if (rig_open(&r)) return;
    static uint8_t s[SW * SH * 3];
    int ok = 1;
    for (int k = 0; k < 60 && ok; k++) ok = rig_step(&r, k, s, NULL);
    pthread_mutex_lock(&r.a.mu);
    r.a.atlas_solo = 0;
    pthread_mutex_unlock(&r.a.mu);
    ok = ok && rig_step(&r, 60, s, "atlas-solo");
    EXPECT(ok, "no atlas picture came from the training thread");
    const Model *m = &r.a.run.t.model;
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int aw, ah, n = atlas_geometry(m, -1, 1, b, &aw, &ah);
    EXPECT(n == 5 && b[3].act == m->n_layers && b[4].act == -1, "blocks: %d", n);
    if (ok && n == 5) {
        int rr[4], rs[4];
        block_on_screen(window(), &b[3], aw, ah, rr);
        block_on_screen(window(), &b[4], aw, ah, rs);
        // Measured: the solo view differs from the reconstruction by 50 levels
        // on average; a solo that keeps every channel gives 2.7 (the decoder
        // has taken a step since the pass the reconstruction is from).
        double dm = rect_diff(s, rr, s, rs);
        printf("solo vs reconstruction: mean difference %.1f levels\n", dm);
        EXPECT(dm > 5, "the solo view is the reconstruction (%.2f)", dm);
    }
    // A group of all 8 channels: the decoder sees the whole code, so the solo
    // view is the reconstruction but for the step the decoder took since
    // (measured 2.7 levels, against 50 for one channel).
    pthread_mutex_lock(&r.a.mu);
    r.a.atlas_solo = 0, r.a.atlas_solo_n = 8;
    pthread_mutex_unlock(&r.a.mu);
    ok = ok && rig_step(&r, 61, s, "atlas-solo-all");
    if (ok && n == 5) {
        int rr[4], rs[4];
        block_on_screen(window(), &b[3], aw, ah, rr);
        block_on_screen(window(), &b[4], aw, ah, rs);
        double dm = rect_diff(s, rr, s, rs);
        printf("solo of every channel vs reconstruction: mean difference %.1f levels\n", dm);
        EXPECT(dm < 10, "a group of every channel is far from the reconstruction (%.2f)", dm);
    }
    // The bottleneck alone: its 8 tiles fill the pane.
    pthread_mutex_lock(&r.a.mu);
    r.a.atlas_solo = -1;
    r.a.atlas_focus = model_bottleneck_act(m);
    pthread_mutex_unlock(&r.a.mu);
    ok = ok && rig_step(&r, 62, s, "atlas-focus");
    int pr[4];
    display_pane_rect(window(), 0, pr);
    int c = ok ? count_tiles(s, SW, pr[0], pr[1], pr[2], pr[3], 4) : -1;
    n = atlas_geometry(m, model_bottleneck_act(m), 0, b, &aw, &ah);
    EXPECT(c == 8 && n == 1 && pr[3] == SH, "bottleneck alone: %d tiles, pane %dx%d", c, pr[2], pr[3]);
    rig_close(&r);
}

TEST_MAIN(TEST_ENTRY(default_net_one_tile_per_channel), TEST_ENTRY(screen_tiles_counted_and_changing),
          TEST_ENTRY(solo_differs_and_one_layer_fills_the_pane))
