// vcam.c: the virtual camera's slot, thread and run-loop hook (see vcam.h).
#define _DEFAULT_SOURCE
#include "vcam.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <linux/videodev2.h>

#include "compose.h"
#include "parse.h"

// One frame as the loop hands it: the frames at the training size, the view.
typedef struct {
    uint8_t *in, *net, *rec;
    int net_on, layout, flip;
} Frame;

struct Vcam {
    const Settings *s;
    VcamOpts o;
    char path[256];
    VcamDevOpts dopts;
    VcamDev *dev;  // the thread's; NULL while the device is away
    pthread_t thread;
    pthread_mutex_t mu;  // the slot's indices, fresh, stop, the counters, info
    pthread_cond_t cond;
    // Newest wins: the loop fills f[back], then swaps it with the slot
    // (f[mid]); the thread swaps the slot with f[front] and works on that.
    Frame f[3];
    int back, mid, front, fresh, stop;
    int tw, th;  // the training size (set at attach)
    long written, dropped, lost;
    atomic_long busy;  // frames the loop dropped because the thread held the slot
    int away;
    VcamDevInfo info;
    atomic_int view_layout, view_flip;
};

int vcam_wanted(const Settings *s, const char **path) {
    if (strncmp(s->output, "v4l2:", 5) != 0) return 0;
    if (path) *path = s->output + 5;
    return 1;
}

// A choice's index in its row ([output] layout: 0 display, 1 mirror, ...).
static int choice(const char *section, const char *key, const char *value) {
    int i = param_choice_index(param_find_ini(section, key), value);
    return i < 0 ? 0 : i;
}

static int frame_layout(Vcam *v) {
    int l = choice("output", "layout", v->s->output_layout);
    return l > 0 ? l - 1 : atomic_load(&v->view_layout);
}

void vcam_view(Vcam *v, int layout, int flip) {
    atomic_store(&v->view_layout, layout);
    atomic_store(&v->view_flip, flip != 0);
}

// ---------------------------------------------------------------- the thread

// The device back after it went away: one line when it opens again.
static void reopen(Vcam *v, double *next_retry) {
    double now = tb_now();
    if (now < *next_retry) return;
    *next_retry = now + (v->o.retry_s > 0 ? v->o.retry_s : 1);
    TbErr e = {{0}};
    VcamDev *d = vcam_dev_open(v->path, &v->dopts, &e);
    if (!d) {
        tb_debug("%s", e.msg);  // said once when it went away
        return;
    }
    v->dev = d;
    pthread_mutex_lock(&v->mu);
    vcam_dev_info(d, &v->info);
    v->away = 0;
    pthread_mutex_unlock(&v->mu);
    tb_log("virtual camera %s: back, %dx%d", v->path, v->info.width, v->info.height);
}

typedef struct {
    Composer *cmp;
    int key[4];  // what cmp was made for: layout, flip, width, height
    uint8_t *pic;
    size_t pic_n;
} Canvas;

// Compose f[front] at the device's size and write it.
static void send_frame(Vcam *v, Canvas *c, double *next_retry) {
    const Frame *f = &v->f[v->front];
    VcamDevInfo info;
    vcam_dev_info(v->dev, &info);
    int key[4] = {f->layout, f->flip, info.width, info.height};
    if (memcmp(key, c->key, sizeof key) != 0) {
        compose_free(c->cmp);
        ComposeOpts co = {f->layout, v->tw, v->th, info.width, info.height, f->flip, 4};
        TbErr err = {{0}};
        if (!(c->cmp = compose_new(&co, &err))) tb_warn("virtual camera %s: %s: sending nothing", v->path, err.msg);
        memcpy(c->key, key, sizeof key);
        size_t n = (size_t)info.width * info.height * 3;
        if (n > c->pic_n) free(c->pic), c->pic = tb_malloc(n), c->pic_n = n;
    }
    TbErr err = {{0}};
    int r = 1;  // no picture (the composer refused the size): dropped
    if (c->cmp) {
        compose_frame(c->cmp, f->in, f->net_on ? f->net : NULL, f->rec, c->pic);
        r = vcam_dev_write(v->dev, c->pic, &err);
    }
    pthread_mutex_lock(&v->mu);
    if (r == 0) v->written++;
    else v->dropped++;
    if (r < 0) v->lost++, v->away = 1;
    pthread_mutex_unlock(&v->mu);
    if (r >= 0) return;
    tb_warn("%s: retrying about once a second", err.msg);
    vcam_dev_close(v->dev);
    v->dev = NULL;
    *next_retry = tb_now() + (v->o.retry_s > 0 ? v->o.retry_s : 1);
}

