// test_display.c: why it exists: the window is what the user looks at: the
// camera next to what the network makes of it, the error between them, the
// HUD, status line and help. If a pane were misplaced, mirrored the wrong way,
// cropped differently from what the trainer sees, or a filter, the CUDA
// interop buffer, fullscreen or the key queue broke, the mirror would lie
// about what it learns, and nothing but a person watching would notice.
// So the window is drawn and read back, and every check compares real pixel
// values. Under no DISPLAY it runs itself again inside xvfb-run (Mesa
// llvmpipe); set TABULA_SHOT_DIR to keep the screenshots.
//
// The cases share one 960x540 window, opened by the first case that needs it
// (a second one cannot be opened in the same process); each case sets the
// layout and state it checks, so any of them also runs alone.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <GL/glew.h>
#include <GLFW/glfw3.h>

#include "display.h"
#include "frame_fit.h"
#include "hud.h"
#include "live.h"
#include "source.h"
#include "test.h"
#include "xvfb.h"

// A private copy of stb_image (static: the app library may carry its own).
// One of its static declarations is never defined, which GCC reports at the
// end of the file: -Wunused-function stays off for this test file.
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>

enum { W = 960, H = 540 };

// ---------------------------------------------------------------- helpers



static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    uint8_t *p;
    int w, h;
} Img;

static Img grab(Display *d) {
    static uint8_t *buf;
    static size_t cap;
    int fw, fh;
    display_size(d, &fw, &fh);
    size_t need = (size_t)fw * fh * 3;
    if (need > cap) {
        free(buf);
        buf = malloc(need);
        cap = need;
    }
    Img im = {buf, 0, 0};
    TbErr err = {{0}};
    int rc = display_read_pixels(d, buf, cap, &im.w, &im.h, &err);
    EXPECT(rc == 0, "display_read_pixels: %s", err.msg);
    return im;
}

static const uint8_t *px(const Img *im, int x, int y) {
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x >= im->w) x = im->w - 1;
    if (y >= im->h) y = im->h - 1;
    return im->p + ((size_t)y * im->w + x) * 3;
}

// Pixel at (u, v) of a pane rectangle.
static const uint8_t *pane_px(const Img *im, const int r[4], double u, double v) {
    return px(im, r[0] + (int)(u * r[2]), r[1] + (int)(v * r[3]));
}

#define EXPECT_RGB(p, R, G, B, tol, what)                                                   \
    do {                                                                                    \
        const uint8_t *p_ = (p);                                                            \
        EXPECT(abs(p_[0] - (R)) <= (tol) && abs(p_[1] - (G)) <= (tol) &&                   \
                   abs(p_[2] - (B)) <= (tol),                                               \
               "%s: got (%d,%d,%d), want (%d,%d,%d) +-%d", what, p_[0], p_[1], p_[2], (R), \
               (G), (B), (tol));                                                            \
    } while (0)

#define EXPECT_BLACK(p, what) EXPECT_RGB(p, 0, 0, 0, 3, what)

// Pixels in a rectangle whose three channels all exceed `level`.
static int count_light(const Img *im, int x0, int y0, int w, int h, int level) {
    int n = 0;
    for (int y = y0; y < y0 + h && y < im->h; y++)
        for (int x = x0; x < x0 + w && x < im->w; x++) {
            const uint8_t *p = px(im, x, y);
            n += p[0] > level && p[1] > level && p[2] > level;
        }
    return n;
}

static int max_channel(const Img *im, const int r[4]) {
    int m = 0;
    for (int y = r[1]; y < r[1] + r[3]; y++)
        for (int x = r[0]; x < r[0] + r[2]; x++)
            for (int c = 0; c < 3; c++)
                if (px(im, x, y)[c] > m) m = px(im, x, y)[c];
    return m;
}

static void draw_n(Display *d, int n) {
    for (int i = 0; i < n; i++) display_draw(d);
}

// Keep a screenshot when TABULA_SHOT_DIR is set; always check that the PNG
// decodes to exactly the pixels glReadPixels gave.
static char g_tmpdir[256];
static void shot(Display *d, const char *name) {
    char path[1024];
    const char *dir = getenv("TABULA_SHOT_DIR");
    snprintf(path, sizeof path, "%s/%s.png", dir && dir[0] ? dir : g_tmpdir, name);
    TbErr err = {{0}};
    int rc = display_screenshot(d, path, &err);
    EXPECT(rc == 0, "screenshot %s: %s", path, err.msg);
    if (rc != 0) return;
    int w, h, c;
    uint8_t *png = stbi_load(path, &w, &h, &c, 3);
    EXPECT(png != NULL, "%s does not decode: %s", path, stbi_failure_reason());
    if (!png) return;
    Img im = grab(d);
    EXPECT(w == im.w && h == im.h, "%s is %dx%d, the window %dx%d", path, w, h, im.w, im.h);
    if (w == im.w && h == im.h) {
        size_t diff = 0, first = (size_t)-1;
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            if (png[i] != im.p[i]) {
                if (first == (size_t)-1) first = i;
                diff++;
            }
        EXPECT(diff == 0, "%s: %zu bytes differ from glReadPixels (first at pixel %zu)", path,
               diff, first == (size_t)-1 ? 0 : first / 3);
    }
    stbi_image_free(png);
    if (!(dir && dir[0])) unlink(path);
}

// ---------------------------------------------------------------- images

// 640x480 camera frame: red left half, blue right half with a white square,
// a green stripe at the far left that the 1:1 training crop must cut away.
enum { IW = 640, IH = 480, RS = 256 };
static uint8_t g_in[IW * IH * 3], g_grad[RS * RS * 3];

