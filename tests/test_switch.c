// test_switch.c: why it exists: the loss (mse|l1) and the optimizer (sgd|adam)
// are live rows of the table, so a player flips them mid-run, as often as they
// like, on weights trained under the other choice. If a switch left stale state
// behind (Adam's moments fed to SGD, a loss the step ignores, a gradient of the
// wrong scale) the run would blow up to NaN or quietly stop learning, and no
// single-setting test would see it. So: the CPU backend trains the default
// network at 64x64 on a real clip, switching every 20 frames for 120 frames,
// and every loss and every weight must stay finite, the loss reported must be
// the one in force, and the reconstruction must end clearly better than it
// started.
#include <math.h>
#include <string.h>

#include "source.h"
#include "settings_trainer.h"
#include "test.h"

#define FRAMES 120
#define PHASE 20  // frames between switches
#define NPHASES (FRAMES / PHASE)

// What each 20 frames train with: every boundary switches the loss, the
// optimizer or both, and all four pairs occur.
static const struct {
    int loss, optimizer;
} PHASES[NPHASES] = {{LOSS_MSE, OPT_SGD}, {LOSS_L1, OPT_SGD},  {LOSS_L1, OPT_ADAM},
                     {LOSS_MSE, OPT_ADAM}, {LOSS_MSE, OPT_SGD}, {LOSS_L1, OPT_ADAM}};

typedef struct {
    int ready;
    float loss[FRAMES];        // the loss reported for each frame's step
    int finite_weights[NPHASES];  // weights all finite at the end of each phase
    double err_start, err_end;    // reconstruction error (mean squared, pixels in [0,1])
} Switched;
static Switched run_;

// Mean squared difference between the reconstruction of the newest frame
// (forward pass only) and that frame, pixels in [0,1]: the same measure
// whichever loss is in force.
static double recon_error(Trainer *t) {
    size_t n = (size_t)t->model.spec.width * t->model.spec.height * 3;
    uint8_t *out = tb_malloc(n);
    trainer_train(t, 0, 0);
    trainer_output(t, out);
    const uint8_t *in = trainer_newest(t);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = ((double)out[i] - (double)in[i]) / 255.0;
        s += d * d;
    }
    free(out);
    return s / (double)n;
}

static int weights_finite(Trainer *t) {
    size_t n = t->model.n_params;
    float *p = tb_malloc(n * sizeof(float));
    t->be->get_params(t->be, p);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) ok = isfinite(p[i]);
    free(p);
    return ok;
}

static Switched *switched(void) {
    Switched *r = &run_;
    if (r->ready) return r;
    r->ready = 1;
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.width = 64;
    s.height = 64;
    TbErr err = {{0}};
    Source *src = source_open_y4m(test_data("asl_signer_a_320x240.y4m"), &err);
    if (!src) TEST_SKIP("%s", err.msg);
    Trainer t;
    CHECK(trainer_init_settings(&t, &s, NULL, &err) == 0, "%s", err.msg);
    const float sgd_lr = s.lr;  // the table's default for SGD (2, with clip 0.1)
    uint8_t *rgb = tb_malloc((size_t)src->width * src->height * 3);
    for (int f = 0; f < FRAMES; f++) {
        if (f % PHASE == 0) {
            int p = f / PHASE;
            trainer_set_optimizer(&t, PHASES[p].optimizer);
            t.hyper.lr = PHASES[p].optimizer == OPT_ADAM ? 1e-3f : sgd_lr;
            t.hyper.loss = PHASES[p].loss;
        }
        int w = src->width, h = src->height;
        CHECK(src->read(src, rgb, &err) == 1, "frame %d: %s", f, err.msg);
        trainer_push_frame(&t, rgb, w, h);
        if (f == 0) r->err_start = recon_error(&t);
        trainer_train(&t, 1, s.memory);
        StepStats st[TB_STATS_RING];
        int k = trainer_read_stats(&t, st);
        CHECK(k == 1, "frame %d: %d stats", f, k);
        r->loss[f] = st[0].loss;
        if (f % PHASE == PHASE - 1) r->finite_weights[f / PHASE] = weights_finite(&t);
    }
    r->err_end = recon_error(&t);
    printf("reconstruction error %.6f -> %.6f; loss by phase (first, last):", r->err_start,
           r->err_end);
    for (int p = 0; p < NPHASES; p++)
        printf(" %s/%s %.5f %.5f", PHASES[p].loss == LOSS_L1 ? "l1" : "mse",
               PHASES[p].optimizer == OPT_ADAM ? "adam" : "sgd", (double)r->loss[p * PHASE],
               (double)r->loss[p * PHASE + PHASE - 1]);
    printf("\n");
    free(rgb);
    trainer_free(&t);
    source_close(src);
    return r;
}

// Loss by phase (first frame, last frame), measured: mse/sgd 0.05094 0.02682,
// l1/sgd 0.12805 0.05857, l1/adam 0.06778 0.03886, mse/adam 0.00422 0.00831,
// mse/sgd 0.00738 0.00800, l1/adam 0.06351 0.03051.
TEST_IMPL(every_loss_finite_across_switches) {
    Switched *r = switched();
    int bad = -1;
    for (int f = 0; f < FRAMES && bad < 0; f++)
        if (!isfinite(r->loss[f]) || r->loss[f] <= 0) bad = f;
    EXPECT(bad < 0, "frame %d (phase %d): loss %g", bad, bad / PHASE,
           bad >= 0 ? (double)r->loss[bad] : 0.0);
}

TEST_IMPL(weights_finite_after_every_phase) {
    Switched *r = switched();
    for (int p = 0; p < NPHASES; p++)
        EXPECT(r->finite_weights[p], "a weight is not finite after phase %d", p);
}

// Against the same pixels L1 >= MSE (|e| >= e^2 for |e| <= 1), and on these
// frames by far: each switch shows as a jump in the loss reported, so the
// step really minimises (and reports) the loss in force. Measured at the three
// switches of loss: mse 0.02682 -> l1 0.12805 (4.8x), l1 0.03886 -> mse
// 0.00422 (9.2x), mse 0.00800 -> l1 0.06351 (7.9x); asked: 3x.
TEST_IMPL(the_loss_reported_is_the_one_in_force) {
    Switched *r = switched();
    for (int p = 1; p < NPHASES; p++) {
        if (PHASES[p].loss == PHASES[p - 1].loss) continue;
        double before = r->loss[p * PHASE - 1], after = r->loss[p * PHASE];
        if (PHASES[p].loss == LOSS_L1)
            EXPECT(after > 3 * before, "phase %d: mse %.5f then l1 %.5f", p, before, after);
        else
            EXPECT(after < before / 3, "phase %d: l1 %.5f then mse %.5f", p, before, after);
    }
}

// Measured (seed 1, OMP_NUM_THREADS=2 as under CTest): 0.050932 -> 0.002488
// (1 thread: -> 0.002385), i.e. about 12.9 dB -> 26 dB; asked: at least 5x lower.
TEST_IMPL(reconstruction_clearly_better_after_120_switching_frames) {
    Switched *r = switched();
    EXPECT(r->err_end < 0.2 * r->err_start, "reconstruction error %.6f -> %.6f", r->err_start,
           r->err_end);
}

TEST_MAIN(TEST_ENTRY(every_loss_finite_across_switches), TEST_ENTRY(weights_finite_after_every_phase),
          TEST_ENTRY(the_loss_reported_is_the_one_in_force),
          TEST_ENTRY(reconstruction_clearly_better_after_120_switching_frames))
