// test_osc.c: why it exists: OSC is how a lighting desk, TouchOSC or
// TouchDesigner plays tabula during a show, often from another machine. A
// message must change exactly the parameter it names by exactly the table's
// amount, /tabula/get and the status must say what is in force, bad messages
// must be ignored and counted (never a crash, never a stalled loop), and by
// default nobody but this machine may play it. The in-process cases check the
// surface against a queue; `headless_end_to_end` plays the real program over
// loopback with a liblo client and reads its metrics, event log and replies.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lo/lo.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "controls.h"
#include "health.h"
#include "osc.h"
#include "params.h"
#include "settings.h"
#include "test.h"

// ------------------------------------------------------------------ a client

// A UDP socket on 127.0.0.1 at a port the kernel picks; its port in *port.
static int udp_socket(int *port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

// A port nobody listens on now (bound and released).
static int free_port(void) {
    int port = 0, fd = udp_socket(&port);
    close(fd);
    return port;
}

static void send_raw(int fd, int port, const void *data, size_t n) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sendto(fd, data, n, 0, (struct sockaddr *)&a, sizeof a);
}

// Send m (then freed) to path.
static void send_msg(int fd, int port, const char *path, lo_message m) {
    size_t n = 0;
    void *data = lo_message_serialise(m, path, NULL, &n);
    send_raw(fd, port, data, n);
    free(data);
    lo_message_free(m);
}

static lo_message msg_f(float v) {
    lo_message m = lo_message_new();
    lo_message_add_float(m, v);
    return m;
}
static lo_message msg_i(int v) {
    lo_message m = lo_message_new();
    lo_message_add_int32(m, v);
    return m;
}
static lo_message msg_s(const char *s) {
    lo_message m = lo_message_new();
    lo_message_add_string(m, s);
    return m;
}
static void send_f(int fd, int port, const char *path, float v) { send_msg(fd, port, path, msg_f(v)); }
static void send_i(int fd, int port, const char *path, int v) { send_msg(fd, port, path, msg_i(v)); }
static void send_s(int fd, int port, const char *path, const char *s) { send_msg(fd, port, path, msg_s(s)); }
static void send_none(int fd, int port, const char *path) { send_msg(fd, port, path, lo_message_new()); }

// What one packet said: (path, first argument as a number) for each message.
typedef struct {
    int n;
    char path[64][64];
    float v[64];
    char text[64][64];  // a string argument
    int bundle;
} Got;

static void parse_packet(uint8_t *d, size_t n, Got *g) {
    if (n >= 16 && memcmp(d, "#bundle\0", 8) == 0) {
        g->bundle = 1;
        for (size_t at = 16; at + 4 <= n;) {
            uint32_t size = (uint32_t)d[at] << 24 | (uint32_t)d[at + 1] << 16 | (uint32_t)d[at + 2] << 8 | d[at + 3];
            at += 4;
            if (size > n - at) return;
            parse_packet(d + at, size, g);
            at += size;
        }
        return;
    }
    lo_message m = lo_message_deserialise(d, n, NULL);
    if (!m || g->n == 64) return;
    const char *types = lo_message_get_types(m);
    lo_arg **argv = lo_message_get_argv(m);
    snprintf(g->path[g->n], sizeof g->path[0], "%s", lo_get_path(d, (ssize_t)n));
    g->v[g->n] = types[0] == 'f' ? argv[0]->f : types[0] == 'i' ? (float)argv[0]->i : NAN;
    if (types[0] == 's') snprintf(g->text[g->n], sizeof g->text[0], "%s", &argv[0]->s);
    g->n++;
    lo_message_free(m);
}

// One packet within timeout_ms: 1 with *g, 0 if none came.
static int recv_packet(int fd, int timeout_ms, Got *g) {
    static uint8_t buf[65536];
    memset(g, 0, sizeof *g);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, timeout_ms) <= 0) return 0;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    parse_packet(buf, (size_t)n, g);
    return 1;
}

// The value of path in g: 1 with *v, 0 if absent.
static int got_value(const Got *g, const char *path, float *v) {
    for (int i = 0; i < g->n; i++)
        if (strcmp(g->path[i], path) == 0) return *v = g->v[i], 1;
    return 0;
}

// Ask /tabula/get/KEY (or the status bundle for KEY NULL) and wait for the
// answer; 1 with *g, 0 if none came in timeout_ms.
static int ask(int fd, int port, const char *key, Got *g, int timeout_ms) {
    char path[96];
    snprintf(path, sizeof path, key ? "/tabula/get/%s" : "/tabula/get", key);
    while (recv_packet(fd, 0, g)) {}  // a late answer to an earlier question
    send_none(fd, port, path);
    double t_end = tb_now() + timeout_ms / 1e3;
    while (tb_now() < t_end)
        if (recv_packet(fd, 100, g)) return 1;
    return 0;
}

