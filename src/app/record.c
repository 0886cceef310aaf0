// record.c: the recorder: takes started and stopped, frames and events handed
// to the running take (see record.h).
#define _DEFAULT_SOURCE
#include "record.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libavutil/log.h>

#include "parse.h"
#include "record_meta.h"
#include "record_take.h"
#include "record_tee.h"

// Training that stalls longer than this (closed hours, a long load) is cut
// out of video.mkv rather than filled with one frame repeated.
#define MAX_REPEAT_S 5

#ifndef TABULA_VERSION
#define TABULA_VERSION "unknown"
#endif

struct Recorder {
    const Settings *s;
    pthread_mutex_t mu;  // guards take (read by recorder_status) and the message
    Take *take;          // the take running (the loop thread starts and ends it)
    Take *closing;       // a take finishing its files (freed once done)
    // The running take's clock (loop thread).
    AVRational fps;
    long n;              // frames handed to it
    double t0;           // tb_now() at its first frame (live)
    double cut;          // seconds of stalls cut out of video.mkv's clock (live)
    int64_t last_vpts, last_ipts;
    atomic_int view_layout, view_flip;
    // metrics.jsonl: while a take runs, the run's metrics stream is a tee
    // (record_tee.h) over the one it had (metrics_inner, --metrics or none);
    // lines of frames from metrics_from on go to the take.
    Run *run;
    FILE *tee, *metrics_inner;
    long metrics_from;
    char msg[600];
    unsigned msg_seq;
};

static void say(Recorder *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Recorder *R, const char *fmt, ...) {
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&R->mu);
    snprintf(R->msg, sizeof R->msg, "%s", buf);
    R->msg_seq++;
    pthread_mutex_unlock(&R->mu);
}

// A choice's index in its row ([record] layout: 0 display, 1 mirror, ...).
static int choice(const char *section, const char *key, const char *value) {
    int i = param_choice_index(param_find_ini(section, key), value);
    return i < 0 ? 0 : i;
}

Recorder *recorder_new(const Settings *s) {
    Recorder *R = tb_calloc(1, sizeof *R);
    R->s = s;
    pthread_mutex_init(&R->mu, NULL);
    atomic_store(&R->view_layout, choice("display", "layout", s->layout));
    atomic_store(&R->view_flip, s->flip);
    // x264 and the muxer talk at "info" level; errors reach the log through TbErr.
    if (av_log_get_level() > AV_LOG_ERROR) av_log_set_level(AV_LOG_ERROR);
    return R;
}

void recorder_view(Recorder *R, int layout, int flip) {
    atomic_store(&R->view_layout, layout);
    atomic_store(&R->view_flip, flip != 0);
}

// The layout of this frame: [record] layout, or the window's.
static int frame_layout(Recorder *R) {
    int l = choice("record", "layout", R->s->record_layout);
    return l > 0 ? l - 1 : atomic_load(&R->view_layout);
}

// video.mkv's rate: [record] fps, else the run's clock (headless --fps), else 30.
static AVRational record_fps(const Settings *s) {
    double f = s->record_fps > 0 ? s->record_fps : s->headless && s->fps > 0 ? s->fps : 30;
    return av_d2q(f, 1001000);
}

// The network as the take begins (host copies: the writer writes them).
static void copy_weights(TakeWeights *w, Trainer *t) {
    size_t n = t->model.n_params;
    w->model = t->model;
    w->hyper = t->hyper;
    w->step = t->step;
    w->opt_t0 = t->opt_t0;
    w->seed = t->seed;
    w->tf = t->tf;
    w->params = tb_malloc(n * sizeof(float));
    w->opt = tb_malloc(2 * n * sizeof(float));
    t->be->get_params(t->be, w->params);
    t->be->get_opt_state(t->be, w->opt, t->hyper.optimizer);
}

