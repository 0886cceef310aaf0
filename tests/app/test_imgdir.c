// test_imgdir.c: why it exists: "dir:FOLDER" lets a user train the mirror on
// their own photos, in a gallery that runs unattended for weeks. The folder
// must play in name order and loop, each image's size must be known before it
// is read (the trainer fits it), pixels must be as ffmpeg decodes them (PNG
// exactly; JPEG exactly as libjpeg-turbo, checked against Pillow) and grey,
// palette, 16-bit and alpha PNGs must become the right RGB8; a folder that is
// empty, has no images or is missing must give a message that names it. A
// corrupt, truncated or hostile file (a crafted JPEG that overflowed stb_image
// 2.27, a PNG declaring 16384x16384), a FIFO or a folder with an image's name
// must be skipped with one log line naming it while the other images keep
// coming, never a crash, a hang or a stalled picture; only a folder where
// every image fails is an error. Checked on the real photo folder, on small
// bad folders made here and on images written here with libpng and libjpeg.
//
// The photo and bad-folder groups walk one source or one folder through its
// states in order; each case first brings it up to where it starts, so any
// case also runs alone. The decoder cases stand alone.
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>
#include <png.h>

#include "app_sources.h"
#include "imgdecode.h"
#include "test.h"

// Sorted by name. Mean RGB from ffmpeg 5.1 (-pix_fmt rgb24); its JPEG decoder
// is not libjpeg's (libjpeg-turbo comes out up to 1.13 higher in green here;
// stb_image did up to 1.03), so means get a tolerance of 1.5. PNG pixels are
// exact; JPEG pixels are checked exactly against Pillow below.
static const struct {
    const char *name;
    int w, h;
    double mean[3];
} PHOTOS[15] = {
    {"animal_gecko.jpg", 512, 340, {50.90, 57.19, 39.25}},
    {"animal_leopard.jpg", 512, 172, {120.91, 109.50, 93.44}},
    {"animal_tiger.jpg", 512, 410, {81.39, 71.20, 61.08}},
    {"bird_golden_eagle_gray.png", 464, 512, {108.27, 108.27, 108.27}},
    {"bird_peacock.jpg", 512, 310, {22.64, 116.54, 102.35}},
    {"clouds_mountain_landscape.jpg", 512, 220, {77.35, 122.80, 156.14}},
    {"fire_forest.jpg", 512, 386, {106.98, 80.45, 60.35}},
    {"flower_dahlia.jpg", 512, 342, {54.70, 72.52, 56.65}},
    {"flower_plumeria.jpg", 372, 512, {179.54, 121.78, 126.52}},
    {"forest_birch_trunks.jpg", 512, 342, {139.42, 138.89, 136.13}},
    {"grass_texture_gray.png", 512, 512, {118.22, 118.22, 118.22}},
    {"night_moon.jpg", 200, 200, {84.65, 84.61, 84.82}},
    {"ocean_wave_surfer.jpg", 512, 280, {114.11, 161.10, 165.49}},
    {"sunset_clouds_elephant.jpg", 512, 342, {91.76, 81.31, 106.89}},
    {"sunset_sky_hummingbird.jpg", 512, 342, {163.15, 75.56, 54.33}},
};

// ---------------------------------------------------------------- the photo folder

static Source *photos;
static uint8_t *first, *buf;  // the first photo's pixels, the last read
static size_t first_n;

static void close_photos(void) {
    free(first);
    free(buf);
    source_close(photos);
}

// Opens the folder and reads its 15 photos, in name order.
static void read_all_photos(void) {
    const char *dir = test_data("photos_nature");
    TbErr err = {{0}};
    Source *s = source_open_imgdir(dir, &err);
    EXPECT(s != NULL, "open %s: %s", dir, err.msg);
    if (!s) return;
    photos = s;
    atexit(close_photos);
    EXPECT(s->fps == 0, "fps %g", s->fps);
    for (int i = 0; i < 15; i++) {
        // The size of the next frame is known before reading it.
        EXPECT(s->width == PHOTOS[i].w && s->height == PHOTOS[i].h, "%s: size %dx%d before read",
               PHOTOS[i].name, s->width, s->height);
        size_t n = (size_t)s->width * s->height * 3;
        buf = realloc(buf, n);
        if (s->read(s, buf, &err) != 1) {
            EXPECT(0, "read %d (%s): %s", i, PHOTOS[i].name, err.msg);
            break;
        }
        double m[3] = {0, 0, 0};
        int grey = 1;
        for (size_t k = 0; k < n; k += 3) {
            m[0] += buf[k], m[1] += buf[k + 1], m[2] += buf[k + 2];
            grey &= buf[k] == buf[k + 1] && buf[k] == buf[k + 2];
        }
        for (int c = 0; c < 3; c++) {
            char what[96];
            snprintf(what, sizeof what, "%s mean channel %d", PHOTOS[i].name, c);
            EXPECT_NEAR(m[c] / (double)(n / 3), PHOTOS[i].mean[c], 1.5, what);
        }
        if (strstr(PHOTOS[i].name, "_gray.png")) {
            EXPECT(grey, "%s: grey PNG not expanded to R=G=B", PHOTOS[i].name);
        }
        if (strcmp(PHOTOS[i].name, "bird_golden_eagle_gray.png") == 0) {
            // ffmpeg: (0,0) = 25, centre (232,256) = 26.
            EXPECT(buf[0] == 25 && buf[((size_t)256 * 464 + 232) * 3] == 26, "eagle pixels %d %d",
                   buf[0], buf[((size_t)256 * 464 + 232) * 3]);
        }
        if (i == 0) {
            first = malloc(n);
            memcpy(first, buf, n);
            first_n = n;
        }
    }
}

