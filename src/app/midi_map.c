// midi_map.c: mapping files (read, pick by device name, learn and write back
// atomically), value conversion and soft takeover. See midi_map.h.
#define _GNU_SOURCE
#include "midi_map.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controls.h"
#include "ini.h"

static const char *const KIND_NAMES[MK_COUNT] = {"cc", "cc14", "nrpn", "rel2c", "relbin", "relsign", "note", "button"};
static const char *const TAKEOVER_NAMES[3] = {"jump", "pickup", "scale"};

const char *midi_kind_name(MidiKind k) { return k >= 0 && k < MK_COUNT ? KIND_NAMES[k] : "?"; }
const char *midi_takeover_name(MidiTakeover t) { return t >= 0 && t <= TO_SCALE ? TAKEOVER_NAMES[t] : "?"; }

static int parse_takeover(const char *s) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, TAKEOVER_NAMES[i]) == 0) return i;
    return -1;
}

const char *midi_target_name(const MidiBinding *b) {
    size_t n;
    switch (b->tkind) {
    case MT_PARAM: return param_live(b->target)->key;
    case MT_ACTION: return actions_table(&n)[b->target].name;
    case MT_LEARN: return "learn";
    case MT_LEARN_PREV: return "learn_prev";
    case MT_LEARN_OFF: return "learn_off";
    }
    return "?";
}

int midi_target_parse(const char *text, MidiBinding *b) {
    int id = param_by_name(text);
    if (id >= 0) {
        b->tkind = MT_PARAM, b->target = id;
        return 0;
    }
    size_t n;
    const ActionInfo *a = actions_table(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].name, text) == 0) {
            b->tkind = MT_ACTION, b->target = (int)i;
            return 0;
        }
    static const struct {
        const char *name;
        MidiTargetKind k;
    } LEARN[] = {{"learn", MT_LEARN}, {"learn_prev", MT_LEARN_PREV}, {"learn_off", MT_LEARN_OFF}};
    for (size_t i = 0; i < sizeof LEARN / sizeof LEARN[0]; i++)
        if (strcmp(LEARN[i].name, text) == 0) {
            b->tkind = LEARN[i].k, b->target = -1;
            return 0;
        }
    return -1;
}

int midi_maxv(MidiKind k) { return k == MK_CC14 || k == MK_NRPN ? 16383 : 127; }

int midi_same_control(const MidiBinding *a, const MidiBinding *b) {
    int cha = a->channel, chb = b->channel;
    if (cha >= 0 && chb >= 0 && cha != chb) return 0;
    if (a->kind == MK_NOTE || b->kind == MK_NOTE) return a->kind == b->kind && a->number == b->number;
    if (a->kind == MK_NRPN || b->kind == MK_NRPN) return a->kind == b->kind && a->number == b->number;
    // CC family: a 14-bit pair takes n and n+32.
    int a0 = a->number, a1 = a->kind == MK_CC14 ? a->number + 32 : a->number;
    int b0 = b->number, b1 = b->kind == MK_CC14 ? b->number + 32 : b->number;
    return a0 == b0 || a0 == b1 || a1 == b0 || a1 == b1;
}

// ---------------------------------------------------------------- values

static void binding_range(const MidiBinding *b, double *lo, double *hi) {
    param_live_range(b->target, lo, hi);
    if (b->lo == b->lo) *lo = b->lo;  // not NaN: the row's own part of the range
    if (b->hi == b->hi) *hi = b->hi;
}

// The log scale's low end: lo if above 0, else the row's floor or zero_up.
static double log_low(const Param *r, double lo, double hi) {
    if (lo > 0) return lo;
    if (r->floor > 0) return r->floor;
    if (r->zero_up > 0) return r->zero_up;
    return hi * 1e-6;
}

static float round_clamp(const MidiBinding *b, double v) {
    LiveParams p = {{0}};
    return live_params_set(&p, b->target, (float)v);
}

