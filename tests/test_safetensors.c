// test_safetensors.c: write/read round trip, a file made by Python's safetensors
// (bytes embedded below), every malformed header/offset case, and failed saves
// (missing folder, write error mid-file) that must leave no partial file.
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test.h"

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot create %s", path);
    CHECK(fwrite(data, 1, n, f) == n, "write %s", path);
    fclose(f);
}

// Entries in the temp folder whose name contains ".tmp." (left-over partial saves).
static int count_tmp_files(void) {
    DIR *d = opendir(tmpdir);
    CHECK(d, "opendir %s", tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

// A file: u64 header size, the header text, then `data_len` bytes of data.
static void write_st(const char *path, const char *header, size_t data_len) {
    size_t hn = strlen(header), n = 8 + hn + data_len;
    uint8_t *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, header, hn);
    write_file(path, b, n);
    free(b);
}

static void expect_bad_bytes(const char *name, const void *bytes, size_t n, const char *needle) {
    char path[512];
    tmp_path(path, sizeof path, name);
    write_file(path, bytes, n);
    StFile f;
    TbErr err = {{0}};
    int rc = st_read(&f, path, &err);
    EXPECT(rc == -1, "%s: accepted", name);
    EXPECT(strstr(err.msg, path) != NULL, "%s: message does not name the file: '%s'", name, err.msg);
    EXPECT(strstr(err.msg, needle) != NULL, "%s: message lacks '%s': '%s'", name, needle, err.msg);
    EXPECT(f.n == 0 && f.buf == NULL && f.t == NULL, "%s: StFile not cleared after error", name);
    unlink(path);
}

static void expect_bad(const char *name, const char *header, size_t data_len, const char *needle) {
    char path[512];
    tmp_path(path, sizeof path, name);
    write_st(path, header, data_len);
    StFile f;
    TbErr err = {{0}};
    int rc = st_read(&f, path, &err);
    EXPECT(rc == -1, "%s: accepted", name);
    EXPECT(strstr(err.msg, path) != NULL, "%s: message does not name the file: '%s'", name, err.msg);
    EXPECT(strstr(err.msg, needle) != NULL, "%s: message lacks '%s': '%s'", name, needle, err.msg);
    if (rc == 0) st_free(&f);
    unlink(path);
}

static void test_round_trip(void) {
    float w[2 * 3 * 4];
    for (int i = 0; i < 24; i++) w[i] = 0.25f * (float)i - 3.0f;
    uint8_t u8[5] = {0, 1, 127, 128, 255};
    int64_t step = -1234567890123ll;
    uint16_t bf[3] = {0x3f80, 0xc000, 0x7f80};
    int64_t sw[3] = {2, 3, 4}, su[1] = {5}, sb[2] = {1, 3}, sz[2] = {0, 7};

    StWriter wr;
    st_writer_init(&wr);
    st_writer_add(&wr, "enc.0.weight", "F32", 3, sw, w);
    st_writer_add(&wr, "bytes", "U8", 1, su, u8);
    st_writer_add(&wr, "step", "I64", 0, NULL, &step);  // scalar
    st_writer_add(&wr, "empty", "F32", 2, sz, NULL);    // zero elements
    st_writer_add(&wr, "bf", "BF16", 2, sb, bf);
    st_writer_meta(&wr, "format", "pt");
    st_writer_meta(&wr, "arch", "tabula-ae-v1");
    st_writer_meta(&wr, "odd", "quote \" backslash \\ newline \n tab \t caf\xc3\xa9 \x01");
    st_writer_meta(&wr, "arch", "tabula-ae-v2");  // replaces the first value

    char path[512];
    tmp_path(path, sizeof path, "model.safetensors");
    TbErr err = {{0}};
    EXPECT(st_writer_save(&wr, path, &err) == 0, "save: %s", err.msg);
    EXPECT(count_tmp_files() == 0, "temp file left after a save");

    StFile f;
    EXPECT(st_read(&f, path, &err) == 0, "read back: %s", err.msg);
    EXPECT(f.n == 5, "%d tensors", f.n);
    const char *order[5] = {"enc.0.weight", "bytes", "step", "empty", "bf"};
    for (int i = 0; i < 5 && i < f.n; i++)
        EXPECT(strcmp(f.t[i].name, order[i]) == 0, "tensor %d is '%s'", i, f.t[i].name);
    const StTensor *t = st_find(&f, "enc.0.weight");
    EXPECT(t && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 4 &&
               strcmp(t->dtype, "F32") == 0 && t->nbytes == sizeof w && st_numel(t) == 24,
           "enc.0.weight header");
    EXPECT(t && memcmp(t->data, w, sizeof w) == 0, "enc.0.weight data");
    t = st_find(&f, "bytes");
    EXPECT(t && t->nbytes == 5 && memcmp(t->data, u8, 5) == 0, "U8 data");
    t = st_find(&f, "step");
    EXPECT(t && t->ndim == 0 && st_numel(t) == 1 && t->nbytes == 8 && memcmp(t->data, &step, 8) == 0,
           "scalar I64");
    t = st_find(&f, "empty");
    EXPECT(t && t->ndim == 2 && t->shape[1] == 7 && st_numel(t) == 0 && t->nbytes == 0, "empty");
    t = st_find(&f, "bf");
    EXPECT(t && strcmp(t->dtype, "BF16") == 0 && t->nbytes == 6 && memcmp(t->data, bf, 6) == 0, "BF16");
    EXPECT(st_find(&f, "nope") == NULL, "st_find invents tensors");
    EXPECT(f.n_meta == 3, "%d metadata entries", f.n_meta);
    EXPECT(st_meta(&f, "format") && strcmp(st_meta(&f, "format"), "pt") == 0, "format");
    EXPECT(st_meta(&f, "arch") && strcmp(st_meta(&f, "arch"), "tabula-ae-v2") == 0, "arch");
    EXPECT(st_meta(&f, "odd") &&
               strcmp(st_meta(&f, "odd"),
                      "quote \" backslash \\ newline \n tab \t caf\xc3\xa9 \x01") == 0,
           "escaped metadata: '%s'", st_meta(&f, "odd") ? st_meta(&f, "odd") : "(null)");
    EXPECT(st_meta(&f, "absent") == NULL, "st_meta invents keys");
    // Layout: header size a multiple of 8, padded with spaces; data right after.
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | f.buf[i];
    EXPECT(hn % 8 == 0, "header size %llu not a multiple of 8", (unsigned long long)hn);
    EXPECT(f.buf[8] == '{', "header starts with '%c'", f.buf[8]);
    EXPECT(f.buf_len == 8 + hn + sizeof w + 5 + 8 + 6, "file is %zu bytes", f.buf_len);
    EXPECT(f.t[0].data == f.buf + 8 + hn, "first tensor not at the start of the data");
    st_free(&f);
    EXPECT(f.n == 0 && f.buf == NULL, "st_free did not clear");

    // Saving again over the file replaces it whole.
    w[0] = 42.0f;
    EXPECT(st_writer_save(&wr, path, &err) == 0, "second save: %s", err.msg);
    EXPECT(st_read(&f, path, &err) == 0, "read second save: %s", err.msg);
    t = st_find(&f, "enc.0.weight");
    float first;
    if (t) memcpy(&first, t->data, 4);
    EXPECT(t && first == 42.0f, "overwrite did not take");
    st_free(&f);
    st_writer_free(&wr);

    // An empty writer gives a valid file with no tensors.
    st_writer_init(&wr);
    EXPECT(st_writer_save(&wr, path, &err) == 0, "empty save: %s", err.msg);
    EXPECT(st_read(&f, path, &err) == 0 && f.n == 0 && f.n_meta == 0, "empty read: %s", err.msg);
    st_free(&f);
    st_writer_free(&wr);
    unlink(path);
}

// Exact bytes written by Python safetensors 0.8.0 (torch 1.13):
//   save_file({"enc.0.weight": tensor([[1., -2.5, .125], [3., 1e-3, -0.]]),
//              "step": tensor([7, -1]), "mask": tensor([1, 0, 255], dtype=uint8)},
//             f, metadata={"format": "pt", "note": 'a "quoted"\nline'})
static void test_python_file(void) {
    static const char header[] =
        "{\"__metadata__\":{\"note\":\"a \\\"quoted\\\"\\nline\",\"format\":\"pt\"},"
        "\"step\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
        "\"enc.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]},"
        "\"mask\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[40,43]}}      ";
    static const uint8_t data[43] = {
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0, 0x00, 0x00, 0x00, 0x3e, 0x00, 0x00,
        0x40, 0x40, 0x6f, 0x12, 0x83, 0x3a, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0xff};
    size_t hn = sizeof header - 1;
    EXPECT(hn == 0xf8, "embedded header is %zu bytes, Python wrote 248", hn);
    uint8_t file[8 + 248 + 43] = {0xf8};
    memcpy(file + 8, header, hn);
    memcpy(file + 8 + hn, data, sizeof data);
    char path[512];
    tmp_path(path, sizeof path, "python.safetensors");
    write_file(path, file, sizeof file);

    StFile f;
    TbErr err = {{0}};
    EXPECT(st_read(&f, path, &err) == 0, "read Python file: %s", err.msg);
    if (f.n != 3) {
        EXPECT(0, "Python file: %d tensors", f.n);
        st_free(&f);
        return;
    }
    const StTensor *w = st_find(&f, "enc.0.weight"), *s = st_find(&f, "step"), *m = st_find(&f, "mask");
    EXPECT(w && s && m, "tensors missing");
    if (w && s && m) {
        float wv[6];
        int64_t sv[2];
        memcpy(wv, w->data, sizeof wv);
        memcpy(sv, s->data, sizeof sv);
        const float want[6] = {1.0f, -2.5f, 0.125f, 3.0f, 1e-3f, -0.0f};
        for (int i = 0; i < 6; i++) EXPECT(wv[i] == want[i], "weight[%d] = %g", i, wv[i]);
        EXPECT(signbit(wv[5]), "-0.0 lost its sign");
        EXPECT(w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3, "weight shape");
        EXPECT(sv[0] == 7 && sv[1] == -1, "step = %lld %lld", (long long)sv[0], (long long)sv[1]);
        EXPECT(m->nbytes == 3 && m->data[0] == 1 && m->data[1] == 0 && m->data[2] == 255, "mask");
    }
    EXPECT(st_meta(&f, "note") && strcmp(st_meta(&f, "note"), "a \"quoted\"\nline") == 0, "note");
    EXPECT(st_meta(&f, "format") && strcmp(st_meta(&f, "format"), "pt") == 0, "format");
    st_free(&f);
    unlink(path);
}

static void test_malformed(void) {
    const char *T = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    // Sanity: the template itself is valid, so each case below fails for its own reason.
    {
        char path[512];
        tmp_path(path, sizeof path, "ok.safetensors");
        write_st(path, T, 4);
        StFile f;
        TbErr err = {{0}};
        EXPECT(st_read(&f, path, &err) == 0, "template rejected: %s", err.msg);
        st_free(&f);
        unlink(path);
    }
    expect_bad_bytes("zero.st", "", 0, "shorter than");
    expect_bad_bytes("five.st", "\x10\0\0\0\0", 5, "shorter than");
    expect_bad_bytes("huge_n.st", "\x00\x10\x00\x00\x00\x00\x00\x00{}", 10, "larger than the file");
    expect_bad_bytes("over100mb.st", "\x00\x00\x00\x08\x00\x00\x00\x00{}", 10, "100 MB");
    expect_bad_bytes("max_n.st", "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10, "100 MB");
    expect_bad("empty_header.st", "", 0, "bad JSON");
    expect_bad("not_object.st", "[1, 2]", 0, "bad JSON");
    expect_bad("cut.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_of", 4, "bad JSON");
    expect_bad("no_close.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4,
               "bad JSON");
    expect_bad("trailing.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4,
               "bad JSON");
    expect_bad("bad_escape.st", "{\"a\\q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "bad JSON");
    expect_bad("lone_surrogate.st",
               "{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "bad JSON");
    expect_bad("ctrl.st", "{\"a\n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "bad JSON");
    expect_bad("unquoted.st", "{a:{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "bad JSON");
    expect_bad("float_dim.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
               "bad JSON");
    expect_bad("neg_dim.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "non-negative");
    expect_bad("big_int.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
               "too large");
    expect_bad("offsets3.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
               "data_offsets");
    expect_bad("no_dtype.st", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "has no dtype");
    expect_bad("no_shape.st", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "has no shape");
    expect_bad("no_offsets.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "has no data_offsets");
    expect_bad("entry_not_obj.st", "{\"a\":[1,2]}", 0, "must be an object");
    expect_bad("unknown_dtype.st", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "unknown dtype 'F33'");
    expect_bad("long_dtype.st",
               "{\"a\":{\"dtype\":\"FLOAT32XX\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "unknown dtype");
    expect_bad("ndim9.st",
               "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
               "more than 8 dimensions");
    expect_bad("past_end.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "outside");
    expect_bad("reversed.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
               "outside");
    expect_bad("size_mismatch.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
               "need");
    expect_bad("overflow.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
               4, "too large");
    expect_bad("overlap.st",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
               6, "overlaps");
    expect_bad("gap.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
               "unused bytes before tensor 'a'");
    expect_bad("tail.st", T, 12, "8 bytes of data after the last tensor");
    expect_bad("dup.st",
               "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
               2, "appears twice");
    expect_bad("meta_int.st", "{\"__metadata__\":{\"k\":1}}", 0, "must be strings");
    expect_bad("meta_arr.st", "{\"__metadata__\":[\"k\"]}", 0, "must be an object");
    expect_bad("meta_twice.st", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "two __metadata__");
    expect_bad("empty_name.st", "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
               "empty or longer");
    // An unknown key with a deeply nested value: no recursion blow-up.
    {
        static char deep[4096];
        int n = sprintf(deep, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":");
        for (int i = 0; i < 1000; i++) deep[n++] = '[';
        for (int i = 0; i < 1000; i++) deep[n++] = ']';
        strcpy(deep + n, "}}");
        expect_bad("deep.st", deep, 1, "nested too deeply");
    }
    // Unknown keys with ordinary values are skipped.
    {
        char path[512];
        tmp_path(path, sizeof path, "extra_keys.st");
        write_st(path,
                 "{\"a\":{\"x\":{\"y\":[1,-2.5e3,true,null,\"s\\u00e9\"]},\"dtype\":\"U8\","
                 "\"shape\":[2],\"data_offsets\":[0,2]}}",
                 2);
        StFile f;
        TbErr err = {{0}};
        EXPECT(st_read(&f, path, &err) == 0 && f.n == 1 && f.t[0].nbytes == 2,
               "unknown keys not skipped: %s", err.msg);
        if (f.buf) st_free(&f);
        unlink(path);
    }
    // Missing file, folder.
    StFile f;
    TbErr err = {{0}};
    EXPECT(st_read(&f, "/nonexistent/w.safetensors", &err) == -1 &&
               strcmp(err.msg, "/nonexistent/w.safetensors: No such file or directory") == 0,
           "missing file: '%s'", err.msg);
    EXPECT(st_read(&f, tmpdir, &err) == -1 && strstr(err.msg, tmpdir), "folder: '%s'", err.msg);
}

static void test_failed_saves(void) {
    float big[4096];
    for (int i = 0; i < 4096; i++) big[i] = (float)i;
    int64_t shape[1] = {4096};
    StWriter wr;
    st_writer_init(&wr);
    st_writer_add(&wr, "big", "F32", 1, shape, big);
    TbErr err = {{0}};

    EXPECT(st_writer_save(&wr, "/nonexistent/dir/w.safetensors", &err) == -1 &&
               strcmp(err.msg, "/nonexistent/dir/w.safetensors: No such file or directory") == 0,
           "missing folder: '%s'", err.msg);

    // A valid file, then a save that fails mid-write (file size limit: the same
    // path through write() as a full disk). The old file must survive intact and
    // no temp file may be left.
    char path[512];
    tmp_path(path, sizeof path, "keep.safetensors");
    int64_t one[1] = {1};
    float v = 7.0f;
    StWriter small;
    st_writer_init(&small);
    st_writer_add(&small, "v", "F32", 1, one, &v);
    EXPECT(st_writer_save(&small, path, &err) == 0, "small save: %s", err.msg);
    st_writer_free(&small);

    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    lim = old;
    lim.rlim_cur = 4096;  // the big tensor alone is 16 KiB
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    int rc = st_writer_save(&wr, path, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "restore rlimit");
    signal(SIGXFSZ, prev);
    EXPECT(rc == -1, "save past the file size limit succeeded");
    EXPECT(strstr(err.msg, path) && strstr(err.msg, "File too large"), "write error: '%s'", err.msg);
    EXPECT(count_tmp_files() == 0, "temp file left after a failed save");
    StFile f;
    EXPECT(st_read(&f, path, &err) == 0 && f.n == 1 && strcmp(f.t[0].name, "v") == 0,
           "old file damaged by a failed save: %s", err.msg);
    if (f.buf) st_free(&f);
    unlink(path);
    st_writer_free(&wr);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/tabula_st_XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
    test_round_trip();
    test_python_file();
    test_malformed();
    test_failed_saves();
    rmdir(tmpdir);
    return test_finish();
}
