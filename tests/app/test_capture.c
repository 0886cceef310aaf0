// test_capture: why it exists: the capture thread is what stands between a
// camera or a clip and the live mirror. A user pulls the camera's cable and
// plugs it back: the mirror must say "camera lost" and carry on with fresh
// frames, not freeze or crash. The trainer must always get the newest whole
// frame (never a torn or stale one), a clip must play at its own speed, a
// stuck device must not hang quitting, and the bundled clip (what tabula shows
// with no camera) must decode to the same pictures as the Y4M it was made from.
// Checked with a test source that can be unplugged and plugged back, and with
// the libav file source on the bundled clip.
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app_sources.h"
#include "capture.h"
#include "clip_frame.h"
#include "common.h"
#include "test.h"

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

// ---------------------------------------------------------------- test source

// Frames are filled with their own number (uint32 words), so a torn or stale
// frame shows. While `unplugged`, read() fails like a pulled camera and opening
// fails too; `silent` makes read() return "no frame yet" forever.
typedef struct {
    atomic_int unplugged, silent, produced, opens;
    int w, h;
    double fps, read_delay;
} TestDev;

static int ts_read(Source *s, uint8_t *rgb, TbErr *err) {
    TestDev *d = s->ctx;
    if (atomic_load(&d->unplugged)) return tb_fail(err, "test device: read: Input/output error");
    if (d->read_delay > 0) sleep_s(d->read_delay);
    if (atomic_load(&d->silent)) return 0;
    uint32_t k = (uint32_t)atomic_fetch_add(&d->produced, 1) + 1;
    uint32_t *p = (uint32_t *)rgb;
    for (size_t i = 0; i < (size_t)s->width * s->height * 3 / 4; i++) p[i] = k;
    return 1;
}
static void ts_close(Source *s) { s->ctx = NULL; }

static Source *ts_open(const char *spec, void *user, TbErr *err) {
    TestDev *d = user;
    atomic_fetch_add(&d->opens, 1);
    if (atomic_load(&d->unplugged)) return tb_fail(err, "%s: no such test device", spec), NULL;
    Source *s = tb_calloc(1, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "%s", spec);
    s->width = d->w, s->height = d->h, s->fps = d->fps;
    s->ctx = d, s->read = ts_read, s->close = ts_close;
    return s;
}

// The file: and camera kinds, registered once as the program registers them.
static void register_sources(void) {
    static int done;
    if (!done) app_register_sources();
    done = 1;
}

// A test device; the program's source kinds are registered first, as in the program.
static void dev_init(TestDev *d, int w, int h, double fps, double delay) {
    register_sources();
    memset(d, 0, sizeof *d);
    d->w = w, d->h = h, d->fps = fps, d->read_delay = delay;
}

// Frame content matches its sequence number everywhere (no tearing, no mixups).
static int frame_is(const uint8_t *rgb, int w, int h, uint64_t seq) {
    const uint32_t *p = (const uint32_t *)rgb;
    for (size_t i = 0; i < (size_t)w * h * 3 / 4; i++)
        if (p[i] != (uint32_t)seq) return 0;
    return 1;
}

static int wait_state(Capture *c, int want, double timeout, char *msg, size_t n) {
    double t0 = tb_now();
    while (tb_now() - t0 < timeout) {
        if (capture_state(c, msg, n) == want) return 1;
        sleep_s(0.005);
    }
    return 0;
}

// Waits for a frame newer than `after`; returns its seq (0 on timeout).
static uint64_t wait_frame(Capture *c, uint64_t after, double timeout, int *w, int *h, int *content_ok) {
    double t0 = tb_now();
    while (tb_now() - t0 < timeout) {
        const uint8_t *rgb;
        uint64_t seq;
        double t;
        if (capture_latest(c, &rgb, w, h, &seq, &t) && seq > after) {
            if (content_ok) *content_ok = frame_is(rgb, *w, *h, seq);
            return seq;
        }
        sleep_s(0.002);
    }
    return 0;
}

