// snapshot.c: snapshots of the weights in a folder, named by time.
#define _DEFAULT_SOURCE
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "checkpoint.h"

int snapshot_save(const char *dir, Trainer *t, char *path, size_t n, TbErr *err) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return tb_fail(err, "cannot save: %s: %s", dir, strerror(errno));
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
