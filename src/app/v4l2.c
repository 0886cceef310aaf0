// v4l2.c: "camera" / "camera:/dev/videoN" sources. Negotiates a format the
// camera sends natively (MJPEG or YUYV preferred), streams through 3-4 mmap
// buffers, and converts each frame with pixconv. Every device call goes
// through a V4l2Io table, so a test can stand in for the device.
#define _DEFAULT_SOURCE  // realpath
#define _POSIX_C_SOURCE 200809L
#include "v4l2.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libv4l2.h>
#include <linux/videodev2.h>

#include "pixconv.h"

// ---------------------------------------------------------------- default seam

static int lv_open(const char *path, int flags) { return v4l2_open(path, flags); }
static int lv_close(int fd) { return v4l2_close(fd); }
static int lv_ioctl(int fd, unsigned long req, void *arg) { return v4l2_ioctl(fd, req, arg); }
static void *lv_mmap(void *start, size_t len, int prot, int flags, int fd, int64_t off) {
    return v4l2_mmap(start, len, prot, flags, fd, off);
}
static int lv_munmap(void *start, size_t len) { return v4l2_munmap(start, len); }
static int sys_poll(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) return r;
    return (p.revents & POLLIN) ? 1 : 2;
}

static ssize_t lv_write(int fd, const void *buf, size_t n) { return v4l2_write(fd, buf, n); }

const V4l2Io v4l2_io_default = {lv_open, lv_close, lv_ioctl, lv_mmap, lv_munmap, sys_poll, "/dev", lv_write};


// ---------------------------------------------------------------- state

#define MAX_BUFS 8
typedef struct {
    const V4l2Io *io;
    int fd;
    char path[256];
    char stable[512];  // its /dev/v4l/by-id name, "" if none
    uint32_t fourcc;
    int w, h;
    size_t stride;  // bytes per line for raw formats
    double fps;
    struct {
        void *p;
        size_t len;
    } buf[MAX_BUFS];
    int nbuf, streaming;
    CameraOpts opts;
    long frames, bad_frames;
} Cam;

// ioctl with EINTR retried; the name goes into error messages.
static int xioctl(Cam *c, unsigned long req, void *arg) {
    int r;
    do r = c->io->ioctl(c->fd, req, arg);
    while (r == -1 && errno == EINTR);
    return r;
}
#define IOCTL_FAIL(c, err, name) \
    tb_fail(err, "camera %s: %s: %s", (c)->path, name, strerror(errno))

const char *v4l2_fourcc_str(uint32_t f, char out[5]) {
    for (int i = 0; i < 4; i++) {
        char ch = (char)((f >> (8 * i)) & 0xFF);
        out[i] = (ch >= 32 && ch < 127) ? ch : '?';
    }
    out[4] = 0;
    return out;
}

// ---------------------------------------------------------------- negotiation

typedef struct {
    uint32_t fourcc;
    int w, h, emulated;
    double fps;  // best rate at this size; 0 = unknown
} Mode;
#define MAX_MODES 256

static int fmt_rank(uint32_t f) {
    // Uncompressed YUYV costs no decode time and has no artifacts; MJPEG is
    // what gets HD at 30 fps over USB 2; RGB is usually libv4l2 emulation.
    return f == PIX_YUYV ? 3 : (f == PIX_MJPEG || f == PIX_JPEG) ? 2 : 1;
}

// Best frame rate of (fmt, w, h), 0 if the driver does not say.
static double mode_fps(Cam *c, uint32_t fmt, int w, int h) {
    double best = 0;
    for (unsigned i = 0; i < 64; i++) {
        struct v4l2_frmivalenum fi = {.index = i, .pixel_format = fmt, .width = (unsigned)w,
                                      .height = (unsigned)h};
        if (xioctl(c, VIDIOC_ENUM_FRAMEINTERVALS, &fi) < 0) break;
        const struct v4l2_fract *f = fi.type == V4L2_FRMIVAL_TYPE_DISCRETE ? &fi.discrete
                                                                           : &fi.stepwise.min;
        if (f->numerator > 0 && (double)f->denominator / f->numerator > best)
            best = (double)f->denominator / f->numerator;
        if (fi.type != V4L2_FRMIVAL_TYPE_DISCRETE) break;
    }
    return best;
}

