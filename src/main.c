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
#include "signals.h"
#ifdef TABULA_HAVE_APP
#include "app.h"
#include "app_sources.h"
#include "midi.h"
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
    signals_install();  // SIGTERM, SIGINT, SIGHUP: stop as quitting does
    if (s.headless) {
        // Control surfaces (OSC) play a headless run too.
        ControlQueue q;
        control_queue_init(&q);
#ifdef TABULA_HAVE_APP
        Midi *midi = midi_start(&s, &q, &err);  // a bad mapping file: exit 2
        if (!midi) {
            tb_log("%s", err.msg);
            control_queue_destroy(&q);
            return TB_EXIT_INPUT;
        }
#endif
        rc = run_headless(&s, &q);
#ifdef TABULA_HAVE_APP
        midi_stop(midi);
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
    Midi *midi = midi_start(&s, &q, &err);  // a bad mapping file: exit 2
    if (!midi) {
        tb_log("%s", err.msg);
        control_queue_destroy(&q);
        return TB_EXIT_INPUT;
    }
    rc = app_run(&s, &q);
    midi_stop(midi);
    control_queue_destroy(&q);
    return rc;
#else
    tb_log("this build has no window (built with TABULA_APP=OFF): use --headless");
    return TB_EXIT_INPUT;
#endif
}