// After the last photo: the first again, same size and pixels.
static void loop_to_first(void) {
    Source *s = photos;
    if (!s) return;
    TbErr err = {{0}};
    EXPECT(s->width == PHOTOS[0].w && s->height == PHOTOS[0].h, "after the loop: %dx%d", s->width,
           s->height);
    if (first && (size_t)s->width * s->height * 3 == first_n) {
        buf = realloc(buf, first_n);
        EXPECT(s->read(s, buf, &err) == 1, "read after loop: %s", err.msg);
        EXPECT(memcmp(buf, first, first_n) == 0, "16th frame is not the first photo");
        EXPECT(s->width == PHOTOS[1].w && s->height == PHOTOS[1].h, "second lap: %dx%d", s->width,
               s->height);
    }
}

static void (*const photo_stages[])(void) = {read_all_photos, loop_to_first};
static int photos_done;
static void photos_to(int k) {
    while (photos_done <= k) photo_stages[photos_done++]();
}

TEST_IMPL(photos_in_name_order_sizes_ahead_means_as_ffmpeg) { photos_to(0); }
TEST_IMPL(photos_loop_to_the_first) { photos_to(1); }

// Through the spec: once the app registers its kinds, dir: opens a folder.
TEST_IMPL(dir_spec_opens_the_folder) {
    const char *dir = test_data("photos_nature");
    TbErr err = {{0}};
    Source *s;
    app_register_sources();
    char spec[1100];
    snprintf(spec, sizeof spec, "dir:%s", dir);
    s = source_open(spec, NULL, &err);
    EXPECT(s != NULL, "source_open(\"%s\"): %s", spec, err.msg);
    if (s) EXPECT(s->width == PHOTOS[0].w && s->height == PHOTOS[0].h, "dir: spec opened %dx%d",
                  s->width, s->height);
    source_close(s);
}

// ---------------------------------------------------------------- helpers

// stderr into a temp file while a folder is played, so the test can count the
// log lines; what was captured is echoed back afterwards.
static char logbuf[16384];
static FILE *logf_;
static int saved_stderr = -1;

static void log_begin(void) {
    fflush(stderr);
    logf_ = tmpfile();
    CHECK(logf_, "tmpfile");
    saved_stderr = dup(2);
    CHECK(saved_stderr >= 0 && dup2(fileno(logf_), 2) >= 0, "redirect stderr");
}

static const char *log_end(void) {
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(logf_);
    size_t n = fread(logbuf, 1, sizeof logbuf - 1, logf_);
    logbuf[n] = 0;
    fclose(logf_);
    fputs(logbuf, stderr);
    return logbuf;
}

// Lines of the log that contain needle.
static int log_lines(const char *log, const char *needle) {
    int k = 0;
    for (const char *p = log; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        if (strstr(line, needle)) k++;
        p += len + (e != NULL);
    }
    return k;
}

// A read that blocks (a FIFO opened for reading waits for a writer) ends the
// program with a message instead of hanging CTest.
static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "test_imgdir: blocked for 10 s (a FIFO was opened?)\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(1);
}
static void guard(int seconds) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)seconds);
}

static size_t read_whole(const char *path, uint8_t *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

// ---------------------------------------------------------------- bad folders

static char tmpdir[256];

static void put_file(const char *name, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f, "create %s", p);
    CHECK(fwrite(data, 1, n, f) == n, "write %s", p);
    fclose(f);
}

static void rm_file(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    unlink(p);
}

static void remove_tmpdir(void) {
    const char *names[] = {"notes.txt", ".hidden.png", "c.png",      "B.JPEG",   "a.jpg",
                           "d.jpg",     "0_pipe.jpg",  "e_huff.jpg", "huge.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) rm_file(names[i]);
    char p[512];
    snprintf(p, sizeof p, "%s/sub.png", tmpdir);
    rmdir(p);
    rmdir(tmpdir);
}

// Reads n frames; each must come (rc 1) at the size announced before it. 
// Returns how many did.
static int play(Source *s, int n, int w, int h) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    TbErr err = {{0}};
    int got = 0;
    for (int i = 0; i < n; i++) {
        if (s->width != w || s->height != h) break;
        if (s->read(s, rgb, &err) != 1) break;
        got++;
    }
    free(rgb);
    return got;
}

static void empty_folder(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/tabula_imgdir_XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
    atexit(remove_tmpdir);
    TbErr err = {{0}};
    Source *s = source_open_imgdir(tmpdir, &err);
    EXPECT(s == NULL && strstr(err.msg, tmpdir) && strstr(err.msg, "empty"), "empty: '%s'", err.msg);
}

static void no_images(void) {
    TbErr err = {{0}};
    Source *s;
    put_file("notes.txt", "hello", 5);
    put_file(".hidden.png", "junk", 4);  // hidden: not an image candidate
    s = source_open_imgdir(tmpdir, &err);
    EXPECT(s == NULL && strstr(err.msg, tmpdir) && strstr(err.msg, "no PNG or JPEG"),
           "no images: '%s'", err.msg);
}

// Only a corrupt image: fails at open, naming the file.
static void lone_corrupt_image(void) {
    TbErr err = {{0}};
    Source *s;
    put_file("c.png", "\x89PNG\r\n\x1a\n garbage", 17);
    s = source_open_imgdir(tmpdir, &err);
    EXPECT(s == NULL && strstr(err.msg, "c.png: cannot decode image"), "corrupt: '%s'", err.msg);
}

// Two good copies (upper-case extensions count) before the corrupt one in
// name order ("B.JPEG" < "a.jpg" < "c.png"). It used to stop the folder when
// reached (every read failed, so the capture thread reopened it each second,
// logging each time); now it is skipped with one log line and the two good
// ones keep coming, lap after lap.
static uint8_t jpg[65536];
static size_t jpg_n;  // 0: night_moon.jpg could not be read

static void corrupt_third_image(void) {
    TbErr err = {{0}};
    Source *s;
    jpg_n = read_whole(test_data("photos_nature/night_moon.jpg"), jpg, sizeof jpg);
    EXPECT(jpg_n > 0, "night_moon.jpg missing");
    if (!jpg_n) return;
    put_file("B.JPEG", jpg, jpg_n);
    put_file("a.jpg", jpg, jpg_n);
    s = source_open_imgdir(tmpdir, &err);
    EXPECT(s != NULL, "open with a corrupt third image: %s", err.msg);
    if (!s) return;
    EXPECT(s->width == 200 && s->height == 200, "moon copy %dx%d", s->width, s->height);
    log_begin();
    int got = play(s, 9, 200, 200);
    const char *log = log_end();
    EXPECT(got == 9, "%d of 9 frames came past the corrupt image", got);
    EXPECT(log_lines(log, "c.png") == 1 && strstr(log, tmpdir) && strstr(log, "c.png: cannot decode"),
           "want one line naming c.png, got:\n%s", log);
    source_close(s);
}

