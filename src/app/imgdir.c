// imgdir.c: dir:PATH source: the PNG and JPEG files of a folder (by extension,
// case-insensitive) in sorted name order, one image per frame, looped.
//
// Images may differ in size, and the caller allocates the frame buffer from
// s->width/height *before* each read(). So the source always holds the next
// image decoded: open() decodes the first, and every read() hands over the
// held image and then decodes the following one, updating s->width/height to
// its size. Read the size again after each read() to size the next buffer.
// If decoding the following image fails, that read() still returns its frame
// and the error comes from the next read().
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "app_sources.h"

// Static so the decoder does not clash with any other stb copy in the program;
// only the two formats we read; no absurd allocations from a corrupt header.
// (Unused static stb functions would warn at the end of the file, so that
// warning stays off for the whole file.)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_MAX_DIMENSIONS 16384
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_image.h>
#pragma GCC diagnostic pop

typedef struct {
    char dir[1024];
    char **names;
    int n, next;    // number of images; index of the held image
    uint8_t *img;   // held image, RGB8, s->width x s->height; NULL after a failed decode
    TbErr pending;  // decode error to report on the next read()
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

// Decode image d->next into d->img and the source's size; -1 with err on failure.
static int load(Source *s, ImgDir *d, TbErr *err) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", d->dir, d->names[d->next]);
    int w = 0, h = 0, comp = 0;
    stbi_image_free(d->img);
    d->img = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return tb_fail(err, "%s: %s", path, strerror(errno));
    d->img = stbi_load_from_file(f, &w, &h, &comp, 3);  // grey and RGBA become RGB
    fclose(f);
    if (!d->img) return tb_fail(err, "%s: cannot decode image (%s)", path, stbi_failure_reason());
    s->width = w;
    s->height = h;
    return 0;
}

static int imgdir_read(Source *s, uint8_t *rgb, TbErr *err) {
    ImgDir *d = s->ctx;
    if (d->failed) {
        *err = d->pending;
        return -1;
    }
    memcpy(rgb, d->img, (size_t)s->width * s->height * 3);
    d->next = (d->next + 1) % d->n;
    if (load(s, d, &d->pending) < 0) d->failed = 1;
    return 1;
}

static void imgdir_close(Source *s) {
    ImgDir *d = s->ctx;
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->names[i]);
    free(d->names);
    stbi_image_free(d->img);
    free(d);
    s->ctx = NULL;
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
    if (load(s, d, err) < 0) goto fail;
    return s;
fail:
    imgdir_close(s);
    free(s);
    return NULL;
}
