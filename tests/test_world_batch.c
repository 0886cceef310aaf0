// test_world_batch.c: why it exists: theme training (--train-world) learns from
// batches of random crops through trainer_train_batch. If a batch of B did not
// give the mean of its B samples' gradients, a world trained with batch 4
// would be another network than the one the PyTorch reference describes, and
// the lr would mean something else at each batch size. If the crops were not
// the random scale, place and flip they claim (always centred, never
// mirrored), a world would learn its few photos by heart instead of a theme.
// The lr schedule must warm up, peak and end where it says.
#include <string.h>

#include "augment.h"
#include "frame_fit.h"
#include "settings_trainer.h"
#include "test.h"
#include "world_train.h"

enum { W = 32, H = 32, B = 4 };

// Four real frames of the hikers clip fitted to W x H.
static void real_frames(uint8_t *out) {
    TbErr err = {{0}};
    Source *s = source_open_y4m(test_data("hikers_forest_320x240.y4m"), &err);
    CHECK(s, "%s (set TABULA_DATA)", err.msg);
    uint8_t *rgb = tb_malloc((size_t)s->width * s->height * 3);
    for (int i = 0; i < 4 * 20; i++) {
        CHECK(s->read(s, rgb, &err) == 1, "%s", err.msg);
        if (i % 20 == 0) frame_fit(out + (size_t)(i / 20) * W * H * 3, W, H, rgb, s->width, s->height);
    }
    free(rgb);
    source_close(s);
}

// Plain SGD (no momentum, clip or decay) at lr 1: the weights move by exactly
// minus the gradient, so the change after one step is the gradient.
static void sgd_trainer(Trainer *t, const char *transform) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H;
    snprintf(s.channels, sizeof s.channels, "8,16");
    snprintf(s.transform, sizeof s.transform, "%s", transform);
    s.blur = strcmp(transform, "none") ? 2 : 1;
    s.lr = 1, s.momentum = 0, s.clip = 0, s.weight_decay = 0;
    TbErr err = {{0}};
    CHECK(trainer_init_settings(t, &s, NULL, &err) == 0, "%s", err.msg);
}

// The gradient of one step on frames[0..n) from weights w0.
static void step_delta(Trainer *t, const float *w0, const uint8_t *const *frames, int n, float *d) {
    size_t np = t->model.n_params;
    t->be->set_params(t->be, w0);
    trainer_train_batch(t, frames, n);
    StepStats st[TB_STATS_RING];
    trainer_read_stats(t, st);
    t->be->get_params(t->be, d);
    for (size_t i = 0; i < np; i++) d[i] = w0[i] - d[i];
}

// Measured on this machine (oneDNN and GEMM paths alike): max error 2.1e-6 of
// the largest gradient entry, with and without a transform (grey + blur 2: the
// targets path); that is the rounding of w - (w - g) in float. 1e-5 leaves
// room for another summation order; a batch that summed instead of averaging
// is off by 300%.
TEST_IMPL(batch_gradient_is_mean_of_singles) {
    uint8_t *px = tb_malloc((size_t)B * W * H * 3);
    real_frames(px);
    const uint8_t *frames[B];
    for (int i = 0; i < B; i++) frames[i] = px + (size_t)i * W * H * 3;
    const char *tfs[] = {"none", "grey"};
    for (int k = 0; k < 2; k++) {
        Trainer t;
        sgd_trainer(&t, tfs[k]);
        size_t np = t.model.n_params;
        float *w0 = tb_malloc(np * 4), *db = tb_malloc(np * 4), *di = tb_malloc(np * 4), *mean = tb_calloc(np, 4);
        t.be->get_params(t.be, w0);
        step_delta(&t, w0, frames, B, db);
        for (int i = 0; i < B; i++) {
            step_delta(&t, w0, frames + i, 1, di);
            for (size_t j = 0; j < np; j++) mean[j] += di[j] / B;
        }
        double e = max_rel_err(db, mean, np, 1e-12);
        printf("transform %s: batch of %d vs mean of singles: max rel err %.3g\n", tfs[k], B, e);
        EXPECT(e < 1e-5, "transform %s: %.3g", tfs[k], e);
        free(w0), free(db), free(di), free(mean);
        trainer_free(&t);
    }
    free(px);
}

