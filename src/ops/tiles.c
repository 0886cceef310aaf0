// tiles.c: the layer atlas's tiles (ops.h): one layer's channels as a grid of
// colour-mapped tiles, or the output as a picture. Plain loops; the CUDA twin
// (kernels/tiles.cu) makes the same bits: the same comparisons for min and
// max, one IEEE division and one fused multiply-add per pixel.
#include <math.h>

#include "ops.h"

void tiles_size(const TileGeom *g, int *w, int *h) {
    if (g->image) {
        *w = g->tw, *h = g->th;
        return;
    }
    int rows = (g->ch + g->cols - 1) / g->cols;
    *w = g->cols * (g->tw + 1) - 1, *h = rows * (g->th + 1) - 1;
}

// Colour index of a value, truncated and clamped (NaN: 0).
static inline int tile_index(float v, float lo, float k) {
    float f = fmaf(v - lo, k, 0.5f);
    return f >= 0.0f ? (f < 255.0f ? (int)f : 255) : 0;
}

static inline uint8_t image_byte(float v) {
    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    return (uint8_t)fmaf(v, 255.0f, 0.5f);
}

static inline void put(uint8_t *p, int bpp, uint8_t r, uint8_t g, uint8_t b) {
    p[0] = r, p[1] = g, p[2] = b;
    if (bpp == 4) p[3] = 255;
}

static void fill(uint8_t *out, size_t pitch, int bpp, int x, int y, int w, int h, uint8_t v) {
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) put(out + (size_t)(y + r) * pitch + (size_t)(x + c) * bpp, bpp, v, v, v);
}

static void draw_image(uint8_t *out, size_t pitch, int bpp, const float *x, const TileGeom *g) {
    size_t n = (size_t)g->sw * g->sh;
    for (int v = 0; v < g->th; v++) {
        uint8_t *row = out + (size_t)(g->y + v) * pitch + (size_t)g->x * bpp;
        size_t r = (size_t)(v * g->sh / g->th) * g->sw;
        for (int u = 0; u < g->tw; u++) {
            size_t i = r + (size_t)(u * g->sw / g->tw);
            put(row + (size_t)u * bpp, bpp, image_byte(x[i]), image_byte(x[n + i]), image_byte(x[2 * n + i]));
        }
    }
}

// One channel (sw x sh values) into its tile at (tx, ty); xmap: the value's
// column for each of the tile's columns (made once per layer).
static void draw_tile(uint8_t *out, size_t pitch, int bpp, const TileGeom *g, int tx, int ty, const float *x,
                      const int *xmap, const uint8_t lut[256][3]) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < (size_t)g->sw * g->sh; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    float k = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int v = 0; v < g->th; v++) {
        uint8_t *row = out + (size_t)(ty + v) * pitch + (size_t)tx * bpp;
        const float *src = x + (size_t)(v * g->sh / g->th) * g->sw;
        for (int u = 0; u < g->tw; u++) {
            const uint8_t *c = lut[tile_index(src[xmap[u]], lo, k)];
            put(row + (size_t)u * bpp, bpp, c[0], c[1], c[2]);
        }
    }
}

void tiles_draw(uint8_t *out, size_t pitch, int bpp, const float *act, const TileGeom *g,
                const uint8_t lut[256][3]) {
    CHECK(bpp == 3 || bpp == 4, "tiles_draw: %d bytes a pixel", bpp);
    if (g->image) {
        draw_image(out, pitch, bpp, act, g);
        return;
    }
    int w, h, rows = (g->ch + g->cols - 1) / g->cols;
    tiles_size(g, &w, &h);
    fill(out, pitch, bpp, g->x, g->y, w, h, g->gap);
    int used = g->ch - (rows - 1) * g->cols;  // the last row's unused cells: background, not tiles
    if (used < g->cols) {
        int x0 = used * (g->tw + 1) - 1;
        fill(out, pitch, bpp, g->x + x0, g->y + (rows - 1) * (g->th + 1), w - x0, g->th, g->bg);
    }
    int *xmap = tb_malloc((size_t)g->tw * sizeof(int));
    for (int u = 0; u < g->tw; u++) xmap[u] = u * g->sw / g->tw;
    size_t hw = (size_t)g->sw * g->sh;
    for (int c = 0; c < g->ch; c++)
        draw_tile(out, pitch, bpp, g, g->x + (c % g->cols) * (g->tw + 1), g->y + (c / g->cols) * (g->th + 1),
                  act + (size_t)c * hw, xmap, lut);
    free(xmap);
}
