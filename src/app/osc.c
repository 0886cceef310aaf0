// osc.c: OSC control over UDP (see osc.h). The socket is bound here, not by
// liblo's server (which listens on every interface even when told one), so
// [osc] address = 127.0.0.1 really means this machine only. liblo parses the
// messages and writes the replies; bundles are walked here.
#define _DEFAULT_SOURCE
#include "osc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lo/lo.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.h"

#define OSC_MAX_PACKET 65536
#define OSC_MAX_DEPTH 8  // nested bundles

struct Osc {
    ControlQueue *q;
    int fd;         // the listening socket (replies go out of it too)
    int status_fd;  // -1: no status
    struct sockaddr_storage status_addr;
    socklen_t status_len;
    double status_period, next_status;
    char where[128], status_where[CFG_STR + 16];
    int port;
    int wake[2];  // osc_stop writes a byte: the thread ends
    pthread_t thread;
    LiveParams initial;  // what /tabula/get answers before the first frame
    pthread_mutex_t mu;  // st and logged
    OscStats st;
    int logged[OSC_IGNORE_COUNT];
    uint8_t in[OSC_MAX_PACKET];
    uint8_t out[OSC_MAX_PACKET];
};

static const char *const IGNORE_WHY[OSC_IGNORE_COUNT] = {
    "not OSC", "unknown address", "unknown name", "no value", "wrong type", "not a finite number",
};

#define P_PARAM "/tabula/param/"
#define P_GET "/tabula/get/"
#define P_ACTION "/tabula/action/"
#define P_CH "/tabula/ch/"  // /tabula/ch/N/param/KEY, /tabula/ch/N/get/KEY: channel N ([channels])

// ------------------------------------------------------------------ counters

static void count(Osc *o, long *field) {
    pthread_mutex_lock(&o->mu);
    (*field)++;
    pthread_mutex_unlock(&o->mu);
}

// An ignored message: counted, and the first of each kind is said once.
static void ignore(Osc *o, OscIgnore why, const char *path) {
    pthread_mutex_lock(&o->mu);
    o->st.ignored++;
    o->st.why[why]++;
    if (why == OSC_BAD_PACKET) o->st.received++;  // taken, though not a message
    int first = !o->logged[why];
    o->logged[why] = 1;
    pthread_mutex_unlock(&o->mu);
    if (!first) return;
    // The path as text a terminal shows safely (it comes from anyone who can send).
    char safe[128];
    size_t n = 0;
    for (const char *c = path ? path : "a packet"; *c && n < sizeof safe - 1; c++)
        safe[n++] = *c >= 0x20 && *c < 0x7f ? *c : '?';
    safe[n] = 0;
    tb_log("osc: ignored %s (%s); more of these are only counted (summary at exit)", safe, IGNORE_WHY[why]);
}

static void push(Osc *o, ControlEvent e) {
    e.source = SRC_OSC;
    int rc = control_push(o->q, e);
    count(o, rc == 0 ? &o->st.queued : &o->st.dropped);
}

// ------------------------------------------------------------------ output

// Serialise one message (path, one float, or one string when text) into dst;
// its size, or 0 if it does not fit.
static size_t put_message(uint8_t *dst, size_t cap, const char *path, float v, const char *text) {
    lo_message m = lo_message_new();
    if (text) lo_message_add_string(m, text);
    else lo_message_add_float(m, v);
    size_t n = lo_message_length(m, path);
    if (n > cap) n = 0;
    else lo_message_serialise(m, path, dst, &n);
    lo_message_free(m);
    return n;
}

