// replay.c: a take run again offline and rendered (see replay.h).
#define _DEFAULT_SOURCE
#include "replay.h"

#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "compose.h"
#include "encode.h"
#include "params.h"
#include "parse.h"
#include "record_tee.h"
#include "replay_mux.h"
#include "replay_read.h"
#include "replay_take.h"
#include "run.h"
#include "session.h"
#include "signals.h"

// 1 if [section] key was set by a flag on this command line (not a file).
static int by_flag(const Settings *cli, const char *section, const char *key) {
    const char *at = settings_set_at(cli, section, key);
    return at[0] && !strchr(at, ':');  // a file's mark is FILE:LINE
}

static void copy_row(Settings *dst, const Settings *src, const Param *p) {
    char *d = (char *)dst + p->off;
    const char *s = (const char *)src + p->off;
    switch (p->type) {
    case P_INT:
    case P_FLAG: *(int *)d = *(const int *)s; break;
    case P_LONG: *(long *)d = *(const long *)s; break;
    case P_FLOAT: *(float *)d = *(const float *)s; break;
    default: strcpy(d, s); break;  // the same field in both
    }
}

// The take's config.ini, less the files the run wrote (a replay does not
// overwrite a show's metrics, events, saves or autosaves), then every setting
// given as a flag with --replay. Headless: the run's clock is frames / fps.
static int replay_settings(Settings *s, const Settings *cli, const ReplayTake *tk, TbErr *err) {
    char path[CFG_STR + 64];
    snprintf(path, sizeof path, "%s/config.ini", tk->dir);
    settings_default(s);
    if (settings_load_file(s, path, err)) return -1;
    s->metrics[0] = s->events[0] = s->save[0] = s->save_init[0] = 0;
    s->autosave_minutes = 0;
    s->autosave_resume = 0;
    size_t n;
    const Param *P = params_table(&n);
    for (size_t i = 0; i < n; i++)
        if (cli->set_at[i][0] && !strchr(cli->set_at[i], ':')) {
            copy_row(s, cli, &P[i]);
            memcpy(s->set_at[i], cli->set_at[i], sizeof s->set_at[i]);
        }
    if (s->record[0]) return tb_fail(err, "--replay renders to --output: --record does not go with it");
    s->headless = 1;
    snprintf(s->load, sizeof s->load, "%.*s/weights.safetensors", CFG_STR - 24, tk->dir);
    return session_check(s, err);
}

// ---------------------------------------------------------------- the video out

typedef struct {
    MkvFile *mkv;
    Composer *cmp;
    uint8_t *canvas;
    int ow, oh, audio;
    int made, out_existed;  // the file the encoder writes was made; --output was there before
    AVRational fps;
    char layout[16];
    char out[CFG_STR], tmp[CFG_STR + 16], take_video[CFG_STR + 16];
    int64_t n;
    int failed;
    TbErr err;  // the first write error
} Render;

static void emit(void *u, AVPacket *p) {
    Render *o = u;
    if (o->failed) {
        av_packet_free(&p);
        return;
    }
    if (mkv_write(o->mkv, p, &o->err)) o->failed = 1;  // it takes the packet either way
}

// The layout: [record] layout if not "display", else --layout if given, else
// the take's; the rate: [record] fps if set, else the take's.
static int render_open(Render *o, const Settings *s, const Settings *cli, const ReplayTake *tk, int tw, int th,
                       TbErr *err) {
    memset(o, 0, sizeof *o);
    snprintf(o->out, sizeof o->out, "%s", s->output);
    snprintf(o->tmp, sizeof o->tmp, "%s.part", s->output);
    snprintf(o->take_video, sizeof o->take_video, "%.*s/video.mkv", CFG_STR - 16, tk->dir);
    tb_parse_size(s->record_size, 16, 7680, &o->ow, &o->oh);  // checked by its row
    o->fps = s->record_fps > 0 ? av_d2q(s->record_fps, 1001000) : tk->fps;
    const char *name = strcmp(s->record_layout, "display") != 0 ? s->record_layout
                       : by_flag(cli, "display", "layout")      ? s->layout
                                                                : tk->layout;
    snprintf(o->layout, sizeof o->layout, "%s", name);
    int layout = param_choice_index(param_find_ini("display", "layout"), name);
    o->audio = replay_has_audio(o->take_video);
    o->out_existed = access(o->out, F_OK) == 0;
    MkvOpts mo = {o->ow, o->oh, av_inv_q(o->fps), o->fps, strcmp(s->record_codec, "ffv1") == 0 ? MKV_FFV1 : MKV_H264,
                  s->record_crf, s->record_preset, (int)(av_q2d(o->fps) + 0.5), 0};
    if (!(o->mkv = mkv_open(o->audio ? o->tmp : o->out, &mo, err))) return -1;
    o->made = 1;
    ComposeOpts co = {layout < 0 ? COMPOSE_SIDE : layout, tw, th, o->ow, o->oh, s->flip, 4};
    if (!(o->cmp = compose_new(&co, err))) return -1;
    o->canvas = tb_malloc((size_t)o->ow * o->oh * 3);
    return 0;
}

