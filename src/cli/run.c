// run.c: the per-frame training loop both drivers share.
#include "run.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "frame_fit.h"
#include "session.h"
#include "snapshot.h"
#include "world.h"

static void publish(Run *r);

// The trainer's transform into the live values (after a checkpoint set it).
static void transform_to_live(Run *r) {
    live_params_set(&r->p, PARAM_TRANSFORM, (float)r->t.tf.kind);
    live_params_set(&r->p, PARAM_BLUR, (float)r->t.tf.blur);
    live_params_set(&r->p, PARAM_JITTER, r->t.tf.jitter);
}

static size_t frame_bytes(const Run *r) {
    return (size_t)r->t.model.spec.width * r->t.model.spec.height * 3;
}

int run_open(Run *r, const Settings *s, ControlQueue *q, TbErr *err) {
    memset(r, 0, sizeof *r);
    r->s = s;
    r->q = q;
    if (s->events[0]) {
        r->events = fopen(s->events, "w");
        if (!r->events) return tb_fail(err, "--events %s: %s", s->events, strerror(errno));
    }
    // Scenes first: a bad file stops the start before anything heavy is made.
    const Param *sd = param_find_ini("modulation", "scenes");
    if (s->scenes[0] && scenes_load_dir(&r->scenes, s->scenes, strcmp(s->scenes, sd->def) == 0, err))
        goto fail_events;
    if (r->scenes.n) tb_log("scenes: %d in %s/", r->scenes.n, s->scenes);
    modulate_init(&r->mod, (uint64_t)s->seed);
    if (session_setup_trainer(&r->t, s, err)) goto fail_scenes;
    if (metrics_open(&r->m, s->metrics, &r->t, err)) goto fail_trainer;
    if (autosave_open(&r->as, s, &r->t, err)) {
        metrics_close(&r->m);
        goto fail_trainer;
    }
    if (channels_open(&r->chans, s, &r->t, err)) {
        autosave_close(&r->as);
        metrics_close(&r->m);
        goto fail_trainer;
    }
    if (r->as.on) tb_log("autosave: every %.4g min to %s/, keeping %d", (double)s->autosave_minutes, s->autosave_dir, s->autosave_keep);
    live_params_from_settings(&r->p, s);
    transform_to_live(r);  // a loaded world brings the transform it was trained with
    PresenceConfig pc = {.mode = presence_mode_parse(s->presence_mode), .threshold = s->presence_threshold,
                         .after_s = s->presence_after_s, .slow_factor = s->presence_slow_factor};
    presence_init(&r->pres, &pc);
    if (pc.mode != PRESENCE_OFF)
        tb_log("presence: %s learning after %.4g s of stillness (threshold %.4g)", s->presence_mode,
               (double)pc.after_s, (double)pc.threshold);
    size_t n = frame_bytes(r);
    r->smooth_in = tb_malloc(n * sizeof(float));
    r->smooth_out = tb_malloc(n * sizeof(float));
    r->fitted = tb_malloc(n);
    const Model *m = &r->t.model;
    int mode = param_choice_index(param_find_ini("journey", "mode"), s->journey_mode);
    journey_init(&r->jr, m->act_n[model_bottleneck_act(m)], n, mode, s->journey_seconds);
    r->dream_prev = tb_malloc(n);
    r->dream_warp = tb_malloc(n);
    r->window_t0 = r->t_start = tb_now();
    publish(r);  // the values in force, before the first frame
    return 0;
fail_trainer:
    trainer_free(&r->t);
fail_scenes:
    scenes_free(&r->scenes);
fail_events:
    if (r->events) fclose(r->events);
    return -1;
}

// One line of the event log: when, at which frame and step, from where, what.
// The same line goes to --events and to the output (a take's events.jsonl).
static int out_active(Run *r, const RunOutput *o) { return o->active && o->active(o->user, r); }

