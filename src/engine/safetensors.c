// safetensors.c: reader and atomic writer for the safetensors format
// (https://github.com/huggingface/safetensors):
//   u64 little-endian N | N bytes of JSON | tensor data.
// The JSON parser below handles exactly what a header can hold (objects, arrays,
// strings with escapes, numbers, true/false/null) and rejects everything else.
// Validation follows the reference implementation: offsets, sorted, must tile the
// data section exactly, and each tensor's byte size must be numel * dtype size.
#define _DEFAULT_SOURCE
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this file assumes a little-endian host"
#endif

#define ST_MAX_HEADER (100u << 20)  // larger headers are corrupt or hostile
#define ST_MAX_DEPTH 64             // nesting limit for skipped JSON values

// ---------------------------------------------------------------- dtypes

static const struct {
    const char *name;
    int size;
} DTYPES[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2}, {"I64", 8},     {"I32", 4},
    {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},  {"U16", 2},     {"U8", 1},
    {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static int dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return DTYPES[i].size;
    return 0;
}

int64_t st_numel(const StTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

// ---------------------------------------------------------------- JSON

typedef struct {
    const char *start, *p, *end;
    const char *path;
    TbErr *err;
} Js;

static int js_fail(Js *j, const char *what) {
    return tb_fail(j->err, "%s: bad JSON header at byte %td: %s", j->path, j->p - j->start, what);
}

static void js_ws(Js *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

// Skip whitespace, then consume c if it is next. Returns 1 if consumed.
static int js_eat(Js *j, char c) {
    js_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

// Parse a string into a new malloc'ed, NUL-terminated UTF-8 buffer (decoded is
// never longer than encoded). Strings with an embedded NUL are rejected: names
// and metadata are C strings here.
static int js_string(Js *j, char **out) {
    *out = NULL;
    if (!js_eat(j, '"')) return js_fail(j, "expected a string");
    const char *q = j->p;
    while (q < j->end && *q != '"') q += (*q == '\\') ? 2 : 1;
    if (q >= j->end) return js_fail(j, "unterminated string");
    char *buf = tb_malloc((size_t)(q - j->p) + 1);
    size_t n = 0;
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20) {
            free(buf);
            return js_fail(j, "control character in string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            j->p++;
            continue;
        }
        char e = j->p[1];
        j->p += 2;
        switch (e) {
            case '"': buf[n++] = '"'; break;
            case '\\': buf[n++] = '\\'; break;
            case '/': buf[n++] = '/'; break;
            case 'b': buf[n++] = '\b'; break;
            case 'f': buf[n++] = '\f'; break;
            case 'n': buf[n++] = '\n'; break;
            case 'r': buf[n++] = '\r'; break;
            case 't': buf[n++] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (j->end - j->p < 4 || hex4(j->p, &cp) < 0) goto bad_escape;
                j->p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {  // high surrogate: needs a low one
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                        hex4(j->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                        goto bad_escape;
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    goto bad_escape;
                }
                if (cp == 0) goto bad_escape;
                // UTF-8; 4..6 escaped chars always encode to at most as many bytes.
                if (cp < 0x80) {
                    buf[n++] = (char)cp;
                } else if (cp < 0x800) {
                    buf[n++] = (char)(0xC0 | (cp >> 6));
                    buf[n++] = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    buf[n++] = (char)(0xE0 | (cp >> 12));
                    buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    buf[n++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    buf[n++] = (char)(0xF0 | (cp >> 18));
                    buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    buf[n++] = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: goto bad_escape;
        }
    }
    j->p++;  // closing quote
    buf[n] = 0;
    *out = buf;
    return 0;
bad_escape:
    free(buf);
    return js_fail(j, "bad escape in string");
}

// A non-negative integer (shapes and offsets).
static int js_uint(Js *j, int64_t *out) {
    js_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return js_fail(j, "expected a non-negative integer");
    if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
        return js_fail(j, "leading zero in number");
    int64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        int d = *j->p - '0';
        if (v > (INT64_MAX - d) / 10) return js_fail(j, "integer too large");
        v = v * 10 + d;
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return js_fail(j, "expected an integer");
    *out = v;
    return 0;
}

// Skip any JSON value (unknown keys of a tensor entry).
static int js_skip(Js *j, int depth) {
    if (depth > ST_MAX_DEPTH) return js_fail(j, "nested too deeply");
    js_ws(j);
    if (j->p >= j->end) return js_fail(j, "expected a value");
    char c = *j->p;
    if (c == '"') {
        char *s;
        if (js_string(j, &s) < 0) return -1;
        free(s);
        return 0;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (js_eat(j, close)) return 0;
        do {
            if (c == '{') {
                char *k;
                if (js_string(j, &k) < 0) return -1;
                free(k);
                if (!js_eat(j, ':')) return js_fail(j, "expected ':'");
            }
            if (js_skip(j, depth + 1) < 0) return -1;
        } while (js_eat(j, ','));
        if (!js_eat(j, close)) return js_fail(j, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        return 0;
    }
    static const char *words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            return 0;
        }
    }
    // Number: -?digits(.digits)?([eE][+-]?digits)?
    const char *s = j->p;
    if (*j->p == '-') j->p++;
    int digits = 0;
    while (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' ||
                             *j->p == 'E' || *j->p == '+' || *j->p == '-')) {
        digits += (*j->p >= '0' && *j->p <= '9');
        j->p++;
    }
    if (!digits) {
        j->p = s;
        return js_fail(j, "expected a value");
    }
    return 0;
}

// ---------------------------------------------------------------- reader

typedef struct {
    int64_t begin, end;
} Span;

// {"k": "v", ...} into f->meta_*.
static int parse_meta(Js *j, StFile *f) {
    if (!js_eat(j, '{')) return js_fail(j, "__metadata__ must be an object");
    if (js_eat(j, '}')) return 0;
    do {
        char *k = NULL, *v = NULL;
        if (js_string(j, &k) < 0) return -1;
        if (!js_eat(j, ':')) {
            free(k);
            return js_fail(j, "expected ':'");
        }
        js_ws(j);
        if (j->p < j->end && *j->p != '"') {
            free(k);
            return js_fail(j, "__metadata__ values must be strings");
        }
        if (js_string(j, &v) < 0) {
            free(k);
            return -1;
        }
        if (strlen(k) >= sizeof f->meta_key[0]) {
            free(k);
            free(v);
            return js_fail(j, "__metadata__ key longer than 127 bytes");
        }
        f->meta_key = realloc(f->meta_key, sizeof f->meta_key[0] * (size_t)(f->n_meta + 1));
        f->meta_val = realloc(f->meta_val, sizeof f->meta_val[0] * (size_t)(f->n_meta + 1));
        CHECK(f->meta_key && f->meta_val, "out of memory");
        strcpy(f->meta_key[f->n_meta], k);
        f->meta_val[f->n_meta++] = v;
        free(k);
    } while (js_eat(j, ','));
    if (!js_eat(j, '}')) return js_fail(j, "expected ',' or '}' in __metadata__");
    return 0;
}

// {"dtype": .., "shape": [..], "data_offsets": [b, e], (others ignored)} into t/span.
static int parse_tensor(Js *j, StTensor *t, Span *span) {
    bool have_dtype = false, have_shape = false, have_off = false;
    if (!js_eat(j, '{')) return js_fail(j, "tensor entry must be an object");
    if (!js_eat(j, '}')) {
        do {
            char *k;
            if (js_string(j, &k) < 0) return -1;
            if (!js_eat(j, ':')) {
                free(k);
                return js_fail(j, "expected ':'");
            }
            int rc = 0;
            if (strcmp(k, "dtype") == 0) {
                char *v;
                rc = js_string(j, &v);
                if (rc == 0) {
                    if (strlen(v) >= sizeof t->dtype) {
                        tb_fail(j->err, "%s: tensor '%s': unknown dtype '%s'", j->path, t->name, v);
                        rc = -1;
                    } else {
                        strcpy(t->dtype, v);
                    }
                    free(v);
                }
                have_dtype = true;
            } else if (strcmp(k, "shape") == 0) {
                if (!js_eat(j, '[')) {
                    rc = js_fail(j, "shape must be an array");
                } else {
                    t->ndim = 0;
                    if (!js_eat(j, ']')) {
                        do {
                            int64_t d;
                            if (t->ndim >= ST_MAX_DIM) {
                                rc = tb_fail(j->err, "%s: tensor '%s': more than %d dimensions",
                                             j->path, t->name, ST_MAX_DIM);
                                break;
                            }
                            if ((rc = js_uint(j, &d)) < 0) break;
                            t->shape[t->ndim++] = d;
                        } while (js_eat(j, ','));
                        if (rc == 0 && !js_eat(j, ']')) rc = js_fail(j, "expected ',' or ']'");
                    }
                }
                have_shape = true;
            } else if (strcmp(k, "data_offsets") == 0) {
                if (!js_eat(j, '[') || js_uint(j, &span->begin) < 0 || !js_eat(j, ',') ||
                    js_uint(j, &span->end) < 0 || !js_eat(j, ']'))
                    rc = js_fail(j, "data_offsets must be [begin, end]");
                have_off = true;
            } else {
                rc = js_skip(j, 0);
            }
            free(k);
            if (rc < 0) return -1;
        } while (js_eat(j, ','));
        if (!js_eat(j, '}')) return js_fail(j, "expected ',' or '}' in tensor entry");
    }
    const char *missing = !have_dtype ? "dtype" : !have_shape ? "shape" : !have_off ? "data_offsets" : NULL;
    if (missing) return tb_fail(j->err, "%s: tensor '%s' has no %s", j->path, t->name, missing);
    return 0;
}

// Order of two tensors by (begin, end) of their spans.
static int cmp_span(const Span *spans, int a, int b) {
    const Span *x = &spans[a], *y = &spans[b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

// Check every tensor's dtype, size and offsets; set data/nbytes.
static int validate(StFile *f, Span *spans, const uint8_t *data, size_t data_len,
                    const char *path, TbErr *err) {
    for (int i = 0; i < f->n; i++) {
        StTensor *t = &f->t[i];
        int es = dtype_size(t->dtype);
        if (!es) return tb_fail(err, "%s: tensor '%s': unknown dtype '%s'", path, t->name, t->dtype);
        // numel and bytes with overflow checks (st_numel() is then safe to call).
        int64_t numel = 1, bytes;
        bool over = false;
        for (int d = 0; d < t->ndim; d++) over |= __builtin_mul_overflow(numel, t->shape[d], &numel);
        over |= __builtin_mul_overflow(numel, (int64_t)es, &bytes);
        if (over) return tb_fail(err, "%s: tensor '%s': shape is too large", path, t->name);
        Span s = spans[i];
        if (s.end < s.begin || (uint64_t)s.end > data_len)
            return tb_fail(err, "%s: tensor '%s': data_offsets [%lld, %lld] outside the %zu data bytes",
                           path, t->name, (long long)s.begin, (long long)s.end, data_len);
        if (bytes != s.end - s.begin)
            return tb_fail(err, "%s: tensor '%s': data_offsets span %lld bytes but %lld x %s need %lld",
                           path, t->name, (long long)(s.end - s.begin), (long long)numel, t->dtype,
                           (long long)bytes);
        t->nbytes = (size_t)bytes;
        t->data = data + s.begin;
    }
    // Sorted by offset, the tensors must tile [0, data_len) with no overlap or gap.
    int *order = tb_malloc(sizeof(int) * (size_t)(f->n ? f->n : 1));
    for (int i = 0; i < f->n; i++) order[i] = i;
    // Insertion sort (stable, small n); key: (begin, end).
    for (int i = 1; i < f->n; i++) {
        int k = order[i], m = i;
        while (m > 0 && cmp_span(spans, order[m - 1], k) > 0) {
            order[m] = order[m - 1];
            m--;
        }
        order[m] = k;
    }
    int64_t at = 0;
    int rc = 0;
    for (int i = 0; i < f->n && rc == 0; i++) {
        const Span *s = &spans[order[i]];
        if (s->begin < at)
            rc = tb_fail(err, "%s: tensor '%s' overlaps tensor '%s'", path, f->t[order[i]].name,
                         f->t[order[i - 1]].name);
        else if (s->begin > at)
            rc = tb_fail(err, "%s: %lld unused bytes before tensor '%s'", path,
                         (long long)(s->begin - at), f->t[order[i]].name);
        at = s->end;
    }
    if (rc == 0 && (size_t)at != data_len)
        rc = tb_fail(err, "%s: %lld bytes of data after the last tensor", path,
                     (long long)(data_len - (size_t)at));
    free(order);
    return rc;
}

static int parse_header(StFile *f, Span **spans_out, const char *json, size_t len,
                        const char *path, TbErr *err) {
    Js j = {json, json, json + len, path, err};
    int cap = 0;
    Span *spans = NULL;
    bool have_meta = false;
    *spans_out = NULL;
    if (!js_eat(&j, '{')) return js_fail(&j, "expected '{'");
    if (!js_eat(&j, '}')) {
        do {
            char *key;
            if (js_string(&j, &key) < 0) goto fail;
            if (!js_eat(&j, ':')) {
                free(key);
                js_fail(&j, "expected ':'");
                goto fail;
            }
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (have_meta) {
                    js_fail(&j, "two __metadata__ entries");
                    goto fail;
                }
                have_meta = true;
                if (parse_meta(&j, f) < 0) goto fail;
                continue;
            }
            if (strlen(key) >= ST_MAX_NAME || !*key) {
                tb_fail(err, "%s: tensor name '%.40s%s' is empty or longer than %d bytes", path,
                        key, strlen(key) > 40 ? "..." : "", ST_MAX_NAME - 1);
                free(key);
                goto fail;
            }
            for (int i = 0; i < f->n; i++)
                if (strcmp(f->t[i].name, key) == 0) {
                    tb_fail(err, "%s: tensor '%s' appears twice", path, key);
                    free(key);
                    goto fail;
                }
            if (f->n == cap) {
                cap = cap ? 2 * cap : 16;
                f->t = realloc(f->t, sizeof *f->t * (size_t)cap);
                spans = realloc(spans, sizeof *spans * (size_t)cap);
                CHECK(f->t && spans, "out of memory");
            }
            StTensor *t = &f->t[f->n];
            memset(t, 0, sizeof *t);
            strcpy(t->name, key);
            free(key);
            f->n++;
            if (parse_tensor(&j, t, &spans[f->n - 1]) < 0) goto fail;
        } while (js_eat(&j, ','));
        if (!js_eat(&j, '}')) {
            js_fail(&j, "expected ',' or '}'");
            goto fail;
        }
    }
    js_ws(&j);  // the writer pads with spaces
    if (j.p != j.end) {
        js_fail(&j, "unexpected bytes after the header object");
        goto fail;
    }
    *spans_out = spans;
    return 0;
fail:
    free(spans);
    return -1;
}

void st_free(StFile *f) {
    if (!f) return;
    free(f->t);
    for (int i = 0; i < f->n_meta; i++) free(f->meta_val[i]);
    free(f->meta_key);
    free(f->meta_val);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

int st_read(StFile *f, const char *path, TbErr *err) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return tb_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        return tb_fail(err, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        fclose(fp);
        return tb_fail(err, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        fclose(fp);
        return tb_fail(err, "%s: not a safetensors file (%zu bytes, shorter than the 8-byte header size)",
                       path, len);
    }
    uint8_t *buf = tb_malloc(len);
    size_t got = fread(buf, 1, len, fp);
    int rerr = ferror(fp);
    fclose(fp);
    if (got != len) {
        free(buf);
        return tb_fail(err, "%s: %s", path, rerr ? "read error" : "file shrank while reading");
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > ST_MAX_HEADER || n > len - 8) {
        free(buf);
        return tb_fail(err, "%s: header size %llu is larger than %s (%zu bytes)", path,
                       (unsigned long long)n, n > ST_MAX_HEADER ? "the 100 MB limit" : "the file",
                       n > ST_MAX_HEADER ? (size_t)ST_MAX_HEADER : len);
    }
    f->buf = buf;
    f->buf_len = len;
    Span *spans = NULL;
    if (parse_header(f, &spans, (const char *)buf + 8, (size_t)n, path, err) < 0 ||
        validate(f, spans, buf + 8 + n, len - 8 - (size_t)n, path, err) < 0) {
        free(spans);
        st_free(f);
        return -1;
    }
    free(spans);
    return 0;
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}

// ---------------------------------------------------------------- writer

void st_writer_init(StWriter *w) { memset(w, 0, sizeof *w); }

void st_writer_add(StWriter *w, const char *name, const char *dtype, int ndim,
                   const int64_t *shape, const void *data) {
    CHECK(name && *name && strlen(name) < ST_MAX_NAME, "tensor name '%s' empty or too long",
          name ? name : "(null)");
    CHECK(strcmp(name, "__metadata__") != 0, "'__metadata__' is not a tensor name");
    int es = dtype_size(dtype);
    CHECK(es > 0, "tensor '%s': unknown dtype '%s'", name, dtype);
    CHECK(ndim >= 0 && ndim <= ST_MAX_DIM, "tensor '%s': ndim %d", name, ndim);
    for (int i = 0; i < w->n; i++) CHECK(strcmp(w->t[i].name, name) != 0, "tensor '%s' added twice", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = realloc(w->t, sizeof *w->t * (size_t)w->cap);
        CHECK(w->t, "out of memory");
    }
    StTensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    strcpy(t->dtype, dtype);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        CHECK(shape[i] >= 0, "tensor '%s': negative dimension", name);
        t->shape[i] = shape[i];
    }
    t->nbytes = (size_t)st_numel(t) * (size_t)es;
    CHECK(data || t->nbytes == 0, "tensor '%s': no data", name);
    t->data = data;
}

void st_writer_meta(StWriter *w, const char *key, const char *value) {
    CHECK(key && strlen(key) < sizeof w->meta_key[0], "metadata key too long");
    CHECK(value, "metadata '%s': NULL value", key);
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_key[i], key) == 0) {  // later value wins
            free(w->meta_val[i]);
            w->meta_val[i] = strdup(value);
            CHECK(w->meta_val[i], "out of memory");
            return;
        }
    w->meta_key = realloc(w->meta_key, sizeof w->meta_key[0] * (size_t)(w->n_meta + 1));
    w->meta_val = realloc(w->meta_val, sizeof w->meta_val[0] * (size_t)(w->n_meta + 1));
    CHECK(w->meta_key && w->meta_val, "out of memory");
    strcpy(w->meta_key[w->n_meta], key);
    w->meta_val[w->n_meta] = strdup(value);
    CHECK(w->meta_val[w->n_meta], "out of memory");
    w->n_meta++;
}

void st_writer_free(StWriter *w) {
    free(w->t);
    for (int i = 0; i < w->n_meta; i++) free(w->meta_val[i]);
    free(w->meta_key);
    free(w->meta_val);
    memset(w, 0, sizeof *w);
}

// Growable text buffer for the JSON header.
typedef struct {
    char *p;
    size_t n, cap;
} Text;

static void text_put(Text *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 1024;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p, "out of memory");
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void text_str(Text *b, const char *s) { text_put(b, s, strlen(s)); }

static void text_fmt(Text *b, const char *fmt, long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    text_put(b, tmp, (size_t)n);
}

// A JSON string literal: quotes, backslashes and control bytes escaped; UTF-8 as is.
static void text_json(Text *b, const char *s) {
    text_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            text_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            text_put(b, e, 6);
        } else {
            text_put(b, (const char *)&c, 1);
        }
    }
    text_put(b, "\"", 1);
}

