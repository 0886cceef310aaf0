// panel.c: the keyboard panel and the HUD. Display keys act here at once;
// training keys become events for the training thread (a step up or down, a
// toggle, a value), applied to the values in force so that repeats accumulate
// whatever else moved them. The HUD shows every live parameter of the table,
// then what training measures.
#include <stdio.h>
#include <string.h>

#include "hud.h"
#include "keys.h"
#include "live.h"
#include "midi.h"
#include "midi.h"

// [channels]: the channel the training keys act on (main thread only; the HUD shows it).
static int key_ch;

static void send(App *a, int cmd, int id, float v) {
    control_push(a->q, (ControlEvent){.cmd = cmd, .param = id, .value = v, .source = SRC_KEY, .ch = key_ch});
}

static void push_cmd(App *a, int cmd, float value) {
    control_push(a->q, (ControlEvent){.cmd = cmd, .param = -1, .value = value, .source = SRC_KEY});
}

// The help overlay: every key with its help line (steps from the parameter table).
static void set_help(Display *d) {
    int n;
    const KeyBinding *k = keys_table(&n);
    static char lines[64][128];
    const char *ptrs[64];
    int m = 0;
    snprintf(lines[m], sizeof lines[m], "tabula keys");
    ptrs[m] = lines[m];
    m++;
    for (int i = 0; i < n && m < 64; i++) {
        if (!k[i].keyname) continue;
        char help[112];
        keys_help(&k[i], help, sizeof help);
        snprintf(lines[m], sizeof lines[m], "%s\t%s", k[i].keyname, help);
        ptrs[m] = lines[m];
        m++;
    }
    display_set_help(d, ptrs, m);
}

void panel_init(Panel *pn, Display *d, const Settings *s) {
    memset(pn, 0, sizeof *pn);
    pn->clip_saved = s->clip > 0 ? s->clip : 1.0f;
    pn->flip = s->flip;
    pn->hud = s->hud;
    display_set_flip(d, pn->flip);
    display_show_hud(d, pn->hud);
    set_help(d);
}

// i + dir in -1..n-1, past either end to -1 (none) and from -1 to an end.
static int cycle(int i, int dir, int n) {
    i += dir;
    if (i < -1) i = n - 1;
    return i >= n ? -1 : i;
}

