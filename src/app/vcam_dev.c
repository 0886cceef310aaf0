// vcam_dev.c: a V4L2 output device, negotiated and written through V4l2Io
// (see vcam_dev.h).
#include "vcam_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <linux/videodev2.h>

#include "color.h"

struct VcamDev {
    const V4l2Io *io;
    int fd;
    VcamDevInfo info;
    size_t stride;  // bytes per line (of Y for YUV420)
    uint8_t *buf;   // one frame as written
};

static int xioctl(VcamDev *d, unsigned long req, void *arg) {
    int r;
    do r = d->io->ioctl(d->fd, req, arg);
    while (r == -1 && errno == EINTR);
    return r;
}
#define IOCTL_FAIL(d, err, name) tb_fail(err, "virtual camera %s: %s: %s", (d)->info.path, name, strerror(errno))

// A video output with write(): v4l2loopback's nodes are (with exclusive_caps=1
// until a program writes to them, then they turn into a capture device).
static int check_caps(VcamDev *d, TbErr *err) {
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    if (xioctl(d, VIDIOC_QUERYCAP, &cap) < 0) return IOCTL_FAIL(d, err, "VIDIOC_QUERYCAP");
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    if (!(caps & V4L2_CAP_VIDEO_OUTPUT))
        return tb_fail(err,
                       "virtual camera %s: not a video output device (%s%s): give a v4l2loopback "
                       "node (README: Virtual camera)",
                       d->info.path, (caps & V4L2_CAP_VIDEO_CAPTURE) ? "a capture device: " : "",
                       (const char *)cap.card);
    if (!(caps & V4L2_CAP_READWRITE))
        return tb_fail(err, "virtual camera %s: no write() I/O (%s)", d->info.path, (const char *)cap.card);
    return 0;
}

// One S_FMT: 1 if the driver kept fourcc, 0 if it chose another (or refused
// it with EINVAL), -1 with err.
static int try_format(VcamDev *d, uint32_t fourcc, const VcamDevOpts *o, struct v4l2_format *f, TbErr *err) {
    memset(f, 0, sizeof *f);
    f->type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    struct v4l2_pix_format *px = &f->fmt.pix;
    px->width = (unsigned)o->width, px->height = (unsigned)o->height;
    px->pixelformat = fourcc;
    px->field = V4L2_FIELD_NONE;
    px->bytesperline = fourcc == V4L2_PIX_FMT_YUYV ? (unsigned)o->width * 2 : (unsigned)o->width;
    px->sizeimage = fourcc == V4L2_PIX_FMT_YUYV ? (unsigned)(o->width * o->height * 2)
                                                : (unsigned)(o->width * o->height * 3 / 2);
    px->colorspace = V4L2_COLORSPACE_SMPTE170M;  // BT.601, limited range: what color.h writes
    px->quantization = V4L2_QUANTIZATION_LIM_RANGE;
    px->ycbcr_enc = V4L2_YCBCR_ENC_601;
    if (xioctl(d, VIDIOC_S_FMT, f) < 0) {
        if (errno != EINVAL) return IOCTL_FAIL(d, err, "VIDIOC_S_FMT");
        px->pixelformat = 0;  // refused outright
        return 0;
    }
    return px->pixelformat == fourcc;
}

// YUYV, else YUV420, at the size asked for or the one the driver keeps.
static int set_format(VcamDev *d, const VcamDevOpts *o, TbErr *err) {
    static const uint32_t want[2] = {V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_YUV420};
    struct v4l2_format f;
    int k, got = 0;
    for (k = 0; k < 2 && !got; k++)
        if ((got = try_format(d, want[k], o, &f, err)) < 0) return -1;
    const struct v4l2_pix_format *px = &f.fmt.pix;
    char cc[5];
    if (!got)
        return tb_fail(err, "virtual camera %s: takes neither YUYV nor YUV420 (%s%s)", d->info.path,
                       px->pixelformat ? "the driver chose " : "both refused",
                       px->pixelformat ? v4l2_fourcc_str(px->pixelformat, cc) : "");
    int w = (int)px->width, h = (int)px->height, yuyv = px->pixelformat == V4L2_PIX_FMT_YUYV;
    if (w < 16 || h < 16 || w > 7680 || h > 7680 || (w & 1))
        return tb_fail(err, "virtual camera %s: the driver chose %dx%d, which tabula cannot send (16 to "
                       "7680, an even width)", d->info.path, w, h);
    size_t min_stride = (size_t)w * (yuyv ? 2 : 1);
    d->stride = px->bytesperline >= min_stride ? px->bytesperline : min_stride;
    size_t need = yuyv ? d->stride * h : d->stride * h + 2 * (d->stride / 2) * (size_t)((h + 1) / 2);
    d->info.fourcc = px->pixelformat;
    d->info.width = w, d->info.height = h;
    d->info.frame_bytes = px->sizeimage > need ? px->sizeimage : need;
    if (w != o->width || h != o->height)
        tb_log("virtual camera %s: the driver keeps %dx%d (asked for %dx%d)", d->info.path, w, h, o->width,
               o->height);
    return 0;
}

