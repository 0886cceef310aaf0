// midi_dev.c: one controller's messages through its mapping. See midi_dev.h.
#include "midi_dev.h"

#include <math.h>
#include <string.h>

// ---------------------------------------------------------------- learn

int midi_learn_count(void) {
    size_t n;
    actions_table(&n);
    return PARAM_COUNT + (int)n;
}

const char *midi_learn_name(int t) {
    size_t n;
    const ActionInfo *a = actions_table(&n);
    if (t < 0 || t >= midi_learn_count()) return "off";
    return t < PARAM_COUNT ? param_live(t)->key : a[t - PARAM_COUNT].name;
}

void midi_learn_arm(MidiLearn *l, int t) {
    memset(l, 0, sizeof *l);
    l->target = t >= 0 && t < midi_learn_count() ? t : -1;
}

static void learn_found(MidiLearn *l, MidiKind kind, int channel, int number) {
    MidiBinding *b = &l->found;
    memset(b, 0, sizeof *b);
    b->tkind = l->target < PARAM_COUNT ? MT_PARAM : MT_ACTION;
    b->target = l->target < PARAM_COUNT ? l->target : l->target - PARAM_COUNT;
    b->kind = kind;
    b->channel = channel;
    b->number = number;
    b->takeover = TO_PICKUP;
    b->step = 1;
    b->dir = 1;
    b->lo = b->hi = NAN;
    l->pending = 0;
    l->done = 1;
}

// A press binds an action or a toggle; anything else binds what moves.
static int learn_wants_button(const MidiLearn *l) {
    MidiBinding b = {.tkind = l->target < PARAM_COUNT ? MT_PARAM : MT_ACTION,
                     .target = l->target < PARAM_COUNT ? l->target : l->target - PARAM_COUNT};
    return b.tkind == MT_ACTION || midi_is_toggle(&b, NULL);
}

// ---------------------------------------------------------------- state

static void state_fresh(MidiBindState *s) {
    memset(s, 0, sizeof *s);
    s->to.hw = -1;
    takeover_reset(&s->to);
    s->msb = -1;
    s->led = -1;
}

void midi_dev_init(MidiDev *d, MidiMap *m, const LiveParams *start, ControlQueue *q, MidiSendFn send,
                   void *send_ctx) {
    memset(d, 0, sizeof *d);
    d->map = m;
    for (int i = 0; i < MIDI_MAX_BINDINGS; i++) state_fresh(&d->st[i]);
    for (int c = 0; c < 16; c++) d->nrpn[c].sel_msb = d->nrpn[c].sel_lsb = d->nrpn[c].data_msb = -1;
    d->known = *start;
    d->seen = *start;
    d->q = q;
    d->send = send;
    d->send_ctx = send_ctx;
}

static int same_row(const MidiBinding *a, const MidiBinding *b) {
    return a->tkind == b->tkind && a->target == b->target && a->kind == b->kind && a->channel == b->channel &&
           a->number == b->number;
}

void midi_dev_set_map(MidiDev *d, MidiMap *m) {
    // m may be d->map itself, rewritten in place: copy the old rows first.
    MidiBinding *old = tb_malloc(MIDI_MAX_BINDINGS * sizeof *old);
    MidiBindState *ost = tb_malloc(sizeof d->st);
    int n = d->map ? d->map->n : 0;
    if (n) memcpy(old, d->map->b, (size_t)n * sizeof old[0]);
    memcpy(ost, d->st, sizeof d->st);
    d->map = m;
    for (int i = 0; i < m->n; i++) {
        state_fresh(&d->st[i]);
        for (int j = 0; j < n; j++)
            if (same_row(&m->b[i], &old[j])) d->st[i] = ost[j];
    }
    free(old);
    free(ost);
}

// ---------------------------------------------------------------- output

static void remember(MidiDev *d, int id, float v) {
    int k = d->nsent[id];
    if (k == MIDI_SENT_RING) {
        memmove(d->sent[id], d->sent[id] + 1, (MIDI_SENT_RING - 1) * sizeof(float));
        k--;
    }
    d->sent[id][k] = v;
    d->nsent[id] = k + 1;
}

