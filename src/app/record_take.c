// record_take.c: one take's threads and queues (see record_take.h).
#define _DEFAULT_SOURCE
#include "record_take.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "audio.h"
#include "audio_sync.h"
#include "checkpoint.h"
#include "compose.h"
#include "record_meta.h"

typedef struct {
    uint8_t *in, *net, *rec;
    int64_t vpts, ipts;
    int layout, flip, net_on;
} Slot;

// What the writer writes: a packet of one file, an event or metrics line, or the end.
enum { W_VIDEO = 0, W_INPUT, W_AUDIO, W_LINE, W_METRICS, W_END };
typedef struct WItem {
    int kind;
    AVPacket *pkt;
    char *line;
    struct WItem *next;
} WItem;

struct Take {
    TakeSpec sp;
    pthread_t enc_th, wr_th, au_th;
    int enc_started, wr_started, au_started;
    // Frame queue: the loop thread fills slot (head + len) % n_slots, the
    // encode thread works on slot head outside the lock.
    pthread_mutex_t fq_mu;
    pthread_cond_t fq_cv;
    Slot slot[TAKE_SLOTS];
    int n_slots, fq_head, fq_len, fq_end;
    // Write queue (a list; bounded in items and bytes).
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv, wq_space;
    WItem *wq_first, *wq_last;
    int wq_n, wq_lines;
    size_t wq_bytes;
    int video_broken;  // a video packet was dropped: drop until the next keyframe
    // Files: opened by the writer before the encoder starts (then each half
    // belongs to its thread: encode.h).
    MkvFile *video, *input;
    FILE *events, *metrics;
    // State and counts (under st_mu).
    pthread_mutex_t st_mu;
    pthread_cond_t st_cv;
    int opened, failed, enc_done, wr_done;
    char reason[600];
    TakeCounts c;
    // The audio (opened by the writer with the files; then the audio thread's).
    AudioIn *ain;
    AudioInfo ainfo;
    // Its clock and end (under st_mu): video time 0 at monotonic origin, the
    // newest frame handed at time vt_now; at the end, video.mkv's frames.
    double origin, vt_now;
    int have_clock, au_stop, au_done;
    int64_t video_end;
};

// ---------------------------------------------------------------- state

static void set_reason(Take *t, const char *why, int failed) {
    pthread_mutex_lock(&t->st_mu);
    if (!t->reason[0]) snprintf(t->reason, sizeof t->reason, "%s", why);
    if (failed && !t->failed) {
        t->failed = 1;
        tb_warn("record: %s: the take ends (the mirror goes on)", why);
    }
    pthread_cond_broadcast(&t->st_cv);
    pthread_mutex_unlock(&t->st_mu);
    // Wake anyone waiting for room: nothing more will be written.
    pthread_mutex_lock(&t->wq_mu);
    pthread_cond_broadcast(&t->wq_space);
    pthread_mutex_unlock(&t->wq_mu);
    pthread_mutex_lock(&t->fq_mu);
    pthread_cond_broadcast(&t->fq_cv);
    pthread_mutex_unlock(&t->fq_mu);
}

static void fail(Take *t, const char *why) { set_reason(t, why, 1); }

int take_failed(Take *t) {
    pthread_mutex_lock(&t->st_mu);
    int f = t->failed;
    pthread_mutex_unlock(&t->st_mu);
    return f;
}

int take_done(Take *t) {
    pthread_mutex_lock(&t->st_mu);
    int d = (!t->enc_started || t->enc_done) && (!t->wr_started || t->wr_done) && (!t->au_started || t->au_done);
    pthread_mutex_unlock(&t->st_mu);
    return d;
}

void take_counts(Take *t, TakeCounts *c) {
    pthread_mutex_lock(&t->st_mu);
    *c = t->c;
    pthread_mutex_unlock(&t->st_mu);
}

void take_info(Take *t, char *dir, size_t dn, char *reason, size_t rn) {
    pthread_mutex_lock(&t->st_mu);
    if (dn) snprintf(dir, dn, "%s", t->sp.dir);
    if (rn) snprintf(reason, rn, "%s", t->reason);
    pthread_mutex_unlock(&t->st_mu);
}

