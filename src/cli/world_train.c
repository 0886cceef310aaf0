// world_train.c: theme training. The data (an image folder through "dir:", a
// video through "file:") is read once into memory; every step takes a batch of
// random crops of random frames (augment.h) through trainer_train_batch, the
// one batch path the live trainer uses too. Progress, periodic checkpoints and
// a preview image (input | target | output, PPM) along the way.
#define _DEFAULT_SOURCE
#include "world_train.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "augment.h"
#include "checkpoint.h"
#include "frame_fit.h"
#include "session.h"
#include "signals.h"
#include "source.h"

typedef struct {
    int w, h;
    uint8_t *rgb;
} Still;

typedef struct {
    Still *f;
    int n;      // frames read
    int train;  // the first `train` are trained on; the rest are held back
} Data;

static void data_free(Data *d) {
    for (int i = 0; i < d->n; i++) free(d->f[i].rgb);
    free(d->f);
    memset(d, 0, sizeof *d);
}

float world_lr_at(const char *schedule, float peak, long step, long steps) {
    long warm = steps / 50 > 1 ? steps / 50 : 1;
    if (step < warm) return peak * (float)(step + 1) / (float)warm;
    double x = (double)(step - warm) / (double)(steps - warm > 1 ? steps - warm : 1);
    if (strcmp(schedule, "cosine") == 0) return (float)(peak * 0.5 * (1 + cos(M_PI * x)));
    if (strcmp(schedule, "step") == 0) return peak * (x < 0.6 ? 1.0f : x < 0.85 ? 0.1f : 0.01f);
    return peak;
}

// "dir:PATH" for a folder, "file:PATH" for anything else that exists.
static int data_spec(const char *path, char *spec, size_t n, TbErr *err) {
    struct stat st;
    if (stat(path, &st) != 0) return tb_fail(err, "--train-world %s: %s", path, strerror(errno));
    snprintf(spec, n, "%s:%s", S_ISDIR(st.st_mode) ? "dir" : "file", path);
    return 0;
}

// A frame larger than twice the training size (both sides) is kept at twice
// it, aspect kept: the smallest crop (scale_min) still has all the detail the
// network can use, and a folder of camera photos fits in memory.
static void still_shrink(Still *s, int W, int H) {
    double k = fmax(2.0 * W / s->w, 2.0 * H / s->h);
    if (k >= 1) return;
    int w = (int)(s->w * k + 0.5), h = (int)(s->h * k + 0.5);
    uint8_t *small = tb_malloc((size_t)w * h * 3);
    frame_fit(small, w, h, s->rgb, s->w, s->h);
    free(s->rgb);
    *s = (Still){w, h, small};
}

// Frames until the source loops (a frame equal to the first one) or max frames,
// each shrunk to at most twice the training size W x H.
static int data_read(Data *d, const char *path, int max, int W, int H, TbErr *err) {
    char spec[CFG_STR + 8];
    memset(d, 0, sizeof *d);
    if (data_spec(path, spec, sizeof spec, err)) return -1;
    Source *src = source_open(spec, NULL, err);
    if (!src) return -1;
    d->f = tb_calloc((size_t)max, sizeof *d->f);
    Still first = {0, 0, NULL};
    int rc = 0;
    while (d->n < max) {
        Still s = {src->width, src->height, NULL};
        s.rgb = tb_malloc((size_t)s.w * s.h * 3);
        int got = src->read(src, s.rgb, err);
        if (got == 0 && !signals_stop_requested()) {  // a live source: wait for it
            free(s.rgb);
            usleep(1000);
            continue;
        }
        int loop = got > 0 && d->n > 0 && s.w == first.w && s.h == first.h &&
                   memcmp(s.rgb, first.rgb, (size_t)s.w * s.h * 3) == 0;
        if (got <= 0 || loop) {
            free(s.rgb);
            rc = got < 0 ? -1 : 0;
            break;
        }
        if (d->n == 0) {  // the first frame as read: the source loops when it comes again
            first = s;
            first.rgb = tb_malloc((size_t)s.w * s.h * 3);
            memcpy(first.rgb, s.rgb, (size_t)s.w * s.h * 3);
        }
        still_shrink(&s, W, H);
        d->f[d->n++] = s;
    }
    source_close(src);
    free(first.rgb);
    if (!rc && d->n == 0) rc = tb_fail(err, "--train-world %s: no frames", path);
    if (rc) data_free(d);
    return rc;
}

