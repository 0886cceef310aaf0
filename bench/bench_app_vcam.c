// bench_app_vcam.c: what the virtual camera's thread pays per frame: composing
// the layout from two frames of a real clip at the training size (compose.c)
// and converting it to YUYV and to I420 (color.h), at the sizes a virtual
// camera is set to. One thread, as the camera's; the fastest of N frames
// (the least disturbed by other work on a shared machine) and the median.
//   bench_app_vcam [--clip PATH.y4m] [--frames N] [--size WxH]
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "color.h"
#include "compose.h"
#include "frame_fit.h"
#include "parse.h"
#include "source.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Fastest and median of n timings (sorted in place).
static void stats(double *t, int n, double *best, double *med) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    *best = t[0] * 1e3, *med = t[n / 2] * 1e3;
}

static void one(const uint8_t *in, const uint8_t *rec, int tw, int th, int layout, int ow, int oh, int n) {
    ComposeOpts co = {layout, tw, th, ow, oh, 1, 4};
    TbErr err = {{0}};
    Composer *c = compose_new(&co, &err);
    CHECK(c, "%s", err.msg);
    uint8_t *pic = tb_malloc((size_t)ow * oh * 3), *yuv = tb_malloc((size_t)ow * oh * 2);
    double *tc = tb_malloc(n * sizeof *tc), *ty = tb_malloc(n * sizeof *ty), *ti = tb_malloc(n * sizeof *ti);
    size_t np = (size_t)ow * oh;
    for (int k = 0; k < n; k++) {
        double t0 = tb_now();
        compose_frame(c, in, NULL, rec, pic);
        double t1 = tb_now();
        rgb_to_yuyv(yuv, pic, ow, oh, 0);
        double t2 = tb_now();
        rgb_to_i420(yuv, yuv + np, yuv + np + np / 4, pic, ow, oh, 0);
        tc[k] = t1 - t0, ty[k] = t2 - t1, ti[k] = tb_now() - t2;
    }
    static const char *names[] = {"mirror", "side", "triptych"};
    double cb, cm, yb, ym, ib, im;
    stats(tc, n, &cb, &cm), stats(ty, n, &yb, &ym), stats(ti, n, &ib, &im);
    printf("| %s | %dx%d | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f |\n", names[layout], ow, oh, cb, cm, yb, ym,
           ib, im);
    compose_free(c);
    free(pic), free(yuv), free(tc), free(ty), free(ti);
}

int main(int argc, char **argv) {
    const char *clip = "../shared/data/hikers_forest_320x240.y4m";
    int n = 100, tw = 256, th = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--clip")) clip = argv[i + 1];
        else if (!strcmp(argv[i], "--frames")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) CHECK(tb_parse_size(argv[i + 1], 16, 4096, &tw, &th) == 0, "--size");
    }
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", clip);
    TbErr err = {{0}};
    Source *s = source_open(spec, NULL, &err);
    CHECK(s, "%s", err.msg);
    uint8_t *raw = tb_malloc((size_t)s->width * s->height * 3);
    uint8_t *in = tb_malloc((size_t)tw * th * 3), *rec = tb_malloc((size_t)tw * th * 3);
    CHECK(s->read(s, raw, &err) == 1, "%s", err.msg);
    frame_fit(in, tw, th, raw, s->width, s->height);
    for (int k = 0; k < 60; k++) CHECK(s->read(s, raw, &err) == 1, "%s", err.msg);
    frame_fit(rec, tw, th, raw, s->width, s->height);  // a frame two seconds on, for the other pane
    printf("%d frames each, training size %dx%d; ms per frame, fastest / median\n\n", n, tw, th);
    printf("| layout | size | compose | RGB -> YUYV | RGB -> I420 |\n|---|---|---|---|---|\n");
    for (int layout = 0; layout < 3; layout++) one(in, rec, tw, th, layout, 1280, 720, n);
    one(in, rec, tw, th, 1, 640, 360, n);
    one(in, rec, tw, th, 1, 1920, 1080, n);
    source_close(s);
    free(raw), free(in), free(rec);
    return 0;
}
