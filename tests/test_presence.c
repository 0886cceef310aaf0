// test_presence.c: why it exists: the empty-room detector decides, for hours on
// end and with nobody watching, whether the network learns. If it acted too
// soon it would stop learning from a visitor standing still; if motion did not
// bring learning back at once, visitors would face a network that ignores them;
// if it flickered around the threshold, the log would fill and learning would
// stutter. The measure must also be the number the documentation promises.
#include <stdint.h>
#include <string.h>

#include "presence.h"
#include "test.h"

static Presence make(int mode, float threshold, float after_s) {
    Presence p;
    PresenceConfig c = {.mode = mode, .threshold = threshold, .after_s = after_s, .slow_factor = 0.25f};
    presence_init(&p, &c);
    return p;
}

// Feed measure m at 4 frames a second (times exact in binary) from t0 to t1
// (exclusive); the changes seen go to *entered and *left, the time of the
// first change to *when.
static void feed(Presence *p, float m, double t0, double t1, int *entered, int *left, double *when) {
    for (int i = 0; t0 + 0.25 * i < t1; i++) {
        double t = t0 + 0.25 * i;
        int c = presence_feed(p, m, t);
        if (c && *when < 0) *when = t;
        if (c > 0) (*entered)++;
        if (c < 0) (*left)++;
    }
}

// Still frames: nothing for after_s seconds, then the room is empty, once.
TEST_IMPL(still_room_acts_after_after_s) {
    Presence p = make(PRESENCE_PAUSE, 0.01f, 10);
    int in = 0, out = 0;
    double when = -1;
    feed(&p, 0.002f, 0, 30, &in, &out, &when);
    EXPECT(in == 1 && out == 0, "%d entries, %d exits, want 1 and 0", in, out);
    EXPECT_NEAR(when, 10.0, 1e-9, "acts at after_s");
    EXPECT(presence_pausing(&p) && presence_lr_factor(&p) == 1.0f, "pause mode pauses, lr unscaled");
    char line[96];
    presence_describe(&p, line, sizeof line);
    EXPECT(strcmp(line, "empty room: learning paused") == 0, "\"%s\"", line);
}

// One moving frame in an empty room and learning comes back on that frame.
TEST_IMPL(motion_resumes_at_once) {
    Presence p = make(PRESENCE_PAUSE, 0.01f, 5);
    int in = 0, out = 0;
    double when = -1;
    feed(&p, 0.0f, 0, 6, &in, &out, &when);
    EXPECT(p.empty, "empty after 6 s of stillness");
    EXPECT(presence_feed(&p, 0.05f, 6.0) == -1, "the first moving frame resumes");
    EXPECT(!presence_pausing(&p) && !p.empty, "learning again");
    // Still again: the wait starts afresh from the last motion.
    in = out = 0, when = -1;
    feed(&p, 0.0f, 6.25, 20, &in, &out, &when);
    EXPECT(in == 1 && out == 0, "%d, %d", in, out);
    EXPECT_NEAR(when, 11.25, 1e-9, "after_s from the first still frame after the motion");
}

// Between threshold and PRESENCE_HYST x threshold a frame keeps the class of
// the one before: noise near the threshold neither empties a lived-in room nor
// wakes an empty one.
TEST_IMPL(hysteresis_between_the_thresholds) {
    Presence p = make(PRESENCE_PAUSE, 0.01f, 2);
    int in = 0, out = 0;
    double when = -1;
    feed(&p, 0.012f, 0, 30, &in, &out, &when);  // above threshold, below 1.5x: still "moving"
    EXPECT(in == 0 && !p.empty, "in the band from moving: never empty (%d)", in);
    feed(&p, 0.005f, 30, 33, &in, &out, &when);
    EXPECT(in == 1 && p.empty, "still from 30 s: empty at 32 s (%d entries)", in);
    EXPECT_NEAR(when, 32.0, 1e-9, "when");
    // Noise alternating across the threshold in an empty room: no change.
    for (int i = 0; i < 40; i++) out += presence_feed(&p, i % 2 ? 0.014f : 0.008f, 33 + 0.25 * i) != 0;
    EXPECT(out == 0 && p.empty, "%d changes on noise between 0.008 and 0.014", out);
    EXPECT(presence_feed(&p, 0.0151f, 44) == -1, "just above 1.5 x threshold resumes");
}