// A truncated JPEG (first 300 bytes): likewise skipped, one line naming it.
static void truncated_jpeg(void) {
    TbErr err = {{0}};
    if (!jpg_n) return;
    rm_file("c.png");
    put_file("d.jpg", jpg, 300);
    Source *s = source_open_imgdir(tmpdir, &err);
    EXPECT(s != NULL, "open with a truncated JPEG: %s", err.msg);
    if (!s) return;
    log_begin();
    int got = play(s, 7, 200, 200);
    const char *log = log_end();
    EXPECT(got == 7, "%d of 7 frames came past the truncated JPEG", got);
    EXPECT(log_lines(log, "d.jpg") == 1, "want one line naming d.jpg, got:\n%s", log);
    source_close(s);
}

// A FIFO named like an image (first in name order, so it is met at open) and
// a folder named "sub.png": refused at once, each logged once, nothing blocks.
static void fifo_in_folder(void) {
    TbErr err = {{0}};
    char p[512];
    if (!jpg_n) return;
    snprintf(p, sizeof p, "%s/0_pipe.jpg", tmpdir);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo %s", p);
    snprintf(p, sizeof p, "%s/sub.png", tmpdir);
    CHECK(mkdir(p, 0700) == 0, "mkdir %s", p);
    guard(10);
    log_begin();
    Source *s = source_open_imgdir(tmpdir, &err);
    int got = s ? play(s, 8, 200, 200) : 0;
    const char *log = log_end();
    alarm(0);
    EXPECT(s != NULL, "open with a FIFO: %s", err.msg);
    EXPECT(got == 8, "%d of 8 frames", got);
    EXPECT(log_lines(log, "0_pipe.jpg") == 1 && strstr(log, "FIFO"), "want one line for the FIFO:\n%s", log);
    EXPECT(log_lines(log, "sub.png") == 1 && strstr(log, "folder"), "want one line for sub.png:\n%s", log);
    EXPECT(log_lines(log, "d.jpg") == 1, "want one line for d.jpg:\n%s", log);
    source_close(s);
}

static size_t crafted_huffman_jpeg(uint8_t *out, size_t cap);
static size_t png_with_size(uint8_t *out, uint32_t w, uint32_t h);

// No good image left: the FIFO, the folder, the truncated JPEG, the crafted
// JPEG that overflowed stb_image 2.27 and a PNG declaring 16384x16384. One
// clear error at open and no per-file lines (a capture thread retrying every
// second logs that error once, not five lines a second).
static void all_bad(void) {
    TbErr err = {{0}};
    static uint8_t b[65536 + 512];
    if (!jpg_n) return;
    rm_file("B.JPEG");
    rm_file("a.jpg");
    size_t n = crafted_huffman_jpeg(b, sizeof b);
    EXPECT(n > jpg_n, "crafted JPEG made");
    put_file("e_huff.jpg", b, n);
    put_file("huge.png", b, png_with_size(b, 16384, 16384));
    guard(10);
    for (int k = 0; k < 2; k++) {
        log_begin();
        Source *s = source_open_imgdir(tmpdir, &err);
        const char *log = log_end();
        EXPECT(s == NULL && strstr(err.msg, tmpdir) && strstr(err.msg, "none of its 5 images can be read") &&
                   strstr(err.msg, "0_pipe.jpg"),
               "open %d: '%s'", k, err.msg);
        EXPECT(log_lines(log, "skipping") == 0, "open %d logged per-file lines:\n%s", k, log);
        source_close(s);
    }
    alarm(0);
}

// Good images again; then they vanish while it plays (a disk unplugged). The
// read that finds none left still returns its frame; the next returns -1 with
// the reason, and so does any after it, with no more log lines.
static void images_lost(void) {
    TbErr err = {{0}};
    if (!jpg_n) return;
    put_file("B.JPEG", jpg, jpg_n);
    put_file("a.jpg", jpg, jpg_n);
    guard(10);
    Source *s = source_open_imgdir(tmpdir, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    EXPECT(play(s, 3, 200, 200) == 3, "three frames");
    rm_file("B.JPEG");
    rm_file("a.jpg");
    uint8_t *rgb = malloc(200 * 200 * 3);
    log_begin();
    int r1 = s->read(s, rgb, &err);
    int r2 = s->read(s, rgb, &err);
    TbErr e2 = err;
    const char *log1 = log_end();
    int lines = log_lines(log1, "skipping"), la = log_lines(log1, "a.jpg"), lb = log_lines(log1, "B.JPEG");
    log_begin();
    int r3 = s->read(s, rgb, &err);
    const char *log2 = log_end();
    alarm(0);
    EXPECT(r1 == 1, "the read that finds none left still returns its frame: %d", r1);
    EXPECT(r2 == -1 && strstr(e2.msg, tmpdir) && strstr(e2.msg, "none of its 7 images can be read any more"),
           "then -1 with the reason: %d '%s'", r2, e2.msg);
    EXPECT(lines == 2 && la == 1 && lb == 1, "one line per vanished image: %d lines, %d a.jpg, %d B.JPEG",
           lines, la, lb);
    EXPECT(r3 == -1 && strcmp(err.msg, e2.msg) == 0 && log_lines(log2, "skipping") == 0,
           "again: %d '%s', log '%s'", r3, err.msg, log2);
    free(rgb);
    source_close(s);
}

static void (*const folder_stages[])(void) = {empty_folder,   no_images, lone_corrupt_image,
                                              corrupt_third_image, truncated_jpeg, fifo_in_folder,
                                              all_bad,        images_lost};
static int folder_done;
static void folder_to(int k) {
    while (folder_done <= k) folder_stages[folder_done++]();
}

TEST_IMPL(empty_folder_rejected_naming_it) { folder_to(0); }
TEST_IMPL(folder_without_images_rejected_naming_it) { folder_to(1); }
TEST_IMPL(lone_corrupt_image_fails_at_open_naming_it) { folder_to(2); }
TEST_IMPL(corrupt_third_image_skipped_with_one_message) { folder_to(3); }
TEST_IMPL(truncated_jpeg_skipped_with_one_message) { folder_to(4); }
TEST_IMPL(fifo_and_folder_in_folder_skipped_without_blocking) { folder_to(5); }
TEST_IMPL(all_images_bad_one_clear_error) { folder_to(6); }
TEST_IMPL(images_lost_while_playing_fail_once_with_reason) { folder_to(7); }

TEST_IMPL(missing_folder_named_with_reason) {
    TbErr err = {{0}};
    Source *s = source_open_imgdir("/nonexistent/photos", &err);
    EXPECT(s == NULL && strcmp(err.msg, "/nonexistent/photos: No such file or directory") == 0,
           "missing folder: '%s'", err.msg);
}

// ---------------------------------------------------------------- PNGs made here

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p, "out of memory");
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void png_put(png_structp png, png_bytep d, size_t n) { buf_put(png_get_io_ptr(png), d, n); }
static void png_flush_none(png_structp png) { (void)png; }

