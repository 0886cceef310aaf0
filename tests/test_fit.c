// test_fit.c: why it exists: every frame the network sees went through
// frame_fit (centre crop + resize to the training size) and, for Y4M files and
// YUYV cameras, the BT.601 limited-range YUV -> RGB conversion of color.h. A
// crop off-centre, a resize that drops thin detail or shifts a corner, or a
// wrong colour would be learned as if it were the scene. Checked on images and
// colours with known answers (real frames against libswscale:
// tests/app/test_color_sws.c).
#include <string.h>

#include "color.h"
#include "frame_fit.h"
#include "source.h"
#include "test.h"

static void fill(uint8_t *img, int w, int x0, int x1, int y0, int y1, uint8_t r, uint8_t g,
                 uint8_t b) {
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint8_t *p = img + ((size_t)y * w + x) * 3;
            p[0] = r, p[1] = g, p[2] = b;
        }
}

// 2:1 source into a square: the left and right quarters are cut away.
TEST_IMPL(crop_keeps_centre) {
    int sw = 200, sh = 100, d = 50;
    uint8_t *src = malloc((size_t)sw * sh * 3), *dst = malloc((size_t)d * d * 3);
    fill(src, sw, 0, 50, 0, sh, 255, 0, 0);     // left quarter red
    fill(src, sw, 50, 150, 0, sh, 0, 200, 0);   // centre half green
    fill(src, sw, 150, 200, 0, sh, 0, 0, 255);  // right quarter blue
    frame_fit(dst, d, d, src, sw, sh);
    int bad = 0;
    for (int i = 0; i < d * d; i++)
        bad += dst[3 * i] != 0 || dst[3 * i + 1] != 200 || dst[3 * i + 2] != 0;
    EXPECT(bad == 0, "%d of %d pixels are not the centre's green", bad, d * d);

    // Tall source (1:2) into a 1:1 target: top and bottom quarters go.
    fill(src, 100, 0, 100, 0, 50, 10, 10, 10);
    fill(src, 100, 0, 100, 50, 150, 90, 90, 90);
    fill(src, 100, 0, 100, 150, 200, 250, 250, 250);
    frame_fit(dst, d, d, src, 100, 200);
    EXPECT(dst[0] == 90 && dst[(d * d - 1) * 3] == 90, "tall crop: %d %d", dst[0],
           dst[(d * d - 1) * 3]);

    // Same aspect, same size: an exact copy.
    for (int i = 0; i < 64 * 48 * 3; i++) src[i] = (uint8_t)(i * 7 + 3);
    uint8_t *cp = malloc(64 * 48 * 3);
    frame_fit(cp, 64, 48, src, 64, 48);
    EXPECT(memcmp(cp, src, 64 * 48 * 3) == 0, "identity fit changed the image");
    // Crop only (no resize): 64x48 -> 48x48 is columns 8..55.
    frame_fit(cp, 48, 48, src, 64, 48);
    EXPECT(memcmp(cp, src + 8 * 3, 48 * 3) == 0, "crop-only fit is not columns 8..55 (row 0)");
    EXPECT(memcmp(cp + 47 * 48 * 3, src + (47 * 64 + 8) * 3, 48 * 3) == 0,
           "crop-only fit is not columns 8..55 (row 47)");
    free(cp);
    free(src);
    free(dst);
}