static int render_frame(Render *o, const uint8_t *in, const uint8_t *net, const uint8_t *rec, TbErr *err) {
    compose_frame(o->cmp, in, net, rec, o->canvas);
    if (mkv_encode(o->mkv, o->canvas, o->n++, emit, o, err)) return -1;
    if (o->failed) return *err = o->err, -1;
    return 0;
}

// The rest of the encoder's packets, the file closed, the sound copied in.
// ok = 0 (or a failure here): nothing is left at --output. 0, or -1 with err.
static int render_close(Render *o, int ok, TbErr *err) {
    if (ok && !o->failed && mkv_drain(o->mkv, emit, o, err)) ok = 0;
    if (o->failed && ok) *err = o->err, ok = 0;
    TbErr e2 = {{0}};
    if (o->mkv && mkv_close(o->mkv, &e2) && ok) *err = e2, ok = 0;
    o->mkv = NULL;
    if (ok && o->audio) {
        if (replay_mux(o->tmp, o->take_video, o->out, err)) ok = 0;
        else tb_log("replay: the take's sound copied from %s", o->take_video);
    }
    if (o->audio && o->made) unlink(o->tmp);
    if (!ok && o->made && !o->out_existed) unlink(o->out);  // never a file that was there before
    compose_free(o->cmp);
    free(o->canvas);
    o->cmp = NULL, o->canvas = NULL;
    return ok ? 0 : -1;
}

// ---------------------------------------------------------------- the run

// The replay's losses against the take's (fed by a tee on the metrics stream).
typedef struct {
    const ReplayTake *tk;
    long compared, same, first_diff;
    char want[24], got[24];
} LossCheck;

static void on_loss(void *u, const char *line) {
    LossCheck *c = u;
    const char *f = strstr(line, "\"frame\":"), *l = strstr(line, "\"loss\":");
    if (!f || !l) return;
    const char *want = replay_take_loss(c->tk, strtol(f + 8, NULL, 10));
    if (!want) return;
    char got[24];
    snprintf(got, sizeof got, "%.*s", (int)strcspn(l + 7, ",}"), l + 7);
    c->compared++;
    if (strcmp(want, got) == 0) c->same++;
    else if (c->first_diff < 0) {
        c->first_diff = strtol(f + 8, NULL, 10);
        snprintf(c->want, sizeof c->want, "%s", want);
        snprintf(c->got, sizeof c->got, "%s", got);
    }
}

typedef struct {
    int next;           // the next event of the take to apply
    int hold_steps;     // --steps-per-frame given: the take's moves of it are not made
    long applied, off_step, held;
} EventPlay;

// The take's moves for this frame (the run's frame count), in order, through
// the run loop's own control path; each logged (--events) with source "replay".
static void apply_events(Run *r, const ReplayTake *tk, EventPlay *ep) {
    while (ep->next < tk->n_ev && tk->ev[ep->next].frame <= r->frames) {
        const ReplayEvent *e = &tk->ev[ep->next++];
        if (ep->hold_steps && e->kind == REPLAY_CONTROL && e->ev.cmd == CMD_SET && e->ev.param == PARAM_STEPS) {
            ep->held++;
            continue;
        }
        if (e->step != r->t.step && ep->off_step++ == 0)
            tb_log("replay: a move of frame %ld comes at step %ld (the take's was step %ld)", e->frame, r->t.step,
                   e->step);
        char msg[600];
        if (e->kind == REPLAY_REBIRTH) run_opening(r, msg, sizeof msg);
        else run_control(r, &e->ev, msg, sizeof msg);
        ep->applied++;
    }
}

// Where the take began: its frame count, seed, random states and live values.
static void restore_start(Run *r, const ReplayTake *tk, const Settings *s, int hold_steps) {
    r->frames = tk->start_frame;
    r->dream_recorded = 1;  // input.mkv holds the frames as dreamed: not dreamed again
    if (tk->have_rng) r->t.seed = tk->seed, r->t.rng.s = tk->rng, r->mod.lfo.rng.s = tk->mod_rng;
    else tb_warn("replay: %s/take.json has no seed or random states (an older take): the replay draws differ", tk->dir);
    for (int id = 0; id < PARAM_COUNT; id++)
        if (tk->have_live[id]) live_params_set(&r->p, id, tk->live[id]);
    if (hold_steps) live_params_set(&r->p, PARAM_STEPS, (float)s->steps_per_frame);
    if (tk->start_frame > 0)
        tb_warn("replay: the take began at frame %ld of its run: its replay ring and slots were not empty then, "
                "the replay's are (the losses will differ)", tk->start_frame);
}

