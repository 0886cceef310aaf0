// pattern.c: a synthetic moving test image, so the program runs with no camera
// or file. Frame n depends only on n (integer arithmetic, no clock):
//   top 2/3: seven 75% colour bars; bottom 1/3: a grey ramp scrolling left;
//   a filled circle bouncing around the frame; along the bottom edge, 16 blocks
//   showing the frame number in binary (bit 0 on the left, white = 1).
#include <string.h>

#include "source.h"

typedef struct {
    uint32_t frame;
} Pattern;

static const uint8_t BARS[7][3] = {
    {191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0},
    {191, 0, 191},   {191, 0, 0},   {0, 0, 191},
};

// Position on a back-and-forth path over [0, span]: 0, 1, .., span, span-1, .., 0, ...
static int bounce(int64_t t, int span) {
    if (span <= 0) return 0;
    int64_t p = t % (2 * (int64_t)span);
    return (int)(p <= span ? p : 2 * span - p);
}

static void put(uint8_t *px, const uint8_t c[3]) { memcpy(px, c, 3); }

static int pattern_read(Source *s, uint8_t *rgb, TbErr *err) {
    Pattern *p = s->ctx;
    int w = s->width, h = s->height;
    uint32_t n = p->frame++;
    int bars_h = (2 * h) / 3;
    int scroll = (int)((n * 4u) % (uint32_t)w);
    for (int y = 0; y < h; y++) {
        uint8_t *row = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            if (y < bars_h) {
                put(row + 3 * x, BARS[(int64_t)x * 7 / w]);
            } else {
                uint8_t g = (uint8_t)(((x + scroll) % w) * 255 / (w > 1 ? w - 1 : 1));
                uint8_t c[3] = {g, g, g};
                put(row + 3 * x, c);
            }
        }
    }
    // Circle: radius 1/8 of the short side, moving 5 px/frame across and 3 down.
    int r = (w < h ? w : h) / 8;
    if (r < 1) r = 1;
    int cx = r + bounce((int64_t)n * 5, w - 2 * r);
    int cy = r + bounce((int64_t)n * 3, h - 2 * r);
    static const uint8_t ORANGE[3] = {255, 128, 0};
    for (int y = cy - r; y <= cy + r; y++) {
        if (y < 0 || y >= h) continue;
        for (int x = cx - r; x <= cx + r; x++) {
            if (x < 0 || x >= w) continue;
            int dx = x - cx, dy = y - cy;
            if (dx * dx + dy * dy <= r * r) put(rgb + ((size_t)y * w + x) * 3, ORANGE);
        }
    }
    // Frame counter: 16 blocks in the bottom strip.
    int bw = w / 16, bh = h / 16;
    if (bw >= 1 && bh >= 1) {
        static const uint8_t ONE[3] = {255, 255, 255}, ZERO[3] = {0, 0, 0};
        for (int b = 0; b < 16; b++) {
            const uint8_t *c = (n >> b) & 1 ? ONE : ZERO;
            for (int y = h - bh; y < h; y++)
                for (int x = b * bw; x < (b + 1) * bw; x++) put(rgb + ((size_t)y * w + x) * 3, c);
        }
    }
    return 1;
}

static void pattern_close(Source *s) {
    free(s->ctx);
    s->ctx = NULL;
}

Source *source_open_pattern(int width, int height, TbErr *err) {
    if (width < 1 || height < 1 || width > 16384 || height > 16384) {
        tb_fail(err, "pattern: size %dx%d out of range (1..16384)", width, height);
        return NULL;
    }
    Source *s = tb_calloc(1, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "pattern:%dx%d", width, height);
    s->width = width;
    s->height = height;
    s->fps = 30;
    s->ctx = tb_calloc(1, sizeof(Pattern));
    s->read = pattern_read;
    s->close = pattern_close;
    return s;
}