#define COUNT(t, field, k)               \
    do {                                 \
        pthread_mutex_lock(&(t)->st_mu); \
        (t)->c.field += (k);             \
        pthread_mutex_unlock(&(t)->st_mu); \
    } while (0)

// ---------------------------------------------------------------- write queue

static void witem_free(WItem *it) {
    av_packet_free(&it->pkt);
    free(it->line);
    free(it);
}

// How an item goes in: always (the end); an event line, within a bound of its
// own (packets filling the queue must not cost the log its lines; never
// waits); a packet, as the take says (headless takes wait for room).
enum { PUSH_ALWAYS, PUSH_LINE, PUSH_AS_TAKE };

// Append an item. 0, or -1 if it was not taken (the caller still owns it).
static int wq_push(Take *t, WItem *it, size_t bytes, int how) {
    pthread_mutex_lock(&t->wq_mu);
    int full, cap = t->sp.queue_items > 0 ? t->sp.queue_items : TAKE_QUEUE_ITEMS;
    while ((full = how == PUSH_LINE ? t->wq_lines >= TAKE_QUEUE_LINES
                                    : t->wq_n - t->wq_lines >= cap || t->wq_bytes + bytes > TAKE_QUEUE_BYTES) &&
           how == PUSH_AS_TAKE && t->sp.wait && !take_failed(t))
        pthread_cond_wait(&t->wq_space, &t->wq_mu);
    if (full && how != PUSH_ALWAYS) {
        pthread_mutex_unlock(&t->wq_mu);
        return -1;
    }
    it->next = NULL;
    if (t->wq_last) t->wq_last->next = it;
    else t->wq_first = it;
    t->wq_last = it;
    t->wq_n++;
    t->wq_lines += it->kind == W_LINE || it->kind == W_METRICS;
    t->wq_bytes += bytes;
    pthread_cond_signal(&t->wq_cv);
    pthread_mutex_unlock(&t->wq_mu);
    return 0;
}

// The next item, or NULL when `until` (tb_now() seconds) passes first.
static WItem *wq_pop(Take *t, double until) {
    pthread_mutex_lock(&t->wq_mu);
    while (!t->wq_first) {
        double left = until - tb_now();
        if (left <= 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long ns = ts.tv_nsec + (long)(left * 1e9);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&t->wq_cv, &t->wq_mu, &ts);
    }
    WItem *it = t->wq_first;
    if (it) {
        t->wq_first = it->next;
        if (!t->wq_first) t->wq_last = NULL;
        t->wq_n--;
        t->wq_lines -= it->kind == W_LINE || it->kind == W_METRICS;
        t->wq_bytes -= it->pkt ? (size_t)it->pkt->size : it->line ? strlen(it->line) : 0;
        pthread_cond_broadcast(&t->wq_space);
    }
    pthread_mutex_unlock(&t->wq_mu);
    return it;
}

// The encoder's packets into the write queue. A video packet that finds no
// room is dropped with every one after it up to a keyframe, which is asked for.
static void emit(Take *t, int kind, AVPacket *p) {
    int key = (p->flags & AV_PKT_FLAG_KEY) != 0, video = kind == W_VIDEO;
    if (take_failed(t) || (video && t->video_broken && !key)) {
        if (video && !take_failed(t)) COUNT(t, dropped_disk, 1);
        av_packet_free(&p);
        return;
    }
    WItem *it = tb_calloc(1, sizeof *it);
    it->kind = kind;
    it->pkt = p;
    if (wq_push(t, it, (size_t)p->size, PUSH_AS_TAKE) == 0) {
        if (video) t->video_broken = 0;
        return;
    }
    witem_free(it);
    if (take_failed(t)) return;
    if (video) {
        COUNT(t, dropped_disk, 1);
        t->video_broken = 1;
        mkv_want_key(t->video);
    } else if (kind == W_AUDIO) {
        COUNT(t, audio_packets_dropped, 1);  // a gap in the sound; its time stamps hold the rest in place
    } else {
        COUNT(t, input_dropped, 1);
    }
}
static void emit_video(void *u, AVPacket *p) { emit(u, W_VIDEO, p); }
static void emit_input(void *u, AVPacket *p) { emit(u, W_INPUT, p); }
static void emit_audio(void *u, AVPacket *p) { emit(u, W_AUDIO, p); }

