// config.c: the settings table, the INI reader and the command-line parser.
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

typedef enum { T_INT, T_FLOAT, T_STR, T_CHOICE, T_FLAG } Type;

typedef struct {
    const char *section, *key;  // INI name; section NULL = command line only
    const char *flag;           // command-line name without "--" (NULL = INI only)
    Type type;
    size_t off;
    double min, max;      // T_INT, T_FLOAT
    const char *choices;  // T_CHOICE: "a|b|c"
    const char *def;      // default, as text
    const char *help;
} Opt;

#define O(f) offsetof(Settings, f)
static const Opt OPTS[] = {
    // clang-format off
    {"model", "channels", "channels", T_STR, O(channels), 0, 0, NULL, "32,64,128,256",
     "encoder output channels, comma separated (the decoder mirrors them)"},
    {"model", "kernel", NULL, T_INT, O(kernel), 2, 9, NULL, "4", "convolution kernel size"},
    {"model", "stride", NULL, T_INT, O(stride), 1, 4, NULL, "2", "convolution stride"},
    {"model", "pad", NULL, T_INT, O(pad), 0, 4, NULL, "1", "convolution padding"},
    {"model", "slope", NULL, T_FLOAT, O(slope), 0, 0.99, NULL, "0.2", "LeakyReLU negative slope"},

    {"train", "width", "width", T_INT, O(width), 16, 4096, NULL, "256",
     "training width in pixels (multiple of 16 for the default net)"},
    {"train", "height", "height", T_INT, O(height), 16, 4096, NULL, "256",
     "training height in pixels (multiple of 16 for the default net)"},
    {"train", "backend", "backend", T_CHOICE, O(backend), 0, 0, "auto|cpu|cuda", "auto",
     "compute backend: auto picks CUDA when a GPU is usable, else the CPU"},
    {"train", "optimizer", "optimizer", T_CHOICE, O(optimizer), 0, 0, "sgd|adam", "sgd",
     "sgd (with momentum) or adam"},
    {"train", "lr", "lr", T_FLOAT, O(lr), 0, 10, NULL, "2",
     "learning rate (SGD with the default clip learns fastest near 2; Adam wants about 0.001)"},
    {"train", "momentum", "momentum", T_FLOAT, O(momentum), 0, 0.999, NULL, "0.9",
     "SGD momentum"},
    {"train", "clip", "clip", T_FLOAT, O(clip), 0, 1000, NULL, "0.1",
     "clip the global gradient norm to this value (0 = off)"},
    {"train", "weight_decay", "weight-decay", T_FLOAT, O(weight_decay), 0, 1, NULL, "0",
     "L2 weight decay"},
    {"train", "adam_beta1", NULL, T_FLOAT, O(adam_beta1), 0, 0.9999, NULL, "0.9", "Adam beta1"},
    {"train", "adam_beta2", NULL, T_FLOAT, O(adam_beta2), 0, 0.99999, NULL, "0.999", "Adam beta2"},
    {"train", "adam_eps", NULL, T_FLOAT, O(adam_eps), 1e-12, 1, NULL, "1e-8", "Adam epsilon"},
    {"train", "steps_per_frame", "steps-per-frame", T_INT, O(steps_per_frame), 0, 64, NULL, "1",
     "gradient steps per camera frame (0 = frozen)"},
    {"train", "memory", "memory", T_INT, O(memory), 0, 15, NULL, "0",
     "recent frames replayed with the newest in each step (0 = newest only)"},
    {"train", "ring", "ring", T_INT, O(ring), 1, 1024, NULL, "64",
     "length of the ring of recent frames that memory draws from"},
    {"train", "seed", "seed", T_INT, O(seed), 0, 2147483647, NULL, "1",
     "random seed for the initial weights and the replay draws"},
    {"train", "stats_every", NULL, T_INT, O(stats_every), 1, 60, NULL, "8",
     "read the loss back from the GPU every N frames (each read waits for it)"},

    {"source", "source", "source", T_STR, O(source), 0, 0, NULL, "",
     "frames from: camera, camera:/dev/videoN, file:PATH (.y4m, or any video in the app "
     "build), dir:PATH (PNG/JPEG), pattern; empty = a camera if present, else the bundled clip"},
    {"source", "fps", "fps", T_FLOAT, O(fps), 0, 1000, NULL, "0",
     "play files and image folders at this rate (0 = their own rate; image folders 30)"},
    {"source", "camera_width", NULL, T_INT, O(camera_width), 0, 7680, NULL, "0",
     "preferred camera width (0 = the camera's native size)"},
    {"source", "camera_height", NULL, T_INT, O(camera_height), 0, 4320, NULL, "0",
     "preferred camera height (0 = native)"},
    {"source", "camera_fps", NULL, T_INT, O(camera_fps), 0, 240, NULL, "0",
     "preferred camera frame rate (0 = the camera's default)"},
    {"source", "exposure_lock", NULL, T_INT, O(exposure_lock), 0, 1, NULL, "0",
     "1 = after a second of auto exposure, hold it (the network does not chase brightness)"},
    {"source", "white_balance_lock", NULL, T_INT, O(white_balance_lock), 0, 1, NULL, "0",
     "1 = likewise hold the white balance"},

    {"display", "layout", "layout", T_CHOICE, O(layout), 0, 0, "mirror|side|triptych", "side",
     "mirror: reconstruction only; side: camera | reconstruction; triptych: adds the error"},
    {"display", "flip", "flip", T_INT, O(flip), 0, 1, NULL, "1",
     "1 = mirror the picture horizontally"},
    {"display", "fullscreen", "fullscreen", T_INT, O(fullscreen), 0, 1, NULL, "0",
     "1 = start fullscreen"},
    {"display", "monitor", "monitor", T_INT, O(monitor), 0, 16, NULL, "0",
     "monitor index for fullscreen (0 = primary)"},
    {"display", "vsync", NULL, T_INT, O(vsync), 0, 1, NULL, "1", "1 = sync to the monitor"},
    {"display", "hud", "hud", T_INT, O(hud), 0, 1, NULL, "1", "1 = show the heads-up display"},
    {"display", "window_width", NULL, T_INT, O(window_width), 160, 16384, NULL, "1280",
     "window width when not fullscreen"},
    {"display", "window_height", NULL, T_INT, O(window_height), 120, 16384, NULL, "720",
     "window height when not fullscreen"},

    {"files", "load", "load", T_STR, O(load), 0, 0, NULL, "",
     "start from these weights (safetensors) instead of a blank network"},
    {"files", "save", "save", T_STR, O(save), 0, 0, NULL, "",
     "save the weights (and optimizer state) here at exit"},
    {"files", "save_init", "save-init", T_STR, O(save_init), 0, 0, NULL, "",
     "save the weights before the first step"},
    {"files", "metrics", "metrics", T_STR, O(metrics), 0, 0, NULL, "",
     "write one JSON line per frame (loss, PSNR, settings, timing) to this file"},
    {"files", "snapshot_dir", NULL, T_STR, O(snapshot_dir), 0, 0, NULL, "weights",
     "folder for snapshots saved from the keyboard"},

    {NULL, "headless", "headless", T_FLAG, O(headless), 0, 1, NULL, "0",
     "no window: train on the source and exit after --frames"},
    {NULL, "frames", "frames", T_INT, O(frames), 0, 1e12, NULL, "0",
     "stop after N frames (0 = run until quit; headless needs N > 0)"},
    {NULL, "screenshot", "screenshot", T_STR, O(screenshot), 0, 0, NULL, "",
     "write the window's content to this PNG at exit"},
    // clang-format on
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static int parse_value(Settings *s, const Opt *o, const char *v, TbErr *err) {
    char *base = (char *)s + o->off;
    char *end;
    switch (o->type) {
    case T_INT:
    case T_FLAG: {
        errno = 0;
        double d = strtod(v, &end);
        while (*end && isspace((unsigned char)*end)) end++;
        if (end == v || *end || errno || d != floor(d))
            return tb_fail(err, "%s: \"%s\" is not a whole number", o->key, v);
        if (d < o->min || d > o->max)
            return tb_fail(err, "%s = %s is out of range (%g to %g)", o->key, v, o->min, o->max);
        if (o->off == O(frames))
            *(long *)base = (long)d;
        else
            *(int *)base = (int)d;
        return 0;
    }
    case T_FLOAT: {
        errno = 0;
        double d = strtod(v, &end);
        while (*end && isspace((unsigned char)*end)) end++;
        if (end == v || *end || errno || !isfinite(d))
            return tb_fail(err, "%s: \"%s\" is not a number", o->key, v);
        if (d < o->min || d > o->max)
            return tb_fail(err, "%s = %s is out of range (%g to %g)", o->key, v, o->min, o->max);
        *(float *)base = (float)d;
        return 0;
    }
    case T_STR:
        if (strlen(v) >= CFG_STR) return tb_fail(err, "%s: value longer than %d characters", o->key, CFG_STR - 1);
        strcpy(base, v);
        return 0;
    case T_CHOICE: {
        size_t n = strlen(v);
        for (const char *c = o->choices; *c;) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, v, n) == 0) {
                strcpy(base, v);
                return 0;
            }
            c += len + (bar ? 1 : 0);
        }
        return tb_fail(err, "%s: \"%s\" is not one of %s", o->key, v, o->choices);
    }
    }
    return tb_fail(err, "%s: unknown type", o->key);
}

