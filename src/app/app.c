// app.c: the live loop. Three rates, three threads:
//   capture thread (capture.c): newest camera/file frame wins;
//   training thread (here): takes the newest frame, drains control events,
//     takes K steps, publishes the reconstruction and a stats snapshot;
//   main thread (here): owns the window; shows the newest camera frame and
//     the newest reconstruction at the monitor's rate, reads the keyboard.
// Nothing on the main thread waits for training, disk or camera I/O: the two
// threads meet only in short mutex-protected copies (newest wins).
#define _DEFAULT_SOURCE
#include "app.h"

#include <GLFW/glfw3.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "capture.h"
#include "checkpoint.h"
#include "controls.h"
#include "display.h"
#include "keys.h"
#include "metrics.h"
#include "recon_gpu.h"
#include "session.h"

// What the training thread publishes for the HUD.
typedef struct {
    LiveParams p;
    float loss, psnr, grad_norm, steps_per_s;
    long step, frames;
    const char *backend;
} TrainView;

typedef struct {
    const Settings *s;
    Trainer t;
    Capture *cap;
    ControlQueue q;
    pthread_t thread;
    pthread_mutex_t mu;  // guards everything below
    pthread_cond_t cond;
    // Frame slot: main -> training (newest wins).
    uint8_t *in_rgb;
    int in_w, in_h;
    size_t in_cap;
    uint64_t in_seq;
    double in_arrival;
    // Reconstruction slot: training -> main (newest wins).
    uint8_t *rec_rgb;
    uint64_t rec_seq;
    double rec_arrival;  // arrival time of the frame it reconstructs
    TrainView view;
    ReconGpu *rg;  // CUDA-GL interop, or NULL: reconstructions through rec_rgb
    char status[256];
    double status_secs;
    int quit, done;
    int exit_code;
} App;

static void app_status(App *a, double secs, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tb_log("%s", buf);
    pthread_mutex_lock(&a->mu);
    snprintf(a->status, sizeof a->status, "%s", buf);
    a->status_secs = secs;
    pthread_mutex_unlock(&a->mu);
}

// ---- snapshots (training thread) ----------------------------------------------

static void snapshot_save(App *a) {
    const char *dir = a->s->snapshot_dir;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        app_status(a, 4, "cannot save: %s: %s", dir, strerror(errno));
        return;
    }
    char path[CFG_STR + 64], stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    snprintf(path, sizeof path, "%s/snap-%s.safetensors", dir, stamp);
    TbErr err;
    if (checkpoint_save(path, &a->t, 1, &err)) app_status(a, 5, "save failed: %s", err.msg);
    else app_status(a, 3, "saved %s", path);
}

static void snapshot_load(App *a) {
    const char *dir = a->s->snapshot_dir;
    DIR *d = opendir(dir);
    char best[256] = "";
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strncmp(e->d_name, "snap-", 5) == 0 && strstr(e->d_name, ".safetensors") &&
                strcmp(e->d_name, best) > 0 && strlen(e->d_name) < sizeof best)
                snprintf(best, sizeof best, "%s", e->d_name);
        closedir(d);
    }
    if (!best[0]) {
        app_status(a, 3, "no snapshot in %s/ yet (S saves one)", dir);
        return;
    }
    char path[CFG_STR + 260];
    snprintf(path, sizeof path, "%s/%s", dir, best);
    TbErr err;
    if (checkpoint_load(path, &a->t, &err)) app_status(a, 5, "load failed: %s", err.msg);
    else app_status(a, 3, "loaded %s", path);
}

// ---- training thread ------------------------------------------------------------

static void apply_params(Trainer *t, const LiveParams *p) {
    t->hyper.lr = p->v[PARAM_LR];
    t->hyper.momentum = p->v[PARAM_MOMENTUM];
    t->hyper.clip = p->v[PARAM_CLIP];
    int ring = (int)p->v[PARAM_RING];
    t->ring_limit = ring < t->ring_cap ? ring : t->ring_cap;
}