static void push_line(Take *t, const char *line, int kind) {
    WItem *it = tb_calloc(1, sizeof *it);
    it->kind = kind;
    size_t n = strlen(line);
    it->line = tb_malloc(n + 1);
    memcpy(it->line, line, n + 1);
    if (wq_push(t, it, n, PUSH_LINE) == 0) return;  // the loop thread: never waits
    witem_free(it);
    if (kind == W_LINE) COUNT(t, events_dropped, 1);
}

void take_line(Take *t, const char *line) { push_line(t, line, W_LINE); }
void take_metrics(Take *t, const char *line) { push_line(t, line, W_METRICS); }

// ---------------------------------------------------------------- encode thread

// Compose and encode one frame: repeated frames first where the clock
// skipped some (a constant rate), then the picture, then the input.
static void encode_slot(Take *t, Slot *s, Composer **cmp, int key[2], uint8_t *canvas, int64_t *last) {
    TbErr err = {{0}};
    if (s->vpts >= 0) {
        if (!*cmp || key[0] != s->layout || key[1] != s->flip) {
            compose_free(*cmp);
            ComposeOpts co = {s->layout, t->sp.tw, t->sp.th, t->sp.ow, t->sp.oh, s->flip, 4};
            if (!(*cmp = compose_new(&co, &err))) return fail(t, err.msg);
            key[0] = s->layout, key[1] = s->flip;
        }
        long rep = 0;
        for (int64_t p = *last + 1; p < s->vpts; p++, rep++)
            if (mkv_repeat(t->video, p, emit_video, t, &err)) return fail(t, err.msg);
        COUNT(t, repeated, rep);
        compose_frame(*cmp, s->in, s->net_on ? s->net : NULL, s->rec, canvas);
        if (mkv_encode(t->video, canvas, s->vpts, emit_video, t, &err)) return fail(t, err.msg);
        *last = s->vpts;
    }
    if (mkv_encode(t->input, s->in, s->ipts, emit_input, t, &err)) fail(t, err.msg);
}

static void *encode_main(void *arg) {
    Take *t = arg;
    pthread_mutex_lock(&t->st_mu);
    while (!t->opened && !t->failed) pthread_cond_wait(&t->st_cv, &t->st_mu);
    pthread_mutex_unlock(&t->st_mu);
    Composer *cmp = NULL;
    int key[2] = {-1, -1};
    uint8_t *canvas = tb_malloc((size_t)t->sp.ow * t->sp.oh * 3);
    int64_t last = -1;
    for (;;) {
        pthread_mutex_lock(&t->fq_mu);
        while (!t->fq_len && !t->fq_end) pthread_cond_wait(&t->fq_cv, &t->fq_mu);
        if (!t->fq_len) {  // the end, and nothing left
            pthread_mutex_unlock(&t->fq_mu);
            break;
        }
        Slot *s = &t->slot[t->fq_head];
        pthread_mutex_unlock(&t->fq_mu);
        if (!take_failed(t)) encode_slot(t, s, &cmp, key, canvas, &last);
        pthread_mutex_lock(&t->fq_mu);
        t->fq_head = (t->fq_head + 1) % t->n_slots;
        t->fq_len--;
        pthread_cond_broadcast(&t->fq_cv);
        pthread_mutex_unlock(&t->fq_mu);
    }
    TbErr err = {{0}};
    if (!take_failed(t) && t->video && (mkv_drain(t->video, emit_video, t, &err) ||
                                        mkv_drain(t->input, emit_input, t, &err)))
        fail(t, err.msg);
    compose_free(cmp);
    free(canvas);
    // The picture's end is known: the audio ends there, its packets before W_END.
    pthread_mutex_lock(&t->st_mu);
    t->video_end = last + 1;
    t->au_stop = 1;
    pthread_cond_broadcast(&t->st_cv);
    while (t->au_started && !t->au_done) pthread_cond_wait(&t->st_cv, &t->st_mu);
    pthread_mutex_unlock(&t->st_mu);
    WItem *end = tb_calloc(1, sizeof *end);
    end->kind = W_END;
    wq_push(t, end, 0, PUSH_ALWAYS);
    pthread_mutex_lock(&t->st_mu);
    t->enc_done = 1;
    pthread_mutex_unlock(&t->st_mu);
    return NULL;
}