// Halving a 1-pixel checker of 0/255 averages every 2x2 block to 127.5 -> 128;
// a 2-pixel checker halved keeps its pattern exactly.
TEST_IMPL(downscale_averages) {
    int s = 64, d = 32;
    uint8_t *src = malloc((size_t)s * s * 3), *dst = malloc((size_t)d * d * 3);
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            uint8_t v = ((x + y) & 1) ? 255 : 0;
            fill(src, s, x, x + 1, y, y + 1, v, v, (uint8_t)(v / 5));
        }
    frame_fit(dst, d, d, src, s, s);
    int bad = 0;
    for (int i = 0; i < d * d; i++) bad += dst[3 * i] != 128 || dst[3 * i + 2] != 26;  // 51/2
    EXPECT(bad == 0, "%d pixels of the halved checker are not the 2x2 mean (got %d %d)", bad,
           dst[0], dst[2]);

    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            uint8_t v = (((x / 2) + (y / 2)) & 1) ? 200 : 20;
            fill(src, s, x, x + 1, y, y + 1, v, v, v);
        }
    frame_fit(dst, d, d, src, s, s);
    bad = 0;
    for (int y = 0; y < d; y++)
        for (int x = 0; x < d; x++) bad += dst[(y * d + x) * 3] != (((x + y) & 1) ? 200 : 20);
    EXPECT(bad == 0, "%d pixels wrong after halving a 2-pixel checker", bad);

    // Quartering thin stripes (every 4th column and row lit): area averaging sees
    // each one (1/4 of the pixels of each row: 255/4 = 63.75 -> 64, and the lit
    // row in each block of 4 adds 3/4 * 255 / 4). A 2-tap filter would miss them.
    int q = 16;
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            uint8_t v = (x % 4 == 3) || (y % 4 == 0) ? 255 : 0;
            fill(src, s, x, x + 1, y, y + 1, v, (uint8_t)((x % 4 == 3) ? 255 : 0), 0);
        }
    frame_fit(dst, q, q, src, s, s);
    bad = 0;
    for (int i = 0; i < q * q; i++) bad += dst[3 * i] != 112 || dst[3 * i + 1] != 64;  // 111.56, 63.75
    EXPECT(bad == 0, "%d pixels wrong after quartering stripes (got %d %d)", bad, dst[0], dst[1]);

    // Non-integer ratio (1920x1080 -> 256x256): a constant image stays constant,
    // a horizontal ramp stays monotonic.
    int bw = 1920, bh = 1080;
    uint8_t *big = malloc((size_t)bw * bh * 3);
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            uint8_t *p = big + ((size_t)y * bw + x) * 3;
            p[0] = 77, p[1] = (uint8_t)(x * 255 / (bw - 1)), p[2] = (uint8_t)(y & 255);
        }
    uint8_t *out = malloc(256 * 256 * 3);
    double t0 = tb_now();
    for (int k = 0; k < 10; k++) frame_fit(out, 256, 256, big, bw, bh);
    double ms = (tb_now() - t0) * 100;
    printf("frame_fit 1920x1080 -> 256x256: %.2f ms\n", ms);
    int flat = 1, mono = 1;
    for (int y = 0; y < 256; y++)
        for (int x = 0; x < 256; x++) {
            flat &= out[(y * 256 + x) * 3] == 77;
            if (x) mono &= out[(y * 256 + x) * 3 + 1] >= out[(y * 256 + x - 1) * 3 + 1];
        }
    EXPECT(flat, "constant channel changed by resampling");
    EXPECT(mono, "ramp not monotonic after resampling");
    // Crop is columns 420..1499; the ramp there runs from 420*255/1919=55.8 to 199.2.
    EXPECT_NEAR(out[1], 56, 2, "left edge of the cropped ramp");
    EXPECT_NEAR(out[255 * 3 + 1], 199, 2, "right edge of the cropped ramp");
    // Loose bound (also holds for -O0 and sanitizer builds); Release runs ~5 ms here.
    EXPECT(ms < 150, "frame_fit too slow: %.1f ms per 1080p frame", ms);
    free(big);
    free(out);
    free(src);
    free(dst);
}

// Upscaling (bilinear, centres aligned) keeps the corner pixels and the middle
// of a 2-pixel gradient.
TEST_IMPL(upscale) {
    uint8_t src[2 * 2 * 3] = {0, 10, 20, 100, 110, 120, 200, 210, 220, 250, 240, 230};
    uint8_t dst[8 * 8 * 3];
    frame_fit(dst, 8, 8, src, 2, 2);
    EXPECT(memcmp(dst, src, 3) == 0, "top-left corner %d,%d,%d", dst[0], dst[1], dst[2]);
    EXPECT(memcmp(dst + 7 * 3, src + 3, 3) == 0, "top-right corner %d", dst[7 * 3]);
    EXPECT(memcmp(dst + 56 * 3, src + 6, 3) == 0, "bottom-left corner %d", dst[56 * 3]);
    EXPECT(memcmp(dst + 63 * 3, src + 9, 3) == 0, "bottom-right corner %d", dst[63 * 3]);
    // Row 0, x=3 and x=4 straddle the centre: source x = 3.5/4-0.5 = 0.375, 0.625.
    EXPECT_NEAR(dst[3 * 3], 0 + 0.375 * 100, 1, "x=3 interpolated");
    EXPECT_NEAR(dst[4 * 3], 0 + 0.625 * 100, 1, "x=4 interpolated");
    // Monotonic along the top row.
    int mono = 1;
    for (int x = 1; x < 8; x++) mono &= dst[x * 3] >= dst[(x - 1) * 3];
    EXPECT(mono, "top row not monotonic");
}