static int write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

// The header: metadata first, then the tensors in insertion order, offsets
// packed, padded so the data starts 8-byte aligned; len8 gets its length.
static Text writer_header(const StWriter *w, uint8_t len8[8]) {
    Text h = {0};
    text_str(&h, "{");
    if (w->n_meta) {
        text_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) text_str(&h, ",");
            text_json(&h, w->meta_key[i]);
            text_str(&h, ":");
            text_json(&h, w->meta_val[i]);
        }
        text_str(&h, "}");
    }
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const StTensor *t = &w->t[i];
        if (i || w->n_meta) text_str(&h, ",");
        text_json(&h, t->name);
        text_str(&h, ":{\"dtype\":");
        text_json(&h, t->dtype);
        text_str(&h, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) text_fmt(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        text_fmt(&h, "],\"data_offsets\":[%lld,", (long long)off);
        off += t->nbytes;
        text_fmt(&h, "%lld]}", (long long)off);
    }
    text_str(&h, "}");
    while (h.n % 8) text_str(&h, " ");  // data starts 8-byte aligned
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));

    return h;
}

// Length, header and every tensor into fd. 0, or an errno.
static int write_body(int fd, const StWriter *w, const uint8_t len8[8], const Text *h) {
    if (write_all(fd, len8, 8) != 0 || write_all(fd, h->p, h->n) != 0) return errno;
    for (int i = 0; i < w->n; i++)
        if (write_all(fd, w->t[i].data, w->t[i].nbytes) != 0) return errno;
    return 0;
}

