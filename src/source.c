// source.c: open a frame source by its spec string, close it.
// The Y4M reader and the test pattern are built in; folders, other video files
// and cameras come from the app library through source_open_app().
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "source.h"

#define PATTERN_DEFAULT_W 640
#define PATTERN_DEFAULT_H 480

static const char *SPEC_FORMS =
    "pattern, pattern:WxH, file:PATH (.y4m; other video in the app build), dir:PATH, "
    "camera, camera:/dev/videoN";

// The engine-only build has no libav/V4L2/stb: this default is replaced by the
// app library's strong definition when that library is linked in.
__attribute__((weak)) Source *source_open_app(const char *spec, TbErr *err) {
    tb_fail(err, "%s: needs the app build (video files, image folders, cameras)", spec);
    return NULL;
}

static int has_suffix_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

// "WxH" with both sides in 1..16384 and nothing after.
static int parse_size(const char *s, int *w, int *h) {
    char *e;
    errno = 0;
    long a = strtol(s, &e, 10);
    if (e == s || (*e != 'x' && *e != 'X') || errno) return -1;
    const char *s2 = e + 1;
    long b = strtol(s2, &e, 10);
    if (e == s2 || *e != 0 || errno) return -1;
    if (a < 1 || a > 16384 || b < 1 || b > 16384) return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

Source *source_open(const char *spec, TbErr *err) {
    Source *s = NULL;
    if (!spec || !*spec) {
        tb_fail(err, "empty source: use one of %s", SPEC_FORMS);
        return NULL;
    }
    if (strlen(spec) >= sizeof s->spec) {
        tb_fail(err, "source spec is too long (%zu characters)", strlen(spec));
        return NULL;
    }
    if (strcmp(spec, "pattern") == 0) {
        s = source_open_pattern(PATTERN_DEFAULT_W, PATTERN_DEFAULT_H, err);
    } else if (strncmp(spec, "pattern:", 8) == 0) {
        int w, h;
        if (parse_size(spec + 8, &w, &h) < 0) {
            tb_fail(err, "%s: bad pattern size, expected pattern:WxH (e.g. pattern:640x480)",
                    spec);
            return NULL;
        }
        s = source_open_pattern(w, h, err);
    } else if (strncmp(spec, "file:", 5) == 0) {
        const char *path = spec + 5;
        struct stat st;
        if (!*path) {
            tb_fail(err, "%s: missing path after file:", spec);
            return NULL;
        }
        if (stat(path, &st) != 0) {
            tb_fail(err, "%s: %s", path, strerror(errno));
            return NULL;
        }
        if (S_ISDIR(st.st_mode)) {
            tb_fail(err, "%s: is a folder (use dir:%s for an image folder)", path, path);
            return NULL;
        }
        s = has_suffix_ci(path, ".y4m") ? source_open_y4m(path, err) : source_open_app(spec, err);
    } else if (strncmp(spec, "dir:", 4) == 0 || strcmp(spec, "camera") == 0 ||
               strncmp(spec, "camera:", 7) == 0) {
        s = source_open_app(spec, err);
    } else {
        tb_fail(err, "unknown source '%s': use one of %s", spec, SPEC_FORMS);
        return NULL;
    }
    if (s) snprintf(s->spec, sizeof s->spec, "%s", spec);
    return s;
}

// Each source's close() releases its ctx and everything it owns; the Source
// struct itself (calloc'ed by the opener) is freed here.
void source_close(Source *s) {
    if (!s) return;
    if (s->close) s->close(s);
    free(s);
}
