// app.c: the live mirror's main thread (see live.h for the three threads):
// start-up with fallbacks, the display loop, the summary at exit, teardown.
#define _DEFAULT_SOURCE
#include "app.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>
#ifdef TABULA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "health.h"
#include "schedule.h"

#include "live.h"
#include "session.h"
#include "signals.h"

// Redraws a second outside the opening hours (low power; the watchdog is fed).
#define CLOSED_FPS 6

// Tell systemd (Type=notify, WatchdogSec) how the show is going: READY=1 at
// the first frame shown, WATCHDOG=1 while frames keep being presented,
// STOPPING=1 at exit. Without NOTIFY_SOCKET (not under systemd) it does nothing.
static void notify(const char *state) {
#ifdef TABULA_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

void app_status(App *a, double secs, const char *fmt, ...) {
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

// The source as asked, or a camera if present, else the bundled clip. A camera
// that fails at start falls back to the clip with one line saying why.
static Capture *open_capture(const Settings *s, char *spec, size_t n, TbErr *err) {
    if (s->source[0]) snprintf(spec, n, "%s", s->source);
    else session_default_source(spec, n);
    CaptureOpts co = {.fps = s->fps, .live = -1, .source = session_source_opts(s)};
    Capture *c = capture_start_opts(spec, &co, err);
    if (!c && !s->source[0] && strncmp(spec, "camera", 6) == 0) {
        tb_warn("%s: falling back to the bundled clip", err->msg);
        session_default_clip(spec, n);
        c = capture_start_opts(spec, &co, err);
    }
    return c;
}

// The window, the panel, and the reconstruction path (GPU interop or host).
static Display *open_display(App *a, Panel *pn, TbErr *err) {
    const Settings *s = a->s;
    DisplayOpts o = {s->window_width, s->window_height, s->fullscreen, s->monitor, s->vsync, 0};
    Display *d = display_open(&o, err);
    if (!d) return NULL;
    Trainer *t = &a->run.t;
    int W = t->model.spec.width, H = t->model.spec.height;
    display_set_train_size(d, W, H);
    display_set_layout(d, (DisplayLayout)display_layout_parse(s->layout));
    panel_init(pn, d, s);
    a->rec_rgb = tb_calloc((size_t)W * H, 3);
    a->net_rgb = tb_calloc((size_t)W * H, 3);
    a->atlas_focus = a->atlas_solo = -1;  // every layer, no channel solo
    a->atlas_solo_n = 1;
    // [channels]: a pane for each network, or (layout = windows) a monitor each.
    display_set_channels(d, a->run.chans.count);
    for (int i = 1; i < a->run.chans.count; i++) a->ch_rgb[i] = tb_calloc((size_t)W * H, 3);
    if (a->run.chans.count > 1 && strcmp(s->ch_layout, "windows") == 0) display_set_channel_windows(d, 1);
    if (strcmp(t->be->name, "cuda") == 0) {
        a->rg = recon_gpu_create(t->be, d, W, H, err);
        if (!a->rg) tb_log("%s: reconstructions go through host memory", err->msg);
        a->ag_make = atlas_gpu_create;  // on the atlas's first show (atlas_feed.c)
    }
    return d;
}

// Give the newest captured frame to the display (not while the camera is
// frozen: the pane keeps the frame the network trains on) and the training thread.
static void hand_frame(App *a, Display *d, int frozen) {
    const uint8_t *rgb;
    int w, h;
    uint64_t seq;
    double arrival;
    if (!capture_latest(a->cap, &rgb, &w, &h, &seq, &arrival)) return;
    if (!frozen) display_set_input(d, rgb, w, h);
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

// What the main loop keeps between turns.
typedef struct {
    const char *spec;
    char src[300];   // the source line on the HUD (the reason while the camera is lost)
    int lost_shown;
    uint64_t rec_seen;
    unsigned take_msg_seen;  // the recorder's newest line, once on screen
    double delay_ms;
    // Arrival-to-screen delays for the summary at exit (and bench/bench_app.sh).
    double delays[4096];
    long n_delay, draws;
    double watchdog_t;  // last WATCHDOG=1
    Health health;      // the health sample and line
    char presence[96];  // the HUD's line about the room ("" = none)
    Schedule sched;     // [schedule]: the opening hours
    int open;           // open at the last turn (-1 before the first)
    uint8_t *black;     // a black frame at the training size (closed hours)
    uint64_t atlas_seen;  // the atlas picture last shown (atlas_feed.c)
} LoopState;

// A pulled cable shows its reason until the camera is back.
static void show_capture_state(App *a, Display *d, LoopState *ls) {
    int state = capture_state(a->cap, ls->src, sizeof ls->src);
    if (state == CAPTURE_LOST && !ls->lost_shown) {
        display_status(d, ls->src, 1e9);
        ls->lost_shown = 1;
    } else if (state != CAPTURE_LOST && ls->lost_shown) {
        display_status(d, "camera back", 2);
        ls->lost_shown = 0;
    }
    if (state != CAPTURE_LOST) snprintf(ls->src, sizeof ls->src, "%s", ls->spec);
}

int app_show_recon(App *a, Display *d, uint64_t *seen, double *arrival) {
    const int W = a->run.t.model.spec.width, H = a->run.t.model.spec.height;
    pthread_mutex_lock(&a->mu);
    uint64_t seq = a->rec_seq;
    int on_gpu = a->rec_on_gpu, shown = seq != *seen && !on_gpu;
    *arrival = a->rec_arrival;
    if (shown) display_set_recon(d, a->rec_rgb, W, H);
    if (seq != *seen) display_set_net_input(d, a->net_on ? a->net_rgb : NULL, W, H);
    for (int i = 1; i < a->run.chans.count && seq != *seen; i++) display_set_channel(d, i, a->ch_rgb[i], W, H);
    pthread_mutex_unlock(&a->mu);
    if (seq == *seen) return 0;
    if (on_gpu) {
        // Outside the lock: a map can wait on the driver, and the training
        // thread must not wait for that.
        int rc = recon_gpu_consume(a->rg);
        if (rc == 0) return 0;  // not written yet: the screen keeps the last one, try next turn
        shown = rc > 0;         // -1: interop is off; the next one comes through the host slot
    }
    *seen = seq;
    return shown;
}

// The newest reconstruction onto the texture and any status line from the
// training thread. Returns 1 when training is done.
static int take_training(App *a, Display *d, LoopState *ls) {
    const long cap = (long)(sizeof ls->delays / sizeof ls->delays[0]);
    double arrival;
    if (app_show_recon(a, d, &ls->rec_seen, &arrival)) {
        ls->delay_ms = 1e3 * (tb_now() - arrival);
        ls->delays[ls->n_delay++ % cap] = ls->delay_ms;
    }
    atlas_show(a, d, display_layout(d) == DISPLAY_ATLAS, &ls->atlas_seen);
    pthread_mutex_lock(&a->mu);
    int done = a->done;
    snprintf(ls->presence, sizeof ls->presence, "%s", a->presence);
    if (a->status[0]) {
        display_status(d, a->status, a->status_secs);
        a->status[0] = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return done;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

// One line at exit: rates and the delay from a frame's arrival to the screen.
static void log_summary(App *a, LoopState *ls, double secs) {
    CaptureStats cs;
    capture_stats(a->cap, &cs);
    RunView v = control_view(a->q);
    const long cap = (long)(sizeof ls->delays / sizeof ls->delays[0]);
    long nd = ls->n_delay < cap ? ls->n_delay : cap;
    qsort(ls->delays, (size_t)nd, sizeof ls->delays[0], cmp_double);
    double per = secs > 0 ? secs : 1;
    tb_log("live summary: %.1f s, %llu frames captured, %ld trained, %ld steps (%.1f steps/s), "
           "display %.1f fps, delay median %.1f ms, p95 %.1f ms",
           secs, (unsigned long long)cs.frames, v.frames, v.step, v.step / per, ls->draws / per,
           nd ? ls->delays[nd / 2] : 0.0, nd ? ls->delays[(nd * 95) / 100] : 0.0);
}

// The health sample, when one is due (health.h): the line, /health and OSC.
static void log_health(App *a, LoopState *ls, const RunView *v, double now) {
    if (!health_due(&ls->health, now)) return;
    HealthSample hs = {.step = v->step, .frame = v->frames, .loss = v->loss, .steps_per_s = v->steps_per_s,
                       .draws = ls->draws, .rollbacks = v->rollbacks};
    int state = capture_state(a->cap, hs.camera_msg, sizeof hs.camera_msg);
    hs.camera = state == CAPTURE_OK ? HEALTH_CAMERA_OK : state == CAPTURE_LOST ? HEALTH_CAMERA_LOST
                                                                                 : HEALTH_CAMERA_STARTING;
    CaptureStats cs;
    capture_stats(a->cap, &cs);
    long dropped = (long)cs.frames - v->frames;  // captured, never trained on
    hs.dropped_frames = dropped > 0 ? dropped : 0;
    pthread_mutex_lock(&a->q->mu);
    hs.dropped_events = a->q->dropped;
    pthread_mutex_unlock(&a->q->mu);
    health_backend_mem(a->run.t.be, &hs);
    health_report(&ls->health, now, &hs);
}

// Closed: nothing on the screen (black panes, no HUD, help or status line), and
// nothing from the training thread shows (a reconstruction still in flight).
static void show_closed(App *a, Display *d, LoopState *ls) {
    const int W = a->run.t.model.spec.width, H = a->run.t.model.spec.height;
    pthread_mutex_lock(&a->mu);
    ls->rec_seen = a->rec_seq;
    a->status[0] = 0;
    pthread_mutex_unlock(&a->mu);
    display_set_input(d, ls->black, W, H);
    display_set_recon(d, ls->black, W, H);
    display_set_atlas(d, ls->black, W, H);
    for (int i = 1; i < a->run.chans.count; i++) display_set_channel(d, i, ls->black, W, H);  // every screen
    display_show_hud(d, 0);
    display_show_help(d, 0);
    display_status(d, NULL, 0);
}

// One line when the hours open or close, with when they next change.
static void log_schedule(const App *a, const LoopState *ls, int open, time_t now) {
    char when[64] = "further notice";
    time_t next = schedule_next_change(&ls->sched, now);
    struct tm tm;
    if (next >= 0 && localtime_r(&next, &tm)) strftime(when, sizeof when, "%a %Y-%m-%d %H:%M", &tm);
    const Settings *s = a->s;
    tb_log("schedule: %s until %s (hours %s, days %s)", open ? "open" : "closed, a black screen and no training",
           when, s->sched_hours[0] ? s->sched_hours : "all day", s->sched_days[0] ? s->sched_days : "every day");
}

// [schedule]: each turn, open or closed now? Closed shows nothing and hands no
// frames to training; an opening (not the start) wakes the run (run_opening on
// the training thread, before the day's first frame). Returns 1 while open.
static int schedule_turn(App *a, Display *d, const Panel *pn, LoopState *ls) {
    time_t now = time(NULL);
    int open = schedule_open(&ls->sched, now);
    if (open != ls->open) {
        if (ls->open >= 0 || !schedule_always(&ls->sched)) log_schedule(a, ls, open, now);
        if (open && ls->open == 0) {
            pthread_mutex_lock(&a->mu);
            a->opening = 1;
            pthread_mutex_unlock(&a->mu);
        }
        if (open) display_show_hud(d, pn->hud);
        ls->open = open;
    }
    if (!open) show_closed(a, d, ls);
    return open;
}

// The layout takes and the virtual camera follow: the atlas is not handed to
// them (a picture of every layer per frame would be a second, larger video
// stream), so they show the mirror while the window shows the atlas.
static int recorded_layout(const Display *d) {
    return display_layout(d) == DISPLAY_ATLAS ? DISPLAY_MIRROR : display_layout(d);
}

// The display loop: keys, frames in, reconstructions out, at the monitor's rate
// (outside the opening hours, a black screen a few times a second).
static void display_loop(App *a, Display *d, Panel *pn, LoopState *ls) {
    double t_start = tb_now();
    health_init(&ls->health, a->s->health_every_s, t_start);
    while (!display_should_close(d) && !signals_stop_requested()) {
        double t_iter = tb_now();
        DisplayKey k;
        while (display_poll_key(d, &k)) panel_key(a, d, pn, &k);
        RunView v = control_view(a->q);
        int open = schedule_turn(a, d, pn, ls), done = 0;
        RecordStatus rs;
        recorder_view(a->rec, recorded_layout(d), pn->flip);  // [record] layout = display follows it
        if (a->vcam) vcam_view(a->vcam, recorded_layout(d), pn->flip);  // and [output] layout = display
        recorder_status(a->rec, &rs);
        if (rs.msg_seq != ls->take_msg_seen) display_status(d, rs.msg, 5), ls->take_msg_seen = rs.msg_seq;
        if (open) {
            hand_frame(a, d, v.p.v[PARAM_FREEZE] > 0);
            show_capture_state(a, d, ls);
            done = take_training(a, d, ls);
            if (pn->hud) {
                char out[96] = "";
                if (a->vcam) {
                    VcamStats vs;
                    vcam_stats(a->vcam, &vs);
                    vcam_hud_line(&vs, out, sizeof out);
                }
                panel_hud(d, &v, &rs, out, a->run.t.be->name, display_fps(d), ls->src, ls->delay_ms, ls->presence);
            }
        }
        display_draw(d);
        ls->draws++;
        double now = tb_now();
        if (ls->draws == 1) notify("READY=1");  // the first frame is on the screen
        if (now - ls->watchdog_t >= 0.25) {      // a few per second, never per frame
            notify("WATCHDOG=1");
            ls->watchdog_t = now;
        }
        log_health(a, ls, &v, now);
        if (done) break;
        // Without vsync (or where it does not block, e.g. Xvfb) do not spin;
        // closed, a few redraws a second keep the watchdog fed and keys alive.
        double period = open ? 1.0 / 250 : 1.0 / CLOSED_FPS, spent = tb_now() - t_iter;
        if (spent < period) usleep((useconds_t)(1e6 * (period - spent)));
    }
    log_summary(a, ls, tb_now() - t_start);
}

void app_stop_training(App *a) {
    control_push(a->q, (ControlEvent){.cmd = CMD_QUIT, .source = SRC_KEY});
    pthread_mutex_lock(&a->mu);
    a->quit = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
}

// Start-up, the loop, and teardown in reverse order (a cleanup ladder).
int app_run(const Settings *s, ControlQueue *q) {
    TbErr err = {{0}};
    App *a = tb_calloc(1, sizeof *a);
    LoopState *ls = tb_calloc(1, sizeof *ls);
    a->s = s;
    a->q = q;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    int rc = TB_EXIT_INPUT;
    // A damaged video file would print libav's complaints on every loop, for weeks.
    av_log_set_level(AV_LOG_FATAL);
    char spec[CFG_STR + 8];
    Panel pn;
    Display *d = NULL;
    if (schedule_parse(&ls->sched, s->sched_hours, s->sched_days, &err)) goto out_free;
    ls->open = -1;
    // The virtual camera first: a wrong node stops the start before anything is written.
    if (vcam_wanted(s, NULL) && !(a->vcam = vcam_start(s, NULL, &err))) goto out_free;
    if (!(a->cap = open_capture(s, spec, sizeof spec, &err))) goto out_free;
    if (run_open(&a->run, s, q, &err)) goto out_cap;
    if (!(d = open_display(a, &pn, &err))) goto out_run;
    ls->black = tb_calloc((size_t)a->run.t.model.spec.width * a->run.t.model.spec.height, 3);
    a->rec = recorder_new(s);
    recorder_view(a->rec, recorded_layout(d), pn.flip);
    RunOutput out = recorder_output(a->rec);
    run_attach(&a->run, &out);  // --record starts its take here
    if (a->vcam) {
        vcam_view(a->vcam, recorded_layout(d), pn.flip);
        out = vcam_output(a->vcam);
        run_attach(&a->run, &out);
    }
    tb_log("live: source %s, backend %s, training %dx%d", spec, a->run.t.be->name,
           a->run.t.model.spec.width, a->run.t.model.spec.height);
    CHECK(pthread_create(&a->thread, NULL, train_thread_main, a) == 0, "pthread_create");
    ls->spec = spec;
    display_loop(a, d, &pn, ls);
    notify("STOPPING=1");
    rc = TB_EXIT_OK;
    if (s->screenshot[0] && display_screenshot(d, s->screenshot, &err)) {
        tb_error("%s", err.msg);
        rc = TB_EXIT_INPUT;
    }
    app_stop_training(a);
    if (session_save(&a->run.t, s, &err)) {
        tb_error("%s", err.msg);
        rc = TB_EXIT_INPUT;
    }
    err.msg[0] = 0;
    recon_gpu_destroy(a->rg);
    recon_gpu_destroy(a->ag);
    display_close(d);
    free(a->rec_rgb);
    free(a->net_rgb);
    free(a->atlas_mid);
    free(a->atlas_show);
    for (int i = 0; i < TB_CHANNELS; i++) free(a->ch_rgb[i]);
out_run:
    run_close(&a->run);  // ends a take (its files closed) before the recorder goes
    recorder_free(a->rec);
out_cap:
    capture_stop(a->cap);
out_free:
    vcam_stop(a->vcam);  // after run_close: the run no longer hands it frames
    if (err.msg[0]) tb_error("%s", err.msg);
    free(a->in_rgb);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    free(ls->black);
    free(ls);
    free(a);
    return rc;
}