// /tabula/get/KEY: 1 with *v.
static int get_param(int fd, int port, const char *key, float *v) {
    Got g;
    char path[96];
    snprintf(path, sizeof path, "/tabula/param/%s", key);
    return ask(fd, port, key, &g, 10000) && got_value(&g, path, v);
}

// ------------------------------------------------------------------ in process

typedef struct {
    Settings s;
    ControlQueue q;
    Osc *o;
    int port;
    int cl, cl_port;  // the client's socket
} Rig;

static int rig_start(Rig *r, void (*tweak)(Settings *)) {
    memset(r, 0, sizeof *r);
    settings_default(&r->s);
    r->port = free_port();
    r->s.osc_port = r->port;
    if (tweak) tweak(&r->s);
    control_queue_init(&r->q);
    r->cl = udp_socket(&r->cl_port);
    TbErr err = {{0}};
    r->o = osc_start(&r->s, &r->q, &err);
    EXPECT(r->o != NULL, "osc_start: %s", err.msg);
    return r->o != NULL;
}

static void rig_stop(Rig *r) {
    osc_stop(r->o);
    close(r->cl);
    control_queue_destroy(&r->q);
}

// Wait until the surface has taken n messages and ignored m packets in all.
static OscStats wait_taken(Rig *r, long n, long ignored_bad_packets) {
    OscStats st;
    double t_end = tb_now() + 5;
    do {
        osc_stats(r->o, &st);
        if (st.received >= n && st.why[OSC_BAD_PACKET] >= ignored_bad_packets) break;
        usleep(2000);
    } while (tb_now() < t_end);
    EXPECT(st.received == n, "took %ld messages, sent %ld", st.received, n);
    return st;
}

static int pop(Rig *r, ControlEvent *e) { return control_pop(&r->q, e); }

#define EXPECT_EVENT(r, CMD, PARAM, VALUE)                                                        \
    do {                                                                                          \
        ControlEvent e_ = {0};                                                                    \
        int got_ = pop(r, &e_);                                                                   \
        EXPECT(got_ && e_.cmd == (CMD) && e_.param == (PARAM) && fabsf(e_.value - (VALUE)) < 1e-6f && \
                   e_.source == SRC_OSC,                                                          \
               "want cmd %d param %d value %g from osc; got %s cmd %d param %d value %g source %d", \
               (CMD), (PARAM), (double)(VALUE), got_ ? "" : "(none)", e_.cmd, e_.param,           \
               (double)e_.value, e_.source);                                                      \
    } while (0)

static void port_zero(Settings *s) { s->osc_port = 0; }

TEST_IMPL(off_when_port_is_0) {
    Settings s;
    settings_default(&s);
    EXPECT(s.osc_port == 9000 && strcmp(s.osc_address, "127.0.0.1") == 0 && !s.osc_status_to[0] &&
               s.osc_status_rate == 10,
           "defaults: port %d address %s status_to '%s' rate %g", s.osc_port, s.osc_address, s.osc_status_to,
           (double)s.osc_status_rate);
    port_zero(&s);
    ControlQueue q;
    control_queue_init(&q);
    TbErr err = {{0}};
    Osc *o = osc_start(&s, &q, &err);
    EXPECT(o == NULL && err.msg[0] == 0, "port 0 started OSC or said '%s'", err.msg);
    osc_stop(o);  // NULL: nothing
    control_queue_destroy(&q);
    // The flag reaches the row, like every INI key.
    settings_default(&s);
    char *argv[] = {"tabula", "--osc.port", "9123", "--osc.status_to", "127.0.0.1:9124", NULL};
    EXPECT(settings_parse_args(&s, 5, argv, &err) == 0 && s.osc_port == 9123 &&
               strcmp(s.osc_status_to, "127.0.0.1:9124") == 0,
           "--osc.port: %s", err.msg);
}

// ss -Hulpn for the port: the lines of whatever listens on it.
static void listeners(int port, char *out, size_t n) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ss -Hulpn 'sport = :%d' 2>&1", port);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(out, 1, n - 1, p) : 0;
    out[got] = 0;
    if (p) pclose(p);
}