// PSNR (dB) of the trainer's reconstruction of each held-back frame, fitted
// to the training size, from their mean squared error; 0 if none is held back.
static double holdout_psnr(Trainer *t, const Data *d) {
    int W = t->model.spec.width, H = t->model.spec.height;
    size_t n = (size_t)W * H * 3;
    uint8_t *out = tb_malloc(n);
    double se = 0;
    for (int i = d->train; i < d->n; i++) {
        trainer_push_frame(t, d->f[i].rgb, d->f[i].w, d->f[i].h);
        trainer_train(t, 0, 0);  // forward only (no jitter)
        trainer_output(t, out);
        const uint8_t *ref = trainer_newest(t);
        for (size_t k = 0; k < n; k++) se += ((double)out[k] - ref[k]) * ((double)out[k] - ref[k]);
    }
    free(out);
    int held = d->n - d->train;
    if (!held) return 0;
    double mse = se / ((double)n * held) / (255.0 * 255.0);
    return 10 * log10(1.0 / (mse > 1e-12 ? mse : 1e-12));
}

// SAVE minus ".safetensors", plus "-preview.ppm".
static void preview_path(const char *save, char *buf, size_t n) {
    size_t len = strlen(save), ext = strlen(".safetensors");
    if (len > ext && strcmp(save + len - ext, ".safetensors") == 0) len -= ext;
    snprintf(buf, n, "%.*s-preview.ppm", (int)len, save);
}