// ---------------------------------------------------------------- tests

TEST_IMPL(unplug_gives_lost_with_reason_replug_resumes) {
    static TestDev d;
    dev_init(&d, 64, 48, 0, 0.005);
    CaptureOpts o = {.live = -1, .retry_s = 0.2, .open = ts_open, .open_user = &d};
    TbErr err = {{0}};
    char msg[640];
    Capture *c = capture_start_opts("camera:test", &o, &err);
    EXPECT(c != NULL, "start: %s", err.msg);
    if (!c) return;
    int w, h, ok = 0;
    uint64_t s1 = wait_frame(c, 0, 1.0, &w, &h, &ok);
    EXPECT(s1 >= 1 && w == 64 && h == 48 && ok, "first frame: seq %llu %dx%d content %d",
           (unsigned long long)s1, w, h, ok);
    EXPECT(wait_state(c, CAPTURE_OK, 1.0, msg, sizeof msg), "not OK: %s", msg);

    // Unplug: LOST with the reason, within a read or two.
    atomic_store(&d.unplugged, 1);
    EXPECT(wait_state(c, CAPTURE_LOST, 1.0, msg, sizeof msg), "not LOST: %s", msg);
    printf("lost: %s\n", msg);
    EXPECT(strcmp(msg, "camera lost: test device: read: Input/output error — retrying") == 0,
           "message: %s", msg);
    const uint8_t *rgb;
    uint64_t seq, last;
    double t;
    while (capture_latest(c, &rgb, &w, &h, &last, &t)) {}  // drain what came before
    int opens_before = atomic_load(&d.opens);
    sleep_s(0.7);
    EXPECT(!capture_latest(c, &rgb, &w, &h, &seq, &t), "a frame arrived while unplugged");
    EXPECT(rgb != NULL && seq == last, "the last frame must stay readable while lost");
    int retries = atomic_load(&d.opens) - opens_before;
    EXPECT(retries >= 2 && retries <= 5, "%d reopen attempts in 0.7 s at 0.2 s interval", retries);
    EXPECT(capture_state(c, NULL, 0) == CAPTURE_LOST, "state while unplugged");

    // Plug back in, at another size: OK again, frames resume, newer seq.
    d.w = 32, d.h = 24;
    atomic_store(&d.unplugged, 0);
    uint64_t s2 = wait_frame(c, last, 2.0, &w, &h, &ok);
    EXPECT(s2 > last && w == 32 && h == 24 && ok, "after replug: seq %llu (last %llu) %dx%d",
           (unsigned long long)s2, (unsigned long long)last, w, h);
    EXPECT(wait_state(c, CAPTURE_OK, 1.0, msg, sizeof msg), "not OK after replug: %s", msg);
    CaptureStats st;
    capture_stats(c, &st);
    EXPECT(st.reconnects == 1, "%llu reconnects", (unsigned long long)st.reconnects);
    EXPECT(st.frames >= s2, "stats frames %llu", (unsigned long long)st.frames);

    double t0 = tb_now();
    capture_stop(c);
    double dt = tb_now() - t0;
    EXPECT(dt < 1.0, "stop took %.3f s", dt);
}

// A live source that goes quiet (no error, no frames) counts as lost too.
TEST_IMPL(silent_live_source_counts_as_lost) {
    static TestDev d;
    dev_init(&d, 16, 16, 0, 0.002);
    CaptureOpts o = {.live = 1, .retry_s = 0.1, .stall_s = 0.3, .open = ts_open, .open_user = &d};
    TbErr err = {{0}};
    char msg[640];
    Capture *c = capture_start_opts("test", &o, &err);
    EXPECT(c != NULL, "start: %s", err.msg);
    if (!c) return;
    EXPECT(wait_state(c, CAPTURE_OK, 1.0, msg, sizeof msg), "not OK: %s", msg);
    atomic_store(&d.silent, 1);
    EXPECT(wait_state(c, CAPTURE_LOST, 1.5, msg, sizeof msg), "silence not noticed: %s", msg);
    EXPECT(strstr(msg, "source lost: no frame for") != NULL, "message: %s", msg);
    atomic_store(&d.silent, 0);
    EXPECT(wait_state(c, CAPTURE_OK, 1.5, msg, sizeof msg), "not back: %s", msg);
    capture_stop(c);
}

