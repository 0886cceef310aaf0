// main.c: tabula's entry point, the one place that knows whether this build has
// the window and the control surfaces. Settings: built-in defaults (documented
// in config/default.ini), then --config FILE, then flags. --headless trains
// without a window; otherwise the live app opens. MIDI, OSC and the
// /health endpoint serve both.
// --check reports what the machine offers (check.h) and exits.
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "headless.h"
#include "session.h"
#include "settings.h"
#include "signals.h"
#include "world_train.h"
#ifdef TABULA_HAVE_APP
#include "app.h"
#include "app_check.h"
#include "app_sources.h"
#include "http_health.h"
#include "midi.h"
#include "osc.h"
#include "record.h"
#include "replay.h"
#include "vcam.h"
#endif

// The control surfaces beside the keys, writing into q.
typedef struct {
#ifdef TABULA_HAVE_APP
    Midi *midi;
    Osc *osc;
    HttpHealth *http;
#endif
    int unused_;
} Surfaces;

// A bad MIDI mapping file stops the start (-1, err); a sequencer, an OSC port
// or the /health port that cannot be had is one log line, and the show goes on
// without it.
static int surfaces_start(Surfaces *sf, const Settings *s, ControlQueue *q, TbErr *err) {
    memset(sf, 0, sizeof *sf);
#ifdef TABULA_HAVE_APP
    if (!(sf->midi = midi_start(s, q, err))) return -1;
    TbErr e = {{0}};
    sf->osc = osc_start(s, q, &e);
    if (!sf->osc && e.msg[0]) tb_warn("%s: running without OSC", e.msg);
    sf->http = http_health_start(s, &e);
    if (!sf->http && e.msg[0]) tb_warn("%s: running without it", e.msg);
#endif
    return 0;
}

static void surfaces_stop(Surfaces *sf) {
#ifdef TABULA_HAVE_APP
    http_health_stop(sf->http);
    osc_stop(sf->osc);
    midi_stop(sf->midi);
#endif
    (void)sf;
}

// Headless, with the app's recorder as its output where the app is built
// (--record, the record action), and the virtual camera (--output v4l2:...).
static int headless(const Settings *s, ControlQueue *q) {
#ifdef TABULA_HAVE_APP
    TbErr err = {{0}};
    Vcam *vc = NULL;
    if (vcam_wanted(s, NULL) && !(vc = vcam_start(s, NULL, &err))) {
        tb_error("%s", err.msg);
        return TB_EXIT_INPUT;
    }
    Recorder *rec = recorder_new(s);
    RunOutput out[2] = {recorder_output(rec)};
    if (vc) out[1] = vcam_output(vc);
    int rc = run_headless(s, q, out, vc ? 2 : 1);
    recorder_free(rec);
    vcam_stop(vc);
    return rc;
#else
    return run_headless(s, q, NULL, 0);
#endif
}

// --output outside --replay is the virtual camera, v4l2:/dev/videoN, or nothing.
static int check_output(const Settings *s, TbErr *err) {
    if (!s->output[0] || s->replay[0]) return 0;
    if (strncmp(s->output, "v4l2:", 5) != 0 || !s->output[5])
        return tb_fail(err, "--output \"%s\": without --replay it is a virtual camera, v4l2:/dev/videoN "
                       "(a video file is rendered with --replay TAKE --output FILE.mkv)", s->output);
#ifndef TABULA_HAVE_APP
    return tb_fail(err, "--output %s: this build has no virtual camera (built with TABULA_APP=OFF)", s->output);
#endif
    return 0;
}

// The run (headless or the window) with its queue and surfaces.
static int run(const Settings *s, char **argv) {
    TbErr err = {{0}};
    ControlQueue q;
    control_queue_init(&q);
    Surfaces sf;
    int rc;
    if (surfaces_start(&sf, s, &q, &err)) {
        tb_error("%s", err.msg);
        rc = TB_EXIT_INPUT;
    } else {
#ifdef TABULA_HAVE_APP
        rc = s->headless ? headless(s, &q) : app_run(s, &q);
#else
        rc = headless(s, &q);
#endif
        surfaces_stop(&sf);
    }
    control_queue_destroy(&q);
    return rc;
}

int main(int argc, char **argv) {
    Settings s;
    settings_default(&s);
    TbErr err = {{0}};
    int rc = settings_parse_args(&s, argc, argv, &err);
    if (rc == 1) return TB_EXIT_OK;  // --help
    if (rc < 0 || session_check(&s, &err) || check_output(&s, &err)) {
        tb_error("%s", err.msg);
        return TB_EXIT_INPUT;
    }
    int level = tb_log_level_parse(s.health_log_level);
    if (level >= 0) tb_log_set_level(level);
#ifdef TABULA_HAVE_APP
    app_register_sources();  // video files, image folders, cameras
    if (s.check) return check_run(&s, app_check_probes);
#else
    if (s.check) return check_run(&s, NULL);
    if (s.replay[0]) {
        tb_error("this build cannot replay a take (built with TABULA_APP=OFF)");
        return TB_EXIT_INPUT;
    }
    if (!s.headless) {
        tb_error("this build has no window (built with TABULA_APP=OFF): use --headless");
        return TB_EXIT_INPUT;
    }
    if (s.health_http_port > 0)
        tb_warn("[health] http_port: this build has no /health endpoint (built with TABULA_APP=OFF)");
#endif
    signals_install();  // SIGTERM, SIGINT, SIGHUP: stop as quitting does
    // A file size limit (ulimit -f) makes a write fail with EFBIG, which a
    // take, the metrics or an autosave report and survive, not a kill.
    signal(SIGXFSZ, SIG_IGN);
    if (s.train_world[0]) return world_train_run(&s);  // theme training, then exit
    // The window (llvmpipe on a machine without a GPU) and the camera share the
    // cores with training: OpenMP threads that spin while waiting then steal
    // time from them (measured: 24 -> 29 steps/s at 128x128, 6 -> 9 at 256x256
    // under Xvfb). The policy is read when the OpenMP runtime loads, before
    // main, so set it and start again, once. Headless runs keep the default,
    // but for a take's encoder threads (measured: 60 frames at 128x128 into
    // 1280x720, 4.7 s -> 2.4 s).
    if ((!s.headless || s.record[0]) && !getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);  // if this fails, go on as we are
    }
#ifdef TABULA_HAVE_APP
    if (s.replay[0]) return replay_main(&s);  // a take run again offline (replay.h)
#endif
    return run(&s, argv);
}