// BT.601 limited range: Y 16 -> black, 235 -> white; the primaries at 100%.
// Expected RGB from ffmpeg 5.1 (scale=in_color_matrix=bt601:in_range=tv:
// out_range=pc:flags=neighbor+accurate_rnd+full_chroma_int).
TEST_IMPL(yuv_known_colours) {
    static const uint8_t yuv[8][3] = {{16, 128, 128}, {235, 128, 128}, {81, 90, 240},
                                      {145, 54, 34},  {41, 240, 110},  {126, 128, 128},
                                      {200, 60, 200}, {30, 200, 40}};
    static const uint8_t want[8][3] = {{0, 0, 0},     {255, 255, 255}, {254, 0, 0},
                                       {0, 255, 1},   {0, 0, 255},     {128, 128, 128},
                                       {255, 182, 77}, {0, 60, 162}};
    uint8_t Y[8], U[8], V[8], rgb[8 * 3];
    for (int i = 0; i < 8; i++) Y[i] = yuv[i][0], U[i] = yuv[i][1], V[i] = yuv[i][2];
    yuv444_to_rgb(rgb, Y, U, V, 4, 2);
    for (int i = 0; i < 8; i++)
        for (int c = 0; c < 3; c++) {
            char what[64];
            snprintf(what, sizeof what, "444 yuv(%d,%d,%d) channel %d", yuv[i][0], yuv[i][1],
                     yuv[i][2], c);
            EXPECT_NEAR(rgb[3 * i + c], want[i][c], 1, what);
        }
}

// Below black and above white clamp.
TEST_IMPL(yuv_clamps) {
    uint8_t y2[2] = {0, 255}, u2[2] = {128, 128}, v2[2] = {128, 128}, o2[6];
    yuv444_to_rgb(o2, y2, u2, v2, 2, 1);
    EXPECT(o2[0] == 0 && o2[1] == 0 && o2[2] == 0, "Y=0 -> %d %d %d", o2[0], o2[1], o2[2]);
    EXPECT(o2[3] == 255 && o2[4] == 255 && o2[5] == 255, "Y=255 -> %d", o2[3]);
}

// 4:2:0, 5x3 (odd: chroma is 3x2): each chroma sample covers a 2x2 luma block.
TEST_IMPL(yuv420_odd_size) {
    uint8_t Yp[15], Up[6] = {90, 54, 240, 128, 128, 128}, Vp[6] = {240, 34, 110, 128, 128, 128};
    uint8_t o[15 * 3];
    for (int i = 0; i < 15; i++) Yp[i] = (i / 5 < 2) ? (uint8_t[]){81, 81, 145, 145, 41}[i % 5] : 235;
    yuv420_to_rgb(o, Yp, Up, Vp, 5, 3);
    // Rows 0-1: red red green green blue; row 2: white.
    for (int y = 0; y < 2; y++) {
        const uint8_t *r = o + y * 5 * 3;
        EXPECT(r[0] >= 253 && r[1] <= 1 && r[2] <= 1, "row %d px 0 red: %d %d %d", y, r[0], r[1], r[2]);
        EXPECT(r[3] >= 253 && r[4] <= 1, "row %d px 1 red", y);
        EXPECT(r[6] <= 1 && r[7] >= 254 && r[8] <= 1, "row %d px 2 green: %d %d %d", y, r[6], r[7], r[8]);
        EXPECT(r[12] <= 1 && r[13] <= 1 && r[14] == 255, "row %d px 4 blue: %d %d %d", y, r[12], r[13], r[14]);
    }
    EXPECT(o[10 * 3] == 255 && o[14 * 3 + 2] == 255, "row 2 white: %d", o[10 * 3]);
}

TEST_MAIN(TEST_ENTRY(crop_keeps_centre), TEST_ENTRY(downscale_averages), TEST_ENTRY(upscale),
          TEST_ENTRY(yuv_known_colours), TEST_ENTRY(yuv_clamps), TEST_ENTRY(yuv420_odd_size))