static int listens_only_on_loopback(int port, char *why, size_t n) {
    char lines[4096], want[32];
    listeners(port, lines, sizeof lines);
    snprintf(want, sizeof want, "127.0.0.1:%d ", port);
    int ok = strstr(lines, want) != NULL;
    const char *other[] = {"0.0.0.0:", "*:", "[::]:"};
    for (int i = 0; i < 3; i++) {
        char w[32];
        snprintf(w, sizeof w, "%s%d ", other[i], port);
        if (strstr(lines, w)) ok = 0;
    }
    snprintf(why, n, "ss -ulpn says: %s", lines);
    return ok;
}

TEST_IMPL(listens_on_loopback_only_by_default) {
    if (system("ss -V >/dev/null 2>&1") != 0) TEST_SKIP_CASE("no ss (iproute2)");
    Rig r;
    if (!rig_start(&r, NULL)) return;
    char why[4200];
    EXPECT(listens_only_on_loopback(r.port, why, sizeof why), "%s", why);
    rig_stop(&r);
}

TEST_IMPL(port_in_use_or_bad_address_fails_cleanly) {
    Settings s;
    settings_default(&s);
    ControlQueue q;
    control_queue_init(&q);
    TbErr err = {{0}};
    int busy = udp_socket(&s.osc_port);  // someone has the port
    Osc *o = osc_start(&s, &q, &err);
    EXPECT(o == NULL && strstr(err.msg, "Address already in use") && strstr(err.msg, "127.0.0.1"),
           "port in use: '%s'", err.msg);
    close(busy);
    const char *bad[] = {"999.1.1.1", ""};
    for (int i = 0; i < 2; i++) {
        snprintf(s.osc_address, sizeof s.osc_address, "%s", bad[i]);
        o = osc_start(&s, &q, &err);
        EXPECT(o == NULL && strstr(err.msg, "osc: "), "address '%s': started, or said '%s'", bad[i], err.msg);
    }
    // An address this machine does not have.
    snprintf(s.osc_address, sizeof s.osc_address, "192.0.2.1");
    o = osc_start(&s, &q, &err);
    EXPECT(o == NULL && strstr(err.msg, "192.0.2.1"), "192.0.2.1: '%s'", err.msg);
    control_queue_destroy(&q);
}

TEST_IMPL(messages_become_events) {
    Rig r;
    if (!rig_start(&r, NULL)) return;
    int fd = r.cl, P = r.port;
    send_f(fd, P, "/tabula/param/lr", 0.5f);
    send_i(fd, P, "/tabula/param/memory", 3);
    send_s(fd, P, "/tabula/param/lr", "+");
    send_s(fd, P, "/tabula/param/clip", "-");
    send_s(fd, P, "/tabula/param/optimizer", "adam");
    send_i(fd, P, "/tabula/param/loss", 1);
    lo_message m = lo_message_new();
    lo_message_add_true(m);
    send_msg(fd, P, "/tabula/param/freeze", m);
    m = lo_message_new();
    lo_message_add_double(m, 0.25);
    send_msg(fd, P, "/tabula/param/input_smoothing", m);
    send_i(fd, P, "/tabula/action/reset", 42);  // an integer: the seed
    send_i(fd, P, "/tabula/action/reset", 0);
    send_none(fd, P, "/tabula/action/reset");     // the next seed
    send_f(fd, P, "/tabula/action/reset", 1);     // a button: pressed (the next seed)
    send_f(fd, P, "/tabula/action/reset", 0);     // and released: nothing
    send_none(fd, P, "/tabula/action/pause");
    send_f(fd, P, "/tabula/action/freeze", 1);
    send_f(fd, P, "/tabula/action/freeze", 0);  // a button's release: nothing
    send_none(fd, P, "/tabula/action/save");
    send_none(fd, P, "/tabula/action/load");
    // A bundle: its messages in order.
    lo_bundle b = lo_bundle_new(LO_TT_IMMEDIATE);
    lo_bundle_add_message(b, "/tabula/param/momentum", msg_f(0.5f));
    lo_bundle_add_message(b, "/tabula/param/steps_per_frame", msg_i(4));
    size_t n = 0;
    void *data = lo_bundle_serialise(b, NULL, &n);
    send_raw(fd, P, data, n);
    free(data);
    lo_bundle_free_recursive(b);
    OscStats st = wait_taken(&r, 20, 0);
    EXPECT(st.ignored == 0 && st.queued == 18 && st.clamped == 0, "ignored %ld queued %ld clamped %ld",
           st.ignored, st.queued, st.clamped);
    EXPECT_EVENT(&r, CMD_SET, PARAM_LR, 0.5f);
    EXPECT_EVENT(&r, CMD_SET, PARAM_MEMORY, 3);
    EXPECT_EVENT(&r, CMD_NUDGE, PARAM_LR, 1);
    EXPECT_EVENT(&r, CMD_NUDGE, PARAM_CLIP, -1);
    EXPECT_EVENT(&r, CMD_SET, PARAM_OPTIMIZER, 1);
    EXPECT_EVENT(&r, CMD_SET, PARAM_LOSS, 1);
    EXPECT_EVENT(&r, CMD_SET, PARAM_FREEZE, 1);
    EXPECT_EVENT(&r, CMD_SET, PARAM_SMOOTH_IN, 0.25f);
    EXPECT_EVENT(&r, CMD_RESET, -1, 42);
    EXPECT_EVENT(&r, CMD_RESET, -1, 0);
    EXPECT_EVENT(&r, CMD_RESET, -1, -1);
    EXPECT_EVENT(&r, CMD_RESET, -1, -1);
    EXPECT_EVENT(&r, CMD_TOGGLE, PARAM_PAUSE, 0);
    EXPECT_EVENT(&r, CMD_TOGGLE, PARAM_FREEZE, 0);
    EXPECT_EVENT(&r, CMD_SAVE, -1, 0);
    EXPECT_EVENT(&r, CMD_LOAD, -1, 0);
    EXPECT_EVENT(&r, CMD_SET, PARAM_MOMENTUM, 0.5f);
    EXPECT_EVENT(&r, CMD_SET, PARAM_STEPS, 4);
    ControlEvent e;
    EXPECT(!pop(&r, &e), "an event too many: cmd %d param %d", e.cmd, e.param);
    rig_stop(&r);
}

