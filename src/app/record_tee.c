// record_tee.c: a stream that passes lines on and to a function (record_tee.h).
#define _GNU_SOURCE
#include "record_tee.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    FILE *inner;
    TeeLine fn;
    void *user;
    char line[2048];  // the line being assembled (a longer one is cut: metrics lines are ~300 bytes)
    size_t n;
} Tee;

static ssize_t tee_write(void *cookie, const char *buf, size_t size) {
    Tee *t = cookie;
    for (size_t i = 0; i < size; i++) {
        if (buf[i] != '\n') {
            if (t->n + 1 < sizeof t->line) t->line[t->n++] = buf[i];
            continue;
        }
        t->line[t->n] = 0;
        t->fn(t->user, t->line);
        t->n = 0;
    }
    if (t->inner && (fwrite(buf, 1, size, t->inner) != size || fflush(t->inner) != 0)) return -1;
    return (ssize_t)size;
}

static int tee_close(void *cookie) {
    free(cookie);
    return 0;
}

FILE *tee_open(FILE *inner, TeeLine fn, void *user) {
    Tee *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->inner = inner, t->fn = fn, t->user = user;
    FILE *f = fopencookie(t, "w", (cookie_io_functions_t){.write = tee_write, .close = tee_close});
    if (!f) {
        free(t);
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);  // each line out as it is written, as a plain file flushed per batch would
    return f;
}
