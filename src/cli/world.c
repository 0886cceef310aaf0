// world.c: worlds by number, loaded into a snapshot slot.
#define _DEFAULT_SOURCE
#include "world.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "snapshot.h"

static int is_world(const char *name) {
    size_t n = strlen(name), k = strlen(".safetensors");
    return name[0] != '.' && n > k && strcmp(name + n - k, ".safetensors") == 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

int world_path(const char *dir, int n, char *path, size_t pn, TbErr *err) {
    DIR *d = opendir(dir);
    if (!d) return tb_fail(err, "world %d: [world] dir %s: %s", n, dir, strerror(errno));
    char (*names)[256] = NULL;
    int count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_world(e->d_name) || strlen(e->d_name) >= sizeof *names) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 32;
            names = realloc(names, sizeof *names * (size_t)cap);
            CHECK(names, "out of memory");
        }
        snprintf(names[count++], sizeof *names, "%s", e->d_name);
    }
    closedir(d);
    if (count) qsort(names, (size_t)count, sizeof *names, cmp_names);
    int rc = 0;
    if (n < 1 || n > count)
        rc = tb_fail(err, "world %d: %s has %d world%s (.safetensors files)", n, dir, count, count == 1 ? "" : "s");
    else snprintf(path, pn, "%s/%s", dir, names[n - 1]);
    free(names);
    return rc;
}

int world_load(Trainer *t, const char *dir, int n, int slot, char *path, size_t pn, TbErr *err) {
    if (world_path(dir, n, path, pn, err)) return -1;
    return snapshot_slot_read_file(path, t, slot, err);
}
