// test_midi.c: why it exists: in a show the operator plays the training from a
// MIDI controller, and nothing here has one (no /dev/snd/seq). Without this a
// fader could map to the wrong part of a log range, a 14-bit or NRPN control
// could step in 128ths, an encoder could turn the wrong way, a value could jump
// when a fader is first touched after the keyboard moved it, a controller
// pulled and plugged back mid-show could stay dead, learn could write a file
// that does not read back, and a typo in a mapping file could surface only
// when its device is plugged in. So the MIDI layer runs whole sessions against
// a fake sequencer (the seam midi_seq.h): real MIDI bytes, turned into ALSA
// sequencer events by alsa-lib's own encoder and decoded as from the
// sequencer, announcements of ports coming and going, and a stand-in for the
// run loop that applies the events and publishes its view. A last case uses
// the real sequencer where one exists, and says why it skips where not.
#define _GNU_SOURCE
#include <alsa/asoundlib.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "midi.h"
#include "midi_dev.h"
#include "midi_map.h"
#include "midi_seq.h"
#include "test.h"

// ---------------------------------------------------------------- the fake sequencer

#define FPORTS 16
static struct {
    MidiPortInfo port[FPORTS];
    int present[FPORTS];
    int nport;
    MidiSeqEvent q[1024];
    int qh, qn;
    struct {
        int client, port;
        MidiMsg m;
    } sent[512];
    int nsent;
    struct {
        int client, port;
    } conn[32];
    int nconn;
    double now;
    int fail_open;
} F;

static void fake_reset(void) {
    memset(&F, 0, sizeof F);
    F.now = 100;
}

static int fake_port(int client, int port, const char *cname, const char *pname, int caps, int hw) {
    int i = F.nport++;
    F.port[i] = (MidiPortInfo){.client = client, .port = port, .caps = caps, .hardware = hw};
    snprintf(F.port[i].client_name, sizeof F.port[i].client_name, "%s", cname);
    snprintf(F.port[i].port_name, sizeof F.port[i].port_name, "%s", pname);
    F.present[i] = 1;
    return i;
}

static void fake_event(MidiSeqEvent e) {
    if (F.qn < 1024) F.q[(F.qh + F.qn++) % 1024] = e;
}

static void *f_open(const char *name, TbErr *err) {
    if (F.fail_open) {
        tb_fail(err, "snd_seq_open: No such file or directory");
        return NULL;
    }
    return &F;
}
static void f_close(void *h) { (void)h; }
static int f_client_id(void *h) { return 128; }
static int f_ports(void *h, MidiPortInfo *out, int max) {
    int n = 0;
    for (int i = 0; i < F.nport && n < max; i++)
        if (F.present[i]) out[n++] = F.port[i];
    return n;
}
static int f_port_info(void *h, int client, int port, MidiPortInfo *out) {
    for (int i = 0; i < F.nport; i++)
        if (F.present[i] && F.port[i].client == client && F.port[i].port == port) {
            *out = F.port[i];
            return 0;
        }
    return -1;
}
static int f_connect(void *h, int client, int port, TbErr *err) {
    F.conn[F.nconn].client = client;
    F.conn[F.nconn++].port = port;
    return 0;
}
static int f_read(void *h, MidiSeqEvent *ev, int max, int timeout_ms, TbErr *err) {
    int n = 0;
    while (F.qn && n < max) {
        ev[n++] = F.q[F.qh];
        F.qh = (F.qh + 1) % 1024;
        F.qn--;
    }
    return n;
}
static int f_send(void *h, int client, int port, const MidiMsg *m) {
    if (F.nsent < 512) {
        F.sent[F.nsent].client = client, F.sent[F.nsent].port = port;
        F.sent[F.nsent++].m = *m;
    }
    return 0;
}
static double f_now(void) { return F.now; }
static const MidiSeqIo FAKE = {f_open, f_close, f_client_id, f_ports, f_port_info, f_connect, f_read, f_send, f_now};

// ---------------------------------------------------------------- a session

typedef struct {
    Settings s;
    ControlQueue q;
    Midi *m;
    char dir[64];
    LiveParams run;  // the stand-in run loop's values
    long frames;
    ControlEvent got[256];
    int ngot;
    snd_midi_event_t *enc;
    int client, port;  // where the bytes come from
    double dt;         // time between messages
} Sess;

static void write_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(p, sizeof p, "%s/%s", dir, e->d_name), unlink(p);
    closedir(d);
    rmdir(dir);
}

// A folder for mapping files, a queue, the settings' defaults.
static void sess_init(Sess *S) {
    memset(S, 0, sizeof *S);
    fake_reset();
    snprintf(S->dir, sizeof S->dir, "/tmp/tabula-midi-XXXXXX");
    CHECK(mkdtemp(S->dir), "mkdtemp");
    settings_default(&S->s);
    snprintf(S->s.midi_maps, sizeof S->s.midi_maps, "%s", S->dir);
    control_queue_init(&S->q);
    live_params_from_settings(&S->run, &S->s);
    snd_midi_event_new(64, &S->enc);
    S->client = 20, S->port = 0;
    S->dt = 0.1;
}

// The default controller "Ctl" (client 20) with map text, then start.
static int sess_start(Sess *S) {
    TbErr err = {{0}};
    S->m = midi_start_io(&S->s, &S->q, &FAKE, 0, &err);
    if (!S->m) fprintf(stderr, "midi_start_io: %s\n", err.msg);
    return S->m != NULL;
}

static void sess_open(Sess *S, const char *map) {
    sess_init(S);
    fake_port(20, 0, "Ctl", "Ctl MIDI 1", MIDI_PORT_READ | MIDI_PORT_WRITE, 1);
    write_file(S->dir, "ctl.ini", map);
    sess_start(S);
}

static void sess_close(Sess *S) {
    midi_stop(S->m);
    control_queue_destroy(&S->q);
    snd_midi_event_free(S->enc);
    rm_dir(S->dir);
}

// The stand-in for run.c: apply every queued event as run_control does, then
// publish the view (as run_frame does after each frame).
static void run_frame(Sess *S) {
    ControlEvent e;
    S->ngot = 0;
    while (control_pop(&S->q, &e)) {
        if (S->ngot < 256) S->got[S->ngot++] = e;
        LiveParams *p = &S->run;
        if (e.cmd == CMD_SET) live_params_set(p, e.param, e.value);
        else if (e.cmd == CMD_NUDGE) live_params_set(p, e.param, live_params_nudge(p, e.param, e.value > 0 ? 1 : -1));
        else if (e.cmd == CMD_TOGGLE) live_params_set(p, e.param, p->v[e.param] > 0 ? 0 : 1);
    }
    S->frames++;
    RunView v = {.p = S->run, .frames = S->frames, .step = S->frames};
    control_publish(&S->q, &v);
}

// Raw MIDI bytes from the controller, through alsa-lib's encoder into
// sequencer events, decoded as the sequencer's; one turn of the MIDI layer,
// one frame of the run. Returns how many control events came.
static int bytes(Sess *S, const unsigned char *b, size_t n) {
    F.now += S->dt;
    for (size_t i = 0; i < n; i++) {
        snd_seq_event_t ev;
        memset(&ev, 0, sizeof ev);
        if (snd_midi_event_encode_byte(S->enc, b[i], &ev) == 1) {
            ev.source.client = (unsigned char)S->client;
            ev.source.port = (unsigned char)S->port;
            MidiSeqEvent out[4];
            int k = midi_seq_decode(&ev, out);
            for (int j = 0; j < k; j++) fake_event(out[j]);
        }
    }
    midi_poll(S->m, 0);
    run_frame(S);
    return S->ngot;
}

