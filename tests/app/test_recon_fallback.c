// test_recon_fallback.c: why it exists: on the CUDA backend the reconstruction
// goes to the screen through CUDA-GL interop. When that fails mid-show the
// picture must not freeze: both threads must switch to the host path and the
// reconstructions must keep coming. And the window's thread must never wait
// for training: it maps nothing before the GPU has written the buffer, and not
// under the app's lock. None of that needs CUDA to be checked: the app's
// real training thread (train_thread_main) and display side (app_show_recon)
// run here on the CPU backend, with recon_gpu's hand-over over a host
// stand-in for the CUDA-GL device (it fills the display's real pixel buffer
// and draws from it, as the CUDA one does). The interop failure is the
// app's own switch, TABULA_INJECT_INTEROP_FAIL. Runs itself under xvfb-run
// when there is no DISPLAY.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <GL/glew.h>

#include "app_rig.h"
#include "live.h"
#include "test.h"
#include "xvfb.h"

enum { W = 32, H = 32 };

// ---------------------------------------------------------------- helpers



static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// The one window of the process (one display per process), hidden.
static Display *g_d;
static Display *window(void) {
    if (g_d) return g_d;
    DisplayOpts o = {.width = 320, .height = 240, .hidden = 1};
    TbErr err = {{0}};
    g_d = display_open(&o, &err);
    if (!g_d) {
        fprintf(stderr, "display_open under Xvfb: %s\n", err.msg);
        exit(1);
    }
    display_set_train_size(g_d, W, H);
    display_set_layout(g_d, DISPLAY_MIRROR);
    return g_d;
}

// A sum over the reconstruction pane as drawn: different pictures, different sums.
static unsigned long pane_sum(Display *d) {
    static uint8_t buf[640 * 480 * 3];
    int w, h, r[4];
    TbErr err = {{0}};
    if (display_read_pixels(d, buf, sizeof buf, &w, &h, &err) || !display_pane_rect(d, 0, r)) return 0;
    unsigned long s = 0;
    for (int y = r[1]; y < r[1] + r[3] && y < h; y++)
        for (int x = r[0]; x < r[0] + r[2] && x < w; x++)
            for (int c = 0; c < 3; c++) s = s * 31 + buf[((size_t)y * w + x) * 3 + c];
    return s;
}

// ---------------------------------------------------------------- the stand-in device

// Three RGBA staging buffers in host memory. write (training thread) copies the
// backend's reconstruction into one; written says whether it is done (held
// back while `gate` is 0, as a GPU still running the step would); show (main
// thread) puts one into the display's pixel buffer and draws from it.
typedef struct {
    App *a;
    Display *d;
    unsigned pbo;
    uint8_t stage[3][W * H * 4];
    int gate;                 // 1: writes finish at once (atomic)
    long writes, shows;       // atomic
    long shown_under_lock;    // show found the app's lock held by its own thread
} Stub;

static void stub_write(void *p, int k) {
    Stub *s = p;
    uint8_t rgb[W * H * 3];
    trainer_output(&s->a->run.t, rgb);
    for (int i = 0; i < W * H; i++) {
        memcpy(&s->stage[k][4 * i], &rgb[3 * i], 3);
        s->stage[k][4 * i + 3] = 255;
    }
    __atomic_add_fetch(&s->writes, 1, __ATOMIC_ACQ_REL);
}

