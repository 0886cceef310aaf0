// test_channels.c: why it exists: [channels] runs several networks on the same
// frames (src/cli/channels.h). Each must be exactly the network its settings
// describe (coupling 0 changes nothing, bit for bit), different settings must
// learn differently, coupling must draw the weights together, a history
// channel must show channel 0's weights from the snapshot it names, an
// event for one channel must reach that channel alone, coupling inside the
// backends must give the host path's bits, and a device no backend has must
// be refused. A real clip at 32x32
// through a small net (8,16): hikers_forest, video by Peter Stevens
// (https://www.flickr.com/photos/nordique/4094034478/), CC BY 2.0, trimmed,
// scaled and converted (../shared/data/LICENSES.md; README "Credits").
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "run.h"
#include "session.h"
#include "source.h"
#include "test.h"

enum { W = 32, H = 32 };

static Settings settings(float lr) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H, s.lr = lr, s.headless = 1, s.fps = 10;
    snprintf(s.backend, sizeof s.backend, "cpu");
    snprintf(s.channels, sizeof s.channels, "8,16");
    snprintf(s.scenes, sizeof s.scenes, "%s", "");
    return s;
}

// n frames of the clip through r; after each, hook(user, r, frame) if given.
static int feed(Run *r, int n, void (*hook)(void *, Run *, int), void *user) {
    TbErr err = {{0}};
    Source *src = source_open_y4m(test_data("hikers_forest_320x240.y4m"), &err);
    EXPECT(src != NULL, "%s (set TABULA_DATA)", err.msg);
    if (!src) return 0;
    uint8_t *rgb = tb_malloc((size_t)src->width * src->height * 3);
    for (int i = 0; i < n; i++) {
        CHECK(src->read(src, rgb, &err) == 1, "%s", err.msg);
        run_frame(r, rgb, src->width, src->height);
        if (hook) hook(user, r, i);
    }
    free(rgb);
    source_close(src);
    return 1;
}

static int open_run(Run *r, const Settings *s) {
    TbErr err = {{0}};
    int rc = run_open(r, s, NULL, &err);
    EXPECT(rc == 0, "%s", err.msg);
    return rc == 0;
}

static float *params_of(const Trainer *t) {
    float *p = tb_malloc(t->model.n_params * sizeof(float));
    t->be->get_params(t->be, p);
    return p;
}

// The losses of a metrics file, one per line (at most max).
static int read_losses(const char *path, float *out, int max) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        const char *l = strstr(line, "\"loss\":");
        if (l) out[n++] = strtof(l + 7, NULL);
    }
    fclose(f);
    return n;
}

TEST_IMPL(couple_matches_ref_and_pulls_to_the_mean) {
    enum { N = 70000, K = 3 };
    float *a[K], *b[K];
    TbRng rng;
    tb_rng_seed(&rng, 7);
    for (int j = 0; j < K; j++) {
        a[j] = tb_malloc(N * sizeof(float)), b[j] = tb_malloc(N * sizeof(float));
        for (int i = 0; i < N; i++) a[j][i] = b[j][i] = tb_rng_normal(&rng);
    }
    couple(a, K, N, 0);
    EXPECT(memcmp(a[0], b[0], N * sizeof(float)) == 0, "c = 0 leaves the weights bit for bit");
    couple(a, K, N, 0.25f);
    couple_ref(b, K, N, 0.25f);
    double worst = 0;
    for (int j = 0; j < K; j++) worst = fmax(worst, max_rel_err(a[j], b[j], N, 1));
    EXPECT(worst < 1e-6, "couple vs couple_ref: %.3g", worst);
    // The gap between two blocks shrinks by exactly 1 - c (up to rounding).
    double before = 0, after = 0;
    for (int i = 0; i < N; i++) before += fabs((double)a[0][i] - a[1][i]);
    couple(a, K, N, 0.5f);
    for (int i = 0; i < N; i++) after += fabs((double)a[0][i] - a[1][i]);
    EXPECT_NEAR(after / before, 0.5, 1e-5, "gap after c = 0.5");
    couple(a, K, N, 1);
    for (int i = 0; i < N; i++) EXPECT(a[0][i] == a[1][i] && a[1][i] == a[2][i], "c = 1: not the mean at %d", i);
    for (int j = 0; j < K; j++) free(a[j]), free(b[j]);
}