float midi_value_at(const MidiBinding *b, double pos) {
    if (b->tkind != MT_PARAM) return 0;
    const Param *r = param_live(b->target);
    double lo, hi;
    binding_range(b, &lo, &hi);
    if (pos < 0) pos = 0;
    if (pos > 1) pos = 1;
    double v;
    if (r->scale == SCALE_LOG && hi > 0) {
        double L = log_low(r, lo, hi), maxv = midi_maxv(b->kind), t;
        if (lo > 0) {
            t = pos;
        } else {
            // raw 0 = off (lo), raw 1..maxv = L..hi.
            double raw = pos * maxv;
            if (raw < 0.5) return round_clamp(b, lo);
            t = (raw - 1) / (maxv - 1);
            if (t < 0) t = 0;
        }
        v = L * pow(hi / L, t);
    } else {
        v = lo + pos * (hi - lo);
    }
    return round_clamp(b, v);
}

double midi_pos_of(const MidiBinding *b, float value) {
    if (b->tkind != MT_PARAM) return 0;
    const Param *r = param_live(b->target);
    double lo, hi, v = value, pos;
    binding_range(b, &lo, &hi);
    if (r->scale == SCALE_LOG && hi > 0) {
        double L = log_low(r, lo, hi), maxv = midi_maxv(b->kind);
        if (lo <= 0 && v <= lo) return 0;
        double t = v <= L ? 0 : log(v / L) / log(hi / L);
        if (t > 1) t = 1;
        pos = lo > 0 ? t : (1 + t * (maxv - 1)) / maxv;
    } else {
        pos = hi > lo ? (v - lo) / (hi - lo) : 0;
    }
    return pos < 0 ? 0 : pos > 1 ? 1 : pos;
}

int midi_rel_ticks(MidiKind k, int v) {
    switch (k) {
    case MK_REL2C: return v == 0 ? 0 : v <= 64 ? v : v - 128;
    case MK_RELBIN: return v - 64;
    case MK_RELSIGN: return v > 64 ? v - 64 : v < 64 ? -v : 0;
    default: return 0;
    }
}

int midi_is_toggle(const MidiBinding *b, int *param) {
    int id = -1;
    if (b->tkind == MT_ACTION) {
        size_t n;
        const ActionInfo *a = &actions_table(&n)[b->target];
        if (a->cmd == CMD_TOGGLE) id = a->param;
    } else if (b->tkind == MT_PARAM) {
        double lo, hi;
        param_live_range(b->target, &lo, &hi);
        if (param_is_int(b->target) && lo == 0 && hi == 1) id = b->target;
    }
    if (param) *param = id;
    return id >= 0;
}

// ---------------------------------------------------------------- takeover

void takeover_reset(Takeover *t) {
    t->picked = 0;
    t->fresh = 1;
}

int takeover_move(Takeover *t, MidiTakeover mode, double pos, double target, double now, double *out) {
    double prev = t->hw, prev_t = t->t;
    int fresh = t->fresh || prev < 0;
    t->hw = pos;
    t->t = now;
    t->fresh = 0;
    *out = pos;
    if (mode == TO_JUMP || t->picked) return t->picked = 1;
    if (fabs(pos - target) <= TAKEOVER_TOL) return t->picked = 1;
    if (fresh) return 0;  // the first value only says where the control is
    if (mode == TO_PICKUP) {
        // A fast move may jump across the value between two messages.
        if (now - prev_t <= TAKEOVER_WINDOW && (prev - target) * (pos - target) <= 0) return t->picked = 1;
        return 0;
    }
    // Scaling: the value moves the way the control does, by as much of the
    // way to that end as the control has moved of its own, so both arrive
    // at the end together.
    double v = target;
    if (pos > prev && prev < 1) v = target + (pos - prev) * (1 - target) / (1 - prev);
    else if (pos < prev && prev > 0) v = target - (prev - pos) * target / prev;
    else return 0;
    if (v < 0) v = 0;
    if (v > 1) v = 1;
    if (fabs(pos - v) <= TAKEOVER_TOL || (prev - target) * (pos - v) <= 0) {
        t->picked = 1;
        v = pos;
    }
    *out = v;
    return 1;
}