static void make_images(void) {
    static int made;
    if (made) return;
    made = 1;
    for (int y = 0; y < IH; y++)
        for (int x = 0; x < IW; x++) {
            uint8_t *p = g_in + ((size_t)y * IW + x) * 3;
            int sq = x >= 380 && x < 500 && y >= 180 && y < 300;
            p[0] = x < 40 ? 0 : sq || x < 320 ? 255 : 0;
            p[1] = x < 40 ? 255 : sq ? 255 : 0;
            p[2] = x < 40 ? 0 : sq || x >= 320 ? 255 : 0;
        }
    for (int y = 0; y < RS; y++)
        for (int x = 0; x < RS; x++)
            for (int c = 0; c < 3; c++) g_grad[((size_t)y * RS + x) * 3 + c] = (uint8_t)(40 + x * 170 / 255);
}

// The gradient at pane coordinate u, as bilinear/Catmull-Rom reproduce a ramp.
static int grad_at(double u) {
    double x = u * RS - 0.5;
    if (x < 0) x = 0;
    if (x > RS - 1) x = RS - 1;
    return (int)lround(40 + x * 170.0 / 255.0);
}

// ---------------------------------------------------------------- the window

static Display *g_win;
static int g_win_closed;

static void close_window(void) {
    if (g_win) display_close(g_win);
    g_win = NULL;
    g_win_closed = 1;
}

static void remove_tmpdir(void) { rmdir(g_tmpdir); }

// The shared 960x540 window (on monitor 7, which does not exist: the primary
// is used), opened on first use with the camera frame, the ramp as the
// reconstruction, and bicubic filtering. Under our own Xvfb a window must
// open: failing to is a failure, not a skip.
static Display *window(void) {
    if (g_win) return g_win;
    CHECK(!g_win_closed, "the shared window was already closed");
    test_ensure_display();
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_display_XXXXXX");
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    atexit(remove_tmpdir);
    const char *sd = getenv("TABULA_SHOT_DIR");
    if (sd && sd[0]) mkdir(sd, 0755);
    make_images();
    DisplayOpts o = {.width = W, .height = H, .vsync = 0, .monitor = 7};
    TbErr err = {{0}};
    Display *d = display_open(&o, &err);
    if (!d) {
        fprintf(stderr, "display_open: %s\n", err.msg);
        exit(1);
    }
    g_win = d;
    atexit(close_window);
    display_set_input(d, g_in, IW, IH);
    display_set_recon(d, g_grad, RS, RS);  // training size 256x256: square panes
    display_set_bicubic(d, 1);  // what a GPU gets (llvmpipe defaults to bilinear)
    return d;
}

// ---------------------------------------------------------------- checks

TEST_IMPL(no_display_and_dead_display_give_clear_messages) {
    test_ensure_display();
    char *saved = strdup(getenv("DISPLAY"));
    DisplayOpts o = {.width = 320, .height = 240, .hidden = 1};
    TbErr err = {{0}};

    unsetenv("DISPLAY");
    Display *d = display_open(&o, &err);
    EXPECT(d == NULL, "display_open without DISPLAY returned a window");
    EXPECT(strstr(err.msg, "DISPLAY") && strstr(err.msg, "--headless"),
           "no-display message: '%s'", err.msg);
    printf("without DISPLAY: %s\n", err.msg);

    setenv("DISPLAY", ":4242", 1);  // nobody listens there
    err.msg[0] = 0;
    d = display_open(&o, &err);
    EXPECT(d == NULL, "display_open on a dead DISPLAY returned a window");
    EXPECT(strstr(err.msg, "cannot open a window") != NULL, "dead-display message: '%s'", err.msg);
    printf("dead DISPLAY: %s\n", err.msg);
    if (d) display_close(d);

    setenv("DISPLAY", saved, 1);
    free(saved);
}

TEST_IMPL(window_opens_once_at_960x540) {
    Display *d = window();
    DisplayOpts o = {.width = W, .height = H, .vsync = 0, .monitor = 7};
    TbErr err = {{0}};
    Display *d2 = display_open(&o, &err);
    EXPECT(d2 == NULL, "a second display_open in the same process must fail");
    int fw, fh;
    display_size(d, &fw, &fh);
    EXPECT(fw == W && fh == H, "framebuffer %dx%d, want %dx%d", fw, fh, W, H);
}

TEST_IMPL(layout_names_parse_both_ways) {
    EXPECT(display_layout_parse("triptych") == DISPLAY_TRIPTYCH &&
               display_layout_parse("nope") == -1 &&
               strcmp(display_layout_name(DISPLAY_SIDE), "side") == 0,
           "layout names");
}

// One square pane between black bars; both filters reproduce the ramp.
TEST_IMPL(mirror_pane_pillarboxed_ramp_in_both_filters) {
    Display *d = window();
    display_set_layout(d, DISPLAY_MIRROR);
    display_set_flip(d, 0);
    draw_n(d, 2);
    Img im = grab(d);
    int r[4];
    EXPECT(!display_pane_rect(d, 1, r), "mirror has a second pane");
    EXPECT(display_pane_rect(d, 0, r), "mirror has no pane");
    EXPECT(r[0] == 210 && r[1] == 0 && r[2] == 540 && r[3] == 540,
           "mirror pane at %d,%d %dx%d, want 210,0 540x540", r[0], r[1], r[2], r[3]);
    // Pillarbox bars either side of a square pane.
    EXPECT_BLACK(px(&im, 5, 270), "mirror left bar");
    EXPECT_BLACK(px(&im, 205, 100), "mirror left bar at its edge");
    EXPECT_BLACK(px(&im, 755, 400), "mirror right bar at its edge");
    EXPECT_BLACK(px(&im, 955, 530), "mirror right bar");
    // The gray ramp across the middle row (both filters reproduce a ramp).
    for (int bic = 0; bic < 2; bic++) {
        display_set_bicubic(d, bic);
        draw_n(d, 1);
        im = grab(d);
        for (double u = 0.05; u < 1; u += 0.15) {
            int g = grad_at(u);
            char what[64];
            snprintf(what, sizeof what, "mirror ramp at u=%.2f (%s)", u, bic ? "bicubic" : "bilinear");
            EXPECT_RGB(pane_px(&im, r, u, 0.5), g, g, g, 4, what);
        }
    }
    shot(d, "display_mirror");
}