// K trainers of the (16,32) net at 32x32 with seeds 1..K, made on conv path
// `impl[j]` each (its layouts are fixed when the backend is made).
enum { NETS = 4 };
static int nets_open(Trainer *t, const int *impl) {
    for (int j = 0; j < NETS; j++) {
        Settings s = settings(0.5f);
        snprintf(s.channels, sizeof s.channels, "16,32");
        s.seed = 1 + j;
        TrainerConfig tc;
        TbErr err = {{0}};
        CHECK(conv_impl_set(impl[j]) == 0, "conv path %d", impl[j]);
        int rc = session_trainer_config(&s, NULL, &tc, &err) || trainer_init(&t[j], &tc, &err);
        EXPECT(rc == 0, "%s", err.msg);
        if (rc) return 0;
    }
    return 1;
}

// backend_couple against the host path (get_params, couple(), set_params) on
// the same weights: the same bits, inside the CPU backends when they share a
// layout (the GEMM path's NCHW, or oneDNN's blocked weights alike in each),
// through the host when they do not (one net made on each path).
TEST_IMPL(backend_couple_matches_host_path) {
    int was = conv_impl(), have_dnnl = conv_impl_set(CONV_IMPL_DNNL) == 0;
    int paths[3][NETS] = {{CONV_IMPL_GEMM, CONV_IMPL_GEMM, CONV_IMPL_GEMM, CONV_IMPL_GEMM},
                          {CONV_IMPL_DNNL, CONV_IMPL_DNNL, CONV_IMPL_DNNL, CONV_IMPL_DNNL},
                          {CONV_IMPL_DNNL, CONV_IMPL_GEMM, CONV_IMPL_DNNL, CONV_IMPL_GEMM}};
    const char *name[3] = {"GEMM", "oneDNN", "mixed"};
    if (!have_dnnl) printf("no oneDNN in this build: the GEMM path alone\n");
    for (int p = 0; p < (have_dnnl ? 3 : 1); p++) {
        Trainer t[NETS];
        if (!nets_open(t, paths[p])) return;
        size_t n = t[0].model.n_params;
        float *host[NETS], *want[NETS];
        Backend *bs[NETS];
        for (int j = 0; j < NETS; j++) {
            bs[j] = t[j].be;
            host[j] = tb_malloc(n * sizeof(float));
            want[j] = params_of(&t[j]);
        }
        couple(want, NETS, n, 0.1f);
        int inside = backend_couple(bs, NETS, 0.1f, host);
        EXPECT(inside == (p < 2), "%s: coupled %s", name[p], inside ? "inside" : "through the host");
        for (int j = 0; j < NETS; j++) {
            float *got = params_of(&t[j]);
            EXPECT(memcmp(got, want[j], n * sizeof(float)) == 0, "%s: net %d differs from the host path",
                   name[p], j);
            free(got), free(host[j]), free(want[j]);
            trainer_free(&t[j]);
        }
        printf("%s: %zu weights x %d nets coupled %s, the host path's bits\n", name[p], n, NETS,
               inside ? "in the backends" : "through host copies");
    }
    conv_impl_set(was);
}