static int msg3(Sess *S, int a, int b, int c) {
    unsigned char m[3] = {(unsigned char)a, (unsigned char)b, (unsigned char)c};
    return bytes(S, m, 3);
}
static int cc(Sess *S, int ch, int num, int val) { return msg3(S, 0xB0 | (ch - 1), num, val); }

// The one event a message made: a CMD_SET of param (value checked).
static void expect_set(Sess *S, int param, double value, double tol, const char *what) {
    EXPECT(S->ngot == 1 && S->got[0].cmd == CMD_SET && S->got[0].param == param && S->got[0].source == SRC_MIDI,
           "%s: %d events, first cmd %d param %d", what, S->ngot, S->ngot ? S->got[0].cmd : -1,
           S->ngot ? S->got[0].param : -1);
    if (S->ngot == 1) EXPECT_NEAR(S->got[0].value, value, tol, what);
}

// stderr into a file for a while (to check the operator's lines).
static int g_saved_fd = -1;
static char g_err_path[64];
static void stderr_begin(void) {
    snprintf(g_err_path, sizeof g_err_path, "/tmp/tabula-midi-err-%d", (int)getpid());
    fflush(stderr);
    g_saved_fd = dup(2);
    int fd = open(g_err_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    dup2(fd, 2);
    close(fd);
}
static char *stderr_end(void) {
    fflush(stderr);
    dup2(g_saved_fd, 2);
    close(g_saved_fd);
    char *t = read_text(g_err_path);
    unlink(g_err_path);
    return t ? t : "";
}

static int count_lines(const char *t) {
    int n = 0;
    for (; *t; t++) n += *t == '\n';
    return n;
}

// ---------------------------------------------------------------- cases

// Absolute CCs over linear and log ranges, integers rounded; the inverse too.
TEST_IMPL(absolute_cc_over_lin_and_log_ranges) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\ntakeover = jump\n[map]\nmomentum = cc 1 1\nlr = cc 1 0\n"
                  "ring = cc 1 16\nsteps_per_frame = cc 1 4\nclip = cc 1 2 min=0.1 max=10\n");
    EXPECT(S.m, "started");
    if (!S.m) return;
    cc(&S, 1, 1, 0), expect_set(&S, PARAM_MOMENTUM, 0, 0, "momentum at 0");
    cc(&S, 1, 1, 127), expect_set(&S, PARAM_MOMENTUM, 0.999, 1e-6, "momentum at 127: the table's max");
    cc(&S, 1, 1, 64), expect_set(&S, PARAM_MOMENTUM, 0.999 * 64 / 127, 1e-6, "momentum at 64");
    // lr: log from the floor (1e-5) to 10 over 1..127; 0 = off.
    cc(&S, 1, 0, 0), expect_set(&S, PARAM_LR, 0, 0, "lr at 0: off");
    cc(&S, 1, 0, 1), expect_set(&S, PARAM_LR, 1e-5, 1e-10, "lr at 1: the floor");
    cc(&S, 1, 0, 64), expect_set(&S, PARAM_LR, 0.01, 1e-7, "lr at 64: halfway in decades");
    cc(&S, 1, 0, 127), expect_set(&S, PARAM_LR, 10, 1e-5, "lr at 127: the max");
    // ring: log from its min 1 to 1024, whole frames.
    cc(&S, 1, 16, 0), expect_set(&S, PARAM_RING, 1, 0, "ring at 0");
    cc(&S, 1, 16, 64), expect_set(&S, PARAM_RING, roundf(powf(1024, 64.0f / 127)), 0, "ring at 64");
    cc(&S, 1, 16, 127), expect_set(&S, PARAM_RING, 1024, 0, "ring at 127");
    cc(&S, 1, 4, 64), expect_set(&S, PARAM_STEPS, 32, 0, "steps at 64: rounded");
    // A row's own part of the range, log: 0.1 to 10.
    cc(&S, 1, 2, 127), expect_set(&S, PARAM_CLIP, 10, 1e-5, "clip max=10");
    cc(&S, 1, 2, 0), expect_set(&S, PARAM_CLIP, 0.1, 1e-7, "clip min=0.1");
    cc(&S, 1, 2, 64), expect_set(&S, PARAM_CLIP, 0.1 * pow(100, 64.0 / 127), 1e-5, "clip halfway");
    // The same value again makes no event (a fader's jitter inside one step).
    EXPECT(cc(&S, 1, 4, 63) == 0, "steps 32 again: %d events", S.ngot);
    // Another channel is another control.
    EXPECT(cc(&S, 2, 1, 10) == 0, "channel 2: %d events", S.ngot);
    // The inverse: where a control sits for a value.
    MidiBinding b = {.tkind = MT_PARAM, .target = PARAM_LR, .kind = MK_CC, .lo = NAN, .hi = NAN};
    EXPECT_NEAR(midi_pos_of(&b, 0.01f) * 127, 64, 1e-3, "lr 0.01 sits at 64");
    EXPECT_NEAR(midi_pos_of(&b, 0) * 127, 0, 0, "lr off sits at 0");
    EXPECT_NEAR(midi_pos_of(&b, 10) * 127, 127, 1e-9, "lr 10 sits at 127");
    sess_close(&S);
}

// 14-bit CC pairs: the MSB applies at once, the LSB refines.
TEST_IMPL(cc14_pairs_msb_then_lsb) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\ntakeover = jump\n[map]\nmomentum = cc14 1 1\nlr = cc14 1 0\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    cc(&S, 1, 1, 64), expect_set(&S, PARAM_MOMENTUM, 0.999 * 8192 / 16383, 1e-6, "MSB 64");
    cc(&S, 1, 33, 5), expect_set(&S, PARAM_MOMENTUM, 0.999 * 8197 / 16383, 1e-6, "LSB 5 refines");
    cc(&S, 1, 33, 6), expect_set(&S, PARAM_MOMENTUM, 0.999 * 8198 / 16383, 1e-6, "LSB alone moves on");
    cc(&S, 1, 0, 0), expect_set(&S, PARAM_LR, 0, 0, "lr MSB 0: off");
    cc(&S, 1, 32, 1), expect_set(&S, PARAM_LR, 1e-5, 1e-10, "lr raw 1: the floor");
    cc(&S, 1, 0, 127);
    cc(&S, 1, 32, 127), expect_set(&S, PARAM_LR, 10, 1e-5, "lr raw 16383: the max");
    // Finer than 7 bits: one LSB step on lr's log scale.
    cc(&S, 1, 0, 64), cc(&S, 1, 32, 0);
    float a = S.got[0].value;
    cc(&S, 1, 32, 1);
    float b = S.got[0].value;
    EXPECT(b > a && b / a < 1.002, "one LSB step: %g -> %g", a, b);
    sess_close(&S);
}