static void add_mode(Mode *m, int *n, uint32_t fmt, int w, int h, int emulated, double fps) {
    if (*n < MAX_MODES && w > 0 && h > 0)
        m[(*n)++] = (Mode){.fourcc = fmt, .w = w, .h = h, .emulated = emulated, .fps = fps};
}

// All (format, size) pairs we can convert. Returns the count, or -1 (err set).
static int list_modes(Cam *c, Mode *m, const CameraOpts *o, char *offered, size_t offered_n,
                      TbErr *err) {
    int n = 0;
    offered[0] = 0;
    for (unsigned i = 0; i < 64; i++) {
        struct v4l2_fmtdesc fd = {.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
        if (xioctl(c, VIDIOC_ENUM_FMT, &fd) < 0) {
            if (errno == EINVAL) break;  // end of the list
            return IOCTL_FAIL(c, err, "VIDIOC_ENUM_FMT");
        }
        char cc[5];
        size_t used = strlen(offered);
        snprintf(offered + used, offered_n - used, "%s%s", used ? " " : "",
                 v4l2_fourcc_str(fd.pixelformat, cc));
        if (!pix_supported(fd.pixelformat)) continue;
        int emulated = (fd.flags & V4L2_FMT_FLAG_EMULATED) != 0, sizes = 0;
        for (unsigned k = 0; k < 256; k++) {
            struct v4l2_frmsizeenum fs = {.index = k, .pixel_format = fd.pixelformat};
            if (xioctl(c, VIDIOC_ENUM_FRAMESIZES, &fs) < 0) break;
            sizes++;
            if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
                int w = (int)fs.discrete.width, h = (int)fs.discrete.height;
                add_mode(m, &n, fd.pixelformat, w, h, emulated, mode_fps(c, fd.pixelformat, w, h));
                continue;
            }
            // A range: offer its largest size and, if inside it, the one asked for.
            const struct v4l2_frmsize_stepwise *sw = &fs.stepwise;
            int w = (int)sw->max_width, h = (int)sw->max_height;
            add_mode(m, &n, fd.pixelformat, w, h, emulated, mode_fps(c, fd.pixelformat, w, h));
            if (o->width >= (int)sw->min_width && o->width <= w && o->height >= (int)sw->min_height &&
                o->height <= h)
                add_mode(m, &n, fd.pixelformat, o->width, o->height, emulated,
                         mode_fps(c, fd.pixelformat, o->width, o->height));
            break;
        }
        if (!sizes)  // driver does not enumerate sizes: ask, S_FMT will adjust
            add_mode(m, &n, fd.pixelformat, o->width ? o->width : 1280, o->height ? o->height : 720,
                     emulated, 0);
    }
    return n;
}

// Policy, in order: native over libv4l2-emulated formats; then, when a size was
// asked for, the nearest size before the frame rate, otherwise reaching the
// frame rate before size (largest up to 1080p: bigger only costs decode time,
// training frames are small); then YUYV > MJPEG > RGB; then the higher rate.
static int better(const Mode *a, const Mode *b, const CameraOpts *o, double want_fps) {
    if (a->emulated != b->emulated) return a->emulated < b->emulated;
    int fa = a->fps == 0 || a->fps >= want_fps * 0.95, fb = b->fps == 0 || b->fps >= want_fps * 0.95;
    long cap = 1920L * 1080L;
    long sa, sb;  // size score, higher is better
    if (o->width > 0 && o->height > 0) {
        sa = -(labs((long)a->w - o->width) + labs((long)a->h - o->height));
        sb = -(labs((long)b->w - o->width) + labs((long)b->h - o->height));
        if (sa != sb) return sa > sb;
        if (fa != fb) return fa > fb;
    } else {
        if (fa != fb) return fa > fb;
        long aa = (long)a->w * a->h, ab = (long)b->w * b->h;
        sa = aa <= cap ? aa : -aa;
        sb = ab <= cap ? ab : -ab;
        if (sa != sb) return sa > sb;
    }
    if (fmt_rank(a->fourcc) != fmt_rank(b->fourcc)) return fmt_rank(a->fourcc) > fmt_rank(b->fourcc);
    return a->fps > b->fps;
}

