// test_tiles.c: why it exists: the atlas's tiles are drawn by one op on the CPU
// (tiles_draw) that the GPU's twin must match bit for bit (test_kernel_host), so
// the op's own rules are pinned here on pictures small enough to write out by
// hand: the colour index of each value, the nearest value when a tile is
// magnified or shrunk, the gaps and the unused cells, a flat channel, NaN and
// infinities, the output drawn as a picture, and RGB8 beside RGBA8.
#include <math.h>

#include "ops.h"
#include "test.h"

// lut[i] = (i, 255 - i, 7i): the index can be read back from any pixel.
static uint8_t lut[256][3];
static void make_lut(void) {
    for (int i = 0; i < 256; i++) lut[i][0] = (uint8_t)i, lut[i][1] = (uint8_t)(255 - i), lut[i][2] = (uint8_t)(i * 7);
}

// Each pixel's colour index (no entry of lut is grey), or a grey v as -v - 1.
static void indices(const uint8_t *pic, int w, int h, int bpp, int *idx) {
    for (int i = 0; i < w * h; i++) {
        const uint8_t *p = pic + (size_t)i * bpp;
        idx[i] = p[0] == p[1] && p[1] == p[2] ? -p[0] - 1 : p[0];
        if (bpp == 4) EXPECT(p[3] == 255, "pixel %d alpha %d", i, p[3]);
    }
}

// Two channels of 2x2 in a grid of 3 columns, tiles 2x2: gaps of 90, the
// third cell background 24, index = fmaf(x - lo, 255/(hi - lo), 0.5) truncated.
TEST_IMPL(indices_gaps_unused_cells) {
    make_lut();
    const float x[8] = {0, 1, 2, 3, -1, -1, -1, -1};  // the second is flat: index 0
    TileGeom g = {.ch = 2, .cols = 3, .sw = 2, .sh = 2, .tw = 2, .th = 2, .gap = 90, .bg = 24};
    int w, h;
    tiles_size(&g, &w, &h);
    EXPECT(w == 8 && h == 2, "block %dx%d, want 8x2", w, h);
    uint8_t pic[8 * 2 * 3];
    int idx[16];
    tiles_draw(pic, 8 * 3, 3, x, &g, (const uint8_t(*)[3])lut);
    indices(pic, 8, 2, 3, idx);
    // 85 = 1 * 85 + 0.5 truncated; the gap at column 2, from column 5 (the
    // gap before the unused cell) background.
    static const int want[16] = {0, 85, -91, 0, 0, -25, -25, -25, 170, 255, -91, 0, 0, -25, -25, -25};
    for (int i = 0; i < 16; i++) EXPECT(idx[i] == want[i], "pixel %d: %d, want %d", i, idx[i], want[i]);
}

// A 2x1 channel magnified to 4x2 repeats each value; a 5x1 channel shrunk to 2
// pixels takes values 0 and 2 (u * sw / tw).
TEST_IMPL(nearest_value) {
    make_lut();
    const float a[2] = {0, 1}, b[5] = {0, 10, 4, 3, 2};
    TileGeom g = {.ch = 1, .cols = 1, .sw = 2, .sh = 1, .tw = 4, .th = 2};
    uint8_t pic[4 * 2 * 4];
    int idx[8];
    tiles_draw(pic, 16, 4, a, &g, (const uint8_t(*)[3])lut);
    indices(pic, 4, 2, 4, idx);
    for (int i = 0; i < 8; i++) EXPECT(idx[i] == (i % 4 < 2 ? 0 : 255), "magnified pixel %d: %d", i, idx[i]);
    g = (TileGeom){.ch = 1, .cols = 1, .sw = 5, .sh = 1, .tw = 2, .th = 1};
    tiles_draw(pic, 16, 4, b, &g, (const uint8_t(*)[3])lut);
    indices(pic, 2, 1, 4, idx);
    EXPECT(idx[0] == 0 && idx[1] == 102, "shrunk: %d %d, want 0 102 (4 of 0..10)", idx[0], idx[1]);
}

// NaN is left out of min and max and drawn 0; +inf makes the scale 0 (every
// finite value 0, +inf itself 0); a channel of NaN only is 0.
TEST_IMPL(nan_and_infinity) {
    make_lut();
    const float x[12] = {NAN, 1, 3, 2, 1, INFINITY, 2, 3, NAN, NAN, NAN, NAN};
    TileGeom g = {.ch = 3, .cols = 3, .sw = 4, .sh = 1, .tw = 4, .th = 1, .gap = 90, .bg = 24};
    uint8_t pic[14 * 3];
    int idx[14];
    tiles_draw(pic, 14 * 3, 3, x, &g, (const uint8_t(*)[3])lut);
    indices(pic, 14, 1, 3, idx);
    static const int want[14] = {0, 0, 255, 128, -91, 0, 0, 0, 0, -91, 0, 0, 0, 0};
    for (int i = 0; i < 14; i++) EXPECT(idx[i] == want[i], "pixel %d: %d, want %d", i, idx[i], want[i]);
}

// The output as a picture: the planes as R, G, B, clamped to [0,1], NaN 0,
// fmaf(v, 255, 0.5) truncated (the rounding of tensor_to_frame).
TEST_IMPL(image_as_tensor_to_frame) {
    const float x[6] = {0.5f, -1, 2, NAN, 0.2f, 1};
    uint8_t want[6], pic[2 * 4];
    tensor_to_frame(want, x, 1, 2);
    TileGeom g = {.ch = 3, .cols = 1, .sw = 2, .sh = 1, .tw = 2, .th = 1, .image = 1};
    tiles_draw(pic, 8, 4, x, &g, (const uint8_t(*)[3])lut);
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 3; c++)
            EXPECT(pic[4 * p + c] == want[3 * p + c], "pixel %d channel %d: %d, want %d", p, c, pic[4 * p + c],
                   want[3 * p + c]);
    EXPECT(pic[0] == 128 && pic[1] == 255 && pic[2] == 51, "first pixel %d %d %d, want 128 255 51", pic[0], pic[1], pic[2]);
}

TEST_MAIN(TEST_ENTRY(indices_gaps_unused_cells), TEST_ENTRY(nearest_value), TEST_ENTRY(nan_and_infinity),
          TEST_ENTRY(image_as_tensor_to_frame))