// ---------------------------------------------------------------- audio thread

#define AUDIO_TICK_US 10000  // the ring is read this often (it holds AUDIO_RING_S)
#define AUDIO_HOLD_S 6       // sound held back waiting for the picture: a longer stall is cut (record.c)
#define AUDIO_CHUNK 4096

typedef struct {
    Take *t;
    AudioSync s;
    int16_t *buf;
    int64_t lost, captured;  // the device's counts so far
    TbErr err;
} AudioRun;

static void audio_put(void *u, const int16_t *frames, int n) {
    AudioRun *A = u;
    if (!A->err.msg[0] && !take_failed(A->t)) mkv_audio(A->t->video, frames, n, emit_audio, A->t, &A->err);
}

// What the ring holds, onto the picture's clock, up to limit output frames.
// Before the first frame (no clock) the sound is let go.
static void audio_pass(AudioRun *A, int have_clock, double origin, int64_t limit) {
    Take *t = A->t;
    AudioClock c;
    audio_clock(t->ain, &c);
    if (c.t_cb > 0) audio_sync_clock(&A->s, c.captured, c.t_cb);
    A->lost = c.lost, A->captured = c.captured;
    int hold = AUDIO_HOLD_S * A->s.rate;
    for (;;) {
        int avail = audio_avail(t->ain), n = avail < AUDIO_CHUNK ? avail : AUDIO_CHUNK;
        int drop = !have_clock || avail > hold;  // before the take's picture, or a stall to be cut
        if (drop && have_clock && n > avail - hold) n = avail - hold;
        if (!drop && audio_sync_fill(&A->s, origin, limit, audio_put, A)) break;  // silence owed first
        if (!drop && n > limit - A->s.out) n = limit - A->s.out > 0 ? (int)(limit - A->s.out) : 0;
        int64_t gap;  // an overrun's place reached: its frames count as consumed (silence)
        n = audio_read(t->ain, A->buf, n, &gap);
        if (gap) {
            audio_sync_lost(&A->s, gap);
            continue;
        }
        if (n <= 0) break;
        if (drop) A->s.in_pos += n, A->s.dropped += have_clock ? n : 0;
        else audio_sync_chunk(&A->s, A->buf, n, origin, audio_put, A);
    }
}

static void audio_counts(AudioRun *A, int64_t lost) {
    Take *t = A->t;
    pthread_mutex_lock(&t->st_mu);
    t->c.audio_samples = mkv_audio_frames(t->video);
    t->c.audio_overruns = lost;
    t->c.audio_captured = A->captured;
    t->c.audio_inserted = A->s.inserted, t->c.audio_dropped = A->s.dropped;
    t->c.audio_max_err = A->s.max_err;
    pthread_mutex_unlock(&t->st_mu);
}