// Slots and scenes take their number; without one the message is ignored.
TEST_IMPL(slot_and_scene_actions_carry_their_number) {
    Rig r;
    if (!rig_start(&r, NULL)) return;
    int fd = r.cl, P = r.port;
    send_i(fd, P, "/tabula/action/slot_save", 3);
    send_f(fd, P, "/tabula/action/slot_fade", 3);
    send_f(fd, P, "/tabula/action/slot_fade", 0);  // a button's release: nothing
    send_i(fd, P, "/tabula/action/scene", 2);
    send_none(fd, P, "/tabula/action/slot_recall");  // which slot? ignored
    OscStats st = wait_taken(&r, 5, 0);
    EXPECT(st.queued == 3 && st.ignored == 1, "queued %ld ignored %ld", st.queued, st.ignored);
    EXPECT_EVENT(&r, CMD_SLOT_SAVE, -1, 3);
    EXPECT_EVENT(&r, CMD_SLOT_FADE, -1, 3);
    EXPECT_EVENT(&r, CMD_SCENE, -1, 2);
    rig_stop(&r);
}

TEST_IMPL(bad_messages_ignored_and_counted) {
    Rig r;
    if (!rig_start(&r, NULL)) return;
    int fd = r.cl, P = r.port;
    send_f(fd, P, "/tabula/param/nope", 1);             // unknown name
    send_none(fd, P, "/tabula/action/explode");         // unknown name
    send_f(fd, P, "/tabula/param", 1);                  // unknown address
    send_f(fd, P, "/tabula/param/lr/x", 1);             // unknown address
    send_f(fd, P, "/somewhere/else", 1);                // unknown address
    send_none(fd, P, "/tabula/param/lr");               // no value
    send_s(fd, P, "/tabula/param/lr", "fast");          // wrong type
    send_s(fd, P, "/tabula/param/optimizer", "rmsprop");  // wrong type: no such choice
    send_s(fd, P, "/tabula/action/reset", "now");       // wrong type
    lo_message m = lo_message_new();
    char bytes[8] = {1, 2, 3};
    lo_blob blob = lo_blob_new(sizeof bytes, bytes);
    lo_message_add_blob(m, blob);
    send_msg(fd, P, "/tabula/param/lr", m);             // wrong type
    lo_blob_free(blob);
    send_f(fd, P, "/tabula/param/lr", NAN);             // not finite
    send_f(fd, P, "/tabula/param/momentum", INFINITY);  // not finite
    send_f(fd, P, "/tabula/action/reset", NAN);         // not finite
    send_raw(fd, P, "hello there!", 12);                // not OSC
    send_raw(fd, P, "#bundle\0\0\0\0\0\0\0\0\1\0\0\0\x40", 20);  // a bundle element past its end
    // Out of range: passed on and counted; the run loop clamps it.
    send_f(fd, P, "/tabula/param/lr", 50);
    send_i(fd, P, "/tabula/param/optimizer", 7);
    OscStats st = wait_taken(&r, 17, 2);
    long want[OSC_IGNORE_COUNT] = {[OSC_BAD_PACKET] = 2, [OSC_UNKNOWN_NAME] = 2, [OSC_UNKNOWN_ADDRESS] = 3,
                                   [OSC_NO_VALUE] = 1, [OSC_WRONG_TYPE] = 4, [OSC_NOT_FINITE] = 3};
    for (int i = 0; i < OSC_IGNORE_COUNT; i++) EXPECT(st.why[i] == want[i], "why[%d] = %ld, want %ld", i, st.why[i], want[i]);
    EXPECT(st.ignored == 15 && st.clamped == 2 && st.queued == 2, "ignored %ld clamped %ld queued %ld",
           st.ignored, st.clamped, st.queued);
    // The two out-of-range values arrive as sent, and clamp as every surface's do.
    LiveParams lp;
    live_params_from_settings(&lp, &r.s);
    ControlEvent e;
    EXPECT(pop(&r, &e) && e.param == PARAM_LR && live_params_set(&lp, e.param, e.value) == 10.0f, "lr 50");
    EXPECT(pop(&r, &e) && e.param == PARAM_OPTIMIZER && live_params_set(&lp, e.param, e.value) == 1.0f, "optimizer 7");
    EXPECT(!pop(&r, &e), "an ignored message made an event");
    // It still answers after all that.
    float v = -1;
    EXPECT(get_param(fd, P, "lr", &v) && v == 2.0f, "get lr after bad messages: %g", (double)v);
    rig_stop(&r);
}