static void log_line(Run *r, const char *source, const char *what, float value) {
    int have_out = 0;
    for (int i = 0; i < r->nout; i++) have_out |= r->out[i].event && out_active(r, &r->out[i]);
    if ((!r->events || r->events_failed) && !have_out) return;
    char line[512], v[24];
    // The value exactly (tb_fmt_float), so a replayed take sets the same bits.
    snprintf(line, sizeof line, "{\"t\":%.4f,\"frame\":%ld,\"step\":%ld,\"source\":\"%s\",%s,\"value\":%s}",
             tb_now() - r->t_start, r->frames, r->t.step, source, what, tb_fmt_float(v, value));
    for (int i = 0; i < r->nout; i++)
        if (r->out[i].event && out_active(r, &r->out[i])) r->out[i].event(r->out[i].user, line);
    if (!r->events || r->events_failed) return;
    int w = fprintf(r->events, "%s\n", line);
    if (w < 0 || fflush(r->events) != 0) {
        // A full disk must not stop the show: say it once, keep going.
        tb_warn("events %s: %s: no more events will be written", r->s->events, strerror(errno));
        r->events_failed = 1;
    }
}

static void log_event(Run *r, const ControlEvent *e, const char *what, float value) {
    log_line(r, event_source_name(e->source), what, value);
}

static void log_param(Run *r, const ControlEvent *e) {
    char what[96];
    snprintf(what, sizeof what, "\"param\":\"%s\"", param_live(e->param)->key);
    log_event(r, e, what, r->p.v[e->param]);
}

// A parameter or reset for channel ch >= 1 (or every channel but 0 for CH_ALL,
// whose channel 0 part goes the usual way): its own live values, logged with "ch".
static void channel_control(Run *r, const ControlEvent *e, int ch, char *msg, size_t n) {
    Channel *c = &r->chans.ch[ch];
    LiveParams *p = &c->p;
    char what[128];
    if (e->cmd == CMD_RESET) {
        uint64_t seed = e->value >= 0 ? (uint64_t)e->value : c->t.seed + 1;
        if (c->kind == CH_NET) trainer_reset(&c->t, seed), metrics_watchdog_reset(&c->m);
        snprintf(what, sizeof what, "\"ch\":%d,\"action\":\"reset\"", ch);
        log_event(r, e, what, (float)seed);
        snprintf(msg, n, "channel %d reset: a blank network (seed %llu)", ch, (unsigned long long)seed);
        return;
    }
    if (e->cmd == CMD_SET) live_params_set(p, e->param, e->value);
    else if (e->cmd == CMD_NUDGE) live_params_set(p, e->param, live_params_nudge(p, e->param, e->value > 0 ? 1 : -1));
    else live_params_set(p, e->param, p->v[e->param] > 0 ? 0 : 1);
    snprintf(what, sizeof what, "\"ch\":%d,\"param\":\"%s\"", ch, param_live(e->param)->key);
    log_event(r, e, what, p->v[e->param]);
    if (e->param == PARAM_LOSS && c->kind == CH_NET) metrics_watchdog_reset(&c->m);
}

// Events for the other channels: 1 if e was theirs alone (channel 0 untouched).
static int channels_control(Run *r, const ControlEvent *e, char *msg, size_t n) {
    int is_param = e->cmd == CMD_SET || e->cmd == CMD_NUDGE || e->cmd == CMD_TOGGLE;
    if (e->ch == 0 || (is_param && e->param == PARAM_COUPLING)) return 0;  // the run's (coupling is global)
    if (!is_param && e->cmd != CMD_RESET) {
        if (e->ch > 0) snprintf(msg, n, "channel %d: only parameters and reset address a channel", e->ch);
        return e->ch > 0;
    }
    if (e->ch == CH_ALL) {
        for (int i = 1; i < r->chans.count; i++) channel_control(r, e, i, msg, n);
        return 0;  // and channel 0 as usual
    }
    if (e->ch < 1 || e->ch >= r->chans.count) snprintf(msg, n, "channel %d: there are %d", e->ch, r->chans.count);
    else channel_control(r, e, e->ch, msg, n);
    return 1;
}

double run_now(const Run *r) {
    if (r->s->headless) return (double)r->frames / (r->s->fps > 0 ? r->s->fps : 30.0);
    return tb_now() - r->t_start;
}