void settings_default(Settings *s) {
    memset(s, 0, sizeof *s);
    TbErr err;
    for (size_t i = 0; i < N_OPTS; i++)
        CHECK(parse_value(s, &OPTS[i], OPTS[i].def, &err) == 0, "default of %s: %s", OPTS[i].key, err.msg);
}

static const Opt *find_ini(const char *section, const char *key) {
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].section && strcmp(OPTS[i].section, section) == 0 && strcmp(OPTS[i].key, key) == 0)
            return &OPTS[i];
    return NULL;
}

static const Opt *find_flag(const char *flag) {
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].flag && strcmp(OPTS[i].flag, flag) == 0) return &OPTS[i];
    // "section.key" reaches every INI setting, flag or not.
    const char *dot = strchr(flag, '.');
    if (dot && dot - flag < 64) {
        char sec[64];
        memcpy(sec, flag, (size_t)(dot - flag));
        sec[dot - flag] = 0;
        return find_ini(sec, dot + 1);
    }
    return NULL;
}

static char *trim(char *p) {
    while (isspace((unsigned char)*p)) p++;
    char *e = p + strlen(p);
    while (e > p && isspace((unsigned char)e[-1])) *--e = 0;
    return p;
}

int settings_load_file(Settings *s, const char *path, TbErr *err) {
    FILE *f = fopen(path, "r");
    if (!f) return tb_fail(err, "%s: %s", path, strerror(errno));
    char line[1024], section[64] = "";
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = tb_fail(err, "%s:%d: line too long", path, lineno);
            break;
        }
        char *p = trim(line);
        if (!*p || *p == '#' || *p == ';') continue;
        if (*p == '[') {
            char *e = strchr(p, ']');
            if (!e || e[1]) {
                rc = tb_fail(err, "%s:%d: bad section header \"%s\"", path, lineno, p);
                break;
            }
            *e = 0;
            snprintf(section, sizeof section, "%s", trim(p + 1));
            int known = 0;
            for (size_t i = 0; i < N_OPTS; i++)
                if (OPTS[i].section && strcmp(OPTS[i].section, section) == 0) known = 1;
            if (!known) {
                rc = tb_fail(err, "%s:%d: unknown section [%s]", path, lineno, section);
                break;
            }
            continue;
        }
        char *eq = strchr(p, '=');
        if (!eq) {
            rc = tb_fail(err, "%s:%d: expected key = value, got \"%s\"", path, lineno, p);
            break;
        }
        *eq = 0;
        char *key = trim(p), *val = trim(eq + 1);
        // Inline comments: " # ..." after the value.
        char *hash = strstr(val, " #");
        if (hash) *hash = 0, val = trim(val);
        if (!section[0]) {
            rc = tb_fail(err, "%s:%d: \"%s\" outside any [section]", path, lineno, key);
            break;
        }
        const Opt *o = find_ini(section, key);
        if (!o) {
            rc = tb_fail(err, "%s:%d: unknown key \"%s\" in [%s]", path, lineno, key, section);
            break;
        }
        // Quotes are optional around strings.
        size_t n = strlen(val);
        if (n >= 2 && val[0] == '"' && val[n - 1] == '"') val[n - 1] = 0, val++;
        TbErr e2;
        if (parse_value(s, o, val, &e2)) {
            rc = tb_fail(err, "%s:%d: %s", path, lineno, e2.msg);
            break;
        }
    }
    if (rc == 0 && ferror(f)) rc = tb_fail(err, "%s: read error", path);
    fclose(f);
    return rc;
}

