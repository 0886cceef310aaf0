// test_modulate.c: why it exists: scenes and the LFO move the training while
// nobody touches a control, in front of an audience. A glide that overshot or
// arrived late, a log parameter that glided linearly (lr would sit near its top
// for most of the way), an LFO that left its parameter's range (an lr of 40, a
// negative memory), or a scene file whose typo went unnoticed until the show,
// would all be seen. Time is driven explicitly (modulate takes `now`), so every
// case is deterministic; the run loop's cases go through a headless Run, whose
// clock is frames / fps, and read its --events log.
#define _DEFAULT_SOURCE
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modulate.h"
#include "run.h"
#include "test.h"

static char tmpdir[64];

static void cleanup(void) {
    char p[256];
    const char *names[] = {"glide.ini", "wd.ini", "bad.ini"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}

// A folder for this run's files, removed at exit.
static const char *scratch_dir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/tabula-mod-%d", (int)getpid());
        mkdir(tmpdir, 0755);
        atexit(cleanup);
    }
    return tmpdir;
}

// Write text to DIR/name; returns the path.
static const char *write_file(const char *name, const char *text) {
    static char path[4][256];
    static int k;
    k = (k + 1) & 3;
    snprintf(path[k], sizeof path[k], "%s/%s", scratch_dir(), name);
    FILE *f = fopen(path[k], "w");
    fputs(text, f);
    fclose(f);
    return path[k];
}

static void defaults(LiveParams *p) {
    Settings s;
    settings_default(&s);
    live_params_from_settings(p, &s);
}

static int count_kind(const Modulator *m, int kind) {
    int k = 0;
    for (int i = 0; i < m->n_notes; i++) k += m->note[i].kind == kind;
    return k;
}

// ---------------------------------------------------------------- glides

static const char *GLIDE_SCENE =
    "# a test scene\n"
    "[scene]\n"
    "name = test-glide\n"
    "transition = 4\n"
    "[params]\n"
    "lr = 0.5            # log: geometric\n"
    "momentum = 0.5      # linear\n"
    "steps_per_frame = 9 # linear, whole numbers\n"
    "clip = 0            # log, to off\n"
    "optimizer = adam    # a choice: at the end\n"
    "pause = 1           # a 0/1 switch: at the end\n";

// From lr 2, momentum 0.9, steps 1, clip 0.1, SGD, running: at the start the
// values are where they were, at the midpoint lr is the geometric mean (1) and
// momentum the arithmetic one (0.7), and at 4 s every value is the scene's,
// not a frame later. Each glide notes its start and its end, nothing between.
TEST_IMPL(scene_glide_reaches_values_at_transition) {
    Scene sc;
    TbErr err = {{0}};
    EXPECT(scene_load(&sc, write_file("glide.ini", GLIDE_SCENE), &err) == 0, "%s", err.msg);
    EXPECT(strcmp(sc.name, "test-glide") == 0 && sc.transition == 4, "name '%s', transition %g", sc.name,
           (double)sc.transition);
    LiveParams p;
    defaults(&p);
    Modulator m;
    modulate_init(&m, 1);
    modulate_scene(&m, &p, &sc, 100.0);
    EXPECT(count_kind(&m, MOD_GLIDE_START) == 6, "6 glide starts noted, got %d", count_kind(&m, MOD_GLIDE_START));
    m.n_notes = 0;
    modulate_step(&m, &p, 100.0);
    EXPECT_NEAR(p.v[PARAM_LR], 2, 1e-6, "lr at the start");
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.9, 1e-6, "momentum at the start");
    for (double t = 100.25; t < 102; t += 0.25) modulate_step(&m, &p, t);
    modulate_step(&m, &p, 102.0);
    EXPECT_NEAR(p.v[PARAM_LR], 1.0, 1e-5, "lr at the midpoint: sqrt(2 * 0.5), geometric");
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.7, 1e-6, "momentum at the midpoint: linear");
    EXPECT_NEAR(p.v[PARAM_STEPS], 5, 0, "steps at the midpoint");
    EXPECT_NEAR(p.v[PARAM_CLIP], 0.1 * sqrt(0.01 / 0.1), 1e-6, "clip halfway (in ratio) to its lowest on value 0.01");
    EXPECT(p.v[PARAM_OPTIMIZER] == 0 && p.v[PARAM_PAUSE] == 0, "switches wait for the end");
    modulate_step(&m, &p, 103.999);
    EXPECT(p.v[PARAM_OPTIMIZER] == 0 && p.v[PARAM_PAUSE] == 0 && p.v[PARAM_LR] > 0.5f, "not there before 4 s");
    EXPECT(m.n_notes == 0, "no note while gliding (%d)", m.n_notes);
    modulate_step(&m, &p, 104.0);
    EXPECT(p.v[PARAM_LR] == 0.5f && p.v[PARAM_MOMENTUM] == 0.5f && p.v[PARAM_STEPS] == 9 &&
               p.v[PARAM_CLIP] == 0 && p.v[PARAM_OPTIMIZER] == 1 && p.v[PARAM_PAUSE] == 1,
           "every value at 4 s: lr %g momentum %g steps %g clip %g opt %g pause %g", (double)p.v[PARAM_LR],
           (double)p.v[PARAM_MOMENTUM], (double)p.v[PARAM_STEPS], (double)p.v[PARAM_CLIP],
           (double)p.v[PARAM_OPTIMIZER], (double)p.v[PARAM_PAUSE]);
    EXPECT(count_kind(&m, MOD_GLIDE_END) == 6 && m.n_notes == 6, "6 ends noted, %d notes", m.n_notes);
    m.n_notes = 0;
    for (double t = 104; t < 110; t += 0.5) modulate_step(&m, &p, t);
    EXPECT(m.n_notes == 0 && p.v[PARAM_LR] == 0.5f, "then nothing moves");
}