static int stub_written(void *p, int k) {
    Stub *s = p;
    return __atomic_load_n(&s->gate, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static int stub_show(void *p, int k, TbErr *err) {
    Stub *s = p;
    // The app's mutex is an error-checking one here: locking it again from the
    // thread that holds it says so instead of deadlocking.
    int rc = pthread_mutex_lock(&s->a->mu);
    if (rc == EDEADLK) s->shown_under_lock++;
    else if (rc == 0) pthread_mutex_unlock(&s->a->mu);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, s->pbo);
    glBufferSubData(GL_PIXEL_UNPACK_BUFFER, 0, sizeof s->stage[k], s->stage[k]);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    display_recon_from_pbo(s->d);
    __atomic_add_fetch(&s->shows, 1, __ATOMIC_ACQ_REL);
    return 0;
}

static const ReconDev stub_ops = {stub_write, stub_written, stub_show, NULL};

// ---------------------------------------------------------------- the app around it

// What app_run sets up for the two threads, on the CPU backend, with the
// stand-in as the interop path and the training thread running.
typedef struct {
    Settings s;
    ControlQueue q;
    App a;
    Stub stub;
    long frames;
} Rig;

static int rig_open(Rig *r, const char *inject) {
    memset(r, 0, sizeof *r);
    app_rig_settings(&r->s, W, H, "8,16");  // small and quick
    App *a = &r->a;
    if (app_rig_open(a, &r->s, &r->q)) return -1;
    Display *d = window();
    r->stub = (Stub){.a = a, .d = d, .pbo = display_recon_pbo(d, W, H), .gate = 1};
    EXPECT(r->stub.pbo != 0, "no pixel buffer");
    if (inject) setenv("TABULA_INJECT_INTEROP_FAIL", inject, 1);
    else unsetenv("TABULA_INJECT_INTEROP_FAIL");
    a->rg = recon_gpu_open(&stub_ops, &r->stub);
    unsetenv("TABULA_INJECT_INTEROP_FAIL");
    CHECK(pthread_create(&a->thread, NULL, train_thread_main, a) == 0, "pthread_create");
    return 0;
}

// A new camera frame for the training thread, as app.c's hand_frame gives it:
// a pattern that moves with every frame.
static void rig_frame(Rig *r) {
    App *a = &r->a;
    long f = r->frames++;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < W * H * 3; i++) a->in_rgb[i] = (uint8_t)((i % (W * 3)) * 5 + f * 23 + (i / (W * 3)) * 3);
    a->in_w = W, a->in_h = H;
    a->in_seq++;
    a->in_arrival = tb_now();
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

static uint64_t rig_rec_seq(Rig *r) {
    pthread_mutex_lock(&r->a.mu);
    uint64_t s = r->a.rec_seq;
    pthread_mutex_unlock(&r->a.mu);
    return s;
}

// Waits (up to 5 s) until the training thread has published a reconstruction after `after`.
static int rig_wait_rec(Rig *r, uint64_t after) {
    for (int i = 0; i < 1000; i++) {
        if (rig_rec_seq(r) > after) return 1;
        sleep_ms(5);
    }
    return 0;
}

static void rig_close(Rig *r) {
    App *a = &r->a;
    app_stop_training(a);
    recon_gpu_destroy(a->rg);
    app_rig_close(a, &r->q);
}

// ---------------------------------------------------------------- cases

// The route: interop while it works and output smoothing is off.
TEST_IMPL(route_needs_interop_and_no_smoothing) {
    Stub s = {.gate = 1};
    ReconGpu *rg = recon_gpu_open(&stub_ops, &s);
    EXPECT(recon_gpu_route(rg, 0) == 1, "interop ok, no smoothing: not the GPU path");
    EXPECT(recon_gpu_route(rg, 0.5f) == 0, "output smoothing (a host pass) on the GPU path");
    EXPECT(recon_gpu_route(NULL, 0) == 0, "no interop, yet the GPU path");
    EXPECT(recon_gpu_ok(NULL) == 0, "recon_gpu_ok(NULL)");
    recon_gpu_destroy(rg);
}

// TABULA_INJECT_INTEROP_FAIL=3: two reconstructions go through the pixel
// buffer, the third show fails; from then on both threads take the host path
// and the picture keeps changing.
TEST_IMPL(interop_failure_falls_back_to_host) {
    Rig r;
    if (rig_open(&r, "3")) return;
    App *a = &r.a;
    Display *d = g_d;
    uint64_t seen = 0;
    double arrival;
    int host = 0, distinct = 0;
    unsigned long last = 0;
    for (int f = 0; f < 60 && host < 8; f++) {
        uint64_t before = rig_rec_seq(&r);
        rig_frame(&r);
        if (!rig_wait_rec(&r, before)) break;
        pthread_mutex_lock(&a->mu);
        int on_gpu = a->rec_on_gpu;
        pthread_mutex_unlock(&a->mu);
        int shown = app_show_recon(a, d, &seen, &arrival);
        if (!on_gpu && shown) {
            host++;
            unsigned long sum = pane_sum(d);
            distinct += sum != last;
            last = sum;
        }
    }
    long shows = __atomic_load_n(&r.stub.shows, __ATOMIC_ACQUIRE);
    EXPECT(shows == 2, "%ld reconstructions went through the pixel buffer, want 2 (the third failed)", shows);
    EXPECT(recon_gpu_ok(a->rg) == 0, "interop still on after the failure");
    EXPECT(host >= 8, "only %d reconstructions through the host after the failure", host);
    EXPECT(distinct >= 7, "the picture changed %d times in %d host reconstructions", distinct, host);
    pthread_mutex_lock(&a->mu);
    EXPECT(a->rec_on_gpu == 0, "the training thread still publishes on the GPU path");
    pthread_mutex_unlock(&a->mu);
    long writes = __atomic_load_n(&r.stub.writes, __ATOMIC_ACQUIRE);
    EXPECT(writes <= 3, "%ld writes into the dead interop path (3 before it failed)", writes);
    rig_close(&r);
}

// A buffer the GPU has not finished writing is not shown (nor mapped): the
// screen keeps the previous picture and the next turn tries again; meanwhile
// the training thread queues no more behind it; the show happens outside the
// app's lock.
TEST_IMPL(unwritten_buffer_waits_for_a_later_turn) {
    Rig r;
    if (rig_open(&r, NULL)) return;
    App *a = &r.a;
    Display *d = g_d;
    uint64_t seen = 0;
    double arrival;
    __atomic_store_n(&r.stub.gate, 0, __ATOMIC_RELEASE);
    for (int f = 0; f < 5; f++) {
        uint64_t before = rig_rec_seq(&r);
        rig_frame(&r);
        EXPECT(rig_wait_rec(&r, before), "frame %d: no reconstruction published", f);
        EXPECT(app_show_recon(a, d, &seen, &arrival) == 0, "frame %d: shown before it was written", f);
    }
    EXPECT(r.stub.shows == 0, "%ld shows of unwritten buffers", r.stub.shows);
    long writes = __atomic_load_n(&r.stub.writes, __ATOMIC_ACQUIRE);
    EXPECT(writes == 1, "%ld writes queued while the first was unfinished, want 1", writes);
    EXPECT(seen == 0, "the unshown reconstruction was marked seen");
    __atomic_store_n(&r.stub.gate, 1, __ATOMIC_RELEASE);
    EXPECT(app_show_recon(a, d, &seen, &arrival) == 1, "not shown once written");
    EXPECT(r.stub.shows == 1, "%ld shows", r.stub.shows);
    EXPECT(seen == rig_rec_seq(&r), "seen %llu, published %llu", (unsigned long long)seen,
           (unsigned long long)rig_rec_seq(&r));
    // And the next frames go through again, one each.
    for (int f = 0; f < 3; f++) {
        uint64_t before = rig_rec_seq(&r);
        rig_frame(&r);
        EXPECT(rig_wait_rec(&r, before), "frame %d after: nothing published", f);
        EXPECT(app_show_recon(a, d, &seen, &arrival) == 1, "frame %d after: not shown", f);
    }
    EXPECT(r.stub.shows == 4, "%ld shows, want 4", r.stub.shows);
    EXPECT(r.stub.shown_under_lock == 0, "%ld shows ran under the app's lock", r.stub.shown_under_lock);
    EXPECT(recon_gpu_ok(a->rg) == 1, "interop turned off");
    rig_close(&r);
}

int main(int argc, char **argv) {
    test_ensure_display();
    static const TestCase cases[] = {
        TEST_ENTRY(route_needs_interop_and_no_smoothing),
        TEST_ENTRY(interop_failure_falls_back_to_host),
        TEST_ENTRY(unwritten_buffer_waits_for_a_later_turn),
    };
    int rc = test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
    if (g_d) display_close(g_d);
    return rc;
}