int settings_set(Settings *s, const char *name, const char *value, TbErr *err) {
    const Opt *o = find_flag(name);
    if (!o) return tb_fail(err, "unknown setting \"%s\"", name);
    return parse_value(s, o, value, err);
}

static int parse_size(Settings *s, const char *v, TbErr *err) {
    int w, h;
    char tail;
    if (sscanf(v, "%dx%d%c", &w, &h, &tail) != 2 || w < 16 || h < 16 || w > 4096 || h > 4096)
        return tb_fail(err, "--size: \"%s\" is not WxH (16 to 4096 each, e.g. 256x256)", v);
    s->width = w;
    s->height = h;
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
        const Opt *o = find_flag(name);
        int is_size = strcmp(name, "size") == 0;
        if (!o && !is_size) return tb_fail(err, "unknown option --%s (see --help)", name);
        if (o && o->type == T_FLAG && !val) {
            *(int *)((char *)s + o->off) = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) return tb_fail(err, "--%s needs a value", name);
            val = argv[++i];
        }
        TbErr e2;
        if (is_size ? parse_size(s, val, &e2) : parse_value(s, o, val, &e2))
            return tb_fail(err, "--%s: %s", name, e2.msg);
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
    for (size_t i = 0; i < N_OPTS; i++) {
        const Opt *o = &OPTS[i];
        if (!o->flag || strcmp(o->flag, "width") == 0 || strcmp(o->flag, "height") == 0) continue;
        char left[64];
        const char *arg = o->type == T_FLAG    ? ""
                          : o->type == T_INT   ? " N"
                          : o->type == T_FLOAT ? " X"
                          : o->type == T_CHOICE ? " NAME"
                                                : " TEXT";
        snprintf(left, sizeof left, "--%s%s", o->flag, arg);
        fprintf(f, "  %-21s %s", left, o->help);
        if (o->type == T_CHOICE) fprintf(f, " (%s; default %s)", o->choices, o->def);
        else if (o->type == T_INT || o->type == T_FLOAT)
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

static void write_value(const Settings *s, const Opt *o, FILE *f) {
    const char *base = (const char *)s + o->off;
    switch (o->type) {
    case T_INT:
    case T_FLAG: fprintf(f, "%d", *(const int *)base); break;
    case T_FLOAT: fprintf(f, "%g", (double)*(const float *)base); break;
    default: fprintf(f, "%s", base); break;
    }
}

void settings_write_ini(const Settings *s, FILE *f) {
    const char *sec = "";
    for (size_t i = 0; i < N_OPTS; i++) {
        const Opt *o = &OPTS[i];
        if (!o->section) continue;
        if (strcmp(sec, o->section) != 0) {
            fprintf(f, "%s[%s]\n", sec[0] ? "\n" : "", o->section);
            sec = o->section;
        }
        fprintf(f, "# %s", o->help);
        if (o->type == T_CHOICE) fprintf(f, " (%s)", o->choices);
        else if (o->type == T_INT || o->type == T_FLOAT) fprintf(f, " (%g to %g)", o->min, o->max);
        fprintf(f, "\n%s = ", o->key);
        write_value(s, o, f);
        fputc('\n', f);
    }
}