// Optional: hold exposure / white balance at the values auto settled on, so a
// gallery's slow light changes do not flicker through the network's input.
// Best effort: a camera without these controls logs one line and keeps going.
static int get_ctrl(Cam *c, uint32_t id, int *v) {
    struct v4l2_control ctl = {.id = id};
    if (xioctl(c, VIDIOC_G_CTRL, &ctl) < 0) return -1;
    *v = ctl.value;
    return 0;
}
static int set_ctrl(Cam *c, uint32_t id, int v, const char *what) {
    struct v4l2_control ctl = {.id = id, .value = v};
    if (xioctl(c, VIDIOC_S_CTRL, &ctl) == 0) return 0;
    tb_log("camera %s: VIDIOC_S_CTRL %s: %s (left on auto)", c->path, what, strerror(errno));
    return -1;
}
static void lock_controls(Cam *c) {
    int v;
    if (c->opts.lock_exposure) {
        int have = get_ctrl(c, V4L2_CID_EXPOSURE_ABSOLUTE, &v) == 0;
        if (set_ctrl(c, V4L2_CID_EXPOSURE_AUTO, V4L2_EXPOSURE_MANUAL, "exposure_auto=manual") == 0) {
            if (have) set_ctrl(c, V4L2_CID_EXPOSURE_ABSOLUTE, v, "exposure_absolute");
            tb_log("camera %s: exposure locked%s", c->path, have ? "" : " (value unknown)");
        }
    }
    if (c->opts.lock_white_balance) {
        int have = get_ctrl(c, V4L2_CID_WHITE_BALANCE_TEMPERATURE, &v) == 0;
        if (set_ctrl(c, V4L2_CID_AUTO_WHITE_BALANCE, 0, "white_balance_automatic=0") == 0) {
            if (have) set_ctrl(c, V4L2_CID_WHITE_BALANCE_TEMPERATURE, v, "white_balance_temperature");
            tb_log("camera %s: white balance locked%s", c->path, have ? "" : " (value unknown)");
        }
    }
}

// ---------------------------------------------------------------- Source

static void cam_release(Cam *c) {
    if (c->streaming) {
        int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        xioctl(c, VIDIOC_STREAMOFF, &type);  // the device may be gone: nothing to do if it fails
    }
    for (int i = 0; i < c->nbuf; i++)
        if (c->buf[i].p) c->io->munmap(c->buf[i].p, c->buf[i].len);
    if (c->nbuf) {
        struct v4l2_requestbuffers rb = {.count = 0, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                         .memory = V4L2_MEMORY_MMAP};
        xioctl(c, VIDIOC_REQBUFS, &rb);
    }
    if (c->fd >= 0) c->io->close(c->fd);
    c->fd = -1, c->nbuf = 0, c->streaming = 0;
}

static int cam_read(Source *s, uint8_t *rgb, TbErr *err) {
    Cam *c = s->ctx;
    int pr = c->io->poll(c->fd, c->opts.poll_ms);
    if (pr < 0) {
        if (errno == EINTR) return 0;
        return tb_fail(err, "camera %s: poll: %s", c->path, strerror(errno));
    }
    if (pr == 0) return 0;
    struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
    if (xioctl(c, VIDIOC_DQBUF, &b) < 0) {
        if (errno == EAGAIN && pr == 1) return 0;
        if (errno == EAGAIN) return tb_fail(err, "camera %s: device error (poll)", c->path);
        return IOCTL_FAIL(c, err, "VIDIOC_DQBUF");
    }
    if (b.index >= (unsigned)c->nbuf)
        return tb_fail(err, "camera %s: VIDIOC_DQBUF: buffer %u of %d", c->path, b.index, c->nbuf);
    // Convert before handing the buffer back: it is ours only until QBUF.
    TbErr cerr = {{0}};
    size_t used = b.bytesused ? b.bytesused : c->buf[b.index].len;
    if (used > c->buf[b.index].len) used = c->buf[b.index].len;
    int ok = !(b.flags & V4L2_BUF_FLAG_ERROR) &&
             pix_convert(c->fourcc, rgb, c->w, c->h, c->buf[b.index].p, used, c->stride, &cerr) == 0;
    if (xioctl(c, VIDIOC_QBUF, &b) < 0) return IOCTL_FAIL(c, err, "VIDIOC_QBUF");
    if (!ok) {  // a damaged frame (USB hiccup): skip it, say so now and then
        if (c->bad_frames++ % 100 == 0)
            tb_log("camera %s: skipped a bad frame (%ld so far): %s", c->path, c->bad_frames,
                   cerr.msg[0] ? cerr.msg : "driver flagged an error");
        return 0;
    }
    if (++c->frames == c->opts.lock_after) lock_controls(c);
    return 1;
}

