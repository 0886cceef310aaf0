// vcam_dev.h: one V4L2 video output device (a v4l2loopback node, which OBS,
// browsers and video-call programs see as a camera), through the camera's
// device seam (v4l2.h: V4l2Io), so tests drive it against a fake device.
// Negotiation: the node must be a video output with write() I/O; YUYV is
// asked for first, then YUV420 (I420); the size asked for, or the one the
// driver keeps (a reader may hold it), as long as its width is even. Frames
// go out with write(), one whole frame per call (v4l2loopback takes that).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "v4l2.h"

typedef struct {
    int width, height;  // the picture asked for; width even
    double fps;         // the rate announced (VIDIOC_S_PARM); 0 = 30
    const V4l2Io *io;   // NULL = v4l2_io_default
} VcamDevOpts;

typedef struct {
    char path[256];
    uint32_t fourcc;     // PIX_YUYV or V4L2_PIX_FMT_YUV420
    int width, height;   // as negotiated: the picture vcam_dev_write takes
    size_t frame_bytes;  // what one write() sends
} VcamDevInfo;

typedef struct VcamDev VcamDev;

// Open and negotiate. NULL with err ("virtual camera /dev/video9: not a video
// output device ..."), nothing left open.
VcamDev *vcam_dev_open(const char *path, const VcamDevOpts *o, TbErr *err);
// Convert one RGB8 picture (width x height as negotiated) and write it.
// 0 written; 1 the device would block (EAGAIN: this frame is dropped); -1 with
// err, errno kept (ENODEV, EIO: the device went away).
int vcam_dev_write(VcamDev *d, const uint8_t *rgb, TbErr *err);
void vcam_dev_info(const VcamDev *d, VcamDevInfo *info);
void vcam_dev_close(VcamDev *d);