// The rate readers are told; a driver without it (EINVAL, ENOTTY) is fine.
static int set_rate(VcamDev *d, double fps, TbErr *err) {
    struct v4l2_streamparm p;
    memset(&p, 0, sizeof p);
    p.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    p.parm.output.timeperframe.numerator = 1000;
    p.parm.output.timeperframe.denominator = (unsigned)((fps > 0 ? fps : 30) * 1000 + 0.5);
    if (xioctl(d, VIDIOC_S_PARM, &p) == 0 || errno == EINVAL || errno == ENOTTY) return 0;
    return IOCTL_FAIL(d, err, "VIDIOC_S_PARM");
}

VcamDev *vcam_dev_open(const char *path, const VcamDevOpts *o, TbErr *err) {
    if (strlen(path) >= sizeof ((VcamDevInfo *)0)->path)
        return tb_fail(err, "virtual camera %.64s...: path too long", path), NULL;
    if (o->width < 16 || o->height < 16 || o->width > 7680 || o->height > 7680 || (o->width & 1))
        return tb_fail(err, "virtual camera %s: size %dx%d: 16 to 7680 with an even width", path, o->width,
                       o->height), NULL;
    VcamDev *d = tb_calloc(1, sizeof *d);
    d->io = o->io ? o->io : &v4l2_io_default;
    snprintf(d->info.path, sizeof d->info.path, "%s", path);
    d->fd = d->io->open(path, O_RDWR | O_NONBLOCK);
    if (d->fd < 0) {
        tb_fail(err, "virtual camera %s: %s%s", path, strerror(errno),
                errno == ENOENT ? " (is v4l2loopback loaded? README: Virtual camera)" : "");
        free(d);
        return NULL;
    }
    if (check_caps(d, err) || set_format(d, o, err) || set_rate(d, o->fps, err)) {
        vcam_dev_close(d);
        return NULL;
    }
    d->buf = tb_calloc(1, d->info.frame_bytes);
    return d;
}

int vcam_dev_write(VcamDev *d, const uint8_t *rgb, TbErr *err) {
    int w = d->info.width, h = d->info.height;
    if (d->info.fourcc == V4L2_PIX_FMT_YUYV) {
        rgb_to_yuyv(d->buf, rgb, w, h, d->stride);
    } else {
        uint8_t *u = d->buf + d->stride * h, *v = u + (d->stride / 2) * (size_t)((h + 1) / 2);
        rgb_to_i420(d->buf, u, v, rgb, w, h, d->stride);
    }
    ssize_t n;
    do n = d->io->write ? d->io->write(d->fd, d->buf, d->info.frame_bytes) : write(d->fd, d->buf, d->info.frame_bytes);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)d->info.frame_bytes) return 0;
    if (n < 0 && errno == EAGAIN) return 1;
    int e = n < 0 ? errno : EIO;
    if (n < 0) tb_fail(err, "virtual camera %s: write: %s", d->info.path, strerror(e));
    else tb_fail(err, "virtual camera %s: write: %zd of %zu bytes", d->info.path, n, d->info.frame_bytes);
    errno = e;
    return -1;
}

void vcam_dev_info(const VcamDev *d, VcamDevInfo *info) { *info = d->info; }

void vcam_dev_close(VcamDev *d) {
    if (!d) return;
    if (d->fd >= 0) d->io->close(d->fd);
    free(d->buf);
    free(d);
}