// Every tick: the ring onto the clock, up to the newest frame's time. At the
// end: up to video.mkv's last frame, silence to its end if the sound is short.
static void *audio_main(void *arg) {
    Take *t = arg;
    pthread_mutex_lock(&t->st_mu);
    while (!t->opened && !t->failed) pthread_cond_wait(&t->st_cv, &t->st_mu);
    pthread_mutex_unlock(&t->st_mu);
    if (t->ain && !take_failed(t)) {
        AudioRun A = {.t = t};
        audio_sync_init(&A.s, t->ainfo.rate, t->ainfo.channels, t->ainfo.latency);
        A.buf = tb_malloc((size_t)AUDIO_CHUNK * t->ainfo.channels * sizeof(int16_t));
        double rate = t->ainfo.rate, fps = av_q2d(t->sp.fps);
        for (int stop = 0; !stop && !take_failed(t) && !A.err.msg[0];) {
            pthread_mutex_lock(&t->st_mu);
            stop = t->au_stop;
            int have = t->have_clock;
            double origin = t->origin;
            int64_t limit = stop ? llround((double)t->video_end / fps * rate) : llround(t->vt_now * rate);
            pthread_mutex_unlock(&t->st_mu);
            audio_pass(&A, have, origin, limit);
            if (stop && !take_failed(t)) audio_sync_pad(&A.s, limit, audio_put, &A);
            audio_counts(&A, A.lost);
            if (!stop) usleep(AUDIO_TICK_US);
        }
        if (!A.err.msg[0] && !take_failed(t)) mkv_audio_drain(t->video, emit_audio, t, &A.err);
        if (A.err.msg[0]) fail(t, A.err.msg);
        audio_counts(&A, A.lost);
        free(A.buf);
    }
    audio_close(t->ain);
    t->ain = NULL;
    pthread_mutex_lock(&t->st_mu);
    t->au_done = 1;
    pthread_cond_broadcast(&t->st_cv);
    pthread_mutex_unlock(&t->st_mu);
    return NULL;
}

void take_clock(Take *t, double origin, double now) {
    pthread_mutex_lock(&t->st_mu);
    t->origin = origin, t->vt_now = now - origin, t->have_clock = 1;
    pthread_mutex_unlock(&t->st_mu);
}

// ---------------------------------------------------------------- writer thread

// mkdir -p: 0, or -1 with errno.
static int make_dirs(const char *path) {
    char p[CFG_STR + 64];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

// Free space on the take's disk under min_free_mb: the take ends.
static void check_space(Take *t) {
    struct statvfs v;
    if (t->sp.min_free_mb <= 0 || statvfs(t->sp.dir, &v) != 0) return;
    double mb = (double)v.f_bavail * (double)v.f_frsize / (1 << 20);
    if (mb >= (double)t->sp.min_free_mb) return;
    char why[600];
    snprintf(why, sizeof why, "the disk is nearly full: %.0f MB free, under [record] min_free_mb %ld", mb,
             t->sp.min_free_mb);
    fail(t, why);
}

// What was written so far onto the disk itself, not only into the kernel's
// cache, so that a power cut loses a second at most (fdatasync on any
// descriptor of a file flushes the file).
static void sync_files(Take *t) {
    static const char *const names[] = {"video.mkv", "input.mkv", "events.jsonl", "metrics.jsonl"};
    char path[CFG_STR + 128];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", t->sp.dir, names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        fdatasync(fd);
        close(fd);
    }
}

// take.json with the counts so far (state "recording"), or the last one.
static void write_json(Take *t, int done) {
    TakeCounts c;
    char reason[600];
    take_counts(t, &c);
    c.bytes = take_dir_bytes(t->sp.dir);
    take_info(t, NULL, 0, reason, sizeof reason);
    pthread_mutex_lock(&t->st_mu);
    t->c.bytes = c.bytes;
    pthread_mutex_unlock(&t->st_mu);
    TbErr err = {{0}};
    if (take_json_write(t->sp.dir, t->sp.meta, &c, t->sp.fps, done, reason, &err) && done && t->opened)
        tb_warn("record: %s", err.msg);
}

