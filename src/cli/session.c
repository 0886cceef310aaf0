// session.c: start-up shared by the headless driver and the app.
#define _DEFAULT_SOURCE
#include "session.h"

#include <glob.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autosave.h"
#include "checkpoint.h"
#include "params.h"
#include "parse.h"

// Where the bundled clip is: beside an installed binary (PREFIX/bin/tabula ->
// PREFIX/share/tabula, found from the binary's own path, so it holds for any
// --prefix or DESTDIR given at install time), else the source tree's assets/
// (a binary in a build folder), else the data folder configured at build time.
#ifndef TABULA_ASSET_DIR
#define TABULA_ASSET_DIR "assets"
#endif
#ifndef TABULA_DATA_FROM_BIN
#define TABULA_DATA_FROM_BIN "../share/tabula"
#endif
#ifndef TABULA_DATA_DIR
#define TABULA_DATA_DIR "/usr/local/share/tabula"
#endif

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// The first folder holding NAME: "DIR/NAME" in buf, or 0 if none does.
static int find_asset(const char *name, char *buf, size_t n) {
    char exe[PATH_MAX] = "", rel[PATH_MAX + 32], beside[PATH_MAX] = "";
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(rel, sizeof rel, "%s/" TABULA_DATA_FROM_BIN, exe);
        if (!realpath(rel, beside)) beside[0] = 0;  // no such folder
    }
    const char *dirs[] = {beside, TABULA_ASSET_DIR, TABULA_DATA_DIR};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i][0]) continue;
        snprintf(buf, n, "%s/%s", dirs[i], name);
        if (exists(buf)) return 1;
    }
    return 0;
}

void session_default_clip(char *buf, size_t n) {
    const char *names[] = {"default_clip.mp4", "default_clip.webm"};
    char path[PATH_MAX + 64], spec[PATH_MAX + 80];
    for (int i = 0; i < 2; i++)
        if (find_asset(names[i], path, sizeof path)) {
            snprintf(spec, sizeof spec, "file:%s", path);
            if (source_can_open(spec)) {
                snprintf(buf, n, "%s", spec);
                return;
            }
        }
    snprintf(buf, n, "pattern");
}

