// color.c: BT.601 limited-range YUV -> RGB8 for the Y4M reader and the camera path
// (planar 4:2:0 and 4:4:4, packed YUYV 4:2:2), all through yuv_px.
#include "color.h"

// BT.601, limited range (Y 16..235, Cb/Cr 16..240), in 16.16 fixed point:
//   R = 1.164383 (Y-16)                  + 1.596027 (V-128)
//   G = 1.164383 (Y-16) - 0.391762 (U-128) - 0.812968 (V-128)
//   B = 1.164383 (Y-16) + 2.017232 (U-128)
#define YC 76309    // 1.164383 * 65536
#define RV 104597   // 1.596027
#define GU 25675    // 0.391762
#define GV 53279    // 0.812968
#define BU 132201   // 2.017232

static inline uint8_t clamp_u8(int32_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

static inline void yuv_px(uint8_t *rgb, int y, int u, int v) {
    // Bias by 512 << 16 so every sum is positive and the rounding shift is exact.
    const int32_t bias = (512 << 16) + 32768;
    int32_t c = YC * (y - 16) + bias;
    u -= 128, v -= 128;
    rgb[0] = clamp_u8(((c + RV * v) >> 16) - 512);
    rgb[1] = clamp_u8(((c - GU * u - GV * v) >> 16) - 512);
    rgb[2] = clamp_u8(((c + BU * u) >> 16) - 512);
}

// Chroma planes are ceil(w/2) x ceil(h/2) (what Y4M and ffmpeg use for odd
// sizes); each chroma sample covers a 2x2 block of luma (nearest, no filter).
void yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int w,
                   int h) {
    int cw = (w + 1) / 2;
    for (int j = 0; j < h; j++) {
        const uint8_t *yr = y + (size_t)j * w;
        const uint8_t *ur = u + (size_t)(j / 2) * cw;
        const uint8_t *vr = v + (size_t)(j / 2) * cw;
        uint8_t *out = rgb + (size_t)j * w * 3;
        for (int i = 0; i < w; i++) yuv_px(out + 3 * i, yr[i], ur[i / 2], vr[i / 2]);
    }
}

void yuv444_to_rgb(uint8_t *rgb, const uint8_t *y, const uint8_t *u, const uint8_t *v, int w,
                   int h) {
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) yuv_px(rgb + 3 * i, y[i], u[i], v[i]);
}

void yuyv_to_rgb(uint8_t *rgb, const uint8_t *yuyv, int w, int h, size_t stride) {
    if (!stride) stride = (size_t)(w + (w & 1)) * 2;
    for (int r = 0; r < h; r++) {
        const uint8_t *p = yuyv + (size_t)r * stride;
        uint8_t *o = rgb + (size_t)r * w * 3;
        int x = 0;
        for (; x + 1 < w; x += 2, p += 4, o += 6) {
            yuv_px(o, p[0], p[1], p[3]);
            yuv_px(o + 3, p[2], p[1], p[3]);
        }
        if (x < w) yuv_px(o, p[0], p[1], p[3]);  // odd width: last pixel of a pair
    }
}