// [ch1] in a file, --ch2.key on the command line, and the errors that name them.
TEST_IMPL(settings_read_channel_sections) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-ch-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "[channels]\ncount = 3\ncoupling = 0.05\n[ch1]\nlr = 0.1\nmomentum = 0.99\ndevice = 1\n"
               "[ch2]\nkind = history\nminutes = 5\nrefresh_s = 30\n");
    fclose(f);
    Settings s;
    settings_default(&s);
    TbErr err = {{0}};
    EXPECT(settings_load_file(&s, path, &err) == 0, "%s", err.msg);
    EXPECT(s.ch_count == 3 && s.ch_coupling == 0.05f, "count %d coupling %g", s.ch_count, (double)s.ch_coupling);
    EXPECT(s.chan[1].n == 2 && strcmp(s.chan[1].key[1], "momentum") == 0 && strcmp(s.chan[1].val[0], "0.1") == 0,
           "[ch1] overrides");
    EXPECT(strcmp(s.chan[2].kind, "history") == 0 && s.chan[2].minutes == 5 && s.chan[2].refresh_s == 30, "[ch2]");
    EXPECT(s.chan[1].device == 1 && s.chan[2].device == -1 && s.chan[3].device == -1, "device %d %d %d",
           s.chan[1].device, s.chan[2].device, s.chan[3].device);
    // The writer keeps it, and only where it was given.
    static char ini[1 << 16];
    FILE *w = fmemopen(ini, sizeof ini - 1, "w");
    settings_write_ini(&s, w);
    fclose(w);
    const char *ch1 = strstr(ini, "[ch1]"), *ch2 = strstr(ini, "[ch2]");
    EXPECT(ch1 && ch2 && strstr(ch1, "device = 1") && strstr(ch1, "device = 1") < ch2 &&
               !strstr(ch2, "device ="),
           "written: %s", ch1 ? ch1 : ini);
    EXPECT(settings_set(&s, "ch2.device", "-2", &err) == -1 && strstr(err.msg, "[ch2] device"), "-2: %s", err.msg);
    EXPECT(settings_set(&s, "ch2.device", "gpu1", &err) == -1 && strstr(err.msg, "[ch2] device"), "gpu1: %s",
           err.msg);
    char *argv[] = {"tabula", "--ch1.lr", "3", "--ch3.memory=2"};
    EXPECT(settings_parse_args(&s, 4, argv, &err) == 0, "%s", err.msg);
    EXPECT(s.chan[1].n == 2 && strcmp(s.chan[1].val[0], "3") == 0, "--ch1.lr replaces [ch1] lr");
    EXPECT(s.chan[3].n == 1 && strcmp(s.chan[3].val[0], "2") == 0, "--ch3.memory");
    // Out of the row's range, a key no channel takes, a channel past the last.
    EXPECT(settings_set(&s, "ch1.lr", "11", &err) == -1 && strstr(err.msg, "[ch1] lr"), "range: %s", err.msg);
    EXPECT(settings_set(&s, "ch1.width", "32", &err) == -1 && strstr(err.msg, "width"), "width: %s", err.msg);
    EXPECT(settings_set(&s, "ch4.lr", "1", &err) == -1, "ch4: there are 4 channels, 0 to 3");
    f = fopen(path, "w");
    fprintf(f, "[ch2]\nkind = dream\n");
    fclose(f);
    EXPECT(settings_load_file(&s, path, &err) == -1 && strstr(err.msg, ":2:") && strstr(err.msg, "net|history"),
           "bad kind: %s", err.msg);
    unlink(path);
}

// lr 0.5 and lr 4 on the same clip: two metrics files, side by side, whose
// curves differ. Measured (40 frames, 32x32, 8,16, cpu-2c): the mean relative
// gap of the losses is 0.17 (0.35 over 60 frames at 64x64); the check asks for
// 0.08. Channel 1 training with channel 0's lr gives a gap of exactly 0.
TEST_IMPL(different_lr_give_different_curves) {
    char m[64], m1[80];
    snprintf(m, sizeof m, "/tmp/tabula-ch-m-%d.jsonl", (int)getpid());
    channels_metrics_path(m, 1, m1, sizeof m1);
    EXPECT(strstr(m1, ".ch1.jsonl") != NULL, "%s", m1);
    Settings s = settings(0.5f);
    s.ch_count = 2;
    snprintf(s.metrics, sizeof s.metrics, "%s", m);
    TbErr err;
    EXPECT(settings_channel_set(&s, 1, "lr", "4", &err) == 0, "%s", err.msg);
    Run r;
    if (!open_run(&r, &s)) return;
    feed(&r, 40, NULL, NULL);
    run_flush(&r);
    run_close(&r);
    float a[64], b[64];
    int na = read_losses(m, a, 64), nb = read_losses(m1, b, 64);
    EXPECT(na == 40 && nb == 40, "%d and %d lines", na, nb);
    double gap = 0;
    for (int i = 0; i < na && i < nb; i++) gap += fabs(a[i] - b[i]) / fmax(a[i], b[i]);
    gap /= na ? na : 1;
    printf("mean relative loss gap lr 0.5 vs 4: %.3f (last %.5f vs %.5f)\n", gap, (double)a[na - 1],
           (double)b[nb - 1]);
    EXPECT(gap > 0.08, "curves too close: %.3f", gap);
    unlink(m), unlink(m1);
}

