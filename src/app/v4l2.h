// v4l2.h: webcams through V4L2 (libv4l2), with the device calls behind a seam
// so tests can drive negotiation and capture against a fake device. The
// virtual camera (vcam_dev.h) goes through the same seam.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "source.h"

// The device calls. The default is libv4l2 plus poll(2); a test supplies its own.
typedef struct V4l2Io {
    int (*open)(const char *path, int flags);
    int (*close)(int fd);
    int (*ioctl)(int fd, unsigned long request, void *arg);  // -1 and errno on failure
    void *(*mmap)(void *start, size_t length, int prot, int flags, int fd, int64_t offset);
    int (*munmap)(void *start, size_t length);
    // Wait for a frame: 1 readable, 2 error condition (unplugged), 0 timeout, -1 errno.
    int (*poll)(int fd, int timeout_ms);
    const char *dev_dir;  // where "camera" looks for video<N> nodes: "/dev"
    // One frame to an output device (the virtual camera, vcam_dev.c); NULL = write(2).
    ssize_t (*write)(int fd, const void *buf, size_t n);
} V4l2Io;

extern const V4l2Io v4l2_io_default;

typedef struct {
    int width, height;       // preferred size; 0 = the largest up to 1920x1080
    int fps;                 // preferred rate; 0 = 30
    int lock_exposure;       // after `lock_after` frames, hold the exposure auto found
    int lock_white_balance;  // same for white balance
    int lock_after;          // frames of auto before locking (0 = 30)
    int nbuffers;            // mmap buffers, 2..8 (0 = 4)
    int poll_ms;             // read() waits at most this long, then returns 0 (0 = 100)
    const V4l2Io *io;        // NULL = v4l2_io_default
} CameraOpts;

// o may be NULL (all defaults). device: NULL or "" = the first usable capture device in io->dev_dir, else a
// path. read() returns 0 while no frame is ready (never blocks longer than
// poll_ms) and -1 when the device is gone ("camera /dev/video0: VIDIOC_DQBUF:
// No such device"); a corrupt frame is skipped, not an error.
Source *source_open_camera(const char *device, const CameraOpts *o, TbErr *err);

// What was negotiated, for logs and tests (fourcc as in pixconv.h).
typedef struct {
    char path[256];
    uint32_t fourcc;
    int width, height, nbuffers;
    double fps;
} CameraInfo;
int camera_info(const Source *s, CameraInfo *info);  // 0, or -1 if s is not a camera
// "YUYV" for logs (unprintable bytes as '?').
const char *v4l2_fourcc_str(uint32_t f, char out[5]);