// The moments the modulator noted (glide start/end, LFO attach/detach, fade
// end), into the event log: not every frame's value.
static void log_notes(Run *r) {
    static const char *const glide[] = {"start", "end", "stop"};
    for (int i = 0; i < r->mod.n_notes; i++) {
        const ModNote *nt = &r->mod.note[i];
        ControlEvent e = {.cmd = CMD_SET, .param = nt->param, .value = nt->value, .source = nt->source};
        char what[160];
        const char *key = nt->kind <= MOD_LFO_DETACH ? param_live(nt->param)->key : "";
        switch (nt->kind) {
        case MOD_GLIDE_START:
            snprintf(what, sizeof what, "\"param\":\"%s\",\"glide\":\"start\",\"to\":%.7g,\"seconds\":%.7g",
                     key, (double)nt->to, (double)nt->seconds);
            break;
        case MOD_GLIDE_END:
        case MOD_GLIDE_STOP:
            snprintf(what, sizeof what, "\"param\":\"%s\",\"glide\":\"%s\"", key, glide[nt->kind]);
            break;
        case MOD_LFO_ATTACH: {
            char shape[16];
            if (!param_choice_name(param_live(PARAM_LFO_SHAPE), (int)r->p.v[PARAM_LFO_SHAPE], shape, sizeof shape))
                snprintf(shape, sizeof shape, "?");
            snprintf(what, sizeof what,
                     "\"param\":\"%s\",\"lfo\":\"attach\",\"shape\":\"%s\",\"rate\":%.7g,\"depth\":%.7g",
                     key, shape, (double)r->p.v[PARAM_LFO_RATE], (double)r->p.v[PARAM_LFO_DEPTH]);
            break;
        }
        case MOD_LFO_DETACH: snprintf(what, sizeof what, "\"param\":\"%s\",\"lfo\":\"detach\"", key); break;
        default:
            snprintf(what, sizeof what, "\"action\":\"slot_fade\",\"slot\":%d,\"fade\":\"%s\"", nt->param,
                     nt->kind == MOD_FADE_END ? "end" : "stop");
            break;
        }
        log_event(r, &e, what, nt->value);
    }
    r->mod.n_notes = 0;
}

// The slot number an event names (1..TB_SLOTS), or 0 with msg filled.
static int slot_arg(const ControlEvent *e, const char *action, char *msg, size_t n) {
    float v = e->value;
    if (v == v && v >= 1 && v <= TB_SLOTS && v == (float)(int)v) return (int)v;
    snprintf(msg, n, "%s: slot %g: slots are 1 to %d", action, (double)v, TB_SLOTS);
    return 0;
}

// Slot actions: save, recall, fade (over fade_time), write, read.
static void slot_action(Run *r, const ControlEvent *e, char *msg, size_t n) {
    static const char *const names[] = {"slot_save", "slot_recall", "slot_fade", "slot_write", "slot_read"};
    const char *name = names[e->cmd - CMD_SLOT_SAVE];
    TbErr err = {{0}};
    char path[CFG_STR + 64], what[96];
    int i = slot_arg(e, name, msg, n), rc = 0;
    float secs = r->p.v[PARAM_FADE_TIME];
    snprintf(what, sizeof what, "\"action\":\"%s\"", name);
    if (!i) {
        log_event(r, e, what, e->value);
        return;
    }
    switch (e->cmd) {
    case CMD_SLOT_SAVE:
        if (!(rc = trainer_slot_save(&r->t, i, &err))) snprintf(msg, n, "slot %d saved", i);
        break;
    case CMD_SLOT_FADE:
        if (secs > 0 && trainer_slot_full(&r->t, i)) {
            modulate_fade(&r->mod, i, secs, run_now(r), e->source);
            snprintf(what, sizeof what, "\"action\":\"slot_fade\",\"seconds\":%.7g", (double)secs);
            snprintf(msg, n, "fading into slot %d over %.3g s", i, (double)secs);
            break;
        }
        // An instant fade (fade_time 0) is a recall.
        // fall through
    case CMD_SLOT_RECALL:
        if (trainer_slot_full(&r->t, i)) modulate_fade_stop(&r->mod);  // a new network: the fade is over
        if (!(rc = trainer_slot_recall(&r->t, i, &err))) snprintf(msg, n, "slot %d recalled", i);
        break;
    case CMD_SLOT_WRITE:
        if (!(rc = snapshot_slot_write(r->s->snapshot_dir, &r->t, i, path, sizeof path, &err)))
            snprintf(msg, n, "slot %d written to %.300s", i, path);
        break;
    case CMD_SLOT_READ:
        if (!(rc = snapshot_slot_read(r->s->snapshot_dir, &r->t, i, path, sizeof path, &err)))
            snprintf(msg, n, "slot %d read from %.300s", i, path);
        break;
    }
    if (rc) snprintf(msg, n, "%s failed: %.400s", name, err.msg);
    log_event(r, e, what, (float)i);
    log_notes(r);
}