static void push(MidiDev *d, int cmd, int param, float value) {
    control_push(d->q, (ControlEvent){.cmd = cmd, .param = param, .value = value, .source = SRC_MIDI, .ch = d->ch});
}

static void send_set(MidiDev *d, int id, float v) {
    if (d->ch) {  // another channel's value: what this device knows is channel 0's
        push(d, CMD_SET, id, v);
        return;
    }
    float before = d->known.v[id];
    float stored = live_params_set(&d->known, id, v);
    if (stored == before) return;  // the same value again (a fader's jitter in one step)
    remember(d, id, stored);
    push(d, CMD_SET, id, stored);
}

static void send_nudge(MidiDev *d, int id, int ticks) {
    int dir = ticks > 0 ? 1 : -1, n = ticks > 0 ? ticks : -ticks;
    if (n > 64) n = 64;
    for (int k = 0; k < n && d->ch; k++) push(d, CMD_NUDGE, id, (float)dir);
    for (int k = 0; k < n && !d->ch; k++) {
        remember(d, id, live_params_set(&d->known, id, live_params_nudge(&d->known, id, dir)));
        push(d, CMD_NUDGE, id, (float)dir);
    }
}

static void send_toggle(MidiDev *d, int id) {
    if (d->ch) {
        push(d, CMD_TOGGLE, id, 0);
        return;
    }
    remember(d, id, live_params_set(&d->known, id, d->known.v[id] > 0 ? 0 : 1));
    push(d, CMD_TOGGLE, id, 0);
}

// ---------------------------------------------------------------- input

static int chan_ok(const MidiBinding *b, int ch) { return b->channel < 0 || b->channel == ch; }

// An absolute control of binding i at raw position.
static void absolute(MidiDev *d, int i, double raw, double now) {
    MidiBinding *b = &d->map->b[i];
    if (b->tkind != MT_PARAM) return;
    int id = b->target;
    double pos = raw / midi_maxv(b->kind), out;
    if (d->ch) {  // another channel: its value at once (no takeover)
        send_set(d, id, midi_value_at(b, pos));
        return;
    }
    double target = midi_pos_of(b, d->known.v[id]);
    if (takeover_move(&d->st[i].to, b->takeover, pos, target, now, &out)) send_set(d, id, midi_value_at(b, out));
}

static MidiDevResult press(MidiDev *d, int i) {
    MidiBinding *b = &d->map->b[i];
    size_t n;
    switch (b->tkind) {
    case MT_LEARN: return MD_LEARN_NEXT;
    case MT_LEARN_PREV: return MD_LEARN_PREV;
    case MT_LEARN_OFF: return MD_LEARN_OFF;
    case MT_ACTION: {
        const ActionInfo *a = &actions_table(&n)[b->target];
        if (a->cmd == CMD_TOGGLE) send_toggle(d, a->param);
        else push(d, a->cmd, -1, a->cmd == CMD_RESET ? -1.0f : (float)b->n);  // n: the slot or scene
        break;
    }
    case MT_PARAM: {
        int id;
        if (midi_is_toggle(b, &id)) send_toggle(d, id);
        else send_nudge(d, b->target, b->dir * b->step);
        break;
    }
    }
    return MD_NONE;
}

// A control bound to a learn target is never itself learned.
static int is_learn_control(const MidiDev *d, const MidiMsg *m) {
    for (int i = 0; i < d->map->n; i++) {
        const MidiBinding *b = &d->map->b[i];
        if (b->tkind == MT_PARAM || b->tkind == MT_ACTION || !chan_ok(b, m->channel)) continue;
        if ((b->kind == MK_NOTE) == (m->type != MM_CC) && b->number == m->number) return 1;
    }
    return 0;
}