static void *vcam_main(void *arg) {
    Vcam *v = arg;
    Canvas c = {.key = {-1, -1, -1, -1}};
    double next_retry = 0;
    pthread_mutex_lock(&v->mu);
    while (!v->stop) {
        if (!v->fresh && !(v->away && tb_now() >= next_retry)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 50 * 1000000L;  // a wake-up now and then to reopen a lost device
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&v->cond, &v->mu, &ts);
            continue;
        }
        int got = v->fresh;
        if (got) {
            int t = v->mid;
            v->mid = v->front, v->front = t, v->fresh = 0;
        }
        pthread_mutex_unlock(&v->mu);
        if (!v->dev) reopen(v, &next_retry);
        int sent = got && v->dev;
        if (sent) send_frame(v, &c, &next_retry);
        pthread_mutex_lock(&v->mu);
        if (got && !sent) v->dropped++;  // away: nowhere to send it
    }
    pthread_mutex_unlock(&v->mu);
    compose_free(c.cmp);
    free(c.pic);
    return NULL;
}

// ---------------------------------------------------------------- the loop's hook

static void on_attach(void *u, Run *r) {
    Vcam *v = u;
    int tw = r->t.model.spec.width, th = r->t.model.spec.height;
    CHECK(!v->tw || (v->tw == tw && v->th == th), "virtual camera: attached to a run of another size");
    if (v->tw) return;
    size_t n = (size_t)tw * th * 3;
    for (int i = 0; i < 3; i++)
        v->f[i].in = tb_calloc(1, n), v->f[i].net = tb_calloc(1, n), v->f[i].rec = tb_calloc(1, n);
    pthread_mutex_lock(&v->mu);
    v->tw = tw, v->th = th;
    pthread_mutex_unlock(&v->mu);
}

static int on_active(void *u, Run *r) {
    (void)u, (void)r;
    return 1;  // every frame shown goes out
}

// The loop thread: copy into its own frame, swap it into the slot, return.
static void on_frame(void *u, Run *r, const uint8_t *in, const uint8_t *rec) {
    Vcam *v = u;
    if (!v->tw) return;
    Frame *f = &v->f[v->back];
    size_t n = (size_t)v->tw * v->th * 3;
    memcpy(f->in, in, n);
    memcpy(f->rec, rec, n);
    f->net_on = r->t.tf_last != 0;  // a world's transform in force: the triptych shows its input
    if (f->net_on) memcpy(f->net, trainer_input(&r->t), n);
    f->layout = frame_layout(v);
    f->flip = atomic_load(&v->view_flip);
    if (pthread_mutex_trylock(&v->mu) != 0) {  // the thread is at the slot: never wait for it
        atomic_fetch_add(&v->busy, 1);
        return;
    }
    int t = v->mid;
    v->mid = v->back, v->back = t;
    if (v->fresh) v->dropped++;  // the thread had not taken the last one
    v->fresh = 1;
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->mu);
}

RunOutput vcam_output(Vcam *v) {
    return (RunOutput){.user = v, .attach = on_attach, .active = on_active, .frame = on_frame};
}

// ---------------------------------------------------------------- start, stop