// The input device, if the take has sound (before video.mkv: its header
// names the stream). No device is no error: one line says the take has none.
static void open_audio(Take *t) {
    char why[300] = "";
    if (t->sp.audio && !(t->ain = audio_open(t->sp.audio_device, &t->ainfo, why, sizeof why)))
        memset(&t->ainfo, 0, sizeof t->ainfo);
    if (!t->sp.audio) snprintf(why, sizeof why, "%s", t->sp.no_audio);
    if (t->ain) {
        tb_log("record: audio from %s, %d Hz, %d ch", t->ainfo.name, t->ainfo.rate, t->ainfo.channels);
        pthread_mutex_lock(&t->st_mu);
        t->c.audio_rate = t->ainfo.rate, t->c.audio_ch = t->ainfo.channels;
        snprintf(t->c.audio_device, sizeof t->c.audio_device, "%s", t->ainfo.name);
        pthread_mutex_unlock(&t->st_mu);
    } else if (why[0]) {
        tb_log("record: this take has no audio: %s", why);
        pthread_mutex_lock(&t->st_mu);
        snprintf(t->c.audio_device, sizeof t->c.audio_device, "%s", why);  // the reason, for take.json
        pthread_mutex_unlock(&t->st_mu);
    }
}

// The folder, both video files (headers on disk) and the event log; then
// the encoder may start. Then config.ini, take.json and the weights.
static int open_take(Take *t) {
    char path[CFG_STR + 128], why[600];
    TbErr err = {{0}};
    if (make_dirs(t->sp.dir)) {
        snprintf(why, sizeof why, "cannot make %s/: %s", t->sp.dir, strerror(errno));
        return fail(t, why), -1;
    }
    check_space(t);
    if (take_failed(t)) return -1;
    open_audio(t);
    MkvOpts vo = {t->sp.ow, t->sp.oh, av_inv_q(t->sp.fps), t->sp.fps, t->sp.codec, t->sp.crf, t->sp.preset,
                  (int)(av_q2d(t->sp.fps) + 0.5), 0};
    MkvAudio ao = {t->ainfo.rate, t->ainfo.channels};
    MkvOpts io = {t->sp.tw, t->sp.th, t->sp.input_tb, t->sp.fps, MKV_FFV1, 0, NULL, 1, 0};
    snprintf(path, sizeof path, "%s/video.mkv", t->sp.dir);
    if (!(t->video = mkv_open_av(path, &vo, t->ain ? &ao : NULL, &err))) return fail(t, err.msg), -1;
    snprintf(path, sizeof path, "%s/input.mkv", t->sp.dir);
    if (!(t->input = mkv_open(path, &io, &err))) return fail(t, err.msg), -1;
    snprintf(path, sizeof path, "%s/events.jsonl", t->sp.dir);
    if (!(t->events = fopen(path, "w"))) {
        snprintf(why, sizeof why, "cannot create %s: %s", path, strerror(errno));
        return fail(t, why), -1;
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->sp.dir);
    if (!(t->metrics = fopen(path, "w"))) {
        snprintf(why, sizeof why, "cannot create %s: %s", path, strerror(errno));
        return fail(t, why), -1;
    }
    pthread_mutex_lock(&t->st_mu);
    t->opened = 1;
    pthread_cond_broadcast(&t->st_cv);
    pthread_mutex_unlock(&t->st_mu);
    snprintf(path, sizeof path, "%s/config.ini", t->sp.dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(t->sp.config, f) < 0 || fclose(f) != 0) {
        snprintf(why, sizeof why, "cannot write %s: %s", path, strerror(errno));
        return fail(t, why), -1;
    }
    write_json(t, 0);
    TakeWeights *w = &t->sp.w;
    snprintf(path, sizeof path, "%s/weights.safetensors", t->sp.dir);
    if (checkpoint_save_host(path, &w->model, &w->hyper, w->step, w->opt_t0, w->seed, w->params, w->opt,
                             &w->tf, &err))
        return fail(t, err.msg), -1;
    return 0;
}

// One item to its file (after a failure, only freed).
static void write_item(Take *t, WItem *it) {
    TbErr err = {{0}};
    if (take_failed(t)) {
        witem_free(it);
        return;
    }
    if (it->kind == W_LINE || it->kind == W_METRICS) {
        int ev = it->kind == W_LINE;
        FILE *f = ev ? t->events : t->metrics;
        if (fprintf(f, "%s\n", it->line) < 0 || fflush(f) != 0) {
            char why[600];
            snprintf(why, sizeof why, "%s/%s: %s", t->sp.dir, ev ? "events.jsonl" : "metrics.jsonl", strerror(errno));
            fail(t, why);
        } else if (ev) {
            COUNT(t, events, 1);
        }
        witem_free(it);
        return;
    }
    if (t->sp.write_delay > 0) usleep((useconds_t)(t->sp.write_delay * 1e6));
    AVPacket *p = it->pkt;
    int kind = it->kind;
    it->pkt = NULL;
    witem_free(it);
    if (mkv_write(kind == W_INPUT ? t->input : t->video, p, &err)) fail(t, err.msg);
    else if (kind == W_VIDEO) COUNT(t, written, 1);
    else if (kind == W_INPUT) COUNT(t, input_written, 1);
}

