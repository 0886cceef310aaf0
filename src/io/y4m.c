// y4m.c: YUV4MPEG2 file source (4:2:0 and 4:4:4, 8 bit, progressive), looped.
// Header: "YUV4MPEG2 W320 H240 F30:1 Ip A1:1 C420mpeg2 X...\n", then frames of
// "FRAME[ params]\n" + Y plane + U plane + V plane.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>

#include "color.h"
#include "source.h"

#define Y4M_MAX_SIDE 16384
#define Y4M_MAX_PIXELS (64ll << 20)
#define Y4M_MAX_LINE 4096  // header and FRAME lines; longer means garbage

typedef struct {
    char path[1024];
    FILE *f;
    int chroma444;
    size_t ysize, csize;  // bytes of the Y plane and of each chroma plane
    uint8_t *planes;      // Y | U | V of one frame
    long data_start;      // file offset of the first FRAME line, for looping
    int64_t frame;        // index of the next frame in the file
    int pending;          // planes already hold frame 0 (read at open)
} Y4m;

// Read one '\n'-terminated line into buf (without the '\n'). Returns its length,
// -1 at EOF before any byte, -2 at EOF mid-line, -3 if longer than cap-1, -4 on I/O error.
static int read_line(FILE *f, char *buf, int cap) {
    int n = 0;
    for (;;) {
        int c = getc(f);
        if (c == EOF) {
            if (ferror(f)) return -4;
            return n == 0 ? -1 : -2;
        }
        if (c == '\n') break;
        if (n >= cap - 1) return -3;
        buf[n++] = (char)c;
    }
    buf[n] = 0;
    return n;
}

// Parse a positive decimal int (no sign, no junk after). Returns -1 if invalid.
static long parse_pos(const char *s, const char *end) {
    long v = 0;
    if (s == end) return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > 1000000000L) return -1;
    }
    return v;
}

// Read the next frame's planes. Returns 1, 0 (clean EOF at a frame boundary) or -1.
static int read_planes(Y4m *y, TbErr *err) {
    char line[Y4M_MAX_LINE];
    size_t total = y->ysize + 2 * y->csize;
    int n = read_line(y->f, line, sizeof line);
    if (n == -1) return 0;
    if (n == -4) return tb_fail(err, "%s: read error: %s", y->path, strerror(errno));
    if (n == -2)
        return tb_fail(err, "%s: truncated frame %lld (got 0 of %zu bytes)", y->path,
                       (long long)y->frame, total);
    if (n == -3 || strncmp(line, "FRAME", 5) != 0 || (line[5] != 0 && line[5] != ' '))
        return tb_fail(err, "%s: frame %lld does not start with a FRAME line", y->path,
                       (long long)y->frame);
    // One fread per plane; count what arrived to say how much is missing.
    size_t got = 0, want[3] = {y->ysize, y->csize, y->csize};
    for (int p = 0; p < 3; p++) {
        size_t r = fread(y->planes + got, 1, want[p], y->f);
        got += r;
        if (r != want[p]) {
            if (ferror(y->f)) return tb_fail(err, "%s: read error: %s", y->path, strerror(errno));
            return tb_fail(err, "%s: truncated frame %lld (got %zu of %zu bytes)", y->path,
                           (long long)y->frame, got, total);
        }
    }
    y->frame++;
    return 1;
}

static void y4m_convert(Y4m *y, Source *s, uint8_t *rgb) {
    const uint8_t *Y = y->planes, *U = Y + y->ysize, *V = U + y->csize;
    if (y->chroma444)
        yuv444_to_rgb(rgb, Y, U, V, s->width, s->height);
    else
        yuv420_to_rgb(rgb, Y, U, V, s->width, s->height);
}

static int y4m_read(Source *s, uint8_t *rgb, TbErr *err) {
    Y4m *y = s->ctx;
    if (y->pending) {
        y->pending = 0;
        y4m_convert(y, s, rgb);
        return 1;
    }
    int r = read_planes(y, err);
    if (r < 0) return -1;
    if (r == 0) {  // end of file: loop to the first frame
        if (y->frame == 0) return tb_fail(err, "%s: no frames", y->path);
        if (fseek(y->f, y->data_start, SEEK_SET) != 0)
            return tb_fail(err, "%s: cannot seek back to loop: %s", y->path, strerror(errno));
        y->frame = 0;
        r = read_planes(y, err);
        if (r < 0) return -1;
        if (r == 0) return tb_fail(err, "%s: no frames after looping (file changed?)", y->path);
    }
    y4m_convert(y, s, rgb);
    return 1;
}

static void y4m_close(Source *s) {
    Y4m *y = s->ctx;
    if (!y) return;
    if (y->f) fclose(y->f);
    free(y->planes);
    free(y);
    s->ctx = NULL;
}