// A PNG of w x h from rows of packed samples (PNG byte order), as libpng
// writes it. palette/trns may be NULL.
static Buf make_png(int w, int h, int type, int depth, int interlace, const uint8_t *pix, size_t stride,
                    const png_color *palette, int npal, const uint8_t *trns, int ntrns) {
    Buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    CHECK(png && info && !setjmp(png_jmpbuf(png)), "libpng write");
    png_set_write_fn(png, &b, png_put, png_flush_none);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    png_bytep rows[64];
    CHECK(h <= 64, "small images only");
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(pix + (size_t)y * stride);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return b;
}

// Decodes b; fails the case (returning 0) unless it is w x h.
static int decode_ok(Buf *b, const char *what, int w, int h, Image *im) {
    TbErr err = {{0}};
    int rc = img_decode(b->p, b->n, what, im, &err);
    free(b->p);
    b->p = NULL;
    EXPECT(rc == 0, "%s: %s", what, err.msg);
    if (rc) return 0;
    EXPECT(im->width == w && im->height == h, "%s: %dx%d", what, im->width, im->height);
    return im->width == w && im->height == h;
}

// Pixel (x, y) of an image equals r, g, b.
static int px_is(const Image *im, int x, int y, int r, int g, int b) {
    const uint8_t *p = im->rgb + ((size_t)y * im->width + x) * 3;
    return p[0] == r && p[1] == g && p[2] == b;
}

TEST_IMPL(png_grey_becomes_rgb) {
    Image im;
    // 8-bit: 4x2 of distinct values.
    uint8_t g8[8] = {0, 1, 64, 127, 128, 200, 254, 255};
    Buf b = make_png(4, 2, PNG_COLOR_TYPE_GRAY, 8, 0, g8, 4, NULL, 0, NULL, 0);
    if (decode_ok(&b, "grey8", 4, 2, &im)) {
        int good = 1;
        for (int i = 0; i < 8; i++) good &= px_is(&im, i % 4, i / 4, g8[i], g8[i], g8[i]);
        EXPECT(good, "grey8: R=G=B=the grey");
        img_free(&im);
    }
    // 1-bit (8 pixels in a byte, MSB first) and 4-bit (two per byte): 0..max
    // spread to 0..255.
    uint8_t g1[1] = {0xA5};  // 1 0 1 0 0 1 0 1
    b = make_png(8, 1, PNG_COLOR_TYPE_GRAY, 1, 0, g1, 1, NULL, 0, NULL, 0);
    if (decode_ok(&b, "grey1", 8, 1, &im)) {
        int good = 1;
        for (int x = 0; x < 8; x++) {
            int v = (0xA5 >> (7 - x)) & 1 ? 255 : 0;
            good &= px_is(&im, x, 0, v, v, v);
        }
        EXPECT(good, "grey1: bits become 0 and 255");
        img_free(&im);
    }
    uint8_t g4[2] = {0x0F, 0x7A};  // 0, 15, 7, 10
    b = make_png(4, 1, PNG_COLOR_TYPE_GRAY, 4, 0, g4, 2, NULL, 0, NULL, 0);
    if (decode_ok(&b, "grey4", 4, 1, &im)) {
        EXPECT(px_is(&im, 0, 0, 0, 0, 0) && px_is(&im, 1, 0, 255, 255, 255) &&
                   px_is(&im, 2, 0, 119, 119, 119) && px_is(&im, 3, 0, 170, 170, 170),
               "grey4: v*17");
        img_free(&im);
    }
    // Grey + alpha: the alpha is dropped.
    uint8_t ga[6] = {10, 0, 100, 128, 250, 255};
    b = make_png(3, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, ga, 6, NULL, 0, NULL, 0);
    if (decode_ok(&b, "grey+alpha", 3, 1, &im)) {
        EXPECT(px_is(&im, 0, 0, 10, 10, 10) && px_is(&im, 1, 0, 100, 100, 100) &&
                   px_is(&im, 2, 0, 250, 250, 250),
               "grey+alpha: the grey, alpha dropped");
        img_free(&im);
    }
}

