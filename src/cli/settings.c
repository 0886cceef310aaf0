// settings.c: defaults, the INI reader, the command-line parser, --help and the
// written default.ini, all driven by the parameter table (params.c).
#include "settings.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "ini.h"
#include "params.h"
#include "parse.h"

// The settings' parser: the rows come from the one parameter table (params.c).
static const Param *rows(size_t *n) { return params_table(n); }

void settings_default(Settings *s) {
    memset(s, 0, sizeof *s);
    TbErr err;
    size_t n;
    const Param *P = rows(&n);
    CHECK(n <= SETTINGS_MAX_PARAMS, "%zu parameters: raise SETTINGS_MAX_PARAMS", n);
    for (size_t i = 0; i < n; i++)
        CHECK(param_parse(s, &P[i], P[i].def, &err) == 0, "default of %s: %s", P[i].key, err.msg);
    for (int ch = 0; ch < TB_CHANNELS; ch++) s->chan[ch].device = -1;
}

// "ch1".."ch3" (a [chN] section, or the "chN" of --chN.key): N, else 0.
static int channel_section(const char *name, size_t len) {
    if (len != 3 || strncmp(name, "ch", 2) != 0) return 0;
    int n = name[2] - '0';
    return n >= 1 && n < TB_CHANNELS ? n : 0;
}

int settings_channel_set(Settings *s, int ch, const char *key, const char *value, TbErr *err) {
    CHECK(ch >= 1 && ch < TB_CHANNELS, "channel %d", ch);
    ChannelSpec *c = &s->chan[ch];
    if (strcmp(key, "kind") == 0) {
        if (strcmp(value, "net") && strcmp(value, "history"))
            return tb_fail(err, "[ch%d] kind: \"%s\" is not one of net|history", ch, value);
        snprintf(c->kind, sizeof c->kind, "%s", value);
        return 0;
    }
    if (strcmp(key, "device") == 0) {  // its count is known only where the backend is made
        char *end;
        long d = strtol(value, &end, 10);
        if (end == value || *end || d < -1 || d > 63)
            return tb_fail(err, "[ch%d] device = \"%s\": a CUDA device index from 0, or -1 (channel 0's)", ch,
                           value);
        c->device = (int)d;
        return 0;
    }
    int is_min = strcmp(key, "minutes") == 0, is_ref = strcmp(key, "refresh_s") == 0;
    if (is_min || is_ref) {
        char *end;
        double d = strtod(value, &end);
        double lo = is_min ? 0 : 0.01, hi = is_min ? 10080 : 86400;
        if (end == value || *end || !(d >= lo && d <= hi))
            return tb_fail(err, "[ch%d] %s = \"%s\": a number from %g to %g", ch, key, value, lo, hi);
        *(is_min ? &c->minutes : &c->refresh_s) = (float)d;
        return 0;
    }
    // Any [train] key but the size (every channel sees the same frames),
    // checked with the table's own row on a scratch copy.
    const Param *o = param_find_ini("train", key);
    if (!o || strcmp(key, "width") == 0 || strcmp(key, "height") == 0)
        return tb_fail(err, "[ch%d]: \"%s\" is not kind, minutes, refresh_s, device or a [train] key (but width, height)",
                       ch, key);
    if (strlen(value) >= sizeof c->val[0]) return tb_fail(err, "[ch%d] %s: value too long", ch, key);
    Settings *tmp = tb_malloc(sizeof *tmp);
    *tmp = *s;
    TbErr e2;
    int rc = param_parse(tmp, o, value, &e2);
    free(tmp);
    if (rc) return tb_fail(err, "[ch%d] %s", ch, e2.msg);
    int i = 0;
    while (i < c->n && strcmp(c->key[i], key) != 0) i++;  // a repeated key: the last wins
    if (i == CH_KEYS) return tb_fail(err, "[ch%d]: more than %d keys", ch, CH_KEYS);
    snprintf(c->key[i], sizeof c->key[i], "%s", key);
    snprintf(c->val[i], sizeof c->val[i], "%s", value);
    if (i == c->n) c->n++;
    return 0;
}

static int on_section(void *user, const char *section, TbErr *err) {
    if (channel_section(section, strlen(section))) return 0;
    size_t np;
    const Param *P = rows(&np);
    for (size_t i = 0; i < np; i++)
        if (P[i].section && strcmp(P[i].section, section) == 0) return 0;
    return tb_fail(err, "unknown section [%s]", section);
}