// The files closed as cleanly as the disk allows, the last take.json, the summary.
static void close_take(Take *t) {
    TbErr err = {{0}};
    if (mkv_close(t->video, &err) && !take_failed(t)) fail(t, err.msg);
    err.msg[0] = 0;
    if (mkv_close(t->input, &err) && !take_failed(t)) fail(t, err.msg);
    t->video = t->input = NULL;
    if (t->events && fclose(t->events) != 0 && !take_failed(t)) fail(t, "events.jsonl: cannot close");
    t->events = NULL;
    if (t->metrics && fclose(t->metrics) != 0 && !take_failed(t)) fail(t, "metrics.jsonl: cannot close");
    t->metrics = NULL;
    write_json(t, 1);
    TakeCounts c;
    char reason[600], line[1400];
    take_counts(t, &c);
    take_info(t, NULL, 0, reason, sizeof reason);
    take_summary(line, sizeof line, t->sp.dir, &c, t->sp.fps, reason);
    tb_log("%s", line);
}

static void *writer_main(void *arg) {
    Take *t = arg;
    open_take(t);
    double next = tb_now() + 1;
    for (;;) {
        WItem *it = wq_pop(t, next);
        if (tb_now() >= next) {  // once a second: free space, the files to disk, the counts
            if (!take_failed(t)) check_space(t);
            if (t->opened) sync_files(t), write_json(t, 0);
            next = tb_now() + 1;
        }
        if (!it) continue;
        if (it->kind == W_END) {
            witem_free(it);
            break;
        }
        write_item(t, it);
    }
    close_take(t);
    pthread_mutex_lock(&t->st_mu);
    t->wr_done = 1;
    pthread_mutex_unlock(&t->st_mu);
    return NULL;
}

// ---------------------------------------------------------------- the loop thread's side

Take *take_start(TakeSpec *sp, TbErr *err) {
    Take *t = tb_calloc(1, sizeof *t);
    t->sp = *sp;
    memset(sp, 0, sizeof *sp);  // the buffers are the take's now
    pthread_mutex_init(&t->fq_mu, NULL);
    pthread_cond_init(&t->fq_cv, NULL);
    pthread_mutex_init(&t->wq_mu, NULL);
    pthread_cond_init(&t->wq_space, NULL);
    pthread_mutex_init(&t->st_mu, NULL);
    pthread_cond_init(&t->st_cv, NULL);
    pthread_condattr_t ca;  // the writer's timed wait runs on the monotonic clock (tb_now)
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wq_cv, &ca);
    pthread_condattr_destroy(&ca);
    size_t fb = (size_t)t->sp.tw * t->sp.th * 3;
    t->n_slots = (int)(TAKE_SLOTS_BYTES / (3 * fb));
    t->n_slots = t->n_slots < 2 ? 2 : t->n_slots > TAKE_SLOTS ? TAKE_SLOTS : t->n_slots;
    for (int i = 0; i < t->n_slots; i++) {
        t->slot[i].in = tb_malloc(fb);
        t->slot[i].net = tb_malloc(fb);
        t->slot[i].rec = tb_malloc(fb);
    }
    // Before the writer, which reads sp.audio: without its thread a take records no sound.
    if (t->sp.audio && pthread_create(&t->au_th, NULL, audio_main, t) != 0) {
        t->sp.audio = 0;
        snprintf(t->sp.no_audio, sizeof t->sp.no_audio, "cannot start the audio thread");
    }
    t->au_started = t->sp.audio;
    if (pthread_create(&t->wr_th, NULL, writer_main, t) != 0) {
        fail(t, "cannot start the writer thread");  // lets the audio thread go
        take_free(t);
        return tb_fail(err, "record: cannot start the writer thread"), NULL;
    }
    t->wr_started = 1;
    if (pthread_create(&t->enc_th, NULL, encode_main, t) != 0) {
        take_stop(t, "cannot start the encoder thread");
        fail(t, "cannot start the encoder thread");
        pthread_mutex_lock(&t->st_mu);  // the audio thread lets video.mkv go first
        while (t->au_started && !t->au_done) pthread_cond_wait(&t->st_cv, &t->st_mu);
        pthread_mutex_unlock(&t->st_mu);
        WItem *end = tb_calloc(1, sizeof *end);
        end->kind = W_END;
        wq_push(t, end, 0, PUSH_ALWAYS);  // the writer closes what it opened
        take_free(t);
        return tb_fail(err, "record: cannot start the encoder thread"), NULL;
    }
    t->enc_started = 1;
    return t;
}

