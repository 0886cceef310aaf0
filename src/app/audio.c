// audio.c: a PortAudio input stream into a lock-free ring (see audio.h).
#define _DEFAULT_SOURCE
#include "audio.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <alsa/asoundlib.h>
#include <jack/jack.h>
#include <portaudio.h>

#include "common.h"

struct AudioIn {
    PaStream *st;
    int ch;
    int64_t cap;            // ring size in frames
    int16_t *ring;
    atomic_llong w, r;      // frames written (callback) and read (reader), ever
    atomic_llong captured, lost;
    atomic_llong gap_at, gap_len;  // frames lost after frame gap_at (-1: none waiting for the reader)
    atomic_uint seq;        // odd while the callback updates captured and t_cb
    _Atomic double t_cb;
};

// Runs on PortAudio's thread: copies, counts, never blocks or allocates.
static int on_input(const void *in, void *out, unsigned long n, const PaStreamCallbackTimeInfo *ti,
                    PaStreamCallbackFlags flags, void *user) {
    AudioIn *a = user;
    (void)out, (void)ti, (void)flags;
    int64_t w = atomic_load_explicit(&a->w, memory_order_relaxed);
    int64_t r = atomic_load_explicit(&a->r, memory_order_acquire);
    int64_t room = a->cap - (w - r), k = (int64_t)n < room ? (int64_t)n : room;
    const int16_t *src = in;
    for (int64_t i = 0; i < k && src; i++) {  // in is NULL when the host had nothing (silence)
        int64_t at = (w + i) % a->cap;
        memcpy(a->ring + at * a->ch, src + i * a->ch, (size_t)a->ch * sizeof(int16_t));
    }
    if (!src) for (int64_t i = 0; i < k; i++) memset(a->ring + ((w + i) % a->cap) * a->ch, 0, (size_t)a->ch * 2);
    if (k < (int64_t)n) {  // the ring is full: the rest is lost, after what it holds
        long long none = -1;
        atomic_compare_exchange_strong(&a->gap_at, &none, (long long)(w + k));
        atomic_fetch_add(&a->gap_len, (long long)n - k);
    }
    atomic_store_explicit(&a->w, w + k, memory_order_release);
    double now = tb_now();
    atomic_fetch_add_explicit(&a->seq, 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&a->captured, (long long)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->lost, (long long)(n - (unsigned long)k), memory_order_relaxed);
    atomic_store_explicit(&a->t_cb, now, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->seq, 1, memory_order_acq_rel);
    return paContinue;
}

int audio_read(AudioIn *a, int16_t *dst, int max, int64_t *gap) {
    int64_t r = atomic_load_explicit(&a->r, memory_order_relaxed);
    int64_t w = atomic_load_explicit(&a->w, memory_order_acquire);
    int64_t g = atomic_load(&a->gap_at);
    *gap = 0;
    if (g >= 0 && g == r) {  // the reader is at the gap: hand its length over
        *gap = atomic_exchange(&a->gap_len, 0);
        atomic_store(&a->gap_at, -1);
        return 0;
    }
    if (g >= 0 && g < w) w = g;
    int n = (int)(w - r < max ? w - r : max);
    for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * a->ch, a->ring + ((r + i) % a->cap) * a->ch, (size_t)a->ch * 2);
    atomic_store_explicit(&a->r, r + n, memory_order_release);
    return n;
}

int audio_avail(AudioIn *a) {
    return (int)(atomic_load_explicit(&a->w, memory_order_acquire) - atomic_load_explicit(&a->r, memory_order_relaxed));
}

void audio_clock(AudioIn *a, AudioClock *c) {
    unsigned s0, s1;
    do {
        s0 = atomic_load_explicit(&a->seq, memory_order_acquire);
        c->captured = atomic_load_explicit(&a->captured, memory_order_relaxed);
        c->t_cb = atomic_load_explicit(&a->t_cb, memory_order_relaxed);
        c->lost = atomic_load_explicit(&a->lost, memory_order_relaxed);
        s1 = atomic_load_explicit(&a->seq, memory_order_acquire);
    } while (s0 != s1 || (s0 & 1));
}

