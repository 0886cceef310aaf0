// midi_seq.c: the ALSA sequencer side of the MIDI seam (see midi_seq.h).
#define _DEFAULT_SOURCE
#include "midi_seq.h"

#include <alsa/asoundlib.h>
#include <errno.h>
#include <poll.h>
#include <string.h>

typedef struct {
    snd_seq_t *seq;
    int port;  // our input port
} AlsaSeq;

static void fill_cc(MidiSeqEvent *e, const snd_seq_event_t *ev, int ch, int cc, int v) {
    e->type = MSE_MIDI;
    e->client = ev->source.client;
    e->port = ev->source.port;
    e->msg = (MidiMsg){.type = MM_CC, .channel = ch & 15, .number = cc & 127, .value = v & 127};
}

int midi_seq_decode(const void *alsa_event, MidiSeqEvent *out) {
    const snd_seq_event_t *ev = alsa_event;
    memset(out, 0, sizeof *out);
    switch (ev->type) {
    case SND_SEQ_EVENT_CONTROLLER:
        fill_cc(out, ev, ev->data.control.channel, (int)ev->data.control.param, ev->data.control.value);
        return 1;
    case SND_SEQ_EVENT_CONTROL14: {
        int p = (int)ev->data.control.param, v = ev->data.control.value, ch = ev->data.control.channel;
        if (p >= 32) {  // a plain 7-bit controller sent this way
            fill_cc(out, ev, ch, p, v);
            return 1;
        }
        fill_cc(&out[0], ev, ch, p, v >> 7);
        fill_cc(&out[1], ev, ch, p + 32, v & 127);
        return 2;
    }
    case SND_SEQ_EVENT_NONREGPARAM:
    case SND_SEQ_EVENT_REGPARAM: {
        int nrpn = ev->type == SND_SEQ_EVENT_NONREGPARAM, ch = ev->data.control.channel;
        int p = (int)ev->data.control.param, v = ev->data.control.value;
        fill_cc(&out[0], ev, ch, nrpn ? 99 : 101, p >> 7);
        fill_cc(&out[1], ev, ch, nrpn ? 98 : 100, p & 127);
        fill_cc(&out[2], ev, ch, 6, v >> 7);
        fill_cc(&out[3], ev, ch, 38, v & 127);
        return 4;
    }
    case SND_SEQ_EVENT_NOTEON:
    case SND_SEQ_EVENT_NOTEOFF:
        out->type = MSE_MIDI;
        out->client = ev->source.client;
        out->port = ev->source.port;
        out->msg = (MidiMsg){.type = ev->type == SND_SEQ_EVENT_NOTEON && ev->data.note.velocity ? MM_NOTEON : MM_NOTEOFF,
                             .channel = ev->data.note.channel & 15,
                             .number = ev->data.note.note & 127,
                             .value = ev->data.note.velocity & 127};
        return 1;
    case SND_SEQ_EVENT_PORT_START:
    case SND_SEQ_EVENT_PORT_EXIT:
        out->type = ev->type == SND_SEQ_EVENT_PORT_START ? MSE_PORT_START : MSE_PORT_EXIT;
        out->client = ev->data.addr.client;
        out->port = ev->data.addr.port;
        return 1;
    case SND_SEQ_EVENT_CLIENT_EXIT:
        out->type = MSE_CLIENT_EXIT;
        out->client = ev->data.addr.client;
        out->port = -1;
        return 1;
    }
    return 0;
}

// alsa-lib prints its own line when the open fails; ours says it all.
static void alsa_quiet(const char *file, int line, const char *function, int err, const char *fmt, ...) {}

static void *alsa_open(const char *name, TbErr *err) {
    snd_seq_t *seq;
    snd_lib_error_set_handler(alsa_quiet);
    int rc = snd_seq_open(&seq, "default", SND_SEQ_OPEN_DUPLEX, SND_SEQ_NONBLOCK);
    snd_lib_error_set_handler(NULL);
    if (rc < 0) {
        tb_fail(err, "snd_seq_open: %s", snd_strerror(rc));
        return NULL;
    }
    snd_seq_set_client_name(seq, name);
    // One input port; READ without SUBS_READ only lets it be the source of
    // the LED messages we send straight to a controller.
    int port = snd_seq_create_simple_port(seq, "control in",
                                          SND_SEQ_PORT_CAP_WRITE | SND_SEQ_PORT_CAP_SUBS_WRITE | SND_SEQ_PORT_CAP_READ,
                                          SND_SEQ_PORT_TYPE_MIDI_GENERIC | SND_SEQ_PORT_TYPE_APPLICATION);
    if (port < 0) {
        tb_fail(err, "snd_seq_create_simple_port: %s", snd_strerror(port));
        snd_seq_close(seq);
        return NULL;
    }
    // Ports coming and going: System:Announce.
    rc = snd_seq_connect_from(seq, port, SND_SEQ_CLIENT_SYSTEM, SND_SEQ_PORT_SYSTEM_ANNOUNCE);
    if (rc < 0) {
        tb_fail(err, "subscribing to System:Announce: %s", snd_strerror(rc));
        snd_seq_close(seq);
        return NULL;
    }
    AlsaSeq *a = tb_calloc(1, sizeof *a);
    a->seq = seq;
    a->port = port;
    return a;
}

static void alsa_close(void *h) {
    AlsaSeq *a = h;
    if (!a) return;
    snd_seq_close(a->seq);
    free(a);
}

static int alsa_client_id(void *h) { return snd_seq_client_id(((AlsaSeq *)h)->seq); }

