// parse.c: "WxH" sizes and comma-separated integer lists.
#include "parse.h"

#include <errno.h>
#include <stdlib.h>

int tb_parse_size(const char *s, int min, int max, int *w, int *h) {
    char *e;
    errno = 0;
    long a = strtol(s, &e, 10);
    if (e == s || (*e != 'x' && *e != 'X') || errno) return -1;
    const char *s2 = e + 1;
    long b = strtol(s2, &e, 10);
    if (e == s2 || *e != 0 || errno) return -1;
    if (a < min || a > max || b < min || b > max) return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

int tb_parse_int_list(const char *s, int *out, int cap, long min, long max, const char **end) {
    int n = 0;
    const char *p = s;
    for (;;) {
        char *e;
        errno = 0;
        long v = strtol(p, &e, 10);
        if (e == p || errno || v < min || v > max || n >= cap) return -1;
        out[n++] = (int)v;
        p = e;
        if (*p != ',') break;
        p++;
        while (*p == ' ') p++;
    }
    if (end) *end = p;
    return n;
}