// Everything a take needs, from the settings and the run as it stands.
static void make_spec(Recorder *R, Run *r, const char *dir, TakeSpec *sp) {
    const Settings *s = R->s;
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "%s", dir);
    sp->tw = r->t.model.spec.width, sp->th = r->t.model.spec.height;
    tb_parse_size(s->record_size, 16, 7680, &sp->ow, &sp->oh);  // checked by its row
    sp->fps = record_fps(s);
    sp->input_tb = (AVRational){1, 1000};
    sp->codec = strcmp(s->record_codec, "ffv1") == 0 ? MKV_FFV1 : MKV_H264;
    sp->crf = s->record_crf;
    snprintf(sp->preset, sizeof sp->preset, "%s", s->record_preset);
    sp->wait = s->headless;
    sp->min_free_mb = s->record_min_free_mb;
    // The room's sound: live takes only (a headless take's picture runs on
    // frame counts, not on the clock the sound comes in on).
    sp->audio = !s->headless && strcmp(s->record_audio_device, "none") != 0;
    snprintf(sp->audio_device, sizeof sp->audio_device, "%s", s->record_audio_device);
    snprintf(sp->no_audio, sizeof sp->no_audio, "%s",
             s->headless ? "a headless take runs on frame counts, not the room's clock"
                         : "[record] audio_device = none");
    // Fault injection for the tests (a slow disk), nothing else.
    const char *d = getenv("TABULA_RECORD_WRITE_DELAY_MS");
    sp->write_delay = d ? atof(d) / 1000 : 0;
    char lname[16] = "?";
    param_choice_name(param_find_ini("display", "layout"), frame_layout(R), lname, sizeof lname);
    sp->meta = take_meta(r, sp, lname, s->record_codec, TABULA_VERSION);
    size_t len = 0;
    FILE *f = open_memstream(&sp->config, &len);
    CHECK(f, "open_memstream");
    settings_write_ini(s, f);
    fclose(f);
    copy_weights(&sp->w, &r->t);
}

// A take that finished its files is freed, with its summary for the operator.
static void reap(Recorder *R) {
    if (!R->closing || !take_done(R->closing)) return;
    TakeCounts c;
    char dir[CFG_STR + 64], reason[600], line[1400];
    take_counts(R->closing, &c);
    take_info(R->closing, dir, sizeof dir, reason, sizeof reason);
    take_free(R->closing);
    R->closing = NULL;
    take_summary(line, sizeof line, dir, &c, R->fps, reason);
    say(R, "%s", line + strlen("record: "));
}

// A metrics line (loop thread, inside metrics_flush): the take's from its first frame.
static void on_metrics_line(void *u, const char *line) {
    Recorder *R = u;
    const char *f = strstr(line, "\"frame\":");
    if (R->take && f && strtol(f + 8, NULL, 10) >= R->metrics_from) take_metrics(R->take, line);
}

static void tee_metrics(Recorder *R, Run *r) {
    FILE *tee = tee_open(r->m.f, on_metrics_line, R);
    if (!tee) {
        tb_warn("record: the take will have no metrics.jsonl (no stream for it)");
        return;
    }
    R->run = r, R->tee = tee, R->metrics_inner = r->m.f, R->metrics_from = r->frames;
    r->m.f = tee;
}

// The run's own metrics stream back (lines still buffered go through first).
static void untee_metrics(Recorder *R) {
    if (!R->tee) return;
    fflush(R->tee);
    R->run->m.f = R->metrics_inner;
    fclose(R->tee);
    R->tee = NULL;
}

static void end_take(Recorder *R, const char *reason) {
    if (!R->take) return;
    untee_metrics(R);
    take_stop(R->take, reason);
    pthread_mutex_lock(&R->mu);
    R->closing = R->take;
    R->take = NULL;
    pthread_mutex_unlock(&R->mu);
}

// Start a take into dir. 0, or -1 with a line for the operator in msg.
static int start_take(Recorder *R, Run *r, const char *dir, char *msg, size_t n) {
    reap(R);
    if (R->closing) {
        snprintf(msg, n, "record: the last take is still being written: try again in a moment");
        return -1;
    }
    TakeSpec sp;
    make_spec(R, r, dir, &sp);
    AVRational fps = sp.fps;
    int ow = sp.ow, oh = sp.oh;
    TbErr err = {{0}};
    Take *t = take_start(&sp, &err);
    if (!t) {
        snprintf(msg, n, "%s", err.msg);
        return -1;
    }
    tee_metrics(R, r);
    R->n = 0;
    R->cut = 0;
    R->last_vpts = R->last_ipts = -1;
    pthread_mutex_lock(&R->mu);
    R->fps = fps;
    R->take = t;
    pthread_mutex_unlock(&R->mu);
    snprintf(msg, n, "recording to %s/ (%dx%d at %.4g fps)", dir, ow, oh, av_q2d(fps));
    say(R, "%s", msg);
    return 0;
}