static size_t put_float(uint8_t *dst, size_t cap, const char *path, float v) {
    return put_message(dst, cap, path, v, NULL);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

// Append one bundle element (a float message, or a string one when text) at *len.
static void bundle_put(uint8_t *b, size_t cap, size_t *len, const char *path, float v, const char *text) {
    if (*len + 4 > cap) return;
    size_t n = put_message(b + *len + 4, cap - *len - 4, path, v, text);
    if (!n) return;
    put_be32(b + *len, (uint32_t)n);
    *len += 4 + n;
}

static void bundle_add(uint8_t *b, size_t cap, size_t *len, const char *path, float v) {
    bundle_put(b, cap, len, path, v, NULL);
}

// The parameters to report: the run's view once it has published one.
static const LiveParams *params_now(Osc *o, const RunView *v) {
    return v->frames > 0 ? &v->p : &o->initial;
}

// The status bundle into o->out: the numbers under /tabula/status/ (the run's
// at every bundle, then the health sample's fields, as /health has them, once
// a driver has published one), every live parameter under /tabula/param/KEY
// (the address a control sends to, so a fader on it follows the value).
// Returns its size.
static size_t status_bundle(Osc *o) {
    RunView v = control_view(o->q);
    const LiveParams *p = params_now(o, &v);
    uint8_t *b = o->out;
    size_t cap = sizeof o->out, len = 16;
    memcpy(b, "#bundle\0", 8);
    put_be32(b + 8, 0), put_be32(b + 12, 1);  // time tag 1: immediately
    bundle_add(b, cap, &len, "/tabula/status/loss", v.loss);
    bundle_add(b, cap, &len, "/tabula/status/psnr", v.psnr);
    bundle_add(b, cap, &len, "/tabula/status/steps_per_s", v.steps_per_s);
    bundle_add(b, cap, &len, "/tabula/status/step", (float)v.step);
    bundle_add(b, cap, &len, "/tabula/status/frame", (float)v.frames);
    HealthSample hs;
    HealthField f[HEALTH_FIELDS];
    int nf = health_latest(&hs, tb_now()) ? health_fields(&hs, f) : 0;
    for (int i = 0; i < nf; i++) {
        if (f[i].in_run_view || f[i].kind == HF_NULL) continue;  // sent above / not known here
        char path[96];
        snprintf(path, sizeof path, "/tabula/status/%s", f[i].key);
        bundle_put(b, cap, &len, path, (float)f[i].num, f[i].kind == HF_TEXT ? f[i].text : NULL);
    }
    for (int id = 0; id < PARAM_COUNT; id++) {
        char path[96];
        snprintf(path, sizeof path, P_PARAM "%s", param_live(id)->key);
        bundle_add(b, cap, &len, path, p->v[id]);
    }
    return len;
}

static void reply(Osc *o, const void *data, size_t n, const struct sockaddr *to, socklen_t to_len) {
    if (n && sendto(o->fd, data, n, MSG_DONTWAIT, to, to_len) == (ssize_t)n) count(o, &o->st.replies);
}

// ------------------------------------------------------------------ input

// A number from the first argument: 1 with *v, 0 if it is no number.
static int number_arg(char type, lo_arg *a, double *v) {
    switch (type) {
    case LO_FLOAT: *v = a->f; return 1;
    case LO_DOUBLE: *v = a->d; return 1;
    case LO_INT32: *v = a->i; return 1;
    case LO_INT64: *v = (double)a->h; return 1;
    case LO_TRUE: *v = 1; return 1;
    case LO_FALSE: *v = 0; return 1;
    default: return 0;
    }
}

// /tabula/param/KEY VALUE (channel 0), /tabula/ch/N/param/KEY VALUE (channel N)
static void on_param(Osc *o, const char *path, const char *key, lo_message m, int ch) {
    int id = param_by_name(key);
    if (id < 0) {
        ignore(o, OSC_UNKNOWN_NAME, path);
        return;
    }
    const char *types = lo_message_get_types(m);
    if (!types || !types[0]) {
        ignore(o, OSC_NO_VALUE, path);
        return;
    }
    lo_arg *a = lo_message_get_argv(m)[0];
    double v;
    if (types[0] == LO_STRING || types[0] == LO_SYMBOL) {
        const char *s = &a->s;
        if (strcmp(s, "+") == 0 || strcmp(s, "-") == 0) {
            push(o, (ControlEvent){.cmd = CMD_NUDGE, .param = id, .value = s[0] == '+' ? 1 : -1, .ch = ch});
            return;
        }
        int c = param_choice_index(param_live(id), s);
        if (c < 0) {
            ignore(o, OSC_WRONG_TYPE, path);
            return;
        }
        v = c;
    } else if (!number_arg(types[0], a, &v)) {
        ignore(o, OSC_WRONG_TYPE, path);
        return;
    }
    if (!isfinite(v)) {
        ignore(o, OSC_NOT_FINITE, path);
        return;
    }
    double lo, hi;
    param_live_range(id, &lo, &hi);
    if (v < lo || v > hi) count(o, &o->st.clamped);  // the run loop clamps it
    push(o, (ControlEvent){.cmd = CMD_SET, .param = id, .value = (float)v, .ch = ch});
}

// /tabula/action/NAME [number]: the seed of a reset, the slot or scene number.
static void on_action(Osc *o, const char *path, const char *name, lo_message m) {
    const ActionInfo *a = action_by_name(name);
    if (!a) {
        ignore(o, OSC_UNKNOWN_NAME, path);
        return;
    }
    const char *types = lo_message_get_types(m);
    int has = types && types[0];
    double v = -1;
    if (has && !number_arg(types[0], lo_message_get_argv(m)[0], &v)) {
        ignore(o, OSC_WRONG_TYPE, path);
        return;
    }
    if (has && !isfinite(v)) {
        ignore(o, OSC_NOT_FINITE, path);
        return;
    }
    ControlEvent e = {.cmd = a->cmd, .param = a->param, .value = 0};
    int whole = has && (types[0] == LO_INT32 || types[0] == LO_INT64);
    if (a->cmd == CMD_RESET && whole) {
        // An integer is the seed (>= 0, within the [train] seed range); < 0: the next one.
        if (v > 2147483647.0) count(o, &o->st.clamped), v = 2147483647.0;
        e.value = v >= 0 ? (float)v : -1;
    } else if (has && v == 0) {
        return;  // a button's release (a float, or false): nothing to do
    } else if (a->cmd == CMD_CODE_STORE || a->cmd == CMD_JOURNEY) {
        e.value = has ? (float)v : -1;  // a keyframe number, or none: the next one
    } else if (a->cmd >= CMD_SLOT_SAVE) {
        // Slots and scenes: the number says which (the run loop checks the range).
        if (!has) {
            ignore(o, OSC_WRONG_TYPE, path);
            return;
        }
        e.value = (float)v;
    } else if (a->cmd == CMD_RESET) {
        e.value = -1;  // a button's press: the next seed
    }
    push(o, e);
}

// /tabula/get/KEY: the value in force, to the sender (ch > 0: /tabula/ch/N/get/KEY,
// answered as /tabula/ch/N/param/KEY).
static void on_get(Osc *o, const char *path, const char *key, const struct sockaddr *from,
                   socklen_t from_len, int ch) {
    int id = param_by_name(key);
    if (id < 0) {
        ignore(o, OSC_UNKNOWN_NAME, path);
        return;
    }
    RunView v = control_view(o->q);
    char rpath[96];
    if (ch > 0) snprintf(rpath, sizeof rpath, P_CH "%d/param/%s", ch, key);
    else snprintf(rpath, sizeof rpath, P_PARAM "%s", key);
    const LiveParams *p = ch > 0 && ch < v.channels && v.frames > 0 ? &v.chp[ch] : params_now(o, &v);
    reply(o, o->out, put_float(o->out, sizeof o->out, rpath, p->v[id]), from, from_len);
}

// A name after a prefix: non-empty, one path component.
static const char *name_after(const char *path, const char *prefix) {
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0) return NULL;
    const char *name = path + n;
    return name[0] && !strchr(name, '/') ? name : NULL;
}

