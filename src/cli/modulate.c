// modulate.c: scene files, glides, the LFO and the slot cross-fade (modulate.h).
#define _DEFAULT_SOURCE
#include "modulate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "ini.h"

// ---------------------------------------------------------------- scene files

// The live parameters' keys, for an error message.
static void live_keys(char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int id = 0; id < PARAM_COUNT && o < n; id++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s", id ? ", " : "", param_live(id)->key);
}

static int name_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    return 1;
}

// The file's name without folder and ".ini".
static void stem(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t len = strlen(b);
    if (len > 4 && strcmp(b + len - 4, ".ini") == 0) len -= 4;
    snprintf(out, n, "%.*s", (int)len, b);
}

// One "key = value" of [params]: 0, or -1 with the problem (no file:line) in err.
static int scene_param(Scene *sc, const char *key, const char *val, TbErr *err) {
    int id = param_by_name(key);
    if (id < 0) {
        char keys[1024];
        live_keys(keys, sizeof keys);
        int setting = 0;
        size_t np;
        const Param *P = params_table(&np);
        for (size_t i = 0; i < np; i++) setting |= P[i].section && strcmp(P[i].key, key) == 0;
        return tb_fail(err, "%s \"%s\": a scene sets live parameters only (%s)",
                       setting ? "not a live parameter:" : "unknown parameter", key, keys);
    }
    // The table's own parser: the same types, ranges and messages as the INI file.
    Settings tmp;
    settings_default(&tmp);
    if (param_parse(&tmp, param_live(id), val, err)) return -1;
    sc->set[id] = 1;
    sc->value[id] = (float)live_param_from_settings(&tmp, id);
    return 0;
}

static int scene_meta(Scene *sc, const char *key, const char *val, TbErr *err) {
    if (strcmp(key, "name") == 0) {
        if (strlen(val) >= SCENE_NAME || !name_ok(val))
            return tb_fail(err, "name \"%s\": up to %d letters, digits, '-', '_' or '.'", val,
                           SCENE_NAME - 1);
        snprintf(sc->name, sizeof sc->name, "%s", val);
        return 0;
    }
    if (strcmp(key, "transition") == 0) {
        char *end;
        errno = 0;
        double d = strtod(val, &end);
        if (end == val || *tb_trim(end) || errno || !(d >= 0 && d <= SCENE_MAX_TRANSITION))
            return tb_fail(err, "transition = %s: seconds from 0 to %g", val, SCENE_MAX_TRANSITION);
        sc->transition = (float)d;
        return 0;
    }
    return tb_fail(err, "unknown key \"%s\" in [scene] (name, transition)", key);
}

// The reader's state for one scene file.
typedef struct {
    Scene *sc;
    int first[PARAM_COUNT];  // line each parameter was set on
    int last_line;
} SceneRead;

static int scene_section(void *user, const char *section, TbErr *err) {
    if (strcmp(section, "scene") != 0 && strcmp(section, "params") != 0)
        return tb_fail(err, "unknown section [%s] (a scene has [scene] and [params])", section);
    return 0;
}

static int scene_key(void *user, const char *section, const char *key, const char *val, int line,
                     TbErr *err) {
    SceneRead *r = user;
    r->last_line = line;
    if (!section[0]) return tb_fail(err, "\"%s\" outside [scene] or [params]", key);
    if (strcmp(section, "scene") == 0) return scene_meta(r->sc, key, val, err);
    int id = param_by_name(key);
    if (id >= 0 && r->first[id])
        return tb_fail(err, "%s is set twice (first on line %d)", key, r->first[id]);
    if (scene_param(r->sc, key, val, err)) return -1;
    r->first[id] = line;
    return 0;
}

int scene_load(Scene *sc, const char *path, TbErr *err) {
    memset(sc, 0, sizeof *sc);
    snprintf(sc->path, sizeof sc->path, "%s", path);
    char fname[SCENE_NAME + 8];
    stem(path, fname, sizeof fname);
    if (strlen(fname) < SCENE_NAME && name_ok(fname)) snprintf(sc->name, sizeof sc->name, "%s", fname);
    SceneRead r = {.sc = sc};
    int rc = ini_parse(path, scene_section, scene_key, &r, err);
    int lineno = r.last_line;
    if (rc) return -1;
    int any = 0;
    for (int id = 0; id < PARAM_COUNT; id++) any |= sc->set[id];
    if (!any) return tb_fail(err, "%s:%d: the scene sets no parameter (add them under [params])", path, lineno);
    if (!sc->name[0]) return tb_fail(err, "%s:1: the scene needs a name (name = ... under [scene])", path);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int scenes_load_dir(SceneList *l, const char *dir, int missing_ok, TbErr *err) {
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d) {
        if (missing_ok && errno == ENOENT) return 0;
        return tb_fail(err, "scenes: %s: %s", dir, strerror(errno));
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 4, ".ini") != 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, (size_t)cap * sizeof *names);
            CHECK(nn, "out of memory");
            names = nn;
        }
        names[n] = tb_malloc(len + 1);
        memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    int rc = 0;
    l->v = tb_calloc(n ? (size_t)n : 1, sizeof *l->v);
    for (int i = 0; i < n && !rc; i++) {
        char path[CFG_STR + 64];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (scene_load(&l->v[i], path, err)) {
            rc = -1;
            break;
        }
        int other = scene_find(l, l->v[i].name);
        if (other) rc = tb_fail(err, "%s: scene name \"%s\" is also the name of %s", path, l->v[i].name,
                                l->v[other - 1].path);
        else l->n++;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc) scenes_free(l);
    return rc;
}