// Remember where o's value came from: "--flag", or "FILE:LINE" (the file's
// name without its folders when the whole path does not fit).
static void mark(Settings *s, const Param *o, const char *what, int line) {
    size_t n, cap = sizeof s->set_at[0];
    char *at = s->set_at[o - rows(&n)];
    if (line <= 0) {
        snprintf(at, cap, "--%.60s", what);
    } else if ((size_t)snprintf(at, cap, "%s:%d", what, line) >= cap) {
        const char *base = strrchr(what, '/');
        snprintf(at, cap, "%s:%d", base ? base + 1 : what, line);
    }
}

typedef struct {
    Settings *s;
    const char *path;
} FileCtx;

static int on_key(void *user, const char *section, const char *key, const char *val, int line,
                  TbErr *err) {
    FileCtx *f = user;
    if (!section[0]) return tb_fail(err, "\"%s\" outside any [section]", key);
    int ch = channel_section(section, strlen(section));
    if (ch) return settings_channel_set(f->s, ch, key, val, err);
    const Param *o = param_find_ini(section, key);
    if (!o) return tb_fail(err, "unknown key \"%s\" in [%s]", key, section);
    if (param_parse(f->s, o, val, err)) return -1;
    mark(f->s, o, f->path, line);
    return 0;
}

int settings_load_file(Settings *s, const char *path, TbErr *err) {
    FileCtx f = {s, path};
    return ini_parse(path, on_section, on_key, &f, err);
}

// --chN.key VALUE: a channel's override ([chN] key); -1 if name is no such flag.
static int channel_flag(Settings *s, const char *name, const char *value, TbErr *err) {
    const char *dot = strchr(name, '.');
    int ch = dot ? channel_section(name, (size_t)(dot - name)) : 0;
    if (!ch) return -1;
    return settings_channel_set(s, ch, dot + 1, value, err) ? -2 : 0;
}

int settings_set(Settings *s, const char *name, const char *value, TbErr *err) {
    int rc = channel_flag(s, name, value, err);
    if (rc != -1) return rc ? -1 : 0;
    const Param *o = param_find_flag(name);
    if (!o) return tb_fail(err, "unknown setting \"%s\"", name);
    if (param_parse(s, o, value, err)) return -1;
    mark(s, o, name, 0);
    return 0;
}

const char *settings_set_at(const Settings *s, const char *section, const char *key) {
    size_t n;
    const Param *o = param_find_ini(section, key);
    return o ? s->set_at[o - rows(&n)] : "";
}

// --size WxH sets [train] width and height, within their rows' range.
static int parse_size(Settings *s, const char *v, TbErr *err) {
    const Param *pw = param_find_ini("train", "width");
    int lo = (int)pw->min, hi = (int)pw->max;
    if (tb_parse_size(v, lo, hi, &s->width, &s->height) < 0)
        return tb_fail(err, "--size: \"%s\" is not WxH (%d to %d each, e.g. 256x256)", v, lo, hi);
    mark(s, pw, "size", 0);
    mark(s, param_find_ini("train", "height"), "size", 0);
    return 0;
}

int settings_parse_args(Settings *s, int argc, char **argv, TbErr *err) {
    // --config first so that flags override the file whatever their order.
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            settings_print_help(stdout);
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) return tb_fail(err, "--config needs a file");
            if (settings_load_file(s, argv[i + 1], err)) return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) return tb_fail(err, "unexpected argument \"%s\" (see --help)", a);
        const char *name = a + 2;
        char buf[128];
        const char *val = NULL;
        const char *eq = strchr(name, '=');
        if (eq && eq - name < (long)sizeof buf) {  // --key=value
            memcpy(buf, name, (size_t)(eq - name));
            buf[eq - name] = 0;
            name = buf;
            val = eq + 1;
        }
        if (strcmp(name, "config") == 0) {
            if (!val) i++;
            continue;
        }
        const Param *o = param_find_flag(name);
        int is_size = strcmp(name, "size") == 0;
        if (!o && !is_size && strchr(name, '.') && channel_section(name, (size_t)(strchr(name, '.') - name))) {
            if (!val && i + 1 >= argc) return tb_fail(err, "--%s needs a value", name);
            TbErr e2;
            if (settings_channel_set(s, channel_section(name, 3), strchr(name, '.') + 1, val ? val : argv[++i], &e2))
                return tb_fail(err, "--%s: %s", name, e2.msg);
            continue;
        }
        if (!o && !is_size) return tb_fail(err, "unknown option --%s (see --help)", name);
        if (o && o->type == P_FLAG && !val) {
            *(int *)((char *)s + o->off) = 1;
            mark(s, o, name, 0);
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) return tb_fail(err, "--%s needs a value", name);
            val = argv[++i];
        }
        TbErr e2;
        if (is_size ? parse_size(s, val, &e2) : param_parse(s, o, val, &e2))
            return tb_fail(err, "--%s: %s", name, e2.msg);
        if (o) mark(s, o, name, 0);
    }
    return 0;
}