TEST_IMPL(png_palette_becomes_rgb) {
    Image im;
    const png_color pal[4] = {{255, 0, 0}, {0, 128, 0}, {1, 2, 3}, {250, 240, 230}};
    const uint8_t trns[2] = {0, 128};  // transparency on entries 0 and 1: dropped
    uint8_t i8[6] = {3, 2, 1, 0, 1, 3};
    Buf b = make_png(3, 2, PNG_COLOR_TYPE_PALETTE, 8, 0, i8, 3, pal, 4, trns, 2);
    if (decode_ok(&b, "palette8", 3, 2, &im)) {
        int good = 1;
        for (int i = 0; i < 6; i++) {
            const png_color *c = &pal[i8[i]];
            good &= px_is(&im, i % 3, i / 3, c->red, c->green, c->blue);
        }
        EXPECT(good, "palette8 with tRNS: the palette colours, alpha dropped");
        img_free(&im);
    }
    uint8_t i2[1] = {0x1B};  // 2-bit indices 0 1 2 3
    b = make_png(4, 1, PNG_COLOR_TYPE_PALETTE, 2, 0, i2, 1, pal, 4, NULL, 0);
    if (decode_ok(&b, "palette2", 4, 1, &im)) {
        EXPECT(px_is(&im, 0, 0, 255, 0, 0) && px_is(&im, 1, 0, 0, 128, 0) && px_is(&im, 2, 0, 1, 2, 3) &&
                   px_is(&im, 3, 0, 250, 240, 230),
               "palette2: the palette colours");
        img_free(&im);
    }
}

// 16-bit samples (big-endian in the file) scale to 8 bits: v*255/65535,
// rounded (exact for v = k*257).
static int scale16(int v) { return (v * 255 + 32767) / 65535; }

TEST_IMPL(png_16bit_scales_to_8) {
    Image im;
    const int v[6] = {0, 257 * 1, 257 * 128, 65535, 0x1234, 0x80FF};
    uint8_t rgb16[12];
    for (int i = 0; i < 6; i++) rgb16[2 * i] = (uint8_t)(v[i] >> 8), rgb16[2 * i + 1] = (uint8_t)v[i];
    Buf b = make_png(2, 1, PNG_COLOR_TYPE_RGB, 16, 0, rgb16, 12, NULL, 0, NULL, 0);
    if (decode_ok(&b, "rgb16", 2, 1, &im)) {
        EXPECT(px_is(&im, 0, 0, 0, 1, 128) && px_is(&im, 1, 0, 255, scale16(0x1234), scale16(0x80FF)),
               "rgb16: %d %d %d %d %d %d", im.rgb[0], im.rgb[1], im.rgb[2], im.rgb[3], im.rgb[4], im.rgb[5]);
        img_free(&im);
    }
    uint8_t g16[4] = {0x12, 0x34, 0xFF, 0xFF};
    b = make_png(2, 1, PNG_COLOR_TYPE_GRAY, 16, 0, g16, 4, NULL, 0, NULL, 0);
    if (decode_ok(&b, "grey16", 2, 1, &im)) {
        int g = scale16(0x1234);
        EXPECT(px_is(&im, 0, 0, g, g, g) && px_is(&im, 1, 0, 255, 255, 255), "grey16");
        img_free(&im);
    }
    uint8_t rgba16[8] = {0xFF, 0xFF, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00};  // alpha 0: dropped
    b = make_png(1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, rgba16, 8, NULL, 0, NULL, 0);
    if (decode_ok(&b, "rgba16", 1, 1, &im)) {
        EXPECT(px_is(&im, 0, 0, 255, 128, 0), "rgba16: %d %d %d", im.rgb[0], im.rgb[1], im.rgb[2]);
        img_free(&im);
    }
}

TEST_IMPL(png_rgba_drops_alpha) {
    Image im;
    uint8_t rgba[16] = {10, 20, 30, 255, 40, 50, 60, 0, 70, 80, 90, 128, 255, 255, 255, 1};
    Buf b = make_png(2, 2, PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, rgba, 8, NULL, 0, NULL, 0);
    if (decode_ok(&b, "rgba8", 2, 2, &im)) {
        EXPECT(px_is(&im, 0, 0, 10, 20, 30) && px_is(&im, 1, 0, 40, 50, 60) && px_is(&im, 0, 1, 70, 80, 90) &&
                   px_is(&im, 1, 1, 255, 255, 255),
               "rgba8: the colour whatever the alpha");
        img_free(&im);
    }
}

TEST_IMPL(png_interlaced_same_as_plain) {
    uint8_t pix[13 * 11 * 3];
    for (size_t i = 0; i < sizeof pix; i++) pix[i] = (uint8_t)(i * 7 + i / 39);
    Image a, b;
    Buf pa = make_png(13, 11, PNG_COLOR_TYPE_RGB, 8, 0, pix, 39, NULL, 0, NULL, 0);
    Buf pb = make_png(13, 11, PNG_COLOR_TYPE_RGB, 8, 1, pix, 39, NULL, 0, NULL, 0);
    if (decode_ok(&pa, "plain", 13, 11, &a)) {
        EXPECT(memcmp(a.rgb, pix, sizeof pix) == 0, "plain RGB8 PNG: the pixels written");
        if (decode_ok(&pb, "interlaced", 13, 11, &b)) {
            EXPECT(memcmp(b.rgb, pix, sizeof pix) == 0, "Adam7 PNG: the same pixels");
            img_free(&b);
        }
        img_free(&a);
    }
    free(pb.p);
}

// ---------------------------------------------------------------- hostile files

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static size_t put_chunk(uint8_t *o, const char *type, const uint8_t *d, uint32_t n) {
    o[0] = (uint8_t)(n >> 24), o[1] = (uint8_t)(n >> 16), o[2] = (uint8_t)(n >> 8), o[3] = (uint8_t)n;
    memcpy(o + 4, type, 4);
    if (n) memcpy(o + 8, d, n);
    uint32_t c = crc32_png(o + 4, n + 4);
    o[8 + n] = (uint8_t)(c >> 24), o[9 + n] = (uint8_t)(c >> 16), o[10 + n] = (uint8_t)(c >> 8),
    o[11 + n] = (uint8_t)c;
    return 12 + n;
}

// A well-formed RGB8 PNG that declares w x h (CRCs right) and carries a few
// bytes of image data: a decoder that believes the header allocates w*h*3.
static size_t png_with_size(uint8_t *out, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01};  // 1x1 black
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        8, 2, 0, 0, 0};
    size_t n = 8;
    memcpy(out, sig, 8);
    n += put_chunk(out + n, "IHDR", ihdr, 13);
    n += put_chunk(out + n, "IDAT", idat, sizeof idat);
    n += put_chunk(out + n, "IEND", NULL, 0);
    return n;
}

