// main.c: tabula's entry point, the one place that knows whether this build has
// the window. Settings: built-in defaults (documented in config/default.ini),
// then --config FILE, then flags. --headless trains without a window;
// otherwise the live app opens.
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "headless.h"
#include "settings.h"
#ifdef TABULA_HAVE_APP
#include "app.h"
#include "app_sources.h"
#include "osc.h"
#endif

#ifdef TABULA_HAVE_APP
// OSC plays both the headless run and the window. One that cannot listen (port
// in use, bad address) says so in one line and the show goes on without it.
static Osc *start_osc(const Settings *s, ControlQueue *q) {
    TbErr err = {{0}};
    Osc *o = osc_start(s, q, &err);
    if (!o && err.msg[0]) tb_log("%s: running without OSC", err.msg);
    return o;
}
#endif

int main(int argc, char **argv) {
    Settings s;
    settings_default(&s);
    TbErr err = {{0}};
    int rc = settings_parse_args(&s, argc, argv, &err);
    if (rc == 1) return TB_EXIT_OK;  // --help
    if (rc < 0) {
        tb_log("%s", err.msg);
        return TB_EXIT_INPUT;
    }
#ifdef TABULA_HAVE_APP
    app_register_sources();  // video files, image folders, cameras
#endif
    if (s.headless) {
        // Control surfaces (OSC) play a headless run too.
        ControlQueue q;
        control_queue_init(&q);
#ifdef TABULA_HAVE_APP
        Osc *osc = start_osc(&s, &q);
#endif
        rc = run_headless(&s, &q);
#ifdef TABULA_HAVE_APP
        osc_stop(osc);
#endif
        control_queue_destroy(&q);
        return rc;
    }
    // The window (llvmpipe on a machine without a GPU) and the camera share the
    // cores with training: OpenMP threads that spin while waiting then steal
    // time from them (measured: 24 -> 29 steps/s at 128x128, 6 -> 9 at 256x256
    // under Xvfb). The policy is read when the OpenMP runtime loads, before
    // main, so set it and start again, once. Headless runs keep the default.
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);  // if this fails, go on as we are
    }
#ifdef TABULA_HAVE_APP
    ControlQueue q;
    control_queue_init(&q);
    Osc *osc = start_osc(&s, &q);
    rc = app_run(&s, &q);
    osc_stop(osc);
    control_queue_destroy(&q);
    return rc;
#else
    tb_log("this build has no window (built with TABULA_APP=OFF): use --headless");
    return TB_EXIT_INPUT;
#endif
}