// Coupling 0: channel 0 is the single run at lr 0.5 and channel 1 the single
// run at lr 4, bit for bit.
TEST_IMPL(coupling_zero_equals_single_runs) {
    enum { F = 20 };
    Settings s = settings(0.5f), s0 = settings(0.5f), s1 = settings(4);
    s.ch_count = 2;
    TbErr err;
    settings_channel_set(&s, 1, "lr", "4", &err);
    Run r, a, b;
    if (!open_run(&r, &s)) return;
    feed(&r, F, NULL, NULL);
    if (!open_run(&a, &s0)) return;
    feed(&a, F, NULL, NULL);
    if (!open_run(&b, &s1)) return;
    feed(&b, F, NULL, NULL);
    size_t n = r.t.model.n_params;
    float *r0 = params_of(&r.t), *r1 = params_of(&r.chans.ch[1].t), *pa = params_of(&a.t), *pb = params_of(&b.t);
    EXPECT(memcmp(r0, pa, n * sizeof(float)) == 0, "channel 0 differs from the single run at lr 0.5");
    EXPECT(memcmp(r1, pb, n * sizeof(float)) == 0, "channel 1 differs from the single run at lr 4");
    EXPECT(memcmp(pa, pb, n * sizeof(float)) != 0, "the two single runs are the same (nothing measured)");
    EXPECT(r.chans.ch[1].t.step == F && b.t.step == F, "steps %ld %ld", r.chans.ch[1].t.step, b.t.step);
    free(r0), free(r1), free(pa), free(pb);
    run_close(&r), run_close(&a), run_close(&b);
}

// Coupling 0.1 against 0 over the same 30 frames: the weight distance between
// the lr 0.5 and lr 4 networks falls. Measured (32x32, cpu-2c): 0.52 of the
// uncoupled distance (0.35 over 40 frames at 64x64); the check asks for < 0.75
// (no coupling at all gives 1).
TEST_IMPL(coupling_draws_weights_together) {
    enum { F = 30 };
    double d[2];
    for (int k = 0; k < 2; k++) {
        Settings s = settings(0.5f);
        s.ch_count = 2;
        s.ch_coupling = k ? 0.1f : 0;
        TbErr err;
        settings_channel_set(&s, 1, "lr", "4", &err);
        Run r;
        if (!open_run(&r, &s)) return;
        feed(&r, F, NULL, NULL);
        d[k] = channels_distance(&r.chans, &r.t, 1);
        run_close(&r);
    }
    printf("weight distance (rms) after %d frames: coupling 0 %.5g, coupling 0.1 %.5g (ratio %.3f)\n", F, d[0],
           d[1], d[1] / d[0]);
    EXPECT(d[0] > 1e-4, "uncoupled networks did not part (%.3g)", d[0]);
    EXPECT(d[1] < 0.75 * d[0], "coupling 0.1: %.5g vs %.5g uncoupled", d[1], d[0]);
}

// A history channel with a snapshot every second (10 frames at fps 10) and
// 3 s back: at frame 45 (4.5 s) it holds channel 0's weights after frame 10
// (taken at 1 s, the newest at least 3 s old); at frame 20, before any is 3 s
// old, the oldest (frame 0's).
typedef struct {
    float *after[64];
    float *seen[64];
} HistCtx;

static void hist_hook(void *user, Run *r, int f) {
    HistCtx *h = user;
    if (f % 10 == 0) h->after[f] = params_of(&r->t);
    if (f == 20 || f == 45) h->seen[f] = params_of(&r->chans.ch[1].t);
}