// The device path and what to ask it for, from the settings: 0, or -1 with err.
static int dev_opts(const Settings *s, const V4l2Io *io, const char **path, VcamDevOpts *d,
                    TbErr *err) {
    if (!vcam_wanted(s, path) || !(*path)[0])
        return tb_fail(err, "--output \"%s\": a virtual camera is v4l2:/dev/videoN", s->output);
    int w, h;
    const char *size = s->output_size[0] ? s->output_size : s->record_size;
    if (tb_parse_size(size, 16, 7680, &w, &h) < 0 || (w & 1))
        return tb_fail(err, "virtual camera: size \"%s\" is not WxH with an even width", size);
    *d = (VcamDevOpts){.width = w, .height = h, .fps = s->output_fps, .io = io};
    return 0;
}

int vcam_probe(const Settings *s, const VcamOpts *o, VcamDevInfo *info, TbErr *err) {
    const char *path = NULL;
    VcamDevOpts d;
    if (dev_opts(s, o ? o->io : NULL, &path, &d, err) < 0) return -1;
    VcamDev *dev = vcam_dev_open(path, &d, err);
    if (!dev) return -1;
    vcam_dev_info(dev, info);
    vcam_dev_close(dev);
    return 0;
}

Vcam *vcam_start(const Settings *s, const VcamOpts *o, TbErr *err) {
    const char *path = NULL;
    VcamDevOpts d;
    if (dev_opts(s, o ? o->io : NULL, &path, &d, err) < 0) return NULL;
    Vcam *v = tb_calloc(1, sizeof *v);
    v->s = s;
    if (o) v->o = *o;
    snprintf(v->path, sizeof v->path, "%s", path);
    v->dopts = d;
    if (!(v->dev = vcam_dev_open(v->path, &v->dopts, err))) {
        free(v);
        return NULL;
    }
    vcam_dev_info(v->dev, &v->info);
    v->back = 0, v->mid = 1, v->front = 2;
    atomic_store(&v->view_layout, choice("display", "layout", s->layout));
    atomic_store(&v->view_flip, s->flip);
    pthread_mutex_init(&v->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->cond, &ca);
    pthread_condattr_destroy(&ca);
    CHECK(pthread_create(&v->thread, NULL, vcam_main, v) == 0, "pthread_create");
    tb_log("virtual camera %s: %s %dx%d, %.4g fps announced, layout %s", v->path,
           v->info.fourcc == V4L2_PIX_FMT_YUYV ? "YUYV" : "YUV420", v->info.width, v->info.height,
           (double)s->output_fps, s->output_layout);
    return v;
}

int vcam_hud_line(const VcamStats *st, char *buf, size_t n) {
    if (st->away)
        return snprintf(buf, n, "vcam %s: away, reopening (lost %ld time%s)", st->dev.path, st->lost,
                        st->lost == 1 ? "" : "s");
    return snprintf(buf, n, "vcam %s %dx%d %s   sent %ld   dropped %ld", st->dev.path, st->dev.width,
                    st->dev.height, st->dev.fourcc == V4L2_PIX_FMT_YUYV ? "YUYV" : "YUV420", st->written,
                    st->dropped);
}

void vcam_stats(Vcam *v, VcamStats *st) {
    pthread_mutex_lock(&v->mu);
    *st = (VcamStats){.written = v->written, .dropped = v->dropped + atomic_load(&v->busy), .lost = v->lost,
                      .away = v->away, .dev = v->info};
    pthread_mutex_unlock(&v->mu);
}

void vcam_stop(Vcam *v) {
    if (!v) return;
    pthread_mutex_lock(&v->mu);
    v->stop = 1;
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->thread, NULL);
    v->dropped += v->fresh;  // handed but not sent before the end
    vcam_dev_close(v->dev);
    tb_log("virtual camera %s: %ld frames written, %ld dropped (newest wins), the device went away %ld "
           "time(s)", v->path, v->written, v->dropped + atomic_load(&v->busy), v->lost);
    for (int i = 0; i < 3; i++) free(v->f[i].in), free(v->f[i].net), free(v->f[i].rec);
    pthread_cond_destroy(&v->cond);
    pthread_mutex_destroy(&v->mu);
    free(v);
}