void scenes_free(SceneList *l) {
    free(l->v);
    memset(l, 0, sizeof *l);
}

int scene_find(const SceneList *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0) return i + 1;
    return 0;
}

// ---------------------------------------------------------------- LFO arithmetic

double lfo_wave(int shape, double phase) {
    double x = phase - floor(phase);
    if (shape == LFO_TRIANGLE) return x < 0.25 ? 4 * x : x < 0.75 ? 2 - 4 * x : 4 * x - 4;
    return sin(2 * M_PI * x);
}

// Where a log-scaled parameter's log span starts: its min, or when that is 0
// (off) its lowest "on" value.
static double log_low(const Param *r) { return r->min > 0 ? r->min : r->floor; }

float lfo_value(int id, float centre, float depth, double w) {
    const Param *r = param_live(id);
    double lo, hi;
    param_live_range(id, &lo, &hi);
    double v;
    if (r->scale == SCALE_LOG) {
        if (!(centre > 0)) return centre;  // off stays off
        double l0 = log_low(r), span = log(hi / l0);
        double c = centre < l0 ? l0 : centre > hi ? hi : centre;
        double u = log(c / l0) / span + depth * w;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        v = l0 * exp(u * span);
    } else {
        double u = (centre - lo) / (hi - lo) + depth * w;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        v = lo + u * (hi - lo);
    }
    // exp and the sums round: the float stays inside the range.
    float f = (float)v;
    if (f < (float)lo) f = (float)lo;
    if (f > (float)hi) f = (float)hi;
    return f;
}

int lfo_target_param(int k) {
    char name[32];
    if (k <= 0 || !param_choice_name(param_live(PARAM_LFO_PARAM), k, name, sizeof name)) return -1;
    return param_by_name(name);
}

// ---------------------------------------------------------------- the modulator

static void note(Modulator *m, int kind, int param, int source, float value, float to, float secs) {
    if (m->n_notes == MOD_NOTES) return;  // the caller did not empty it: keep the first ones
    m->note[m->n_notes++] = (ModNote){kind, param, source, value, to, secs};
}

void modulate_init(Modulator *m, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->lfo.param = -1;
    tb_rng_seed(&m->lfo.rng, seed ^ 0x1f0a11ull);
}

// The value a glide or a hand sets: the LFO's centre when the LFO has the
// parameter, else the parameter itself.
static float base_value(const Modulator *m, const LiveParams *p, int id) {
    return m->lfo.param == id ? m->lfo.centre : p->v[id];
}

static void set_base(Modulator *m, LiveParams *p, int id, float v) {
    if (m->lfo.param == id) {
        LiveParams tmp = *p;  // clamp and round as the parameter would
        m->lfo.centre = live_params_set(&tmp, id, v);
    } else {
        live_params_set(p, id, v);
    }
}

static int glide_kind(int id) {
    const Param *r = param_live(id);
    double lo, hi;
    param_live_range(id, &lo, &hi);
    if (r->type == P_CHOICE || (param_is_int(id) && hi - lo <= 1)) return GLIDE_SWITCH;
    return r->scale == SCALE_LOG ? GLIDE_LOG : GLIDE_LIN;
}

void modulate_scene(Modulator *m, const LiveParams *p, const Scene *sc, double now) {
    for (int id = 0; id < PARAM_COUNT; id++) {
        if (!sc->set[id]) continue;
        Glide *g = &m->glide[id];
        *g = (Glide){1, glide_kind(id), base_value(m, p, id), sc->value[id], now, sc->transition};
        note(m, MOD_GLIDE_START, id, SRC_SCENE, g->from, g->to, sc->transition);
    }
}

// A glide's value at u (0..1) of its way.
static float glide_at(const Glide *g, int id, double u) {
    if (u >= 1) return g->to;
    if (g->kind == GLIDE_SWITCH) return g->from;
    if (g->kind == GLIDE_LIN) return (float)(g->from + (g->to - g->from) * u);
    // Geometric; an end that is off glides from or to the lowest "on" value.
    double l0 = log_low(param_live(id));
    double a = g->from > l0 ? g->from : l0, b = g->to > l0 ? g->to : l0;
    return (float)(a * pow(b / a, u));
}