// Fast producer, slow reader: each frame read is at least as new as every
// frame finished before the call, intact, and never older than the last one.
TEST_IMPL(newest_whole_frame_wins_under_fast_producer) {
    static TestDev d;
    dev_init(&d, 320, 240, 0, 0);
    CaptureOpts o = {.live = 1, .open = ts_open, .open_user = &d};
    TbErr err = {{0}};
    Capture *c = capture_start_opts("test", &o, &err);
    EXPECT(c != NULL, "start: %s", err.msg);
    if (!c) return;
    uint64_t last = 0;
    int fresh = 0, stale = 0, torn = 0, behind = 0;
    for (int i = 0; i < 60; i++) {
        sleep_s(0.01);
        int p = atomic_load(&d.produced);  // frames up to p-1 are published by now
        const uint8_t *rgb;
        int w, h;
        uint64_t seq;
        double t;
        if (!capture_latest(c, &rgb, &w, &h, &seq, &t)) continue;
        fresh++;
        stale += seq <= last;
        behind += p > 1 && seq < (uint64_t)(p - 1);
        torn += !frame_is(rgb, w, h, seq);
        last = seq;
    }
    capture_stop(c);
    int produced = atomic_load(&d.produced);
    printf("newest wins: %d frames read of %d produced\n", fresh, produced);
    EXPECT(fresh >= 30, "only %d fresh frames", fresh);
    EXPECT(produced > 4 * fresh, "producer not faster than the reader (%d vs %d)", produced, fresh);
    EXPECT(stale == 0, "%d frames not newer than the previous one", stale);
    EXPECT(behind == 0, "%d frames older than the newest finished one", behind);
    EXPECT(torn == 0, "%d torn frames", torn);
}

static int count_frames(Capture *c, double secs) {
    const uint8_t *rgb;
    int w, h, n = 0;
    uint64_t seq, first = 0, lastseq = 0;
    double t;
    double t0 = tb_now();
    while (tb_now() - t0 < secs) {
        if (capture_latest(c, &rgb, &w, &h, &seq, &t)) {
            if (!first) first = seq;
            lastseq = seq;
        }
        sleep_s(0.002);
    }
    n = first ? (int)(lastseq - first) : 0;
    return n;
}

TEST_IMPL(file_source_paced_at_its_fps) {
    static TestDev d;
    dev_init(&d, 32, 32, 50, 0);
    CaptureOpts o = {.live = -1, .open = ts_open, .open_user = &d};  // "file:" spec: paced
    TbErr err = {{0}};
    Capture *c = capture_start_opts("file:test", &o, &err);
    EXPECT(c != NULL, "start: %s", err.msg);
    if (!c) return;
    sleep_s(0.1);
    int n = count_frames(c, 1.0);
    capture_stop(c);
    printf("paced at the source's 50 fps: %d frames in 1 s\n", n);
    EXPECT(n >= 40 && n <= 55, "%d frames in 1 s at 50 fps", n);
}

TEST_IMPL(file_source_paced_at_fps_override) {
    static TestDev d;
    dev_init(&d, 32, 32, 50, 0);
    CaptureOpts o = {.live = -1, .open = ts_open, .open_user = &d};
    TbErr err = {{0}};
    o.fps = 20;  // override
    Capture *c = capture_start_opts("file:test", &o, &err);
    sleep_s(0.1);
    int n = count_frames(c, 1.0);
    capture_stop(c);
    printf("paced at 20 fps (override): %d frames in 1 s\n", n);
    EXPECT(n >= 15 && n <= 22, "%d frames in 1 s at 20 fps", n);
}

