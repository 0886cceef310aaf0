// test_safetensors.c: why it exists: safetensors is the one file format of
// tabula's weights (checkpoints, snapshots, the PyTorch fixtures), and the files
// come from outside: other tools, other machines, half-copied downloads. The
// reader must take what Python's safetensors writes and refuse every malformed
// header or offset with a message naming the file, never read out of bounds;
// the writer must round-trip everything and never leave a partial file where
// a good one was (missing folder, write error mid-file), never turn a symlink,
// FIFO or device into a plain file, keep the mode, and clean up after a save
// that was killed half-way.
#define _DEFAULT_SOURCE
#include "safetensors.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <sys/wait.h>

#include "test.h"

static char tmpdir[256];

// Removes the temp folder and whatever a case left in it.
static void remove_tmpdir(void) {
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
}

// The temp folder of this run, made on first use.
static const char *tmp_dir(void) {
    if (!tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/tabula_st_XXXXXX", t && *t ? t : "/tmp");
        CHECK(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmp_dir(), name);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f, "cannot create %s", path);
    CHECK(fwrite(data, 1, n, f) == n, "write %s", path);
    fclose(f);
}

// Entries in the temp folder whose name contains ".tmp." (left-over partial saves).
static int count_tmp_files(void) {
    DIR *d = opendir(tmp_dir());
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

// The round-trip file: five tensors (F32, U8, a scalar I64, an empty one,
// BF16) and metadata with a replaced key and escapes, written once to
// model.safetensors by saved_model() and kept for the cases that read it.
static float w[2 * 3 * 4];
static uint8_t u8[5] = {0, 1, 127, 128, 255};
static int64_t step = -1234567890123ll;
static uint16_t bf[3] = {0x3f80, 0xc000, 0x7f80};
static StWriter wr;
static char path[512];

static void saved_model(void) {
    static int done;
    if (done) return;
    done = 1;
    for (int i = 0; i < 24; i++) w[i] = 0.25f * (float)i - 3.0f;
    int64_t sw[3] = {2, 3, 4}, su[1] = {5}, sb[2] = {1, 3}, sz[2] = {0, 7};
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

    tmp_path(path, sizeof path, "model.safetensors");
    TbErr err = {{0}};
    EXPECT(st_writer_save(&wr, path, &err) == 0, "save: %s", err.msg);
    EXPECT(count_tmp_files() == 0, "temp file left after a save");
}

// Every tensor, dtype, shape and metadata value comes back; the layout is the
// format's (8-aligned header padded with spaces, data right after).
TEST_IMPL(round_trip_keeps_tensors_metadata_and_layout) {
    saved_model();
    TbErr err = {{0}};
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
}

TEST_IMPL(saving_again_replaces_the_file_whole) {
    saved_model();
    TbErr err = {{0}};
    StFile f;
    const StTensor *t;
    w[0] = 42.0f;
    EXPECT(st_writer_save(&wr, path, &err) == 0, "second save: %s", err.msg);
    EXPECT(st_read(&f, path, &err) == 0, "read second save: %s", err.msg);
    t = st_find(&f, "enc.0.weight");
    float first;
    if (t) memcpy(&first, t->data, 4);
    EXPECT(t && first == 42.0f, "overwrite did not take");
    st_free(&f);
    st_writer_free(&wr);
}

TEST_IMPL(empty_writer_gives_a_valid_empty_file) {
    tmp_path(path, sizeof path, "model.safetensors");
    TbErr err = {{0}};
    StFile f;
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
TEST_IMPL(python_written_file_reads_back) {
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

// The template of the malformed cases: one F32 tensor.
static const char *const T = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";

// Sanity: the template itself is valid, so each bad case fails for its own reason.
TEST_IMPL(template_header_is_valid) {
    char p[512];
    tmp_path(p, sizeof p, "ok.safetensors");
    write_st(p, T, 4);
    StFile f;
    TbErr err = {{0}};
    EXPECT(st_read(&f, p, &err) == 0, "template rejected: %s", err.msg);
    st_free(&f);
    unlink(p);
}

// Too short for the size field, or a header size past the file or over 100 MB.
TEST_IMPL(short_file_or_bad_header_size_rejected) {
    expect_bad_bytes("zero.st", "", 0, "shorter than");
    expect_bad_bytes("five.st", "\x10\0\0\0\0", 5, "shorter than");
    expect_bad_bytes("huge_n.st", "\x00\x10\x00\x00\x00\x00\x00\x00{}", 10, "larger than the file");
    expect_bad_bytes("over100mb.st", "\x00\x00\x00\x08\x00\x00\x00\x00{}", 10, "100 MB");
    expect_bad_bytes("max_n.st", "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10, "100 MB");
}

TEST_IMPL(header_that_is_not_json_rejected) {
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
}

// Valid JSON, but not a valid safetensors entry.
TEST_IMPL(bad_tensor_entries_rejected) {
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
}

// Offsets that point outside the data, disagree with the shape, overflow,
// overlap, or leave bytes unused.
TEST_IMPL(bad_data_offsets_rejected) {
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
}

// Duplicate names, bad __metadata__, empty names.
TEST_IMPL(bad_names_and_metadata_rejected) {
    expect_bad("dup.st",
               "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
               2, "appears twice");
    expect_bad("meta_int.st", "{\"__metadata__\":{\"k\":1}}", 0, "must be strings");
    expect_bad("meta_arr.st", "{\"__metadata__\":[\"k\"]}", 0, "must be an object");
    expect_bad("meta_twice.st", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "two __metadata__");
    expect_bad("empty_name.st", "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
               "empty or longer");
}

// An unknown key with a deeply nested value: no recursion blow-up.
TEST_IMPL(deeply_nested_unknown_key_rejected) {
    static char deep[4096];
    int n = sprintf(deep, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":");
    for (int i = 0; i < 1000; i++) deep[n++] = '[';
    for (int i = 0; i < 1000; i++) deep[n++] = ']';
    strcpy(deep + n, "}}");
    expect_bad("deep.st", deep, 1, "nested too deeply");
}

// Unknown keys with ordinary values are skipped.
TEST_IMPL(unknown_keys_are_skipped) {
    char p[512];
    tmp_path(p, sizeof p, "extra_keys.st");
    write_st(p,
             "{\"a\":{\"x\":{\"y\":[1,-2.5e3,true,null,\"s\\u00e9\"]},\"dtype\":\"U8\","
             "\"shape\":[2],\"data_offsets\":[0,2]}}",
             2);
    StFile f;
    TbErr err = {{0}};
    EXPECT(st_read(&f, p, &err) == 0 && f.n == 1 && f.t[0].nbytes == 2,
           "unknown keys not skipped: %s", err.msg);
    if (f.buf) st_free(&f);
    unlink(p);
}

TEST_IMPL(missing_file_and_folder_are_named) {
    StFile f;
    TbErr err = {{0}};
    EXPECT(st_read(&f, "/nonexistent/w.safetensors", &err) == -1 &&
               strcmp(err.msg, "/nonexistent/w.safetensors: No such file or directory") == 0,
           "missing file: '%s'", err.msg);
    EXPECT(st_read(&f, tmp_dir(), &err) == -1 && strstr(err.msg, tmpdir), "folder: '%s'", err.msg);
}

// A writer with one 16 KiB tensor.
static void big_writer(StWriter *bw) {
    static float big[4096];
    for (int i = 0; i < 4096; i++) big[i] = (float)i;
    int64_t shape[1] = {4096};
    st_writer_init(bw);
    st_writer_add(bw, "big", "F32", 1, shape, big);
}

TEST_IMPL(save_to_missing_folder_names_it) {
    StWriter bw;
    big_writer(&bw);
    TbErr err = {{0}};
    EXPECT(st_writer_save(&bw, "/nonexistent/dir/w.safetensors", &err) == -1 &&
               strcmp(err.msg, "/nonexistent/dir/w.safetensors: No such file or directory") == 0,
           "missing folder: '%s'", err.msg);
    st_writer_free(&bw);
}

TEST_IMPL(failed_save_keeps_old_file_and_leaves_no_temp) {
    StWriter bw;
    big_writer(&bw);
    TbErr err = {{0}};
    // A valid file, then a save that fails mid-write (file size limit: the same
    // path through write() as a full disk). The old file must survive intact and
    // no temp file may be left.
    char keep[512];
    tmp_path(keep, sizeof keep, "keep.safetensors");
    int64_t one[1] = {1};
    float v = 7.0f;
    StWriter small;
    st_writer_init(&small);
    st_writer_add(&small, "v", "F32", 1, one, &v);
    EXPECT(st_writer_save(&small, keep, &err) == 0, "small save: %s", err.msg);
    st_writer_free(&small);

    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    lim = old;
    lim.rlim_cur = 4096;  // the big tensor alone is 16 KiB
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    int rc = st_writer_save(&bw, keep, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "restore rlimit");
    signal(SIGXFSZ, prev);
    EXPECT(rc == -1, "save past the file size limit succeeded");
    EXPECT(strstr(err.msg, keep) && strstr(err.msg, "File too large"), "write error: '%s'", err.msg);
    EXPECT(count_tmp_files() == 0, "temp file left after a failed save");
    StFile f;
    EXPECT(st_read(&f, keep, &err) == 0 && f.n == 1 && strcmp(f.t[0].name, "v") == 0,
           "old file damaged by a failed save: %s", err.msg);
    if (f.buf) st_free(&f);
    unlink(keep);
    st_writer_free(&bw);
}

// One tiny file's writer (a single F32 value).
static void one_value(StWriter *w, float *v) {
    static int64_t one[1] = {1};
    st_writer_init(w);
    st_writer_add(w, "v", "F32", 1, one, v);
}

// A save through a symlink writes the file it points to; the link stays.
TEST_IMPL(save_through_symlink_keeps_the_link) {
    char target[512], link[512];
    tmp_path(target, sizeof target, "target.safetensors");
    tmp_path(link, sizeof link, "link.safetensors");
    write_file(target, "old", 3);
    CHECK(symlink(target, link) == 0, "symlink");
    StWriter w;
    float v = 3.0f;
    one_value(&w, &v);
    TbErr err = {{0}};
    EXPECT(st_writer_save(&w, link, &err) == 0, "%s", err.msg);
    struct stat st;
    EXPECT(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the symlink was replaced by a file");
    StFile f;
    EXPECT(st_read(&f, target, &err) == 0 && f.n == 1, "target not written: %s", err.msg);
    if (f.buf) st_free(&f);
    st_writer_free(&w);
    unlink(link);
    unlink(target);
}

// Saving again keeps the file's mode (a 0600 file stays private).
TEST_IMPL(save_keeps_the_file_mode) {
    char path[512];
    tmp_path(path, sizeof path, "private.safetensors");
    write_file(path, "old", 3);
    CHECK(chmod(path, 0600) == 0, "chmod");
    StWriter w;
    float v = 1.0f;
    one_value(&w, &v);
    TbErr err = {{0}};
    EXPECT(st_writer_save(&w, path, &err) == 0, "%s", err.msg);
    struct stat st;
    EXPECT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o, want 600", st.st_mode & 0777);
    st_writer_free(&w);
    unlink(path);
}

static void *drain_fifo(void *arg) {
    FILE *f = fopen(arg, "rb");
    static char buf[4096];
    static size_t n;
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    return &n;
}

// A FIFO (or a device) at the path is written into, not replaced by a file.
TEST_IMPL(save_into_a_fifo_streams_it) {
    char path[512];
    tmp_path(path, sizeof path, "pipe.safetensors");
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    pthread_t th;
    pthread_create(&th, NULL, drain_fifo, path);
    StWriter w;
    float v = 2.0f;
    one_value(&w, &v);
    TbErr err = {{0}};
    EXPECT(st_writer_save(&w, path, &err) == 0, "%s", err.msg);
    void *got;
    pthread_join(th, &got);
    struct stat st;
    EXPECT(stat(path, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
    EXPECT(*(size_t *)got > 8 + 4, "the reader got %zu bytes", *(size_t *)got);
    EXPECT(st_writer_save(&w, tmp_dir(), &err) == -1 && strstr(err.msg, "is a folder"), "folder: %s", err.msg);
    st_writer_free(&w);
    unlink(path);
}

// A save killed half-way leaves PATH.tmp.PID.*; the next save removes those of
// writers that are gone and keeps a live writer's.
TEST_IMPL(stale_temp_files_are_cleaned_up) {
    char path[512], dead[600], live[600];
    tmp_path(path, sizeof path, "w.safetensors");
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);  // a pid that no longer runs
    snprintf(dead, sizeof dead, "%s.tmp.%d.AbC123", path, (int)child);
    snprintf(live, sizeof live, "%s.tmp.%d.XyZ789", path, (int)getppid());
    write_file(dead, "partial", 7);
    write_file(live, "partial", 7);
    StWriter w;
    float v = 5.0f;
    one_value(&w, &v);
    TbErr err = {{0}};
    EXPECT(st_writer_save(&w, path, &err) == 0, "%s", err.msg);
    EXPECT(access(dead, F_OK) != 0, "a dead writer's temp file stayed");
    EXPECT(access(live, F_OK) == 0, "a live writer's temp file was removed");
    unlink(live);
    unlink(path);
    st_writer_free(&w);
}

TEST_MAIN(TEST_ENTRY(round_trip_keeps_tensors_metadata_and_layout),
          TEST_ENTRY(saving_again_replaces_the_file_whole), TEST_ENTRY(empty_writer_gives_a_valid_empty_file),
          TEST_ENTRY(python_written_file_reads_back), TEST_ENTRY(template_header_is_valid),
          TEST_ENTRY(short_file_or_bad_header_size_rejected), TEST_ENTRY(header_that_is_not_json_rejected),
          TEST_ENTRY(bad_tensor_entries_rejected), TEST_ENTRY(bad_data_offsets_rejected),
          TEST_ENTRY(bad_names_and_metadata_rejected), TEST_ENTRY(deeply_nested_unknown_key_rejected),
          TEST_ENTRY(unknown_keys_are_skipped), TEST_ENTRY(missing_file_and_folder_are_named),
          TEST_ENTRY(save_to_missing_folder_names_it), TEST_ENTRY(failed_save_keeps_old_file_and_leaves_no_temp),
          TEST_ENTRY(save_through_symlink_keeps_the_link), TEST_ENTRY(save_keeps_the_file_mode),
          TEST_ENTRY(save_into_a_fifo_streams_it), TEST_ENTRY(stale_temp_files_are_cleaned_up))
