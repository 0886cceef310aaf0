// test_v4l2_fake: why it exists: the webcam is the mirror's main input, and
// no camera (or v4l2loopback) is at hand where the tests run. Without this, a
// change to the V4L2 code could pick a mode that cannot reach 30 fps, break
// MJPEG from real webcams (they send no Huffman tables), hang or crash when the
// cable is pulled, leave the device busy after a failed open, or turn a bad
// USB frame into a fatal error; all of it would surface only in front of a
// user's camera. So the camera source runs against a fake V4L2 device that
// answers the ioctls a UVC webcam answers, serves frames made from the real
// clip (MJPEG without Huffman tables, or YUYV), and can be told to fail any
// call or to be unplugged mid-stream.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/videodev2.h>

#include "app_sources.h"
#include "capture.h"
#include "clip_frame.h"
#include "common.h"
#include "pixconv.h"
#include "test.h"
#include "v4l2.h"

// ---------------------------------------------------------------- the fake

typedef struct {
    uint32_t fmt;
    int w, h, fps;
} FakeMode;

#define NFRAMES 3
typedef struct {
    char path[512];
    uint32_t caps;
    FakeMode modes[8];
    int nmodes;
    // failures to inject
    unsigned long fail_req;  // this ioctl fails with fail_errno
    int fail_errno;
    int fail_mmap;
    int unplug_after;  // DQBUF fails with ENODEV after this many frames (0 = never)
    int corrupt_frame;  // this frame number (1-based) is a truncated JPEG
    int error_frame;    // this one carries V4L2_BUF_FLAG_ERROR
    // state
    int open, streaming, unplugged, mapped, served;
    uint32_t fmt;
    int w, h, nbuf;
    uint8_t *mem[8];
    size_t len;
    int queued[8], qorder[8], qn;
    double fps_set;
    int exposure_auto, exposure, awb, wb_temp;
    uint8_t *payload[NFRAMES];  // what the camera sends for frame k
    size_t payload_n[NFRAMES];
    uint8_t *ref[NFRAMES];  // the RGB it was made from
    char log[8192];
} FakeDev;

#define MAXDEV 4
static FakeDev g_dev[MAXDEV];
// The cable: while 0, nodes vanish (open: ENOENT) and open handles fail
// (ENODEV). Atomic: the capture test flips it while the capture thread runs.
static atomic_int g_cable = 1;
static int g_ndev;
static uint8_t *g_clip[NFRAMES];
static int g_cw, g_ch;

static FakeDev *dev_of(int fd) { return (fd >= 100 && fd < 100 + g_ndev) ? &g_dev[fd - 100] : NULL; }