// alsa-lib and libjack print their own lines while PortAudio looks for
// devices (no sound card, no JACK server); what we say covers it.
static void alsa_quiet(const char *file, int line, const char *fn, int err, const char *fmt, ...) {
    (void)file, (void)line, (void)fn, (void)err, (void)fmt;
}
static void jack_quiet(const char *msg) { (void)msg; }

static int pa_start(void) {
    snd_lib_error_set_handler(alsa_quiet);
    jack_set_error_function(jack_quiet);
    jack_set_info_function(jack_quiet);
    return Pa_Initialize();
}

static int contains_nocase(const char *s, const char *want) {
    size_t n = strlen(want);
    for (; *s; s++)
        if (strncasecmp(s, want, n) == 0) return 1;
    return n == 0;
}

// The device index for want, or -1 with why.
static int find_device(const char *want, char *why, size_t n) {
    if (!want[0]) {
        int d = Pa_GetDefaultInputDevice();
        if (d < 0) snprintf(why, n, "no input device (PortAudio lists %d devices, none for input)", Pa_GetDeviceCount());
        return d;
    }
    for (int i = 0; i < Pa_GetDeviceCount(); i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (d && d->maxInputChannels > 0 && contains_nocase(d->name, want)) return i;
    }
    snprintf(why, n, "no input device's name contains \"%s\" ([record] audio_device; --check lists them)", want);
    return -1;
}

AudioIn *audio_open(const char *want, AudioInfo *info, char *why, size_t n) {
    memset(info, 0, sizeof *info);
    PaError e = pa_start();
    if (e != paNoError) {
        snprintf(why, n, "PortAudio does not start: %s", Pa_GetErrorText(e));
        Pa_Terminate();
        return NULL;
    }
    int dev = find_device(want, why, n);
    if (dev < 0) return Pa_Terminate(), NULL;
    const PaDeviceInfo *d = Pa_GetDeviceInfo(dev);
    AudioIn *a = tb_calloc(1, sizeof *a);
    a->ch = d->maxInputChannels < AUDIO_MAX_CH ? d->maxInputChannels : AUDIO_MAX_CH;
    info->rate = (int)(d->defaultSampleRate + 0.5);
    info->channels = a->ch;
    snprintf(info->name, sizeof info->name, "%s (%s)", d->name, Pa_GetHostApiInfo(d->hostApi)->name);
    a->cap = (int64_t)info->rate * AUDIO_RING_S;
    atomic_store(&a->gap_at, -1);
    a->ring = tb_malloc((size_t)a->cap * a->ch * sizeof(int16_t));
    PaStreamParameters p = {dev, a->ch, paInt16, d->defaultLowInputLatency, NULL};
    e = Pa_OpenStream(&a->st, &p, NULL, info->rate, paFramesPerBufferUnspecified, paNoFlag, on_input, a);
    if (e == paNoError) {
        const PaStreamInfo *si = Pa_GetStreamInfo(a->st);
        info->latency = si ? si->inputLatency : 0;
        e = Pa_StartStream(a->st);
    }
    if (e != paNoError) {
        snprintf(why, n, "%s does not open: %s", info->name, Pa_GetErrorText(e));
        if (a->st) Pa_CloseStream(a->st);
        free(a->ring);
        free(a);
        Pa_Terminate();
        return NULL;
    }
    return a;
}

void audio_close(AudioIn *a) {
    if (!a) return;
    Pa_StopStream(a->st);
    Pa_CloseStream(a->st);
    Pa_Terminate();
    free(a->ring);
    free(a);
}

int audio_list(void (*line)(void *user, const char *text), void *user) {
    char buf[400];
    PaError e = pa_start();
    if (e != paNoError) {
        snprintf(buf, sizeof buf, "PortAudio does not start: %s", Pa_GetErrorText(e));
        line(user, buf);
        Pa_Terminate();
        return 0;
    }
    int found = 0, def = Pa_GetDefaultInputDevice();
    for (int i = 0; i < Pa_GetDeviceCount(); i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (!d || d->maxInputChannels <= 0) continue;
        snprintf(buf, sizeof buf, "%s (%s): %d ch, %.0f Hz%s", d->name, Pa_GetHostApiInfo(d->hostApi)->name,
                 d->maxInputChannels, d->defaultSampleRate, i == def ? " (default)" : "");
        line(user, buf);
        found++;
    }
    Pa_Terminate();
    return found;
}