// Releases the device; source_close() frees the Source itself.
static void cam_close(Source *s) {
    Cam *c = s->ctx;
    if (c) cam_release(c), free(c);
    s->ctx = NULL;
}

int camera_info(const Source *s, CameraInfo *info) {
    if (!s || s->close != cam_close) return -1;
    const Cam *c = s->ctx;
    snprintf(info->path, sizeof info->path, "%s", c->path);
    info->fourcc = c->fourcc, info->width = c->w, info->height = c->h;
    info->nbuffers = c->nbuf, info->fps = c->fps;
    return 0;
}

// ---------------------------------------------------------------- opening
// open_path runs these steps in order; each returns 0, or -1 with err set and
// whatever it acquired recorded in the Cam, so cam_release undoes it all.

// Open the node and check that it is a streaming capture device. *not_capture
// is set when it is not a capture device at all (a metadata node, say).
static int open_device(Cam *c, const char *path, struct v4l2_capability *cap, int *not_capture,
                       TbErr *err) {
    c->fd = c->io->open(path, O_RDWR | O_NONBLOCK);
    if (c->fd < 0) return tb_fail(err, "camera %s: %s", path, strerror(errno));
    memset(cap, 0, sizeof *cap);
    if (xioctl(c, VIDIOC_QUERYCAP, cap) < 0) {
        *not_capture = errno == ENOTTY || errno == EINVAL;
        return IOCTL_FAIL(c, err, "VIDIOC_QUERYCAP");
    }
    uint32_t caps = (cap->capabilities & V4L2_CAP_DEVICE_CAPS) ? cap->device_caps : cap->capabilities;
    if (!(caps & V4L2_CAP_VIDEO_CAPTURE)) {
        *not_capture = 1;
        return tb_fail(err, "camera %s: not a video capture device", path);
    }
    if (!(caps & V4L2_CAP_STREAMING))
        return tb_fail(err, "camera %s: no streaming I/O (read() cameras are not supported)", path);
    return 0;
}

// The best mode the device offers (see better()).
static int choose_mode(Cam *c, const CameraOpts *o, double want_fps, Mode *best, TbErr *err) {
    Mode *modes = tb_malloc(MAX_MODES * sizeof *modes);
    char offered[256];
    int n = list_modes(c, modes, o, offered, sizeof offered, err);
    if (n <= 0) {
        if (n == 0) tb_fail(err, "camera %s: no usable pixel format (offers: %s)", c->path, offered);
        free(modes);
        return -1;
    }
    *best = modes[0];
    for (int i = 1; i < n; i++)
        if (better(&modes[i], best, o, want_fps)) *best = modes[i];
    free(modes);
    return 0;
}

// Ask for the mode; keep what the driver chose if tabula can convert it.
static int set_format(Cam *c, const Mode *m, TbErr *err) {
    struct v4l2_format fmt;
    memset(&fmt, 0, sizeof fmt);
    fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    fmt.fmt.pix.width = (unsigned)m->w;
    fmt.fmt.pix.height = (unsigned)m->h;
    fmt.fmt.pix.pixelformat = m->fourcc;
    fmt.fmt.pix.field = V4L2_FIELD_ANY;
    if (xioctl(c, VIDIOC_S_FMT, &fmt) < 0) return IOCTL_FAIL(c, err, "VIDIOC_S_FMT");
    const struct v4l2_pix_format *px = &fmt.fmt.pix;
    char cc[5];
    if (!pix_supported(px->pixelformat) || px->width == 0 || px->height == 0 ||
        px->width > 16384 || px->height > 16384)
        return tb_fail(err, "camera %s: VIDIOC_S_FMT: driver chose %s %ux%u, which tabula cannot use",
                       c->path, v4l2_fourcc_str(px->pixelformat, cc), px->width, px->height);
    c->fourcc = px->pixelformat;
    c->w = (int)px->width, c->h = (int)px->height;
    c->stride = px->bytesperline;
    return 0;
}