// A glide from off on a log parameter rises from its lowest on value; a hand
// on a gliding parameter takes it over and the glide stops.
TEST_IMPL(glide_from_off_and_hand_takes_over) {
    Scene sc;
    TbErr err = {{0}};
    EXPECT(scene_load(&sc, write_file("wd.ini", "[scene]\ntransition = 2\n[params]\nweight_decay = 1e-4\nmemory = 8\n"),
                      &err) == 0, "%s", err.msg);
    EXPECT(strcmp(sc.name, "wd") == 0, "the name defaults to the file's: '%s'", sc.name);
    LiveParams p;
    defaults(&p);
    EXPECT(p.v[PARAM_WEIGHT_DECAY] == 0, "weight decay starts off");
    Modulator m;
    modulate_init(&m, 1);
    modulate_scene(&m, &p, &sc, 0);
    modulate_step(&m, &p, 1.0);
    EXPECT_NEAR(p.v[PARAM_WEIGHT_DECAY], 1e-5, 1e-10, "halfway from 1e-6 (its lowest on value) to 1e-4");
    EXPECT_NEAR(p.v[PARAM_MEMORY], 4, 0, "memory halfway");
    m.n_notes = 0;
    live_params_set(&p, PARAM_MEMORY, 2);  // a hand on memory
    modulate_touch(&m, &p, PARAM_MEMORY);
    EXPECT(m.n_notes == 1 && m.note[0].kind == MOD_GLIDE_STOP && m.note[0].param == PARAM_MEMORY, "a stop noted");
    modulate_step(&m, &p, 2.0);
    EXPECT(p.v[PARAM_MEMORY] == 2, "the hand's value stays: %g", (double)p.v[PARAM_MEMORY]);
    EXPECT_NEAR(p.v[PARAM_WEIGHT_DECAY], 1e-4, 1e-10, "weight decay arrives");
}

// ---------------------------------------------------------------- the LFO

