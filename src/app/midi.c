// midi.c: the MIDI thread: controllers found and followed by name through the
// sequencer's announcements, their messages through their devices (midi_dev.c)
// onto the control queue, the run's view read back, learn. See midi.h.
#define _GNU_SOURCE
#include "midi.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifndef TABULA_MIDI_DIR
#define TABULA_MIDI_DIR "config/midi"
#endif

#define MIDI_MAX_CONN 16

typedef struct {
    int used;
    int client, port;          // where its messages come from
    int out_client, out_port;  // where its LEDs go (-1: nowhere)
    char name[160];            // "client:port" names: what devices and maps match
    char client_name[64];
    Midi *owner;
    MidiDev dev;
} MidiConn;

struct Midi {
    const MidiSeqIo *io;
    void *h;  // NULL: MIDI is off
    ControlQueue *q;
    char devices[CFG_STR];
    LiveParams start;
    MidiMapSet maps;
    MidiConn conn[MIDI_MAX_CONN];
    MidiLearn learn;
    pthread_mutex_t mu;  // conn and learn: the thread, the K key and the HUD
    pthread_t thread;
    int has_thread;
    atomic_int stop;
};

static Midi *g_running;  // for the K key (midi_learn_step)
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

// ---------------------------------------------------------------- connections

// Does this port name one of [midi] devices (any case), or, with none given,
// is it a hardware input?
static int wanted(const Midi *m, const MidiPortInfo *p, const char *name) {
    if (!(p->caps & MIDI_PORT_READ) || p->client == m->io->client_id(m->h) || p->client == 0) return 0;
    const char *s = m->devices;
    int any = 0;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t') s++;
        size_t len = strcspn(s, ",");
        char tok[CFG_STR];
        snprintf(tok, sizeof tok, "%.*s", (int)len, s);
        for (size_t k = strlen(tok); k > 0 && (tok[k - 1] == ' ' || tok[k - 1] == '\t'); k--) tok[k - 1] = 0;
        s += len;
        if (!tok[0]) continue;
        any = 1;
        if (strcasestr(name, tok)) return 1;
    }
    return !any && p->hardware;
}

static void send_led(void *ctx, const MidiMsg *msg) {
    MidiConn *c = ctx;
    if (c->out_client >= 0) c->owner->io->send(c->owner->h, c->out_client, c->out_port, msg);
}

static MidiConn *conn_of(Midi *m, int client, int port) {
    for (int i = 0; i < MIDI_MAX_CONN; i++)
        if (m->conn[i].used && m->conn[i].client == client && m->conn[i].port == port) return &m->conn[i];
    return NULL;
}

// Connect to port p if it is wanted and not connected yet.
static void consider(Midi *m, const MidiPortInfo *p, const MidiPortInfo *all, int nall) {
    char name[160];
    snprintf(name, sizeof name, "%s:%s", p->client_name, p->port_name);
    if (!wanted(m, p, name) || conn_of(m, p->client, p->port)) return;
    MidiConn *c = NULL;
    for (int i = 0; i < MIDI_MAX_CONN && !c; i++)
        if (!m->conn[i].used) c = &m->conn[i];
    if (!c) {
        tb_log("midi: %s: more than %d controllers, not connected", name, MIDI_MAX_CONN);
        return;
    }
    TbErr err;
    if (m->io->connect(m->h, p->client, p->port, &err)) {
        tb_log("midi: %s: %s", name, err.msg);
        return;
    }
    MidiMap *map = midi_maps_pick(&m->maps, name);
    if (!map) {
        tb_log("midi: %s: no mapping file", name);
        return;
    }
    memset(c, 0, sizeof *c);
    c->used = 1;
    c->owner = m;
    c->client = p->client;
    c->port = p->port;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->client_name, sizeof c->client_name, "%s", p->client_name);
    // LEDs go to this port if it takes events, else to one of its client's that does.
    c->out_client = c->out_port = -1;
    if (p->caps & MIDI_PORT_WRITE) c->out_client = p->client, c->out_port = p->port;
    for (int i = 0; i < nall && c->out_client < 0; i++)
        if (all[i].client == p->client && (all[i].caps & MIDI_PORT_WRITE)) c->out_client = all[i].client, c->out_port = all[i].port;
    // What is in force now: the run's view once it has one, else the settings.
    RunView v = control_view(m->q);
    midi_dev_init(&c->dev, map, &m->start, m->q, send_led, c);
    midi_dev_sync(&c->dev, &v);
    tb_log("midi: %s (%d:%d) connected, mapping %s (%d rows)", name, p->client, p->port, map->path, map->n);
    midi_dev_leds(&c->dev);
}