// ---------------------------------------------------------------- files

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_num(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

// One [map] row: "target = kind channel number [options]". 0, or -1 with the
// problem (without file and line) in err.
static int parse_row(const char *key, char *val, MidiTakeover def_takeover, MidiBinding *b, TbErr *err) {
    memset(b, 0, sizeof *b);
    b->lo = b->hi = NAN;
    b->step = 1;
    b->dir = 1;
    b->takeover = def_takeover;
    if (midi_target_parse(key, b)) {
        size_t n;
        const ActionInfo *a = actions_table(&n);
        char acts[320] = "";  // every action's name (about 250 characters)
        for (size_t i = 0; i < n; i++) snprintf(acts + strlen(acts), sizeof acts - strlen(acts), "%s%s", i ? ", " : "", a[i].name);
        return tb_fail(err, "unknown target \"%s\" (a live parameter such as lr, momentum, clip; an action: %s; or learn, learn_prev, learn_off)", key, acts);
    }
    char *tok[16];
    int nt = 0;
    char *save = NULL;
    for (char *t = strtok_r(val, " \t", &save); t && nt < 16; t = strtok_r(NULL, " \t", &save)) tok[nt++] = t;
    if (nt < 3)
        return tb_fail(err, "%s: expected \"kind channel number [options]\", e.g. \"cc 1 7\"", key);
    int kind = -1;
    for (int k = 0; k < MK_COUNT; k++)
        if (strcmp(tok[0], KIND_NAMES[k]) == 0) kind = k;
    if (kind < 0)
        return tb_fail(err, "%s: unknown kind \"%s\" (cc, cc14, nrpn, rel2c, relbin, relsign, note, button)", key, tok[0]);
    b->kind = (MidiKind)kind;
    long v;
    if (strcmp(tok[1], "*") == 0) b->channel = -1;
    else if (parse_int(tok[1], 1, 16, &v) == 0) b->channel = (int)v - 1;
    else return tb_fail(err, "%s: channel \"%s\" is not 1 to 16 or *", key, tok[1]);
    long maxn = kind == MK_CC14 ? 31 : kind == MK_NRPN ? 16383 : 127;
    if (parse_int(tok[2], 0, maxn, &v))
        return tb_fail(err, "%s: %s number \"%s\" is not 0 to %ld", key, KIND_NAMES[kind], tok[2], maxn);
    b->number = (int)v;
    for (int i = 3; i < nt; i++) {
        char *o = tok[i], *eq = strchr(o, '=');
        const char *ov = eq ? eq + 1 : "";
        if (eq) *eq = 0;
        double d;
        if (strcmp(o, "takeover") == 0) {
            int t = parse_takeover(ov);
            if (t < 0) return tb_fail(err, "%s: takeover \"%s\" is not jump, pickup or scale", key, ov);
            b->takeover = (MidiTakeover)t;
        } else if (strcmp(o, "step") == 0) {
            if (parse_int(ov, 1, 16, &v)) return tb_fail(err, "%s: step \"%s\" is not 1 to 16", key, ov);
            b->step = (int)v;
        } else if (strcmp(o, "dir") == 0) {
            if (strcmp(ov, "up") && strcmp(ov, "down")) return tb_fail(err, "%s: dir \"%s\" is not up or down", key, ov);
            b->dir = strcmp(ov, "up") == 0 ? 1 : -1;
        } else if (strcmp(o, "invert") == 0 && !eq) {
            b->invert = 1;
        } else if (strcmp(o, "ch") == 0 && (b->tkind == MT_PARAM || b->tkind == MT_ACTION)) {
            if (parse_int(ov, 0, TB_CHANNELS - 1, &v)) return tb_fail(err, "%s: ch \"%s\" is not 0 to %d", key, ov, TB_CHANNELS - 1);
            b->ch = (int)v;
        } else if (strcmp(o, "n") == 0 && b->tkind == MT_ACTION) {
            if (parse_int(ov, 1, 999, &v)) return tb_fail(err, "%s: n \"%s\" is not 1 to 999", key, ov);
            b->n = (int)v;
        } else if ((strcmp(o, "min") == 0 || strcmp(o, "max") == 0) && b->tkind == MT_PARAM) {
            double lo, hi;
            param_live_range(b->target, &lo, &hi);
            if (parse_num(ov, &d) || d < lo || d > hi)
                return tb_fail(err, "%s: %s \"%s\" is not a number from %g to %g", key, o, ov, lo, hi);
            if (o[1] == 'i') b->lo = d;
            else b->hi = d;
        } else {
            return tb_fail(err, "%s: unknown option \"%s%s%s\" (takeover=, step=, min=, max=, dir=, invert, n=, ch=)", key, o,
                           eq ? "=" : "", ov);
        }
    }
    if (b->tkind == MT_PARAM) {
        double lo, hi;
        binding_range(b, &lo, &hi);
        if (!(lo < hi)) return tb_fail(err, "%s: min %g is not below max %g", key, lo, hi);
    } else if (kind != MK_BUTTON && kind != MK_NOTE && kind != MK_CC) {
        return tb_fail(err, "%s: an action takes a button, a note or a cc, not %s", key, KIND_NAMES[kind]);
    }
    return 0;
}

// The reader's state: rows are read in a second pass, after the whole [device]
// section, so that its takeover is every row's default wherever it stands.
typedef struct {
    MidiMap *m;
    int pass;
} MapRead;

static int map_section(void *user, const char *section, TbErr *err) {
    if (strcmp(section, "device") && strcmp(section, "map"))
        return tb_fail(err, "unknown section [%s] (a mapping file has [device] and [map])", section);
    return 0;
}

static int device_key(MidiMap *m, const char *key, const char *val, TbErr *err) {
    long v;
    if (strcmp(key, "match") == 0) {
        snprintf(m->match, sizeof m->match, "%s", val);
    } else if (strcmp(key, "name") == 0) {
        // for the reader
    } else if (strcmp(key, "leds") == 0) {
        if (parse_int(val, 0, 1, &v)) return tb_fail(err, "leds \"%s\" is not 0 or 1", val);
        m->leds = (int)v;
    } else if (strcmp(key, "takeover") == 0) {
        int t = parse_takeover(val);
        if (t < 0) return tb_fail(err, "takeover \"%s\" is not jump, pickup or scale", val);
        m->takeover = (MidiTakeover)t;
    } else {
        return tb_fail(err, "unknown key \"%s\" in [device] (match, name, leds, takeover)", key);
    }
    return 0;
}

static int map_row(MidiMap *m, const char *key, const char *val, int line, TbErr *err) {
    if (m->n == MIDI_MAX_BINDINGS) return tb_fail(err, "more than %d rows", MIDI_MAX_BINDINGS);
    MidiBinding *b = &m->b[m->n];
    char row[1024];  // parse_row cuts its text into words
    snprintf(row, sizeof row, "%s", val);
    if (parse_row(key, row, m->takeover, b, err)) return -1;
    b->line = line;
    for (int i = 0; i < m->n; i++)
        if (midi_same_control(&m->b[i], b))
            return tb_fail(err, "%s: this control is already bound on line %d", key, m->b[i].line);
    m->n++;
    return 0;
}

static int map_key(void *user, const char *section, const char *key, const char *val, int line,
                   TbErr *err) {
    MapRead *r = user;
    if (!section[0]) return tb_fail(err, "\"%s\" outside [device] or [map]", key);
    if (strcmp(section, "device") == 0) return r->pass == 0 ? device_key(r->m, key, val, err) : 0;
    return r->pass == 1 ? map_row(r->m, key, val, line, err) : 0;
}

int midi_map_load(const char *path, MidiMap *m, TbErr *err) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    m->takeover = TO_PICKUP;
    MapRead r = {.m = m};
    for (r.pass = 0; r.pass < 2; r.pass++)
        if (ini_parse(path, map_section, map_key, &r, err)) return -1;
    return 0;
}