// NRPN: CC 99/98 select, 6/38 data; an RPN or another NRPN changes nothing.
TEST_IMPL(nrpn_select_and_data) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\ntakeover = jump\n[map]\nclip = nrpn 1 300\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    unsigned char sel[] = {0xB0, 99, 300 >> 7, 0xB0, 98, 300 & 127};
    EXPECT(bytes(&S, sel, sizeof sel) == 0, "select: no event");
    cc(&S, 1, 6, 64), expect_set(&S, PARAM_CLIP, 0.01 * pow(1e5, 8191.0 / 16382), 1e-4, "data MSB 64");
    cc(&S, 1, 38, 127), expect_set(&S, PARAM_CLIP, 0.01 * pow(1e5, 8318.0 / 16382), 1e-4, "data LSB refines");
    // Running status, as controllers send it: B0 63 02 62 2C 06 7F 26 7F.
    unsigned char run[] = {0xB0, 99, 2, 98, 44, 6, 127, 38, 127};
    bytes(&S, run, sizeof run);
    EXPECT(S.ngot == 2 && S.got[1].param == PARAM_CLIP && fabsf(S.got[1].value - 1000) < 1e-2,
           "running status to the top: %d events, last %g", S.ngot, S.ngot ? S.got[S.ngot - 1].value : -1);
    unsigned char other[] = {0xB0, 99, 0, 98, 5, 6, 10};
    EXPECT(bytes(&S, other, sizeof other) == 0, "another NRPN: %d events", S.ngot);
    unsigned char rpn[] = {0xB0, 101, 2, 100, 44, 6, 10};
    EXPECT(bytes(&S, rpn, sizeof rpn) == 0, "an RPN: %d events", S.ngot);
    sess_close(&S);
}

static int nudges(Sess *S, int param, int dir) {
    int n = 0;
    for (int i = 0; i < S->ngot; i++)
        n += S->got[i].cmd == CMD_NUDGE && S->got[i].param == param && (S->got[i].value > 0) == (dir > 0);
    return n == S->ngot ? n : -1;
}

// Relative encoders: two's complement, binary offset, signed bit; step=N.
TEST_IMPL(relative_encoders_nudge_by_ticks) {
    EXPECT(midi_rel_ticks(MK_REL2C, 1) == 1 && midi_rel_ticks(MK_REL2C, 64) == 64 &&
               midi_rel_ticks(MK_REL2C, 65) == -63 && midi_rel_ticks(MK_REL2C, 127) == -1,
           "two's complement");
    EXPECT(midi_rel_ticks(MK_RELBIN, 64) == 0 && midi_rel_ticks(MK_RELBIN, 65) == 1 && midi_rel_ticks(MK_RELBIN, 60) == -4,
           "binary offset");
    EXPECT(midi_rel_ticks(MK_RELSIGN, 65) == 1 && midi_rel_ticks(MK_RELSIGN, 127) == 63 &&
               midi_rel_ticks(MK_RELSIGN, 1) == -1 && midi_rel_ticks(MK_RELSIGN, 64) == 0,
           "signed bit");
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nlr = rel2c 1 16\nmomentum = relbin 1 17 step=2\nclip = relsign 1 18\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    cc(&S, 1, 16, 1);
    EXPECT(nudges(&S, PARAM_LR, 1) == 1, "rel2c 1: one step up");
    EXPECT_NEAR(S.run.v[PARAM_LR], 2 * 1.77827941, 1e-5, "lr one table step up");
    cc(&S, 1, 16, 127);
    EXPECT(nudges(&S, PARAM_LR, -1) == 1, "rel2c 127: one down");
    cc(&S, 1, 16, 3);
    EXPECT(nudges(&S, PARAM_LR, 1) == 3, "rel2c 3: three up");
    cc(&S, 1, 17, 66);
    EXPECT(nudges(&S, PARAM_MOMENTUM, 1) == 4, "relbin 66 with step=2: four up");
    cc(&S, 1, 17, 63);
    EXPECT(nudges(&S, PARAM_MOMENTUM, -1) == 2, "relbin 63 with step=2: two down");
    EXPECT_NEAR(S.run.v[PARAM_MOMENTUM], 0.92, 1e-6, "momentum 0.9 + 0.04 - 0.02");
    cc(&S, 1, 18, 65);
    EXPECT(nudges(&S, PARAM_CLIP, 1) == 1, "relsign 65: one up");
    cc(&S, 1, 18, 2);
    EXPECT(nudges(&S, PARAM_CLIP, -1) == 2, "relsign 2: two down");
    EXPECT(cc(&S, 1, 18, 64) == 0, "relsign 64: nothing");
    sess_close(&S);
}

// Buttons (CC) and notes: actions, toggles, steps; releases do nothing.
static void expect_map_error(const char *text, const char *needle);

// Slot and scene buttons carry their number (n=N), written back by learn's format.
TEST_IMPL(slot_and_scene_buttons_carry_their_number) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nslot_fade = button 1 32 n=3\nscene = note 1 40 n=2\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    cc(&S, 1, 32, 127);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_SLOT_FADE && S.got[0].value == 3, "slot_fade 3: cmd %d value %g",
           S.ngot ? S.got[0].cmd : -1, S.ngot ? (double)S.got[0].value : -1.0);
    msg3(&S, 0x90, 40, 100);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_SCENE && S.got[0].value == 2, "scene 2");
    sess_close(&S);
    expect_map_error("[map]\nslot_fade = button 1 32 n=0\n", ":2: slot_fade: n \"0\" is not 1 to 999");
    expect_map_error("[map]\nlr = cc 1 7 n=2\n", ":2: lr: unknown option \"n=2\"");
}

TEST_IMPL(buttons_and_notes_trigger_actions) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\npause = button 1 42\nreset = note 1 36\nsave = button 1 44\n"
                  "load = note 2 37\nmemory = button 1 50 dir=down step=2\nfreeze = note 1 38\nsteps_per_frame = cc 1 51\n"
                  "reset = cc 1 52\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    cc(&S, 1, 42, 127);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_TOGGLE && S.got[0].param == PARAM_PAUSE, "pause button");
    EXPECT(S.run.v[PARAM_PAUSE] == 1, "paused");
    EXPECT(cc(&S, 1, 42, 0) == 0, "release: nothing");
    msg3(&S, 0x90, 36, 100);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_RESET && S.got[0].value < 0, "note 36: reset (next seed)");
    EXPECT(msg3(&S, 0x80, 36, 0) == 0, "note off: nothing");
    EXPECT(msg3(&S, 0x90, 36, 0) == 0, "note on with velocity 0: nothing");
    cc(&S, 1, 44, 127);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_SAVE, "save");
    EXPECT(msg3(&S, 0x90, 37, 127) == 0, "note 37 on channel 1: nothing");
    msg3(&S, 0x91, 37, 127);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_LOAD, "note 37 on channel 2: load");
    S.run.v[PARAM_MEMORY] = 5;
    cc(&S, 1, 50, 127);
    EXPECT(nudges(&S, PARAM_MEMORY, -1) == 2 && S.run.v[PARAM_MEMORY] == 3, "memory button: two steps down");
    msg3(&S, 0x90, 38, 1);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_TOGGLE && S.got[0].param == PARAM_FREEZE, "freeze by note");
    cc(&S, 1, 52, 127);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_RESET, "an action on a cc: a press");
    sess_close(&S);
}

