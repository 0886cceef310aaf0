// session.c: start-up shared by the headless driver and the app.
#define _DEFAULT_SOURCE
#include "session.h"

#include <glob.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"

#ifndef TABULA_ASSET_DIR
#define TABULA_ASSET_DIR "assets"
#endif

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

void session_default_clip(char *buf, size_t n) {
#ifdef TABULA_HAVE_APP
    const char *clips[] = {TABULA_ASSET_DIR "/default_clip.mp4", TABULA_ASSET_DIR "/default_clip.webm"};
    for (int i = 0; i < 2; i++)
        if (exists(clips[i])) {
            snprintf(buf, n, "file:%s", clips[i]);
            return;
        }
#endif
    snprintf(buf, n, "pattern");
}

void session_default_source(char *buf, size_t n) {
#ifdef TABULA_HAVE_APP
    glob_t g;
    int cams = glob("/dev/video*", 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    if (cams) globfree(&g);
    if (cams) {
        snprintf(buf, n, "camera");
        return;
    }
#endif
    session_default_clip(buf, n);
}

int session_setup_trainer(Trainer *t, const Settings *s, TbErr *err) {
    ModelSpec spec, *specp = NULL;
    if (s->load[0]) {
        if (checkpoint_peek_spec(s->load, &spec, err)) return -1;
        specp = &spec;
    }
    if (trainer_init(t, s, specp, err)) return -1;
    if (s->load[0]) {
        if (checkpoint_load(s->load, t, err)) {
            trainer_free(t);
            return -1;
        }
        tb_log("loaded %s (step %ld)", s->load, t->step);
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