TEST_IMPL(get_answers_what_is_in_force) {
    Rig r;
    if (!rig_start(&r, NULL)) return;
    int fd = r.cl, P = r.port;
    float v = -1;
    // Before the first frame: the values of the settings.
    EXPECT(get_param(fd, P, "lr", &v) && v == 2.0f, "lr before any frame: %g", (double)v);
    EXPECT(get_param(fd, P, "momentum", &v) && fabsf(v - 0.9f) < 1e-7f, "momentum: %g", (double)v);
    // Then what the run loop published.
    RunView view = {.loss = 0.01f, .psnr = 20, .steps_per_s = 123, .step = 77, .frames = 9};
    live_params_from_settings(&view.p, &r.s);
    view.p.v[PARAM_LR] = 0.25f;
    view.p.v[PARAM_OPTIMIZER] = 1;
    control_publish(&r.q, &view);
    EXPECT(get_param(fd, P, "lr", &v) && v == 0.25f, "lr: %g", (double)v);
    EXPECT(get_param(fd, P, "optimizer", &v) && v == 1.0f, "optimizer: %g", (double)v);
    // /tabula/get: the whole status, to the sender.
    Got g;
    float loss = 0, step = 0, frame = 0, psnr = 0, sps = 0;
    EXPECT(ask(fd, P, NULL, &g, 3000) && g.bundle && got_value(&g, "/tabula/status/loss", &loss) &&
               got_value(&g, "/tabula/status/psnr", &psnr) && got_value(&g, "/tabula/status/steps_per_s", &sps) &&
               got_value(&g, "/tabula/status/step", &step) && got_value(&g, "/tabula/status/frame", &frame),
           "status bundle: %d messages", g.n);
    EXPECT(loss == 0.01f && psnr == 20 && sps == 123 && step == 77 && frame == 9, "status %g %g %g %g %g",
           (double)loss, (double)psnr, (double)sps, (double)step, (double)frame);
    EXPECT(g.n == 5 + PARAM_COUNT, "%d messages in the status, want %d", g.n, 5 + PARAM_COUNT);
    // Unknown: ignored, no answer.
    EXPECT(!ask(fd, P, "nope", &g, 300), "an answer to /tabula/get/nope");
    OscStats st;
    osc_stats(r.o, &st);
    EXPECT(st.replies == 5 && st.why[OSC_UNKNOWN_NAME] == 1, "replies %ld, unknown %ld", st.replies,
           st.why[OSC_UNKNOWN_NAME]);
    rig_stop(&r);
}