// /tabula/ch/N/REST: N (0..TB_CHANNELS-1) and REST's start, or -1.
static int channel_path(const char *path, const char **rest) {
    size_t n = strlen(P_CH);
    if (strncmp(path, P_CH, n) != 0 || path[n] < '0' || path[n] >= '0' + TB_CHANNELS || path[n + 1] != '/')
        return -1;
    *rest = path + n + 1;  // "/param/KEY" or "/get/KEY"
    return path[n] - '0';
}

static void on_message(Osc *o, uint8_t *data, size_t n, const struct sockaddr *from, socklen_t from_len) {
    int res = 0;
    lo_message m = lo_message_deserialise(data, n, &res);
    const char *path = m ? lo_get_path(data, (ssize_t)n) : NULL;
    if (!m || !path) {
        if (m) lo_message_free(m);
        ignore(o, OSC_BAD_PACKET, NULL);
        return;
    }
    count(o, &o->st.received);
    const char *name, *rest;
    int ch = channel_path(path, &rest);
    if (ch >= 0 && (name = name_after(rest, "/param/"))) on_param(o, path, name, m, ch);
    else if (ch >= 0 && (name = name_after(rest, "/get/"))) on_get(o, path, name, from, from_len, ch);
    else if ((name = name_after(path, P_PARAM))) on_param(o, path, name, m, 0);
    else if ((name = name_after(path, P_ACTION))) on_action(o, path, name, m);
    else if ((name = name_after(path, P_GET))) on_get(o, path, name, from, from_len, 0);
    else if (strcmp(path, "/tabula/get") == 0) reply(o, o->out, status_bundle(o), from, from_len);
    else ignore(o, OSC_UNKNOWN_ADDRESS, path);
    lo_message_free(m);
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// A packet: one message or a bundle (its elements in order; the time tag is
// not waited for: everything applies at once).
static void on_packet(Osc *o, uint8_t *data, size_t n, const struct sockaddr *from, socklen_t from_len,
                      int depth) {
    if (n >= 16 && memcmp(data, "#bundle\0", 8) == 0) {
        if (depth >= OSC_MAX_DEPTH) {
            ignore(o, OSC_BAD_PACKET, "#bundle (nested too deep)");
            return;
        }
        size_t at = 16;
        while (at + 4 <= n) {
            uint32_t size = get_be32(data + at);
            at += 4;
            if (size == 0 || size % 4 || size > n - at) {
                ignore(o, OSC_BAD_PACKET, "#bundle (bad element size)");
                return;
            }
            on_packet(o, data + at, size, from, from_len, depth + 1);
            at += size;
        }
        return;
    }
    if (n >= 4 && data[0] == '/' && n % 4 == 0) on_message(o, data, n, from, from_len);
    else ignore(o, OSC_BAD_PACKET, NULL);
}

static void send_status(Osc *o) {
    size_t n = status_bundle(o);
    if (sendto(o->status_fd, o->out, n, MSG_DONTWAIT, (struct sockaddr *)&o->status_addr, o->status_len) ==
        (ssize_t)n)
        count(o, &o->st.status);
}

static void *osc_main(void *arg) {
    Osc *o = arg;
    o->next_status = tb_now();
    for (;;) {
        int timeout = -1;
        if (o->status_fd >= 0) {
            double wait = o->next_status - tb_now();
            timeout = wait <= 0 ? 0 : (int)(wait * 1000) + 1;
        }
        struct pollfd pf[2] = {{.fd = o->fd, .events = POLLIN}, {.fd = o->wake[0], .events = POLLIN}};
        int r = poll(pf, 2, timeout);
        if (r < 0 && errno != EINTR) {
            tb_error("osc: poll: %s: OSC stops", strerror(errno));
            break;
        }
        if (r > 0 && pf[1].revents) break;  // osc_stop
        // What has arrived (at most 256 packets, then the status gets its turn).
        for (int k = 0; r > 0 && pf[0].revents && k < 256; k++) {
            struct sockaddr_storage from;
            socklen_t from_len = sizeof from;
            ssize_t n = recvfrom(o->fd, o->in, sizeof o->in, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
            if (n < 0) break;  // EAGAIN: all taken
            on_packet(o, o->in, (size_t)n, (struct sockaddr *)&from, from_len, 0);
        }
        if (o->status_fd >= 0 && tb_now() >= o->next_status) {
            send_status(o);
            o->next_status += o->status_period;
            // Late (a stalled machine): go on from now rather than send a burst.
            if (o->next_status < tb_now()) o->next_status = tb_now() + o->status_period;
        }
    }
    return NULL;
}

// ------------------------------------------------------------------ start, stop

static void addr_text(const struct sockaddr *a, socklen_t len, char *buf, size_t n) {
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo(a, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV)) {
        snprintf(buf, n, "?");
        return;
    }
    snprintf(buf, n, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, serv);
}

static int is_wildcard_or_loopback(const struct sockaddr *a) {
    if (a->sa_family == AF_INET) {
        uint32_t ip = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);
        return ip == INADDR_ANY || (ip >> 24) == 127;
    }
    if (a->sa_family == AF_INET6) {
        const struct in6_addr *ip = &((const struct sockaddr_in6 *)a)->sin6_addr;
        return IN6_IS_ADDR_UNSPECIFIED(ip) || IN6_IS_ADDR_LOOPBACK(ip);
    }
    return 0;
}