static void drop(Midi *m, MidiConn *c) {
    tb_log("midi: %s unplugged; it reconnects by name when it comes back", c->name);
    c->used = 0;
}

// ---------------------------------------------------------------- learn

static void learn_msg(Midi *m, char *msg, size_t n) {
    if (m->learn.target < 0) snprintf(msg, n, "MIDI learn off");
    else snprintf(msg, n, "MIDI learn %s: move a control (K: next target)", midi_learn_name(m->learn.target));
}

static void learn_arm_locked(Midi *m, int t, char *msg, size_t n) {
    midi_learn_arm(&m->learn, t);
    learn_msg(m, msg, n);
    tb_log("%s", msg);
}

static void learn_step_locked(Midi *m, int dir, char *msg, size_t n) {
    int count = midi_learn_count(), t = m->learn.target;
    // -1 (off), 0 .. count-1, then off again.
    t = (t + 1 + dir + count + 1) % (count + 1) - 1;
    learn_arm_locked(m, t, msg, n);
}

// Bind what learn found on controller c and write it to its file.
static void learned(Midi *m, MidiConn *c) {
    MidiBinding b = m->learn.found;
    midi_learn_arm(&m->learn, -1);
    MidiMap *old = c->dev.map;
    TbErr err;
    MidiMap *nm = midi_maps_learn(&m->maps, old, c->name, c->client_name, &b, &err);
    char row[256];
    midi_binding_format(&b, row, sizeof row);
    if (!nm) {
        tb_log("midi: learn %s: %s; the mapping in use is kept", row, err.msg);
        return;
    }
    int still = 0;
    for (int i = 0; i < m->maps.n; i++) still |= m->maps.m[i] == old;
    for (int i = 0; i < MIDI_MAX_CONN; i++) {
        MidiConn *o = &m->conn[i];
        if (o->used && (o == c || (o->dev.map == old && !still))) midi_dev_set_map(&o->dev, nm);
    }
    if (!still) free(old);
    tb_log("midi: learned %s (%s)", row, nm->path);
}

static void handle_result(Midi *m, MidiConn *c, MidiDevResult r) {
    char msg[256];
    switch (r) {
    case MD_LEARN_NEXT: learn_step_locked(m, +1, msg, sizeof msg); break;
    case MD_LEARN_PREV: learn_step_locked(m, -1, msg, sizeof msg); break;
    case MD_LEARN_OFF: learn_arm_locked(m, -1, msg, sizeof msg); break;
    case MD_LEARNED: learned(m, c); break;
    default: break;
    }
}

// ---------------------------------------------------------------- the turn

static void announce(Midi *m, const MidiSeqEvent *e) {
    if (e->type == MSE_PORT_START) {
        MidiPortInfo p, all[64];
        if (m->io->port_info(m->h, e->client, e->port, &p)) return;
        int n = m->io->ports(m->h, all, 64);
        consider(m, &p, all, n);
    } else {
        for (int i = 0; i < MIDI_MAX_CONN; i++) {
            MidiConn *c = &m->conn[i];
            if (c->used && c->client == e->client && (e->type == MSE_CLIENT_EXIT || c->port == e->port)) drop(m, c);
        }
    }
}