static void *train_main(void *arg) {
    App *a = arg;
    const Settings *s = a->s;
    Trainer *t = &a->t;
    LiveParams p;
    live_params_from_settings(&p, s);
    Metrics m;
    TbErr err;
    if (metrics_open(&m, s->metrics, t, &err)) {
        app_status(a, 5, "%s", err.msg);
        metrics_open(&m, NULL, t, &err);
    }
    size_t fb = (size_t)t->model.spec.width * t->model.spec.height * 3;
    uint8_t *frame = NULL, *rec = tb_malloc(fb);
    size_t frame_cap = 0;
    uint64_t seen = 0;
    long frames = 0, steps_window = 0;
    double window_t0 = tb_now(), steps_per_s = 0;
    int quit = 0;
    while (!quit) {
        // 1. Control events, in order.
        ControlEvent e;
        while (control_pop(&a->q, &e)) {
            switch (e.cmd) {
            case CMD_SET: live_params_set(&p, e.param, e.value); break;
            case CMD_RESET:
                trainer_reset(t, t->seed + 1);
                app_status(a, 2, "reset: a blank network (seed %llu)", (unsigned long long)t->seed);
                break;
            case CMD_SAVE: snapshot_save(a); break;
            case CMD_LOAD: snapshot_load(a); break;
            case CMD_QUIT: quit = 1; break;
            }
        }
        apply_params(t, &p);
        if (quit) break;

        // 2. The newest frame (wait briefly for one: the main thread posts them).
        pthread_mutex_lock(&a->mu);
        if (a->in_seq == seen && !a->quit) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&a->cond, &a->mu, &ts);
        }
        quit = a->quit;
        int fresh = a->in_seq != seen;
        int fw = a->in_w, fh = a->in_h;
        double arrival = a->in_arrival;
        if (fresh) {
            size_t need = (size_t)fw * fh * 3;
            if (need > frame_cap) {
                free(frame);
                frame = tb_malloc(need);
                frame_cap = need;
            }
            memcpy(frame, a->in_rgb, need);
            seen = a->in_seq;
        }
        pthread_mutex_unlock(&a->mu);
        if (!fresh || quit) continue;

        // 3. Learn from it (or, paused, just look at it).
        trainer_push_frame(t, frame, fw, fh);
        int K = p.v[PARAM_PAUSE] > 0 ? 0 : (int)p.v[PARAM_STEPS];
        int R = (int)p.v[PARAM_MEMORY];
        if (metrics_need_flush(&m, t, K, s->stats_every)) {
            if (metrics_flush(&m, t)) app_status(a, 4, "training diverged: restored the last good weights");
        }
        int slot = trainer_train(t, K, R);
        metrics_frame(&m, t, frames, slot, K, R);
        if (a->rg) recon_gpu_produce(a->rg);  // stays on the GPU, no wait
        else trainer_output(t, rec);         // waits for this frame's steps (GPU)
        frames++;
        steps_window += K;
        double now = tb_now();
        if (now - window_t0 > 0.5) {
            steps_per_s = steps_window / (now - window_t0);
            steps_window = 0;
            window_t0 = now;
        }

        // 4. Publish.
        pthread_mutex_lock(&a->mu);
        if (!a->rg) memcpy(a->rec_rgb, rec, fb);
        a->rec_seq++;
        a->rec_arrival = arrival;
        a->view.p = p;
        a->view.loss = m.loss;
        a->view.psnr = m.psnr;
        a->view.grad_norm = m.grad_norm;
        a->view.steps_per_s = (float)steps_per_s;
        a->view.step = t->step;
        a->view.frames = frames;
        if (s->frames > 0 && frames >= s->frames) a->done = 1;
        pthread_mutex_unlock(&a->mu);
        if (s->frames > 0 && frames >= s->frames) break;
    }
    metrics_flush(&m, t);
    metrics_close(&m);
    free(frame);
    free(rec);
    return NULL;
}

// ---- main thread ------------------------------------------------------------------

static void send_set(App *a, LiveParams *mine, int id, float v) {
    float stored = live_params_set(mine, id, v);
    control_push(&a->q, (ControlEvent){CMD_SET, id, stored});
}