// World N: into [world] slot (its transform becomes the live one), then a
// cross-fade into that slot as slot_fade does.
static void world_action(Run *r, const ControlEvent *e, char *msg, size_t n) {
    TbErr err = {{0}};
    char path[CFG_STR + 300];
    int w = e->value == e->value && e->value >= 1 && e->value < 1e6 ? (int)e->value : 0;
    if (world_load(&r->t, r->s->world_dir, w, r->s->world_slot, path, sizeof path, &err)) {
        snprintf(msg, n, "world failed: %.400s", err.msg);
    } else {
        transform_to_live(r);
        ControlEvent f = {.cmd = CMD_SLOT_FADE, .value = (float)r->s->world_slot, .source = e->source};
        slot_action(r, &f, msg, n);
        tb_log("world %d: %.400s", w, path);
    }
    log_event(r, e, "\"action\":\"world\"", e->value);
}

// Scene N (1-based): glide to its values over its transition.
static void scene_action(Run *r, const ControlEvent *e, char *msg, size_t n) {
    float v = e->value;
    int i = v == v && v >= 1 && v <= r->scenes.n && v == (float)(int)v ? (int)v : 0;
    char what[128];
    if (!i) {
        snprintf(msg, n, "scene %g: there %s %d scene%s (%s/)", (double)v, r->scenes.n == 1 ? "is" : "are",
                 r->scenes.n, r->scenes.n == 1 ? "" : "s", r->s->scenes);
        log_event(r, e, "\"action\":\"scene\"", v);
        return;
    }
    const Scene *sc = &r->scenes.v[i - 1];
    snprintf(what, sizeof what, "\"action\":\"scene\",\"scene\":\"%s\",\"seconds\":%.7g", sc->name,
             (double)sc->transition);
    log_event(r, e, what, (float)i);
    modulate_scene(&r->mod, &r->p, sc, run_now(r));
    log_notes(r);
    snprintf(msg, n, "scene %d: %s (%.3g s)", i, sc->name, (double)sc->transition);
}

// Start a take, or stop the one running. The event is the last line of the
// take it stops and the first of the take it starts.
static void record_action(Run *r, const ControlEvent *e, char *msg, size_t n) {
    const RunOutput *o = NULL;
    for (int i = 0; i < r->nout && !o; i++)
        if (r->out[i].record) o = &r->out[i];
    if (!o) {
        snprintf(msg, n, "record: this build cannot record (no app)");
        log_event(r, e, "\"action\":\"record\"", 0);
        return;
    }
    int on = out_active(r, o);
    if (on) log_event(r, e, "\"action\":\"record\"", 0);
    o->record(o->user, r, !on, msg, n);
    if (!on) log_event(r, e, "\"action\":\"record\"", (float)out_active(r, o));
}

// Journeys: store the current code as keyframe N (or the next), or play /
// stop. Learning goes on while one plays: the codes were stored under weights
// that have moved on anyway, and the room keeps teaching the decoder that
// paints them ([train] pause holds it still).
static void journey_action(Run *r, const ControlEvent *e, char *msg, size_t n) {
    Journey *j = &r->jr;
    float v = e->value;
    int want = v == v && v >= 1 && v <= JOURNEY_KEYS ? (int)v - 1 : -1, got = -1;
    if (e->cmd == CMD_JOURNEY) {
        if (j->playing) journey_stop(j), snprintf(msg, n, "journey stopped");
        else if (journey_start(j, run_now(r)) == 0)
            snprintf(msg, n, "journey through %d code%s, %.3g s each", j->n, j->n == 1 ? "" : "s", (double)j->seconds);
        else snprintf(msg, n, "journey: no codes stored yet (code_store)");
        log_event(r, e, "\"action\":\"journey\"", (float)j->playing);
        return;
    }
    if (!r->t.last_batch) snprintf(msg, n, "code_store: no frame yet");
    else if ((got = journey_store_trainer(j, &r->t, want)) < 0)
        snprintf(msg, n, "code_store: keyframe %d: keyframes are filled in order (%d stored)", want + 1, j->n);
    else snprintf(msg, n, "code stored as keyframe %d of %d", got + 1, j->n);
    log_event(r, e, "\"action\":\"code_store\"", (float)(got + 1));
}

