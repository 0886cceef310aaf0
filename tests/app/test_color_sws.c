// test_color_sws.c: why it exists: tabula has one YUV -> RGB conversion
// (color.h, BT.601 limited range, 16.16 fixed point) for Y4M files and YUYV
// cameras, while video files go through libswscale (avfile.c). A picture must
// not change colour with the way it came in, so on every frame of the real
// clips our conversion must agree with libswscale's to within rounding, and the
// camera path (YUYV, through pix_convert) must give the very same bytes as the
// Y4M path for the same samples.
//
// libswscale is set up to do what we do: BT.601 matrix, limited-range input,
// full-range RGB out, nearest-neighbour chroma (SWS_POINT) with each chroma
// sample centred on its 2x2 (4:2:0) or 2x1 (4:2:2) block of luma, chroma
// interpolated to full width (SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP), its
// accurate rounding (SWS_ACCURATE_RND | SWS_BITEXACT).
//
// Measured on all 750 frames of the three clips (172.8M channel values),
// libswscale 6.7 (FFmpeg 5.1):
//   16.16 (ours)            vs libswscale: max 1, 0.467% of values differ
//   the former 8.8 (YUYV)   vs libswscale: max 1, 3.40%
//   16.16 vs exact (double) arithmetic:    max 1, 0.0018% (3,065 values)
//   8.8 vs exact:                          max 1, 3.03%
// libswscale itself differs from exact arithmetic on 0.468%: its own
// fixed-point coefficients, not ours, are where the two part.
#include <stdio.h>
#include <string.h>

#include <libavutil/opt.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>

#include "clip_frame.h"
#include "color.h"
#include "pixconv.h"
#include "test.h"

static const char *const CLIPS[] = {"asl_signer_a_320x240.y4m", "flower_timelapse_320x240.y4m",
                                    "hikers_forest_320x240.y4m"};
#define N_CLIPS (sizeof CLIPS / sizeof CLIPS[0])

// A 4:2:0 Y4M file read frame by frame (planes as stored).
typedef struct {
    FILE *f;
    int w, h;
    uint8_t *y, *u, *v;  // one frame: w*h, then two (w/2)*(h/2) planes
} Y4m;

static int y4m_open(Y4m *c, const char *path) {
    memset(c, 0, sizeof *c);
    char hdr[256];
    c->f = fopen(path, "rb");
    if (!c->f || !fgets(hdr, sizeof hdr, c->f) || strncmp(hdr, "YUV4MPEG2 ", 10) != 0) return -1;
    for (char *t = strtok(hdr + 10, " \n"); t; t = strtok(NULL, " \n")) {
        if (t[0] == 'W') c->w = atoi(t + 1);
        if (t[0] == 'H') c->h = atoi(t + 1);
        if (t[0] == 'C' && strncmp(t + 1, "420", 3) != 0) return -1;
    }
    if (c->w <= 0 || c->h <= 0 || (c->w | c->h) & 1) return -1;
    size_t n = (size_t)c->w * c->h;
    c->y = malloc(n * 3 / 2);
    c->u = c->y + n, c->v = c->u + n / 4;
    return 0;
}

// Next frame into c->y/u/v; 0, or -1 at the end.
static int y4m_next(Y4m *c) {
    char line[256];
    size_t n = (size_t)c->w * c->h * 3 / 2;
    if (!fgets(line, sizeof line, c->f) || strncmp(line, "FRAME", 5) != 0) return -1;
    return fread(c->y, 1, n, c->f) == n ? 0 : -1;
}

static void y4m_close(Y4m *c) {
    if (c->f) fclose(c->f);
    free(c->y);
}

// libswscale from `fmt` (yuv420p or yuyv422) to RGB24, set up as described above.
static struct SwsContext *sws_like_ours(int w, int h, enum AVPixelFormat fmt) {
    struct SwsContext *s = sws_alloc_context();
    int flags = SWS_POINT | SWS_ACCURATE_RND | SWS_BITEXACT | SWS_FULL_CHR_H_INT |
                SWS_FULL_CHR_H_INP;
    av_opt_set_int(s, "srcw", w, 0);
    av_opt_set_int(s, "srch", h, 0);
    av_opt_set_int(s, "src_format", fmt, 0);
    av_opt_set_int(s, "dstw", w, 0);
    av_opt_set_int(s, "dsth", h, 0);
    av_opt_set_int(s, "dst_format", AV_PIX_FMT_RGB24, 0);
    av_opt_set_int(s, "sws_flags", flags, 0);
    // Chroma sited at the centre of its block (in 1/256 of a luma sample).
    av_opt_set_int(s, "src_h_chr_pos", 128, 0);
    av_opt_set_int(s, "src_v_chr_pos", 128, 0);
    if (sws_init_context(s, NULL, NULL) < 0) {
        sws_freeContext(s);
        return NULL;
    }
    const int *bt601 = sws_getCoefficients(SWS_CS_ITU601);
    // in: BT.601, limited range (0); out: full range (1); brightness 0, contrast
    // and saturation 1.0 (16.16).
    sws_setColorspaceDetails(s, bt601, 0, bt601, 1, 0, 1 << 16, 1 << 16);
    return s;
}