// Every parameter an LFO can take, every shape, at full depth and 3 Hz from
// the bottom, the middle and the top of its range, for 50 periods: never out of
// range, and moving (a log parameter that is off stays off).
TEST_IMPL(lfo_stays_in_range) {
    const Param *row = param_live(PARAM_LFO_PARAM);
    int nt = param_choice_count(row);
    EXPECT(nt == 21 && lfo_target_param(0) == -1, "%d targets", nt);
    // The list is every numeric live parameter but fade_time and the LFO's own.
    for (int id = 0; id < PARAM_COUNT; id++) {
        double lo, hi;
        param_live_range(id, &lo, &hi);
        int numeric = param_live(id)->type != P_CHOICE && !(param_is_int(id) && hi - lo <= 1) &&
                      id != PARAM_FADE_TIME && id != PARAM_LFO_RATE && id != PARAM_LFO_DEPTH;
        int listed = 0;
        for (int k = 1; k < nt; k++) listed |= lfo_target_param(k) == id;
        EXPECT(listed == numeric, "%s: %s LFO_TARGETS", param_live(id)->key, numeric ? "missing from" : "wrongly in");
    }
    for (int k = 1; k < nt; k++) {
        int id = lfo_target_param(k);
        EXPECT(id >= 0 && param_live(id)->type != P_CHOICE, "target %d is a numeric live parameter", k);
        if (id < 0) continue;
        double lo, hi;
        param_live_range(id, &lo, &hi);
        const double where[3] = {lo, (lo + hi) / 2, hi};
        for (int shape = 0; shape < 3; shape++)
            for (int c = 0; c < 3; c++) {
                LiveParams p;
                defaults(&p);
                live_params_set(&p, id, (float)where[c]);
                live_params_set(&p, PARAM_LFO_PARAM, (float)k);
                live_params_set(&p, PARAM_LFO_SHAPE, (float)shape);
                live_params_set(&p, PARAM_LFO_RATE, 3);
                live_params_set(&p, PARAM_LFO_DEPTH, 1);
                Modulator m;
                modulate_init(&m, 7 + (uint64_t)k);
                float vmin = INFINITY, vmax = -INFINITY;
                int out = 0;
                for (int i = 0; i <= 50 * 97 / 3; i++) {
                    modulate_step(&m, &p, i / 97.0);
                    float v = p.v[id];
                    out += !(v >= (float)lo && v <= (float)hi);
                    vmin = fminf(vmin, v), vmax = fmaxf(vmax, v);
                }
                int stays_off = param_live(id)->scale == SCALE_LOG && where[c] <= 0;
                EXPECT(out == 0, "%s shape %d from %g: %d values out of %g..%g (%g..%g)", param_live(id)->key, shape,
                       where[c], out, lo, hi, (double)vmin, (double)vmax);
                EXPECT(stays_off ? vmax == 0 : vmax > vmin, "%s shape %d from %g: %g..%g", param_live(id)->key, shape,
                       where[c], (double)vmin, (double)vmax);
            }
    }
}

// Sine and triangle at 0.5 Hz on momentum around 0.5 at depth 0.2: a period of
// 2 s between rising crossings of the centre, peaks at 0.5 +- 0.2 * 0.999;
// lr at depth 0.1 swings 0.6 decades (lr's log range is six) each way.
TEST_IMPL(lfo_has_expected_period_and_depth) {
    for (int shape = LFO_SINE; shape <= LFO_TRIANGLE; shape++) {
        LiveParams p;
        defaults(&p);
        live_params_set(&p, PARAM_MOMENTUM, 0.5f);
        live_params_set(&p, PARAM_LFO_PARAM, 2);  // momentum
        live_params_set(&p, PARAM_LFO_SHAPE, (float)shape);
        live_params_set(&p, PARAM_LFO_RATE, 0.5f);
        live_params_set(&p, PARAM_LFO_DEPTH, 0.2f);
        EXPECT(lfo_target_param(2) == PARAM_MOMENTUM, "target 2 is momentum");
        Modulator m;
        modulate_init(&m, 1);
        double prev = 0, cross[16];
        int nc = 0;
        float vmax = 0, vmin = 1;
        for (int i = 0; i <= 1000; i++) {  // 10 s in steps of 10 ms
            double t = i * 0.01;
            modulate_step(&m, &p, t);
            double d = p.v[PARAM_MOMENTUM] - 0.5;
            if (i > 0 && prev < 0 && d >= 0 && nc < 16) cross[nc++] = t - 0.01 * d / (d - prev);
            prev = d;
            vmax = fmaxf(vmax, p.v[PARAM_MOMENTUM]), vmin = fminf(vmin, p.v[PARAM_MOMENTUM]);
        }
        EXPECT(nc >= 4, "shape %d: %d rising crossings in 10 s", shape, nc);
        for (int k = 1; k < nc; k++) EXPECT_NEAR(cross[k] - cross[k - 1], 2.0, 1e-3, "period");
        EXPECT_NEAR(vmax, 0.5 + 0.2 * 0.999, 2e-4, "peak");
        EXPECT_NEAR(vmin, 0.5 - 0.2 * 0.999, 2e-4, "trough");
    }
    EXPECT_NEAR(lfo_value(PARAM_LR, 2, 0.1f, 1), 2 * pow(10, 0.6), 1e-4, "lr up at depth 0.1");
    EXPECT_NEAR(lfo_value(PARAM_LR, 2, 0.1f, -1), 2 / pow(10, 0.6), 1e-6, "lr down at depth 0.1");
    EXPECT(lfo_value(PARAM_LR, 8, 1, 1) == 10 && lfo_value(PARAM_LR, 8, 1, -1) == 1e-5f, "full depth: the ends");
    EXPECT(lfo_value(PARAM_CLIP, 0, 0.5f, 1) == 0, "clip off stays off");
    EXPECT_NEAR(lfo_wave(LFO_TRIANGLE, 0.25), 1, 0, "triangle peak at a quarter");
    EXPECT_NEAR(lfo_wave(LFO_SINE, 0.75), -1, 1e-12, "sine trough at three quarters");
}

