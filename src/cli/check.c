// check.c: `tabula --check` (check.h): the probes that need no app library and
// the verdict.
#define _DEFAULT_SOURCE
#include "check.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "session.h"
#include "source.h"
#include "trainer.h"
#ifdef TABULA_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "backend_cuda.h"
#endif

void check_line(const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%-10s ", what);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
}

void check_fail(CheckReport *r, const char *fmt, ...) {
    size_t n = strlen(r->reasons);
    if (n && n + 2 < sizeof r->reasons) {
        memcpy(r->reasons + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof r->reasons) vsnprintf(r->reasons + n, sizeof r->reasons - n, fmt, ap);
    va_end(ap);
    r->fails++;
}

static void check_backend(const Settings *s) {
#ifdef TABULA_HAVE_CUDA
    TbErr err = {{0}};
    if (cuda_available(&err)) {
        struct cudaDeviceProp prop;
        int drv = 0, rt = 0;
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            check_line("backend:", "%s (CUDA device 0: %s, compute %d.%d, %.1f GB; driver %d.%d, runtime %d.%d)",
                       strcmp(s->backend, "cpu") == 0 ? "cpu (asked for)" : "cuda", prop.name,
                       prop.major, prop.minor, prop.totalGlobalMem / 1e9, drv / 1000,
                       (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
        else
            check_line("backend:", "%s (CUDA usable)", strcmp(s->backend, "cpu") == 0 ? "cpu" : "cuda");
    } else {
        check_line("backend:", "cpu (%s)", err.msg);
    }
#else
    check_line("backend:", "cpu (this build has no CUDA backend)");
    (void)s;
#endif
}

static void check_midi(void) {
    if (access("/dev/snd/seq", F_OK) != 0)
        check_line("midi:", "none (/dev/snd/seq: %s)", strerror(errno));
    else if (access("/dev/snd/seq", R_OK | W_OK) != 0)
        check_line("midi:", "/dev/snd/seq present but not usable: %s (add the user to the audio group)",
                   strerror(errno));
    else
        check_line("midi:", "ALSA sequencer /dev/snd/seq present");
}

// The folder a file setting writes into ("." for a bare name).
static void dir_of(const char *path, char *out, size_t n) {
    char tmp[CFG_STR];
    snprintf(tmp, sizeof tmp, "%s", path);
    snprintf(out, n, "%s", dirname(tmp));
}

// A folder tabula writes into: writable (or creatable: its nearest existing
// parent is writable), and the free space there.
static void check_folder(const char *what, const char *dir) {
    char p[CFG_STR];
    snprintf(p, sizeof p, "%s", dir);
    const char *note = "";
    struct stat st;
    // Walk up to the nearest folder that exists (the run creates the rest).
    while (stat(p, &st) != 0) {
        note = " (to be created)";
        char *slash = strrchr(p, '/');
        if (!slash) {
            snprintf(p, sizeof p, ".");
            break;
        }
        if (slash == p) slash[1] = 0;
        else *slash = 0;
    }
    // A file where the folder (or a parent) should be cannot hold one.
    int writable = stat(p, &st) == 0 && S_ISDIR(st.st_mode) && access(p, W_OK) == 0;
    struct statvfs vs;
    char space[64] = "free space unknown";
    if (statvfs(p, &vs) == 0)
        snprintf(space, sizeof space, "%.1f GB free", (double)vs.f_bavail * vs.f_frsize / 1e9);
    check_line(what, "%s%s: %s, %s", dir, note, writable ? "writable" : "NOT writable", space);
}

static void check_folders(const Settings *s) {
    check_folder("snapshots:", s->snapshot_dir[0] ? s->snapshot_dir : ".");
    if (s->autosave_minutes > 0) check_folder("autosave:", s->autosave_dir[0] ? s->autosave_dir : ".");
    check_folder("takes:", s->record_dir[0] ? s->record_dir : ".");  // R or a MIDI/OSC record starts one
    const struct {
        const char *what, *path;
    } files[] = {{"metrics:", s->metrics}, {"events:", s->events}, {"save:", s->save},
                 {"save-init:", s->save_init}};
    char dir[CFG_STR];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!files[i].path[0]) continue;
        dir_of(files[i].path, dir, sizeof dir);
        check_folder(files[i].what, dir);
    }
    if (s->load[0]) {
        if (access(s->load, R_OK) == 0) check_line("load:", "%s readable", s->load);
        else check_line("load:", "%s: %s", s->load, strerror(errno));
    }
}

static void check_source(const Settings *s, CheckReport *r) {
    char spec[CFG_STR + 8];
    if (s->source[0]) snprintf(spec, sizeof spec, "%s", s->source);
    else session_default_source(spec, sizeof spec);
    SourceOpts so = session_source_opts(s);
    TbErr err = {{0}};
    Source *src = source_open(spec, &so, &err);
    if (!src) {
        check_line("source:", "%s does not open: %s", spec, err.msg);
        check_fail(r, "source %s: %s", spec, err.msg);
        return;
    }
    check_line("source:", "%s opens (%dx%d)%s", spec, src->width, src->height,
               s->source[0] ? "" : " (the default: none configured)");
    source_close(src);
}

// The trainer refuses settings that cannot fit (trainer_init); build one and
// let it go.
static void check_training(const Settings *s, CheckReport *r) {
    TbErr err = {{0}};
    TrainerConfig c;
    Trainer t;
    if (session_trainer_config(s, NULL, &c, &err) || trainer_init(&t, &c, &err)) {
        check_line("training:", "%dx%d does not fit: %s", s->width, s->height, err.msg);
        check_fail(r, "training %dx%d: %s", s->width, s->height, err.msg);
        return;
    }
    check_line("training:", "%dx%d fits (%zu parameters, backend %s, %.1f GB memory available)",
               s->width, s->height, t.model.n_params, t.be->name, tb_mem_available() / 1e9);
    trainer_free(&t);
}

int check_run(const Settings *s, CheckAppProbes app) {
    CheckReport r = {0};
    check_backend(s);
    if (app) app(s, &r);
    else {
        check_line("cameras:", "not checked (this build has no app)");
        check_line("audio:", "not checked (this build has no app)");
        check_line("display:", "not checked (this build has no window)");
    }
    check_midi();
    check_folders(s);
    check_source(s, &r);
    check_training(s, &r);
    if (r.fails) {
        check_line("verdict:", "cannot run: %s", r.reasons);
        tb_log("--check: cannot run: %s", r.reasons);
        return TB_EXIT_INPUT;
    }
    check_line("verdict:", "ready");
    return TB_EXIT_OK;
}