// A blank network from seed (a reset, a rebirth at opening): a fade in flight
// ends, the shown reconstruction starts afresh.
static void reset_network(Run *r, uint64_t seed) {
    modulate_fade_stop(&r->mod);
    trainer_reset(&r->t, seed);
    r->have_out = 0;
}

void run_opening(Run *r, char *msg, size_t n) {
    msg[0] = 0;
    PresenceConfig pc = r->pres.c;
    presence_init(&r->pres, &pc);  // last night's stillness is not today's
    if (strcmp(r->s->sched_rebirth, "fresh") != 0) return;
    uint64_t seed = (uint64_t)(r->s->sched_seed >= 0 ? r->s->sched_seed : r->s->seed);
    reset_network(r, seed);
    // A new day as a fresh start has it: yesterday's frames are not replayed,
    // smoothing starts from the first frame.
    r->t.ring_len = 0, r->t.ring_head = 0;
    r->have_in = 0;
    channels_rebirth(&r->chans, r->s->sched_seed);
    metrics_watchdog_reset(&r->m);  // a new network: its loss level is not an explosion
    log_line(r, "schedule", "\"action\":\"rebirth\"", (float)seed);
    snprintf(msg, n, "opening: a fresh network (seed %llu)", (unsigned long long)seed);
    tb_log("%s", msg);
}

int run_control(Run *r, const ControlEvent *e, char *msg, size_t n) {
    TbErr err;
    char path[CFG_STR + 300];
    msg[0] = 0;
    int is_param = e->cmd == CMD_SET || e->cmd == CMD_NUDGE || e->cmd == CMD_TOGGLE;
    if (is_param && (e->param < 0 || e->param >= PARAM_COUNT))
        return 0;  // not a parameter: ignore (surfaces check, this is the last guard)
    if (e->cmd != CMD_QUIT && channels_control(r, e, msg, n)) {
        if (msg[0]) tb_log("%s", msg);
        return 0;
    }
    // A hand on a parameter: steps go from the LFO's centre, and a glide stops.
    if (is_param) modulate_hold(&r->mod, &r->p, e->param);
    switch (e->cmd) {
    case CMD_SET: live_params_set(&r->p, e->param, e->value), log_param(r, e); break;
    case CMD_NUDGE:
        live_params_set(&r->p, e->param, live_params_nudge(&r->p, e->param, e->value > 0 ? 1 : -1));
        log_param(r, e);
        break;
    case CMD_TOGGLE: live_params_set(&r->p, e->param, r->p.v[e->param] > 0 ? 0 : 1), log_param(r, e); break;
    case CMD_SLOT_SAVE:
    case CMD_SLOT_RECALL:
    case CMD_SLOT_FADE:
    case CMD_SLOT_WRITE:
    case CMD_SLOT_READ: slot_action(r, e, msg, n); break;
    case CMD_SCENE: scene_action(r, e, msg, n); break;
    case CMD_WORLD: world_action(r, e, msg, n); break;
    case CMD_RESET: {
        uint64_t seed = e->value >= 0 ? (uint64_t)e->value : r->t.seed + 1;
        reset_network(r, seed);
        log_event(r, e, "\"action\":\"reset\"", (float)seed);
        snprintf(msg, n, "reset: a blank network (seed %llu)", (unsigned long long)seed);
        break;
    }
    case CMD_SAVE:
        if (snapshot_save(r->s->snapshot_dir, &r->t, path, sizeof path, &err))
            snprintf(msg, n, "save failed: %.400s", err.msg);
        else snprintf(msg, n, "saved %.400s", path);
        log_event(r, e, "\"action\":\"save\"", 0);
        break;
    case CMD_LOAD:
        modulate_fade_stop(&r->mod);
        if (snapshot_load_newest(r->s->snapshot_dir, &r->t, path, sizeof path, &err))
            snprintf(msg, n, "%.400s", err.msg);
        else snprintf(msg, n, "loaded %.400s", path);
        if (r->t.tf_from_file) transform_to_live(r);
        log_event(r, e, "\"action\":\"load\"", 0);
        break;
    case CMD_RECORD: record_action(r, e, msg, n); break;
    case CMD_CODE_STORE:
    case CMD_JOURNEY: journey_action(r, e, msg, n); break;
    case CMD_QUIT: return 1;
    }
    if (is_param) modulate_touch(&r->mod, &r->p, e->param);
    // Another network or loss function: its loss level is not an explosion.
    if ((is_param && e->param == PARAM_LOSS) || e->cmd == CMD_RESET || e->cmd == CMD_LOAD ||
        e->cmd == CMD_SLOT_RECALL || e->cmd == CMD_SLOT_FADE || e->cmd == CMD_SLOT_READ || e->cmd == CMD_WORLD)
        metrics_watchdog_reset(&r->m);
    log_notes(r);
    if (msg[0]) tb_log("%s", msg);
    return 0;
}