void take_push(Take *t, const uint8_t *in, const uint8_t *net, const uint8_t *rec, int64_t vpts, int64_t ipts,
               int layout, int flip) {
    pthread_mutex_lock(&t->fq_mu);
    while (t->fq_len == t->n_slots && t->sp.wait && !t->fq_end && !take_failed(t))
        pthread_cond_wait(&t->fq_cv, &t->fq_mu);
    int room = t->fq_len < t->n_slots && !t->fq_end;
    int i = (t->fq_head + t->fq_len) % t->n_slots;
    pthread_mutex_unlock(&t->fq_mu);
    pthread_mutex_lock(&t->st_mu);
    t->c.frames++;
    if (!room && !t->failed) t->c.dropped_encoder++;
    pthread_mutex_unlock(&t->st_mu);
    if (!room) return;
    // Slot i is not the encoder's until len counts it: copy without the lock.
    size_t fb = (size_t)t->sp.tw * t->sp.th * 3;
    Slot *s = &t->slot[i];
    memcpy(s->in, in, fb);
    memcpy(s->rec, rec, fb);
    if ((s->net_on = net && vpts >= 0)) memcpy(s->net, net, fb);  // only the picture shows it
    s->vpts = vpts, s->ipts = ipts, s->layout = layout, s->flip = flip;
    pthread_mutex_lock(&t->fq_mu);
    t->fq_len++;
    pthread_cond_broadcast(&t->fq_cv);
    pthread_mutex_unlock(&t->fq_mu);
}

void take_stop(Take *t, const char *reason) {
    set_reason(t, reason, 0);
    pthread_mutex_lock(&t->fq_mu);
    t->fq_end = 1;
    pthread_cond_broadcast(&t->fq_cv);
    pthread_mutex_unlock(&t->fq_mu);
}

void take_free(Take *t) {
    if (!t) return;
    if (t->enc_started || t->wr_started) take_stop(t, "stopped");
    if (t->enc_started) pthread_join(t->enc_th, NULL);
    if (t->wr_started) pthread_join(t->wr_th, NULL);
    if (t->au_started) pthread_join(t->au_th, NULL);
    audio_close(t->ain);  // opened, but its thread never ran
    for (WItem *it = t->wq_first, *nx; it; it = nx) nx = it->next, witem_free(it);
    for (int i = 0; i < t->n_slots; i++) free(t->slot[i].in), free(t->slot[i].net), free(t->slot[i].rec);
    free(t->sp.meta);
    free(t->sp.config);
    free(t->sp.w.params);
    free(t->sp.w.opt);
    pthread_mutex_destroy(&t->fq_mu);
    pthread_cond_destroy(&t->fq_cv);
    pthread_mutex_destroy(&t->wq_mu);
    pthread_cond_destroy(&t->wq_cv);
    pthread_cond_destroy(&t->wq_space);
    pthread_mutex_destroy(&t->st_mu);
    pthread_cond_destroy(&t->st_cv);
    free(t);
}