// Frame rate: the asked-for rate, or the mode's best if lower. Drivers without
// VIDIOC_S_PARM (EINVAL/ENOTTY) just run at their default; any other failure is
// the device's trouble and fatal. c->fps ends as the rate the driver reports.
static int set_rate(Cam *c, double mode_fps, double want_fps, TbErr *err) {
    double rate = mode_fps > 0 && mode_fps < want_fps ? mode_fps : want_fps;
    struct v4l2_streamparm parm;
    memset(&parm, 0, sizeof parm);
    parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    c->fps = mode_fps;
    if (xioctl(c, VIDIOC_G_PARM, &parm) < 0) {
        if (errno != EINVAL && errno != ENOTTY) return IOCTL_FAIL(c, err, "VIDIOC_G_PARM");
        return 0;
    }
    if (!(parm.parm.capture.capability & V4L2_CAP_TIMEPERFRAME)) return 0;
    parm.parm.capture.timeperframe.numerator = 1000;
    parm.parm.capture.timeperframe.denominator = (unsigned)(rate * 1000 + 0.5);
    if (xioctl(c, VIDIOC_S_PARM, &parm) < 0) {
        if (errno != EINVAL && errno != ENOTTY) return IOCTL_FAIL(c, err, "VIDIOC_S_PARM");
        tb_log("camera %s: VIDIOC_S_PARM: %s (default rate)", c->path, strerror(errno));
    }
    const struct v4l2_fract *t = &parm.parm.capture.timeperframe;
    if (t->numerator > 0 && t->denominator > 0) c->fps = (double)t->denominator / t->numerator;
    return 0;
}

// Buffers: few, so the frame we get is recent (the newest wins downstream).
// Requests nbuffers (2..MAX_BUFS, else 4) and maps each one.
static int map_buffers(Cam *c, int nbuffers, TbErr *err) {
    int want_bufs = nbuffers >= 2 && nbuffers <= MAX_BUFS ? nbuffers : 4;
    struct v4l2_requestbuffers rb = {.count = (unsigned)want_bufs,
                                     .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                     .memory = V4L2_MEMORY_MMAP};
    if (xioctl(c, VIDIOC_REQBUFS, &rb) < 0) return IOCTL_FAIL(c, err, "VIDIOC_REQBUFS");
    if (rb.count < 2 || rb.count > MAX_BUFS) {
        tb_fail(err, "camera %s: VIDIOC_REQBUFS: got %u buffers, need 2 to %d", c->path, rb.count,
                MAX_BUFS);
        rb.count = 0;
        xioctl(c, VIDIOC_REQBUFS, &rb);  // hand them back; this is already a failure
        return -1;
    }
    c->nbuf = (int)rb.count;
    for (int i = 0; i < c->nbuf; i++) {
        struct v4l2_buffer b = {.index = (unsigned)i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                .memory = V4L2_MEMORY_MMAP};
        if (xioctl(c, VIDIOC_QUERYBUF, &b) < 0) return IOCTL_FAIL(c, err, "VIDIOC_QUERYBUF");
        void *p = c->io->mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd,
                              (int64_t)b.m.offset);
        if (p == MAP_FAILED)
            return tb_fail(err, "camera %s: mmap buffer %d: %s", c->path, i, strerror(errno));
        c->buf[i].p = p, c->buf[i].len = b.length;
    }
    return 0;
}

// Queue every buffer and start the stream.
static int start_streaming(Cam *c, TbErr *err) {
    for (int i = 0; i < c->nbuf; i++) {
        struct v4l2_buffer b = {.index = (unsigned)i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                .memory = V4L2_MEMORY_MMAP};
        if (xioctl(c, VIDIOC_QBUF, &b) < 0) return IOCTL_FAIL(c, err, "VIDIOC_QBUF");
    }
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(c, VIDIOC_STREAMON, &type) < 0) return IOCTL_FAIL(c, err, "VIDIOC_STREAMON");
    c->streaming = 1;
    return 0;
}

// The Source of a started Cam, with the read-time defaults filled in.
static Source *cam_source(Cam *c, const char *card) {
    if (c->opts.poll_ms <= 0) c->opts.poll_ms = 100;
    if (c->opts.lock_after <= 0) c->opts.lock_after = 30;
    if (!c->opts.lock_exposure && !c->opts.lock_white_balance) c->opts.lock_after = -1;

    Source *s = tb_calloc(1, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "camera:%s", c->path);
    if (c->stable[0]) snprintf(s->reopen, sizeof s->reopen, "camera:%s", c->stable);
    s->width = c->w, s->height = c->h, s->fps = c->fps;
    s->ctx = c, s->read = cam_read, s->close = cam_close;
    char cc[5];
    tb_log("camera %s: %s %dx%d at %.3g fps, %d buffers (%s)%s%s", c->path, v4l2_fourcc_str(c->fourcc, cc),
           c->w, c->h, c->fps, c->nbuf, card, c->stable[0] ? ", known as " : "", c->stable);
    return s;
}