int run_drain(Run *r, char *msg, size_t n) {
    if (n) msg[0] = 0;
    if (!r->q) return 0;
    ControlEvent e;
    char line[512];
    while (control_pop(r->q, &e)) {
        if (run_control(r, &e, line, sizeof line)) return 1;
        if (line[0] && n) snprintf(msg, n, "%s", line);
    }
    return 0;
}

// The live parameters the optimizer, the loss and the replay draw read; an
// empty room in slow mode scales the lr (lr_scale), not the live value.
void run_apply_params(Trainer *t, const LiveParams *p, float lr_scale) {
    t->hyper.lr = p->v[PARAM_LR] * lr_scale;
    t->hyper.momentum = p->v[PARAM_MOMENTUM];
    t->hyper.clip = p->v[PARAM_CLIP];
    t->hyper.weight_decay = p->v[PARAM_WEIGHT_DECAY];
    t->hyper.loss = (int)p->v[PARAM_LOSS];
    trainer_set_optimizer(t, (int)p->v[PARAM_OPTIMIZER]);
    int ring = (int)p->v[PARAM_RING];
    t->ring_limit = ring < t->ring_cap ? ring : t->ring_cap;
    t->tf.kind = (int)p->v[PARAM_TRANSFORM];
    t->tf.blur = (int)p->v[PARAM_BLUR];
    t->tf.jitter = p->v[PARAM_JITTER];
    trainer_set_bottleneck(t, (int)p->v[PARAM_BN_KEEP], p->v[PARAM_BN_NOISE], p->v[PARAM_BN_FREEZE] > 0);
}

// The blend in force follows [dream] feedback with time constant tau (run
// time, so a headless run is reproducible); within 1/1024 it lands exactly,
// so turning feedback to 0 gives back the plain path bit for bit.
static float dream_amount(Run *r) {
    double now = run_now(r), dt = now - r->dream_t;
    float target = r->p.v[PARAM_FEEDBACK], tau = r->p.v[PARAM_TAU];
    r->dream_t = now;
    if (tau <= 0 || dt < 0) r->dream_a = target;
    else r->dream_a += (target - r->dream_a) * (float)(1 - exp(-dt / tau));
    if (fabsf(target - r->dream_a) < 1.0f / 1024) r->dream_a = target;
    return r->dream_a;
}

// The dream: frame = (1-a)*frame + a*warp(last reconstruction), in RGB8 (what
// the ring holds and a take's input.mkv records, so a replay sees the same
// bytes). The warp moves only the fed-back picture: the camera stays put and
// the dream drifts. a = 1 leaves no trace of the camera.
static void dream_blend(Run *r, uint8_t *frame, float a) {
    int W = r->t.model.spec.width, H = r->t.model.spec.height;
    Warp wp = {.zoom = r->p.v[PARAM_ZOOM], .rotate = r->p.v[PARAM_ROTATE],
               .shift_x = r->p.v[PARAM_SHIFT_X], .shift_y = r->p.v[PARAM_SHIFT_Y]};
    warp_apply(&wp, r->dream_warp, r->dream_prev, W, H);
    size_t n = frame_bytes(r);
    for (size_t i = 0; i < n; i++)
        frame[i] = (uint8_t)((1 - a) * frame[i] + a * r->dream_warp[i] + 0.5f);
}