// A black|white step in an 8x8 image, magnified: Catmull-Rom makes the
// edge steeper than bilinear. Expected values from the two kernels.
TEST_IMPL(bicubic_and_bilinear_edges_as_their_kernels) {
    Display *d = window();
    display_set_layout(d, DISPLAY_MIRROR);
    display_set_flip(d, 0);
    int r[4];
    display_pane_rect(d, 0, r);
    Img im;
    static uint8_t step[8 * 8 * 3];
    for (int i = 0; i < 8 * 8; i++) memset(step + 3 * i, (i % 8) < 4 ? 0 : 255, 3);
    display_set_recon(d, step, 8, 8);
    int x = 287;  // pane column just right of the edge
    double f = (x + 0.5) / r[2] * 8 - 0.5 - 3;  // between texel 3 (black) and 4 (white)
    double lin = 255 * f;
    double w2 = f * (0.5 + f * (2 - 1.5 * f)), w3 = f * f * (-0.5 + 0.5 * f);
    double cub = 255 * (w2 + w3);
    int got[2];
    for (int bic = 0; bic < 2; bic++) {
        display_set_bicubic(d, bic);
        draw_n(d, 1);
        im = grab(d);
        got[bic] = px(&im, r[0] + x, 270)[0];
    }
    EXPECT(abs(got[0] - (int)lround(lin)) <= 3 && abs(got[1] - (int)lround(cub)) <= 3,
           "step edge at f=%.3f: bilinear %d (want %.1f), bicubic %d (want %.1f)", f, got[0], lin,
           got[1], cub);
    display_set_bicubic(d, 1);
    display_set_recon(d, g_grad, RS, RS);
}

// Camera pane (the training crop) and reconstruction side by side, mirrored
// when flipped.
static void check_side(int flip) {
    Display *d = window();
    display_set_layout(d, DISPLAY_SIDE);
    display_set_flip(d, flip);
    draw_n(d, 2);
    Img im = grab(d);
    int a[4], b[4];
    EXPECT(display_pane_rect(d, 0, a) && display_pane_rect(d, 1, b), "side has two panes");
    EXPECT(a[0] == 0 && a[1] == 32 && a[2] == 476 && a[3] == 476,
           "side camera pane at %d,%d %dx%d, want 0,32 476x476", a[0], a[1], a[2], a[3]);
    EXPECT(b[0] == 483 && b[1] == 32 && b[2] == 476 && b[3] == 476,
           "side recon pane at %d,%d %dx%d, want 483,32 476x476", b[0], b[1], b[2], b[3]);
    EXPECT_BLACK(px(&im, 480, 10), "side top bar");
    EXPECT_BLACK(px(&im, 100, 530), "side bottom bar");
    EXPECT_BLACK(px(&im, 479, 270), "side gap between panes");
    // Camera pane: the 1:1 crop of the frame is x 80..560, so red | blue with
    // the white square at u 0.625..0.875; mirrored when flipped.
    double L = flip ? 0.75 : 0.25, R = flip ? 0.25 : 0.75;
    const char *f = flip ? "flipped " : "";
    char what[96];
    snprintf(what, sizeof what, "%scamera pane left half", f);
    EXPECT_RGB(pane_px(&im, a, L, 0.5), 255, 0, 0, 12, what);
    snprintf(what, sizeof what, "%scamera pane right half", f);
    EXPECT_RGB(pane_px(&im, a, R, 0.15), 0, 0, 255, 12, what);
    snprintf(what, sizeof what, "%scamera pane white square", f);
    EXPECT_RGB(pane_px(&im, a, R, 0.5), 255, 255, 255, 12, what);
    if (!flip) {
        EXPECT_RGB(pane_px(&im, a, 0.05, 0.05), 255, 0, 0, 12, "camera pane top-left corner");
        EXPECT_RGB(pane_px(&im, a, 0.55, 0.9), 0, 0, 255, 12, "camera pane just right of centre");
    }
    int green = 0;
    for (int y = a[1]; y < a[1] + a[3]; y++)
        for (int x = a[0]; x < a[0] + a[2]; x++) {
            const uint8_t *p = px(&im, x, y);
            green += p[1] > 128 && p[0] < 100 && p[2] < 100;
        }
    EXPECT(green == 0, "%d green pixels in the camera pane: the crop is not the training crop", green);
    // Reconstruction pane: the ramp, reversed when flipped.
    for (double u = 0.1; u < 1; u += 0.2) {
        int g = grad_at(flip ? 1 - u : u);
        snprintf(what, sizeof what, "%srecon pane ramp at u=%.2f", f, u);
        EXPECT_RGB(pane_px(&im, b, u, 0.5), g, g, g, 4, what);
    }
    shot(d, flip ? "display_side_flip" : "display_side");
}

TEST_IMPL(side_panes_show_crop_and_ramp) { check_side(0); }
TEST_IMPL(side_panes_flipped_show_both_mirrored) { check_side(1); }

// Camera red, reconstruction a dark grey: the error pane lights up.
TEST_IMPL(triptych_error_pane_bright_where_images_differ) {
    Display *d = window();
    display_set_layout(d, DISPLAY_TRIPTYCH);
    display_set_flip(d, 0);
    draw_n(d, 2);
    Img im = grab(d);
    int e[4], c[4];
    EXPECT(display_pane_rect(d, 2, e) && display_pane_rect(d, 0, c), "triptych has three panes");
    EXPECT(e[2] == 315 && e[3] == 315 && e[1] == 112,
           "error pane at %d,%d %dx%d, want y=112 315x315", e[0], e[1], e[2], e[3]);
    EXPECT_BLACK(px(&im, 480, 50), "triptych top bar");
    // Red against a dark gray differs a lot: the colour map's bright end.
    const uint8_t *p = pane_px(&im, e, 0.25, 0.5);
    EXPECT(p[0] + p[1] + p[2] > 450, "error pane where camera is red and recon gray: (%d,%d,%d)",
           p[0], p[1], p[2]);
    EXPECT_RGB(pane_px(&im, c, 0.25, 0.5), 255, 0, 0, 12, "triptych camera pane");
    shot(d, "display_triptych");
}

