// replay_take.c: a take folder read back for replay (see replay_take.h). The
// files are the recorder's own (record_meta.c, run.c's event lines, metrics.c's
// lines), so a scan for each known key is all the parsing they need.
#define _DEFAULT_SOURCE
#include "replay_take.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "params.h"

// The whole of a small file (take.json), NUL-terminated; NULL with err.
static char *slurp(const char *path, TbErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tb_fail(err, "%s: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = tb_malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        if ((n += got) < cap - 1) continue;
        buf = realloc(buf, cap *= 2);
        CHECK(buf, "out of memory");
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

// The text right after "key": (and any spaces) in s, or NULL.
static const char *after(const char *s, const char *key) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = s ? strstr(s, pat) : NULL;
    if (!p) return NULL;
    for (p += strlen(pat); *p == ' '; p++) {}
    return p;
}

// A quoted value ("..." after the key) into out; 0, or -1 if absent.
static int str_after(const char *s, const char *key, char *out, size_t n) {
    const char *p = after(s, key);
    if (!p || *p != '"') return -1;
    const char *e = strchr(++p, '"');
    if (!e) return -1;
    snprintf(out, n, "%.*s", (int)(e - p), p);
    return 0;
}

static int long_after(const char *s, const char *key, long *out) {
    const char *p = after(s, key);
    char *end;
    if (!p) return -1;
    *out = strtol(p, &end, 10);
    return end == p ? -1 : 0;
}

// take.json: the start, the video, the counts. 0, or -1 with err.
static int read_json(ReplayTake *t, const char *path, TbErr *err) {
    char *js = slurp(path, err);
    if (!js) return -1;
    int rc = 0;
    char fps[32] = "", state[32] = "", hex[24];
    const char *start = strstr(js, "\"start\":"), *live = after(start, "live"), *video = after(js, "video"),
               *input = after(js, "input");
    int num = 0, den = 0;
    long w = 0, h = 0;
    if (!strstr(js, "\"format\": \"tabula-take\"") || !start || !live || !video || !input ||
        long_after(start, "frame", &t->start_frame) || long_after(start, "step", &t->start_step) ||
        str_after(video, "fps", fps, sizeof fps) || sscanf(fps, "%d/%d", &num, &den) != 2 || num <= 0 ||
        den <= 0 || str_after(video, "layout", t->layout, sizeof t->layout) || long_after(input, "width", &w) ||
        long_after(input, "height", &h) || w <= 0 || h <= 0 || str_after(js, "state", state, sizeof state)) {
        rc = tb_fail(err, "%s: not a take's take.json (a member is missing or malformed)", path);
        goto out;
    }
    t->tw = (int)w, t->th = (int)h;
    t->fps = (AVRational){num, den};
    t->done = strcmp(state, "done") == 0;
    long_after(js, "input_written", &t->input_written);
    long_after(js, "input_dropped", &t->input_dropped);
    long seed;
    if (long_after(start, "seed", &seed) == 0 && str_after(start, "rng", hex, sizeof hex) == 0) {
        t->seed = (uint64_t)strtoull(after(start, "seed"), NULL, 10);
        t->rng = strtoull(hex, NULL, 16);
        t->have_rng = str_after(start, "mod_rng", hex, sizeof hex) == 0;
        t->mod_rng = strtoull(hex, NULL, 16);
    }
    const char *end = strchr(live, '}');
    for (int id = 0; id < PARAM_COUNT; id++) {
        const char *p = after(live, param_live(id)->key);
        if (p && p < end) t->live[id] = strtof(p, NULL), t->have_live[id] = 1;
    }
out:
    free(js);
    return rc;
}

// The action names of the event log that are moves to make again, as commands.
static const struct {
    const char *name;
    int cmd;
} ACTIONS[] = {{"reset", CMD_RESET},           {"load", CMD_LOAD},           {"slot_save", CMD_SLOT_SAVE},
               {"slot_recall", CMD_SLOT_RECALL}, {"slot_fade", CMD_SLOT_FADE}, {"slot_read", CMD_SLOT_READ},
               {"scene", CMD_SCENE},             {"code_store", CMD_CODE_STORE}, {"journey", CMD_JOURNEY}};

// One event line into e: 1, or 0 when it is no move to make again: what the
// modulator did by itself (glide, LFO and fade notes), the empty-room
// detector's changes (it runs again), the record action, and the actions that
// only write files (save, slot_write: a replay does not overwrite a show's files).
static int parse_event(const char *line, ReplayEvent *e) {
    char name[64], what[64];
    long frame, step;
    const char *v = after(line, "value");
    if (long_after(line, "frame", &frame) || long_after(line, "step", &step) || !v) return 0;
    if (after(line, "glide") || after(line, "lfo") || after(line, "fade")) return 0;
    memset(e, 0, sizeof *e);
    e->frame = frame, e->step = step;
    e->ev.source = SRC_REPLAY;
    e->ev.value = strtof(v, NULL);
    long ch;
    if (long_after(line, "ch", &ch) == 0) e->ev.ch = (int)ch;  // [channels]: the channel it played
    if (str_after(line, "param", name, sizeof name) == 0) {
        e->ev.cmd = CMD_SET;
        e->ev.param = param_by_name(name);
        return e->ev.param >= 0;
    }
    if (str_after(line, "action", what, sizeof what)) return 0;
    if (strcmp(what, "rebirth") == 0) return e->kind = REPLAY_REBIRTH, 1;
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
        if (strcmp(what, ACTIONS[i].name) == 0) return e->ev.cmd = ACTIONS[i].cmd, 1;
    return 0;
}

// Lines of a text file, each handed to fn; 0, or -1 with err (unreadable).
static int each_line(const char *path, void (*fn)(ReplayTake *, const char *), ReplayTake *t, TbErr *err) {
    FILE *f = fopen(path, "r");
    if (!f) return tb_fail(err, "%s: %s", path, strerror(errno));
    char line[2048];
    while (fgets(line, sizeof line, f)) fn(t, line);
    int bad = ferror(f);
    fclose(f);
    return bad ? tb_fail(err, "%s: cannot read it", path) : 0;
}

static void on_event(ReplayTake *t, const char *line) {
    ReplayEvent e;
    if (!parse_event(line, &e)) {
        t->skipped++;
        return;
    }
    if (t->n_ev % 64 == 0) {
        t->ev = realloc(t->ev, (size_t)(t->n_ev + 64) * sizeof *t->ev);
        CHECK(t->ev, "out of memory");
    }
    t->ev[t->n_ev++] = e;
}

static void on_metric(ReplayTake *t, const char *line) {
    long frame;
    const char *p = after(line, "loss");
    if (long_after(line, "frame", &frame) || !p) return;
    if (t->n_m % 256 == 0) {
        t->m_frame = realloc(t->m_frame, (size_t)(t->n_m + 256) * sizeof *t->m_frame);
        t->m_loss = realloc(t->m_loss, (size_t)(t->n_m + 256) * sizeof *t->m_loss);
        CHECK(t->m_frame && t->m_loss, "out of memory");
    }
    t->m_frame[t->n_m] = frame;
    snprintf(t->m_loss[t->n_m], sizeof t->m_loss[0], "%.*s", (int)strcspn(p, ",}"), p);
    t->n_m++;
}

int replay_take_read(ReplayTake *t, const char *dir, TbErr *err) {
    static const char *const need[] = {"take.json", "input.mkv", "events.jsonl", "config.ini", "weights.safetensors"};
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    char path[CFG_STR + 64];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return tb_fail(err, "--replay %s: no such take folder", dir);
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, need[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return tb_fail(err, "--replay %s: not a complete take: %s is missing", dir, need[i]);
    }
    snprintf(path, sizeof path, "%s/take.json", dir);
    if (read_json(t, path, err)) return -1;
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    if (each_line(path, on_event, t, err)) return replay_take_free(t), -1;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    t->have_metrics = stat(path, &st) == 0;  // takes made before it was added have none
    if (t->have_metrics && each_line(path, on_metric, t, err)) return replay_take_free(t), -1;
    return 0;
}

const char *replay_take_loss(const ReplayTake *t, long frame) {
    int lo = 0, hi = t->n_m - 1;  // frames are written in order
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->m_frame[mid] == frame) return t->m_loss[mid];
        if (t->m_frame[mid] < frame) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

void replay_take_free(ReplayTake *t) {
    free(t->ev);
    free(t->m_frame);
    free(t->m_loss);
    t->ev = NULL, t->m_frame = NULL, t->m_loss = NULL;
    t->n_ev = t->n_m = 0;
}