// Attaching notes once, detaching gives the parameter back its centre, a hand
// moves the centre, and the frames between write nothing to the notes.
TEST_IMPL(lfo_attach_detach_and_hand) {
    LiveParams p;
    defaults(&p);
    Modulator m;
    modulate_init(&m, 3);
    live_params_set(&p, PARAM_LFO_PARAM, 1);  // lr
    live_params_set(&p, PARAM_LFO_RATE, 1);
    live_params_set(&p, PARAM_LFO_DEPTH, 0.1f);
    for (int i = 0; i < 40; i++) modulate_step(&m, &p, i * 0.02);
    EXPECT(m.n_notes == 1 && m.note[0].kind == MOD_LFO_ATTACH && m.note[0].param == PARAM_LR &&
               m.note[0].value == 2 && m.note[0].source == SRC_LFO,
           "one attach note around lr 2 (%d notes)", m.n_notes);
    EXPECT(p.v[PARAM_LR] != 2, "lr moves: %g", (double)p.v[PARAM_LR]);
    // A hand: steps from the centre, the new value is the centre.
    modulate_hold(&m, &p, PARAM_LR);
    EXPECT(p.v[PARAM_LR] == 2, "hold puts the centre back");
    live_params_set(&p, PARAM_LR, live_params_nudge(&p, PARAM_LR, 1));
    modulate_touch(&m, &p, PARAM_LR);
    EXPECT_NEAR(m.lfo.centre, 2 * 1.77827941, 1e-5, "the centre is one step up from 2");
    m.n_notes = 0;
    live_params_set(&p, PARAM_LFO_PARAM, 0);
    modulate_step(&m, &p, 1.0);
    EXPECT(m.n_notes == 1 && m.note[0].kind == MOD_LFO_DETACH, "one detach note");
    EXPECT_NEAR(p.v[PARAM_LR], 2 * 1.77827941, 1e-5, "detached: lr back at its centre");
}

// ---------------------------------------------------------------- scene files

static void expect_bad(const char *text, const char *line, const char *needle) {
    Scene sc;
    TbErr err = {{0}};
    const char *path = write_file("bad.ini", text);
    char where[300];
    snprintf(where, sizeof where, "%s:%s:", path, line);
    int rc = scene_load(&sc, path, &err);
    EXPECT(rc == -1, "accepted:\n%s", text);
    EXPECT(strstr(err.msg, where) != NULL, "\"%s\" does not name %s", err.msg, where);
    EXPECT(strstr(err.msg, needle) != NULL, "\"%s\" lacks \"%s\"", err.msg, needle);
}

TEST_IMPL(malformed_scenes_name_file_and_line) {
    expect_bad("[scene]\nname = x\n[params]\nlr = 20\n", "4", "lr = 20 is out of range (0 to 10)");
    expect_bad("[params]\nlr = fast\n", "2", "lr: \"fast\" is not a number");
    expect_bad("[params]\nsteps_per_frame = 2.5\n", "2", "not a whole number");
    expect_bad("[params]\noptimizer = rmsprop\n", "2", "is not one of sgd|adam");
    expect_bad("[params]\nlr = 1\nfoo = 1\n", "3", "unknown parameter \"foo\"");
    expect_bad("[params]\nseed = 3\n", "2", "not a live parameter: \"seed\"");
    expect_bad("[lfo]\nparam = lr\n", "1", "unknown section [lfo]");
    expect_bad("[scene]\ntransition = -1\n[params]\nlr = 1\n", "2", "transition = -1: seconds from 0 to 600");
    expect_bad("[scene]\nname = my scene\n", "2", "name \"my scene\"");
    expect_bad("[scene]\nmood = 3\n", "2", "unknown key \"mood\" in [scene]");
    expect_bad("[params]\nlr = 1\nmomentum = 0.5\nlr = 2\n", "4", "lr is set twice (first on line 2)");
    expect_bad("lr = 1\n", "1", "outside [scene] or [params]");
    expect_bad("[params]\nlr 1\n", "2", "expected key = value");
    expect_bad("[params\n", "1", "bad section header");
    expect_bad("[scene]\nname = empty\n", "2", "sets no parameter");
}

