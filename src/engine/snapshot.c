// snapshot.c: snapshots of the weights in a folder, named by time.
#define _DEFAULT_SOURCE
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "checkpoint.h"
#include "safetensors.h"

static int make_dir(const char *dir, TbErr *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return tb_fail(err, "cannot save: %s: %s", dir, strerror(errno));
    return 0;
}

int snapshot_save(const char *dir, Trainer *t, char *path, size_t n, TbErr *err) {
    if (make_dir(dir, err)) return -1;
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    snprintf(path, n, "%s/snap-%s.safetensors", dir, stamp);
    if (checkpoint_save(path, t, 1, err)) return -1;
    return 0;
}

int snapshot_load_newest(const char *dir, Trainer *t, char *path, size_t n, TbErr *err) {
    DIR *d = opendir(dir);
    char best[256] = "";
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strncmp(e->d_name, "snap-", 5) == 0 && strstr(e->d_name, ".safetensors") &&
                strcmp(e->d_name, best) > 0 && strlen(e->d_name) < sizeof best)
                snprintf(best, sizeof best, "%s", e->d_name);
        closedir(d);
    }
    if (!best[0]) return tb_fail(err, "no snapshot in %s/ yet (S saves one)", dir);
    snprintf(path, n, "%s/%s", dir, best);
    return checkpoint_load(path, t, err);
}

// The slots' files go through checkpoint.c, which reads and writes the live
// network: the live one waits in the scratch slot 0 meanwhile, with what the
// trainer knows of it (optimizer, step count, when that optimizer started).
typedef struct {
    int optimizer;
    long step, opt_t0;
} LiveMeta;

static LiveMeta live_meta(const Trainer *t) { return (LiveMeta){t->hyper.optimizer, t->step, t->opt_t0}; }

static void live_back(Trainer *t, LiveMeta m) {
    t->be->slot_recall(t->be, 0);
    t->hyper.optimizer = m.optimizer;
    t->step = m.step;
    t->opt_t0 = m.opt_t0;
}

static int slot_path(const char *dir, int i, char *path, size_t n, TbErr *err) {
    if (i < 1 || i > TB_SLOTS) return tb_fail(err, "slot %d: slots are 1 to %d", i, TB_SLOTS);
    snprintf(path, n, "%s/slot-%d.safetensors", dir, i);
    return 0;
}

int snapshot_slot_write(const char *dir, Trainer *t, int i, char *path, size_t n, TbErr *err) {
    if (slot_path(dir, i, path, n, err)) return -1;
    if (!trainer_slot_full(t, i)) return tb_fail(err, "slot %d is empty: nothing to write", i);
    if (make_dir(dir, err)) return -1;
    LiveMeta live = live_meta(t);
    if (trainer_slot_save(t, 0, err)) return -1;
    const TrainerSlot *s = &t->slots[i];
    t->be->slot_recall(t->be, i);
    t->hyper.optimizer = s->optimizer;
    t->step = s->step;
    t->opt_t0 = s->step - s->adam_t;
    int rc = checkpoint_save(path, t, 1, err);
    live_back(t, live);
    return rc;
}

int snapshot_slot_read(const char *dir, Trainer *t, int i, char *path, size_t n, TbErr *err) {
    if (slot_path(dir, i, path, n, err)) return -1;
    return snapshot_slot_read_file(path, t, i, err);
}

int snapshot_slot_read_file(const char *path, Trainer *t, int i, TbErr *err) {
    if (i < 1 || i > TB_SLOTS) return tb_fail(err, "slot %d: slots are 1 to %d", i, TB_SLOTS);
    // Which optimizer's state the file holds: the slot keeps it as it is.
    StFile f;
    if (st_read(&f, path, err)) return -1;
    const char *opt = st_meta(&f, "optimizer");
    int adam = opt && strcmp(opt, "adam") == 0;
    st_free(&f);
    LiveMeta live = live_meta(t);
    if (trainer_slot_save(t, 0, err)) return -1;
    t->hyper.optimizer = adam ? OPT_ADAM : OPT_SGD;
    int rc = checkpoint_load(path, t, err);
    if (rc == 0) rc = trainer_slot_save(t, i, err);
    live_back(t, live);
    return rc;
}