// acc = a*acc + (1-a)*x over n bytes (acc starts at x), written back as bytes.
static void smooth(float *acc, int *have, uint8_t *x, size_t n, float a) {
    if (!*have || a <= 0) {
        for (size_t i = 0; i < n; i++) acc[i] = x[i];
        *have = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        acc[i] = a * acc[i] + (1 - a) * (float)x[i];
        x[i] = (uint8_t)(acc[i] + 0.5f);
    }
}

// The presence detector sees the fitted frame before smoothing; a change is
// one log line (and one --events line), never a line per frame.
static void presence_look(Run *r, const uint8_t *fitted) {
    if (r->pres.c.mode == PRESENCE_OFF) return;
    double now = run_now(r);
    int W = r->t.model.spec.width, H = r->t.model.spec.height;
    float m = presence_measure(&r->pres, fitted, W, H, now);
    r->pres_change = presence_feed(&r->pres, m, now);
    if (!r->pres_change) return;
    char line[96];
    presence_describe(&r->pres, line, sizeof line);
    tb_log("presence: %s (motion %.4f, threshold %.4g)", line, (double)m, (double)r->pres.c.threshold);
    log_line(r, "presence", r->pres.empty ? "\"action\":\"empty\"" : "\"action\":\"motion\"", m);
}

// The frame that goes into the ring: fitted, then blended with the ones before,
// then (dreaming) with the last reconstruction.
static void push_frame(Run *r, const uint8_t *rgb, int w, int h) {
    Trainer *t = &r->t;
    int W = t->model.spec.width, H = t->model.spec.height;
    float a = r->p.v[PARAM_SMOOTH_IN], fb = dream_amount(r);
    // The first frame of a dream is the camera's; a replayed one is already dreamed.
    int dream = fb > 0 && r->have_prev && !r->dream_recorded;
    if (a <= 0 && !dream) {
        r->have_in = 0;  // start afresh when smoothing comes back on
        trainer_push_frame(t, rgb, w, h);
        presence_look(r, trainer_newest(t));
        return;
    }
    if (w == W && h == H) memcpy(r->fitted, rgb, frame_bytes(r));
    else frame_fit(r->fitted, W, H, rgb, w, h);
    presence_look(r, r->fitted);
    if (a > 0) smooth(r->smooth_in, &r->have_in, r->fitted, frame_bytes(r), a);
    else r->have_in = 0;
    if (dream) dream_blend(r, r->fitted, fb);
    trainer_push_frame(t, r->fitted, W, H);
}

static void publish(Run *r) {
    if (!r->q) return;
    RunView v = {.p = r->p, .loss = r->m.loss, .psnr = r->m.psnr, .grad_norm = r->m.grad_norm,
                 .steps_per_s = r->steps_per_s, .step = r->t.step, .frames = r->frames,
                 .rollbacks = r->m.diverged, .channels = r->chans.count};
    v.chp[0] = r->p, v.ch_loss[0] = r->m.loss;
    for (int i = 1; i < r->chans.count; i++) {
        const Channel *c = &r->chans.ch[i];
        v.chp[i] = c->p;
        v.ch_loss[i] = c->kind == CH_NET ? c->m.loss : NAN;
    }
    control_publish(r->q, &v);
}

// Glides, the LFO and a slot fade move the live values (and the weights).
static void modulate(Run *r) {
    ModBlend b = modulate_step(&r->mod, &r->p, run_now(r));
    TbErr err;
    if (b.alpha > 0 && trainer_slot_blend(&r->t, b.slot, b.alpha, &err)) {
        tb_log("slot_fade: %s", err.msg);
        modulate_fade_stop(&r->mod);
    }
    log_notes(r);
}