TEST_IMPL(png_huge_declared_size_refused_before_allocating) {
    static const struct {
        uint32_t w, h;
        const char *want;
    } C[] = {
        {16384, 16384, "PNG of 16384x16384 is over the limit"},  // sides fine, 805 MB of pixels
        {20000, 8, "PNG of 20000x8 is over the limit"},          // a side too long
        {1000000, 1000000, "PNG of 1000000x1000000 is over the limit"},
        {0x7FFFFFFF, 0x7FFFFFFF, "huge.png: cannot decode image: corrupt PNG"},  // libpng's own limit
    };
    uint8_t b[256];
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        size_t n = png_with_size(b, C[i].w, C[i].h);
        Image im = {0};
        TbErr err = {{0}};
        int rc = img_decode(b, n, "huge.png", &im, &err);
        // The limit message comes from the check made before the pixel buffer
        // is allocated (an allocation that failed would say "out of memory").
        EXPECT(rc == -1 && im.rgb == NULL && strstr(err.msg, C[i].want), "%ux%u: '%s'", C[i].w, C[i].h,
               err.msg);
    }
    // Within the limits (and 1x1 really there): decodes.
    size_t n = png_with_size(b, 1, 1);
    Image im = {0};
    TbErr err = {{0}};
    EXPECT(img_decode(b, n, "one.png", &im, &err) == 0 && im.width == 1 && px_is(&im, 0, 0, 0, 0, 0),
           "1x1 PNG: %s", err.msg);
    img_free(&im);
}

// Offset of the first marker m (0xFFm) in a JPEG's header segments; 0 if none.
static size_t jpeg_marker(const uint8_t *p, size_t n, uint8_t m) {
    size_t i = 2;
    while (i + 4 <= n && p[i] == 0xFF) {
        if (p[i + 1] == m) return i;
        if (p[i + 1] == 0xDA) return 0;
        i += 2 + (((size_t)p[i + 2] << 8) | p[i + 3]);
    }
    return 0;
}

// night_moon.jpg with a DHT segment whose 16 counts sum to 320 (more codes
// than a table can hold: at most 256) inserted after SOI. stb_image 2.27's
// Huffman table builder writes each code's length into a 257-byte array
// without checking the sum: 63 bytes past its end (UBSan: "index 257 out of
// bounds for type 'stbi_uc[257]'").
static size_t crafted_huffman_jpeg(uint8_t *out, size_t cap) {
    uint8_t moon[65536];
    size_t n = read_whole(test_data("photos_nature/night_moon.jpg"), moon, sizeof moon);
    uint8_t seg[4 + 1 + 16 + 320];
    size_t k = 0;
    seg[k++] = 0xFF, seg[k++] = 0xC4, seg[k++] = (sizeof seg - 2) >> 8, seg[k++] = (sizeof seg - 2) & 0xFF;
    seg[k++] = 0x00;  // class DC, table 0
    for (int i = 0; i < 16; i++) seg[k++] = 20;
    for (int i = 0; i < 320; i++) seg[k++] = (uint8_t)i;
    if (n < 2 || 2 + sizeof seg + n - 2 > cap) return 0;
    memcpy(out, moon, 2);
    memcpy(out + 2, seg, sizeof seg);
    memcpy(out + 2 + sizeof seg, moon + 2, n - 2);
    return n + sizeof seg;
}

TEST_IMPL(jpeg_dht_with_too_many_codes_refused) {
    uint8_t b[65536 + 512];
    size_t n = crafted_huffman_jpeg(b, sizeof b);
    EXPECT(n > 0, "night_moon.jpg missing");
    if (!n) return;
    Image im = {0};
    TbErr err = {{0}};
    int rc = img_decode(b, n, "huff.jpg", &im, &err);
    EXPECT(rc == -1 && im.rgb == NULL && strstr(err.msg, "huff.jpg: cannot decode image: corrupt JPEG") &&
               strstr(err.msg, "Huffman"),
           "DHT of 320 codes: rc %d '%s'", rc, err.msg);
}

// The other way a Huffman table can be impossible: code lengths that do not
// fit (three 1-bit codes), redefining the DC table right before the scan.
TEST_IMPL(jpeg_overfull_code_lengths_refused) {
    uint8_t moon[65536], b[65536 + 64];
    size_t n = read_whole(test_data("photos_nature/night_moon.jpg"), moon, sizeof moon);
    size_t i = 2;  // walk the segments to the scan
    while (i + 4 <= n && moon[i] == 0xFF && moon[i + 1] != 0xDA) i += 2 + (((size_t)moon[i + 2] << 8) | moon[i + 3]);
    EXPECT(n > 0 && i + 4 <= n && moon[i + 1] == 0xDA, "night_moon.jpg missing or without a scan");
    if (!(n > 0 && i + 4 <= n)) return;
    const uint8_t seg[] = {0xFF, 0xC4, 0x00, 0x16, 0x00, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2};
    memcpy(b, moon, i);
    memcpy(b + i, seg, sizeof seg);
    memcpy(b + i + sizeof seg, moon + i, n - i);
    Image im = {0};
    TbErr err = {{0}};
    int rc = img_decode(b, n + sizeof seg, "codes.jpg", &im, &err);
    EXPECT(rc == -1 && strstr(err.msg, "codes.jpg: cannot decode image: corrupt JPEG") && strstr(err.msg, "Huffman"),
           "three 1-bit codes: rc %d '%s'", rc, err.msg);
}