// Packed YUYV from 4:2:0 planes: each line takes its chroma row (r/2), so the
// camera path sees exactly the Y4M path's samples.
static void planes_to_yuyv(uint8_t *o, const Y4m *c) {
    for (int r = 0; r < c->h; r++)
        for (int x = 0; x < c->w; x += 2, o += 4) {
            size_t i = (size_t)r * c->w + x, j = (size_t)(r / 2) * (c->w / 2) + x / 2;
            o[0] = c->y[i], o[1] = c->u[j], o[2] = c->y[i + 1], o[3] = c->v[j];
        }
}

// Every frame of every clip: 4:2:0 planar and YUYV, ours against libswscale;
// the YUYV result must be the planar one byte for byte; and ours against exact
// arithmetic (clip_frame.h's double-precision conversion).
TEST_IMPL(clips_match_swscale) {
    Diff planar = {0}, yuyv = {0}, exact = {0}, paths = {0};
    int frames = 0;
    for (size_t k = 0; k < N_CLIPS; k++) {
        const char *path = test_data(CLIPS[k]);
        Y4m c;
        if (y4m_open(&c, path) != 0) {
            y4m_close(&c);
            TEST_SKIP_CASE("cannot read %s", path);
        }
        int w = c.w, h = c.h;
        size_t n = (size_t)w * h * 3;
        uint8_t *ours = malloc(n), *cam = malloc(n), *ref = malloc(n), *ref2 = malloc(n);
        uint8_t *packed = malloc((size_t)w * h * 2);
        struct SwsContext *s420 = sws_like_ours(w, h, AV_PIX_FMT_YUV420P);
        struct SwsContext *s422 = sws_like_ours(w, h, AV_PIX_FMT_YUYV422);
        EXPECT(s420 && s422, "libswscale refused the set-up");
        for (int f = 0; s420 && s422 && y4m_next(&c) == 0; f++, frames++) {
            yuv420_to_rgb(ours, c.y, c.u, c.v, w, h);
            const uint8_t *src[3] = {c.y, c.u, c.v};
            int src_stride[3] = {w, w / 2, w / 2}, dst_stride[1] = {w * 3};
            uint8_t *dst[1] = {ref};
            sws_scale(s420, src, src_stride, 0, h, dst, dst_stride);
            diff_add(&planar, ours, ref, n);

            planes_to_yuyv(packed, &c);
            TbErr err = {{0}};
            EXPECT(pix_convert(PIX_YUYV, cam, w, h, packed, (size_t)w * h * 2, 0, &err) == 0, "%s",
                   err.msg);
            diff_add(&paths, cam, ours, n);
            const uint8_t *src2[1] = {packed};
            int src2_stride[1] = {w * 2};
            dst[0] = ref2;
            sws_scale(s422, src2, src2_stride, 0, h, dst, dst_stride);
            diff_add(&yuyv, cam, ref2, n);

            int ew, eh;
            uint8_t *dbl = clip_y4m_frame(path, f, &ew, &eh);
            EXPECT(dbl && ew == w && eh == h, "clip_frame.h cannot read frame %d of %s", f, path);
            if (dbl) diff_add(&exact, ours, dbl, n);
            free(dbl);
        }
        sws_freeContext(s420);
        sws_freeContext(s422);
        free(ours), free(cam), free(ref), free(ref2), free(packed);
        y4m_close(&c);
    }
    printf("%d frames of %zu clips\n", frames, N_CLIPS);
    diff_print("4:2:0 vs libswscale:", &planar);
    diff_print("YUYV (pix_convert) vs libswscale:", &yuyv);
    diff_print("YUYV vs 4:2:0 (ours):", &paths);
    diff_print("4:2:0 vs exact arithmetic:", &exact);
    EXPECT(frames == 750, "read %d frames, the clips have 750", frames);
    // Measured: max 1 and 0.467% for both paths; bounds leave room for another
    // libswscale's rounding, not for a wrong coefficient (which moves whole
    // ranges of values, several percent at once).
    EXPECT(planar.max <= 1 && diff_share(&planar) < 0.006, "4:2:0 vs libswscale: max %d, %.3f%%",
           planar.max, 100 * diff_share(&planar));
    EXPECT(yuyv.max <= 1 && diff_share(&yuyv) < 0.006, "YUYV vs libswscale: max %d, %.3f%%",
           yuyv.max, 100 * diff_share(&yuyv));
    EXPECT(paths.differ == 0, "YUYV and 4:2:0 give different RGB for the same samples (%lld values)",
           paths.differ);
    // Measured: max 1, 0.0018% (the 8.8 fixed point it replaced: 3.03%).
    EXPECT(exact.max <= 1 && diff_share(&exact) < 0.0001, "vs exact: max %d, %.4f%%", exact.max,
           100 * diff_share(&exact));
}

TEST_MAIN(TEST_ENTRY(clips_match_swscale))