void modulate_hold(Modulator *m, LiveParams *p, int id) {
    if (id >= 0 && id < PARAM_COUNT && m->lfo.param == id) p->v[id] = m->lfo.centre;
}

void modulate_touch(Modulator *m, const LiveParams *p, int id) {
    if (id < 0 || id >= PARAM_COUNT) return;
    if (m->glide[id].on) {
        m->glide[id].on = 0;
        note(m, MOD_GLIDE_STOP, id, SRC_SCENE, p->v[id], 0, 0);
    }
    if (m->lfo.param == id) m->lfo.centre = p->v[id];
}

void modulate_fade(Modulator *m, int slot, double seconds, double now, int source) {
    m->fade = (Fade){1, slot, source, now, seconds > 0 ? seconds : 0, 0};
}

void modulate_fade_stop(Modulator *m) {
    if (m->fade.on) note(m, MOD_FADE_STOP, m->fade.slot, m->fade.source, (float)m->fade.done, 0, 0);
    m->fade.on = 0;
}

static void step_glides(Modulator *m, LiveParams *p, double now) {
    for (int id = 0; id < PARAM_COUNT; id++) {
        Glide *g = &m->glide[id];
        if (!g->on) continue;
        double u = g->dur > 0 ? (now - g->t0) / g->dur : 1;
        u = u < 0 ? 0 : u;
        // A switch waits for the end; the others move every frame.
        if (g->kind != GLIDE_SWITCH || u >= 1) set_base(m, p, id, glide_at(g, id, u));
        if (u >= 1) {
            g->on = 0;
            note(m, MOD_GLIDE_END, id, SRC_SCENE, base_value(m, p, id), 0, 0);
        }
    }
}

// Follow lfo_param: give the old parameter back its centre, take the new one.
static void lfo_follow(Modulator *m, LiveParams *p) {
    Lfo *l = &m->lfo;
    int want = lfo_target_param((int)p->v[PARAM_LFO_PARAM]);
    if (want == l->param) return;
    if (l->param >= 0) {
        live_params_set(p, l->param, l->centre);
        note(m, MOD_LFO_DETACH, l->param, SRC_LFO, p->v[l->param], 0, 0);
    }
    l->param = want;
    l->phase = 0;
    l->walk = 0;
    if (want >= 0) {
        l->centre = p->v[want];
        note(m, MOD_LFO_ATTACH, want, SRC_LFO, l->centre, 0, 0);
    }
}

// A random walk of rate r: steps of N(0, r*dt) (over one 1/r its spread is
// about the whole swing), folded back at -1 and 1.
static double walk(Lfo *l, double rate, double dt) {
    double x = l->walk + sqrt(rate * dt) * tb_rng_normal(&l->rng);
    x = fmod(x + 1, 4);  // fold into -1..1: period 4, mirrored
    if (x < 0) x += 4;
    if (x > 2) x = 4 - x;
    return l->walk = x - 1;
}

static void step_lfo(Modulator *m, LiveParams *p, double dt) {
    lfo_follow(m, p);
    Lfo *l = &m->lfo;
    if (l->param < 0) return;
    double rate = p->v[PARAM_LFO_RATE];
    int shape = (int)p->v[PARAM_LFO_SHAPE];
    l->phase += rate * dt;
    l->phase -= floor(l->phase);
    double w = shape == LFO_RANDOM ? walk(l, rate, dt) : lfo_wave(shape, l->phase);
    live_params_set(p, l->param, lfo_value(l->param, l->centre, p->v[PARAM_LFO_DEPTH], w));
}

// The next blend of the fade: the share of what is left that this step covers,
// so without training in between the weights are exactly (1-u) of the start
// and u of the slot after share u of the time (and the slot itself at the end).
static ModBlend step_fade(Modulator *m, double now) {
    Fade *f = &m->fade;
    ModBlend b = {f->slot, 0};
    if (!f->on) return b;
    double u = f->dur > 0 ? (now - f->t0) / f->dur : 1;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    if (u > f->done) {
        b.alpha = (float)((u - f->done) / (1 - f->done));
        if (u >= 1) b.alpha = 1;
        f->done = u;
    }
    if (u >= 1) {
        f->on = 0;
        note(m, MOD_FADE_END, f->slot, f->source, 1, 0, 0);
    }
    return b;
}

ModBlend modulate_step(Modulator *m, LiveParams *p, double now) {
    double dt = m->started && now > m->last ? now - m->last : 0;
    m->last = now;
    m->started = 1;
    step_glides(m, p, now);
    step_lfo(m, p, dt);
    return step_fade(m, now);
}