// Pick-up: no jump before the control reaches the value; then it follows.
TEST_IMPL(pickup_no_jump_before_reaching_the_value) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nlr = cc 1 0\n");  // pickup: the default
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    MidiGhost g[4];
    EXPECT(midi_ghosts(S.m, g, 4) == 1 && g[0].picked == 0 && g[0].hw < 0, "engaged at start, not moved");
    double at = midi_pos_of(&(MidiBinding){.tkind = MT_PARAM, .target = PARAM_LR, .kind = MK_CC, .lo = NAN, .hi = NAN}, 2) * 127;
    int jumped = 0;
    for (int v = 0; v <= 100; v += 10) jumped += cc(&S, 1, 0, v);
    EXPECT(jumped == 0, "lr 2 sits at %.1f: no event below it (%d)", at, jumped);
    EXPECT(midi_ghosts(S.m, g, 4) == 1 && g[0].picked == 0 && fabs(g[0].hw - 100 / 127.0) < 1e-9,
           "ghost: where the fader is (%g), not picked", g[0].hw);
    EXPECT(g[0].hw_value > 0 && g[0].hw_value < 2, "ghost value %g", g[0].hw_value);
    cc(&S, 1, 0, 111);  // within 3/128 of 112.3
    expect_set(&S, PARAM_LR, midi_value_at(&(MidiBinding){.tkind = MT_PARAM, .target = PARAM_LR, .kind = MK_CC,
                                                          .lo = NAN, .hi = NAN}, 111 / 127.0), 1e-6,
               "reached: picked up");
    EXPECT(midi_ghosts(S.m, g, 4) == 1 && g[0].picked == 1, "picked");
    cc(&S, 1, 0, 40);
    EXPECT(S.ngot == 1 && S.got[0].value < 0.01, "then it follows down: %g", S.ngot ? S.got[0].value : -1);
    sess_close(&S);
}

// Pick-up: a fast move that jumps across the value within 50 ms counts; the
// same jump slower does not.
TEST_IMPL(pickup_fast_crossing_within_50ms) {
    for (int slow = 0; slow < 2; slow++) {
        Sess S;
        sess_open(&S, "[device]\nmatch = Ctl\n[map]\nlr = cc 1 0\n");
        if (!S.m) {
        EXPECT(0, "start");
        return;
    }
        cc(&S, 1, 0, 20);
        cc(&S, 1, 0, 30);
        EXPECT(S.ngot == 0, "far below: nothing");
        S.dt = slow ? 0.080 : 0.010;
        cc(&S, 1, 0, 126);  // across 112.3 in one message
        if (slow) EXPECT(S.ngot == 0, "80 ms later: not a crossing (%d events)", S.ngot);
        else expect_set(&S, PARAM_LR, 10 * pow(1e6, -1.0 / 126), 1e-5, "10 ms later: crossed, picked up");
        sess_close(&S);
    }
}

// Scaling: the value moves with the control and they meet at the end.
TEST_IMPL(scale_converges) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nmomentum = cc 1 1 takeover=scale\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    EXPECT(cc(&S, 1, 1, 0) == 0, "first message only locates the control");
    double gap = 1, last = 0.9;
    int ok_mono = 1, ok_gap = 1;
    for (int v = 10; v <= 127; v += 13) {
        cc(&S, 1, 1, v);
        if (S.ngot != 1) {
            ok_mono = 0;
            continue;
        }
        double val = S.got[0].value, pos = v / 127.0, g = fabs(val / 0.999 - pos);
        ok_mono &= val >= last;
        ok_gap &= g < gap || g < 1e-6;
        last = val, gap = g;
    }
    EXPECT(ok_mono, "every move moves the value up");
    EXPECT(ok_gap, "the gap closes");
    EXPECT_NEAR(S.run.v[PARAM_MOMENTUM], 0.999, 1e-6, "together at the top");
    MidiGhost g[2];
    EXPECT(midi_ghosts(S.m, g, 2) == 1 && g[0].picked, "picked once they met");
    // And down: from the top to a value set elsewhere (0.5), then to 0 together.
    sess_close(&S);
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nmomentum = cc 1 1 takeover=scale\n");
    cc(&S, 1, 1, 127);
    cc(&S, 1, 1, 100);
    EXPECT(S.ngot == 1 && S.got[0].value < 0.9 && S.got[0].value > 0.6, "down from 127 to 100: 0.9 -> %g",
           S.ngot ? S.got[0].value : -1);
    cc(&S, 1, 1, 0);
    EXPECT(S.ngot == 1 && S.got[0].value == 0, "at 0 both are 0");
    sess_close(&S);
}

// Takeover engages again when the value changes from elsewhere (the view);
// our own changes coming back in the view do not count.
TEST_IMPL(takeover_engages_after_change_from_elsewhere) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nmomentum = cc 1 1\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    cc(&S, 1, 1, 114);  // 0.8976: within reach of 0.9
    EXPECT(S.ngot == 1, "picked at once near the value");
    cc(&S, 1, 1, 100);
    EXPECT(S.ngot == 1, "follows (its own change came back in the view)");
    midi_poll(S.m, 0);
    cc(&S, 1, 1, 99);
    EXPECT(S.ngot == 1, "still follows after several views");
    // The keyboard sets 0.2.
    S.run.v[PARAM_MOMENTUM] = 0.2f;
    run_frame(&S);
    midi_poll(S.m, 0);
    MidiGhost g[2];
    EXPECT(midi_ghosts(S.m, g, 2) == 1 && !g[0].picked, "engaged again");
    EXPECT(cc(&S, 1, 1, 90) == 0, "no jump back to the fader");
    EXPECT(cc(&S, 1, 1, 60) == 0, "none on the way");
    cc(&S, 1, 1, 26);
    expect_set(&S, PARAM_MOMENTUM, 0.999 * 26 / 127, 1e-6, "picked up at 0.2");
    sess_close(&S);
}

static int file_has(const char *path, const char *needle) {
    char *t = read_text(path);
    return t && strstr(t, needle) != NULL;
}

static int action_index(const char *name) {
    size_t n;
    const ActionInfo *a = actions_table(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0) return (int)i;
    return -1;
}