// A reconstruction equal to the camera crop except for its top-left quadrant
// (black): bright there, near black where the two agree.
TEST_IMPL(triptych_error_pane_dark_where_images_agree) {
    Display *d = window();
    display_set_layout(d, DISPLAY_TRIPTYCH);
    display_set_flip(d, 0);
    int e[4];
    display_pane_rect(d, 2, e);
    Img im;
    const uint8_t *p;
    static uint8_t fit[RS * RS * 3];
    frame_fit(fit, RS, RS, g_in, IW, IH);
    for (int y = 0; y < RS / 2; y++) memset(fit + (size_t)y * RS * 3, 0, RS / 2 * 3);
    display_set_recon(d, fit, RS, RS);
    draw_n(d, 2);
    im = grab(d);
    p = pane_px(&im, e, 0.25, 0.25);
    EXPECT(p[0] + p[1] + p[2] > 450, "error pane over the blacked-out quadrant: (%d,%d,%d)", p[0],
           p[1], p[2]);
    const double agree[4][2] = {{0.25, 0.75}, {0.75, 0.9}, {0.9, 0.15}, {0.6, 0.6}};
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "error pane where they agree (u=%.2f v=%.2f)", agree[i][0],
                 agree[i][1]);
        EXPECT_RGB(pane_px(&im, e, agree[i][0], agree[i][1]), 0, 0, 0, 12, what);
    }
    shot(d, "display_triptych_error");
    display_set_input(d, g_in, IW, IH);
    display_set_recon(d, g_grad, RS, RS);
}

// Identical images: the whole error pane is black.
TEST_IMPL(triptych_error_pane_black_for_identical_images) {
    Display *d = window();
    display_set_layout(d, DISPLAY_TRIPTYCH);
    display_set_flip(d, 0);
    int e[4];
    display_pane_rect(d, 2, e);
    Img im;
    static uint8_t fit[RS * RS * 3];
    frame_fit(fit, RS, RS, g_in, IW, IH);
    display_set_input(d, fit, RS, RS);
    display_set_recon(d, fit, RS, RS);
    draw_n(d, 2);
    im = grab(d);
    int m = max_channel(&im, e);
    EXPECT(m <= 3, "error pane for identical images: brightest channel %d", m);
    display_set_input(d, g_in, IW, IH);  // back to the camera-sized frame
    display_set_recon(d, g_grad, RS, RS);
}

// An input transform in force: camera | network input | reconstruction; without
// one the triptych is camera | reconstruction | error again.
TEST_IMPL(triptych_shows_network_input_while_a_transform_is_on) {
    Display *d = window();
    display_set_layout(d, DISPLAY_TRIPTYCH);
    display_set_flip(d, 0);
    int c[4], m[4], r[4];
    display_pane_rect(d, 0, c), display_pane_rect(d, 1, m), display_pane_rect(d, 2, r);
    static uint8_t grey[RS * RS * 3], rec[RS * RS * 3];
    memset(grey, 90, sizeof grey);
    for (int i = 0; i < RS * RS; i++) rec[3 * i] = 0, rec[3 * i + 1] = 200, rec[3 * i + 2] = 0;
    display_set_recon(d, rec, RS, RS);
    display_set_net_input(d, grey, RS, RS);
    draw_n(d, 2);
    Img im = grab(d);
    EXPECT_RGB(pane_px(&im, c, 0.25, 0.5), 255, 0, 0, 12, "camera pane");
    EXPECT_RGB(pane_px(&im, m, 0.5, 0.5), 90, 90, 90, 6, "network input pane");
    EXPECT_RGB(pane_px(&im, r, 0.5, 0.5), 0, 200, 0, 6, "reconstruction pane");
    shot(d, "display_triptych_world");
    display_set_net_input(d, NULL, RS, RS);
    draw_n(d, 2);
    im = grab(d);
    EXPECT_RGB(pane_px(&im, m, 0.5, 0.5), 0, 200, 0, 6, "reconstruction back in the middle");
    const uint8_t *p = pane_px(&im, r, 0.25, 0.5);
    EXPECT(p[0] + p[1] + p[2] > 300, "error pane back on the right: (%d,%d,%d)", p[0], p[1], p[2]);
    display_set_recon(d, g_grad, RS, RS);
}

static void set_hud_lines(Display *d) {
    const char *lines[] = {"tabula  cpu  256x256", "loss 0.01234  lr 0.01", "fps 60.0  steps 1234"};
    display_set_hud(d, lines, 3);
}

// The HUD box and the pane label: light text when on, none when off.
TEST_IMPL(hud_and_pane_label_only_when_on) {
    Display *d = window();
    display_set_layout(d, DISPLAY_MIRROR);
    set_hud_lines(d);
    display_show_hud(d, 0);
    draw_n(d, 2);
    int r[4];
    EXPECT(display_hud_rect(d, r) == 0, "HUD rect while hidden");
    display_show_hud(d, 1);
    EXPECT(display_hud_rect(d, r) == 1 && r[2] > 50 && r[3] > 30, "HUD rect %d,%d %dx%d", r[0],
           r[1], r[2], r[3]);
    draw_n(d, 2);
    Img im = grab(d);
    int on = count_light(&im, r[0], r[1], r[2], r[3], 220);
    // Pane labels: "reconstruction" at the bottom-left of the pane (dark ramp there).
    int p[4];
    display_pane_rect(d, 0, p);
    int lab_on = count_light(&im, p[0], p[1] + p[3] * 8 / 10, p[2] / 2, p[3] * 2 / 10, 220);
    shot(d, "display_hud");
    display_show_hud(d, 0);
    draw_n(d, 2);
    im = grab(d);
    int off = count_light(&im, r[0], r[1], r[2], r[3], 220);
    int lab_off = count_light(&im, p[0], p[1] + p[3] * 8 / 10, p[2] / 2, p[3] * 2 / 10, 220);
    EXPECT(on > 150 && off == 0, "light pixels in the HUD box: %d with HUD on, %d off", on, off);
    EXPECT(lab_on > 40 && lab_off == 0, "light pixels at the pane label: %d with HUD on, %d off",
           lab_on, lab_off);
}