// The atlas's keys: the layout (A toggles it and remembers the one before),
// one layer alone, a bottleneck channel solo. The training thread reads the
// choice after its next frame.
static void atlas_key(App *a, Display *d, Panel *pn, const KeyBinding *b) {
    const Model *m = &a->run.t.model;  // fixed once the run is open
    char msg[96] = "";
    if (b->kind == KA_ATLAS) {
        int on = display_layout(d) != DISPLAY_ATLAS;
        if (on) pn->layout_before = display_layout(d);
        display_set_layout(d, on ? DISPLAY_ATLAS : (DisplayLayout)pn->layout_before);
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (b->kind == KA_ATLAS_FOCUS) {
        // Layers 1..n_layers-1 (the output is the mirror): focus i-1 in 0..n-2.
        int f = cycle(a->atlas_focus < 0 ? -1 : a->atlas_focus - 1, b->arg, m->n_layers - 1);
        a->atlas_focus = f < 0 ? -1 : f + 1;
        if (f < 0) snprintf(msg, sizeof msg, "atlas: every layer");
        else snprintf(msg, sizeof msg, "atlas: %s alone", m->layers[f].name);
    } else {  // groups of n channels from 0, n, 2n, ...: solo steps by groups
        int C = model_bottleneck_channels(m), n = a->atlas_solo_n;
        if (b->kind == KA_SOLO_GROUP) a->atlas_solo_n = n = n >= 64 || n * 4 > C ? 1 : n * 4;
        int g = cycle(a->atlas_solo < 0 ? -1 : a->atlas_solo / n, b->kind == KA_SOLO ? b->arg : 0, (C + n - 1) / n);
        a->atlas_solo = g < 0 ? -1 : g * n;
        int last = a->atlas_solo + n < C ? a->atlas_solo + n : C;
        if (a->atlas_solo < 0) snprintf(msg, sizeof msg, "solo: off (groups of %d)", n);
        else if (n == 1) snprintf(msg, sizeof msg, "solo: bottleneck channel %d of %d", a->atlas_solo + 1, C);
        else snprintf(msg, sizeof msg, "solo: bottleneck channels %d to %d of %d", a->atlas_solo + 1, last, C);
    }
    pthread_mutex_unlock(&a->mu);
    display_status(d, msg, 1.5);
}

void panel_key(App *a, Display *d, Panel *pn, const DisplayKey *k) {
    // Keys act relative to the values in force (a scene, an LFO, MIDI or OSC may
    // have moved them): steps and toggles are applied by the training loop.
    const RunView view = control_view(a->q);
    const LiveParams now = view.channels > 1 && key_ch < view.channels ? view.chp[key_ch] : view.p;
    const KeyBinding *b = keys_lookup(k->key, k->mods);
    if (!b) return;
    switch (b->kind) {
    case KA_UP:
    case KA_DOWN:
        send(a, CMD_NUDGE, b->arg, b->kind == KA_UP ? 1 : -1);
        break;
    case KA_CLIP_TOGGLE:
        if (now.v[PARAM_CLIP] > 0) {
            pn->clip_saved = now.v[PARAM_CLIP];
            send(a, CMD_SET, PARAM_CLIP, 0);
        } else {
            send(a, CMD_SET, PARAM_CLIP, pn->clip_saved > 0 ? pn->clip_saved : 1.0f);
        }
        break;
    case KA_PAUSE:
        send(a, CMD_TOGGLE, PARAM_PAUSE, 0);
        display_status(d, now.v[PARAM_PAUSE] > 0 ? "learning resumed" : "learning paused", 1.5);
        break;
    case KA_RESET:
        control_push(a->q, (ControlEvent){.cmd = CMD_RESET, .param = -1, .value = -1, .source = SRC_KEY, .ch = key_ch});
        break;
    case KA_CHANNEL_NEXT: {
        char msg[64];
        key_ch = view.channels > 1 ? (key_ch + 1) % view.channels : 0;
        snprintf(msg, sizeof msg, "keys act on channel %d of %d", key_ch, view.channels > 1 ? view.channels : 1);
        display_status(d, msg, 2);
        break;
    }
    case KA_SAVE: push_cmd(a, CMD_SAVE, 0); break;
    case KA_LOAD: push_cmd(a, CMD_LOAD, 0); break;
    case KA_RECORD: push_cmd(a, CMD_RECORD, 0); break;
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
    case KA_MIDI_LEARN: {
        char msg[160];
        midi_learn_step(b->arg, msg, sizeof msg);
        display_status(d, msg, 4);
        break;
    }
    case KA_QUIT: display_set_should_close(d, 1); break;
    case KA_SLOT_FADE: push_cmd(a, CMD_SLOT_FADE, (float)b->arg); break;
    case KA_SLOT_SAVE: push_cmd(a, CMD_SLOT_SAVE, (float)b->arg); break;
    case KA_SLOT_RECALL: push_cmd(a, CMD_SLOT_RECALL, (float)b->arg); break;
    case KA_WORLD: push_cmd(a, CMD_WORLD, (float)b->arg); break;
    case KA_ATLAS:
    case KA_ATLAS_FOCUS:
    case KA_SOLO:
    case KA_SOLO_GROUP: atlas_key(a, d, pn, b); break;
    case KA_CODE_STORE: push_cmd(a, CMD_CODE_STORE, -1); break;
    case KA_JOURNEY: push_cmd(a, CMD_JOURNEY, 0); break;
    }
}

// "lr 2", "clip off", "opt adam", "memory 3", "PAUSED" (pause, freeze and
// smoothing show only when on).
static int param_text(const LiveParams *p, int id, char *buf, size_t n) {
    const Param *r = param_live(id);
    float v = p->v[id];
    buf[0] = 0;
    if (id == PARAM_PAUSE) return v > 0 ? snprintf(buf, n, "PAUSED") : 0;
    if (id == PARAM_FREEZE) return v > 0 ? snprintf(buf, n, "CAMERA FROZEN") : 0;
    if ((id == PARAM_SMOOTH_IN || id == PARAM_SMOOTH_OUT || id == PARAM_WEIGHT_DECAY || id == PARAM_COUPLING) && v <= 0)
        return 0;
    // The input transform only when it changes what the network is given.
    if ((id == PARAM_TRANSFORM || id == PARAM_JITTER) && v <= 0) return 0;
    if (id == PARAM_BLUR && v <= 1) return 0;
    // The dream's values have their own line while it feeds back (panel_hud,
    // hud_dream_line); before that only a transform set away from rest shows.
    if (id == PARAM_FEEDBACK || ((id == PARAM_ZOOM || id == PARAM_ROTATE || id == PARAM_SHIFT_X ||
                                  id == PARAM_SHIFT_Y || id == PARAM_TAU) &&
                                 (p->v[PARAM_FEEDBACK] > 0 || v == (id == PARAM_ZOOM ? 1.0f : 0.0f))))
        return 0;
    // The LFO's wave, rate and depth only while it moves something.
    if ((id == PARAM_LFO_PARAM || id == PARAM_LFO_SHAPE || id == PARAM_LFO_RATE || id == PARAM_LFO_DEPTH) &&
        p->v[PARAM_LFO_PARAM] <= 0)
        return 0;
    if (r->type == P_CHOICE) {
        char name[32];
        return snprintf(buf, n, "%s %s", r->label, param_choice_name(r, (int)v, name, sizeof name) ? name : "?");
    }
    if (r->scale == SCALE_LOG && r->min <= 0 && v <= 0) return snprintf(buf, n, "%s off", r->label);
    if (param_is_int(id)) return snprintf(buf, n, "%s %d", r->label, (int)v);
    return snprintf(buf, n, "%s %.3g", r->label, (double)v);
}

// The HUD's lines, at most: up to 4 above the parameters (take, virtual
// camera, channel, dream), the parameters up to line HUD_PARAM_END, then 6
// (loss, rates, step, rollbacks, note, source) and the pick-up lines.
enum { HUD_W = 96, HUD_PARAM_END = 8, HUD_GHOSTS = 4, HUD_LINES = HUD_PARAM_END + 6 + HUD_GHOSTS };

// MIDI controls that have not picked up their value yet (soft takeover): a
// ghost line each, "pick up lr: control at 0.02, value 2" (at most max lines).
static int ghost_lines(const RunView *v, char (*l)[HUD_W], int max) {
    MidiGhost g[32];
    int n = midi_ghosts(NULL, g, 32), k = 0;
    for (int i = 0; i < n && k < max; i++) {
        if (g[i].picked || g[i].hw < 0 || g[i].param < 0 || g[i].param >= PARAM_COUNT) continue;
        const Param *r = param_live(g[i].param);
        snprintf(l[k++], HUD_W, "pick up %s: control at %.3g, value %.3g  (%.24s)", r->key,
                 (double)g[i].hw_value, (double)v->p.v[g[i].param], g[i].device);
    }
    return k;
}

void panel_hud(Display *d, const RunView *v, const RecordStatus *rs, const char *out, const char *backend,
               double disp_fps, const char *src, double delay_ms, const char *note) {
    static char l[HUD_LINES][HUD_W];
    const char *ptrs[HUD_LINES];
    int n = 0;
    if (rs && rs->on)  // first, where it is seen
        snprintf(l[n++], HUD_W, "REC %.1f s   %ld frames   dropped %ld encoder, %ld disk", rs->secs, rs->written,
                 rs->dropped_encoder, rs->dropped_disk);
    if (out && out[0]) snprintf(l[n++], HUD_W, "%s", out);  // the virtual camera
    // [channels]: the values and loss of the channel the keys act on.
    int ch = v->channels > 1 && key_ch < v->channels ? key_ch : 0;
    const LiveParams *lp = ch ? &v->chp[ch] : &v->p;
    if (v->channels > 1)
        snprintf(l[n++], HUD_W, "channel %d of %d (W: next)   loss %.5f", ch, v->channels, (double)v->ch_loss[ch]);
    // [dream]: one line while it feeds back (the run's values, whichever channel).
    const float *dv = v->p.v;
    if (hud_dream_line(l[n], HUD_W, dv[PARAM_FEEDBACK], dv[PARAM_ZOOM], dv[PARAM_ROTATE], dv[PARAM_SHIFT_X],
                       dv[PARAM_SHIFT_Y], dv[PARAM_TAU]) > 0)
        n++;
    // The live parameters, three to a line, in the table's order.
    l[n][0] = 0;
    for (int id = 0, on_line = 0; id < PARAM_COUNT && n < HUD_PARAM_END; id++) {
        char item[48];
        if (param_text(lp, id, item, sizeof item) <= 0) continue;
        size_t len = strlen(l[n]);
        snprintf(l[n] + len, HUD_W - len, "%s%s", on_line ? "   " : "", item);
        if (++on_line == 3) {
            n++, on_line = 0;
            l[n][0] = 0;
        }
    }
    if (l[n][0]) n++;
    if (v->psnr == v->psnr) snprintf(l[n++], HUD_W, "loss %.5f   PSNR %.2f dB", (double)v->loss, (double)v->psnr);
    else snprintf(l[n++], HUD_W, "loss %.5f (L1)", (double)v->loss);
    snprintf(l[n++], HUD_W, "train %.1f steps/s   display %.0f fps   delay %.0f ms",
             (double)v->steps_per_s, disp_fps, delay_ms);
    snprintf(l[n++], HUD_W, "step %ld   frame %ld   backend %s", v->step, v->frames, backend);
    if (v->rollbacks > 0) snprintf(l[n++], HUD_W, "watchdog: %ld rollback%s", v->rollbacks, v->rollbacks == 1 ? "" : "s");
    if (note && note[0]) snprintf(l[n++], HUD_W, "%s", note);
    n += ghost_lines(v, l + n, HUD_GHOSTS);
    snprintf(l[n++], HUD_W, "source: %.80s", src);
    for (int i = 0; i < n; i++) ptrs[i] = l[i];
    display_set_hud(d, ptrs, n);
}