// Learn: the next moved control is bound, written to the file and read back.
TEST_IMPL(learn_binds_writes_and_reads_back) {
    Sess S;
    sess_open(&S, "# my controller\n[device]\nmatch = Ctl\n[map]\nmomentum = cc 1 1\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    char path[512], msg[256];
    snprintf(path, sizeof path, "%s/ctl.ini", S.dir);
    EXPECT(midi_learn(S.m, PARAM_LR, msg, sizeof msg) == 0 && strstr(msg, "lr"), "armed: %s", msg);
    EXPECT(cc(&S, 1, 70, 50) == 0, "the learning move changes nothing");
    EXPECT(file_has(path, "\nlr = cc 1 70 takeover=pickup"), "written:\n%s", read_text(path));
    EXPECT(file_has(path, "# my controller\n"), "comments kept");
    MidiMap back;
    TbErr err;
    EXPECT(midi_map_load(path, &back, &err) == 0 && back.n == 2 && back.b[1].target == PARAM_LR &&
               back.b[1].kind == MK_CC && back.b[1].number == 70 && back.b[1].channel == 0,
           "reads back: %s", err.msg);
    struct stat st;
    char tmpglob[600];
    snprintf(tmpglob, sizeof tmpglob, "%s/ctl.ini.tmp.%d", S.dir, (int)getpid());
    EXPECT(stat(tmpglob, &st) != 0, "no temp file left");
    cc(&S, 1, 70, 112);
    cc(&S, 1, 70, 127);
    expect_set(&S, PARAM_LR, 10, 1e-5, "the learned control drives lr");
    cc(&S, 1, 1, 114);
    EXPECT(S.ngot == 1 && S.got[0].param == PARAM_MOMENTUM, "the old row still works");
    // A CC from 0 to 31 followed by its LSB partner: cc14.
    midi_learn(S.m, PARAM_CLIP, msg, sizeof msg);
    S.dt = 0.001;
    cc(&S, 1, 5, 64);
    cc(&S, 1, 37, 0);
    EXPECT(file_has(path, "\nclip = cc14 1 5"), "14-bit pair learned:\n%s", read_text(path));
    // Alone, it settles as a plain cc after a moment.
    midi_learn(S.m, PARAM_WEIGHT_DECAY, msg, sizeof msg);
    cc(&S, 1, 7, 10);
    EXPECT(!file_has(path, "weight_decay"), "waits for a partner");
    F.now += 0.1;
    midi_poll(S.m, 0);
    EXPECT(file_has(path, "\nweight_decay = cc 1 7"), "then a cc:\n%s", read_text(path));
    // An action takes a press; a note too.
    midi_learn(S.m, PARAM_COUNT + action_index("pause"), msg, sizeof msg);
    cc(&S, 1, 45, 127);
    EXPECT(file_has(path, "\npause = button 1 45"), "button learned");
    cc(&S, 1, 45, 0);
    cc(&S, 1, 45, 127);
    EXPECT(S.ngot == 1 && S.got[0].cmd == CMD_TOGGLE && S.got[0].param == PARAM_PAUSE, "and works");
    midi_learn(S.m, PARAM_COUNT + action_index("reset"), msg, sizeof msg);
    msg3(&S, 0x90, 48, 90);
    EXPECT(file_has(path, "\nreset = note 1 48"), "note learned");
    // Learning a control that was bound moves it: the old row goes.
    midi_learn(S.m, PARAM_STEPS, msg, sizeof msg);
    cc(&S, 1, 40, 3);  // not 1-31: no wait
    midi_learn(S.m, PARAM_MEMORY, msg, sizeof msg);
    cc(&S, 1, 40, 9);
    EXPECT(!file_has(path, "steps_per_frame = cc 1 40") && file_has(path, "\nmemory = cc 1 40"),
           "rebound:\n%s", read_text(path));
    EXPECT(midi_map_load(path, &back, &err) == 0, "the file still reads: %s", err.msg);
    sess_close(&S);
}

// Learn on a controller that only has the fallback makes its own file; the
// learn buttons of a mapping and the K key step through the targets.
TEST_IMPL(learn_makes_a_device_file_and_steps_targets) {
    Sess S;
    sess_init(&S);
    fake_port(20, 0, "Other Ctl", "Other Ctl MIDI 1", MIDI_PORT_READ, 1);
    write_file(S.dir, "generic.ini", "[device]\nmatch = *\n[map]\nmomentum = cc * 1\nlearn = button 1 62\n"
                                     "learn_prev = button 1 61\nlearn_off = button 1 60\n");
    if (!sess_start(&S)) {
        EXPECT(0, "start");
        return;
    }
    char msg[256], gen[512], own[512];
    snprintf(gen, sizeof gen, "%s/generic.ini", S.dir);
    snprintf(own, sizeof own, "%s/Other_Ctl.ini", S.dir);
    char *before = strdup(read_text(gen));
    cc(&S, 1, 62, 127);
    EXPECT(midi_learn_step(0, msg, sizeof msg) == 0 && strstr(msg, "MIDI learn lr"), "learn button: lr (%s)", msg);
    cc(&S, 1, 62, 127);
    EXPECT(midi_learn_step(0, msg, sizeof msg) == 0 && strstr(msg, "learn momentum"), "again: momentum (%s)", msg);
    cc(&S, 1, 61, 127);
    midi_learn_step(0, msg, sizeof msg);
    EXPECT(strstr(msg, "learn lr") != NULL, "back: lr (%s)", msg);
    cc(&S, 1, 60, 127);
    midi_learn_step(0, msg, sizeof msg);
    EXPECT(strstr(msg, "learn off") != NULL, "off (%s)", msg);
    // The K key: forward from off is lr, back from lr is off, back from off the last action.
    midi_learn_step(+1, msg, sizeof msg);
    EXPECT(strstr(msg, "learn lr") != NULL, "K: lr (%s)", msg);
    midi_learn_step(-1, msg, sizeof msg);
    midi_learn_step(-1, msg, sizeof msg);
    size_t na;
    const ActionInfo *acts = actions_table(&na);
    char want[64];
    snprintf(want, sizeof want, "learn %s", acts[na - 1].name);
    EXPECT(strstr(msg, want) != NULL, "Shift+K from off: the last action, %s (%s)", acts[na - 1].name, msg);
    midi_learn_step(+1, msg, sizeof msg);
    midi_learn_step(+1, msg, sizeof msg);
    cc(&S, 1, 40, 64);
    EXPECT(file_has(own, "match = Other Ctl\n") && file_has(own, "\nlr = cc 1 40") && file_has(own, "momentum = cc * 1"),
           "a file of its own from the fallback:\n%s", read_text(own));
    EXPECT(strcmp(read_text(gen), before) == 0, "generic.ini untouched");
    free(before);
    cc(&S, 1, 40, 112), cc(&S, 1, 40, 127);
    expect_set(&S, PARAM_LR, 10, 1e-5, "works at once");
    // Plugged in again, it is matched by its own file now.
    MidiMapSet set;
    TbErr err;
    EXPECT(midi_maps_load(&set, S.dir, &err) == 0, "%s", err.msg);
    MidiMap *pm = midi_maps_pick(&set, "Other Ctl:Other Ctl MIDI 1");
    EXPECT(pm && strstr(pm->path, "Other_Ctl.ini"), "picked %s", pm ? pm->path : "none");
    midi_maps_free(&set);
    sess_close(&S);
}

// A mapping file broken while the show runs: learn says so and keeps the mapping.
TEST_IMPL(learn_keeps_the_mapping_when_the_file_is_broken) {
    Sess S;
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\nmomentum = cc 1 1\n");
    if (!S.m) {
        EXPECT(0, "start");
        return;
    }
    char path[512], msg[256];
    snprintf(path, sizeof path, "%s/ctl.ini", S.dir);
    const char *broken = "[device]\nmatch = Ctl\n[map]\nmomentum = cc 1 1\nlr = cc 1 999\n";
    write_file(S.dir, "ctl.ini", broken);
    midi_learn(S.m, PARAM_LR, msg, sizeof msg);
    stderr_begin();
    cc(&S, 1, 70, 50);
    char *log = stderr_end();
    EXPECT(strstr(log, "ctl.ini:5: lr: cc number \"999\" is not 0 to 127") && strstr(log, "mapping in use is kept"),
           "message: %s", log);
    EXPECT(strcmp(read_text(path), broken) == 0, "the file is not overwritten");
    cc(&S, 1, 1, 114);
    EXPECT(S.ngot == 1 && S.got[0].param == PARAM_MOMENTUM, "the old mapping goes on");
    EXPECT(cc(&S, 1, 70, 60) == 0, "nothing was bound");
    sess_close(&S);
}

static int connected_to(int client, int port) {
    for (int i = 0; i < F.nconn; i++)
        if (F.conn[i].client == client && F.conn[i].port == port) return 1;
    return 0;
}

// A controller unplugged and plugged back (a new client number) reconnects by
// name through System:Announce; others are left alone.
TEST_IMPL(unplug_and_replug_by_name) {
    Sess S;
    sess_init(&S);
    snprintf(S.s.midi_devices, sizeof S.s.midi_devices, "nanoKONTROL2");
    int nk = fake_port(24, 0, "nanoKONTROL2", "nanoKONTROL2 _ CTR", MIDI_PORT_READ | MIDI_PORT_WRITE, 1);
    write_file(S.dir, "nano.ini", "[device]\nmatch = nanoKONTROL2\n[map]\nmomentum = cc 1 1\n");
    stderr_begin();
    int ok = sess_start(&S);
    char *log = stderr_end();
    if (!ok) {
        EXPECT(0, "start");
        return;
    }
    char names[4][160];
    EXPECT(midi_connected(S.m, names, 4) == 1 && strcmp(names[0], "nanoKONTROL2:nanoKONTROL2 _ CTR") == 0 &&
               connected_to(24, 0),
           "connected at start");
    EXPECT(strstr(log, "nanoKONTROL2:nanoKONTROL2 _ CTR (24:0) connected, mapping") != NULL, "log: %s", log);
    S.client = 24;
    cc(&S, 1, 1, 114);
    EXPECT(S.ngot == 1, "plays");
    // Out: the port, then the client.
    F.present[nk] = 0;
    fake_event((MidiSeqEvent){.type = MSE_PORT_EXIT, .client = 24, .port = 0});
    fake_event((MidiSeqEvent){.type = MSE_CLIENT_EXIT, .client = 24, .port = -1});
    stderr_begin();
    midi_poll(S.m, 0);
    log = stderr_end();
    EXPECT(midi_connected(S.m, names, 4) == 0, "gone");
    EXPECT(strstr(log, "unplugged") != NULL, "said so: %s", log);
    // Something else appears: not ours.
    fake_port(30, 0, "Synth", "Synth MIDI 1", MIDI_PORT_READ | MIDI_PORT_WRITE, 1);
    fake_event((MidiSeqEvent){.type = MSE_PORT_START, .client = 30, .port = 0});
    midi_poll(S.m, 0);
    EXPECT(midi_connected(S.m, names, 4) == 0 && !connected_to(30, 0), "another device is not taken");
    // Back, as client 28.
    S.run.v[PARAM_MOMENTUM] = 0.3f;  // moved from the keyboard meanwhile
    run_frame(&S);
    fake_port(28, 0, "nanoKONTROL2", "nanoKONTROL2 _ CTR", MIDI_PORT_READ | MIDI_PORT_WRITE, 1);
    fake_event((MidiSeqEvent){.type = MSE_PORT_START, .client = 28, .port = 0});
    midi_poll(S.m, 0);
    EXPECT(midi_connected(S.m, names, 4) == 1 && connected_to(28, 0), "reconnected by name");
    S.client = 28;
    EXPECT(cc(&S, 1, 1, 114) == 0, "takeover engaged after replug: the fader does not jump the value");
    cc(&S, 1, 1, 39);
    expect_set(&S, PARAM_MOMENTUM, 0.999 * 39 / 127, 1e-6, "picked up at 0.3");
    S.client = 24;
    EXPECT(cc(&S, 1, 1, 0) == 0, "the old client number is nothing now");
    sess_close(&S);
}

// Which ports are taken: by name parts (any case), or every hardware input.
TEST_IMPL(devices_chosen_by_name) {
    for (int named = 0; named < 2; named++) {
        Sess S;
        sess_init(&S);
        if (named) snprintf(S.s.midi_devices, sizeof S.s.midi_devices, " beatstep , vmpk");
        fake_port(14, 0, "Midi Through", "Midi Through Port-0", MIDI_PORT_READ | MIDI_PORT_WRITE, 0);
        fake_port(20, 0, "nanoKONTROL2", "nanoKONTROL2 _ CTR", MIDI_PORT_READ | MIDI_PORT_WRITE, 1);
        fake_port(24, 0, "Arturia BeatStep", "Arturia BeatStep MIDI 1", MIDI_PORT_READ | MIDI_PORT_WRITE, 1);
        fake_port(28, 0, "Synth", "Synth in", MIDI_PORT_WRITE, 1);  // takes MIDI only
        fake_port(129, 0, "VMPK Output", "out", MIDI_PORT_READ, 0);
        fake_port(128, 0, "tabula", "control in", MIDI_PORT_READ | MIDI_PORT_WRITE, 0);
        if (!sess_start(&S)) {
        EXPECT(0, "start");
        return;
    }
        if (named)
            EXPECT(F.nconn == 2 && connected_to(24, 0) && connected_to(129, 0), "named: %d connections", F.nconn);
        else
            EXPECT(F.nconn == 2 && connected_to(20, 0) && connected_to(24, 0), "hardware inputs: %d connections", F.nconn);
        sess_close(&S);
    }
}

static int led(int i, int client, int port, int num, int val) {
    return i < F.nsent && F.sent[i].client == client && F.sent[i].port == port && F.sent[i].m.type == MM_CC &&
           F.sent[i].m.number == num && F.sent[i].m.value == val;
}

// LEDs of buttons bound to toggles follow the value, from here or elsewhere.
TEST_IMPL(led_feedback_for_toggles) {
    Sess S;
    sess_init(&S);
    fake_port(20, 0, "Ctl", "Ctl in-out", MIDI_PORT_READ, 1);  // LEDs go to its other port
    fake_port(20, 1, "Ctl", "Ctl LEDs", MIDI_PORT_WRITE, 1);
    write_file(S.dir, "ctl.ini", "[device]\nmatch = Ctl\nleds = 1\n[map]\npause = button 1 42\n"
                                 "freeze = button 1 46 invert\nreset = button 1 45\nmomentum = cc 1 1\n");
    if (!sess_start(&S)) {
        EXPECT(0, "start");
        return;
    }
    EXPECT(F.nsent == 2 && led(0, 20, 1, 42, 0) && led(1, 20, 1, 46, 127), "at connect: the state of each (%d sent)",
           F.nsent);
    cc(&S, 1, 42, 127);
    EXPECT(F.nsent == 3 && led(2, 20, 1, 42, 127), "pause pressed: lit at once");
    cc(&S, 1, 42, 0);
    midi_poll(S.m, 0);
    EXPECT(F.nsent == 3, "its echo in the view changes nothing");
    S.run.v[PARAM_FREEZE] = 1;  // from the keyboard
    run_frame(&S);
    midi_poll(S.m, 0);
    EXPECT(F.nsent == 4 && led(3, 20, 1, 46, 0), "freeze from elsewhere: its LED (inverted) follows");
    cc(&S, 1, 45, 127);
    cc(&S, 1, 1, 100);
    EXPECT(F.nsent == 4, "no LED for actions that do not toggle, nor for faders");
    sess_close(&S);
    // Without leds = 1: nothing is sent.
    sess_open(&S, "[device]\nmatch = Ctl\n[map]\npause = button 1 42\n");
    cc(&S, 1, 42, 127);
    EXPECT(F.nsent == 0, "leds = 0: %d sent", F.nsent);
    sess_close(&S);
}

static void expect_map_error(const char *text, const char *needle) {
    char dir[] = "/tmp/tabula-midi-bad-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    write_file(dir, "bad.ini", text);
    char path[128];
    snprintf(path, sizeof path, "%s/bad.ini", dir);
    MidiMap m;
    TbErr err = {{0}};
    EXPECT(midi_map_load(path, &m, &err) == -1, "accepted: %s", text);
    char want[256];  // ":LINE: ..." follows the path; any other needle is looked for anywhere
    snprintf(want, sizeof want, "%s%s", needle[0] == ':' ? path : "", needle);
    EXPECT(strstr(err.msg, want) != NULL, "\"%s\" lacks \"%s\"", err.msg, want);
    rm_dir(dir);
}

// A bad mapping file: FILE:LINE: problem; at start, tabula exits 2.
TEST_IMPL(malformed_mapping_files_name_file_and_line) {
    expect_map_error("[map]\nlr = cc 1 128\n", ":2: lr: cc number \"128\" is not 0 to 127");
    expect_map_error("[map]\nlr = cc14 1 40\n", ":2: lr: cc14 number \"40\" is not 0 to 31");
    expect_map_error("[map]\n\nlrr = cc 1 1\n", ":3: unknown target \"lrr\"");
    expect_map_error("[map]\n\nlrr = cc 1 1\n", "journey; or learn, learn_prev, learn_off)");  // every action named
    expect_map_error("[map]\nlr = knob 1 1\n", ":2: lr: unknown kind \"knob\"");
    expect_map_error("[map]\nlr = cc 17 1\n", ":2: lr: channel \"17\" is not 1 to 16 or *");
    expect_map_error("[map]\nlr = cc 1\n", ":2: lr: expected \"kind channel number [options]\"");
    expect_map_error("[map]\nlr = cc 1 1 takeover=sometimes\n", ":2: lr: takeover \"sometimes\" is not jump, pickup or scale");
    expect_map_error("[map]\nlr = cc 1 1 min=20\n", ":2: lr: min \"20\" is not a number from 0 to 10");
    expect_map_error("[map]\nlr = cc 1 1 colour=red\n", ":2: lr: unknown option \"colour=red\"");
    expect_map_error("[map]\nlr = cc 1 1\nclip = cc14 1 1\n", ":3: clip: this control is already bound on line 2");
    expect_map_error("[map]\nreset = rel2c 1 3\n", ":2: reset: an action takes a button, a note or a cc");
    expect_map_error("[device]\nmatch = x\ncolour = red\n", ":3: unknown key \"colour\" in [device]");
    expect_map_error("[device]\nleds = 2\n", ":2: leds \"2\" is not 0 or 1");
    expect_map_error("[knobs]\n", ":1: unknown section [knobs]");
    expect_map_error("lr = cc 1 1\n", ":1: \"lr\" outside [device] or [map]");
    expect_map_error("[map]\njust words\n", ":2: expected key = value");
    // At start: the folder is read before the sequencer is opened.
    Sess S;
    sess_init(&S);
    write_file(S.dir, "good.ini", "[device]\nmatch = x\n[map]\nlr = cc 1 1\n");
    write_file(S.dir, "zbad.ini", "[device]\nmatch = y\n[map]\nlr = cc 1 1\nmomentum = nrpn 1 20000\n");
    TbErr err = {{0}};
    Midi *m = midi_start_io(&S.s, &S.q, &FAKE, 0, &err);
    EXPECT(m == NULL && strstr(err.msg, "zbad.ini:5: momentum: nrpn number \"20000\" is not 0 to 16383"),
           "start refuses: %s", err.msg);
    midi_stop(m);
    // The program: exit 2 with the message, headless too.
    const char *bin = getenv("TABULA_BIN");
    if (bin) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s --headless --frames 1 --source pattern --size 32x32 --backend cpu --midi.maps %s 2>&1",
                 bin, S.dir);
        FILE *p = popen(cmd, "r");
        char out[4096] = "";
        size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
        out[n] = 0;
        int st = p ? pclose(p) : -1;
        EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 2, "tabula exit status %d", WEXITSTATUS(st));
        EXPECT(strstr(out, "zbad.ini:5: momentum") != NULL, "tabula says: %s", out);
    }
    S.m = NULL;
    sess_close(&S);
}