// Display keys act here at once; training keys become "set P to V" events,
// computed from our own copy of the parameters so that repeats accumulate.
typedef struct {
    LiveParams p;
    float clip_saved;  // what X turns clip back on to
    int flip, hud, help;
} Panel;

static void handle_key(App *a, Display *d, Panel *pn, const DisplayKey *k) {
    LiveParams *mine = &pn->p;
    const KeyBinding *b = keys_lookup(k->key, k->mods);
    if (!b) return;
    switch (b->kind) {
    case KA_UP:
    case KA_DOWN:
        send_set(a, mine, b->arg, live_params_nudge(mine, b->arg, b->kind == KA_UP ? 1 : -1));
        break;
    case KA_CLIP_TOGGLE:
        if (mine->v[PARAM_CLIP] > 0) {
            pn->clip_saved = mine->v[PARAM_CLIP];
            send_set(a, mine, PARAM_CLIP, 0);
        } else {
            send_set(a, mine, PARAM_CLIP, pn->clip_saved > 0 ? pn->clip_saved : 1.0f);
        }
        break;
    case KA_PAUSE:
        send_set(a, mine, PARAM_PAUSE, mine->v[PARAM_PAUSE] > 0 ? 0 : 1);
        display_status(d, mine->v[PARAM_PAUSE] > 0 ? "learning paused" : "learning resumed", 1.5);
        break;
    case KA_RESET: control_push(&a->q, (ControlEvent){CMD_RESET, 0, 0}); break;
    case KA_SAVE: control_push(&a->q, (ControlEvent){CMD_SAVE, 0, 0}); break;
    case KA_LOAD: control_push(&a->q, (ControlEvent){CMD_LOAD, 0, 0}); break;
    case KA_LAYOUT_NEXT:
        display_set_layout(d, (DisplayLayout)((display_layout(d) + 1) % DISPLAY_LAYOUT_COUNT));
        break;
    case KA_LAYOUT_SET: display_set_layout(d, (DisplayLayout)b->arg); break;
    case KA_FLIP:
        pn->flip = !pn->flip;
        display_set_flip(d, pn->flip);
        break;
    case KA_HUD:
        pn->hud = !pn->hud;
        display_show_hud(d, pn->hud);
        break;
    case KA_HELP:
        pn->help = !pn->help;
        display_show_help(d, pn->help);
        break;
    case KA_FULLSCREEN: display_set_fullscreen(d, !display_fullscreen(d)); break;
    case KA_QUIT: display_set_should_close(d, 1); break;
    }
}