// The frames in order: the take's moves, one frame of training, the picture.
// Returns the frames done, or -1 with err.
static long replay_frames(Run *r, ReplayIn *in, const ReplayTake *tk, EventPlay *ep, Render *o, TbErr *err) {
    int w, h;
    replay_in_size(in, &w, &h);
    int W = r->t.model.spec.width, H = r->t.model.spec.height;
    uint8_t *frame = tb_malloc((size_t)w * h * 3), *rec = tb_malloc((size_t)W * H * 3);
    long n = 0;
    for (;; n++) {
        int got = replay_in_read(in, frame, err);
        if (got < 0) n = -1;
        if (got <= 0) break;
        if (signals_stop_requested()) {
            tb_log("replay: stopped after %ld frames", n);
            break;
        }
        apply_events(r, tk, ep);
        r->have_in = 0;  // the recorded frames are smoothed already: they go in as they are
        run_frame(r, frame, w, h);
        run_output(r, rec);
        const uint8_t *net = r->t.tf_last ? trainer_input(&r->t) : NULL;  // a world's transform
        if (render_frame(o, trainer_newest(&r->t), net, rec, err)) {
            n = -1;
            break;
        }
    }
    free(frame);
    free(rec);
    return n;
}

// What the replay did, in three lines: frames and moves, the losses, the file.
static void report(const ReplayTake *tk, const Run *r, long n, const EventPlay *ep, const LossCheck *lc,
                   const Render *o) {
    tb_log("replay: %s: %ld frames at %dx%d, %ld of the take's %d moves made at their frames (%ld at another "
           "step, %ld held by --steps-per-frame), %ld event lines not moves",
           tk->dir, n, r->t.model.spec.width, r->t.model.spec.height, ep->applied, tk->n_ev, ep->off_step, ep->held,
           tk->skipped);
    if (!tk->have_metrics) tb_log("replay: losses: the take has no metrics.jsonl to compare with");
    else if (lc->compared && lc->same == lc->compared)
        tb_log("replay: losses: %ld of %ld frames identical to the take's, bit for bit", lc->same, lc->compared);
    else if (lc->compared)
        tb_log("replay: losses: %ld of %ld frames identical to the take's; the first to differ is frame %ld "
               "(take %s, replay %s)", lc->same, lc->compared, lc->first_diff, lc->want, lc->got);
    else tb_log("replay: losses: no frame to compare (no step taken, or none recorded)");
    tb_log("replay: rendered %s: %lld frames, %dx%d %s at %d/%d fps", o->out, (long long)o->n, o->ow, o->oh,
           o->layout, o->fps.num, o->fps.den);
}

static int fail_input(const TbErr *err) {
    tb_error("%s", err->msg);
    return TB_EXIT_INPUT;
}

int replay_main(const Settings *cli) {
    TbErr err = {{0}};
    if (!cli->output[0]) return tb_error("--replay %s needs --output FILE.mkv (the video to render)", cli->replay), 2;
    if (strncmp(cli->output, "v4l2:", 5) == 0)
        return tb_error("--replay renders a video file: --output FILE.mkv, not %s", cli->output), 2;
    // x264 and the demuxer talk at "info" and "warning" level; errors reach the log through TbErr.
    if (av_log_get_level() > AV_LOG_ERROR) av_log_set_level(AV_LOG_ERROR);
    ReplayTake tk;
    if (replay_take_read(&tk, cli->replay, &err)) return fail_input(&err);
    int rc = TB_EXIT_INPUT;
    Settings *s = tb_malloc(sizeof *s);
    ReplayIn *in = NULL;
    long frames = 0;
    char path[CFG_STR + 64];
    snprintf(path, sizeof path, "%s/input.mkv", tk.dir);
    if (replay_settings(s, cli, &tk, &err) || !(in = replay_in_open(path, &frames, &err))) {
        tb_error("%s", err.msg);
        goto out;
    }
    if (tk.done && frames < tk.input_written) {
        tb_error("%s: truncated: %ld of the %ld frames take.json counts", path, frames, tk.input_written);
        goto out;
    }
    if (!tk.done) tb_warn("replay: %s did not finish (take.json says recording): replaying the %ld frames of input.mkv", tk.dir, frames);
    if (tk.input_dropped)
        tb_warn("replay: %ld frames were dropped from input.mkv while recording: the replay cannot match the take",
                tk.input_dropped);
    Run r;
    if (run_open(&r, s, NULL, &err)) {
        tb_error("%s", err.msg);
        goto out;
    }
    EventPlay ep = {.hold_steps = by_flag(cli, "train", "steps_per_frame")};
    restore_start(&r, &tk, s, ep.hold_steps);
    LossCheck lc = {.tk = &tk, .first_diff = -1};
    FILE *inner = r.m.f, *tee = tee_open(inner, on_loss, &lc);
    if (tee) r.m.f = tee;
    Render o;
    if (render_open(&o, s, cli, &tk, r.t.model.spec.width, r.t.model.spec.height, &err)) {
        tb_error("%s", err.msg);
        render_close(&o, 0, &err);
    } else {
        long n = replay_frames(&r, in, &tk, &ep, &o, &err);
        run_flush(&r);
        if (n >= 0 && render_close(&o, 1, &err) == 0) {
            report(&tk, &r, n, &ep, &lc, &o);
            rc = TB_EXIT_OK;
        } else {
            if (n < 0) render_close(&o, 0, &(TbErr){{0}});
            tb_error("%s", err.msg);
        }
    }
    if (tee) fflush(tee), r.m.f = inner, fclose(tee);
    run_close(&r);
out:
    replay_in_close(in);
    replay_take_free(&tk);
    free(s);
    return rc;
}