// Temp files of earlier saves to this path whose writer is gone (killed mid-
// save): PATH.tmp.PID.XXXXXX with no process PID. A live writer's are kept.
static void remove_stale_temps(const char *path) {
    char *dir = strdup(path);
    CHECK(dir, "out of memory");
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    size_t bl = strlen(base);
    DIR *dh = opendir(d);
    struct dirent *e;
    while (dh && (e = readdir(dh))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (end == n + bl + 5 || *end != '.' || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;  // still writing
        char full[4096];
        if (snprintf(full, sizeof full, "%s/%s", d, n) < (int)sizeof full && unlink(full) == 0)
            tb_log("removed %s, left by an interrupted save", full);
    }
    if (dh) closedir(dh);
    free(dir);
}

// Write beside the target, fsync, then rename: readers see the old file or the
// complete new one, never a partial one. A file that was there keeps its mode.
static int save_atomic(const char *path, mode_t mode, const StWriter *w, const uint8_t len8[8],
                       const Text *h) {
    remove_stale_temps(path);
    size_t plen = strlen(path);
    char *tmp = tb_malloc(plen + 40);
    snprintf(tmp, plen + 40, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return e;
    }
    int e = fchmod(fd, mode) != 0 ? errno : write_body(fd, w, len8, h);
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) unlink(tmp);
    free(tmp);
    if (e) return e;
    // Persist the rename itself (best effort: some filesystems refuse fsync on a folder).
    char *dir = strdup(path);
    CHECK(dir, "out of memory");
    char *slash = strrchr(dir, '/');
    const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
    int dfd = open(d, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return 0;
}

// A device or a FIFO at the path is written into, never replaced.
static int save_direct(const char *path, const StWriter *w, const uint8_t len8[8], const Text *h) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int e = write_body(fd, w, len8, h);
    if (close(fd) != 0 && !e) e = errno;
    return e;
}

int st_writer_save(StWriter *w, const char *path, TbErr *err) {
    // What is at the path decides how to write: a symlink is followed (the link
    // stays), a device or FIFO is written into, a folder is an error.
    char *real = realpath(path, NULL);
    const char *target = real ? real : path;
    struct stat st;
    int exists = stat(target, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        free(real);
        return tb_fail(err, "%s: is a folder", path);
    }
    uint8_t len8[8];
    Text h = writer_header(w, len8);
    int e = exists && !S_ISREG(st.st_mode) ? save_direct(target, w, len8, &h)
                                            : save_atomic(target, exists ? st.st_mode & 07777 : 0644, w, len8, &h);
    free(h.p);
    free(real);
    if (e) return tb_fail(err, "%s: %s", path, strerror(e));
    return 0;
}