// A source whose red is x and green is y (200 x 100): a crop's corners say
// where it came from and whether it was mirrored.
TEST_IMPL(augment_scales_crops_and_flips) {
    enum { SW = 200, SH = 100, D = 32 };
    uint8_t *src = tb_malloc(SW * SH * 3), dst[D * D * 3];
    for (int y = 0; y < SH; y++)
        for (int x = 0; x < SW; x++) {
            uint8_t *p = src + (y * SW + x) * 3;
            p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = 7;
        }
    TbRng rng;
    tb_rng_seed(&rng, 3);
    int flips = 0, small = 0, n = 400, x_lo = 255, x_hi = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        augment_crop(dst, D, D, src, SW, SH, 0.25f, &rng);
        int left = dst[(D / 2 * D) * 3], right = dst[(D / 2 * D + D - 1) * 3];
        int top = dst[(D / 2) * 3 + 1], bottom = dst[((D - 1) * D + D / 2) * 3 + 1];
        int span = abs(right - left) + 1, vspan = bottom - top + 1;
        flips += right < left;
        small += span < 50;
        x_lo = left < x_lo ? left : x_lo, x_hi = right > x_hi ? right : x_hi;
        // Square crops (D x D's aspect) of 25 to 100 rows; blue untouched.
        ok &= abs(span - vspan) <= 3 && vspan >= 25 - 3 && vspan <= 100 && dst[2] == 7;
    }
    printf("%d crops: %d mirrored, %d narrower than half the height, x from %d to %d\n", n, flips, small, x_lo, x_hi);
    EXPECT(ok, "a crop was not square, out of its scale range, or changed blue");
    EXPECT(flips > n / 2 - 60 && flips < n / 2 + 60, "%d of %d mirrored", flips, n);
    EXPECT(small > n / 10, "only %d small crops", small);
    EXPECT(x_lo < 10 && x_hi > SW - 10, "crops cover x %d..%d only", x_lo, x_hi);
    // scale_min 1 on a source of dst's size: the frame itself or its mirror.
    uint8_t same[D * D * 3], out[D * D * 3];
    for (int i = 0; i < D * D * 3; i++) same[i] = (uint8_t)(i * 7);
    int exact = 1;
    for (int i = 0; i < 20; i++) {
        augment_crop(out, D, D, same, D, D, 1.0f, &rng);
        int id = memcmp(out, same, sizeof out) == 0, mir = 1;
        for (int y = 0; y < D; y++)
            for (int x = 0; x < D; x++) mir &= memcmp(out + (y * D + x) * 3, same + (y * D + D - 1 - x) * 3, 3) == 0;
        exact &= id || mir;
    }
    EXPECT(exact, "a full-size crop was neither the frame nor its mirror");
    free(src);
}

TEST_IMPL(lr_schedules) {
    long n = 1000;  // warm-up: 20 steps
    EXPECT_NEAR(world_lr_at("cosine", 1e-3f, 0, n), 1e-3 / 20, 1e-9, "first warm-up step");
    EXPECT_NEAR(world_lr_at("cosine", 1e-3f, 19, n), 1e-3, 1e-9, "peak after warm-up");
    EXPECT_NEAR(world_lr_at("cosine", 1e-3f, 20 + 490, n), 5e-4, 2e-6, "cosine half way");
    EXPECT(world_lr_at("cosine", 1e-3f, n - 1, n) < 1e-7, "cosine ends near 0");
    EXPECT_NEAR(world_lr_at("step", 1e-3f, 500, n), 1e-3, 1e-9, "step: before 60%%");
    EXPECT_NEAR(world_lr_at("step", 1e-3f, 700, n), 1e-4, 1e-9, "step: after 60%%");
    EXPECT_NEAR(world_lr_at("step", 1e-3f, 990, n), 1e-5, 1e-10, "step: after 85%%");
    EXPECT_NEAR(world_lr_at("constant", 1e-3f, 990, n), 1e-3, 1e-9, "constant");
}

TEST_MAIN(TEST_ENTRY(batch_gradient_is_mean_of_singles), TEST_ENTRY(augment_scales_crops_and_flips),
          TEST_ENTRY(lr_schedules))
