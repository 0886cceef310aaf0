// bench_app_atlas.c: what the layer atlas and journeys cost the training
// thread per frame, on the CPU backend: reading every activation out
// (atlas_read), drawing the picture (atlas_draw), the solo view's decode, and
// one journey frame (the decoder alone on an interpolated code), beside one
// training step for scale. Trained a few steps on a real clip first.
//   bench_app_atlas [--size 256x256] [--n 50] [--clip PATH.y4m]
// Prints one line per part: median and 95th percentile in ms.
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atlas.h"
#include "journey.h"
#include "parse.h"
#include "settings.h"
#include "source.h"
#include "trainer.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%-28s median %7.2f ms   p95 %7.2f ms\n", what, 1e3 * t[n / 2], 1e3 * t[(n * 95) / 100]);
}

int main(int argc, char **argv) {
    int W = 256, H = 256, n = 50;
    const char *clip = "../shared/data/hikers_forest_320x240.y4m";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) tb_parse_size(argv[i + 1], 16, 4096, &W, &H);
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clip")) clip = argv[i + 1];
    }
    if (n < 1 || n > 10000) n = 50;
    TbErr err = {{0}};
    char spec[600];
    snprintf(spec, sizeof spec, "file:%s", clip);
    Source *src = source_open(spec, NULL, &err);
    if (!src) {
        fprintf(stderr, "bench_app_atlas: %s\n", err.msg);
        return 2;
    }
    Settings s;
    settings_default(&s);
    TrainerConfig tc = {.spec = model_spec_default(W, H), .backend = "cpu", .ring = 8, .max_batch = 1, .seed = 1};
    tc.hyper = (Hyper){.optimizer = OPT_SGD, .lr = s.lr, .momentum = s.momentum, .clip = s.clip};
    Trainer t;
    if (trainer_init(&t, &tc, &err)) {
        fprintf(stderr, "bench_app_atlas: %s\n", err.msg);
        return 2;
    }
    const Model *m = &t.model;
    int nb = model_bottleneck_act(m);
    float *acts = tb_malloc(m->act_total * sizeof(float)), *scratch = tb_malloc(m->act_n[nb] * sizeof(float));
    uint8_t *pic = tb_malloc(atlas_max_bytes(m)), *rgb = tb_malloc((size_t)W * H * 3);
    double *tr = tb_malloc(n * sizeof(double)), *ts = tb_malloc(n * sizeof(double));
    double *tread = tb_malloc(n * sizeof(double)), *tdraw = tb_malloc(n * sizeof(double));
    double *tsolo = tb_malloc(n * sizeof(double)), *tjour = tb_malloc(n * sizeof(double));
    Journey j;
    journey_init(&j, m->act_n[nb], (size_t)W * H * 3, JOURNEY_SLERP, 1.0f);
    StepStats st[TB_STATS_RING];
    uint8_t *f = tb_malloc((size_t)src->width * src->height * 3);  // a Y4M keeps its size
    for (int k = 0; k < n + 10; k++) {
        int fw = src->width, fh = src->height;
        if (src->read(src, f, &err) != 1) {
            fprintf(stderr, "bench_app_atlas: %s\n", err.msg);
            return 2;
        }
        trainer_push_frame(&t, f, fw, fh);
        double t0 = tb_now();
        trainer_train(&t, 1, 0);
        trainer_read_stats(&t, st);
        double t1 = tb_now();
        if (k < 2) journey_store_trainer(&j, &t, -1);
        if (k < 10) continue;  // warm-up: caches, oneDNN's primitives
        int i = k - 10;
        ts[i] = t1 - t0;
        t0 = tb_now();
        atlas_read(t.be, m, acts);
        tread[i] = tb_now() - t0;
        t0 = tb_now();
        atlas_draw(m, -1, acts, rgb, pic);
        tdraw[i] = tb_now() - t0;
        t0 = tb_now();
        atlas_solo(t.be, m, acts + m->act_off[nb], 0, 1, scratch, rgb);
        tsolo[i] = tb_now() - t0;
        journey_start(&j, 0);
        t0 = tb_now();
        journey_render(&j, &t, 0.37, rgb);
        tjour[i] = tb_now() - t0;
        tr[i] = tread[i] + tdraw[i];
    }
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int aw, ah;
    atlas_geometry(m, -1, 1, b, &aw, &ah);
    printf("atlas at %dx%d, default net: picture %dx%d, %d frames, read-out %.1f MB a frame\n", W, H, aw, ah, n,
           m->act_total * sizeof(float) / 1e6);
    report("training step (batch 1)", ts, n);
    report("atlas read-out", tread, n);
    report("atlas draw", tdraw, n);
    report("atlas read-out + draw", tr, n);
    report("solo view (mask + decode)", tsolo, n);
    report("journey frame (slerp+decode)", tjour, n);
    journey_free(&j);
    trainer_free(&t);
    source_close(src);
    free(f);
    return 0;
}