// A folder: name order, two files with one name refused, a missing folder.
TEST_IMPL(scene_folder) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/folder", scratch_dir());
    mkdir(dir, 0755);
    char p1[256], p2[256], p3[256];
    snprintf(p1, sizeof p1, "%s/b.ini", dir);
    snprintf(p2, sizeof p2, "%s/a.ini", dir);
    snprintf(p3, sizeof p3, "%s/c.ini", dir);
    FILE *f = fopen(p1, "w");
    fputs("[params]\nlr = 1\n", f);
    fclose(f);
    f = fopen(p2, "w");
    fputs("[scene]\nname = zed\n[params]\nlr = 2\n", f);
    fclose(f);
    SceneList l;
    TbErr err = {{0}};
    EXPECT(scenes_load_dir(&l, dir, 0, &err) == 0, "%s", err.msg);
    EXPECT(l.n == 2 && strcmp(l.v[0].name, "zed") == 0 && strcmp(l.v[1].name, "b") == 0 &&
               scene_find(&l, "b") == 2 && scene_find(&l, "zed") == 1 && scene_find(&l, "x") == 0,
           "file name order, found by name");
    scenes_free(&l);
    f = fopen(p3, "w");
    fputs("[scene]\nname = b\n[params]\nlr = 3\n", f);
    fclose(f);
    EXPECT(scenes_load_dir(&l, dir, 0, &err) == -1 && strstr(err.msg, p3) && strstr(err.msg, p1),
           "one name twice: %s", err.msg);
    unlink(p1), unlink(p2), unlink(p3), rmdir(dir);
    EXPECT(scenes_load_dir(&l, dir, 1, &err) == 0 && l.n == 0, "a missing default folder: no scenes");
    EXPECT(scenes_load_dir(&l, dir, 0, &err) == -1 && strstr(err.msg, dir), "a missing folder asked for: %s",
           err.msg);
}

// The example scenes load, with the names the README gives.
TEST_IMPL(shipped_scenes_load) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/config/scenes", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : "..");
    SceneList l;
    TbErr err = {{0}};
    EXPECT(scenes_load_dir(&l, dir, 0, &err) == 0, "%s", err.msg);
    EXPECT(l.n == 2 && scene_find(&l, "calm") == 1 && scene_find(&l, "storm") == 2, "calm and storm (%d)", l.n);
    scenes_free(&l);
}

// ---------------------------------------------------------------- through the run loop


static void run_settings(Settings *s, const char *scenes, const char *events) {
    settings_default(s);
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->channels, sizeof s->channels, "8,16");
    s->width = s->height = 32;
    s->headless = 1;
    s->fps = 10;
    s->pause = 1;
    snprintf(s->scenes, sizeof s->scenes, "%s", scenes);
    snprintf(s->events, sizeof s->events, "%s", events);
}