// A source whose reads take 0.3 s: stop still joins within 1 s.
TEST_IMPL(stop_joins_within_1s_during_slow_reads) {
    static TestDev d;
    dev_init(&d, 16, 16, 0, 0.3);
    CaptureOpts o = {.live = 1, .open = ts_open, .open_user = &d};
    TbErr err = {{0}};
    Capture *c = capture_start_opts("test", &o, &err);
    sleep_s(0.1);
    double t0 = tb_now();
    capture_stop(c);
    double dt = tb_now() - t0;
    printf("stop with 0.3 s reads: %.3f s\n", dt);
    EXPECT(dt < 1.0, "stop took %.3f s", dt);
}

// A source stuck for 1.5 s: stop gives up after stop_s, the thread cleans
// up on its own later (ASan would catch a use after free).
TEST_IMPL(stop_gives_up_on_a_stuck_source) {
    static TestDev d;
    dev_init(&d, 16, 16, 0, 1.5);
    CaptureOpts o = {.live = 1, .open = ts_open, .open_user = &d};
    TbErr err = {{0}};
    o.stop_s = 0.3;
    Capture *c = capture_start_opts("test", &o, &err);
    sleep_s(0.05);
    double t0 = tb_now();
    capture_stop(c);
    double dt = tb_now() - t0;
    printf("stop with a stuck source: %.3f s\n", dt);
    EXPECT(dt < 0.6, "stop with a stuck source took %.3f s", dt);
    sleep_s(1.8);  // let the abandoned thread finish and free
}

// Failing first open: no thread, the error comes back.
TEST_IMPL(failed_first_open_returns_the_error) {
    static TestDev d;
    dev_init(&d, 16, 16, 0, 1.5);
    CaptureOpts o = {.live = 1, .open = ts_open, .open_user = &d, .stop_s = 0.3};
    TbErr err = {{0}};
    atomic_store(&d.unplugged, 1);
    Capture *c = capture_start_opts("camera:test", &o, &err);
    EXPECT(c == NULL && strstr(err.msg, "no such test device"), "start with no device: %s", err.msg);
}

// Real openers: bad spec and absent camera fail fast with their message.
TEST_IMPL(bad_spec_and_absent_camera_fail_fast) {
    register_sources();
    TbErr err = {{0}};
    Capture *c = capture_start("nonsense", 0, &err);
    EXPECT(c == NULL && strstr(err.msg, "unknown source"), "bad spec: %s", err.msg);
    c = capture_start("camera:/dev/video9", 0, &err);
    EXPECT(c == NULL && strcmp(err.msg, "camera /dev/video9: No such file or directory") == 0,
           "absent camera: %s", err.msg);
}

// ---------------------------------------------------------------- avfile

// The bundled clip and the Y4M it was made from; false (with a failed check)
// when either is missing.
static int clip_paths(const char **clip, const char **y4m) {
    register_sources();
    static char path[1024];
    const char *root = getenv("TABULA_SRC");
    snprintf(path, sizeof path, "%s/assets/default_clip.mp4", root ? root : ".");
    *clip = path;
    *y4m = test_data("asl_signer_a_320x240.y4m");
    if (access(*clip, R_OK) == 0 && access(*y4m, R_OK) == 0) return 1;
    EXPECT(0, "bundled clip %s or %s missing (set TABULA_SRC / TABULA_DATA)", *clip, *y4m);
    return 0;
}