// Learn: 1 if the message was taken (found or pending).
static int learn_take(MidiDev *d, const MidiMsg *m, double now, MidiLearn *l) {
    if (l->target < 0 || l->done || is_learn_control(d, m)) return 0;
    int ch = m->channel, cc = m->number;
    if (l->pending) {
        if (m->type == MM_CC && ch == l->found.channel && cc == l->found.number + 32) {
            learn_found(l, MK_CC14, ch, l->found.number);
            return 1;
        }
        learn_found(l, MK_CC, l->found.channel, l->found.number);
        return 0;  // this message is someone else's: handled as usual
    }
    if (m->type == MM_NOTEON && m->value > 0) {
        learn_found(l, MK_NOTE, ch, m->number);
        return 1;
    }
    if (m->type != MM_CC) return 0;
    if (cc == 99 || cc == 98 || cc == 101 || cc == 100 || cc == 38) return 0;  // NRPN select / LSB: tracked below
    if (cc == 6 && d->nrpn[ch].rpn == 0 && d->nrpn[ch].sel_msb >= 0) {
        learn_found(l, MK_NRPN, ch, d->nrpn[ch].sel_msb << 7 | (d->nrpn[ch].sel_lsb < 0 ? 0 : d->nrpn[ch].sel_lsb));
        return 1;
    }
    if (learn_wants_button(l)) {
        if (m->value > 0) learn_found(l, MK_BUTTON, ch, cc);
        return 1;  // a release is not a press
    }
    if (cc < 32) {
        // Maybe the MSB of a 14-bit pair: wait for its LSB (CC n+32).
        learn_found(l, MK_CC, ch, cc);
        l->done = 0;
        l->pending = 1;
        l->pending_t = now;
        return 1;
    }
    learn_found(l, MK_CC, ch, cc);
    return 1;
}

MidiDevResult midi_dev_tick(MidiDev *d, double now, MidiLearn *l) {
    (void)d;
    if (l->pending && now - l->pending_t >= MIDI_LEARN_CC14_WAIT) {
        learn_found(l, MK_CC, l->found.channel, l->found.number);
        return MD_LEARNED;
    }
    return MD_NONE;
}

// NRPN bookkeeping on CC 99/98/101/100/6/38 of channel ch. Returns the 14-bit
// data value to apply to the selected NRPN (or -1), in *num its number.
static int nrpn_track(MidiDev *d, int ch, int cc, int v, int *num) {
    MidiNrpnState *s = &d->nrpn[ch];
    switch (cc) {
    case 99: s->sel_msb = v, s->rpn = 0, s->data_msb = -1; return -1;
    case 98: s->sel_lsb = v, s->rpn = 0, s->data_msb = -1; return -1;
    case 101:
    case 100: s->rpn = 1; return -1;  // an RPN: not ours
    case 6:
        if (s->rpn || s->sel_msb < 0) return -1;
        s->data_msb = v;
        *num = s->sel_msb << 7 | (s->sel_lsb < 0 ? 0 : s->sel_lsb);
        return v << 7;  // the MSB at once; the LSB refines
    case 38:
        if (s->rpn || s->sel_msb < 0 || s->data_msb < 0) return -1;
        *num = s->sel_msb << 7 | (s->sel_lsb < 0 ? 0 : s->sel_lsb);
        return s->data_msb << 7 | v;
    }
    return -1;
}