// Parse the header tokens. Fills w, h, fps, chroma444; returns 0 or -1 with err.
static int parse_header(const char *path, char *line, int *w, int *h, double *fps,
                        int *chroma444, TbErr *err) {
    if (strncmp(line, "YUV4MPEG2", 9) != 0 || (line[9] != ' ' && line[9] != 0))
        return tb_fail(err, "%s: not a YUV4MPEG2 file (bad magic)", path);
    *w = *h = -1;
    *fps = 0;
    *chroma444 = 0;  // no C token means 420jpeg
    char *p = line + 9;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        char *e = p;
        while (*e && *e != ' ') e++;
        char tag = *p;
        const char *v = p + 1;
        if (tag == 'W' || tag == 'H') {
            long n = parse_pos(v, e);
            if (n <= 0 || n > Y4M_MAX_SIDE)
                return tb_fail(err, "%s: bad %s in header: '%.*s' (1..%d)", path,
                               tag == 'W' ? "width" : "height", (int)(e - p), p, Y4M_MAX_SIDE);
            *(tag == 'W' ? w : h) = (int)n;
        } else if (tag == 'F') {
            const char *colon = memchr(v, ':', (size_t)(e - v));
            long num = colon ? parse_pos(v, colon) : -1;
            long den = colon ? parse_pos(colon + 1, e) : -1;
            if (num < 0 || den < 0)
                return tb_fail(err, "%s: bad frame rate in header: '%.*s'", path, (int)(e - p),
                               p);
            *fps = (num > 0 && den > 0) ? (double)num / (double)den : 0;  // F0:0 = unknown
        } else if (tag == 'I') {
            if (e - v != 1 || (*v != 'p' && *v != '?'))
                return tb_fail(err, "%s: interlaced video ('%.*s') is not supported, only Ip",
                               path, (int)(e - p), p);
        } else if (tag == 'C') {
            size_t n = (size_t)(e - v);
            if ((n == 3 && !strncmp(v, "420", 3)) || (n == 7 && !strncmp(v, "420jpeg", 7)) ||
                (n == 8 && !strncmp(v, "420mpeg2", 8)) || (n == 8 && !strncmp(v, "420paldv", 8)))
                *chroma444 = 0;
            else if (n == 3 && !strncmp(v, "444", 3))
                *chroma444 = 1;
            else
                return tb_fail(err,
                               "%s: colour space '%.*s' is not supported (8-bit C420*, C444)",
                               path, (int)(e - p), p);
        }
        // A (aspect), X (extensions) and anything else: not needed here.
        p = e;
    }
    if (*w < 0) return tb_fail(err, "%s: header has no width (W)", path);
    if (*h < 0) return tb_fail(err, "%s: header has no height (H)", path);
    if ((long long)*w * *h > Y4M_MAX_PIXELS)
        return tb_fail(err, "%s: frame %dx%d is too large", path, *w, *h);
    return 0;
}

Source *source_open_y4m(const char *path, TbErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        tb_fail(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char line[Y4M_MAX_LINE];
    int n = read_line(f, line, sizeof line);
    int w = 0, h = 0, c444 = 0;
    double fps = 0;
    if (n < 0) {
        if (n == -4)
            tb_fail(err, "%s: read error: %s", path, strerror(errno));
        else if (n == -3)
            tb_fail(err, "%s: not a YUV4MPEG2 file (no header line)", path);
        else
            tb_fail(err, "%s: not a YUV4MPEG2 file (%s)", path,
                    n == -1 ? "empty" : "header line not terminated");
        fclose(f);
        return NULL;
    }
    if (parse_header(path, line, &w, &h, &fps, &c444, err) < 0) {
        fclose(f);
        return NULL;
    }
    Y4m *y = tb_calloc(1, sizeof *y);
    snprintf(y->path, sizeof y->path, "%s", path);
    y->f = f;
    y->chroma444 = c444;
    y->ysize = (size_t)w * h;
    y->csize = c444 ? y->ysize : (size_t)((w + 1) / 2) * ((h + 1) / 2);
    y->planes = tb_malloc(y->ysize + 2 * y->csize);
    y->data_start = ftell(f);
    Source *s = tb_calloc(1, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "file:%s", path);
    s->width = w;
    s->height = h;
    s->fps = fps;
    s->ctx = y;
    s->read = y4m_read;
    s->close = y4m_close;
    // Read frame 0 now so a file with no whole frame fails at open, not later.
    int r = y->data_start < 0 ? -1 : read_planes(y, err);
    if (y->data_start < 0) tb_fail(err, "%s: cannot tell file position: %s", path, strerror(errno));
    if (r == 0) tb_fail(err, "%s: no frames", path);
    if (r <= 0) {
        y4m_close(s);
        free(s);
        return NULL;
    }
    y->pending = 1;
    return s;
}