// The shipped files read, and are picked by device name.
TEST_IMPL(shipped_mappings) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/config/midi", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    MidiMapSet set;
    TbErr err = {{0}};
    EXPECT(midi_maps_load(&set, dir, &err) == 0 && set.n >= 2, "%s", err.msg);
    if (set.n < 2) return;
    MidiMap *nk = midi_maps_pick(&set, "nanoKONTROL2:nanoKONTROL2 _ CTR");
    EXPECT(nk && strstr(nk->path, "/nanoKONTROL2.ini") && nk->leds == 1, "nanoKONTROL2 picks %s", nk ? nk->path : "-");
    MidiMap *gen = midi_maps_pick(&set, "Arturia BeatStep:Arturia BeatStep MIDI 1");
    EXPECT(gen && strstr(gen->path, "/generic.ini"), "another picks %s", gen ? gen->path : "-");
    // The nanoKONTROL2's factory numbers: faders 0-7 on the training, the
    // transport on pause (stop) and freeze (cycle) with LEDs.
    int faders = 0, pause = 0, freeze = 0, learn = 0;
    for (int i = 0; nk && i < nk->n; i++) {
        const MidiBinding *b = &nk->b[i];
        faders += b->kind == MK_CC && b->number >= 0 && b->number <= 7 && b->tkind == MT_PARAM;
        pause += b->kind == MK_BUTTON && b->number == 42 && strcmp(midi_target_name(b), "pause") == 0;
        freeze += b->kind == MK_BUTTON && b->number == 46 && strcmp(midi_target_name(b), "freeze") == 0;
        learn += b->tkind == MT_LEARN && b->number == 62;
    }
    EXPECT(faders == 8 && pause == 1 && freeze == 1 && learn == 1, "faders %d pause %d freeze %d learn %d", faders,
           pause, freeze, learn);
    midi_maps_free(&set);
}