// 320x240 at 30 fps, frames 0 and 150 as the Y4M's, frame 300 is frame 0 again.
TEST_IMPL(bundled_clip_decodes_as_the_y4m_and_loops) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    Source *s = source_open_avfile(clip, &err);
    EXPECT(s != NULL, "open %s: %s", clip, err.msg);
    if (!s) return;
    EXPECT(s->width == 320 && s->height == 240, "size %dx%d", s->width, s->height);
    EXPECT_NEAR(s->fps, 30, 1e-6, "fps");
    size_t n = (size_t)s->width * s->height * 3;
    uint8_t *f0 = malloc(n), *rgb = malloc(n);
    int w, h, bad = 0;
    for (int k = 0; k <= 300; k++) {
        if (s->read(s, k == 0 ? f0 : rgb, &err) != 1) {
            bad++;
            EXPECT(0, "read %d: %s", k, err.msg);
            break;
        }
        if (k == 0 || k == 150) {
            uint8_t *ref = clip_y4m_frame(y4m, k, &w, &h);
            int maxd;
            double mean = clip_mean_abs(k == 0 ? f0 : rgb, ref, n, &maxd);
            printf("default clip frame %d vs the Y4M: mean |err| %.3f (max %d)\n", k, mean, maxd);
            EXPECT(mean < 2.0, "frame %d mean error %.3f", k, mean);
            free(ref);
        }
    }
    // Frame 300 is frame 0 again: the loop seeks back and decodes identically.
    if (!bad) EXPECT(memcmp(rgb, f0, n) == 0, "frame 300 differs from frame 0 (no loop?)");
    source_close(s);
    free(f0), free(rgb);
}

// The same through the spec dispatcher, i.e. through the app's opener.
TEST_IMPL(file_spec_opens_the_clip_through_libav) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", clip);
    Source *s = source_open(spec, NULL, &err);
    EXPECT(s != NULL && s->width == 320, "source_open(%s): %s", spec, err.msg);
    source_close(s);
}

// Y4M through libav agrees with the direct conversion.
TEST_IMPL(y4m_through_libav_matches_direct_conversion) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    int w, h;
    size_t n = 320 * 240 * 3;
    uint8_t *rgb = malloc(n);
    Source *s = source_open_avfile(y4m, &err);
    EXPECT(s != NULL, "open y4m: %s", err.msg);
    if (s) {
        EXPECT_NEAR(s->fps, 30, 1e-6, "y4m fps");
        EXPECT(s->read(s, rgb, &err) == 1, "y4m read: %s", err.msg);
        uint8_t *ref = clip_y4m_frame(y4m, 0, &w, &h);
        int maxd;
        double mean = clip_mean_abs(rgb, ref, n, &maxd);
        printf("Y4M via libav frame 0: mean |err| %.3f (max %d)\n", mean, maxd);
        EXPECT(mean < 1.5, "y4m via libav mean error %.3f", mean);
        free(ref);
        source_close(s);
    }
    free(rgb);
}

// Paced by the capture thread at the clip's 30 fps, or as overridden.
TEST_IMPL(clip_capture_paced_at_30_or_overridden_60_fps) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", clip);
    Capture *c = capture_start(spec, 0, &err);
    EXPECT(c != NULL, "capture %s: %s", spec, err.msg);
    if (c) {
        sleep_s(0.1);
        int k = count_frames(c, 1.0);
        printf("clip via capture: %d frames in 1 s\n", k);
        EXPECT(k >= 24 && k <= 33, "%d frames in 1 s from a 30 fps clip", k);
        capture_stop(c);
    }
    c = capture_start(spec, 60, &err);
    if (c) {
        sleep_s(0.1);
        int k = count_frames(c, 1.0);
        printf("clip via capture at 60 fps: %d frames in 1 s\n", k);
        EXPECT(k >= 45 && k <= 63, "%d frames in 1 s at 60 fps", k);
        capture_stop(c);
    }
}

TEST_IMPL(missing_file_fails_with_reason) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    Source *s = source_open_avfile("/nonexistent/clip.mp4", &err);
    EXPECT(s == NULL && strstr(err.msg, "No such file or directory"), "missing: %s", err.msg);
    printf("missing: %s\n", err.msg);
}