// The name udev gives this node in <dev_dir>/v4l/by-id (the camera's USB
// vendor, model and serial), which follows the camera to whatever videoN it
// gets when it is plugged back in. "" when there is none.
static void stable_name(const char *dev_dir, const char *node, char *out, size_t n) {
    out[0] = 0;
    char want[PATH_MAX], dir[PATH_MAX], got[PATH_MAX];
    if (!realpath(node, want)) return;
    snprintf(dir, sizeof dir, "%s/v4l/by-id", dev_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char link[PATH_MAX + 256];
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        size_t len = strlen(link);
        if (len < n && realpath(link, got) && strcmp(got, want) == 0) {
            memcpy(out, link, len + 1);
            break;
        }
    }
    closedir(d);
}

// Open and start one device. *not_capture is set when the node is not a
// capture device at all (a metadata node, say), so the scan can move on quietly.
// A symlink (a /dev/v4l/by-id name) opens the node it points to now.
static Source *open_path(const char *path, const CameraOpts *o, int *not_capture, TbErr *err) {
    *not_capture = 0;
    struct stat st;
    char node[PATH_MAX];
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && realpath(path, node)) path = node;
    size_t len = strlen(path);
    if (len >= sizeof ((Cam *)0)->path) return tb_fail(err, "camera %.64s...: path too long", path), NULL;
    Cam *c = tb_calloc(1, sizeof *c);
    c->io = o->io, c->opts = *o, c->fd = -1;
    memcpy(c->path, path, len + 1);
    stable_name(o->io->dev_dir ? o->io->dev_dir : "/dev", path, c->stable, sizeof c->stable);

    struct v4l2_capability cap;
    Mode best;
    double want_fps = o->fps > 0 ? o->fps : 30;
    if (open_device(c, path, &cap, not_capture, err) < 0 ||
        choose_mode(c, o, want_fps, &best, err) < 0 || set_format(c, &best, err) < 0 ||
        set_rate(c, best.fps, want_fps, err) < 0 || map_buffers(c, o->nbuffers, err) < 0 ||
        start_streaming(c, err) < 0) {
        cam_release(c);  // the one cleanup path: undoes whatever the steps acquired
        free(c);
        return NULL;
    }
    return cam_source(c, (const char *)cap.card);
}

// video<N> entries of dir, sorted by N. Returns the count (up to max).
static int cmp_int(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}
static int list_video_nodes(const char *dir, int *num, int max) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (strncmp(e->d_name, "video", 5) != 0 || !e->d_name[5]) continue;
        char *end;
        long v = strtol(e->d_name + 5, &end, 10);
        if (*end == 0 && v >= 0 && v < 1000000) num[n++] = (int)v;
    }
    closedir(d);
    qsort(num, (size_t)n, sizeof *num, cmp_int);
    return n;
}

Source *source_open_camera(const char *device, const CameraOpts *opts, TbErr *err) {
    CameraOpts o = opts ? *opts : (CameraOpts){0};
    if (!o.io) o.io = &v4l2_io_default;
    int not_capture;
    if (device && device[0]) return open_path(device, &o, &not_capture, err);

    // "camera": the first node that opens as a capture device. A capture device
    // that fails (busy, say) is remembered: its error beats "none found".
    const char *dir = o.io->dev_dir ? o.io->dev_dir : "/dev";
    int num[64];
    int n = list_video_nodes(dir, num, 64);
    if (n < 0) return tb_fail(err, "no camera found (cannot list %s: %s)", dir, strerror(errno)), NULL;
    TbErr first = {{0}};
    for (int i = 0; i < n; i++) {
        char path[256];
        TbErr e = {{0}};
        snprintf(path, sizeof path, "%s/video%d", dir, num[i]);
        Source *s = open_path(path, &o, &not_capture, &e);
        if (s) return s;
        if (!not_capture && !first.msg[0]) first = e;
    }
    if (first.msg[0]) return tb_fail(err, "%s", first.msg), NULL;
    tb_fail(err, "no camera found (no %s/video* capture device)", dir);
    return NULL;
}