void settings_print_help(FILE *f) {
    fprintf(f,
            "usage: tabula [options]\n"
            "A convolutional autoencoder that starts blank and learns to see, live: every frame\n"
            "it reconstructs what the camera sees, compares, and takes a gradient step.\n\n"
            "  --config FILE         read settings from an INI file first (see config/default.ini)\n"
            "  --size WxH            training size (both multiples of 16), e.g. 256x256, 448x256\n");
    size_t np;
    const Param *P = rows(&np);
    for (size_t i = 0; i < np; i++) {
        const Param *o = &P[i];
        if (!o->flag || strcmp(o->flag, "width") == 0 || strcmp(o->flag, "height") == 0) continue;
        char left[64];
        const char *arg = o->type == P_FLAG                         ? ""
                          : o->type == P_INT || o->type == P_LONG ? " N"
                          : o->type == P_FLOAT                    ? " X"
                          : o->type == P_CHOICE                   ? " NAME"
                                                                  : " TEXT";
        snprintf(left, sizeof left, "--%s%s", o->flag, arg);
        fprintf(f, "  %-21s %s", left, o->help);
        if (o->type == P_CHOICE) fprintf(f, " (%s; default %s)", o->choices, o->def);
        else if (o->type == P_INT || o->type == P_LONG || o->type == P_FLOAT)
            fprintf(f, " (default %s, %g to %g)", o->def, o->min, o->max);
        else if (o->def[0])
            fprintf(f, " (default %s)", o->def);
        fputc('\n', f);
    }
    fprintf(f,
            "  --help                this text\n\n"
            "Any INI setting can also be given as --section.key VALUE (e.g. --train.adam_beta1 0.8).\n"
            "Exit codes: 0 success, 2 bad usage or bad input (with a message), 1 internal failure.\n");
}

static void write_value(const Settings *s, const Param *o, FILE *f) {
    const char *base = (const char *)s + o->off;
    switch (o->type) {
    case P_INT:
    case P_FLAG: fprintf(f, "%d", *(const int *)base); break;
    case P_LONG: fprintf(f, "%ld", *(const long *)base); break;
    case P_FLOAT: fprintf(f, "%g", (double)*(const float *)base); break;
    default: fprintf(f, "%s", base); break;
    }
}

void settings_write_ini(const Settings *s, FILE *f) {
    const char *sec = "";
    size_t np;
    const Param *P = rows(&np);
    for (size_t i = 0; i < np; i++) {
        const Param *o = &P[i];
        if (!o->section) continue;
        if (strcmp(sec, o->section) != 0) {
            fprintf(f, "%s[%s]\n", sec[0] ? "\n" : "", o->section);
            sec = o->section;
        }
        fprintf(f, "# %s", o->help);
        if (o->type == P_CHOICE) fprintf(f, " (%s)", o->choices);
        else if (o->type == P_INT || o->type == P_FLOAT) fprintf(f, " (%g to %g)", o->min, o->max);
        fprintf(f, "\n%s = ", o->key);
        write_value(s, o, f);
        fputc('\n', f);
    }
    // The channels' overrides, where there are any (none in default.ini).
    for (int ch = 1; ch < TB_CHANNELS; ch++) {
        const ChannelSpec *c = &s->chan[ch];
        if (!c->n && !c->kind[0] && !c->minutes && !c->refresh_s && c->device < 0) continue;
        fprintf(f, "\n[ch%d]\n", ch);
        if (c->kind[0]) fprintf(f, "kind = %s\n", c->kind);
        if (c->minutes) fprintf(f, "minutes = %g\n", (double)c->minutes);
        if (c->refresh_s) fprintf(f, "refresh_s = %g\n", (double)c->refresh_s);
        if (c->device >= 0) fprintf(f, "device = %d\n", c->device);
        for (int i = 0; i < c->n; i++) fprintf(f, "%s = %s\n", c->key[i], c->val[i]);
    }
}
