// test_vcam_loopback: why it exists: the fake device of test_vcam answers as
// v4l2loopback is documented to; this checks the real module where one is
// loaded (sudo modprobe v4l2loopback exclusive_caps=1 card_label=tabula): the
// virtual camera negotiates with it and writes frames, and the same node,
// opened as a camera by tabula's own V4L2 capture code, gives them back.
// Where no loopback node exists (no module, as on the test machines) it
// exits 77 with the reason.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/videodev2.h>

#include "clip_frame.h"
#include "test.h"
#include "v4l2.h"
#include "vcam_dev.h"

// The first /dev/video* node whose driver is v4l2loopback; "" and the reason if none.
static int find_loopback(char *path, size_t n, char *why, size_t wn) {
    DIR *d = opendir("/dev");
    int nodes = 0;
    path[0] = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && !path[0]) {
        if (strncmp(e->d_name, "video", 5) != 0) continue;
        char p[300];
        snprintf(p, sizeof p, "/dev/%s", e->d_name);
        nodes++;
        int fd = open(p, O_RDWR | O_NONBLOCK);
        struct v4l2_capability cap;
        memset(&cap, 0, sizeof cap);
        if (fd >= 0 && ioctl(fd, VIDIOC_QUERYCAP, &cap) == 0 && strstr((const char *)cap.driver, "loopback"))
            snprintf(path, n, "%s", p);
        if (fd >= 0) close(fd);
    }
    if (d) closedir(d);
    if (!path[0])
        snprintf(why, wn, "no v4l2loopback device (%s; load one with: sudo modprobe v4l2loopback exclusive_caps=1 "
                 "card_label=tabula)", nodes ? "the /dev/video nodes here are other drivers'" : "no /dev/video* node at all");
    return path[0] ? 0 : -1;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += (double)(a[i] - b[i]) * (a[i] - b[i]);
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 / (se / (double)n));
}

// Written by the virtual camera, read back through the camera source.
TEST_IMPL(frames_written_come_back_through_the_camera_path) {
    char path[300], why[300];
    if (find_loopback(path, sizeof path, why, sizeof why)) TEST_SKIP("%s", why);
    int w, h;
    uint8_t *f = clip_y4m_frame(test_data("hikers_forest_320x240.y4m"), 30, &w, &h);
    if (!f) TEST_SKIP("cannot read the hikers clip");
    TbErr err = {{0}};
    VcamDevOpts o = {.width = w, .height = h, .fps = 30};
    VcamDev *d = vcam_dev_open(path, &o, &err);
    EXPECT(d != NULL, "%s", err.msg);
    if (!d) return free(f);
    VcamDevInfo in;
    vcam_dev_info(d, &in);
    printf("%s: %.4s %dx%d, %zu bytes a frame\n", path, (char *)&in.fourcc, in.width, in.height, in.frame_bytes);
    EXPECT(in.width == w && in.height == h, "negotiated %dx%d (a reader may hold another size)", in.width, in.height);
    EXPECT(vcam_dev_write(d, f, &err) == 0, "%s", err.msg);
    CameraOpts co = {.width = w, .height = h, .poll_ms = 50};
    Source *cam = source_open_camera(path, &co, &err);
    EXPECT(cam != NULL, "the loopback node as a camera: %s", err.msg);
    int got = 0;
    uint8_t *back = malloc((size_t)w * h * 3);
    for (double t0 = tb_now(); cam && !got && tb_now() - t0 < 3;) {
        EXPECT(vcam_dev_write(d, f, &err) == 0 || err.msg[0] == 0, "%s", err.msg);
        got = cam->read(cam, back, &err);
        EXPECT(got >= 0, "read: %s", err.msg);
        if (got < 0) break;
    }
    EXPECT(got == 1, "no frame came back in 3 s");
    if (got == 1 && cam->width == w && cam->height == h) {
        double p = psnr(back, f, (size_t)w * h * 3);
        printf("written and read back: %.2f dB\n", p);
        // The conversion alone loses 50 to 52 dB (test_vcam_color); the loopback copies bytes.
        EXPECT(p > 40, "read back at %.2f dB", p);
    }
    source_close(cam);
    vcam_dev_close(d);
    free(back), free(f);
}

TEST_MAIN(TEST_ENTRY(frames_written_come_back_through_the_camera_path))