// Once a driver publishes a health sample, the status carries its fields as
// /health has them (strings as s), leaving out what is unknown.
TEST_IMPL(status_carries_the_health_sample) {
    Rig r;
    if (!rig_start(&r, NULL)) return;
    HealthSample hs = {.step = 77, .frame = 9, .draws = -1, .camera = HEALTH_CAMERA_LOST, .dropped_frames = 7,
                       .dropped_events = 2, .rollbacks = 3, .gpu_used_mb = -1, .gpu_total_mb = -1,
                       .t = tb_now(), .uptime_s = 12.5, .fps = -1, .rss_mb = 100, .mem_available_mb = 2000,
                       .status = HEALTH_DEGRADED};
    snprintf(hs.camera_msg, sizeof hs.camera_msg, "camera lost: gone");
    health_publish(&hs);
    Got g;
    float up = 0, dropped = 0, rb = 0, x;
    EXPECT(ask(r.cl, r.port, NULL, &g, 3000) && got_value(&g, "/tabula/status/uptime_s", &up) &&
               got_value(&g, "/tabula/status/dropped_frames", &dropped) &&
               got_value(&g, "/tabula/status/rollbacks", &rb),
           "status bundle: %d messages", g.n);
    EXPECT(up == 12.5f && dropped == 7 && rb == 3, "uptime %g dropped %g rollbacks %g", (double)up,
           (double)dropped, (double)rb);
    const char *want_text[][2] = {{"/tabula/status/status", "degraded"},
                                  {"/tabula/status/camera", "lost"},
                                  {"/tabula/status/camera_msg", "camera lost: gone"}};
    for (int k = 0; k < 3; k++) {
        int found = 0;
        for (int i = 0; i < g.n; i++)
            if (strcmp(g.path[i], want_text[k][0]) == 0) found = strcmp(g.text[i], want_text[k][1]) == 0;
        EXPECT(found, "%s is not \"%s\"", want_text[k][0], want_text[k][1]);
    }
    EXPECT(!got_value(&g, "/tabula/status/fps", &x) && !got_value(&g, "/tabula/status/gpu_mem_used_mb", &x),
           "unknown fields sent");
    // The run's own four are sent once, from the RunView: 5 + 9 health fields.
    EXPECT(g.n == 5 + 9 + PARAM_COUNT, "%d messages in the status, want %d", g.n, 5 + 9 + PARAM_COUNT);
    health_publish(NULL);
    rig_stop(&r);
}

static int status_port;
static void status_to_client(Settings *s) {
    snprintf(s->osc_status_to, sizeof s->osc_status_to, "127.0.0.1:%d", status_port);
    s->osc_status_rate = 20;
}

TEST_IMPL(status_bundles_at_the_rate) {
    int lis_port = 0, lis = udp_socket(&lis_port);
    status_port = lis_port;
    Rig r;
    if (!rig_start(&r, status_to_client)) return;
    RunView view = {.loss = 0.5f, .psnr = 3, .steps_per_s = 10, .step = 5, .frames = 2};
    live_params_from_settings(&view.p, &r.s);
    view.p.v[PARAM_MEMORY] = 4;
    control_publish(&r.q, &view);
    // Bundles for a second: about 20 of them, each complete and carrying the
    // published view (the thread may have sent one before the view above was
    // published: that one carries the settings' values and is not counted).
    int n = 0, complete = 0, stale_after = 0;
    double t0 = tb_now();
    Got g;
    while (tb_now() - t0 < 1.0)
        if (recv_packet(lis, 100, &g)) {
            float mem = -1, loss = -1;
            n++;
            int ok = g.bundle && g.n == 5 + PARAM_COUNT && got_value(&g, "/tabula/param/memory", &mem) &&
                     mem == 4 && got_value(&g, "/tabula/status/loss", &loss) && loss == 0.5f;
            complete += ok;
            stale_after += !ok && complete > 0;
        }
    // Wide bounds: a loaded machine delays the thread, never speeds it up.
    EXPECT(n >= 5 && n <= 22, "%d status bundles in a second at 20 Hz", n);
    EXPECT(complete >= n - 1 && stale_after == 0, "%d of %d bundles complete (%d stale after a complete one)",
           complete, n, stale_after);
    rig_stop(&r);
    close(lis);
}

static int own_port;
static void status_to_self(Settings *s) {
    s->osc_port = own_port;
    snprintf(s->osc_status_to, sizeof s->osc_status_to, "localhost:%d", own_port);
}

TEST_IMPL(status_to_its_own_port_refused) {
    own_port = free_port();
    Rig r;
    if (!rig_start(&r, status_to_self)) return;
    usleep(300 * 1000);
    OscStats st;
    osc_stats(r.o, &st);
    EXPECT(st.status == 0 && st.received == 0, "sent %ld status bundles to itself, took %ld", st.status,
           st.received);
    rig_stop(&r);
}

// The README's OSC table (between its <!-- osc-params --> markers) is the
// parameter table's.
TEST_IMPL(readme_table_is_the_parameter_table) {
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    FILE *f = fopen(path, "r");
    static char text[1 << 17];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = 0;
    char *a = strstr(text, "<!-- osc-params -->\n"), *b = a ? strstr(a, "<!-- /osc-params -->") : NULL;
    if (a && b) a += strlen("<!-- osc-params -->\n"), *b = 0;
    char *want = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&want, &len);
    osc_params_markdown(m);
    fclose(m);
    EXPECT(a && b && strcmp(a, want) == 0,
           "README.md's <!-- osc-params --> table differs from the parameter table; it should read:\n%s", want);
    free(want);
}