void session_default_source(char *buf, size_t n) {
    if (source_can_open("camera")) {
        glob_t g;
        int cams = glob("/dev/video*", 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
        if (cams) globfree(&g);
        if (cams) {
            snprintf(buf, n, "camera");
            return;
        }
    }
    session_default_clip(buf, n);
}

SourceOpts session_source_opts(const Settings *s) {
    return (SourceOpts){.width = s->camera_width,
                        .height = s->camera_height,
                        .fps = s->camera_fps,
                        .lock_exposure = s->exposure_lock,
                        .lock_white_balance = s->white_balance_lock};
}

int session_trainer_config(const Settings *s, const ModelSpec *arch, TrainerConfig *c, TbErr *err) {
    memset(c, 0, sizeof *c);
    ModelSpec m = model_spec_default(s->width, s->height);
    if (arch) {
        m = *arch;
    } else {
        m.kernel = s->kernel;
        m.stride = s->stride;
        m.pad = s->pad;
        m.slope = s->slope;
        const char *end;
        m.n_enc = tb_parse_int_list(s->channels, m.channels, TB_MAX_LAYERS / 2, 1, 4096, &end);
        if (m.n_enc < 0 || *end)
            return tb_fail(err, "channels = \"%s\": expected up to %d comma-separated counts (1 to 4096)",
                           s->channels, TB_MAX_LAYERS / 2);
    }
    m.width = s->width;
    m.height = s->height;
    c->spec = m;
    c->backend = s->backend;
    Hyper *h = &c->hyper;
    h->optimizer = strcmp(s->optimizer, "adam") == 0 ? OPT_ADAM : OPT_SGD;
    h->loss = strcmp(s->loss, "l1") == 0 ? LOSS_L1 : LOSS_MSE;
    h->lr = s->lr;
    h->momentum = s->momentum;
    h->clip = s->clip;
    h->weight_decay = s->weight_decay;
    h->beta1 = s->adam_beta1;
    h->beta2 = s->adam_beta2;
    h->eps = s->adam_eps;
    h->t = 1;
    c->ring = s->ring;
    c->max_batch = params_max_batch();
    c->transform.kind = param_choice_index(param_find_ini("train", "transform"), s->transform);
    if (c->transform.kind < 0) c->transform.kind = TF_NONE;
    c->transform.blur = s->blur;
    c->transform.jitter = s->jitter;
    c->seed = (uint64_t)s->seed;
    c->deterministic = s->deterministic;
    return 0;
}

// Settings each in range can still not make a network together (a size that is
// no multiple of the strides' product): say so before anything starts, naming
// where those settings were set. A --load file brings its own architecture.
int session_check(const Settings *s, TbErr *err) {
    if (s->load[0]) return 0;
    TrainerConfig c;
    Model m;  // model_build only lays the network out; nothing is allocated
    TbErr e = {{0}};
    if (!session_trainer_config(s, NULL, &c, &e) && !model_build(&m, &c.spec, &e)) return 0;
    static const char *keys[][2] = {{"train", "width"}, {"train", "height"}, {"model", "channels"},
                                    {"model", "kernel"}, {"model", "stride"}, {"model", "pad"}};
    const char *seen[6];
    int n = 0;
    char where[512] = "";
    for (int i = 0; i < 6; i++) {
        const char *at = settings_set_at(s, keys[i][0], keys[i][1]);
        int dup = !at[0];
        for (int k = 0; k < n && !dup; k++) dup = strcmp(seen[k], at) == 0;
        if (dup) continue;
        seen[n++] = at;
        size_t len = strlen(where);
        snprintf(where + len, sizeof where - len, "%s%s", len ? ", " : "", at);
    }
    return where[0] ? tb_fail(err, "%s: %s", where, e.msg) : tb_fail(err, "%s", e.msg);
}

// [autosave] resume: the newest autosave that loads, architecture from the
// file. 1 if one was loaded, 0 if none (a fresh trainer is to be built), -1
// with err (no trainer left).
static int resume_autosave(Trainer *t, const Settings *s, TbErr *err) {
    enum { MAX = 1024 };
    char (*names)[256] = tb_malloc(MAX * 256);
    int n = autosave_list(s->autosave_dir, names, MAX);
    char path[CFG_STR + 300];
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", s->autosave_dir, names[i]);
        ModelSpec spec;
        TrainerConfig c;
        TbErr e2 = {{0}};
        if (checkpoint_peek_spec(path, &spec, &e2) == 0) {
            if (session_trainer_config(s, &spec, &c, err) || trainer_init(t, &c, err)) {
                rc = -1;
                break;
            }
            if (checkpoint_load(path, t, &e2) == 0) {
                tb_log("resumed from autosave %s (step %ld)", path, t->step);
                rc = 1;
                break;
            }
            trainer_free(t);
        }
        // e2.msg names the file.
        if (i + 1 < n) tb_log("autosave skipped: %s: trying %s/%s", e2.msg, s->autosave_dir, names[i + 1]);
        else tb_log("autosave skipped: %s: no older autosave, starting afresh", e2.msg);
    }
    if (n == 0) tb_log("resume: no autosave in %s/ yet: starting afresh", s->autosave_dir);
    free(names);
    return rc;
}

int session_setup_trainer(Trainer *t, const Settings *s, TbErr *err) {
    ModelSpec spec, *specp = NULL;
    int resumed = 0;
    if (!s->load[0] && s->autosave_resume) {
        resumed = resume_autosave(t, s, err);
        if (resumed < 0) return -1;
    }
    if (!resumed && s->load[0]) {
        if (checkpoint_peek_spec(s->load, &spec, err)) return -1;
        specp = &spec;
    }
    TrainerConfig c;
    if (!resumed && (session_trainer_config(s, specp, &c, err) || trainer_init(t, &c, err))) return -1;
    if (!resumed && s->load[0]) {
        if (checkpoint_load(s->load, t, err)) {
            trainer_free(t);
            return -1;
        }
        tb_log("loaded %s (step %ld)", s->load, t->step);
        if (t->tf_from_file)
            tb_log("%s: input transform %s, blur %d, jitter %.3g: the file's (it was trained with them; "
                   "[train] transform, blur and jitter are set aside)", s->load,
                   t->tf.kind == TF_GREY ? "grey" : t->tf.kind == TF_EDGES ? "edges" : "none", t->tf.blur,
                   (double)t->tf.jitter);
    }
    if (s->save_init[0] && checkpoint_save(s->save_init, t, 0, err)) {
        trainer_free(t);
        return -1;
    }
    model_print_summary(&t->model, stderr);
    return 0;
}

int session_save(Trainer *t, const Settings *s, TbErr *err) {
    if (!s->save[0]) return 0;
    if (checkpoint_save(s->save, t, 1, err)) return -1;
    tb_log("saved %s (step %ld)", s->save, t->step);
    return 0;
}