int run_frame(Run *r, const uint8_t *rgb, int w, int h) {
    Trainer *t = &r->t;
    modulate(r);
    // Frozen, the network keeps training on (and showing) the last frame.
    r->pres_change = 0;
    int pushed = !(r->p.v[PARAM_FREEZE] > 0 && trainer_newest(t));
    if (pushed) push_frame(r, rgb, w, h);
    run_apply_params(t, &r->p, presence_lr_factor(&r->pres));
    // Paused by hand or by an empty room: the same pause (no steps, the frame
    // still goes in, the reconstruction follows it).
    int paused = r->p.v[PARAM_PAUSE] > 0 || presence_pausing(&r->pres);
    int K = paused ? 0 : (int)r->p.v[PARAM_STEPS];
    int R = (int)r->p.v[PARAM_MEMORY];
    int diverged = 0;
    if (metrics_need_flush(&r->m, t, K, r->s->stats_every)) diverged = metrics_flush(&r->m, t);
    if (diverged && r->s->rollback_lr_factor != 1.0f) {
        float lr = r->p.v[PARAM_LR];
        float now_lr = live_params_set(&r->p, PARAM_LR, lr * r->s->rollback_lr_factor);
        tb_log("watchdog: lr %.4g -> %.4g (rollback_lr_factor %.3g)", (double)lr, (double)now_lr,
               (double)r->s->rollback_lr_factor);
        run_apply_params(t, &r->p, presence_lr_factor(&r->pres));
    }
    int slot = trainer_train(t, K, R);
    // Dreaming (or about to): keep this frame's reconstruction for the next.
    r->have_prev = (r->p.v[PARAM_FEEDBACK] > 0 || r->dream_a > 0) && !r->dream_recorded;
    if (r->have_prev) trainer_output(t, r->dream_prev);
    metrics_frame(&r->m, t, r->frames, slot, K, R);
    if (r->chans.count > 1)  // the other minds see the same frame, then the coupling
        channels_frame(&r->chans, t, r->frames, pushed, presence_pausing(&r->pres), presence_lr_factor(&r->pres),
                       r->p.v[PARAM_COUPLING], run_now(r));
    r->frames++;
    r->window_steps += K;
    double now = tb_now();
    if (now - r->window_t0 > 0.5) {
        r->steps_per_s = (float)(r->window_steps / (now - r->window_t0));
        r->window_steps = 0;
        r->window_t0 = now;
    }
    // After the frame's steps: a due autosave gets a copy (the writer does the disk).
    autosave_tick(&r->as, t, tb_now());
    publish(r);
    return diverged;
}

void run_output(Run *r, uint8_t *rgb) {
    if (r->jr.playing) journey_render(&r->jr, &r->t, run_now(r), rgb);
    else trainer_output(&r->t, rgb);
    float a = r->p.v[PARAM_SMOOTH_OUT];
    if (a <= 0) r->have_out = 0;
    else smooth(r->smooth_out, &r->have_out, rgb, frame_bytes(r), a);
    for (int i = 0; i < r->nout; i++)
        if (r->out[i].frame && out_active(r, &r->out[i]))
            r->out[i].frame(r->out[i].user, r, trainer_newest(&r->t), rgb);
}

void run_channel_output(Run *r, int i, uint8_t *rgb) {
    CHECK(i >= 0 && i < r->chans.count, "channel %d", i);
    trainer_output(i ? &r->chans.ch[i].t : &r->t, rgb);
}

void run_attach(Run *r, const RunOutput *out) {
    if (!out) return;
    CHECK(r->nout < RUN_OUTPUTS, "run_attach: more than %d outputs", RUN_OUTPUTS);
    RunOutput *o = &r->out[r->nout++];
    *o = *out;
    if (o->attach) o->attach(o->user, r);
}

int run_output_active(Run *r) {
    int on = 0;
    for (int i = 0; i < r->nout; i++) on |= out_active(r, &r->out[i]);
    return on;
}

void run_flush(Run *r) {
    metrics_flush(&r->m, &r->t);
    channels_flush(&r->chans);
    publish(r);
}

void run_close(Run *r) {
    for (int i = r->nout - 1; i >= 0; i--)  // the take ends with the run
        if (r->out[i].detach) r->out[i].detach(r->out[i].user, r);
    autosave_final(&r->as, &r->t);  // the end of a run, a signal's too: what it learned stays
    autosave_close(&r->as);
    metrics_close(&r->m);
    channels_close(&r->chans);
    trainer_free(&r->t);
    if (r->events && fclose(r->events) != 0 && !r->events_failed)
        tb_log("events %s: %s", r->s->events, strerror(errno));
    free(r->smooth_in);
    free(r->smooth_out);
    free(r->fitted);
    free(r->dream_prev);
    free(r->dream_warp);
    journey_free(&r->jr);
    scenes_free(&r->scenes);
    memset(r, 0, sizeof *r);
}