static int port_of(const struct sockaddr *a) {
    return a->sa_family == AF_INET    ? ntohs(((const struct sockaddr_in *)a)->sin_port)
         : a->sa_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
                                    : -1;
}

// status_to "host:port" (or "[v6]:port"): a socket to send from. 0, or -1 with err.
static int open_status(Osc *o, const char *to, const struct sockaddr *bound, TbErr *err) {
    char host[CFG_STR];
    const char *colon = strrchr(to, ':');
    if (!colon || !colon[1]) return tb_fail(err, "it is not host:port");
    size_t hl = (size_t)(colon - to);
    if (hl >= 2 && to[0] == '[' && to[hl - 1] == ']') memcpy(host, to + 1, hl - 2), host[hl - 2] = 0;
    else memcpy(host, to, hl), host[hl] = 0;
    if (!host[0]) return tb_fail(err, "it names no host");
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc) return tb_fail(err, "%s", gai_strerror(rc));
    memcpy(&o->status_addr, ai->ai_addr, ai->ai_addrlen);
    o->status_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    const struct sockaddr *sa = (struct sockaddr *)&o->status_addr;
    if (port_of(sa) == 0) return tb_fail(err, "port 0");
    // Status to our own port would play every parameter back into tabula.
    if (port_of(sa) == port_of(bound) && is_wildcard_or_loopback(sa))
        return tb_fail(err, "that is tabula's own OSC port");
    o->status_fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (o->status_fd < 0) return tb_fail(err, "socket: %s", strerror(errno));
    addr_text(sa, o->status_len, o->status_where, sizeof o->status_where);
    return 0;
}

