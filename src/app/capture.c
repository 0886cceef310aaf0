// capture.c: one thread per source; frames reach the reader through a
// lock-free triple buffer (the writer fills its own slot, then swaps it with
// the shared middle one; the reader swaps the middle one for its own when it
// is newer). A failing source is closed and reopened until it works again.
#define _POSIX_C_SOURCE 200809L
#include "capture.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct {
    uint8_t *rgb;
    size_t cap;
    int w, h;
    uint64_t seq;
    double t;
} Slot;

#define SLOT_NEW 4u  // set in `mid` when the middle slot holds an unread frame

struct Capture {
    char spec[1024];
    char reopen[1024];  // what the source said to reopen it by (source.h); "" = spec
    const char *kind;  // "camera" or "source", for messages
    CaptureOpts o;
    int live;
    Source *src;  // the thread's from start to stop

    Slot slot[3];
    int back;            // writer's slot
    int front;           // reader's slot
    atomic_uint mid;     // middle slot index | SLOT_NEW
    int front_valid;     // the reader has returned a frame

    pthread_t thread;
    atomic_int stop, exited, refs;

    pthread_mutex_t mu;  // guards state/msg/fps (changed rarely)
    int state;
    char msg[640];
    double fps;
    atomic_uint_fast64_t frames, reconnects;
};

static Source *open_default(const char *spec, void *user, TbErr *err) {
    return source_open(spec, user, err);
}