MidiDevResult midi_dev_input(MidiDev *d, const MidiMsg *m, double now, MidiLearn *l) {
    MidiDevResult res = MD_NONE;
    int ch = m->channel & 15;
    int num = -1, val = -1;
    if (m->type == MM_CC) val = nrpn_track(d, ch, m->number & 127, m->value & 127, &num);
    if (l && l->target >= 0 && !l->done) {
        int was_pending = l->pending;
        if (learn_take(d, m, now, l)) return l->done ? MD_LEARNED : MD_NONE;
        if (was_pending && l->done) res = MD_LEARNED;  // settled as cc; this message is handled as usual
    }
    if (val >= 0)
        for (int i = 0; i < d->map->n; i++) {
            MidiBinding *b = &d->map->b[i];
            if (b->kind == MK_NRPN && b->number == num && chan_ok(b, ch)) d->ch = b->ch, absolute(d, i, val, now);
        }
    d->ch = 0;
    int on = m->type == MM_NOTEON && m->value > 0;
    for (int i = 0; i < d->map->n; i++) {
        MidiBinding *b = &d->map->b[i];
        MidiBindState *s = &d->st[i];
        if (!chan_ok(b, ch)) continue;
        d->ch = b->ch;
        if (m->type != MM_CC) {
            if (b->kind == MK_NOTE && b->number == m->number && on) {
                MidiDevResult r = press(d, i);
                if (r) res = r;
            }
            continue;
        }
        int v = m->value & 127;
        switch (b->kind) {
        case MK_CC:
            if (b->number != m->number) break;
            if (b->tkind == MT_PARAM) absolute(d, i, v, now);
            else if (v > 0) {
                MidiDevResult r = press(d, i);
                if (r) res = r;
            }
            break;
        case MK_CC14:
            if (m->number == b->number) {
                s->msb = v;
                absolute(d, i, v << 7, now);
            } else if (m->number == b->number + 32 && s->msb >= 0) {
                absolute(d, i, s->msb << 7 | v, now);
            }
            break;
        case MK_REL2C:
        case MK_RELBIN:
        case MK_RELSIGN:
            if (b->number == m->number && b->tkind == MT_PARAM) {
                int t = midi_rel_ticks(b->kind, v);
                if (t) send_nudge(d, b->target, t * b->step);
            }
            break;
        case MK_BUTTON:
            if (b->number == m->number && v > 0) {
                MidiDevResult r = press(d, i);
                if (r) res = r;
            }
            break;
        default: break;
        }
    }
    d->ch = 0;
    midi_dev_leds(d);
    return res;
}

// ---------------------------------------------------------------- view, LEDs

void midi_dev_sync(MidiDev *d, const RunView *v) {
    if (v->frames == 0 && v->step == 0) return;  // nothing published yet
    for (int id = 0; id < PARAM_COUNT; id++) {
        float now = v->p.v[id];
        if (d->have_view && now == d->seen.v[id]) continue;
        d->seen.v[id] = now;
        // The first view may be older than what we sent since: wait for ours.
        if (!d->have_view && d->nsent[id] > 0) continue;
        // Our own change coming back: forget it and what we sent before it.
        int k = d->nsent[id] - 1;
        while (k >= 0 && d->sent[id][k] != now) k--;
        if (k >= 0) {
            memmove(d->sent[id], d->sent[id] + k + 1, (size_t)(d->nsent[id] - k - 1) * sizeof(float));
            d->nsent[id] -= k + 1;
            continue;
        }
        if (now == d->known.v[id]) continue;
        // Changed from elsewhere: the controls of it must pick it up again.
        d->known.v[id] = now;
        d->nsent[id] = 0;
        for (int i = 0; i < d->map->n; i++) {
            const MidiBinding *b = &d->map->b[i];
            if (b->tkind == MT_PARAM && b->target == id && b->kind <= MK_NRPN) takeover_reset(&d->st[i].to);
        }
    }
    d->have_view = 1;
    midi_dev_leds(d);
}

void midi_dev_leds(MidiDev *d) {
    if (!d->map->leds || !d->send) return;
    for (int i = 0; i < d->map->n; i++) {
        const MidiBinding *b = &d->map->b[i];
        int id;
        if ((b->kind != MK_BUTTON && b->kind != MK_NOTE && b->kind != MK_CC) || !midi_is_toggle(b, &id)) continue;
        int on = (d->known.v[id] > 0) != (b->invert != 0);
        if (on == d->st[i].led) continue;
        d->st[i].led = on;
        MidiMsg m = {.type = b->kind == MK_NOTE ? MM_NOTEON : MM_CC,
                     .channel = b->channel < 0 ? 0 : b->channel,
                     .number = b->number,
                     .value = on ? 127 : 0};
        d->send(d->send_ctx, &m);
    }
}

int midi_dev_ghost(const MidiDev *d, int i, int *param, int *picked, double *hw, float *hw_value) {
    if (i < 0 || i >= d->map->n) return 0;
    const MidiBinding *b = &d->map->b[i];
    if (b->tkind != MT_PARAM || b->kind > MK_NRPN) return 0;
    *param = b->target;
    *picked = d->st[i].to.picked;
    *hw = d->st[i].to.hw;
    *hw_value = *hw >= 0 ? midi_value_at(b, *hw) : NAN;
    return 1;
}