TEST_IMPL(jpeg_huge_declared_size_refused) {
    uint8_t b[65536];
    size_t n = read_whole(test_data("photos_nature/night_moon.jpg"), b, sizeof b);
    size_t sof = n ? jpeg_marker(b, n, 0xC0) : 0;
    EXPECT(sof > 0, "night_moon.jpg missing or not baseline");
    if (!sof) return;
    static const struct {
        unsigned w, h;
        const char *want;
    } C[] = {
        {16384, 16384, "JPEG of 16384x16384 is over the limit"},
        {65500, 65500, "JPEG of 65500x65500 is over the limit"},
        {16384, 4000, "cannot decode image: corrupt JPEG"},  // within the limits: runs out of data, at once
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        b[sof + 5] = (uint8_t)(C[i].h >> 8), b[sof + 6] = (uint8_t)C[i].h;
        b[sof + 7] = (uint8_t)(C[i].w >> 8), b[sof + 8] = (uint8_t)C[i].w;
        Image im = {0};
        TbErr err = {{0}};
        double t0 = tb_now();
        int rc = img_decode(b, n, "big.jpg", &im, &err);
        double dt = tb_now() - t0;
        EXPECT(rc == -1 && im.rgb == NULL && strstr(err.msg, "big.jpg") && strstr(err.msg, C[i].want),
               "%ux%u: '%s'", C[i].w, C[i].h, err.msg);
        EXPECT(dt < 2.0, "%ux%u: %.2f s to refuse", C[i].w, C[i].h, dt);
    }
}

// ---------------------------------------------------------------- JPEGs made here

static Buf make_jpeg(int w, int h, int comps, J_COLOR_SPACE in, J_COLOR_SPACE store, const uint8_t *pix,
                     const jpeg_scan_info *scans, int nscans, int progressive) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = in;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, store);
    jpeg_set_quality(&c, 95, TRUE);
    for (int i = 0; i < c.num_components; i++) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    if (progressive) jpeg_simple_progression(&c);
    if (scans) c.scan_info = scans, c.num_scans = nscans;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    Buf b = {0};
    buf_put(&b, mem, size);
    free(mem);
    return b;
}

// Largest |a - b| over n bytes.
static int max_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

TEST_IMPL(jpeg_grey_and_cmyk_become_rgb) {
    enum { W = 32, H = 16 };
    Image im;
    uint8_t grey[W * H];
    for (int i = 0; i < W * H; i++) grey[i] = (uint8_t)(40 + (i % W) * 4);  // a gentle ramp
    Buf b = make_jpeg(W, H, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, grey, NULL, 0, 0);
    if (decode_ok(&b, "grey.jpg", W, H, &im)) {
        int eq = 1, far = 0;
        for (int i = 0; i < W * H; i++) {
            const uint8_t *p = im.rgb + 3 * i;
            eq &= p[0] == p[1] && p[1] == p[2];
            if (abs(p[0] - grey[i]) > far) far = abs(p[0] - grey[i]);
        }
        EXPECT(eq && far <= 3, "grey JPEG: R=G=B %d, off by up to %d", eq, far);
        img_free(&im);
    }
    // Adobe CMYK (stored inverted, 255 = no ink) and YCCK: R = C*K/255, flat
    // 16x16 blocks, so the lossy coding barely moves them.
    uint8_t cmyk[W * H * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = cmyk + 4 * (y * W + x);
            p[0] = x < 16 ? 200 : 255, p[1] = x < 16 ? 100 : 30, p[2] = x < 16 ? 50 : 0, p[3] = x < 16 ? 128 : 255;
        }
    const J_COLOR_SPACE store[2] = {JCS_CMYK, JCS_YCCK};
    for (int k = 0; k < 2; k++) {
        b = make_jpeg(W, H, 4, JCS_CMYK, store[k], cmyk, NULL, 0, 0);
        const char *what = k ? "ycck.jpg" : "cmyk.jpg";
        if (decode_ok(&b, what, W, H, &im)) {
            const uint8_t l[3] = {100, 50, 25}, r[3] = {255, 30, 0};  // 200*128/255 ...
            int far = 0;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    for (int c = 0; c < 3; c++) {
                        int d = abs(im.rgb[3 * (y * W + x) + c] - (x < 16 ? l[c] : r[c]));
                        if (d > far) far = d;
                    }
            EXPECT(far <= 3, "%s: off by up to %d (%d %d %d | %d %d %d)", what, far, im.rgb[0], im.rgb[1],
                   im.rgb[2], im.rgb[3 * 31], im.rgb[3 * 31 + 1], im.rgb[3 * 31 + 2]);
            img_free(&im);
        }
    }
}

// A progressive JPEG decodes exactly as its baseline twin (the same
// coefficients, sent in another order); one with 694 valid scans (every AC
// coefficient on its own, refined bit by bit) is refused: past 500 scans a
// crafted file could keep the decoder busy for minutes.
TEST_IMPL(jpeg_progressive_ok_too_many_scans_refused) {
    enum { W = 48, H = 40 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)((i * 37) ^ (i / 91));
    Image a, p;
    Buf ba = make_jpeg(W, H, 3, JCS_RGB, JCS_YCbCr, rgb, NULL, 0, 0);
    Buf bp = make_jpeg(W, H, 3, JCS_RGB, JCS_YCbCr, rgb, NULL, 0, 1);
    if (decode_ok(&ba, "baseline.jpg", W, H, &a)) {
        if (decode_ok(&bp, "progressive.jpg", W, H, &p)) {
            EXPECT(memcmp(a.rgb, p.rgb, sizeof rgb) == 0, "progressive differs from baseline by up to %d",
                   max_diff(a.rgb, p.rgb, sizeof rgb));
            img_free(&p);
        }
        img_free(&a);
    }
    free(bp.p);
    static jpeg_scan_info scans[1 + 63 * 11];
    int k = 0;
    scans[k++] = (jpeg_scan_info){1, {0}, 0, 0, 0, 0};
    for (int c = 1; c < 64; c++) {
        scans[k++] = (jpeg_scan_info){1, {0}, c, c, 0, 10};
        for (int bit = 10; bit >= 1; bit--) scans[k++] = (jpeg_scan_info){1, {0}, c, c, bit, bit - 1};
    }
    uint8_t grey[W * H];
    for (int i = 0; i < W * H; i++) grey[i] = rgb[3 * i];
    Buf bs = make_jpeg(W, H, 1, JCS_GRAYSCALE, JCS_GRAYSCALE, grey, scans, k, 0);
    Image im = {0};
    TbErr err = {{0}};
    int rc = img_decode(bs.p, bs.n, "scans.jpg", &im, &err);
    EXPECT(k == 694 && rc == -1 && strstr(err.msg, "scans.jpg") && strstr(err.msg, "more than 500 progressive scans"),
           "%d scans: rc %d '%s'", k, rc, err.msg);
    free(bs.p);
}

