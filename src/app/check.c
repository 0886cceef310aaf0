// check.c (app): the probes of `tabula --check` that need the app's libraries:
// cameras through the app's V4L2 code, audio, and whether a window can open.
// Called by src/cli/check.c through its hook (app_check_probes).
#define _DEFAULT_SOURCE
#include "app_check.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <GLFW/glfw3.h>
#include <linux/videodev2.h>

#include "audio.h"
#include "session.h"
#include "v4l2.h"
#include "vcam.h"

static void check_cameras(const Settings *s) {
    glob_t g;
    int found = glob("/dev/video*", 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    if (!found) {
        check_line("cameras:", "none (no /dev/video* nodes)");
        globfree(&g);
        return;
    }
    char nodes[512] = "";
    size_t n = 0;
    for (int i = 0; i < found && n < sizeof nodes; i++)
        n += (size_t)snprintf(nodes + n, sizeof nodes - n, "%s%s", i ? " " : "", g.gl_pathv[i]);
    globfree(&g);
    // The first usable capture device, negotiated as a run would.
    SourceOpts so = session_source_opts(s);
    TbErr err = {{0}};
    Source *src = source_open("camera", &so, &err);
    CameraInfo ci;
    if (!src) {
        check_line("cameras:", "%s; camera does not open: %s", nodes, err.msg);
    } else if (camera_info(src, &ci) == 0) {
        check_line("cameras:", "%s; %s opens: %c%c%c%c %dx%d at %.1f fps", nodes, ci.path,
                   (char)(ci.fourcc & 0xff), (char)((ci.fourcc >> 8) & 0xff),
                   (char)((ci.fourcc >> 16) & 0xff), (char)((ci.fourcc >> 24) & 0xff), ci.width,
                   ci.height, ci.fps);
    } else {
        check_line("cameras:", "%s; camera opens (%dx%d)", nodes, src->width, src->height);
    }
    if (src) source_close(src);
}

static char g_glfw_err[256];
static void on_glfw_error(int code, const char *desc) {
    snprintf(g_glfw_err, sizeof g_glfw_err, "%s", desc ? desc : "unknown GLFW error");
    (void)code;
}

static void check_display(const Settings *s, CheckReport *r) {
    const char *x = getenv("DISPLAY"), *wl = getenv("WAYLAND_DISPLAY");
    char env[160];
    snprintf(env, sizeof env, "DISPLAY=%s, WAYLAND_DISPLAY=%s", x && *x ? x : "(unset)",
             wl && *wl ? wl : "(unset)");
    g_glfw_err[0] = 0;
    glfwSetErrorCallback(on_glfw_error);
    if (glfwInit()) {
        int nmon = 0;
        GLFWmonitor **mons = glfwGetMonitors(&nmon);
        const GLFWvidmode *m = nmon > 0 ? glfwGetVideoMode(mons[0]) : NULL;
        if (m)
            check_line("display:", "%s; a window can open (%d monitor(s), primary %dx%d at %d Hz)", env,
                       nmon, m->width, m->height, m->refreshRate);
        else
            check_line("display:", "%s; a window can open (%d monitor(s))", env, nmon);
        glfwTerminate();
    } else {
        const char *why = g_glfw_err[0] ? g_glfw_err : "glfwInit failed";
        check_line("display:", "%s; no window can open: %s%s", env, why,
                   s->headless ? " (not needed: headless)" : "");
        if (!s->headless) check_fail(r, "no display: %s (set DISPLAY, or run --headless)", why);
    }
    glfwSetErrorCallback(NULL);
}

static void audio_line(void *user, const char *text) {
    check_line(*(int *)user ? "" : "audio:", "%s", text);
    *(int *)user = 1;
}

// The input devices a take can record from ([record] audio_device picks one
// by a part of its name). None is no failure: takes are then silent.
static void check_audio(const Settings *s) {
    int said = 0;
    if (audio_list(audio_line, &said) == 0 && !said)
        check_line("audio:", "no input device (takes record no sound)");
    if (strcmp(s->record_audio_device, "none") == 0)
        check_line("", "[record] audio_device = none: takes record no sound");
    else if (s->record_audio_device[0])
        check_line("", "[record] audio_device = \"%s\": a take records the first input whose name contains it",
                   s->record_audio_device);
}

// --output v4l2:...: the run would exit 2 if the device does not take frames.
static void check_vcam(const Settings *s, CheckReport *r) {
    if (!vcam_wanted(s, NULL)) return;
    TbErr err = {{0}};
    VcamDevInfo info;
    if (vcam_probe(s, NULL, &info, &err) < 0) {
        check_fail(r, "%s", err.msg);
        return;
    }
    check_line("virtual camera:", "%s takes %s %dx%d", info.path,
               info.fourcc == V4L2_PIX_FMT_YUYV ? "YUYV" : "YUV420", info.width, info.height);
}

void app_check_probes(const Settings *s, CheckReport *r) {
    check_cameras(s);
    check_vcam(s, r);
    check_audio(s);
    check_display(s, r);
}