// The dream's HUD line: the amount and only the transforms that move the
// picture; none at all while feedback is 0, whatever the transforms.
TEST_IMPL(dream_hud_line_only_while_dreaming) {
    char l[96];
    EXPECT(hud_dream_line(l, sizeof l, 0.4f, 1.01f, 2, 3, -1, 2) > 0 &&
               strcmp(l, "dream: feedback 0.4   zoom 1.01   rotate 2   shift 3,-1   tau 2 s") == 0,
           "every transform: \"%s\"", l);
    EXPECT(hud_dream_line(l, sizeof l, 1, 1, 0, 0, 0, 0) > 0 && strcmp(l, "dream: feedback 1") == 0,
           "no transform: \"%s\"", l);
    EXPECT(hud_dream_line(l, sizeof l, 0.25f, 0.98f, 0, 0, 0.5f, 0) > 0 &&
               strcmp(l, "dream: feedback 0.25   zoom 0.98   shift 0,0.5") == 0,
           "zoom out, a shift down: \"%s\"", l);
    EXPECT(hud_dream_line(l, sizeof l, 0, 1.01f, 2, 3, -1, 2) == 0 && l[0] == 0, "feedback 0: \"%s\"", l);
    EXPECT(hud_dream_line(l, 12, 0.4f, 1.01f, 2, 3, -1, 2) == 11 && strcmp(l, "dream: feed") == 0,
           "cut to the buffer: \"%s\"", l);
}

// The HUD the app draws (panel_hud) for a run's view: exactly one line taller
// while the dream feeds back (its line; the dream's values are on no other
// line then) than at feedback 0 with every transform at rest (none shown).
TEST_IMPL(dream_line_in_the_hud_while_dreaming) {
    Display *d = window();
    display_set_layout(d, DISPLAY_MIRROR);
    display_show_hud(d, 1);
    int r[4], h[4];
    const char *lines[] = {"one", "two"};
    for (int k = 1; k <= 2; k++) {  // the height of one line at this window's scale
        display_set_hud(d, lines, k);
        EXPECT(display_hud_rect(d, r) == 1, "HUD rect of %d lines", k);
        h[k - 1] = r[3];
    }
    Settings s;
    settings_default(&s);
    RunView v;
    memset(&v, 0, sizeof v);
    live_params_from_settings(&v.p, &s);
    v.channels = 1, v.psnr = 30;
    float fb[2] = {0.4f, 0};
    for (int k = 0; k < 2; k++) {
        v.p.v[PARAM_FEEDBACK] = fb[k], v.p.v[PARAM_ZOOM] = k ? 1 : 1.01f, v.p.v[PARAM_ROTATE] = k ? 0 : 2;
        panel_hud(d, &v, NULL, NULL, "cpu", 60, "pattern", 0, NULL);
        EXPECT(display_hud_rect(d, r) == 1, "HUD rect at feedback %g", (double)fb[k]);
        h[2 + k] = r[3];
    }
    printf("HUD height: %d px dreaming, %d px at feedback 0, one line %d px\n", h[2], h[3], h[1] - h[0]);
    EXPECT(h[1] > h[0] && h[2] - h[3] == h[1] - h[0], "dreaming adds %d px, a line is %d px", h[2] - h[3],
           h[1] - h[0]);
    display_show_hud(d, 0);
}

// The HUD with every optional line at once (a take, the virtual camera, three
// channels, the dream, rollbacks, a note): all of them shown, the parameters
// cut to the lines left above them (they end at line 8), nothing written past
// the HUD's lines (this overran them once: AddressSanitizer saw it).
TEST_IMPL(hud_with_every_line_on_keeps_to_its_lines) {
    Display *d = window();
    display_set_layout(d, DISPLAY_MIRROR);
    display_show_hud(d, 1);
    int r[4], h1, lh;
    const char *lines[] = {"one", "two"};
    display_set_hud(d, lines, 1);
    EXPECT(display_hud_rect(d, r) == 1, "HUD rect of one line");
    h1 = r[3];
    display_set_hud(d, lines, 2);
    EXPECT(display_hud_rect(d, r) == 1, "HUD rect of two lines");
    lh = r[3] - h1;
    Settings s;
    settings_default(&s);
    RunView v;
    memset(&v, 0, sizeof v);
    live_params_from_settings(&v.p, &s);
    v.channels = 1, v.psnr = 30;
    panel_hud(d, &v, NULL, NULL, "cpu", 60, "pattern", 0, NULL);
    EXPECT(display_hud_rect(d, r) == 1, "plain HUD rect");
    int plain = 1 + (r[3] - h1 + lh / 2) / lh, params = plain - 4;  // + loss, rates, step, source
    RecordStatus rs = {.on = 1, .secs = 12.5, .written = 300};
    v.channels = 3;
    for (int c = 1; c < 3; c++) live_params_from_settings(&v.chp[c], &s);
    v.p.v[PARAM_FEEDBACK] = 0.4f;
    v.rollbacks = 2;
    panel_hud(d, &v, &rs, "virtual camera: 300 sent", "cpu", 60, "pattern", 0, "an empty room: resting");
    EXPECT(display_hud_rect(d, r) == 1, "full HUD rect");
    int full = 1 + (r[3] - h1 + lh / 2) / lh, want = 4 + (params < 4 ? params : 4) + 6;
    printf("HUD lines: %d plain (%d of parameters), %d with every line on\n", plain, params, full);
    EXPECT(params >= 1 && full == want, "%d lines with every line on, expected %d", full, want);
    display_show_hud(d, 0);
}