void midi_binding_format(const MidiBinding *b, char *buf, size_t n) {
    char ch[16];
    if (b->channel < 0) snprintf(ch, sizeof ch, "*");
    else snprintf(ch, sizeof ch, "%d", b->channel + 1);
    int k = snprintf(buf, n, "%s = %s %s %d", midi_target_name(b), midi_kind_name(b->kind), ch, b->number);
    if (k < 0 || (size_t)k >= n) return;
    size_t len = (size_t)k;
#define ADD(...) (len < n ? len += (size_t)snprintf(buf + len, n - len, __VA_ARGS__) : 0)
    if (b->tkind == MT_PARAM && b->kind <= MK_NRPN) ADD(" takeover=%s", midi_takeover_name(b->takeover));
    if (b->step != 1) ADD(" step=%d", b->step);
    if (b->dir < 0) ADD(" dir=down");
    if (b->invert) ADD(" invert");
    if (b->n) ADD(" n=%d", b->n);
    if (b->ch) ADD(" ch=%d", b->ch);
    if (b->lo == b->lo) ADD(" min=%g", b->lo);
    if (b->hi == b->hi) ADD(" max=%g", b->hi);
#undef ADD
}

// ---------------------------------------------------------------- the set

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int midi_maps_load(MidiMapSet *set, const char *dir, TbErr *err) {
    memset(set, 0, sizeof *set);
    snprintf(set->dir, sizeof set->dir, "%s", dir);
    DIR *d = opendir(dir);
    if (!d) return tb_fail(err, "midi maps %s: %s", dir, strerror(errno));
    char *names[MIDI_MAX_MAPS];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < MIDI_MAX_MAPS)
        if (de->d_name[0] != '.' && has_suffix(de->d_name, ".ini")) names[nn++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);  // the same order on every machine
    int rc = 0;
    for (int i = 0; i < nn; i++) {
        if (rc == 0) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            MidiMap *m = tb_malloc(sizeof *m);
            if (midi_map_load(path, m, err)) {
                free(m);
                rc = -1;
            } else {
                set->m[set->n++] = m;
            }
        }
        free(names[i]);
    }
    if (rc) midi_maps_free(set);
    return rc;
}

