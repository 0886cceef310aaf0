// test_y4m.c: why it exists: Y4M files are the engine's own video input (the
// headless runs, the learning test and the benchmarks all train on them) and
// the test pattern is what runs with no file at all. If the reader's colours
// drifted from ffmpeg's, every metric measured on a clip would shift; if a bad
// or truncated file crashed it or gave a message without the file's name, a
// user could not tell what went wrong. Also source_open's spec dispatch, which
// must name every kind of source it knows.
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"
#include "test.h"

static char tmpdir[256];
static char tmp_paths[32][300];
static int n_tmp;

static void remove_tmp(void) {
    for (int i = 0; i < n_tmp; i++) unlink(tmp_paths[i]);
    rmdir(tmpdir);
}

// Write bytes to a file in the temp folder (made on first use); returns its path.
static const char *write_tmp(const char *name, const void *data, size_t n) {
    if (!tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/tabula_y4m_XXXXXX", t && *t ? t : "/tmp");
        CHECK(mkdtemp(tmpdir), "mkdtemp %s", tmpdir);
        atexit(remove_tmp);
    }
    char *p = tmp_paths[n_tmp++];
    snprintf(p, 300, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    CHECK(f, "cannot create %s", p);
    CHECK(fwrite(data, 1, n, f) == n, "write %s", p);
    fclose(f);
    return p;
}

// Expect opening (or, if open works, reading up to `reads` frames) to fail with
// a message that names the file and contains `needle`.
static void expect_bad(const char *path, int reads, const char *needle) {
    TbErr err = {{0}};
    Source *s = source_open_y4m(path, &err);
    int rc = 0;
    if (s) {
        uint8_t *rgb = malloc((size_t)s->width * s->height * 3);
        for (int i = 0; i < reads && rc != -1; i++) rc = s->read(s, rgb, &err);
        free(rgb);
        source_close(s);
    }
    EXPECT(!s || rc == -1, "%s: expected an error", path);
    EXPECT(strstr(err.msg, path) != NULL, "message does not name the file: '%s'", err.msg);
    EXPECT(strstr(err.msg, needle) != NULL, "message lacks '%s': '%s'", needle, err.msg);
}

// The real clip, read in order by the three cases below (each first reads up
// to where it starts, so any of them also runs alone): its source, frame 0 and
// the frame read last.
static Source *clip;
static uint8_t *f0, *cur;
enum { FRAME_BYTES = 320 * 240 * 3 };

static void close_clip(void) {
    source_close(clip);
    free(f0);
    free(cur);
}

static void open_clip(void) {
    const char *path = test_data("asl_signer_a_320x240.y4m");
    if (access(path, R_OK) != 0) {
        EXPECT(0, "%s is missing (set TABULA_DATA)", path);
        return;
    }
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", path);
    TbErr err = {{0}};
    Source *s = source_open(spec, NULL, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    clip = s;
    atexit(close_clip);
    EXPECT(s->width == 320 && s->height == 240, "size %dx%d", s->width, s->height);
    EXPECT_NEAR(s->fps, 30.0, 1e-9, "fps");
    EXPECT(strcmp(s->spec, spec) == 0, "spec '%s'", s->spec);
    f0 = malloc(FRAME_BYTES), cur = malloc(FRAME_BYTES);
    EXPECT(s->read(s, f0, &err) == 1, "read frame 0: %s", err.msg);

    // Reference: ffmpeg 5.1 -frames:v 1 -vf scale=in_color_matrix=bt601:in_range=tv:
    //   out_range=pc:flags=neighbor+accurate_rnd+full_chroma_int -pix_fmt rgb24
    // (nearest chroma, rounded; it matches this reader within 1 on every pixel).
    static const struct { int x, y; uint8_t rgb[3]; } REF0[] = {
        {0, 0, {163, 182, 180}},     {319, 0, {120, 136, 140}},  {0, 239, {14, 40, 35}},
        {319, 239, {27, 45, 46}},    {160, 120, {150, 157, 157}}, {100, 50, {162, 175, 166}},
        {250, 200, {176, 189, 178}}, {37, 211, {162, 176, 169}}, {200, 30, {156, 169, 169}},
    };
    for (size_t i = 0; i < sizeof REF0 / sizeof REF0[0]; i++)
        for (int c = 0; c < 3; c++) {
            char what[64];
            snprintf(what, sizeof what, "frame 0 (%d,%d) channel %d", REF0[i].x, REF0[i].y, c);
            EXPECT_NEAR(f0[(REF0[i].y * 320 + REF0[i].x) * 3 + c], REF0[i].rgb[c], 3, what);
        }
    double mean[3] = {0, 0, 0};
    for (size_t i = 0; i < FRAME_BYTES; i++) mean[i % 3] += f0[i];
    // ffmpeg's frame 0 means: 119.298, 137.002, 137.523.
    EXPECT_NEAR(mean[0] / (FRAME_BYTES / 3), 119.30, 0.5, "frame 0 mean R");
    EXPECT_NEAR(mean[1] / (FRAME_BYTES / 3), 137.00, 0.5, "frame 0 mean G");
    EXPECT_NEAR(mean[2] / (FRAME_BYTES / 3), 137.52, 0.5, "frame 0 mean B");
}

// Frames 1..299; frame 150 against ffmpeg too (select=eq(n\,150)).
static void read_to_299(void) {
    Source *s = clip;
    if (!s) return;
    TbErr err = {{0}};
    int ok = 1, differs_from_0 = 0;
    for (int i = 1; i < 300 && ok; i++) {
        ok = s->read(s, cur, &err) == 1;
        if (i == 150) {
            EXPECT_NEAR(cur[(120 * 320 + 160) * 3], 52, 3, "frame 150 (160,120) R");
            EXPECT_NEAR(cur[(50 * 320 + 100) * 3 + 1], 174, 3, "frame 150 (100,50) G");
            EXPECT_NEAR(cur[(200 * 320 + 250) * 3 + 2], 176, 3, "frame 150 (250,200) B");
        }
        if (i == 299) differs_from_0 = memcmp(cur, f0, FRAME_BYTES) != 0;
    }
    EXPECT(ok, "reading frames 1..299: %s", err.msg);
    EXPECT(differs_from_0, "frame 299 equals frame 0");
}

// The file has 300 frames: the next read loops back to frame 0.
static void loop_to_0(void) {
    Source *s = clip;
    if (!s) return;
    TbErr err = {{0}};
    EXPECT(s->read(s, cur, &err) == 1, "read after the last frame: %s", err.msg);
    EXPECT(memcmp(cur, f0, FRAME_BYTES) == 0, "frame 300 is not frame 0 (no loop)");
    EXPECT(s->read(s, cur, &err) == 1 && memcmp(cur, f0, FRAME_BYTES) != 0, "frame 301 is frame 0 again");
}

static void (*const clip_stages[])(void) = {open_clip, read_to_299, loop_to_0};
static int clip_done;
static void clip_to(int k) {
    while (clip_done <= k) clip_stages[clip_done++]();
}

TEST_IMPL(real_clip_frame_0_matches_ffmpeg) { clip_to(0); }
TEST_IMPL(real_clip_reads_299_more_frame_150_matches_ffmpeg) { clip_to(1); }
TEST_IMPL(real_clip_loops_to_frame_0_after_300) { clip_to(2); }

// 30000/1001 frame rate.
TEST_IMPL(ntsc_frame_rate_is_exact) {
    TbErr err = {{0}};
    Source *s = source_open_y4m(test_data("hikers_forest_320x240.y4m"), &err);
    EXPECT(s != NULL, "open hikers: %s", err.msg);
    if (s) EXPECT_NEAR(s->fps, 30000.0 / 1001.0, 1e-9, "hikers fps");
    source_close(s);
}

// A small generated 4:4:4 file with FRAME parameters: colours as ffmpeg's, loops.
TEST_IMPL(generated_444_colours_match_ffmpeg_and_loop) {
    // 4x2 4:4:4, two frames: the BT.601 colours of test_fit, then the same
    // colours shifted by one pixel. Expected RGB from ffmpeg (see test_fit.c).
    static const uint8_t yuv[8][3] = {{16, 128, 128}, {235, 128, 128}, {81, 90, 240},
                                      {145, 54, 34},  {41, 240, 110},  {126, 128, 128},
                                      {200, 60, 200}, {30, 200, 40}};
    static const uint8_t want[8][3] = {{0, 0, 0},     {255, 255, 255}, {254, 0, 0},
                                       {0, 255, 1},   {0, 0, 255},     {128, 128, 128},
                                       {255, 182, 77}, {0, 60, 162}};
    uint8_t buf[512];
    size_t n = (size_t)sprintf((char *)buf, "YUV4MPEG2 W4 H2 F25:1 Ip A1:1 C444 XCOLORRANGE=LIMITED\n");
    for (int f = 0; f < 2; f++) {
        // FRAME lines may carry parameters; the second one does.
        n += (size_t)sprintf((char *)buf + n, f ? "FRAME Ixyz XFOO=1\n" : "FRAME\n");
        for (int p = 0; p < 3; p++)
            for (int i = 0; i < 8; i++) buf[n++] = yuv[(i + f) % 8][p];
    }
    const char *p444 = write_tmp("c444.y4m", buf, n);
    TbErr err = {{0}};
    Source *s = source_open_y4m(p444, &err);
    EXPECT(s != NULL, "open 4:4:4: %s", err.msg);
    if (s) {
        EXPECT(s->width == 4 && s->height == 2 && s->fps == 25, "444 %dx%d @ %g", s->width,
               s->height, s->fps);
        uint8_t rgb[3][24];
        for (int f = 0; f < 3; f++) EXPECT(s->read(s, rgb[f], &err) == 1, "444 read %d: %s", f, err.msg);
        for (int f = 0; f < 2; f++)
            for (int i = 0; i < 8; i++)
                for (int c = 0; c < 3; c++)
                    EXPECT_NEAR(rgb[f][3 * i + c], want[(i + f) % 8][c], 1, "444 pixel");
        EXPECT(memcmp(rgb[2], rgb[0], 24) == 0, "444 did not loop to frame 0");
        source_close(s);
    }
}

// 5x3 plain C420 (chroma 3x2), then the same with no C token (= 420jpeg).
TEST_IMPL(odd_size_420_with_and_without_c_token) {
    uint8_t buf[512];
    size_t n;
    TbErr err = {{0}};
    Source *s;
    for (int variant = 0; variant < 2; variant++) {
        n = (size_t)sprintf((char *)buf, "YUV4MPEG2 W5 H3 F30:1%s\nFRAME\n", variant ? "" : " C420");
        static const uint8_t Y[15] = {81, 81, 145, 145, 41, 81, 81, 145, 145, 41,
                                      235, 235, 235, 235, 16};
        static const uint8_t U[6] = {90, 54, 240, 128, 128, 128}, V[6] = {240, 34, 110, 128, 128, 128};
        memcpy(buf + n, Y, 15), n += 15;
        memcpy(buf + n, U, 6), n += 6;
        memcpy(buf + n, V, 6), n += 6;
        const char *p = write_tmp(variant ? "c420none.y4m" : "c420.y4m", buf, n);
        s = source_open_y4m(p, &err);
        EXPECT(s != NULL, "open %s: %s", p, err.msg);
        if (!s) continue;
        uint8_t rgb[45];
        EXPECT(s->read(s, rgb, &err) == 1, "read %s: %s", p, err.msg);
        EXPECT(rgb[0] >= 253 && rgb[1] <= 1 && rgb[6 * 3] >= 253,
               "%s: red block %d %d", p, rgb[0], rgb[6 * 3]);
        EXPECT(rgb[2 * 3 + 1] >= 254 && rgb[8 * 3 + 1] >= 254, "%s: green block", p);
        EXPECT(rgb[4 * 3 + 2] == 255 && rgb[9 * 3 + 2] == 255, "%s: blue column", p);
        EXPECT(rgb[10 * 3] == 255 && rgb[14 * 3] == 0, "%s: white then black on the last row", p);
        source_close(s);
    }
}

// Every bad header: an error naming the file and the problem.
TEST_IMPL(bad_headers_rejected_naming_the_file) {
    const char *p;

    p = write_tmp("magic.y4m", "YUV4MPEG3 W2 H2\nFRAME\n123456", 28);
    expect_bad(p, 1, "not a YUV4MPEG2 file");
    p = write_tmp("empty.y4m", "", 0);
    expect_bad(p, 1, "not a YUV4MPEG2 file");
    p = write_tmp("now.y4m", "YUV4MPEG2 H2 F30:1 C420\nFRAME\n123456", 34);
    expect_bad(p, 1, "no width");
    p = write_tmp("noh.y4m", "YUV4MPEG2 W2 F30:1 C420\nFRAME\n123456", 34);
    expect_bad(p, 1, "no height");
    p = write_tmp("c422.y4m", "YUV4MPEG2 W2 H2 C422\nFRAME\n12345678", 35);
    expect_bad(p, 1, "C422");
    p = write_tmp("p10.y4m", "YUV4MPEG2 W2 H2 C420p10\nFRAME\n123456789012", 42);
    expect_bad(p, 1, "not supported");
    p = write_tmp("interlaced.y4m", "YUV4MPEG2 W2 H2 It C420\nFRAME\n123456", 36);
    expect_bad(p, 1, "interlaced");
    p = write_tmp("huge.y4m", "YUV4MPEG2 W100000 H2\nFRAME\n", 27);
    expect_bad(p, 1, "width");
    p = write_tmp("area.y4m", "YUV4MPEG2 W16384 H16384\nFRAME\n", 30);
    expect_bad(p, 1, "too large");
    p = write_tmp("zerow.y4m", "YUV4MPEG2 W0 H2\nFRAME\n", 22);
    expect_bad(p, 1, "width");
    p = write_tmp("badf.y4m", "YUV4MPEG2 W2 H2 F30\nFRAME\n123456", 32);
    expect_bad(p, 1, "frame rate");
    p = write_tmp("noframes.y4m", "YUV4MPEG2 W2 H2\n", 16);
    expect_bad(p, 1, "no frames");
    p = write_tmp("garbage.y4m", "YUV4MPEG2 W2 H2\nFRAMX\n123456", 28);
    expect_bad(p, 1, "FRAME");
}

// Frames cut short, wherever they are met: an error naming file and frame.
TEST_IMPL(truncated_frames_rejected_naming_the_file) {
    static char big[40000];
    size_t n;
    const char *p;
    // Truncated first frame: 320x240 needs 115200 bytes, give 5000.
    n = (size_t)sprintf(big, "YUV4MPEG2 W320 H240 F30:1 Ip C420mpeg2\nFRAME\n");
    memset(big + n, 128, 5000);
    p = write_tmp("trunc0.y4m", big, n + 5000);
    expect_bad(p, 1, "truncated frame 0 (got 5000 of 115200 bytes)");

    // Two whole 16x16 frames, then 100 bytes of a third: frames 0 and 1 read,
    // frame 2 fails, both when reached in order and again after looping.
    n = (size_t)sprintf(big, "YUV4MPEG2 W16 H16 F30:1 C420jpeg\n");
    for (int f = 0; f < 2; f++) {
        n += (size_t)sprintf(big + n, "FRAME\n");
        memset(big + n, 16 + 100 * f, 384), n += 384;
    }
    n += (size_t)sprintf(big + n, "FRAME\n");
    memset(big + n, 200, 100), n += 100;
    p = write_tmp("trunc2.y4m", big, n);
    expect_bad(p, 3, "truncated frame 2 (got 100 of 384 bytes)");
    // EOF inside the FRAME line itself.
    n = (size_t)sprintf(big, "YUV4MPEG2 W16 H16 F30:1 C420paldv\nFRAME\n");
    memset(big + n, 50, 384), n += 384;
    memcpy(big + n, "FRA", 3), n += 3;
    p = write_tmp("trunc_line.y4m", big, n);
    expect_bad(p, 2, "truncated frame 1");
}

TEST_IMPL(missing_file_names_path_and_reason) {
    // Missing file through source_open: the path and the system's reason.
    TbErr err = {{0}};
    Source *s = source_open("file:/nonexistent/clip.y4m", NULL, &err);
    EXPECT(s == NULL && strcmp(err.msg, "/nonexistent/clip.y4m: No such file or directory") == 0,
           "missing file: '%s'", err.msg);
}

// A FIFO (or a device) given as a file would block at open: refused at once.
TEST_IMPL(fifo_as_a_file_is_refused_at_once) {
    char path[64], spec[80];
    snprintf(path, sizeof path, "/tmp/tabula-fifo-%d.y4m", (int)getpid());
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    snprintf(spec, sizeof spec, "file:%s", path);
    TbErr err = {{0}};
    Source *s = source_open(spec, NULL, &err);
    EXPECT(s == NULL && strstr(err.msg, "not a regular file"), "fifo: '%s'", err.msg);
    s = source_open("file:/dev/zero", NULL, &err);
    EXPECT(s == NULL && strstr(err.msg, "/dev/zero: not a regular file"), "device: '%s'", err.msg);
    unlink(path);
}

TEST_IMPL(unknown_and_unbuilt_specs_rejected) {
    TbErr err = {{0}};
    Source *s = source_open("bogus", NULL, &err);
    EXPECT(s == NULL && strstr(err.msg, "bogus") && strstr(err.msg, "pattern:WxH") &&
               strstr(err.msg, "file:PATH") && strstr(err.msg, "dir:PATH") &&
               strstr(err.msg, "camera"),
           "unknown spec message: '%s'", err.msg);
    s = source_open("pattern:0x480", NULL, &err);
    EXPECT(s == NULL && strstr(err.msg, "pattern:0x480"), "bad pattern size: '%s'", err.msg);
    s = source_open("pattern:64x48junk", NULL, &err);
    EXPECT(s == NULL, "pattern size with junk accepted");
    // The engine alone has no camera or image-folder kinds registered.
    s = source_open("camera", NULL, &err);
    EXPECT(s == NULL && strstr(err.msg, "camera: needs the app build"), "camera: '%s'", err.msg);
    s = source_open("dir:/tmp", NULL, &err);
    EXPECT(s == NULL && strstr(err.msg, "dir:/tmp: needs the app build"), "dir: '%s'", err.msg);
}

// The test pattern: right size, 30 fps, deterministic, moving, and its 16
// bottom blocks spell the frame number in binary.
TEST_IMPL(pattern_is_deterministic_moving_and_counts_frames) {
    TbErr err = {{0}};
    Source *a = source_open("pattern", NULL, &err), *b = source_open("pattern:160x96", NULL, &err),
           *c = source_open("pattern:160x96", NULL, &err);
    EXPECT(a && b && c, "open pattern: %s", err.msg);
    if (!a || !b || !c) return;
    EXPECT(a->width == 640 && a->height == 480 && a->fps == 30, "pattern %dx%d @ %g", a->width,
           a->height, a->fps);
    EXPECT(b->width == 160 && b->height == 96 && strcmp(b->spec, "pattern:160x96") == 0,
           "pattern:160x96 -> %dx%d '%s'", b->width, b->height, b->spec);
    size_t n = 160 * 96 * 3;
    uint8_t *fb = malloc(n), *fc = malloc(n), *prev = malloc(n);
    int same = 1, moved = 1, counter = 1;
    for (int i = 0; i < 40; i++) {
        memcpy(prev, fb, n);
        EXPECT(b->read(b, fb, &err) == 1 && c->read(c, fc, &err) == 1, "pattern read");
        same &= memcmp(fb, fc, n) == 0;
        if (i) moved &= memcmp(fb, prev, n) != 0;
        for (int bit = 0; bit < 16; bit++) {  // centre of block `bit` in the bottom strip
            const uint8_t *px = fb + ((size_t)(96 - 3) * 160 + bit * 10 + 5) * 3;
            counter &= px[0] == (((i >> bit) & 1) ? 255 : 0);
        }
    }
    EXPECT(same, "two pattern sources differ");
    EXPECT(moved, "pattern frame equals the previous one");
    EXPECT(counter, "frame counter blocks do not match the frame number");
    // Pixel (10,10) is on the first bar (75% white) or under the orange circle.
    const uint8_t *tl = fb + (10 * 160 + 10) * 3;
    EXPECT((tl[0] == 191 && tl[1] == 191 && tl[2] == 191) || (tl[0] == 255 && tl[1] == 128),
           "pixel (10,10) is %d,%d,%d", tl[0], tl[1], tl[2]);
    free(fb);
    free(fc);
    free(prev);
    source_close(a);
    source_close(b);
    source_close(c);
}

TEST_MAIN(TEST_ENTRY(real_clip_frame_0_matches_ffmpeg),
          TEST_ENTRY(real_clip_reads_299_more_frame_150_matches_ffmpeg),
          TEST_ENTRY(real_clip_loops_to_frame_0_after_300), TEST_ENTRY(ntsc_frame_rate_is_exact),
          TEST_ENTRY(generated_444_colours_match_ffmpeg_and_loop), TEST_ENTRY(odd_size_420_with_and_without_c_token),
          TEST_ENTRY(bad_headers_rejected_naming_the_file), TEST_ENTRY(truncated_frames_rejected_naming_the_file),
          TEST_ENTRY(missing_file_names_path_and_reason), TEST_ENTRY(fifo_as_a_file_is_refused_at_once), TEST_ENTRY(unknown_and_unbuilt_specs_rejected),
          TEST_ENTRY(pattern_is_deterministic_moving_and_counts_frames))