TEST_IMPL(history_shows_the_snapshot) {
    Settings s = settings(2);
    s.ch_count = 2;
    TbErr err;
    EXPECT(settings_channel_set(&s, 1, "kind", "history", &err) == 0 &&
               settings_channel_set(&s, 1, "minutes", "0.05", &err) == 0 &&
               settings_channel_set(&s, 1, "refresh_s", "1", &err) == 0,
           "%s", err.msg);
    Run r;
    if (!open_run(&r, &s)) return;
    HistCtx h = {{0}, {0}};
    feed(&r, 46, hist_hook, &h);
    size_t n = r.t.model.n_params, bytes = n * sizeof(float);
    EXPECT(h.seen[20] && memcmp(h.seen[20], h.after[0], bytes) == 0, "frame 20 shows frame 0's weights");
    EXPECT(h.seen[45] && memcmp(h.seen[45], h.after[10], bytes) == 0, "frame 45 shows frame 10's weights");
    EXPECT(memcmp(h.after[10], h.after[40], bytes) != 0, "channel 0 did not move");
    // Its picture is the old network's on today's frame: not channel 0's now.
    uint8_t *o0 = tb_malloc(W * H * 3), *o1 = tb_malloc(W * H * 3);
    run_channel_output(&r, 0, o0);
    run_channel_output(&r, 1, o1);
    long diff = 0;
    for (int i = 0; i < W * H * 3; i++) diff += abs(o0[i] - o1[i]);
    printf("history vs now: mean |difference| %.2f levels\n", (double)diff / (W * H * 3));
    EXPECT(diff > 0, "the history channel shows what channel 0 shows");
    EXPECT(r.chans.ch[1].t.step == 0, "a history channel takes no steps (%ld)", r.chans.ch[1].t.step);
    // Forward only with the snapshot's weights: a trainer given them shows the same.
    Trainer t;
    TrainerConfig tc;
    Settings s1 = s;
    EXPECT(session_trainer_config(&s1, &r.t.model.spec, &tc, &err) == 0 && trainer_init(&t, &tc, &err) == 0,
           "%s", err.msg);
    t.be->set_params(t.be, h.after[10]);
    trainer_push_frame(&t, trainer_newest(&r.t), W, H);
    trainer_train(&t, 0, 0);
    uint8_t *o2 = tb_malloc(W * H * 3);
    trainer_output(&t, o2);
    EXPECT(memcmp(o1, o2, W * H * 3) == 0, "the history picture is frame 10's network on this frame");
    trainer_free(&t);
    free(o0), free(o1), free(o2);
    for (int i = 0; i < 64; i++) free(h.after[i]), free(h.seen[i]);
    run_close(&r);
}

// An event for channel 1 changes channel 1 alone; CH_ALL changes every one;
// coupling is the run's whatever channel it names.
TEST_IMPL(events_address_one_channel) {
    Settings s = settings(0.5f);
    s.ch_count = 3;
    Run r;
    if (!open_run(&r, &s)) return;
    char msg[256];
    run_control(&r, &(ControlEvent){.cmd = CMD_SET, .param = PARAM_LR, .value = 3, .source = SRC_OSC, .ch = 1},
                msg, sizeof msg);
    EXPECT(r.chans.ch[1].p.v[PARAM_LR] == 3 && r.p.v[PARAM_LR] == 0.5f && r.chans.ch[2].p.v[PARAM_LR] == 0.5f,
           "lr %g %g %g", (double)r.p.v[PARAM_LR], (double)r.chans.ch[1].p.v[PARAM_LR],
           (double)r.chans.ch[2].p.v[PARAM_LR]);
    run_control(&r, &(ControlEvent){.cmd = CMD_SET, .param = PARAM_MOMENTUM, .value = 0.5f, .ch = CH_ALL}, msg,
                sizeof msg);
    EXPECT(r.p.v[PARAM_MOMENTUM] == 0.5f && r.chans.ch[1].p.v[PARAM_MOMENTUM] == 0.5f &&
               r.chans.ch[2].p.v[PARAM_MOMENTUM] == 0.5f,
           "all: momentum");
    run_control(&r, &(ControlEvent){.cmd = CMD_SET, .param = PARAM_COUPLING, .value = 0.2f, .ch = 2}, msg, sizeof msg);
    EXPECT(r.p.v[PARAM_COUPLING] == 0.2f, "coupling is the run's: %g", (double)r.p.v[PARAM_COUPLING]);
    run_control(&r, &(ControlEvent){.cmd = CMD_SET, .param = PARAM_LR, .value = 1, .ch = 3}, msg, sizeof msg);
    EXPECT(strstr(msg, "channel 3") != NULL, "no channel 3: %s", msg);
    run_close(&r);
}