TEST_IMPL(slow_mode_scales_lr_and_off_never_acts) {
    Presence p = make(PRESENCE_SLOW, 0.01f, 1);
    int in = 0, out = 0;
    double when = -1;
    EXPECT(presence_lr_factor(&p) == 1.0f, "not yet empty: lr x1");
    feed(&p, 0.0f, 0, 2, &in, &out, &when);
    EXPECT(in == 1 && !presence_pausing(&p) && presence_lr_factor(&p) == 0.25f, "slow: lr x%g, pausing %d",
           (double)presence_lr_factor(&p), presence_pausing(&p));
    char line[96];
    presence_describe(&p, line, sizeof line);
    EXPECT(strcmp(line, "empty room: learning slowed (lr x0.25)") == 0, "\"%s\"", line);
    Presence off = make(PRESENCE_OFF, 0.01f, 0);
    in = 0;
    feed(&off, 0.0f, 0, 10, &in, &out, &when);
    EXPECT(in == 0 && presence_lr_factor(&off) == 1.0f && !presence_pausing(&off), "off acts: %d", in);
    EXPECT(presence_mode_parse("pause") == PRESENCE_PAUSE && presence_mode_parse("slow") == PRESENCE_SLOW &&
               presence_mode_parse("off") == PRESENCE_OFF && presence_mode_parse("nap") == -1, "mode names");
}

enum { W = 64, H = 36 };  // 2x2 pixels per thumbnail cell

static void grey(uint8_t *rgb, int w, int h, uint8_t v) { memset(rgb, v, (size_t)w * h * 3); }

// A white 2x2 square (one thumbnail cell) at cell (cx, cy) on black.
static void square(uint8_t *rgb, int cx, int cy) {
    grey(rgb, W, H, 0);
    for (int y = 2 * cy; y < 2 * cy + 2; y++) memset(rgb + ((size_t)y * W + 2 * cx) * 3, 255, 6);
}

// The measure is the mean absolute thumbnail difference in 0..1 against a
// reference renewed every PRESENCE_REF_S.
TEST_IMPL(measure_is_mean_thumbnail_difference) {
    static uint8_t rgb[W * H * 3];
    Presence p = make(PRESENCE_PAUSE, 0.01f, 60);
    grey(rgb, W, H, 100);
    EXPECT(presence_measure(&p, rgb, W, H, 0.0) == 0.0f, "first frame: 0");
    float th[PRESENCE_TW * PRESENCE_TH];
    presence_thumb(rgb, W, H, th);
    EXPECT_NEAR(th[0], 100 / 255.0, 1e-6, "grey 100: thumbnail 100/255");
    grey(rgb, W, H, 110);
    EXPECT_NEAR(presence_measure(&p, rgb, W, H, 0.1), 10 / 255.0, 1e-6, "+10 levels over 0.1 s");
    grey(rgb, W, H, 120);
    EXPECT_NEAR(presence_measure(&p, rgb, W, H, 0.2), 20 / 255.0, 1e-6, "against the reference of t = 0");
    EXPECT_NEAR(presence_measure(&p, rgb, W, H, 0.3), 20 / 255.0, 1e-6, "t = 0.3: still t = 0's, then renewed");
    EXPECT(presence_measure(&p, rgb, W, H, 0.4) == 0.0f, "against t = 0.3's: no change");
    // A square one cell big moving one cell: two cells change by 1.
    square(rgb, 5, 5);
    presence_measure(&p, rgb, W, H, 1.0);
    square(rgb, 6, 5);
    EXPECT_NEAR(presence_measure(&p, rgb, W, H, 1.1), 2.0 / (PRESENCE_TW * PRESENCE_TH), 1e-6, "moved a cell");
    // Narrower than the thumbnail (16x16: the smallest training size) works too.
    static uint8_t small[16 * 16 * 3];
    grey(small, 16, 16, 51);
    presence_thumb(small, 16, 16, th);
    EXPECT_NEAR(th[PRESENCE_TW * PRESENCE_TH - 1], 0.2, 1e-6, "16x16 frame, last cell");
}

TEST_MAIN(TEST_ENTRY(still_room_acts_after_after_s), TEST_ENTRY(motion_resumes_at_once),
          TEST_ENTRY(hysteresis_between_the_thresholds), TEST_ENTRY(slow_mode_scales_lr_and_off_never_acts),
          TEST_ENTRY(measure_is_mean_thumbnail_difference))
