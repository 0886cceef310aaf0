// imgdir.c: dir:PATH source: the PNG and JPEG files of a folder (by extension,
// case-insensitive) in sorted name order, one image per frame, looped.
//
// Images may differ in size, and the caller allocates the frame buffer from
// s->width/height *before* each read(). So the source always holds the next
// image decoded: open() decodes the first, and every read() hands over the
// held image and then decodes the following one, updating s->width/height to
// its size. Read the size again after each read() to size the next buffer.
//
// A gallery folder runs unattended for weeks, so one bad file must not stop
// it: an image that cannot be read or decoded (corrupt, truncated, hostile, a
// FIFO or folder with an image's name; see imgdecode.h) is skipped with one
// log line naming it and is not tried again for the life of the source; the
// others keep coming. Only when every image fails is it an error: at open, a
// message saying so with the first reason; later (the files were deleted or
// the disk went away), that read() still returns its frame and the next one
// returns -1 once with the reason, so the caller closes and reopens.
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "app_sources.h"
#include "imgdecode.h"

typedef struct {
    char dir[1024];
    char **names;
    uint8_t *bad;   // per image: 1 once it failed (logged then, skipped from then on)
    int n, cur;     // number of images; index of the held image
    Image img;      // the held image (s->width x s->height)
    TbErr pending;  // why no image can be shown any more, for the next read()
    int failed;
} ImgDir;

static int is_image(const char *name) {
    static const char *ext[] = {".png", ".jpg", ".jpeg"};
    size_t n = strlen(name);
    if (name[0] == '.') return 0;  // hidden files, editor droppings
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcasecmp(name + n - k, ext[i]) == 0) return 1;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Decode image i and hold it (the source's size follows); -1 with err on failure,
// the held image unchanged.
static int load(Source *s, ImgDir *d, int i, TbErr *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", d->dir, d->names[i]);
    Image im;
    if (img_load(path, &im, err) < 0) return -1;
    img_free(&d->img);
    d->img = im;
    d->cur = i;
    s->width = im.width;
    s->height = im.height;
    return 0;
}

static int imgdir_read(Source *s, uint8_t *rgb, TbErr *err) {
    ImgDir *d = s->ctx;
    if (d->failed) {
        *err = d->pending;
        return -1;
    }
    memcpy(rgb, d->img.rgb, (size_t)s->width * s->height * 3);
    // The next image that decodes, in loop order; the held one itself comes
    // last (read again from disk, so a folder that lost all its files fails).
    int held = d->cur;
    for (int k = 1; k <= d->n; k++) {
        int i = (held + k) % d->n;
        if (d->bad[i]) continue;
        TbErr e = {{0}};
        if (load(s, d, i, &e) == 0) return 1;
        d->bad[i] = 1;
        tb_log("dir:%s: skipping %s", d->dir, e.msg);
        if (i == held) {
            tb_fail(&d->pending, "%s: none of its %d images can be read any more (the last: %s)", d->dir,
                    d->n, e.msg);
            d->failed = 1;
        }
    }
    return 1;
}

static void imgdir_close(Source *s) {
    ImgDir *d = s->ctx;
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->names[i]);
    free(d->names);
    free(d->bad);
    img_free(&d->img);
    free(d);
    s->ctx = NULL;
}

// At open: hold the first image that decodes. The ones before it that fail are
// logged only once one works: a folder where all fail is one error, and the
// caller that retries it every second logs that once, not every file each time.
static int open_first(Source *s, ImgDir *d, TbErr *err) {
    char **why = tb_calloc((size_t)d->n, sizeof *why);
    int i = 0, rc = -1;
    for (; i < d->n; i++) {
        TbErr e = {{0}};
        if (load(s, d, i, &e) == 0) break;
        d->bad[i] = 1;
        why[i] = strdup(e.msg);
        CHECK(why[i], "out of memory");
    }
    if (i < d->n) {
        for (int k = 0; k < i; k++) tb_log("dir:%s: skipping %s", d->dir, why[k]);
        rc = 0;
    } else if (d->n == 1) {
        tb_fail(err, "%s: its only image cannot be read: %s", d->dir, why[0]);
    } else {
        tb_fail(err, "%s: none of its %d images can be read (the first: %s)", d->dir, d->n, why[0]);
    }
    for (int k = 0; k < d->n; k++) free(why[k]);
    free(why);
    return rc;
}

Source *source_open_imgdir(const char *path, TbErr *err) {
    DIR *dir = opendir(path);
    if (!dir) {
        tb_fail(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    ImgDir *d = tb_calloc(1, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", path);
    int cap = 0, entries = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        entries++;
        if (!is_image(e->d_name)) continue;
        if (d->n == cap) {
            cap = cap ? 2 * cap : 64;
            d->names = realloc(d->names, sizeof *d->names * (size_t)cap);
            CHECK(d->names, "out of memory");
        }
        d->names[d->n] = strdup(e->d_name);
        CHECK(d->names[d->n], "out of memory");
        d->n++;
    }
    closedir(dir);
    Source *s = tb_calloc(1, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "dir:%s", path);
    s->fps = 0;  // stills: the caller picks the pace
    s->ctx = d;
    s->read = imgdir_read;
    s->close = imgdir_close;
    if (d->n == 0) {
        if (entries == 0)
            tb_fail(err, "%s: folder is empty (want PNG or JPEG images)", path);
        else
            tb_fail(err, "%s: no PNG or JPEG images among its %d files", path, entries);
        goto fail;
    }
    qsort(d->names, (size_t)d->n, sizeof *d->names, cmp_names);
    d->bad = tb_calloc((size_t)d->n, 1);
    if (open_first(s, d, err) < 0) goto fail;
    return s;
fail:
    imgdir_close(s);
    free(s);
    return NULL;
}