// Three panes side by side: what the network was given, the crop it learns,
// its output. Written beside, then renamed, so a viewer never reads half a file.
static void preview_write(const char *path, Trainer *t, const uint8_t *target) {
    int W = t->model.spec.width, H = t->model.spec.height;
    uint8_t *out = tb_malloc((size_t)W * H * 3);
    trainer_output(t, out);
    const uint8_t *pane[3] = {trainer_input(t), target, out};
    char tmp[CFG_STR + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL;
    if (ok) {
        fprintf(f, "P6\n%d %d\n255\n", 3 * W, H);
        for (int y = 0; y < H; y++)
            for (int p = 0; p < 3; p++) ok &= fwrite(pane[p] + (size_t)y * W * 3, 3, (size_t)W, f) == (size_t)W;
        ok &= fclose(f) == 0;
    }
    if (!ok || rename(tmp, path) != 0) tb_warn("preview %s: %s (training goes on)", path, strerror(errno));
    free(out);
}

// The bar: one line redrawn in place on a terminal, else a log line each 5%.
static void progress(long step, long steps, double loss, float lr, double t0, int tty) {
    static int last_pct = -1;
    double el = tb_now() - t0, rate = step / (el > 0 ? el : 1e-9);
    double left = rate > 0 ? (steps - step) / rate : 0;
    int pct = (int)(100 * step / steps);
    if (!tty && (pct / 5 == last_pct / 5 && step < steps)) return;
    last_pct = pct;
    char bar[31];
    for (int i = 0; i < 30; i++) bar[i] = i < 30 * step / steps ? '#' : '.';
    bar[30] = 0;
    char msg[200];
    snprintf(msg, sizeof msg, "[%s] %3d%% step %ld/%ld loss %.5f lr %.3g %.2f steps/s, %dm%02ds left", bar, pct,
             step, steps, loss, (double)lr, rate, (int)left / 60, (int)left % 60);
    if (tty) fprintf(stderr, "\r%s%s", msg, step >= steps ? "\n" : "");
    else tb_log("world: %s", msg);
}

// The trainer for world training: [train]'s network and transform, [world]'s
// batch and optimizer; --load starts from a world (its transform comes along).
static int world_trainer(Trainer *t, const Settings *s, TbErr *err) {
    ModelSpec spec, *specp = NULL;
    if (s->load[0]) {
        if (checkpoint_peek_spec(s->load, &spec, err)) return -1;
        specp = &spec;
    }
    TrainerConfig c;
    if (session_trainer_config(s, specp, &c, err)) return -1;
    c.max_batch = s->world_batch;
    c.ring = 1;
    c.hyper.optimizer = strcmp(s->world_optimizer, "sgd") == 0 ? OPT_SGD : OPT_ADAM;
    c.hyper.lr = s->world_lr;
    if (trainer_init(t, &c, err)) return -1;
    if (s->load[0] && checkpoint_load(s->load, t, err)) {
        trainer_free(t);
        return -1;
    }
    return 0;
}

typedef struct {
    double sum;
    int n;
    double first, last;  // mean loss of the first and of the latest window of steps
} LossWin;

// Read the stats of the steps since the last read into the window's means.
static void loss_read(Trainer *t, LossWin *lw) {
    StepStats st[TB_STATS_RING];
    int n = trainer_read_stats(t, st);
    for (int i = 0; i < n; i++) lw->sum += st[i].loss, lw->n++;
    if (!lw->n) return;
    lw->last = lw->sum / lw->n;
    if (lw->first < 0) lw->first = lw->last;
    lw->sum = 0, lw->n = 0;
}

// The steps: B random crops of random training frames each, the lr schedule,
// the bar, checkpoints and previews. 0, or -1 with err (a checkpoint failed).
static int train_loop(Trainer *t, const Settings *s, const Data *d, LossWin *lw, TbErr *err) {
    int W = t->model.spec.width, H = t->model.spec.height, B = s->world_batch;
    size_t fb = (size_t)W * H * 3;
    uint8_t *buf = tb_malloc(fb * (size_t)B);
    const uint8_t *frames[16];
    TbRng rng;
    tb_rng_seed(&rng, (uint64_t)s->seed * 2654435761u + 7);
    char prev[CFG_STR + 32];
    preview_path(s->save, prev, sizeof prev);
    int tty = isatty(2), rc = 0;
    double t0 = tb_now();
    long steps = s->world_steps;
    for (long k = 0; k < steps && !rc; k++) {
        for (int i = 0; i < B; i++) {
            const Still *f = &d->f[tb_rng_u32(&rng) % (uint32_t)d->train];
            augment_crop(buf + i * fb, W, H, f->rgb, f->w, f->h, s->world_scale_min, &rng);
            frames[i] = buf + i * fb;
        }
        t->hyper.lr = world_lr_at(s->world_schedule, s->world_lr, k, steps);
        trainer_train_batch(t, frames, B);
        long done = k + 1;
        if (done % 16 == 0 || done == steps) {  // each read waits for a GPU
            loss_read(t, lw);
            progress(done, steps, lw->last, t->hyper.lr, t0, tty);
        }
        if (s->world_preview_every > 0 && done % s->world_preview_every == 0) preview_write(prev, t, frames[0]);
        if (s->world_checkpoint_every > 0 && done % s->world_checkpoint_every == 0 && done < steps)
            rc = checkpoint_save(s->save, t, 0, err);
        if (signals_stop_requested()) {
            tb_log("world: stopped at step %ld of %ld: saving what it learned", done, steps);
            break;
        }
    }
    if (!rc) loss_read(t, lw);
    free(buf);
    return rc;
}

static const char *tf_label(int kind) { return kind == TF_GREY ? "grey" : kind == TF_EDGES ? "edges" : "none"; }

int world_train_run(const Settings *s) {
    TbErr err = {{0}};
    if (!s->save[0]) {
        tb_error("--train-world needs --save FILE.safetensors (where the world goes)");
        return TB_EXIT_INPUT;
    }
    Data d;
    if (data_read(&d, s->train_world, s->world_max_frames, s->width, s->height, &err)) {
        tb_error("%s", err.msg);
        return TB_EXIT_INPUT;
    }
    d.train = d.n - (int)(d.n * (double)s->world_holdout);
    if (d.train < 1) d.train = 1;
    Trainer t;
    if (world_trainer(&t, s, &err)) {
        tb_error("%s", err.msg);
        data_free(&d);
        return TB_EXIT_INPUT;
    }
    tb_log("world: %s: %d frames (%d held back), %dx%d, batch %d, %ld steps, %s lr %g (%s), input %s blur %d, "
           "backend %s", s->train_world, d.n, d.n - d.train, t.model.spec.width, t.model.spec.height,
           s->world_batch, s->world_steps, t.hyper.optimizer == OPT_ADAM ? "adam" : "sgd", (double)s->world_lr,
           s->world_schedule, tf_label(t.tf.kind), t.tf.blur > 1 ? t.tf.blur : 1, t.be->name);
    double blank = holdout_psnr(&t, &d);
    LossWin lw = {0, 0, -1, -1};
    double t0 = tb_now();
    int rc = train_loop(&t, s, &d, &lw, &err);
    double dt = tb_now() - t0;
    if (!rc) rc = checkpoint_save(s->save, &t, 0, &err);  // weights only: a world is a start, not a run
    if (rc) {
        tb_error("%s", err.msg);
    } else {
        tb_log("world: %ld steps in %.1f s (%.2f steps/s), loss %.5f -> %.5f; wrote %s", t.step, dt,
               t.step / (dt > 0 ? dt : 1), lw.first, lw.last, s->save);
        if (d.n > d.train)
            tb_log("world: held back %d of %d frames: PSNR %.2f dB (the blank network: %.2f dB)", d.n - d.train,
                   d.n, holdout_psnr(&t, &d), blank);
    }
    trainer_free(&t);
    data_free(&d);
    return rc ? TB_EXIT_INPUT : TB_EXIT_OK;
}
