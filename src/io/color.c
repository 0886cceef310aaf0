// color.c: BT.601 limited-range YUV -> RGB8 for the Y4M reader and the camera path
// (planar 4:2:0 and 4:4:4, packed YUYV 4:2:2), all through yuv_px; and RGB8 ->
// YUYV / I420 for the virtual camera, through luma and chroma.
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

// RGB -> YUV, the same matrix inverted, in 16.16 fixed point:
//   Y  = 16  + ( 65.481 R + 128.553 G +  24.966 B) / 255
//   Cb = 128 + (-37.797 R -  74.203 G + 112.0   B) / 255
//   Cr = 128 + (112.0   R -  93.786 G -  18.214 B) / 255
#define YR 16829  // 65.481 / 255 * 65536
#define YG 33039
#define YB 6416
#define UR 9714
#define UG 19070
#define UVB 28784  // 112 / 255: Cb's B and Cr's R
#define VG 24103
#define VB 4681

static inline uint8_t luma(const uint8_t *p) {
    return (uint8_t)((YR * p[0] + YG * p[1] + YB * p[2] + (16 << 16) + 32768) >> 16);
}

// Cb and Cr of the mean of n pixels whose channel sums are s[3] (n = 1, 2 or 4).
// The bias keeps the numerator positive, so the division rounds to nearest.
static inline void chroma(const int32_t s[3], int n, uint8_t *u, uint8_t *v) {
    int32_t bias = (128 * n << 16) + (n << 15), d = n << 16;
    *u = (uint8_t)((-UR * s[0] - UG * s[1] + UVB * s[2] + bias) / d);
    *v = (uint8_t)((UVB * s[0] - VG * s[1] - VB * s[2] + bias) / d);
}

void rgb_to_yuyv(uint8_t *yuyv, const uint8_t *rgb, int w, int h, size_t stride) {
    if (!stride) stride = (size_t)w * 2;
    for (int r = 0; r < h; r++) {
        const uint8_t *p = rgb + (size_t)r * w * 3;
        uint8_t *o = yuyv + (size_t)r * stride;
        for (int x = 0; x + 1 < w; x += 2, p += 6, o += 4) {
            int32_t s[3] = {p[0] + p[3], p[1] + p[4], p[2] + p[5]};
            o[0] = luma(p), o[2] = luma(p + 3);
            chroma(s, 2, &o[1], &o[3]);
        }
    }
}

void rgb_to_i420(uint8_t *y, uint8_t *u, uint8_t *v, const uint8_t *rgb, int w, int h, size_t stride) {
    size_t cs = stride ? stride / 2 : (size_t)(w + 1) / 2;
    if (!stride) stride = (size_t)w;
    for (int r = 0; r < h; r++)
        for (int x = 0; x < w; x++) y[(size_t)r * stride + x] = luma(rgb + ((size_t)r * w + x) * 3);
    for (int r = 0; r < h; r += 2)
        for (int x = 0; x < w; x += 2) {
            int32_t s[3] = {0, 0, 0};
            int n = 0;
            for (int dy = 0; dy < 2 && r + dy < h; dy++)
                for (int dx = 0; dx < 2 && x + dx < w; dx++, n++) {
                    const uint8_t *p = rgb + ((size_t)(r + dy) * w + x + dx) * 3;
                    s[0] += p[0], s[1] += p[1], s[2] += p[2];
                }
            chroma(s, n, &u[(size_t)(r / 2) * cs + x / 2], &v[(size_t)(r / 2) * cs + x / 2]);
        }
}
