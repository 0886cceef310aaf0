// test_imgdir.c: why it exists: "dir:FOLDER" lets a user train the mirror on
// their own photos. The folder must play in name order and loop, each image's
// size must be known before it is read (the trainer fits it), pixels must be
// as ffmpeg decodes them and grey PNGs must become RGB; a folder that is empty,
// has no images, is missing, or holds a corrupt image must give a message that
// names it, not a crash or a silent black frame. Checked on the real photo
// folder and on small bad folders made here.
//
// Both groups of cases walk one source or one folder through its states in
// order; each case first brings it up to where it starts, so any case also
// runs alone.
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <unistd.h>

#include "app_sources.h"
#include "test.h"

// Sorted by name. Mean RGB from ffmpeg 5.1 (-pix_fmt rgb24); its JPEG decoder
// is not stb's (stb comes out up to 1.03 higher in green here), so means get
// a tolerance of 1.5. PNG pixels are exact.
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
    const char *names[] = {"notes.txt", ".hidden.png", "c.png", "B.JPEG", "a.jpg", "d.jpg"};
    for (int i = 0; i < 6; i++) rm_file(names[i]);
    rmdir(tmpdir);
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
// name order ("B.JPEG" < "a.jpg" < "c.png"): two frames, then the error.
static uint8_t jpg[65536];
static size_t jpg_n;  // 0: night_moon.jpg could not be read

static void corrupt_third_image(void) {
    TbErr err = {{0}};
    Source *s;
    FILE *f = fopen(test_data("photos_nature/night_moon.jpg"), "rb");
    EXPECT(f != NULL, "night_moon.jpg missing");
    if (!f) return;
    size_t n = fread(jpg, 1, sizeof jpg, f);
    jpg_n = n;
    fclose(f);
    put_file("B.JPEG", jpg, n);
    put_file("a.jpg", jpg, n);
    s = source_open_imgdir(tmpdir, &err);
    EXPECT(s != NULL, "open with a corrupt third image: %s", err.msg);
    if (s) {
        uint8_t *rgb = malloc(200 * 200 * 3);
        EXPECT(s->width == 200 && s->height == 200, "moon copy %dx%d", s->width, s->height);
        EXPECT(s->read(s, rgb, &err) == 1, "frame 0: %s", err.msg);
        EXPECT(s->read(s, rgb, &err) == 1, "frame 1 (its successor fails to decode): %s", err.msg);
        int rc = s->read(s, rgb, &err);
        EXPECT(rc == -1 && strstr(err.msg, tmpdir) && strstr(err.msg, "c.png: cannot decode"),
               "frame 2: rc %d '%s'", rc, err.msg);
        free(rgb);
        source_close(s);
    }
}

// A truncated JPEG (first 300 bytes) also fails cleanly.
static void truncated_jpeg(void) {
    TbErr err = {{0}};
    Source *s;
    if (!jpg_n) return;
    rm_file("c.png");
    put_file("d.jpg", jpg, 300);
    s = source_open_imgdir(tmpdir, &err);
    if (s) {
        uint8_t *rgb = malloc(200 * 200 * 3);
        int rc = 1;
        for (int i = 0; i < 3 && rc == 1; i++) rc = s->read(s, rgb, &err);
        EXPECT(rc == -1 && strstr(err.msg, "d.jpg"), "truncated JPEG: rc %d '%s'", rc, err.msg);
        free(rgb);
        source_close(s);
    }
}

static void (*const folder_stages[])(void) = {empty_folder, no_images, lone_corrupt_image,
                                              corrupt_third_image, truncated_jpeg};
static int folder_done;
static void folder_to(int k) {
    while (folder_done <= k) folder_stages[folder_done++]();
}

TEST_IMPL(empty_folder_rejected_naming_it) { folder_to(0); }
TEST_IMPL(folder_without_images_rejected_naming_it) { folder_to(1); }
TEST_IMPL(lone_corrupt_image_fails_at_open_naming_it) { folder_to(2); }
TEST_IMPL(corrupt_third_image_fails_when_reached) { folder_to(3); }
TEST_IMPL(truncated_jpeg_fails_naming_it) { folder_to(4); }

TEST_IMPL(missing_folder_named_with_reason) {
    TbErr err = {{0}};
    Source *s = source_open_imgdir("/nonexistent/photos", &err);
    EXPECT(s == NULL && strcmp(err.msg, "/nonexistent/photos: No such file or directory") == 0,
           "missing folder: '%s'", err.msg);
}

TEST_MAIN(TEST_ENTRY(photos_in_name_order_sizes_ahead_means_as_ffmpeg), TEST_ENTRY(photos_loop_to_the_first),
          TEST_ENTRY(dir_spec_opens_the_folder), TEST_ENTRY(empty_folder_rejected_naming_it),
          TEST_ENTRY(folder_without_images_rejected_naming_it), TEST_ENTRY(missing_folder_named_with_reason),
          TEST_ENTRY(lone_corrupt_image_fails_at_open_naming_it), TEST_ENTRY(corrupt_third_image_fails_when_reached),
          TEST_ENTRY(truncated_jpeg_fails_naming_it))