static void port_fill(MidiPortInfo *o, snd_seq_client_info_t *ci, snd_seq_port_info_t *pi) {
    memset(o, 0, sizeof *o);
    const snd_seq_addr_t *ad = snd_seq_port_info_get_addr(pi);
    o->client = ad->client;
    o->port = ad->port;
    snprintf(o->client_name, sizeof o->client_name, "%s", snd_seq_client_info_get_name(ci));
    snprintf(o->port_name, sizeof o->port_name, "%s", snd_seq_port_info_get_name(pi));
    unsigned caps = snd_seq_port_info_get_capability(pi), type = snd_seq_port_info_get_type(pi);
    if ((caps & (SND_SEQ_PORT_CAP_READ | SND_SEQ_PORT_CAP_SUBS_READ)) == (SND_SEQ_PORT_CAP_READ | SND_SEQ_PORT_CAP_SUBS_READ))
        o->caps |= MIDI_PORT_READ;
    if ((caps & (SND_SEQ_PORT_CAP_WRITE | SND_SEQ_PORT_CAP_SUBS_WRITE)) == (SND_SEQ_PORT_CAP_WRITE | SND_SEQ_PORT_CAP_SUBS_WRITE))
        o->caps |= MIDI_PORT_WRITE;
    o->hardware = (type & SND_SEQ_PORT_TYPE_HARDWARE) && o->client != SND_SEQ_CLIENT_SYSTEM &&
                  strncmp(o->client_name, "Midi Through", 12) != 0;
}

static int alsa_ports(void *h, MidiPortInfo *out, int max) {
    AlsaSeq *a = h;
    snd_seq_client_info_t *ci;
    snd_seq_port_info_t *pi;
    snd_seq_client_info_alloca(&ci);
    snd_seq_port_info_alloca(&pi);
    int n = 0;
    snd_seq_client_info_set_client(ci, -1);
    while (n < max && snd_seq_query_next_client(a->seq, ci) >= 0) {
        snd_seq_port_info_set_client(pi, snd_seq_client_info_get_client(ci));
        snd_seq_port_info_set_port(pi, -1);
        while (n < max && snd_seq_query_next_port(a->seq, pi) >= 0) port_fill(&out[n++], ci, pi);
    }
    return n;
}

static int alsa_port_info(void *h, int client, int port, MidiPortInfo *out) {
    AlsaSeq *a = h;
    snd_seq_client_info_t *ci;
    snd_seq_port_info_t *pi;
    snd_seq_client_info_alloca(&ci);
    snd_seq_port_info_alloca(&pi);
    if (snd_seq_get_any_client_info(a->seq, client, ci) < 0) return -1;
    if (snd_seq_get_any_port_info(a->seq, client, port, pi) < 0) return -1;
    port_fill(out, ci, pi);
    return 0;
}

static int alsa_connect(void *h, int client, int port, TbErr *err) {
    AlsaSeq *a = h;
    int rc = snd_seq_connect_from(a->seq, a->port, client, port);
    if (rc < 0 && rc != -EBUSY) return tb_fail(err, "snd_seq_connect_from %d:%d: %s", client, port, snd_strerror(rc));
    return 0;
}

static int alsa_read(void *h, MidiSeqEvent *out, int max, int timeout_ms, TbErr *err) {
    AlsaSeq *a = h;
    int n = 0;
    for (int waited = 0; n < max;) {
        snd_seq_event_t *ev = NULL;
        int rc = snd_seq_event_input(a->seq, &ev);
        if (rc == -EAGAIN) {
            if (n || waited) break;
            // Nothing yet: wait for the first.
            struct pollfd pfd[4];
            int np = snd_seq_poll_descriptors(a->seq, pfd, 4, POLLIN);
            if (poll(pfd, (nfds_t)np, timeout_ms) < 0 && errno != EINTR)
                return tb_fail(err, "midi: poll: %s", strerror(errno));
            waited = 1;
            continue;
        }
        if (rc == -ENOSPC) continue;  // the input overran: some events were lost, go on
        if (rc < 0) return tb_fail(err, "midi: snd_seq_event_input: %s", snd_strerror(rc));
        if (ev && max - n >= 4) n += midi_seq_decode(ev, &out[n]);
        else if (ev) {
            MidiSeqEvent tmp[4];
            int k = midi_seq_decode(ev, tmp);
            for (int i = 0; i < k && n < max; i++) out[n++] = tmp[i];
        }
    }
    return n;
}

static int alsa_send(void *h, int client, int port, const MidiMsg *m) {
    AlsaSeq *a = h;
    snd_seq_event_t ev;
    snd_seq_ev_clear(&ev);
    snd_seq_ev_set_source(&ev, a->port);
    snd_seq_ev_set_dest(&ev, client, port);
    snd_seq_ev_set_direct(&ev);
    if (m->type == MM_CC) snd_seq_ev_set_controller(&ev, m->channel, m->number, m->value);
    else if (m->type == MM_NOTEON) snd_seq_ev_set_noteon(&ev, m->channel, m->number, m->value);
    else snd_seq_ev_set_noteoff(&ev, m->channel, m->number, m->value);
    return snd_seq_event_output_direct(a->seq, &ev) < 0 ? -1 : 0;
}

const MidiSeqIo midi_seq_alsa = {
    .open = alsa_open,
    .close = alsa_close,
    .client_id = alsa_client_id,
    .ports = alsa_ports,
    .port_info = alsa_port_info,
    .connect = alsa_connect,
    .read = alsa_read,
    .send = alsa_send,
    .now = tb_now,
};