// A scene over 1 s and an LFO for 3 s at 10 frames a second: lr arrives on
// time, the log has the recall, each glide's start and end and the LFO's
// attach, not a line a frame.
TEST_IMPL(run_logs_moments_not_frames) {
    char dir[128], events[160];
    snprintf(dir, sizeof dir, "%s/run", scratch_dir());
    snprintf(events, sizeof events, "%s/events.jsonl", scratch_dir());
    mkdir(dir, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/one.ini", dir);
    FILE *f = fopen(path, "w");
    fputs("[scene]\nname = one\ntransition = 1\n[params]\nlr = 0.02\nmomentum = 0.5\n", f);
    fclose(f);
    Settings s;
    run_settings(&s, dir, events);
    Run r;
    TbErr err = {{0}};
    if (run_open(&r, &s, NULL, &err)) {
        EXPECT(0, "run_open: %s", err.msg);
        return;
    }
    uint8_t rgb[32 * 32 * 3] = {0};
    char msg[512];
    run_frame(&r, rgb, 32, 32);
    run_control(&r, &(ControlEvent){.cmd = CMD_SCENE, .value = 1, .source = SRC_OSC}, msg, sizeof msg);
    EXPECT(strcmp(msg, "scene 1: one (1 s)") == 0, "msg '%s'", msg);
    // Recalled at t = 0.1: at t = 1.0 not there yet, at t = 1.1 there.
    for (int k = 0; k < 10; k++) run_frame(&r, rgb, 32, 32);
    EXPECT(r.p.v[PARAM_LR] > 0.02f, "lr %g before the end", (double)r.p.v[PARAM_LR]);
    run_frame(&r, rgb, 32, 32);
    EXPECT(r.p.v[PARAM_LR] == 0.02f && r.p.v[PARAM_MOMENTUM] == 0.5f, "lr %g, momentum %g at 1 s",
           (double)r.p.v[PARAM_LR], (double)r.p.v[PARAM_MOMENTUM]);
    EXPECT_NEAR(r.t.hyper.lr, 0.02, 1e-9, "the trainer takes it");
    run_control(&r, &(ControlEvent){.cmd = CMD_SET, .param = PARAM_LFO_PARAM, .value = 1, .source = SRC_MIDI}, msg,
                sizeof msg);
    for (int k = 0; k < 30; k++) run_frame(&r, rgb, 32, 32);
    run_control(&r, &(ControlEvent){.cmd = CMD_SCENE, .value = 2, .source = SRC_OSC}, msg, sizeof msg);
    EXPECT(strstr(msg, "scene 2: there is 1 scene") != NULL, "msg '%s'", msg);
    run_close(&r);
    const char *log = test_read_all(events);
    EXPECT(log != NULL, "no events file");
    if (log) {
        EXPECT(test_count(log, "\"source\":\"osc\",\"action\":\"scene\",\"scene\":\"one\",\"seconds\":1,\"value\":1}") == 1,
               "the recall:\n%s", log);
        EXPECT(test_count(log, "\"source\":\"scene\",\"param\":\"lr\",\"glide\":\"start\",\"to\":0.02,\"seconds\":1,\"value\":2}") == 1,
               "lr's start:\n%s", log);
        EXPECT(test_count(log, "\"source\":\"scene\",\"param\":\"lr\",\"glide\":\"end\",\"value\":0.02}") == 1, "lr's end:\n%s",
               log);
        EXPECT(test_count(log, "\"param\":\"momentum\",\"glide\"") == 2, "momentum's start and end:\n%s", log);
        EXPECT(test_count(log, "\"source\":\"lfo\",\"param\":\"lr\",\"lfo\":\"attach\",\"shape\":\"sine\"") == 1,
               "the attach:\n%s", log);
        EXPECT(test_count(log, "\n") == 8, "8 lines (recall, 2 starts, 2 ends, lfo_param, attach, refused scene):\n%s", log);
    }
    unlink(events), unlink(path), rmdir(dir);
}

// A bad scene file stops the start with its file and line.
TEST_IMPL(run_refuses_a_bad_scene) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/bad", scratch_dir());
    mkdir(dir, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/x.ini", dir);
    FILE *f = fopen(path, "w");
    fputs("[params]\nmomentum = 2\n", f);
    fclose(f);
    Settings s;
    run_settings(&s, dir, "");
    Run r;
    TbErr err = {{0}};
    char want[300];
    snprintf(want, sizeof want, "%s:2: momentum = 2 is out of range", path);
    EXPECT(run_open(&r, &s, NULL, &err) == -1 && strstr(err.msg, want), "run_open: %s", err.msg);
    unlink(path), rmdir(dir);
}

TEST_MAIN(TEST_ENTRY(scene_glide_reaches_values_at_transition),
          TEST_ENTRY(glide_from_off_and_hand_takes_over), TEST_ENTRY(lfo_stays_in_range),
          TEST_ENTRY(lfo_has_expected_period_and_depth), TEST_ENTRY(lfo_attach_detach_and_hand),
          TEST_ENTRY(malformed_scenes_name_file_and_line), TEST_ENTRY(scene_folder),
          TEST_ENTRY(shipped_scenes_load), TEST_ENTRY(run_logs_moments_not_frames),
          TEST_ENTRY(run_refuses_a_bad_scene))
