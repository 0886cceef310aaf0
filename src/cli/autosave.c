// autosave.c: periodic checkpoints from a writer thread (see autosave.h).
#define _DEFAULT_SOURCE
#include "autosave.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"

#define MAX_FILES 4096

// "auto-YYYYmmdd-HHMMSS[-N].safetensors": the stamp, and N (1 when absent).
static int parse_name(const char *name, char *stamp, long *n) {
    size_t len = strlen(name);
    const char *ext = ".safetensors";
    size_t el = strlen(ext);
    if (strncmp(name, "auto-", 5) != 0 || len < 5 + 15 + el || strcmp(name + len - el, ext) != 0) return -1;
    memcpy(stamp, name + 5, 15);
    stamp[15] = 0;
    if (strspn(stamp, "0123456789-") != 15 || stamp[8] != '-') return -1;
    const char *rest = name + 20;
    size_t rl = len - 20 - el;
    *n = 1;
    if (rl == 0) return 0;
    if (rest[0] != '-' || rl < 2 || rl > 10 || strspn(rest + 1, "0123456789") != rl - 1) return -1;
    *n = strtol(rest + 1, NULL, 10);
    return 0;
}

// Newest first.
static int cmp_newest(const void *pa, const void *pb) {
    const char *a = pa, *b = pb;
    char sa[16], sb[16];
    long na, nb;
    parse_name(a, sa, &na);
    parse_name(b, sb, &nb);
    int c = strcmp(sb, sa);
    if (c) return c;
    return nb > na ? 1 : nb < na ? -1 : 0;
}

int autosave_list(const char *dir, char (*names)[256], int max) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char stamp[16];
    long k;
    while ((e = readdir(d)) && n < max)
        if (strlen(e->d_name) < 256 && parse_name(e->d_name, stamp, &k) == 0)
            snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)n, 256, cmp_newest);
    return n;
}

static void prune(Autosave *a) {
    char (*names)[256] = tb_malloc(MAX_FILES * 256);
    int n = autosave_list(a->dir, names, MAX_FILES);
    char path[CFG_STR + 300];
    for (int i = a->keep; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", a->dir, names[i]);
        if (unlink(path) != 0 && errno != ENOENT) tb_warn("autosave: cannot delete %s: %s", path, strerror(errno));
    }
    free(names);
}

// Write the job in a (on the writer thread, or on the caller's at the end).
static void write_job(Autosave *a) {
    for (size_t i = 0; i < a->n; i++)
        if (!isfinite(a->params[i])) {
            tb_warn("autosave: the weights at step %ld are not finite: not saved", a->step);
            return;
        }
    if (mkdir(a->dir, 0755) != 0 && errno != EEXIST) {
        if (!a->fail_logged) tb_warn("autosave: cannot make %s/: %s (training goes on)", a->dir, strerror(errno));
        a->fail_logged = 1;
        pthread_mutex_lock(&a->mu);
        a->failed++;
        pthread_mutex_unlock(&a->mu);
        return;
    }
    char stamp[32], path[CFG_STR + 64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
    // Several in one second (short test intervals): -2, -3, ... sort after it.
    if (strcmp(stamp, a->stamp) == 0) a->stamp_n++;
    else a->stamp_n = 1;
    snprintf(a->stamp, sizeof a->stamp, "%s", stamp);
    if (a->stamp_n > 1) snprintf(path, sizeof path, "%s/auto-%s-%d.safetensors", a->dir, stamp, a->stamp_n);
    else snprintf(path, sizeof path, "%s/auto-%s.safetensors", a->dir, stamp);
    TbErr err = {{0}};
    int rc = checkpoint_save_host(path, &a->model, &a->hyper, a->step, a->opt_t0, a->seed, a->params, a->opt,
                                  &a->tf, &err);
    pthread_mutex_lock(&a->mu);
    if (rc) a->failed++;
    else a->written++, snprintf(a->last_path, sizeof a->last_path, "%s", path);
    pthread_mutex_unlock(&a->mu);
    if (rc) {
        // Disk full, say: the temp file is gone and the older autosaves stay.
        if (!a->fail_logged) tb_warn("autosave failed: %s (the older autosaves stay; training goes on)", err.msg);
        a->fail_logged = 1;
        return;
    }
    if (a->fail_logged) tb_log("autosave: writing again (%s)", path);
    a->fail_logged = 0;
    prune(a);
}

static void *writer(void *arg) {
    Autosave *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->busy && !a->quit) pthread_cond_wait(&a->cv, &a->mu);
        if (!a->busy) break;  // quit with nothing to write
        pthread_mutex_unlock(&a->mu);
        write_job(a);
        pthread_mutex_lock(&a->mu);
        a->busy = 0;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int autosave_open(Autosave *a, const Settings *s, const Trainer *t, TbErr *err) {
    memset(a, 0, sizeof *a);
    snprintf(a->dir, sizeof a->dir, "%s", s->autosave_dir);
    a->interval = (double)s->autosave_minutes * 60.0;
    a->keep = s->autosave_keep;
    a->on = a->interval > 0 && a->dir[0];
    a->last = tb_now();
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (!a->on) return 0;
    a->n = t->model.n_params;
    a->params = tb_malloc(a->n * sizeof(float));
    a->opt = tb_malloc(2 * a->n * sizeof(float));
    if (pthread_create(&a->th, NULL, writer, a) != 0) {
        free(a->params);
        free(a->opt);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        memset(a, 0, sizeof *a);
        return tb_fail(err, "autosave: cannot start the writer thread");
    }
    a->started = 1;
    return 0;
}

// The network into the job buffers (the caller knows the writer is idle).
static void copy_job(Autosave *a, Trainer *t) {
    a->model = t->model;
    a->hyper = t->hyper;
    a->step = t->step;
    a->opt_t0 = t->opt_t0;
    a->seed = t->seed;
    a->tf = t->tf;
    t->be->get_params(t->be, a->params);
    t->be->get_opt_state(t->be, a->opt, t->hyper.optimizer);
}

int autosave_tick(Autosave *a, Trainer *t, double now) {
    if (!a->on || now - a->last < a->interval) return 0;
    a->last = now;
    pthread_mutex_lock(&a->mu);
    int busy = a->busy;
    if (busy) a->skipped++;
    pthread_mutex_unlock(&a->mu);
    if (busy) {
        // The disk is slower than the interval: skip this one, never wait.
        if (!a->skip_logged) tb_log("autosave: the last one is still being written: skipped this one");
        a->skip_logged = 1;
        return 0;
    }
    copy_job(a, t);
    pthread_mutex_lock(&a->mu);
    a->busy = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 1;
}

void autosave_wait(Autosave *a) {
    if (!a->started) return;
    pthread_mutex_lock(&a->mu);
    while (a->busy) pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

int autosave_final(Autosave *a, Trainer *t) {
    if (!a->on) return 0;
    autosave_wait(a);
    long failed, written;
    pthread_mutex_lock(&a->mu);
    failed = a->failed, written = a->written;
    pthread_mutex_unlock(&a->mu);
    copy_job(a, t);
    write_job(a);  // on this thread: the writer is idle and stays so
    pthread_mutex_lock(&a->mu);
    int rc = a->failed != failed ? -1 : 0;
    int wrote = a->written != written;
    pthread_mutex_unlock(&a->mu);
    if (wrote) tb_log("autosave: %s (step %ld)", a->last_path, t->step);
    return rc;
}

void autosave_close(Autosave *a) {
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->quit = 1;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->th, NULL);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->params);
    free(a->opt);
    memset(a, 0, sizeof *a);
}
