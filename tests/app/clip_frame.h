// clip_frame.h: test helpers that turn frames of the real clips into what a
// webcam sends (YUYV, JPEG), independent of the code under test.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

// Frame k of a 4:2:0 Y4M file as RGB8, converted in double precision (BT.601
// limited range, nearest chroma). Returns a malloc'd w*h*3 buffer or NULL.
static inline uint8_t *clip_y4m_frame(const char *path, int k, int *w_out, int *h_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char hdr[256];
    if (!fgets(hdr, sizeof hdr, f) || strncmp(hdr, "YUV4MPEG2 ", 10) != 0) {
        fclose(f);
        return NULL;
    }
    int w = 0, h = 0;
    for (char *t = strtok(hdr + 10, " \n"); t; t = strtok(NULL, " \n")) {
        if (t[0] == 'W') w = atoi(t + 1);
        if (t[0] == 'H') h = atoi(t + 1);
    }
    size_t ysz = (size_t)w * h, csz = (size_t)(w / 2) * (h / 2), fsz = 6 + ysz + 2 * csz;
    uint8_t *yuv = (uint8_t *)malloc(fsz), *rgb = (uint8_t *)malloc(ysz * 3);
    if (w <= 0 || h <= 0 || fseek(f, (long)(fsz * (size_t)k), SEEK_CUR) != 0 ||
        fread(yuv, 1, fsz, f) != fsz || memcmp(yuv, "FRAME\n", 6) != 0) {
        free(yuv), free(rgb), fclose(f);
        return NULL;
    }
    fclose(f);
    const uint8_t *Y = yuv + 6, *U = Y + ysz, *V = U + csz;
    for (int r = 0; r < h; r++)
        for (int x = 0; x < w; x++) {
            double y = 1.164383562 * (Y[(size_t)r * w + x] - 16.0);
            double u = U[(size_t)(r / 2) * (w / 2) + x / 2] - 128.0;
            double v = V[(size_t)(r / 2) * (w / 2) + x / 2] - 128.0;
            double c[3] = {y + 1.596026786 * v, y - 0.391762290 * u - 0.812967647 * v,
                           y + 2.017232143 * u};
            for (int i = 0; i < 3; i++)
                rgb[((size_t)r * w + x) * 3 + i] =
                    (uint8_t)(c[i] < 0 ? 0 : c[i] > 255 ? 255 : floor(c[i] + 0.5));
        }
    free(yuv);
    *w_out = w, *h_out = h;
    return rgb;
}

// RGB8 to YUYV (BT.601 limited, chroma averaged over each pixel pair); w even.
static inline void clip_rgb_to_yuyv(uint8_t *yuyv, const uint8_t *rgb, int w, int h) {
    for (int r = 0; r < h; r++)
        for (int x = 0; x < w; x += 2) {
            const uint8_t *p = rgb + ((size_t)r * w + x) * 3;
            double y[2], u = 0, v = 0;
            for (int i = 0; i < 2; i++) {
                double R = p[3 * i], G = p[3 * i + 1], B = p[3 * i + 2];
                y[i] = 16 + (65.481 * R + 128.553 * G + 24.966 * B) / 255;
                u += 0.5 * (128 + (-37.797 * R - 74.203 * G + 112.0 * B) / 255);
                v += 0.5 * (128 + (112.0 * R - 93.786 * G - 18.214 * B) / 255);
            }
            uint8_t *o = yuyv + ((size_t)r * w + x) * 2;
            o[0] = (uint8_t)floor(y[0] + 0.5), o[1] = (uint8_t)floor(u + 0.5);
            o[2] = (uint8_t)floor(y[1] + 0.5), o[3] = (uint8_t)floor(v + 0.5);
        }
}

// RGB8 to a baseline JPEG in memory (standard Huffman tables). Returns a
// malloc'd buffer (free()) and its size.
static inline uint8_t *clip_rgb_to_jpeg(const uint8_t *rgb, int w, int h, int quality,
                                        size_t *n_out) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &buf, &n);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = 3, c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    // jpeg_mem_dest's buffer comes from malloc; copy so callers free() plainly.
    uint8_t *out = (uint8_t *)malloc(n);
    memcpy(out, buf, n);
    free(buf);
    *n_out = n;
    return out;
}

// Copy a JPEG without its DHT segments (what an MJPEG webcam sends).
static inline uint8_t *clip_strip_dht(const uint8_t *j, size_t n, size_t *n_out) {
    uint8_t *o = (uint8_t *)malloc(n);
    size_t i = 2, k = 2;
    memcpy(o, j, 2);
    while (i + 4 <= n && j[i] == 0xFF && j[i + 1] != 0xDA) {
        size_t len = 2 + (((size_t)j[i + 2] << 8) | j[i + 3]);
        if (j[i + 1] != 0xC4) memcpy(o + k, j + i, len), k += len;
        i += len;
    }
    memcpy(o + k, j + i, n - i);
    *n_out = k + n - i;
    return o;
}

// Nearest-neighbour resize (to make 1280x720 camera frames from 320x240 clips).
static inline uint8_t *clip_resize_nearest(const uint8_t *rgb, int w, int h, int W, int H) {
    uint8_t *o = (uint8_t *)malloc((size_t)W * H * 3);
    for (int r = 0; r < H; r++)
        for (int x = 0; x < W; x++)
            memcpy(o + ((size_t)r * W + x) * 3,
                   rgb + ((size_t)(r * h / H) * w + (size_t)(x * w / W)) * 3, 3);
    return o;
}

// Mean and max absolute difference over n bytes.
static inline double clip_mean_abs(const uint8_t *a, const uint8_t *b, size_t n, int *maxd) {
    double s = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        s += d;
        if (d > m) m = d;
    }
    if (maxd) *maxd = m;
    return s / (double)n;
}

// Differences between two byte buffers, counted over many frames.
typedef struct {
    long long n, differ;
    int max;
} Diff;

static inline void diff_add(Diff *d, const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int e = abs((int)a[i] - (int)b[i]);
        d->differ += e != 0;
        if (e > d->max) d->max = e;
    }
    d->n += (long long)n;
}

static inline double diff_share(const Diff *d) { return d->n ? (double)d->differ / (double)d->n : 0; }

static inline void diff_print(const char *what, const Diff *d) {
    printf("%-32s max %d, %.3f%% of %lld values differ\n", what, d->max, 100 * diff_share(d), d->n);
}
