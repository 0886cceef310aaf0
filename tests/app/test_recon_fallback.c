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
#include <string.h>

#include "app_rig.h"
#include "live.h"
#include "stage_stub.h"
#include "test.h"
#include "xvfb.h"

enum { W = 32, H = 32 };

// ---------------------------------------------------------------- helpers

static Display *window(void) { return app_rig_window(320, 240, W, H, DISPLAY_MIRROR); }

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

// stage_stub.h's, drawing the backend's reconstruction (held back while its
// `gate` is 0, as a GPU still running the step would) into the display's
// reconstruction pixel buffer.
static void recon_draw(StageStub *s, uint8_t *rgb, int *w, int *h) {
    trainer_output(&s->a->run.t, rgb);
    *w = W, *h = H;
}

static void recon_from_pbo(int w, int h) { display_recon_from_pbo(window()); }

// ---------------------------------------------------------------- the app around it

// What app_run sets up for the two threads, on the CPU backend, with the
// stand-in as the interop path and the training thread running.
typedef struct {
    Settings s;
    ControlQueue q;
    App a;
    StageStub stub;
} Rig;

static int rig_open(Rig *r, const char *inject) {
    memset(r, 0, sizeof *r);
    app_rig_settings(&r->s, W, H, "8,16");  // small and quick
    App *a = &r->a;
    if (app_rig_open(a, &r->s, &r->q)) return -1;
    r->stub = (StageStub){.a = a, .pbo = display_recon_pbo(window(), W, H), .draw = recon_draw,
                          .from_pbo = recon_from_pbo, .gate = 1};
    EXPECT(r->stub.pbo != 0, "no pixel buffer");
    stage_stub_alloc(&r->stub, W * H * 3);
    a->rg = stage_stub_open(&r->stub, inject, recon_gpu_open);
    CHECK(pthread_create(&a->thread, NULL, train_thread_main, a) == 0, "pthread_create");
    return 0;
}

// A new camera frame for the training thread, as app.c's hand_frame gives it:
// a pattern that moves with every frame.
static void rig_frame(Rig *r) {
    App *a = &r->a;
    pthread_mutex_lock(&a->mu);
    stage_frame(a, W, H, 5, 3);
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
    stage_stub_free(&r->stub);
    app_rig_close(a, &r->q);
}

// ---------------------------------------------------------------- cases

// The route: interop while it works and output smoothing is off.
TEST_IMPL(route_needs_interop_and_no_smoothing) {
    StageStub s = {.gate = 1};
    ReconGpu *rg = recon_gpu_open(&stage_stub_ops, &s);
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
    Display *d = window();
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
    Display *d = window();
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
    if (app_rig_win) display_close(app_rig_win);
    return rc;
}