// Pillow (python3-pil, on Debian's libjpeg-turbo) decodes the photos to the
// same bytes: the standard accurate IDCT and smooth chroma upsampling.
TEST_IMPL(jpeg_pixels_as_pillow) {
    static const char *names[] = {"animal_gecko.jpg", "night_moon.jpg", "flower_plumeria.jpg"};
    if (access("/usr/bin/python3", X_OK) != 0) TEST_SKIP_CASE("no /usr/bin/python3");
    if (system("/usr/bin/python3 -c 'import PIL.Image' 2>/dev/null") != 0)
        TEST_SKIP_CASE("no Pillow for /usr/bin/python3 (apt-get install python3-pil)");
    for (int i = 0; i < 3; i++) {
        char full[1200], cmd[1400];
        snprintf(full, sizeof full, "%s", test_data("photos_nature"));
        snprintf(full + strlen(full), sizeof full - strlen(full), "/%s", names[i]);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import sys,PIL.Image; "
                 "sys.stdout.buffer.write(PIL.Image.open(sys.argv[1]).convert(\"RGB\").tobytes())' '%s'",
                 full);
        Image im = {0};
        TbErr err = {{0}};
        EXPECT(img_load(full, &im, &err) == 0, "%s: %s", names[i], err.msg);
        if (!im.rgb) continue;
        size_t n = (size_t)im.width * im.height * 3;
        uint8_t *ref = malloc(n + 1);
        FILE *f = popen(cmd, "r");
        size_t got = f ? fread(ref, 1, n + 1, f) : 0;
        if (f) pclose(f);
        EXPECT(got == n, "%s: Pillow gave %zu bytes, want %zu", names[i], got, n);
        if (got == n) EXPECT(memcmp(ref, im.rgb, n) == 0, "%s: differs from Pillow by up to %d", names[i],
                             max_diff(ref, im.rgb, n));
        free(ref);
        img_free(&im);
    }
}

// ---------------------------------------------------------------- reading files

TEST_IMPL(only_regular_files_are_read) {
    char dir[256], p[400];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tabula_imgread_XXXXXX", t && *t ? t : "/tmp");
    CHECK(mkdtemp(dir), "mkdtemp %s", dir);
    uint8_t *data = NULL;
    size_t n = 0;
    TbErr err = {{0}};
    guard(10);
    snprintf(p, sizeof p, "%s/pipe.png", dir);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo");
    EXPECT(img_read_file(p, 1 << 20, &data, &n, &err) == -1 && strstr(err.msg, "pipe.png: is a FIFO"),
           "FIFO: '%s'", err.msg);
    unlink(p);
    alarm(0);
    EXPECT(img_read_file("/dev/null", 1 << 20, &data, &n, &err) == -1 && strstr(err.msg, "character device"),
           "/dev/null: '%s'", err.msg);
    EXPECT(img_read_file(dir, 1 << 20, &data, &n, &err) == -1 && strstr(err.msg, "is a folder"), "folder: '%s'",
           err.msg);
    snprintf(p, sizeof p, "%s/empty.png", dir);
    fclose(fopen(p, "wb"));
    EXPECT(img_read_file(p, 1 << 20, &data, &n, &err) == -1 && strstr(err.msg, "empty.png: empty file"),
           "empty: '%s'", err.msg);
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 3000; i++) fputc(i, f);
    fclose(f);
    EXPECT(img_read_file(p, 2048, &data, &n, &err) == -1 && strstr(err.msg, "3000 bytes, over the limit"),
           "too big: '%s'", err.msg);
    EXPECT(img_read_file(p, 4096, &data, &n, &err) == 0 && n == 3000 && data && data[2999] == (uint8_t)2999,
           "3000 bytes: '%s'", err.msg);
    free(data);
    unlink(p);
    Image im;
    EXPECT(img_decode((const uint8_t *)"GIF89a....", 10, "x.gif", &im, &err) == -1 &&
               strstr(err.msg, "x.gif: cannot decode image: neither PNG nor JPEG"),
           "GIF: '%s'", err.msg);
    rmdir(dir);
}

TEST_MAIN(TEST_ENTRY(photos_in_name_order_sizes_ahead_means_as_ffmpeg), TEST_ENTRY(photos_loop_to_the_first),
          TEST_ENTRY(dir_spec_opens_the_folder), TEST_ENTRY(empty_folder_rejected_naming_it),
          TEST_ENTRY(folder_without_images_rejected_naming_it), TEST_ENTRY(missing_folder_named_with_reason),
          TEST_ENTRY(lone_corrupt_image_fails_at_open_naming_it),
          TEST_ENTRY(corrupt_third_image_skipped_with_one_message),
          TEST_ENTRY(truncated_jpeg_skipped_with_one_message),
          TEST_ENTRY(fifo_and_folder_in_folder_skipped_without_blocking),
          TEST_ENTRY(all_images_bad_one_clear_error), TEST_ENTRY(images_lost_while_playing_fail_once_with_reason),
          TEST_ENTRY(png_grey_becomes_rgb), TEST_ENTRY(png_palette_becomes_rgb), TEST_ENTRY(png_16bit_scales_to_8),
          TEST_ENTRY(png_rgba_drops_alpha), TEST_ENTRY(png_interlaced_same_as_plain),
          TEST_ENTRY(png_huge_declared_size_refused_before_allocating),
          TEST_ENTRY(jpeg_dht_with_too_many_codes_refused), TEST_ENTRY(jpeg_overfull_code_lengths_refused),
          TEST_ENTRY(jpeg_huge_declared_size_refused), TEST_ENTRY(jpeg_grey_and_cmyk_become_rgb),
          TEST_ENTRY(jpeg_progressive_ok_too_many_scans_refused), TEST_ENTRY(jpeg_pixels_as_pillow),
          TEST_ENTRY(only_regular_files_are_read))