void midi_maps_free(MidiMapSet *set) {
    for (int i = 0; i < set->n; i++) free(set->m[i]);
    set->n = 0;
}

int midi_map_names(const MidiMap *m, const char *device) {
    return m->match[0] && strcmp(m->match, "*") != 0 && strcasestr(device, m->match) != NULL;
}

MidiMap *midi_maps_pick(MidiMapSet *set, const char *device) {
    MidiMap *best = NULL, *any = NULL;
    for (int i = 0; i < set->n; i++) {
        MidiMap *m = set->m[i];
        if (midi_map_names(m, device)) {
            if (!best || strlen(m->match) > strlen(best->match)) best = m;
        } else if (!m->match[0] || strcmp(m->match, "*") == 0) {
            if (!any || has_suffix(m->path, "/generic.ini")) any = m;
        }
    }
    if (best) return best;
    if (any) return any;
    // Nothing at all: an empty fallback, so that learn can start a file.
    if (set->n == MIDI_MAX_MAPS) return NULL;
    MidiMap *m = tb_calloc(1, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s/generic.ini", set->dir);
    m->takeover = TO_PICKUP;
    set->m[set->n++] = m;
    return m;
}

// The whole of a file (NULL if it cannot be read; "" if it does not exist
// and missing_ok).
static char *read_all(const char *path, int missing_ok) {
    FILE *f = fopen(path, "r");
    if (!f) return missing_ok && errno == ENOENT ? strdup("") : NULL;
    size_t cap = 4096, n = 0;
    char *s = tb_malloc(cap);
    size_t got;
    while ((got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            s = realloc(s, cap *= 2);
            CHECK(s, "out of memory");
        }
    }
    s[n] = 0;
    fclose(f);
    return s;
}

static int write_atomic(const char *path, const char *text, TbErr *err) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return tb_fail(err, "%s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) bad = 1, e = errno;
    if (bad || rename(tmp, path) != 0) {
        if (!bad) e = errno;
        unlink(tmp);
        return tb_fail(err, "%s: %s", path, strerror(e));
    }
    return 0;
}

// A file name from a client name: letters, digits, '-' and '_' kept.
static void file_name_of(const char *client, char *out, size_t n) {
    size_t k = 0;
    for (const char *c = client; *c && k + 1 < n; c++)
        out[k++] = isalnum((unsigned char)*c) || *c == '-' || *c == '_' ? *c : '_';
    out[k] = 0;
    if (!k) snprintf(out, n, "device");
}

// The text of a new device file made from a fallback's text: its [device]
// section names the device (one is added in front if it has none).
static char *text_for_device(const char *tmpl, const char *from, const char *client) {
    int has_device = 0;
    for (const char *p = strstr(tmpl, "[device]"); p; p = strstr(p + 1, "[device]")) has_device++;
    size_t cap = strlen(tmpl) + (size_t)(has_device + 1) * (strlen(client) + 16) + strlen(from) + 1024;
    char *out = tb_malloc(cap);
    size_t n = (size_t)snprintf(out, cap, "# %s: made by MIDI learn from %s\n%s", client, from,
                                has_device ? "" : "[device]\n");
    if (!has_device) n += (size_t)snprintf(out + n, cap - n, "match = %s\n", client);
    int in_device = 0;
    for (const char *p = tmpl; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        char *t = tb_trim(line);
        int skip = 0;
        if (t[0] == '[') in_device = strncmp(t, "[device]", 8) == 0;
        else if (in_device && strncmp(t, "match", 5) == 0 && strchr(t, '=')) skip = 1;
        if (!skip) {
            memcpy(out + n, p, len);
            n += len;
            if (!e) out[n++] = '\n';
            if (t[0] == '[' && in_device) n += (size_t)snprintf(out + n, cap - n, "match = %s\n", client);
        }
        p += len;
    }
    out[n] = 0;
    return out;
}

MidiMap *midi_maps_learn(MidiMapSet *set, MidiMap *m, const char *device, const char *client,
                         const MidiBinding *b, TbErr *err) {
    int fallback = !midi_map_names(m, device);
    // The file as it is now (hand edits during the show count).
    MidiMap *disk = tb_malloc(sizeof *disk);
    struct stat st;
    int exists = stat(m->path, &st) == 0;
    if (exists && midi_map_load(m->path, disk, err)) {
        free(disk);
        return NULL;
    }
    if (!exists) memset(disk, 0, sizeof *disk);
    char *text = read_all(m->path, 1);
    if (!text) {
        tb_fail(err, "%s: %s", m->path, strerror(errno));
        free(disk);
        return NULL;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s", m->path);
    if (fallback) {
        char name[200];
        file_name_of(client, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s.ini", set->dir, name);
        for (int k = 2; k < 100 && stat(path, &st) == 0; k++) snprintf(path, sizeof path, "%s/%s-%d.ini", set->dir, name, k);
        char *t2 = text_for_device(text, m->path, client);
        free(text);
        text = t2;
        // Line numbers of disk's rows shifted: remove by matching below.
    }
    // Drop the rows of the same control, then append the new row.
    size_t cap = strlen(text) + 512;
    char *out = tb_malloc(cap);
    size_t n = 0;
    int lineno = 0, last_section_is_map = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p + 1) : strlen(p);
        lineno++;
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        char *hash = strpbrk(line, "#;");
        if (hash) *hash = 0;
        char *t = tb_trim(line);
        int drop = 0;
        if (t[0] == '[') {
            last_section_is_map = strncmp(t, "[map]", 5) == 0;
        } else if (last_section_is_map && strchr(t, '=')) {
            // A row: does it bind the same control?
            char *eq = strchr(t, '=');
            *eq = 0;
            MidiBinding old;
            TbErr e3;
            if (parse_row(tb_trim(t), tb_trim(eq + 1), TO_PICKUP, &old, &e3) == 0 && midi_same_control(&old, b)) drop = 1;
        }
        if (!drop) {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (n && out[n - 1] != '\n') out[n++] = '\n';
    char row[256];
    midi_binding_format(b, row, sizeof row);
    n += (size_t)snprintf(out + n, cap - n, "%s%s  # learned\n", last_section_is_map ? "" : "\n[map]\n", row);
    free(text);
    free(disk);
    MidiMap *back = tb_malloc(sizeof *back);
    if (write_atomic(path, out, err) || midi_map_load(path, back, err)) {
        free(out);
        free(back);
        return NULL;
    }
    free(out);
    if (!fallback) {
        // In place of m in the set: the caller moves its users over and frees m.
        for (int i = 0; i < set->n; i++)
            if (set->m[i] == m) set->m[i] = back;
        return back;
    }
    if (set->n == MIDI_MAX_MAPS) {
        free(back);
        tb_fail(err, "%s: more than %d mapping files", set->dir, MIDI_MAX_MAPS);
        return NULL;
    }
    set->m[set->n++] = back;
    return back;
}