// ------------------------------------------------------------------ end to end

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

// Start the real program with args (NULL-terminated), stderr to err_path. Its pid.
static pid_t spawn(char **args, const char *err_path) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        setenv("OMP_NUM_THREADS", "1", 1);  // leave a core to the client and the OSC thread
        execv(args[0], args);
        _exit(127);
    }
    return pid;
}

// Wait for pid up to secs; its exit status, or -1 (then it is killed).
static int wait_exit(pid_t pid, double secs) {
    double t_end = tb_now() + secs;
    int status;
    while (tb_now() < t_end) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

// The status bundle's number NAME, asked for now (NAN if no answer within
// timeout_ms).
static float status_now(int fd, int port, const char *name, int timeout_ms) {
    Got g;
    char path[64];
    float v = NAN;
    snprintf(path, sizeof path, "/tabula/status/%s", name);
    if (!ask(fd, port, NULL, &g, timeout_ms) || !got_value(&g, path, &v)) return NAN;
    return v;
}

// The metrics has a line with all of these fields.
static int metrics_line_with(const char *metrics, const char *const *fields, int n) {
    for (const char *line = metrics; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), line);
        int all = 1;
        for (int i = 0; i < n; i++) all &= strstr(buf, fields[i]) != NULL;
        if (all) return 1;
        line = end ? end + 1 : NULL;
    }
    return 0;
}

// Steps in the metrics go down somewhere (a reset started them again).
static int metrics_step_goes_down(const char *metrics) {
    long prev = -1;
    for (const char *p = strstr(metrics, "\"step\":"); p; p = strstr(p + 1, "\"step\":")) {
        long s = strtol(p + 7, NULL, 10);
        if (s < prev) return 1;
        prev = s;
    }
    return 0;
}