Osc *osc_start(const Settings *s, ControlQueue *q, TbErr *err) {
    err->msg[0] = 0;
    if (s->osc_port <= 0) return NULL;  // off
    if (!s->osc_address[0]) {
        tb_fail(err, "osc: [osc] address is empty: name one (127.0.0.1 = this machine only, 0.0.0.0 = every network)");
        return NULL;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", s->osc_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(s->osc_address, port, &hints, &ai);
    if (rc) {
        tb_fail(err, "osc: cannot listen on %.200s port %d: %s", s->osc_address, s->osc_port, gai_strerror(rc));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int e = errno;
        tb_fail(err, "osc: cannot listen on %.200s port %d: %s%s", s->osc_address, s->osc_port, strerror(e),
                e == EADDRINUSE ? " (another tabula or OSC program has it: set [osc] port)" : "");
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    Osc *o = tb_calloc(1, sizeof *o);
    o->q = q;
    o->fd = fd;
    o->status_fd = -1;
    o->port = s->osc_port;
    addr_text(ai->ai_addr, ai->ai_addrlen, o->where, sizeof o->where);
    if (s->osc_status_to[0]) {
        TbErr serr = {{0}};
        if (open_status(o, s->osc_status_to, ai->ai_addr, &serr)) {
            tb_warn("osc: status_to \"%.200s\": %s: no status will be sent", s->osc_status_to, serr.msg);
            o->status_fd = -1;
        }
        o->status_period = 1.0 / (s->osc_status_rate > 0 ? s->osc_status_rate : 10);
    }
    freeaddrinfo(ai);
    live_params_from_settings(&o->initial, s);
    pthread_mutex_init(&o->mu, NULL);
    int piped = pipe(o->wake) == 0;
    if (!piped || pthread_create(&o->thread, NULL, osc_main, o) != 0) {
        tb_fail(err, "osc: cannot start its thread: %s", strerror(errno));
        if (piped) close(o->wake[0]), close(o->wake[1]);
        close(o->fd);
        if (o->status_fd >= 0) close(o->status_fd);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return NULL;
    }
    if (o->status_fd >= 0)
        tb_log("osc: listening on %s, status to %s at %g Hz", o->where, o->status_where,
               (double)s->osc_status_rate);
    else tb_log("osc: listening on %s", o->where);
    return o;
}

void osc_stats(Osc *o, OscStats *st) {
    pthread_mutex_lock(&o->mu);
    *st = o->st;
    pthread_mutex_unlock(&o->mu);
}

int osc_port(const Osc *o) { return o->port; }

void osc_stop(Osc *o) {
    if (!o) return;
    ssize_t w = write(o->wake[1], "x", 1);
    (void)w;
    pthread_join(o->thread, NULL);
    OscStats st;
    osc_stats(o, &st);
    char why[256] = "";
    size_t at = 0;
    for (int i = 0; i < OSC_IGNORE_COUNT && at < sizeof why; i++)
        if (st.why[i])
            at += (size_t)snprintf(why + at, sizeof why - at, "%s%ld %s", at ? ", " : " (", st.why[i], IGNORE_WHY[i]);
    if (at && at < sizeof why) snprintf(why + at, sizeof why - at, ")");
    tb_log("osc: %ld messages: %ld events, %ld ignored%s, %ld out of range (clamped), %ld dropped (queue full), "
           "%ld replies, %ld status bundles",
           st.received, st.queued, st.ignored, why, st.clamped, st.dropped, st.replies, st.status);
    close(o->fd);
    if (o->status_fd >= 0) close(o->status_fd);
    close(o->wake[0]);
    close(o->wake[1]);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

void osc_params_markdown(FILE *f) {
    fprintf(f, "| key | values | \"+\" / \"-\" step |\n|---|---|---|\n");
    for (int id = 0; id < PARAM_COUNT; id++) {
        const Param *r = param_live(id);
        char values[320], step[160], name[64];
        if (r->type == P_CHOICE) {
            size_t at = 0;
            for (int c = 0; param_choice_name(r, c, name, sizeof name) && at < sizeof values; c++)
                at += (size_t)snprintf(values + at, sizeof values - at, "%s%d = %s", c ? ", " : "", c, name);
        } else if (r->min == 0 && r->max == 1 && param_is_int(id)) {
            snprintf(values, sizeof values, "0 or 1");
        } else {
            snprintf(values, sizeof values, "%g to %g", r->min, r->max);
        }
        if (r->scale == SCALE_LOG) {
            int n = snprintf(step, sizeof step, "x%.3g", r->step);
            if (r->min <= 0)
                snprintf(step + n, sizeof step - (size_t)n, " (below %g: 0; from 0: %g)", r->floor, r->zero_up);
        } else {
            snprintf(step, sizeof step, "%g", r->step);
        }
        fprintf(f, "| %s | %s | %s |\n", r->key, values, step);
    }
}