// [chN] device picks a CUDA GPU: a channel on the CPU backend refuses it, and
// the CUDA backend one past the machine's devices, each with one message
// naming the channel and the value.
TEST_IMPL(device_refused_where_there_is_none) {
    Settings s = settings(0.5f);
    s.ch_count = 2;
    TbErr err = {{0}};
    EXPECT(settings_channel_set(&s, 1, "device", "0", &err) == 0, "%s", err.msg);
    Run r;
    int rc = run_open(&r, &s, NULL, &err);
    printf("refused: %s\n", err.msg);
    EXPECT(rc == -1 && strstr(err.msg, "[ch1] device = 0") && strstr(err.msg, "CPU backend") &&
               strstr(err.msg, "backend = cuda"),
           "rc %d: %s", rc, err.msg);
    if (rc == 0) run_close(&r);
    // A device the machine does not have (here: none, or fewer than 8), on CUDA.
    settings_channel_set(&s, 1, "backend", "cuda", &err);
    settings_channel_set(&s, 1, "device", "7", &err);
    rc = run_open(&r, &s, NULL, &err);
    printf("refused: %s\n", err.msg);
    EXPECT(rc == -1 && strncmp(err.msg, "[ch1] device = 7: ", 18) == 0, "rc %d: %s", rc, err.msg);
#ifdef TABULA_HAVE_CUDA
    EXPECT(strstr(err.msg, "device 7 asked for") != NULL, "%s", err.msg);
#endif
    if (rc == 0) run_close(&r);
    settings_channel_set(&s, 1, "backend", "cpu", &err);
    settings_channel_set(&s, 1, "device", "-1", &err);  // channel 0's: any backend
    EXPECT(open_run(&r, &s), "device -1 on the CPU");
    run_close(&r);
}

// [schedule] rebirth = fresh: the other nets are reborn with channel 0, each
// from its own seed, as a fresh start has them.
TEST_IMPL(opening_rebirth_reaches_every_channel) {
    Settings s = settings(0.5f);
    s.ch_count = 2;
    snprintf(s.sched_rebirth, sizeof s.sched_rebirth, "fresh");
    TbErr err;
    settings_channel_set(&s, 1, "seed", "9", &err);
    Run fresh, r;
    if (!open_run(&fresh, &s) || !open_run(&r, &s)) return;
    feed(&r, 4, NULL, NULL);
    size_t bytes = r.t.model.n_params * sizeof(float);
    float *before = params_of(&r.chans.ch[1].t), *want = params_of(&fresh.chans.ch[1].t);
    EXPECT(memcmp(before, want, bytes) != 0, "channel 1 did not learn");
    char msg[160];
    run_opening(&r, msg, sizeof msg);
    float *after = params_of(&r.chans.ch[1].t), *other = params_of(&fresh.t);
    EXPECT(memcmp(after, want, bytes) == 0, "channel 1 is not its fresh network (seed 9)");
    EXPECT(memcmp(want, other, bytes) != 0, "seed 9 and seed 1 give the same network");
    EXPECT(r.chans.ch[1].t.ring_len == 0, "yesterday's frames are kept");
    free(before), free(want), free(after), free(other);
    run_close(&r), run_close(&fresh);
}

TEST_MAIN(TEST_ENTRY(couple_matches_ref_and_pulls_to_the_mean), TEST_ENTRY(backend_couple_matches_host_path), TEST_ENTRY(settings_read_channel_sections),
          TEST_ENTRY(different_lr_give_different_curves), TEST_ENTRY(coupling_zero_equals_single_runs),
          TEST_ENTRY(coupling_draws_weights_together), TEST_ENTRY(history_shows_the_snapshot),
          TEST_ENTRY(events_address_one_channel), TEST_ENTRY(device_refused_where_there_is_none), TEST_ENTRY(opening_rebirth_reaches_every_channel))