// Side layout: the camera pane is labelled too (over red: white text stands out).
TEST_IMPL(side_layout_labels_the_camera_pane) {
    Display *d = window();
    Img im;
    int p[4];
    set_hud_lines(d);
    display_set_layout(d, DISPLAY_SIDE);
    display_show_hud(d, 1);
    draw_n(d, 2);
    im = grab(d);
    display_pane_rect(d, 0, p);
    int cam_on = count_light(&im, p[0], p[1] + p[3] * 8 / 10, p[2] / 2, p[3] * 2 / 10, 220);
    EXPECT(cam_on > 40, "light pixels at the camera pane's label: %d", cam_on);
    shot(d, "display_side_hud");
    display_show_hud(d, 0);
}

// Status message: lower third, large, then gone when cleared.
TEST_IMPL(status_message_shown_then_cleared) {
    Display *d = window();
    Img im;
    display_show_hud(d, 0);
    display_set_layout(d, DISPLAY_MIRROR);
    display_status(d, "saved weights/snap-0003.safetensors", 30);
    draw_n(d, 2);
    im = grab(d);
    int st_on = count_light(&im, 0, H * 6 / 10, W, H * 35 / 100, 230);
    shot(d, "display_status");
    display_status(d, "camera lost \xe2\x80\x94 retrying", 30);  // an em dash: drawn as '-'
    draw_n(d, 2);
    im = grab(d);
    int st_utf8 = count_light(&im, 0, H * 6 / 10, W, H * 35 / 100, 230);
    display_status(d, NULL, 0);
    draw_n(d, 2);
    im = grab(d);
    int st_off = count_light(&im, 0, H * 6 / 10, W, H * 35 / 100, 230);
    EXPECT(st_on > 300 && st_utf8 > 300 && st_off == 0,
           "light pixels in the status area: %d, %d (UTF-8), %d after clearing", st_on, st_utf8,
           st_off);
}

// Help overlay in the middle.
TEST_IMPL(help_overlay_shown_then_hidden) {
    Display *d = window();
    Img im;
    display_set_layout(d, DISPLAY_MIRROR);
    const char *help[] = {"tabula keys",        "F1 or ?\tthis help",
                          "tab\tlayout: mirror / side / triptych",
                          "f\tfullscreen",      "m        flip (spaces also separate)",
                          "s\tsave weights",    "q  esc\tquit"};
    display_set_help(d, help, 7);
    display_show_help(d, 1);
    draw_n(d, 2);
    im = grab(d);
    int he_on = count_light(&im, W / 4, H / 4, W / 2, H / 2, 220);
    shot(d, "display_help");
    display_show_help(d, 0);
    draw_n(d, 2);
    im = grab(d);
    int he_off = count_light(&im, W / 4, H / 4, W / 2, H / 2, 220);
    EXPECT(he_on > 300 && he_off == 0, "light pixels in the help area: %d shown, %d hidden", he_on,
           he_off);
}

// A real frame: the camera pane must be the training crop of it, and a
// blurred "reconstruction" must light up the error pane at the edges.
TEST_IMPL(real_frame_pane_is_training_crop_blur_lights_error) {
    Display *d = window();
    TbErr err = {{0}};
    Source *src = source_open_y4m(test_data("hikers_forest_320x240.y4m"), &err);
    if (!src) TEST_SKIP_CASE("no clip (%s): real-frame check skipped", err.msg);
    int sw = src->width, sh = src->height;
    uint8_t *frame = malloc((size_t)sw * sh * 3);
    for (int i = 0; i < 30; i++)  // a second in: past any fade-in
        if (src->read(src, frame, &err) != 1) break;
    source_close(src);
    static uint8_t fit[RS * RS * 3], small[16 * 16 * 3], blur[RS * RS * 3];
    frame_fit(fit, RS, RS, frame, sw, sh);
    frame_fit(small, 16, 16, fit, RS, RS);
    frame_fit(blur, RS, RS, small, 16, 16);
    display_set_input(d, frame, sw, sh);
    display_set_recon(d, blur, RS, RS);
    display_set_layout(d, DISPLAY_TRIPTYCH);
    for (int flip = 0; flip < 2; flip++) {
        display_set_flip(d, flip);
        draw_n(d, 2);
        Img im = grab(d);
        int c[4], e[4];
        display_pane_rect(d, 0, c);
        display_pane_rect(d, 2, e);
        // Camera pane against the trainer's own crop, on a 32x32 grid.
        double diff = 0, err_sum = 0;
        for (int j = 0; j < 32; j++)
            for (int i = 0; i < 32; i++) {
                double u = (i + 0.5) / 32, v = (j + 0.5) / 32;
                const uint8_t *p = pane_px(&im, c, u, v);
                int fx = (int)((flip ? 1 - u : u) * RS), fy = (int)(v * RS);
                const uint8_t *q = fit + ((size_t)fy * RS + fx) * 3;
                for (int k = 0; k < 3; k++) diff += abs(p[k] - q[k]);
                const uint8_t *ep = pane_px(&im, e, u, v);
                err_sum += (ep[0] + ep[1] + ep[2]) / 3.0;
            }
        diff /= 32 * 32 * 3;
        err_sum /= 32 * 32;
        EXPECT(diff < 12, "%scamera pane vs the training crop: mean |diff| %.1f", flip ? "flipped " : "",
               diff);
        EXPECT(err_sum > 20, "error pane for a blurred reconstruction: mean level %.1f", err_sum);
    }
    display_set_flip(d, 0);
    const char *lines[] = {"lr 0.01   momentum 0.90   clip 1", "steps/frame 2   memory 8 (ring 64)",
                           "loss 0.01234   PSNR 19.09 dB", "step 1234   frame 617   backend cpu"};
    display_set_hud(d, lines, 4);
    display_show_hud(d, 1);
    display_status(d, "saved weights/snap-0003.safetensors", 30);
    draw_n(d, 2);
    shot(d, "display_photo_triptych");
    display_status(d, NULL, 0);
    display_show_hud(d, 0);
    display_set_layout(d, DISPLAY_MIRROR);
    display_set_recon(d, fit, RS, RS);
    draw_n(d, 2);
    shot(d, "display_photo_mirror");
    display_set_input(d, g_in, IW, IH);
    display_set_recon(d, g_grad, RS, RS);
    free(frame);
}

