// source.c: the registry of source kinds; open a source by its spec, close it.
// Built in: the test pattern and Y4M files. The app registers the kinds that
// need system libraries (video files through libav, image folders, cameras).
#define _POSIX_C_SOURCE 200809L
#include "source.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "parse.h"

#define PATTERN_DEFAULT_W 640
#define PATTERN_DEFAULT_H 480

static const char *SPEC_FORMS =
    "pattern, pattern:WxH, file:PATH, dir:PATH, camera, camera:/dev/videoN";

static Source *open_pattern(const char *arg, const SourceOpts *o, TbErr *err) {
    int w = PATTERN_DEFAULT_W, h = PATTERN_DEFAULT_H;
    if (*arg && tb_parse_size(arg, 1, 16384, &w, &h) < 0) {
        tb_fail(err, "pattern:%s: bad pattern size, expected pattern:WxH (e.g. pattern:640x480)", arg);
        return NULL;
    }
    return source_open_pattern(w, h, err);
}

static Source *open_y4m(const char *arg, const SourceOpts *o, TbErr *err) {
    return source_open_y4m(arg, err);
}

#define MAX_KINDS 16
static SourceKind kinds[MAX_KINDS] = {
    {"pattern", NULL, open_pattern},
    {"file", ".y4m", open_y4m},
};
static int n_kinds = 2;

void source_register(const SourceKind *k) {
    CHECK(n_kinds < MAX_KINDS, "more than %d source kinds", MAX_KINDS);
    kinds[n_kinds++] = *k;
}

static int has_suffix_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

// The kind for a spec, and where its argument starts; NULL if none.
static const SourceKind *find_kind(const char *spec, const char **arg) {
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    *arg = colon ? colon + 1 : spec + n;
    const SourceKind *any = NULL;
    for (int i = 0; i < n_kinds; i++) {
        const SourceKind *k = &kinds[i];
        if (strlen(k->scheme) != n || strncmp(k->scheme, spec, n) != 0) continue;
        if (!k->suffix) {
            if (!any) any = k;
        } else if (has_suffix_ci(*arg, k->suffix)) {
            return k;
        }
    }
    return any;
}

int source_can_open(const char *spec) {
    const char *arg;
    return spec && find_kind(spec, &arg) != NULL;
}

// The schemes tabula knows of, registered in this build or not.
static int known_scheme(const char *spec) {
    static const char *const all[] = {"pattern", "file", "dir", "camera"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t n = strlen(all[i]);
        if (strncmp(spec, all[i], n) == 0 && (spec[n] == 0 || spec[n] == ':')) return 1;
    }
    return 0;
}

Source *source_open(const char *spec, const SourceOpts *o, TbErr *err) {
    static const SourceOpts none;
    if (!o) o = &none;
    if (!spec || !*spec) {
        tb_fail(err, "empty source: use one of %s", SPEC_FORMS);
        return NULL;
    }
    if (strlen(spec) >= sizeof((Source *)0)->spec) {
        tb_fail(err, "source spec is too long (%zu characters)", strlen(spec));
        return NULL;
    }
    if (!known_scheme(spec)) {
        tb_fail(err, "unknown source '%s': use one of %s", spec, SPEC_FORMS);
        return NULL;
    }
    if (strncmp(spec, "file:", 5) == 0) {
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
        // A FIFO or device would block at open or read forever: files only.
        if (!S_ISREG(st.st_mode)) {
            tb_fail(err, "%s: not a regular file (a pipe or a device cannot be played as a file)", path);
            return NULL;
        }
    }
    const char *arg;
    const SourceKind *k = find_kind(spec, &arg);
    if (!k) {
        tb_fail(err, "%s: needs the app build (video files, image folders, cameras)", spec);
        return NULL;
    }
    Source *s = k->open(arg, o, err);
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