// The README's example mapping reads as it says.
TEST_IMPL(readme_example_reads) {
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    char *t = read_text(path);
    char *a = t ? strstr(t, "## MIDI controllers") : NULL;
    a = a ? strstr(a, "```ini\n") : NULL;
    char *b = a ? strstr(a + 7, "```") : NULL;
    EXPECT(a && b, "README.md has a MIDI section with an ini example");
    if (!a || !b) return;
    *b = 0;
    char dir[] = "/tmp/tabula-midi-readme-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    write_file(dir, "ex.ini", a + 7);
    char p2[128];
    snprintf(p2, sizeof p2, "%s/ex.ini", dir);
    MidiMap m;
    TbErr err = {{0}};
    EXPECT(midi_map_load(p2, &m, &err) == 0 && m.n == 6 && m.leds == 1 && m.b[1].kind == MK_CC14 &&
               m.b[2].kind == MK_NRPN && m.b[3].step == 2 && m.b[5].tkind == MT_LEARN,
           "%s", err.msg);
    rm_dir(dir);
}

// The sequencer's own events decode to ours (14-bit and NRPN events as the
// CCs they stand for).
TEST_IMPL(alsa_events_decode) {
    snd_seq_event_t ev;
    MidiSeqEvent out[4];
    snd_seq_ev_clear(&ev);
    ev.source.client = 24, ev.source.port = 1;
    snd_seq_ev_set_controller(&ev, 2, 7, 99);
    EXPECT(midi_seq_decode(&ev, out) == 1 && out[0].type == MSE_MIDI && out[0].client == 24 && out[0].port == 1 &&
               out[0].msg.type == MM_CC && out[0].msg.channel == 2 && out[0].msg.number == 7 && out[0].msg.value == 99,
           "controller");
    snd_seq_ev_set_noteon(&ev, 0, 60, 0);
    EXPECT(midi_seq_decode(&ev, out) == 1 && out[0].msg.type == MM_NOTEOFF, "note on, velocity 0: off");
    ev.type = SND_SEQ_EVENT_CONTROL14;
    ev.data.control.channel = 0, ev.data.control.param = 7, ev.data.control.value = 1000;
    EXPECT(midi_seq_decode(&ev, out) == 2 && out[0].msg.number == 7 && out[0].msg.value == 7 &&
               out[1].msg.number == 39 && out[1].msg.value == 104,
           "CONTROL14: MSB then LSB");
    ev.type = SND_SEQ_EVENT_NONREGPARAM;
    ev.data.control.param = 300, ev.data.control.value = 8200;
    EXPECT(midi_seq_decode(&ev, out) == 4 && out[0].msg.number == 99 && out[0].msg.value == 2 &&
               out[1].msg.number == 98 && out[1].msg.value == 44 && out[2].msg.number == 6 && out[2].msg.value == 64 &&
               out[3].msg.number == 38 && out[3].msg.value == 8,
           "NONREGPARAM: 99 98 6 38");
    ev.type = SND_SEQ_EVENT_PORT_START;
    ev.data.addr.client = 28, ev.data.addr.port = 0;
    EXPECT(midi_seq_decode(&ev, out) == 1 && out[0].type == MSE_PORT_START && out[0].client == 28, "port start");
    ev.type = SND_SEQ_EVENT_CLIENT_EXIT;
    EXPECT(midi_seq_decode(&ev, out) == 1 && out[0].type == MSE_CLIENT_EXIT && out[0].client == 28, "client exit");
    ev.type = SND_SEQ_EVENT_SYSEX;
    EXPECT(midi_seq_decode(&ev, out) == 0, "sysex: not ours");
}