// Injected keys come out in order; overflow keeps the newest 64.
TEST_IMPL(injected_keys_queue_in_order_newest_64_kept) {
    Display *d = window();
    DisplayKey k;
    while (display_poll_key(d, &k)) {}
    display_inject_key(d, GLFW_KEY_A, 0);
    display_inject_key(d, GLFW_KEY_B, GLFW_MOD_SHIFT);
    display_inject_key(d, GLFW_KEY_ESCAPE, 0);
    const int want[3][2] = {{GLFW_KEY_A, 0}, {GLFW_KEY_B, GLFW_MOD_SHIFT}, {GLFW_KEY_ESCAPE, 0}};
    for (int i = 0; i < 3; i++) {
        int got = display_poll_key(d, &k);
        EXPECT(got && k.key == want[i][0] && k.mods == want[i][1] && k.action == GLFW_PRESS,
               "injected key %d: got=%d key %d mods %d action %d, want key %d mods %d", i, got,
               k.key, k.mods, k.action, want[i][0], want[i][1]);
    }
    EXPECT(display_poll_key(d, &k) == 0, "queue not empty after three keys (key %d)", k.key);

    // Overflow keeps the newest 64.
    for (int i = 0; i < 70; i++) display_inject_key(d, GLFW_KEY_A + i % 26, i);
    int n = 0, first = -1, last = -1;
    while (display_poll_key(d, &k)) {
        if (n == 0) first = k.mods;
        last = k.mods;
        n++;
    }
    EXPECT(n == 64 && first == 6 && last == 69, "after 70 keys: %d queued, first #%d, last #%d", n,
           first, last);
}

// Real X key events through the server (XTEST), when xdotool is here.
TEST_IMPL(real_x_key_presses_arrive_with_modifiers) {
    Display *d = window();
    DisplayKey k;
    if (!test_in_path("xdotool")) TEST_SKIP_CASE("xdotool not installed: real key events not checked");
    while (display_poll_key(d, &k)) {}
    draw_n(d, 2);
    int rc = system("timeout 10 xdotool search --sync --onlyvisible --name '^tabula$' "
                    "windowfocus --sync key --delay 30 x shift+f Escape");
    EXPECT(rc == 0, "xdotool failed (status %d)", rc);
    int keys[8], mods[8], nk = 0;
    double t0 = tb_now();
    while (nk < 3 && tb_now() - t0 < 3) {
        display_poll_events(d);
        while (nk < 8 && display_poll_key(d, &k)) {
            if (k.key == GLFW_KEY_LEFT_SHIFT || k.key == GLFW_KEY_RIGHT_SHIFT) continue;
            keys[nk] = k.key;
            mods[nk++] = k.mods;
        }
        sleep_ms(10);
    }
    EXPECT(nk == 3, "%d real key presses arrived, want 3", nk);
    if (nk == 3) {
        EXPECT(keys[0] == GLFW_KEY_X && mods[0] == 0, "real key 1: key %d mods %d, want X", keys[0],
               mods[0]);
        EXPECT(keys[1] == GLFW_KEY_F && (mods[1] & GLFW_MOD_SHIFT),
               "real key 2: key %d mods %d, want shift+F", keys[1], mods[1]);
        EXPECT(keys[2] == GLFW_KEY_ESCAPE, "real key 3: key %d, want Escape", keys[2]);
    }
}

// A recon written into the pixel buffer (as CUDA does) is what the pane
// shows; back to host uploads afterwards.
TEST_IMPL(pbo_recon_shown_then_host_upload_again) {
    Display *d = window();
    unsigned id = display_recon_pbo(d, 64, 32);
    EXPECT(id != 0, "display_recon_pbo(64x32) gave no buffer");
    EXPECT(display_recon_pbo(d, 64, 32) == id, "same size must keep the same buffer");
    if (!id) return;
    // Stand in for CUDA: write the buffer on the GL side, left green | right magenta.
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, id);
    uint8_t *m = glMapBufferRange(GL_PIXEL_UNPACK_BUFFER, 0, 64 * 32 * 4,
                                  GL_MAP_WRITE_BIT | GL_MAP_INVALIDATE_BUFFER_BIT);
    EXPECT(m != NULL, "glMapBufferRange on the PBO failed (0x%x)", glGetError());
    if (m) {
        for (int i = 0; i < 64 * 32; i++) {
            int left = (i % 64) < 32;
            m[4 * i + 0] = left ? 0 : 255;
            m[4 * i + 1] = left ? 255 : 0;
            m[4 * i + 2] = left ? 0 : 255;
            m[4 * i + 3] = 255;
        }
        glUnmapBuffer(GL_PIXEL_UNPACK_BUFFER);
    }
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    display_recon_from_pbo(d);
    display_set_layout(d, DISPLAY_MIRROR);
    draw_n(d, 2);
    Img im = grab(d);
    int r[4];
    display_pane_rect(d, 0, r);
    EXPECT(r[0] == 0 && r[1] == 30 && r[2] == 960 && r[3] == 480,
           "2:1 mirror pane at %d,%d %dx%d, want 0,30 960x480", r[0], r[1], r[2], r[3]);
    EXPECT_RGB(pane_px(&im, r, 0.25, 0.5), 0, 255, 0, 8, "PBO left half");
    EXPECT_RGB(pane_px(&im, r, 0.75, 0.5), 255, 0, 255, 8, "PBO right half");
    EXPECT_BLACK(px(&im, 480, 10), "2:1 letterbox top");
    EXPECT_BLACK(px(&im, 480, 532), "2:1 letterbox bottom");
    shot(d, "display_pbo");

    unsigned id2 = display_recon_pbo(d, 32, 32);
    EXPECT(id2 != 0 && id2 != id, "a new size must give a new buffer name: %u then %u", id, id2);
    // Back to host uploads at the training size.
    display_set_recon(d, g_grad, RS, RS);
    draw_n(d, 1);
    im = grab(d);
    display_pane_rect(d, 0, r);
    EXPECT(r[2] == 540 && r[3] == 540, "back to 1:1: pane %dx%d", r[2], r[3]);
    EXPECT_RGB(pane_px(&im, r, 0.5, 0.5), grad_at(0.5), grad_at(0.5), grad_at(0.5), 4,
               "host upload after the PBO");
}