static void set_help(Display *d) {
    int n;
    const KeyBinding *k = keys_table(&n);
    static char lines[64][96];
    const char *ptrs[64];
    int m = 0;
    snprintf(lines[m], sizeof lines[m], "tabula keys");
    ptrs[m] = lines[m];
    m++;
    for (int i = 0; i < n && m < 64; i++) {
        if (!k[i].keyname) continue;
        snprintf(lines[m], sizeof lines[m], "%s\t%s", k[i].keyname, k[i].help);
        ptrs[m] = lines[m];
        m++;
    }
    display_set_help(d, ptrs, m);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void set_hud(Display *d, const TrainView *v, double disp_fps, const char *cam, double delay_ms) {
    static char l[10][96];
    const char *ptrs[10];
    const LiveParams *p = &v->p;
    char clip[32];
    if (p->v[PARAM_CLIP] > 0) snprintf(clip, sizeof clip, "%.3g", (double)p->v[PARAM_CLIP]);
    else snprintf(clip, sizeof clip, "off");
    snprintf(l[0], 96, "lr %.3g   momentum %.2f   clip %s", (double)p->v[PARAM_LR],
             (double)p->v[PARAM_MOMENTUM], clip);
    snprintf(l[1], 96, "steps/frame %d   memory %d (ring %d)%s", (int)p->v[PARAM_STEPS],
             (int)p->v[PARAM_MEMORY], (int)p->v[PARAM_RING], p->v[PARAM_PAUSE] > 0 ? "   PAUSED" : "");
    snprintf(l[2], 96, "loss %.5f   PSNR %.2f dB", (double)v->loss, (double)v->psnr);
    snprintf(l[3], 96, "train %.1f steps/s   display %.0f fps   delay %.0f ms", (double)v->steps_per_s,
             disp_fps, delay_ms);
    snprintf(l[4], 96, "step %ld   frame %ld   backend %s", v->step, v->frames, v->backend);
    snprintf(l[5], 96, "source: %s", cam);
    for (int i = 0; i < 6; i++) ptrs[i] = l[i];
    display_set_hud(d, ptrs, 6);
}

int app_run(const Settings *s) {
    TbErr err = {{0}};
    App *a = tb_calloc(1, sizeof *a);
    a->s = s;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    control_queue_init(&a->q);
    int rc = TB_EXIT_OK;
    // A damaged video file would print libav's complaints on every loop, for weeks.
    av_log_set_level(AV_LOG_FATAL);

    // Source: as asked, or a camera if present, else the bundled clip. A camera
    // that fails at start falls back to the clip with one line saying why.
    char spec[CFG_STR + 8];
    if (s->source[0]) snprintf(spec, sizeof spec, "%s", s->source);
    else session_default_source(spec, sizeof spec);
    CaptureOpts co = {.fps = s->fps, .live = -1, .source = session_source_opts(s)};
    a->cap = capture_start_opts(spec, &co, &err);
    if (!a->cap && !s->source[0] && strncmp(spec, "camera", 6) == 0) {
        tb_log("%s: falling back to the bundled clip", err.msg);
        session_default_clip(spec, sizeof spec);
        a->cap = capture_start_opts(spec, &co, &err);
    }
    if (!a->cap) {
        tb_log("%s", err.msg);
        rc = TB_EXIT_INPUT;
        goto out_free;
    }
    if (session_setup_trainer(&a->t, s, &err)) {
        tb_log("%s", err.msg);
        rc = TB_EXIT_INPUT;
        goto out_cap;
    }
    DisplayOpts o = {s->window_width, s->window_height, s->fullscreen, s->monitor, s->vsync, 0};
    Display *d = display_open(&o, &err);
    if (!d) {
        tb_log("%s", err.msg);
        rc = TB_EXIT_INPUT;
        goto out_trainer;
    }
    int W = a->t.model.spec.width, H = a->t.model.spec.height;
    display_set_train_size(d, W, H);
    display_set_layout(d, (DisplayLayout)display_layout_parse(s->layout));
    Panel pn = {.clip_saved = s->clip > 0 ? s->clip : 1.0f, .flip = s->flip, .hud = s->hud};
    live_params_from_settings(&pn.p, s);
    display_set_flip(d, pn.flip);
    display_show_hud(d, pn.hud);
    set_help(d);
    a->rec_rgb = tb_calloc((size_t)W * H, 3);
    if (strcmp(a->t.be->name, "cuda") == 0) {
        a->rg = recon_gpu_create(a->t.be, d, W, H, &err);
        if (!a->rg) tb_log("%s: reconstructions go through host memory", err.msg);
    }
    a->view.backend = a->t.be->name;
    live_params_from_settings(&a->view.p, s);
    tb_log("live: source %s, backend %s, training %dx%d", spec, a->t.be->name, W, H);
    CHECK(pthread_create(&a->thread, NULL, train_main, a) == 0, "pthread_create");

    uint64_t rec_seen = 0, seq;
    double delay_ms = 0;
    char cam[300] = "";
    int lost_shown = 0;
    // For the summary at exit (and bench/bench_app.sh): arrival-to-screen delays.
    enum { NDELAY = 4096 };
    static double delays[NDELAY];
    long n_delay = 0, draws = 0;
    double t_start = tb_now();
    while (!display_should_close(d)) {
        double t_iter = tb_now();
        // Keys.
        DisplayKey k;
        while (display_poll_key(d, &k)) handle_key(a, d, &pn, &k);
        // Newest camera frame: show it, hand it to training.
        const uint8_t *rgb;
        int w, h;
        double arrival;
        if (capture_latest(a->cap, &rgb, &w, &h, &seq, &arrival)) {
            display_set_input(d, rgb, w, h);
            pthread_mutex_lock(&a->mu);
            size_t need = (size_t)w * h * 3;
            if (need > a->in_cap) {
                free(a->in_rgb);
                a->in_rgb = tb_malloc(need);
                a->in_cap = need;
            }
            memcpy(a->in_rgb, rgb, need);
            a->in_w = w;
            a->in_h = h;
            a->in_seq++;
            a->in_arrival = arrival;
            pthread_cond_signal(&a->cond);
            pthread_mutex_unlock(&a->mu);
        }
        int state = capture_state(a->cap, cam, sizeof cam);
        if (state == CAPTURE_LOST && !lost_shown) {
            display_status(d, cam, 1e9);
            lost_shown = 1;
        } else if (state != CAPTURE_LOST && lost_shown) {
            display_status(d, "camera back", 2);
            lost_shown = 0;
        }
        if (state != CAPTURE_LOST) snprintf(cam, sizeof cam, "%s", spec);
        // Newest reconstruction and the training view.
        TrainView v;
        pthread_mutex_lock(&a->mu);
        if (a->rec_seq != rec_seen) {
            if (a->rg) recon_gpu_consume(a->rg);
            else display_set_recon(d, a->rec_rgb, W, H);
            rec_seen = a->rec_seq;
            delay_ms = 1e3 * (tb_now() - a->rec_arrival);
            delays[n_delay++ % NDELAY] = delay_ms;
        }
        v = a->view;
        int done = a->done;
        if (a->status[0]) {
            display_status(d, a->status, a->status_secs);
            a->status[0] = 0;
        }
        pthread_mutex_unlock(&a->mu);
        if (pn.hud) set_hud(d, &v, display_fps(d), cam, delay_ms);
        display_draw(d);
        draws++;
        if (done) break;
        // Without vsync (or where it does not block, e.g. Xvfb) do not spin.
        double spent = tb_now() - t_iter;
        if (spent < 1.0 / 250) usleep((useconds_t)(1e6 * (1.0 / 250 - spent)));
    }
    {
        double secs = tb_now() - t_start;
        CaptureStats cs;
        capture_stats(a->cap, &cs);
        pthread_mutex_lock(&a->mu);
        TrainView v = a->view;
        pthread_mutex_unlock(&a->mu);
        long nd = n_delay < NDELAY ? n_delay : NDELAY;
        qsort(delays, (size_t)nd, sizeof delays[0], cmp_double);
        tb_log("live summary: %.1f s, %llu frames captured, %ld trained, %ld steps (%.1f steps/s), "
               "display %.1f fps, delay median %.1f ms, p95 %.1f ms",
               secs, (unsigned long long)cs.frames, v.frames, v.step, v.step / (secs > 0 ? secs : 1),
               draws / (secs > 0 ? secs : 1), nd ? delays[nd / 2] : 0.0,
               nd ? delays[(nd * 95) / 100] : 0.0);
    }
    if (s->screenshot[0] && display_screenshot(d, s->screenshot, &err)) {
        tb_log("%s", err.msg);
        rc = TB_EXIT_INPUT;
    }
    // Stop training, then save (the trainer is ours again after the join).
    control_push(&a->q, (ControlEvent){CMD_QUIT, 0, 0});
    pthread_mutex_lock(&a->mu);
    a->quit = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    if (session_save(&a->t, s, &err)) {
        tb_log("%s", err.msg);
        rc = TB_EXIT_INPUT;
    }
    recon_gpu_destroy(a->rg);
    display_close(d);
    free(a->rec_rgb);
out_trainer:
    trainer_free(&a->t);
out_cap:
    capture_stop(a->cap);
out_free:
    free(a->in_rgb);
    control_queue_destroy(&a->q);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    free(a);
    return rc;
}