// No sequencer (this machine): one line, a handle that does nothing.
TEST_IMPL(no_sequencer_one_line_and_no_midi) {
    Sess S;
    sess_init(&S);
    F.fail_open = 1;
    stderr_begin();
    int ok = sess_start(&S);
    char *log = stderr_end();
    EXPECT(ok, "a handle, not an error");
    EXPECT(count_lines(log) == 1 && strstr(log, "running without MIDI"), "one line: %s", log);
    char msg[128];
    EXPECT(midi_poll(S.m, 0) == -1 && midi_learn(S.m, 0, msg, sizeof msg) == -1 && strstr(msg, "MIDI is off"),
           "nothing to do: %s", msg);
    sess_close(&S);
    // And the real thing where there is no /dev/snd/seq.
    if (access("/dev/snd/seq", F_OK) == 0) TEST_SKIP_CASE("this machine has /dev/snd/seq (see alsa_end_to_end)");
    Settings s;
    settings_default(&s);
    ControlQueue q;
    control_queue_init(&q);
    TbErr err = {{0}};
    stderr_begin();
    Midi *m = midi_start(&s, &q, &err);
    log = stderr_end();
    EXPECT(m && count_lines(log) == 1 && strstr(log, "no ALSA sequencer") && strstr(log, "running without MIDI"),
           "ALSA: %s", log);
    midi_stop(m);
    control_queue_destroy(&q);
}

// The real ALSA sequencer, end to end: a test client named "tabula-test-ctl"
// plays a controller; tabula connects to it by name, maps its CCs, lights its
// LED, and reconnects when its port goes and comes back.
TEST_IMPL(alsa_end_to_end) {
    snd_seq_t *seq;
    int rc = access("/dev/snd/seq", F_OK) == 0 ? snd_seq_open(&seq, "default", SND_SEQ_OPEN_DUPLEX, 0) : -ENOENT;
    if (rc < 0) TEST_SKIP_CASE("no ALSA sequencer here (/dev/snd/seq: %s)", snd_strerror(rc));
    snd_seq_set_client_name(seq, "tabula-test-ctl");
    unsigned caps = SND_SEQ_PORT_CAP_READ | SND_SEQ_PORT_CAP_SUBS_READ | SND_SEQ_PORT_CAP_WRITE | SND_SEQ_PORT_CAP_SUBS_WRITE;
    int port = snd_seq_create_simple_port(seq, "ctl", caps, SND_SEQ_PORT_TYPE_MIDI_GENERIC | SND_SEQ_PORT_TYPE_APPLICATION);
    Sess S;
    sess_init(&S);
    snprintf(S.s.midi_devices, sizeof S.s.midi_devices, "tabula-test-ctl");
    write_file(S.dir, "t.ini", "[device]\nmatch = tabula-test-ctl\nleds = 1\ntakeover = jump\n[map]\n"
                               "momentum = cc 1 1\npause = button 1 42\n");
    TbErr err = {{0}};
    S.m = midi_start(&S.s, &S.q, &err);
    EXPECT(S.m != NULL, "%s", err.msg);
    char names[4][160];
    EXPECT(S.m && midi_connected(S.m, names, 4) == 1, "connected by name");
    // A CC to our subscribers (tabula), then wait for the event.
    snd_seq_event_t ev;
    snd_seq_ev_clear(&ev);
    snd_seq_ev_set_source(&ev, port);
    snd_seq_ev_set_subs(&ev);
    snd_seq_ev_set_direct(&ev);
    snd_seq_ev_set_controller(&ev, 0, 1, 127);
    snd_seq_event_output_direct(seq, &ev);
    ControlEvent e = {0};
    int got = 0;
    for (int i = 0; i < 200 && !got; i++) got = control_pop(&S.q, &e), usleep(10000);
    EXPECT(got && e.cmd == CMD_SET && e.param == PARAM_MOMENTUM && fabsf(e.value - 0.999f) < 1e-6, "CC 1 -> momentum");
    // Its LED came at connect: pause off on CC 42.
    snd_seq_event_t *in = NULL;
    int led_seen = 0;
    snd_seq_nonblock(seq, 1);
    for (int i = 0; i < 100 && !led_seen; i++) {
        while (snd_seq_event_input(seq, &in) >= 0 && in)
            led_seen |= in->type == SND_SEQ_EVENT_CONTROLLER && in->data.control.param == 42;
        usleep(10000);
    }
    EXPECT(led_seen, "LED state sent to the controller");
    // The port goes and comes back: reconnected by name.
    snd_seq_delete_simple_port(seq, port);
    usleep(200000);
    EXPECT(midi_connected(S.m, names, 4) == 0, "gone with its port");
    port = snd_seq_create_simple_port(seq, "ctl", caps, SND_SEQ_PORT_TYPE_MIDI_GENERIC | SND_SEQ_PORT_TYPE_APPLICATION);
    int back = 0;
    for (int i = 0; i < 100 && !back; i++) back = midi_connected(S.m, names, 4) == 1, usleep(10000);
    EXPECT(back, "back by name");
    sess_close(&S);
    snd_seq_close(seq);
}

TEST_MAIN(TEST_ENTRY(absolute_cc_over_lin_and_log_ranges), TEST_ENTRY(slot_and_scene_buttons_carry_their_number), TEST_ENTRY(cc14_pairs_msb_then_lsb),
          TEST_ENTRY(nrpn_select_and_data), TEST_ENTRY(relative_encoders_nudge_by_ticks),
          TEST_ENTRY(buttons_and_notes_trigger_actions), TEST_ENTRY(pickup_no_jump_before_reaching_the_value),
          TEST_ENTRY(pickup_fast_crossing_within_50ms), TEST_ENTRY(scale_converges),
          TEST_ENTRY(takeover_engages_after_change_from_elsewhere), TEST_ENTRY(learn_binds_writes_and_reads_back),
          TEST_ENTRY(learn_makes_a_device_file_and_steps_targets),
          TEST_ENTRY(learn_keeps_the_mapping_when_the_file_is_broken), TEST_ENTRY(unplug_and_replug_by_name),
          TEST_ENTRY(devices_chosen_by_name), TEST_ENTRY(led_feedback_for_toggles),
          TEST_ENTRY(malformed_mapping_files_name_file_and_line), TEST_ENTRY(shipped_mappings), TEST_ENTRY(readme_example_reads),
          TEST_ENTRY(alsa_events_decode), TEST_ENTRY(no_sequencer_one_line_and_no_midi), TEST_ENTRY(alsa_end_to_end))