static FakeDev *add_dev(const char *dir, const char *name, uint32_t caps) {
    FakeDev *d = &g_dev[g_ndev++];
    memset(d, 0, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s/%s", dir, name);
    d->caps = caps;
    d->exposure_auto = V4L2_EXPOSURE_APERTURE_PRIORITY, d->exposure = 157, d->awb = 1, d->wb_temp = 4600;
    int f = open(d->path, O_CREAT | O_WRONLY, 0644);  // so the directory scan sees it
    if (f >= 0) close(f);
    return d;
}

static void add_mode(FakeDev *d, uint32_t fmt, int w, int h, int fps) {
    d->modes[d->nmodes++] = (FakeMode){fmt, w, h, fps};
}

static void free_payloads(FakeDev *d) {
    for (int k = 0; k < NFRAMES; k++) free(d->payload[k]), free(d->ref[k]), d->payload[k] = d->ref[k] = NULL;
}

static void make_payloads(FakeDev *d) {
    free_payloads(d);
    for (int k = 0; k < NFRAMES; k++) {
        d->ref[k] = clip_resize_nearest(g_clip[k], g_cw, g_ch, d->w, d->h);
        if (d->fmt == PIX_MJPEG) {
            size_t n, m;
            uint8_t *j = clip_rgb_to_jpeg(d->ref[k], d->w, d->h, 90, &n);
            d->payload[k] = clip_strip_dht(j, n, &m);  // webcams send no DHT
            d->payload_n[k] = m;
            free(j);
        } else {
            d->payload_n[k] = (size_t)d->w * d->h * 2;
            d->payload[k] = malloc(d->payload_n[k]);
            clip_rgb_to_yuyv(d->payload[k], d->ref[k], d->w, d->h);
        }
    }
}

static const char *req_name(unsigned long r) {
    switch (r) {
        case VIDIOC_QUERYCAP: return "QUERYCAP";
        case VIDIOC_ENUM_FMT: return "ENUM_FMT";
        case VIDIOC_ENUM_FRAMESIZES: return "ENUM_FRAMESIZES";
        case VIDIOC_ENUM_FRAMEINTERVALS: return "ENUM_FRAMEINTERVALS";
        case VIDIOC_S_FMT: return "S_FMT";
        case VIDIOC_G_PARM: return "G_PARM";
        case VIDIOC_S_PARM: return "S_PARM";
        case VIDIOC_REQBUFS: return "REQBUFS";
        case VIDIOC_QUERYBUF: return "QUERYBUF";
        case VIDIOC_QBUF: return "QBUF";
        case VIDIOC_DQBUF: return "DQBUF";
        case VIDIOC_STREAMON: return "STREAMON";
        case VIDIOC_STREAMOFF: return "STREAMOFF";
        case VIDIOC_G_CTRL: return "G_CTRL";
        case VIDIOC_S_CTRL: return "S_CTRL";
        default: return "?";
    }
}

static int fail(int e) {
    errno = e;
    return -1;
}

static int fake_open(const char *path, int flags) {
    (void)flags;
    if (!atomic_load(&g_cable)) return fail(ENOENT);
    for (int i = 0; i < g_ndev; i++)
        if (strcmp(g_dev[i].path, path) == 0) {
            if (g_dev[i].open) return fail(EBUSY);
            g_dev[i].open = 1;
            g_dev[i].log[0] = 0;
            return 100 + i;
        }
    return fail(ENOENT);
}

static int fake_close(int fd) {
    FakeDev *d = dev_of(fd);
    if (!d || !d->open) return fail(EBADF);
    d->open = 0;
    return 0;
}

static int fmt_index(FakeDev *d, unsigned idx, uint32_t *fmt) {
    uint32_t seen[8];
    unsigned n = 0;
    for (int i = 0; i < d->nmodes; i++) {
        int dup = 0;
        for (unsigned k = 0; k < n; k++) dup |= seen[k] == d->modes[i].fmt;
        if (!dup) seen[n++] = d->modes[i].fmt;
    }
    if (idx >= n) return -1;
    *fmt = seen[idx];
    return 0;
}

// What the fake device answers: a function for each request that needs more
// than a few lines, then fake_ioctl, which logs, fails on demand and dispatches.
static int fake_enum_sizes(FakeDev *d, struct v4l2_frmsizeenum *s) {
    unsigned k = 0;
    for (int i = 0; i < d->nmodes; i++)
        if (d->modes[i].fmt == s->pixel_format && k++ == s->index) {
            s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
            s->discrete.width = (unsigned)d->modes[i].w;
            s->discrete.height = (unsigned)d->modes[i].h;
            return 0;
        }
    return fail(EINVAL);
}

static int fake_enum_intervals(FakeDev *d, struct v4l2_frmivalenum *v) {
    for (int i = 0; i < d->nmodes; i++)
        if (v->index == 0 && d->modes[i].fmt == v->pixel_format &&
            d->modes[i].w == (int)v->width && d->modes[i].h == (int)v->height) {
            v->type = V4L2_FRMIVAL_TYPE_DISCRETE;
            v->discrete.numerator = 1;
            v->discrete.denominator = (unsigned)d->modes[i].fps;
            return 0;
        }
    return fail(EINVAL);
}

static int fake_s_fmt(FakeDev *d, struct v4l2_format *f) {
    if (d->streaming || d->nbuf) return fail(EBUSY);
    // like a driver: keep the format if offered, snap to its nearest size
    int best = -1;
    long bd = 0;
    for (int i = 0; i < d->nmodes; i++) {
        long dd = labs(d->modes[i].w - (long)f->fmt.pix.width) +
                  labs(d->modes[i].h - (long)f->fmt.pix.height) +
                  (d->modes[i].fmt == f->fmt.pix.pixelformat ? 0 : 1000000);
        if (best < 0 || dd < bd) best = i, bd = dd;
    }
    d->fmt = d->modes[best].fmt, d->w = d->modes[best].w, d->h = d->modes[best].h;
    f->fmt.pix.pixelformat = d->fmt;
    f->fmt.pix.width = (unsigned)d->w, f->fmt.pix.height = (unsigned)d->h;
    f->fmt.pix.field = V4L2_FIELD_NONE;
    f->fmt.pix.bytesperline = d->fmt == PIX_YUYV ? (unsigned)d->w * 2 : 0;
    f->fmt.pix.sizeimage = (unsigned)(d->w * d->h * 2);
    make_payloads(d);
    return 0;
}

// G_PARM and S_PARM: the frame rate asked for, capped at the mode's.
static int fake_parm(FakeDev *d, unsigned long req, struct v4l2_streamparm *p) {
    int maxfps = 30;
    for (int i = 0; i < d->nmodes; i++)
        if (d->modes[i].fmt == d->fmt && d->modes[i].w == d->w && d->modes[i].h == d->h)
            maxfps = d->modes[i].fps;
    if (req == VIDIOC_S_PARM) {
        struct v4l2_fract t = p->parm.capture.timeperframe;
        d->fps_set = t.numerator ? (double)t.denominator / t.numerator : maxfps;
        if (d->fps_set > maxfps) d->fps_set = maxfps;
    } else if (d->fps_set == 0) {
        d->fps_set = maxfps;
    }
    p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
    p->parm.capture.timeperframe.numerator = 1000;
    p->parm.capture.timeperframe.denominator = (unsigned)(d->fps_set * 1000 + 0.5);
    return 0;
}

static int fake_reqbufs(FakeDev *d, struct v4l2_requestbuffers *r) {
    if (d->streaming) return fail(EBUSY);
    for (int i = 0; i < d->nbuf; i++) free(d->mem[i]);
    d->nbuf = r->count > 8 ? 8 : (int)r->count;
    r->count = (unsigned)d->nbuf;
    d->len = (size_t)d->w * d->h * 3;
    for (int i = 0; i < d->nbuf; i++) d->mem[i] = calloc(d->len, 1), d->queued[i] = 0;
    d->qn = 0;
    return 0;
}

// The oldest queued buffer, filled with the next frame (or a planned fault).
static int fake_dqbuf(FakeDev *d, struct v4l2_buffer *b) {
    if (!d->streaming) return fail(EINVAL);
    if (d->unplug_after && d->served >= d->unplug_after) {
        d->unplugged = 1;
        return fail(ENODEV);
    }
    if (d->qn == 0) return fail(EAGAIN);
    int i = d->qorder[0];
    memmove(d->qorder, d->qorder + 1, sizeof(int) * (size_t)--d->qn);
    d->queued[i] = 0;
    int k = d->served % NFRAMES;
    d->served++;
    memcpy(d->mem[i], d->payload[k], d->payload_n[k]);
    b->index = (unsigned)i;
    b->bytesused = (unsigned)d->payload_n[k];
    b->flags = d->served == d->error_frame ? V4L2_BUF_FLAG_ERROR : 0;
    if (d->served == d->corrupt_frame) b->bytesused /= 3;  // lost USB packets
    b->sequence = (unsigned)d->served;
    return 0;
}

// G_CTRL and S_CTRL: the exposure and white-balance controls.
static int fake_ctrl(FakeDev *d, unsigned long req, struct v4l2_control *c) {
    int *v = c->id == V4L2_CID_EXPOSURE_AUTO ? &d->exposure_auto
             : c->id == V4L2_CID_EXPOSURE_ABSOLUTE ? &d->exposure
             : c->id == V4L2_CID_AUTO_WHITE_BALANCE ? &d->awb
             : c->id == V4L2_CID_WHITE_BALANCE_TEMPERATURE ? &d->wb_temp
                                                            : NULL;
    if (!v) return fail(EINVAL);
    if (req == VIDIOC_G_CTRL) c->value = *v;
    else *v = c->value;
    return 0;
}

static int fake_ioctl(int fd, unsigned long req, void *arg) {
    FakeDev *d = dev_of(fd);
    if (!d || !d->open) return fail(EBADF);
    size_t L = strlen(d->log);
    if (req != VIDIOC_DQBUF && req != VIDIOC_QBUF)  // the per-frame pair would flood the log
        snprintf(d->log + L, sizeof d->log - L, "%s ", req_name(req));
    if (req == d->fail_req) return fail(d->fail_errno);
    if (!atomic_load(&g_cable)) d->unplugged = 1;
    if (d->unplugged) return fail(ENODEV);
    switch (req) {
        case VIDIOC_QUERYCAP: {
            struct v4l2_capability *c = arg;
            snprintf((char *)c->card, sizeof c->card, "Fake Cam");
            c->capabilities = d->caps | V4L2_CAP_DEVICE_CAPS;
            c->device_caps = d->caps;
            return 0;
        }
        case VIDIOC_ENUM_FMT: {
            struct v4l2_fmtdesc *f = arg;
            if (!(d->caps & V4L2_CAP_VIDEO_CAPTURE) || fmt_index(d, f->index, &f->pixelformat))
                return fail(EINVAL);
            f->flags = f->pixelformat == PIX_MJPEG ? V4L2_FMT_FLAG_COMPRESSED : 0;
            return 0;
        }
        case VIDIOC_ENUM_FRAMESIZES: return fake_enum_sizes(d, arg);
        case VIDIOC_ENUM_FRAMEINTERVALS: return fake_enum_intervals(d, arg);
        case VIDIOC_S_FMT: return fake_s_fmt(d, arg);
        case VIDIOC_G_PARM:
        case VIDIOC_S_PARM: return fake_parm(d, req, arg);
        case VIDIOC_REQBUFS: return fake_reqbufs(d, arg);
        case VIDIOC_QUERYBUF: {
            struct v4l2_buffer *b = arg;
            if (b->index >= (unsigned)d->nbuf) return fail(EINVAL);
            b->length = (unsigned)d->len;
            b->m.offset = b->index * 0x100000u;
            return 0;
        }
        case VIDIOC_QBUF: {
            struct v4l2_buffer *b = arg;
            if (b->index >= (unsigned)d->nbuf || d->queued[b->index]) return fail(EINVAL);
            d->queued[b->index] = 1;
            d->qorder[d->qn++] = (int)b->index;
            return 0;
        }
        case VIDIOC_DQBUF: return fake_dqbuf(d, arg);
        case VIDIOC_STREAMON:
            if (d->nbuf < 2) return fail(EINVAL);
            d->streaming = 1;
            return 0;
        case VIDIOC_STREAMOFF:
            d->streaming = 0;
            return 0;
        case VIDIOC_G_CTRL:
        case VIDIOC_S_CTRL: return fake_ctrl(d, req, arg);
    }
    return fail(ENOTTY);
}

static void *fake_mmap(void *start, size_t len, int prot, int flags, int fd, int64_t off) {
    (void)start, (void)prot, (void)flags;
    FakeDev *d = dev_of(fd);
    unsigned i = (unsigned)(off / 0x100000);
    if (!d || d->fail_mmap || i >= (unsigned)d->nbuf || len != d->len) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    d->mapped++;
    return d->mem[i];
}

static int fake_munmap(void *p, size_t len) {
    (void)len;
    for (int k = 0; k < g_ndev; k++)
        for (int i = 0; i < g_dev[k].nbuf; i++)
            if (g_dev[k].mem[i] == p) return g_dev[k].mapped--, 0;
    return fail(EINVAL);
}

static int fake_poll(int fd, int timeout_ms) {
    (void)timeout_ms;
    FakeDev *d = dev_of(fd);
    if (!d) return fail(EBADF);
    if (!atomic_load(&g_cable)) d->unplugged = 1;
    if (d->unplugged) return 2;
    return d->streaming && d->qn > 0 ? 1 : 0;
}

static char g_dir[256];
static V4l2Io g_io = {fake_open, fake_close, fake_ioctl, fake_mmap, fake_munmap, fake_poll, g_dir, NULL};

static void reset_devs(void);

static void teardown(void) {
    reset_devs();
    rmdir(g_dir);
    for (int k = 0; k < NFRAMES; k++) free(g_clip[k]);
}

// Once: the three clip frames the fake serves (0, 40, 80) and the folder its
// device nodes live in. Without them the whole program skips, as it cannot run.
static void setup(void) {
    static int done;
    if (done) return;
    done = 1;
    const char *path = test_data("asl_signer_a_320x240.y4m");
    for (int k = 0; k < NFRAMES; k++) {
        g_clip[k] = clip_y4m_frame(path, k * 40, &g_cw, &g_ch);  // frames 0, 40, 80
        if (!g_clip[k]) TEST_SKIP("cannot read %s", path);
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/tabula-fakecam-XXXXXX");
    if (!mkdtemp(g_dir)) TEST_SKIP("mkdtemp: %s", strerror(errno));
    atexit(teardown);
}

static void reset_devs(void) {
    setup();
    for (int i = 0; i < g_ndev; i++) {
        free_payloads(&g_dev[i]);
        for (int k = 0; k < g_dev[i].nbuf; k++) free(g_dev[i].mem[k]);
        unlink(g_dev[i].path);
    }
    g_ndev = 0;
}

// A UVC webcam: a metadata node first (video0), then the camera (video1) with
// MJPG and YUYV at 1280x720 and 640x480; YUYV HD only at 10 fps (USB 2).
static FakeDev *typical_cam(void) {
    reset_devs();
    add_dev(g_dir, "video0", V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING);
    FakeDev *d = add_dev(g_dir, "video1", V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING);
    add_mode(d, PIX_MJPEG, 1280, 720, 30);
    add_mode(d, PIX_MJPEG, 640, 480, 30);
    add_mode(d, PIX_YUYV, 1280, 720, 10);
    add_mode(d, PIX_YUYV, 640, 480, 30);
    return d;
}

static CameraOpts opts(int w, int h) {
    CameraOpts o = {0};
    o.width = w, o.height = h, o.io = &g_io;
    return o;
}

// ---------------------------------------------------------------- tests

static void expect_closed(FakeDev *d, const char *what) {
    EXPECT(!d->open, "%s: device left open", what);
    EXPECT(d->mapped == 0, "%s: %d buffers still mapped", what, d->mapped);
    EXPECT(!d->streaming || d->unplugged, "%s: still streaming", what);
}

// Reads n frames and compares each with the clip frame the fake sent.
static void read_frames(Source *s, FakeDev *d, int n, double tol, const char *what) {
    uint8_t *rgb = malloc((size_t)s->width * s->height * 3);
    TbErr err = {{0}};
    for (int i = 0; i < n; i++) {
        int r = s->read(s, rgb, &err);
        EXPECT(r == 1, "%s: read %d returned %d (%s)", what, i, r, err.msg);
        if (r != 1) break;
        int maxd;
        double mean = clip_mean_abs(rgb, d->ref[i % NFRAMES], (size_t)s->width * s->height * 3, &maxd);
        if (i == 0) printf("%s: frame 0 mean |err| %.3f (max %d)\n", what, mean, maxd);
        EXPECT(mean < tol, "%s: frame %d mean error %.3f", what, i, mean);
    }
    free(rgb);
}

// No size asked for: the capture node (not the metadata one), MJPG at its
// largest 30 fps size, negotiated in the documented ioctl order.
TEST_IMPL(native_policy_picks_mjpg_720p30_on_the_capture_node) {
    FakeDev *d = typical_cam();
    CameraOpts o = opts(0, 0);
    TbErr err = {{0}};
    Source *s = source_open_camera(NULL, &o, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    CameraInfo ci;
    EXPECT(camera_info(s, &ci) == 0, "camera_info");
    EXPECT(strcmp(ci.path, d->path) == 0, "picked %s, not the capture node %s", ci.path, d->path);
    EXPECT(ci.fourcc == PIX_MJPEG && ci.width == 1280 && ci.height == 720,
           "native: picked %.4s %dx%d, want MJPG 1280x720", (char *)&ci.fourcc, ci.width, ci.height);
    EXPECT(s->width == 1280 && s->height == 720, "source size %dx%d", s->width, s->height);
    EXPECT_NEAR(s->fps, 30, 1e-6, "fps");
    EXPECT(ci.nbuffers == 4, "%d buffers", ci.nbuffers);
    EXPECT(strstr(s->spec, d->path) != NULL, "spec %s", s->spec);
    // The negotiation happens in this order, then streaming starts.
    const char *seq = "S_FMT G_PARM S_PARM REQBUFS QUERYBUF QUERYBUF QUERYBUF QUERYBUF STREAMON";
    EXPECT(strstr(d->log, seq) != NULL, "ioctl sequence: %s", d->log);
    EXPECT(strncmp(d->log, "QUERYCAP ENUM_FMT", 17) == 0, "starts with: %.40s", d->log);
    EXPECT(d->qn == 4, "%d buffers queued before streaming", d->qn);
    read_frames(s, d, 7, 2.5, "MJPG 1280x720 (no DHT)");
    source_close(s);
    expect_closed(d, "native");
    EXPECT(strstr(d->log, "STREAMOFF") != NULL, "no STREAMOFF: %s", d->log);
}

// 640x480 asked for: both formats reach 30 fps there; YUYV needs no decoding.
TEST_IMPL(requested_640x480_picks_yuyv) {
    FakeDev *d = typical_cam();
    TbErr err = {{0}};
    CameraOpts o = opts(640, 480);
    Source *s = source_open_camera(d->path, &o, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    CameraInfo ci;
    camera_info(s, &ci);
    EXPECT(ci.fourcc == PIX_YUYV && ci.width == 640 && ci.height == 480, "640x480: got %.4s %dx%d",
           (char *)&ci.fourcc, ci.width, ci.height);
    read_frames(s, d, 4, 1.0, "YUYV 640x480");
    source_close(s);
    expect_closed(d, "requested");
}

// 1280x720 at 30: only MJPG gets there (YUYV HD is 10 fps).
TEST_IMPL(requested_720p30_picks_mjpg) {
    FakeDev *d = typical_cam();
    TbErr err = {{0}};
    CameraInfo ci;
    CameraOpts o = opts(1280, 720);
    o.fps = 30;
    Source *s = source_open_camera(d->path, &o, &err);
    EXPECT(s && camera_info(s, &ci) == 0 && ci.fourcc == PIX_MJPEG, "720p30: not MJPG");
    source_close(s);
}

// 1280x720 at 10: both can, YUYV wins; S_PARM asks for 10.
TEST_IMPL(requested_720p10_picks_yuyv_and_sets_the_rate) {
    FakeDev *d = typical_cam();
    TbErr err = {{0}};
    CameraInfo ci;
    CameraOpts o = opts(1280, 720);
    o.fps = 10;
    d->fps_set = 0;
    Source *s = source_open_camera(d->path, &o, &err);
    EXPECT(s && camera_info(s, &ci) == 0 && ci.fourcc == PIX_YUYV && ci.width == 1280,
           "720p10: not YUYV 1280x720");
    EXPECT_NEAR(d->fps_set, 10, 1e-3, "S_PARM rate");
    if (s) EXPECT_NEAR(s->fps, 10, 1e-3, "source fps");
    source_close(s);
}

// YUYV-only camera, native size: 30 fps beats size, so 640x480.
TEST_IMPL(yuyv_only_camera_prefers_30fps_over_size) {
    TbErr err = {{0}};
    CameraInfo ci;
    reset_devs();
    FakeDev *d = add_dev(g_dir, "video0", V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING);
    add_mode(d, PIX_YUYV, 1280, 720, 10);
    add_mode(d, PIX_YUYV, 640, 480, 30);
    CameraOpts o = opts(0, 0);
    Source *s = source_open_camera(NULL, &o, &err);
    EXPECT(s && camera_info(s, &ci) == 0 && ci.width == 640, "YUYV-only: got width %d", s ? ci.width : 0);
    source_close(s);
}

// Unplugged mid-stream: the read fails naming the device and the ioctl, and
// closing still releases everything.
TEST_IMPL(unplug_mid_stream_fails_read_and_releases_all) {
    FakeDev *d = typical_cam();
    d->unplug_after = 3;
    CameraOpts o = opts(0, 0);
    TbErr err = {{0}};
    Source *s = source_open_camera(d->path, &o, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    read_frames(s, d, 3, 2.5, "before unplug");
    uint8_t *rgb = malloc((size_t)s->width * s->height * 3);
    int r = s->read(s, rgb, &err);
    EXPECT(r == -1, "read after unplug returned %d", r);
    char want[600];
    snprintf(want, sizeof want, "camera %s: VIDIOC_DQBUF: No such device", d->path);
    EXPECT(strcmp(err.msg, want) == 0, "message: %s", err.msg);
    printf("unplug: %s\n", err.msg);
    source_close(s);  // the device is gone: closing must still release everything
    expect_closed(d, "unplugged");
    free(rgb);
}

// A truncated JPEG and a frame flagged V4L2_BUF_FLAG_ERROR are skipped, not errors.
TEST_IMPL(bad_frames_are_skipped_not_errors) {
    FakeDev *d = typical_cam();
    d->corrupt_frame = 2, d->error_frame = 4;
    CameraOpts o = opts(0, 0);
    TbErr err = {{0}};
    Source *s = source_open_camera(d->path, &o, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    uint8_t *rgb = malloc((size_t)s->width * s->height * 3);
    int got[6];
    for (int i = 0; i < 6; i++) got[i] = s->read(s, rgb, &err);
    EXPECT(got[0] == 1 && got[1] == 0 && got[2] == 1 && got[3] == 0 && got[4] == 1 && got[5] == 1,
           "reads %d %d %d %d %d %d: bad frames must be skipped (0), not errors", got[0], got[1],
           got[2], got[3], got[4], got[5]);
    source_close(s);
    expect_closed(d, "bad frames");
    free(rgb);
}

// Exposure and white balance locked at what auto settled on, after lock_after frames.
TEST_IMPL(exposure_and_white_balance_lock_after_two_frames) {
    FakeDev *d = typical_cam();
    CameraOpts o = opts(0, 0);
    o.lock_exposure = o.lock_white_balance = 1, o.lock_after = 2;
    TbErr err = {{0}};
    Source *s = source_open_camera(d->path, &o, &err);
    EXPECT(s != NULL, "open: %s", err.msg);
    if (!s) return;
    d->exposure = 311, d->wb_temp = 5100;  // what auto settled on meanwhile
    uint8_t *rgb = malloc((size_t)s->width * s->height * 3);
    s->read(s, rgb, &err);
    EXPECT(d->exposure_auto != V4L2_EXPOSURE_MANUAL && d->awb == 1, "locked too early");
    s->read(s, rgb, &err);
    EXPECT(d->exposure_auto == V4L2_EXPOSURE_MANUAL, "exposure_auto = %d", d->exposure_auto);
    EXPECT(d->exposure == 311, "exposure %d", d->exposure);
    EXPECT(d->awb == 0 && d->wb_temp == 5100, "awb %d temp %d", d->awb, d->wb_temp);
    source_close(s);
    free(rgb);
}

// Any negotiation step failing: a message naming it, and nothing left behind.
TEST_IMPL(every_negotiation_failure_named_nothing_left_open) {
    struct {
        unsigned long req;
        int e;
        const char *want;
    } cases[] = {
        {VIDIOC_QUERYCAP, EIO, "VIDIOC_QUERYCAP: Input/output error"},
        {VIDIOC_ENUM_FMT, EIO, "VIDIOC_ENUM_FMT: Input/output error"},
        {VIDIOC_S_FMT, EBUSY, "VIDIOC_S_FMT: Device or resource busy"},
        {VIDIOC_G_PARM, ENODEV, "VIDIOC_G_PARM: No such device"},
        {VIDIOC_REQBUFS, ENOMEM, "VIDIOC_REQBUFS: Cannot allocate memory"},
        {VIDIOC_QUERYBUF, EINVAL, "VIDIOC_QUERYBUF: Invalid argument"},
        {VIDIOC_QBUF, EIO, "VIDIOC_QBUF: Input/output error"},
        {VIDIOC_STREAMON, ENOSPC, "VIDIOC_STREAMON: No space left on device"},
        {0, 0, "mmap buffer 0: Cannot allocate memory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FakeDev *d = typical_cam();
        d->fail_req = cases[i].req, d->fail_errno = cases[i].e, d->fail_mmap = cases[i].req == 0;
        CameraOpts o = opts(0, 0);
        TbErr err = {{0}};
        Source *s = source_open_camera(d->path, &o, &err);
        char want[700];
        snprintf(want, sizeof want, "camera %s: %s", d->path, cases[i].want);
        EXPECT(s == NULL && strcmp(err.msg, want) == 0, "case %zu: got '%s', want '%s'", i, err.msg, want);
        source_close(s);
        expect_closed(d, cases[i].want);
        if (cases[i].req == VIDIOC_S_FMT) {
            // "camera" reports the busy camera, not "no camera found"
            s = source_open_camera(NULL, &o, &err);
            EXPECT(s == NULL && strcmp(err.msg, want) == 0, "camera scan: %s", err.msg);
            printf("busy: %s\n", err.msg);
        }
    }
}

// No device nodes, only a metadata node, or a path that is not there.
TEST_IMPL(no_camera_and_missing_path_named) {
    TbErr err = {{0}};
    reset_devs();
    CameraOpts o = opts(0, 0);
    // "camera" with no device nodes at all
    Source *s = source_open_camera(NULL, &o, &err);
    char want[800];
    snprintf(want, sizeof want, "no camera found (no %s/video* capture device)", g_dir);
    EXPECT(s == NULL && strcmp(err.msg, want) == 0, "empty dir: %s", err.msg);
    // only a metadata node
    add_dev(g_dir, "video0", V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING);
    s = source_open_camera(NULL, &o, &err);
    EXPECT(s == NULL && strcmp(err.msg, want) == 0, "metadata only: %s", err.msg);
    // a path that is not there
    char path[300];
    snprintf(path, sizeof path, "%s/video7", g_dir);
    s = source_open_camera(path, &o, &err);
    snprintf(want, sizeof want, "camera %s: No such file or directory", path);
    EXPECT(s == NULL && strcmp(err.msg, want) == 0, "missing path: %s", err.msg);
}

// The real libv4l2 path on this machine (no camera here; skip if there is one).
TEST_IMPL(real_v4l2_reports_no_camera_here) {
    TbErr err = {{0}};
    Source *s;
    struct stat st;
    if (stat("/dev/video0", &st) != 0 && stat("/dev/video1", &st) != 0) {
        s = source_open_camera(NULL, NULL, &err);
        EXPECT(s == NULL && strcmp(err.msg, "no camera found (no /dev/video* capture device)") == 0,
               "real camera scan: %s", err.msg);
        printf("real: %s\n", err.msg);
        s = source_open_camera("/dev/video9", NULL, &err);
        EXPECT(s == NULL && strcmp(err.msg, "camera /dev/video9: No such file or directory") == 0,
               "real missing: %s", err.msg);
    } else {
        TEST_SKIP_CASE("a /dev/video node exists here; real-device checks skipped");
    }
}

// The whole path a pulled cable takes: capture thread on the camera source,
// cable out (LOST, with the driver's reason), cable back in (OK, new frames).
static Source *open_fake_camera(const char *spec, void *user, TbErr *err) {
    (void)user;
    CameraOpts o = opts(640, 480);
    return source_open_camera(strcmp(spec, "camera") == 0 ? NULL : spec + 7, &o, err);
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int wait_state(Capture *c, int want, double timeout, char *msg, size_t n) {
    for (double t0 = tb_now(); tb_now() - t0 < timeout; sleep_s(0.005))
        if (capture_state(c, msg, n) == want) return 1;
    return 0;
}

TEST_IMPL(capture_thread_survives_cable_out_and_back) {
    FakeDev *d = typical_cam();
    CaptureOpts co = {.live = -1, .retry_s = 0.2, .open = open_fake_camera};
    TbErr err = {{0}};
    char msg[640];
    Capture *c = capture_start_opts("camera", &co, &err);
    EXPECT(c != NULL, "capture: %s", err.msg);
    if (!c) return;
    EXPECT(wait_state(c, CAPTURE_OK, 2.0, msg, sizeof msg), "not OK: %s", msg);
    const uint8_t *rgb;
    int w, h;
    uint64_t seq = 0, last = 0;
    double t;
    sleep_s(0.1);
    EXPECT(capture_latest(c, &rgb, &w, &h, &last, &t) && w == 640 && h == 480, "no 640x480 frame");
    if (rgb) {
        int maxd;
        double mean = 1e9;
        for (int k = 0; k < NFRAMES; k++) {  // one of the clip frames the fake sends
            double m = clip_mean_abs(rgb, d->ref[k], (size_t)w * h * 3, &maxd);
            mean = m < mean ? m : mean;
        }
        EXPECT(mean < 1.0, "captured frame is no clip frame (mean error %.3f)", mean);
    }

    atomic_store(&g_cable, 0);
    EXPECT(wait_state(c, CAPTURE_LOST, 1.0, msg, sizeof msg), "not LOST: %s", msg);
    printf("capture, cable out: %s\n", msg);
    // DQBUF or QBUF, depending on where the capture thread was when it happened
    char want[700];
    snprintf(want, sizeof want, "camera lost: camera %s: VIDIOC_", d->path);
    EXPECT(strncmp(msg, want, strlen(want)) == 0 && strstr(msg, "BUF: No such device — retrying"),
           "message: %s", msg);
    while (capture_latest(c, &rgb, &w, &h, &last, &t)) {}
    sleep_s(0.5);
    EXPECT(capture_state(c, NULL, 0) == CAPTURE_LOST, "state while out");

    // The device comes back (the kernel makes a fresh node state on replug).
    for (int k = 0; k < d->nbuf; k++) free(d->mem[k]);
    d->nbuf = d->qn = 0, d->unplugged = d->streaming = d->served = 0;
    atomic_store(&g_cable, 1);
    EXPECT(wait_state(c, CAPTURE_OK, 2.0, msg, sizeof msg), "not back: %s", msg);
    sleep_s(0.1);
    EXPECT(capture_latest(c, &rgb, &w, &h, &seq, &t) && seq > last, "no new frame after replug");
    double t0 = tb_now();
    capture_stop(c);
    EXPECT(tb_now() - t0 < 1.0, "stop took %.3f s", tb_now() - t0);
    expect_closed(d, "capture");
}

// udev's stable name for the fake camera: <dir>/v4l/by-id/NAME -> ../../NODE.
static void link_by_id(const char *node, char *link, size_t n) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/v4l", g_dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/v4l/by-id", g_dir);
    mkdir(dir, 0755);
    snprintf(link, n, "%s/usb-Fake_Cam_0042-video-index0", dir);
    unlink(link);
    char target[300];
    snprintf(target, sizeof target, "../../%s", node);
    EXPECT(symlink(target, link) == 0, "symlink %s: %s", link, strerror(errno));
}

static void unlink_by_id(const char *link) {
    char dir[600];
    unlink(link);
    snprintf(dir, sizeof dir, "%s/v4l/by-id", g_dir);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/v4l", g_dir);
    rmdir(dir);
}

TEST_IMPL(camera_knows_its_by_id_name_and_opens_by_it) {
    FakeDev *d = typical_cam();
    char link[700];
    link_by_id("video1", link, sizeof link);
    CameraOpts o = opts(640, 480);
    TbErr err = {{0}};
    Source *s = source_open_camera(link, &o, &err);  // a symlink opens its node
    EXPECT(s != NULL, "open by id: %s", err.msg);
    if (s) {
        char want[800];
        snprintf(want, sizeof want, "camera:%s", d->path);
        EXPECT(strcmp(s->spec, want) == 0, "spec %s, want %s", s->spec, want);
        snprintf(want, sizeof want, "camera:%s", link);
        EXPECT(strcmp(s->reopen, want) == 0, "reopen %s, want %s", s->reopen, want);
        source_close(s);
    }
    s = source_open_camera(d->path, &o, &err);  // the node also finds its name
    EXPECT(s && strstr(s->reopen, "usb-Fake_Cam_0042") != NULL, "reopen: %s", s ? s->reopen : err.msg);
    source_close(s);
    unlink_by_id(link);
    s = source_open_camera(d->path, &o, &err);  // no by-id folder: reopen by the spec
    EXPECT(s && s->reopen[0] == 0, "reopen without by-id: %s", s ? s->reopen : err.msg);
    source_close(s);
    expect_closed(d, "by-id");
}

// Unplugged from one USB port and plugged into another, the camera comes back
// as another node; udev moves its by-id name along, and capture follows it.
TEST_IMPL(capture_finds_the_camera_back_under_another_node) {
    FakeDev *d = typical_cam();
    char link[700], spec[800], msg[640];
    link_by_id("video1", link, sizeof link);
    snprintf(spec, sizeof spec, "camera:%s", d->path);
    CaptureOpts co = {.live = -1, .retry_s = 0.1, .open = open_fake_camera};
    TbErr err = {{0}};
    Capture *c = capture_start_opts(spec, &co, &err);
    EXPECT(c != NULL, "capture: %s", err.msg);
    if (!c) {
        unlink_by_id(link);
        return;
    }
    EXPECT(wait_state(c, CAPTURE_OK, 2.0, msg, sizeof msg), "not OK: %s", msg);
    atomic_store(&g_cable, 0);
    EXPECT(wait_state(c, CAPTURE_LOST, 1.0, msg, sizeof msg), "not LOST: %s", msg);
    const uint8_t *rgb;
    int w, h;
    uint64_t seq = 0, last = 0;
    double t;
    while (capture_latest(c, &rgb, &w, &h, &last, &t)) {}

    // Back as video2: the old node is gone, the name points to the new one.
    unlink(d->path);
    snprintf(d->path, sizeof d->path, "%s/video2", g_dir);
    int f = open(d->path, O_CREAT | O_WRONLY, 0644);
    if (f >= 0) close(f);
    link_by_id("video2", link, sizeof link);
    for (int k = 0; k < d->nbuf; k++) free(d->mem[k]);
    d->nbuf = d->qn = 0, d->unplugged = d->streaming = d->served = 0;
    atomic_store(&g_cable, 1);
    EXPECT(wait_state(c, CAPTURE_OK, 2.0, msg, sizeof msg), "not back under video2: %s", msg);
    sleep_s(0.1);
    EXPECT(capture_latest(c, &rgb, &w, &h, &seq, &t) && seq > last, "no new frame from video2");
    CaptureStats cs;
    capture_stats(c, &cs);
    EXPECT(cs.reconnects == 1, "reconnects %llu", (unsigned long long)cs.reconnects);
    capture_stop(c);
    expect_closed(d, "moved camera");
    unlink_by_id(link);
}

TEST_MAIN(TEST_ENTRY(native_policy_picks_mjpg_720p30_on_the_capture_node),
          TEST_ENTRY(requested_640x480_picks_yuyv), TEST_ENTRY(requested_720p30_picks_mjpg),
          TEST_ENTRY(requested_720p10_picks_yuyv_and_sets_the_rate),
          TEST_ENTRY(yuyv_only_camera_prefers_30fps_over_size),
          TEST_ENTRY(unplug_mid_stream_fails_read_and_releases_all), TEST_ENTRY(bad_frames_are_skipped_not_errors),
          TEST_ENTRY(exposure_and_white_balance_lock_after_two_frames),
          TEST_ENTRY(every_negotiation_failure_named_nothing_left_open),
          TEST_ENTRY(no_camera_and_missing_path_named), TEST_ENTRY(real_v4l2_reports_no_camera_here),
          TEST_ENTRY(capture_thread_survives_cable_out_and_back),
          TEST_ENTRY(camera_knows_its_by_id_name_and_opens_by_it),
          TEST_ENTRY(capture_finds_the_camera_back_under_another_node))