// Waits (drawing) until the framebuffer has the wanted size.
static int wait_size(Display *d, int w, int h) {
    int fw = 0, fh = 0;
    for (double t0 = tb_now(); tb_now() - t0 < 3;) {
        display_draw(d);
        display_size(d, &fw, &fh);
        if (fw == w && fh == h) return 1;
        sleep_ms(20);
    }
    fprintf(stderr, "framebuffer stayed %dx%d, want %dx%d\n", fw, fh, w, h);
    return 0;
}

// Fullscreen on the primary monitor (monitor 7 does not exist), then windowed again.
TEST_IMPL(fullscreen_fills_the_screen_then_windowed_again) {
    Display *d = window();
    display_set_layout(d, DISPLAY_MIRROR);
    // Opened with monitor 7: falls back to the primary (1280x720 under our Xvfb).
    const GLFWvidmode *mode = glfwGetVideoMode(glfwGetPrimaryMonitor());
    EXPECT(mode != NULL, "no video mode for the primary monitor");
    if (!mode) return;
    int mw = mode->width, mh = mode->height;
    display_set_fullscreen(d, 1);
    EXPECT(display_fullscreen(d), "fullscreen flag");
    EXPECT(wait_size(d, mw, mh), "fullscreen is the screen's %dx%d", mw, mh);
    Img im = grab(d);
    int r[4];
    display_pane_rect(d, 0, r);
    int side = mw < mh ? mw : mh;  // the 1:1 pane
    EXPECT(r[0] == (mw - side) / 2 && r[2] == side, "fullscreen pane x %d w %d, want %d %d", r[0],
           r[2], (mw - side) / 2, side);
    EXPECT_RGB(pane_px(&im, r, 0.5, 0.5), grad_at(0.5), grad_at(0.5), grad_at(0.5), 4,
               "fullscreen centre");
    if (mw > mh) EXPECT_BLACK(px(&im, (mw - side) / 4, mh / 2), "fullscreen left bar");
    display_set_fullscreen(d, 0);
    EXPECT(!display_fullscreen(d), "windowed flag");
    EXPECT(wait_size(d, W, H), "windowed again at 960x540");
}

TEST_IMPL(display_fps_matches_counted_swaps) {
    Display *d = window();
    display_set_layout(d, DISPLAY_TRIPTYCH);
    display_show_hud(d, 1);
    double t0 = tb_now();
    int frames = 0;
    while (tb_now() - t0 < 0.8) {
        display_draw(d);
        frames++;
    }
    double fps = display_fps(d);
    double want = frames / (tb_now() - t0);
    EXPECT(fps > 0.5 * want && fps < 2 * want, "display_fps %.1f, counted %.1f", fps, want);
    printf("960x540 triptych+HUD swaps: %.1f fps (llvmpipe)\n", fps);
}

TEST_IMPL(no_gl_error_left_over) {
    window();
    EXPECT(glGetError() == GL_NO_ERROR, "GL error left over");
}

// A hidden window (after the shared one is closed) draws at its own size.
TEST_IMPL(hidden_window_draws_at_its_size) {
    test_ensure_display();
    make_images();
    close_window();
    DisplayOpts o = {.width = 640, .height = 360, .hidden = 1};
    TbErr err = {{0}};
    Display *d = display_open(&o, &err);
    EXPECT(d != NULL, "hidden window: %s", err.msg);
    if (!d) return;
    display_set_input(d, g_in, IW, IH);
    display_set_recon(d, g_grad, RS, RS);
    display_set_layout(d, DISPLAY_SIDE);
    display_draw(d);
    Img im = grab(d);
    EXPECT(im.w == 640 && im.h == 360, "hidden framebuffer %dx%d", im.w, im.h);
    int a[4];
    display_pane_rect(d, 0, a);
    EXPECT_RGB(pane_px(&im, a, 0.25, 0.5), 255, 0, 0, 12, "hidden window camera pane");
    display_close(d);
}

TEST_MAIN(TEST_ENTRY(no_display_and_dead_display_give_clear_messages), TEST_ENTRY(window_opens_once_at_960x540),
          TEST_ENTRY(layout_names_parse_both_ways), TEST_ENTRY(mirror_pane_pillarboxed_ramp_in_both_filters),
          TEST_ENTRY(bicubic_and_bilinear_edges_as_their_kernels), TEST_ENTRY(side_panes_show_crop_and_ramp),
          TEST_ENTRY(side_panes_flipped_show_both_mirrored),
          TEST_ENTRY(triptych_error_pane_bright_where_images_differ),
          TEST_ENTRY(triptych_error_pane_dark_where_images_agree),
          TEST_ENTRY(triptych_error_pane_black_for_identical_images),
          TEST_ENTRY(triptych_shows_network_input_while_a_transform_is_on), TEST_ENTRY(hud_and_pane_label_only_when_on), TEST_ENTRY(dream_hud_line_only_while_dreaming),
          TEST_ENTRY(dream_line_in_the_hud_while_dreaming),
          TEST_ENTRY(hud_with_every_line_on_keeps_to_its_lines),
          TEST_ENTRY(side_layout_labels_the_camera_pane), TEST_ENTRY(status_message_shown_then_cleared),
          TEST_ENTRY(help_overlay_shown_then_hidden),
          TEST_ENTRY(real_frame_pane_is_training_crop_blur_lights_error),
          TEST_ENTRY(injected_keys_queue_in_order_newest_64_kept),
          TEST_ENTRY(real_x_key_presses_arrive_with_modifiers), TEST_ENTRY(pbo_recon_shown_then_host_upload_again),
          TEST_ENTRY(fullscreen_fills_the_screen_then_windowed_again), TEST_ENTRY(display_fps_matches_counted_swaps),
          TEST_ENTRY(no_gl_error_left_over), TEST_ENTRY(hidden_window_draws_at_its_size))