int midi_poll(Midi *m, int timeout_ms) {
    if (!m || !m->h) return -1;
    MidiSeqEvent ev[64];
    TbErr err;
    int n = m->io->read(m->h, ev, 64, timeout_ms, &err);
    if (n < 0) {
        tb_log("%s: MIDI stops, tabula goes on", err.msg);
        return -1;
    }
    pthread_mutex_lock(&m->mu);
    double now = m->io->now();
    for (int i = 0; i < n; i++) {
        if (ev[i].type != MSE_MIDI) {
            announce(m, &ev[i]);
            continue;
        }
        MidiConn *c = conn_of(m, ev[i].client, ev[i].port);
        if (c) handle_result(m, c, midi_dev_input(&c->dev, &ev[i].msg, now, &m->learn));
    }
    RunView v = control_view(m->q);
    for (int i = 0; i < MIDI_MAX_CONN; i++) {
        MidiConn *c = &m->conn[i];
        if (!c->used) continue;
        handle_result(m, c, midi_dev_tick(&c->dev, now, &m->learn));
        midi_dev_sync(&c->dev, &v);
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static void *thread_main(void *arg) {
    Midi *m = arg;
    while (!atomic_load(&m->stop))
        if (midi_poll(m, 50) < 0) break;
    return NULL;
}

// ---------------------------------------------------------------- start, stop

Midi *midi_start_io(const Settings *s, ControlQueue *q, const MidiSeqIo *io, int thread, TbErr *err) {
    Midi *m = tb_calloc(1, sizeof *m);
    m->io = io;
    m->q = q;
    snprintf(m->devices, sizeof m->devices, "%s", s->midi_devices);
    live_params_from_settings(&m->start, s);
    midi_learn_arm(&m->learn, -1);
    pthread_mutex_init(&m->mu, NULL);
    if (!s->midi_enable) return m;
    // Every mapping file first: a bad one stops tabula before the show.
    const char *dir = s->midi_maps[0] ? s->midi_maps : TABULA_MIDI_DIR;
    struct stat st;
    if (!s->midi_maps[0] && stat(dir, &st) != 0) {
        tb_log("midi: no mapping folder %s: controllers start unmapped (learn makes their files)", dir);
        snprintf(m->maps.dir, sizeof m->maps.dir, "%s", dir);
    } else if (midi_maps_load(&m->maps, dir, err)) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    TbErr e2;
    m->h = io->open("tabula", &e2);
    if (!m->h) {
        tb_log("midi: no ALSA sequencer (%s): running without MIDI", e2.msg);
        return m;
    }
    MidiPortInfo all[64];
    int np = io->ports(m->h, all, 64);
    for (int i = 0; i < np; i++) consider(m, &all[i], all, np);
    if (np >= 0) {
        int k = 0;
        for (int i = 0; i < MIDI_MAX_CONN; i++) k += m->conn[i].used;
        if (!k)
            tb_log("midi: sequencer client %d \"tabula\" waiting for %s", io->client_id(m->h),
                   m->devices[0] ? m->devices : "a hardware controller");
    }
    if (thread) {
        if (pthread_create(&m->thread, NULL, thread_main, m) == 0) m->has_thread = 1;
        else tb_log("midi: no thread: running without MIDI");
    }
    pthread_mutex_lock(&g_mu);
    g_running = m;
    pthread_mutex_unlock(&g_mu);
    return m;
}

Midi *midi_start(const Settings *s, ControlQueue *q, TbErr *err) {
    return midi_start_io(s, q, &midi_seq_alsa, 1, err);
}

void midi_stop(Midi *m) {
    if (!m) return;
    pthread_mutex_lock(&g_mu);
    if (g_running == m) g_running = NULL;
    pthread_mutex_unlock(&g_mu);
    atomic_store(&m->stop, 1);
    if (m->has_thread) pthread_join(m->thread, NULL);
    if (m->h) m->io->close(m->h);
    midi_maps_free(&m->maps);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

// ---------------------------------------------------------------- for others

int midi_learn(Midi *m, int t, char *msg, size_t n) {
    if (!m || !m->h) {
        snprintf(msg, n, "MIDI is off: nothing to learn");
        return -1;
    }
    pthread_mutex_lock(&m->mu);
    learn_arm_locked(m, t, msg, n);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int midi_learn_step(int dir, char *msg, size_t n) {
    pthread_mutex_lock(&g_mu);
    Midi *m = g_running;
    int rc = -1;
    if (m && m->h) {
        pthread_mutex_lock(&m->mu);
        learn_step_locked(m, dir, msg, n);
        pthread_mutex_unlock(&m->mu);
        rc = 0;
    } else {
        snprintf(msg, n, "MIDI is off: nothing to learn");
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

int midi_ghosts(Midi *m, MidiGhost *out, int max) {
    if (!m) {  // the running instance (the HUD's view), kept alive while we read it
        pthread_mutex_lock(&g_mu);
        int k = g_running ? midi_ghosts(g_running, out, max) : 0;
        pthread_mutex_unlock(&g_mu);
        return k;
    }
    int k = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MIDI_MAX_CONN; i++) {
        MidiConn *c = &m->conn[i];
        if (!c->used) continue;
        for (int j = 0; j < c->dev.map->n && k < max; j++) {
            MidiGhost *g = &out[k];
            if (!midi_dev_ghost(&c->dev, j, &g->param, &g->picked, &g->hw, &g->hw_value)) continue;
            snprintf(g->device, sizeof g->device, "%s", c->name);
            k++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return k;
}

int midi_connected(Midi *m, char (*names)[160], int max) {
    if (!m) return 0;
    int k = 0;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MIDI_MAX_CONN && k < max; i++)
        if (m->conn[i].used) snprintf(names[k++], 160, "%s", m->conn[i].name);
    pthread_mutex_unlock(&m->mu);
    return k;
}