static void nap(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

// Sleep until tb_now() reaches t, waking every 20 ms to notice a stop.
static void sleep_until(Capture *c, double t) {
    for (double now = tb_now(); now < t && !atomic_load(&c->stop); now = tb_now())
        nap(t - now < 0.02 ? t - now : 0.02);
}

static void set_state(Capture *c, int state, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void set_state(Capture *c, int state, const char *fmt, ...) {
    pthread_mutex_lock(&c->mu);
    c->state = state;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&c->mu);
}

static void publish(Capture *c) {
    unsigned old = atomic_exchange_explicit(&c->mid, (unsigned)c->back | SLOT_NEW,
                                            memory_order_acq_rel);
    c->back = (int)(old & 3u);
}

static void release(Capture *c) {
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    for (int i = 0; i < 3; i++) free(c->slot[i].rgb);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

// The capture thread's own bookkeeping between reads.
typedef struct {
    Source *s;  // NULL while lost
    double retry_s, stall_s, pace_fps;
    double next_t, last_frame, retry_at, win_t;
    uint64_t win_frames;
    char last_open_err[512];
} Loop;

// Lost: reopen about every retry_s. Returns 1 once the source is back.
static int reopen(Capture *c, Loop *L) {
    if (tb_now() < L->retry_at) {
        sleep_until(c, L->retry_at);
        return 0;
    }
    TbErr e = {{0}};
    // The camera's stable name first (it follows the camera to a new videoN),
    // then the spec it was started with.
    L->s = c->reopen[0] ? c->o.open(c->reopen, c->o.open_user, &e) : NULL;
    if (!L->s) L->s = c->o.open(c->spec, c->o.open_user, &e);
    L->retry_at = tb_now() + L->retry_s;
    if (!L->s) {
        if (strcmp(e.msg, L->last_open_err) != 0) {  // log changes, not every retry
            tb_warn("%s: reopening failed: %s", c->spec, e.msg);
            snprintf(L->last_open_err, sizeof L->last_open_err, "%s", e.msg);
        }
        return 0;
    }
    atomic_fetch_add(&c->reconnects, 1);
    L->last_open_err[0] = 0;
    tb_log("%s: reopened as %s (%dx%d)", c->spec, L->s->spec, L->s->width, L->s->height);
    if (L->s->reopen[0]) snprintf(c->reopen, sizeof c->reopen, "%s", L->s->reopen);
    set_state(c, CAPTURE_STARTING, "%s reopened, waiting for frames", c->kind);
    if (c->o.fps <= 0 && L->s->fps > 0) L->pace_fps = L->s->fps;
    L->last_frame = L->next_t = tb_now();
    return 1;
}

// A frame arrived in the writer's slot: publish it, count it, pace a file.
static void got_frame(Capture *c, Loop *L, Slot *b, int fw, int fh, double now) {
    b->w = fw, b->h = fh, b->t = now;
    b->seq = atomic_fetch_add(&c->frames, 1) + 1;
    publish(c);
    L->last_frame = now;
    if (c->state != CAPTURE_OK) set_state(c, CAPTURE_OK, "%s", c->spec);
    if (++L->win_frames, now - L->win_t >= 1.0) {
        pthread_mutex_lock(&c->mu);
        c->fps = (double)L->win_frames / (now - L->win_t);
        pthread_mutex_unlock(&c->mu);
        L->win_t = now, L->win_frames = 0;
    }
    if (!c->live) {  // files play at their rate; after a hiccup, resync, do not burst
        L->next_t += 1.0 / L->pace_fps;
        if (L->next_t < now - 0.25) L->next_t = now;
        sleep_until(c, L->next_t);
    }
}

// The source failed (or a live one went silent): close it and start retrying.
static void lose(Capture *c, Loop *L, const char *why, double now) {
    char reason[512];
    snprintf(reason, sizeof reason, "%s", why[0] ? why : "read failed");
    source_close(L->s);
    L->s = NULL;
    set_state(c, CAPTURE_LOST, "%s lost: %s — retrying", c->kind, reason);
    tb_warn("%s lost: %s — retrying every %.1f s", c->kind, reason, L->retry_s);
    L->retry_at = now + L->retry_s;
}

static void *capture_main(void *arg) {
    Capture *c = arg;
    Loop L = {.s = c->src};
    L.retry_s = c->o.retry_s > 0 ? c->o.retry_s : 1.0;
    L.stall_s = c->o.stall_s == 0 ? 5.0 : c->o.stall_s;
    L.pace_fps = c->o.fps > 0 ? c->o.fps : (L.s->fps > 0 ? L.s->fps : 30);
    L.next_t = L.last_frame = L.win_t = tb_now();

    while (!atomic_load(&c->stop)) {
        if (!L.s && !reopen(c, &L)) continue;
        // The writer's slot fits the size of the frame this read() returns (it
        // may change on reopen; an image folder changes it inside read()).
        Slot *b = &c->slot[c->back];
        int fw = L.s->width, fh = L.s->height;
        size_t need = (size_t)fw * (size_t)fh * 3;
        if (b->cap < need) {
            free(b->rgb);
            b->rgb = tb_malloc(need);
            b->cap = need;
        }
        TbErr e = {{0}};
        int r = L.s->read(L.s, b->rgb, &e);
        double now = tb_now();
        if (r == 1) {
            got_frame(c, &L, b, fw, fh, now);
            continue;
        }
        if (r == 0) {
            if (!(c->live && L.stall_s > 0 && now - L.last_frame > L.stall_s)) {
                nap(0.002);  // a camera's read already waited on poll; others must not spin
                continue;
            }
            snprintf(e.msg, sizeof e.msg, "no frame for %.1f s", now - L.last_frame);
        }
        lose(c, &L, e.msg, now);
    }
    if (L.s) source_close(L.s);
    atomic_store(&c->exited, 1);
    release(c);  // last: after this, c may be gone
    return NULL;
}

Capture *capture_start_opts(const char *spec, const CaptureOpts *opts, TbErr *err) {
    CaptureOpts o = opts ? *opts : (CaptureOpts){.live = -1};
    // The default opener is source_open with the caller's source options.
    int dflt = !o.open;
    if (dflt) o.open = open_default, o.open_user = &o.source;
    if (strlen(spec) >= sizeof ((Capture *)0)->spec) return tb_fail(err, "source spec too long"), NULL;
    Source *s = o.open(spec, o.open_user, err);
    if (!s) return NULL;

    Capture *c = tb_calloc(1, sizeof *c);
    snprintf(c->spec, sizeof c->spec, "%s", spec);
    int is_cam = strncmp(spec, "camera", 6) == 0;
    c->kind = is_cam ? "camera" : "source";
    c->live = o.live < 0 ? is_cam : o.live != 0;
    c->o = o;
    if (dflt) c->o.open_user = &c->o.source;
    c->src = s;
    snprintf(c->reopen, sizeof c->reopen, "%s", s->reopen);
    c->back = 0, c->front = 1;
    atomic_init(&c->mid, 2u);
    atomic_init(&c->stop, 0);
    atomic_init(&c->exited, 0);
    atomic_init(&c->refs, 2);  // the thread's and the caller's
    atomic_init(&c->frames, 0);
    atomic_init(&c->reconnects, 0);
    pthread_mutex_init(&c->mu, NULL);
    c->state = CAPTURE_STARTING;
    snprintf(c->msg, sizeof c->msg, "%s starting", spec);
    if (pthread_create(&c->thread, NULL, capture_main, c) != 0) {
        source_close(s);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return tb_fail(err, "%s: cannot start the capture thread", spec), NULL;
    }
    return c;
}

Capture *capture_start(const char *spec, double fps_override, TbErr *err) {
    CaptureOpts o = {.fps = fps_override, .live = -1};
    return capture_start_opts(spec, &o, err);
}

int capture_latest(Capture *c, const uint8_t **rgb, int *w, int *h, uint64_t *seq,
                   double *t_arrival) {
    int fresh = 0;
    if (atomic_load_explicit(&c->mid, memory_order_acquire) & SLOT_NEW) {
        unsigned old = atomic_exchange_explicit(&c->mid, (unsigned)c->front, memory_order_acq_rel);
        c->front = (int)(old & 3u);
        c->front_valid = fresh = 1;
    }
    const Slot *f = &c->slot[c->front];
    *rgb = c->front_valid ? f->rgb : NULL;
    *w = c->front_valid ? f->w : 0;
    *h = c->front_valid ? f->h : 0;
    if (seq) *seq = c->front_valid ? f->seq : 0;
    if (t_arrival) *t_arrival = c->front_valid ? f->t : 0;
    return fresh;
}

int capture_state(Capture *c, char *msg, size_t n) {
    pthread_mutex_lock(&c->mu);
    int st = c->state;
    if (msg && n) snprintf(msg, n, "%s", c->msg);
    pthread_mutex_unlock(&c->mu);
    return st;
}

void capture_stats(Capture *c, CaptureStats *st) {
    st->frames = atomic_load(&c->frames);
    st->reconnects = atomic_load(&c->reconnects);
    pthread_mutex_lock(&c->mu);
    st->fps = c->fps;
    pthread_mutex_unlock(&c->mu);
}

void capture_stop(Capture *c) {
    if (!c) return;
    atomic_store(&c->stop, 1);
    double limit = tb_now() + (c->o.stop_s > 0 ? c->o.stop_s : 2.0);
    while (!atomic_load(&c->exited) && tb_now() < limit) nap(0.002);
    if (atomic_load(&c->exited)) {
        pthread_join(c->thread, NULL);
    } else {
        // Stuck inside the source (a wedged USB device): never hang the app on
        // it. The thread frees the rest when (if) its call returns.
        tb_log("%s: capture thread still busy after stop; leaving it behind", c->spec);
        pthread_detach(c->thread);
    }
    release(c);
}