TEST_IMPL(random_bytes_fail_naming_the_file) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    Source *s;
    char junk[] = "/tmp/tabula-junk-XXXXXX";
    int fd = mkstemp(junk);
    TbRng r;
    tb_rng_seed(&r, 3);
    uint8_t buf[65536];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)tb_rng_u32(&r);
    EXPECT(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf, "write junk");
    close(fd);
    s = source_open_avfile(junk, &err);
    EXPECT(s == NULL && strstr(err.msg, junk) != NULL, "junk: %s", err.msg);
    printf("junk: %s\n", err.msg);
    source_close(s);
    unlink(junk);
}

// The clip cut short: its index is at the front (faststart), the frames
// end early. It either opens and loops over what is there, or fails
// with a message; the second half alone has no index and must fail.
TEST_IMPL(cut_clip_plays_what_is_there_tail_alone_fails) {
    const char *clip, *y4m;
    if (!clip_paths(&clip, &y4m)) return;
    TbErr err = {{0}};
    Source *s;
    int fd;
    FILE *f = fopen(clip, "rb");
    static uint8_t data[2 << 20];
    size_t n = f ? fread(data, 1, sizeof data, f) : 0;
    if (f) fclose(f);
    char cut[] = "/tmp/tabula-cut-XXXXXX";
    fd = mkstemp(cut);
    EXPECT(write(fd, data, n / 3) == (ssize_t)(n / 3), "write cut");
    close(fd);
    s = source_open_avfile(cut, &err);
    if (s) {
        uint8_t *rgb = malloc((size_t)s->width * s->height * 3);
        int ok = 0, fails = 0;
        for (int k = 0; k < 400; k++) {
            int rr = s->read(s, rgb, &err);
            ok += rr == 1, fails += rr < 0;
            if (rr < 0) break;
        }
        printf("clip cut to a third: %d frames read%s%s\n", ok, fails ? ", then: " : " (looping)",
               fails ? err.msg : "");
        EXPECT(ok >= 50, "only %d frames from a third of the clip", ok);
        free(rgb);
        source_close(s);
    } else {
        printf("clip cut to a third: %s\n", err.msg);
    }
    fd = open(cut, O_WRONLY | O_TRUNC);
    EXPECT(write(fd, data + n / 2, n - n / 2) == (ssize_t)(n - n / 2), "write tail");
    close(fd);
    s = source_open_avfile(cut, &err);
    EXPECT(s == NULL, "tail of an MP4 opened");
    printf("tail only: %s\n", err.msg);
    source_close(s);
    unlink(cut);
}

TEST_MAIN(TEST_ENTRY(unplug_gives_lost_with_reason_replug_resumes), TEST_ENTRY(silent_live_source_counts_as_lost),
          TEST_ENTRY(newest_whole_frame_wins_under_fast_producer), TEST_ENTRY(file_source_paced_at_its_fps),
          TEST_ENTRY(file_source_paced_at_fps_override), TEST_ENTRY(stop_joins_within_1s_during_slow_reads),
          TEST_ENTRY(stop_gives_up_on_a_stuck_source), TEST_ENTRY(failed_first_open_returns_the_error),
          TEST_ENTRY(bad_spec_and_absent_camera_fail_fast),
          TEST_ENTRY(bundled_clip_decodes_as_the_y4m_and_loops),
          TEST_ENTRY(file_spec_opens_the_clip_through_libav),
          TEST_ENTRY(y4m_through_libav_matches_direct_conversion),
          TEST_ENTRY(clip_capture_paced_at_30_or_overridden_60_fps), TEST_ENTRY(missing_file_fails_with_reason),
          TEST_ENTRY(random_bytes_fail_naming_the_file), TEST_ENTRY(cut_clip_plays_what_is_there_tail_alone_fails))