// DIR/YYYYmmdd-HHMMSS, or -2, -3, ... when that exists (two takes in a second).
static void stamp_dir(const char *base, char *out, size_t n) {
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
    snprintf(out, n, "%s/%s", base, stamp);
    struct stat st;
    for (int k = 2; stat(out, &st) == 0 && k < 1000; k++) snprintf(out, n, "%s/%s-%d", base, stamp, k);
}

// ---------------------------------------------------------------- the run loop's hook

static void on_record(void *u, Run *r, int on, char *msg, size_t n) {
    Recorder *R = u;
    if (!on) {
        char dir[CFG_STR + 64] = "";
        if (R->take) take_info(R->take, dir, sizeof dir, NULL, 0);
        end_take(R, "stopped");
        snprintf(msg, n, "recording stopped: %s/ (finishing its files)", dir);
        return;
    }
    char dir[CFG_STR + 64];
    stamp_dir(R->s->record_dir, dir, sizeof dir);
    start_take(R, r, dir, msg, n);
}

static void on_attach(void *u, Run *r) {
    Recorder *R = u;
    char msg[600];
    if (!R->s->record[0]) return;
    if (start_take(R, r, R->s->record, msg, sizeof msg)) {
        say(R, "%s", msg);
        tb_warn("%s", msg);
    } else {
        tb_log("%s", msg);
    }
}

static void on_detach(void *u, Run *r) {
    Recorder *R = u;
    end_take(R, "run ended");
    if (R->closing) {
        take_free(R->closing);  // the end of the run: its files are worth the wait
        R->closing = NULL;
    }
}

// Once a frame (and per event): a take that ended by itself is let go here.
static int on_active(void *u, Run *r) {
    Recorder *R = u;
    if (R->take && take_failed(R->take)) {
        char reason[600];
        take_info(R->take, NULL, 0, reason, sizeof reason);
        end_take(R, reason);
        say(R, "recording stopped: %s", reason);
    }
    reap(R);
    return R->take != NULL;
}

// This frame's place: every frame in input.mkv (ms); in video.mkv the frame
// of the constant-rate grid it falls on (headless: the next), or none when
// that one is taken.
static void on_frame(void *u, Run *r, const uint8_t *in, const uint8_t *rec) {
    Recorder *R = u;
    if (!R->take) return;
    double now = tb_now();
    if (R->n == 0) R->t0 = now;
    double t = R->s->headless ? R->n * av_q2d(av_inv_q(R->fps)) : now - R->t0, rate = av_q2d(R->fps);
    int64_t vpts = R->s->headless ? R->n : llround((t - R->cut) * rate);
    if (vpts > R->last_vpts + MAX_REPEAT_S * rate) {  // a long stall: cut, not repeated
        R->cut += (double)(vpts - R->last_vpts - 1) / rate;
        vpts = R->last_vpts + 1;
    }
    if (vpts <= R->last_vpts) vpts = -1;
    else R->last_vpts = vpts;
    int64_t ipts = llround(t * 1000);
    if (ipts <= R->last_ipts) ipts = R->last_ipts + 1;
    R->last_ipts = ipts;
    R->n++;
    if (!R->s->headless) take_clock(R->take, R->t0 + R->cut, now);  // the sound follows this clock
    const uint8_t *net = r->t.tf_last ? trainer_input(&r->t) : NULL;  // a world's transform in force
    take_push(R->take, in, net, rec, vpts, ipts, frame_layout(R), atomic_load(&R->view_flip));
}

static void on_event(void *u, const char *line) {
    Recorder *R = u;
    if (R->take) take_line(R->take, line);
}

RunOutput recorder_output(Recorder *R) {
    return (RunOutput){.user = R, .attach = on_attach, .detach = on_detach, .active = on_active,
                       .frame = on_frame, .event = on_event, .record = on_record};
}

void recorder_status(Recorder *R, RecordStatus *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&R->mu);
    if (R->take) {
        TakeCounts c;
        take_counts(R->take, &c);
        take_info(R->take, st->dir, sizeof st->dir, NULL, 0);
        st->on = 1;
        st->written = c.written, st->dropped_encoder = c.dropped_encoder, st->dropped_disk = c.dropped_disk;
        st->secs = (double)c.written * av_q2d(av_inv_q(R->fps));
    }
    snprintf(st->msg, sizeof st->msg, "%s", R->msg);
    st->msg_seq = R->msg_seq;
    pthread_mutex_unlock(&R->mu);
}

void recorder_free(Recorder *R) {
    if (!R) return;
    end_take(R, "run ended");
    take_free(R->closing);
    pthread_mutex_destroy(&R->mu);
    free(R);
}