// The real program, headless, on the real clip: it trains 16 steps a frame
// (slow frames: time for the messages) until the test pauses it, then runs
// through the rest of its frames at once and exits by itself, so it stops on
// the test's word and writes its summary, however loaded the machine is.
TEST_IMPL(headless_end_to_end) {
    const char *bin = getenv("TABULA_BIN");
    if (!bin) TEST_SKIP_CASE("TABULA_BIN not set (run through CTest)");
    char dir[] = "/tmp/tabula-osc-XXXXXX";
    EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    char metrics[128], events[128], err_path[128], port_s[16], source[1100];
    snprintf(metrics, sizeof metrics, "%s/m.jsonl", dir);
    snprintf(events, sizeof events, "%s/ev.jsonl", dir);
    snprintf(err_path, sizeof err_path, "%s/err.txt", dir);
    int P = free_port();
    snprintf(port_s, sizeof port_s, "%d", P);
    snprintf(source, sizeof source, "file:%s", test_data("asl_signer_a_320x240.y4m"));
    char *args[] = {(char *)bin, "--headless", "--backend", "cpu", "--size", "32x32", "--source", source,
                    "--frames", "2000", "--steps-per-frame", "16", "--osc.port", port_s,
                    "--metrics", metrics, "--events", events, NULL};
    pid_t pid = spawn(args, err_path);
    int cl_port, fd = udp_socket(&cl_port);

    // Up and training: /tabula/get answers and the frames go on.
    double t_end = tb_now() + 60;
    float frame = NAN;
    while (tb_now() < t_end && !(frame >= 1)) frame = status_now(fd, P, "frame", 500);  // starting
    EXPECT(frame >= 1, "no status with frames from tabula in 60 s: %s", slurp(err_path));
    if (!(frame >= 1)) {
        wait_exit(pid, 0);
        close(fd);
        return;
    }
    if (system("ss -V >/dev/null 2>&1") == 0) {
        char why[4200];
        EXPECT(listens_only_on_loopback(P, why, sizeof why), "%s", why);
    }

    // Set, nudge (the table's steps), an out-of-range value, a reset, and five bad messages.
    send_f(fd, P, "/tabula/param/lr", 0.5f);
    send_s(fd, P, "/tabula/param/lr", "+");        // x 10^(1/4): 0.889
    send_s(fd, P, "/tabula/param/momentum", "-");  // - 0.01: 0.89
    send_i(fd, P, "/tabula/param/memory", 2);
    send_f(fd, P, "/tabula/param/clip", 5000);     // out of range: clamped to 1000
    send_i(fd, P, "/tabula/action/reset", 42);
    send_f(fd, P, "/tabula/param/nope", 1);
    send_f(fd, P, "/tabula/param/lr", NAN);
    send_s(fd, P, "/tabula/param/momentum", "lots");
    send_none(fd, P, "/tabula/action/explode");
    send_none(fd, P, "/tabula/param/lr");
    // An answer comes after what was sent before it: all of it is queued when
    // the view says frame f0. The frame under way may have drained the queue
    // already; the one after it applies the events: in view at f0 + 2.
    float f0 = status_now(fd, P, "frame", 10000), f1 = f0;
    t_end = tb_now() + 60;
    while (tb_now() < t_end && !(f1 >= f0 + 2)) f1 = status_now(fd, P, "frame", 10000);
    EXPECT(f1 >= f0 + 2, "no two frames after the messages (%g, %g)", (double)f0, (double)f1);
    float lr = 0, mom = 0, mem = 0, clip = 0;
    EXPECT(get_param(fd, P, "lr", &lr) && fabsf(lr - 0.5f * 1.77827941f) < 1e-6f, "lr %.7g, want 0.8891397", (double)lr);
    EXPECT(get_param(fd, P, "momentum", &mom) && fabsf(mom - 0.89f) < 1e-6f, "momentum %.7g", (double)mom);
    EXPECT(get_param(fd, P, "memory", &mem) && mem == 2, "memory %g", (double)mem);
    EXPECT(get_param(fd, P, "clip", &clip) && clip == 1000, "clip %g", (double)clip);

    // Pause: the rest of the frames go by without steps and it exits by itself.
    send_f(fd, P, "/tabula/param/pause", 1);
    int rc = wait_exit(pid, 300);
    char *err = slurp(err_path), *ev = slurp(events), *m = slurp(metrics);
    EXPECT(rc == 0, "exit %d: %s", rc, err);
    char listening[64];
    snprintf(listening, sizeof listening, "osc: listening on 127.0.0.1:%d", P);
    EXPECT(strstr(err, listening), "no '%s' in: %s", listening, err);
    EXPECT(strstr(err, "5 ignored (2 unknown name, 1 no value, 1 wrong type, 1 not a finite number), "
                       "1 out of range (clamped)"),
           "summary: %s", err);
    // The event log: each applied event, from osc, with the value in force.
    const char *want[] = {
        "\"source\":\"osc\",\"param\":\"lr\",\"value\":0.5}",
        "\"source\":\"osc\",\"param\":\"lr\",\"value\":0.8891397}",
        "\"source\":\"osc\",\"param\":\"momentum\",\"value\":0.89}",
        "\"source\":\"osc\",\"param\":\"memory\",\"value\":2}",
        "\"source\":\"osc\",\"param\":\"clip\",\"value\":1000}",
        "\"step\":0,\"source\":\"osc\",\"action\":\"reset\",\"value\":42}",
        "\"source\":\"osc\",\"param\":\"pause\",\"value\":1}",
    };
    const char *at = ev;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *hit = at ? strstr(at, want[i]) : NULL;
        EXPECT(hit, "event log lacks (in order) %s:\n%s", want[i], ev);
        at = hit ? hit + 1 : at;
    }
    int lines = 0;
    for (const char *p = ev; *p; p++) lines += *p == '\n';
    EXPECT(lines == 7, "%d events, want 7:\n%s", lines, ev);
    // The metrics: trained with the new values, and the steps started again.
    const char *fields[] = {"\"lr\":0.8891397,", "\"momentum\":0.89,", "\"clip\":1000,", "\"memory\":2,"};
    EXPECT(metrics_line_with(m, fields, 4), "no metrics line with the new values");
    EXPECT(metrics_step_goes_down(m), "the steps never started again after the reset");
    free(err), free(ev), free(m);
    close(fd);
    unlink(metrics), unlink(events), unlink(err_path), rmdir(dir);
}

TEST_MAIN(TEST_ENTRY(off_when_port_is_0), TEST_ENTRY(listens_on_loopback_only_by_default),
          TEST_ENTRY(port_in_use_or_bad_address_fails_cleanly), TEST_ENTRY(messages_become_events),
          TEST_ENTRY(slot_and_scene_actions_carry_their_number),
          TEST_ENTRY(bad_messages_ignored_and_counted), TEST_ENTRY(get_answers_what_is_in_force),
          TEST_ENTRY(status_carries_the_health_sample),
          TEST_ENTRY(status_bundles_at_the_rate), TEST_ENTRY(status_to_its_own_port_refused),
          TEST_ENTRY(readme_table_is_the_parameter_table), TEST_ENTRY(headless_end_to_end))
