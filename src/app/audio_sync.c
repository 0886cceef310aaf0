// audio_sync.c: drift correction between the sample count and the monotonic
// clock (see audio_sync.h).
#include "audio_sync.h"

#include <math.h>
#include <string.h>

void audio_sync_init(AudioSync *s, int rate, int ch, double latency) {
    memset(s, 0, sizeof *s);
    s->rate = rate, s->ch = ch, s->latency = latency;
}

void audio_sync_clock(AudioSync *s, int64_t captured, double t) {
    double off = t - s->latency - (double)captured / s->rate;
    if (!s->have_off) {
        s->off_min[0] = s->off_min[1] = off, s->win_t0 = t, s->have_off = 1;
        return;
    }
    if (t - s->win_t0 >= AUDIO_SYNC_WIN_S) {  // a new window: the one before is kept
        s->off_min[0] = s->off_min[1], s->off_min[1] = off, s->win_t0 = t;
    } else if (off < s->off_min[1]) {
        s->off_min[1] = off;
    }
}

void audio_sync_lost(AudioSync *s, int64_t n) { s->in_pos += n; }

double audio_sync_lag(const AudioSync *s, double origin) {
    if (!s->have_off) return 0;
    double off = s->off_min[0] < s->off_min[1] ? s->off_min[0] : s->off_min[1];
    return (off - origin) * s->rate + (double)(s->in_pos - s->out);
}

static void silence(AudioSync *s, int64_t n, AudioPut put, void *user) {
    static const int16_t zero[1024 * AUDIO_MAX_CH];
    for (int64_t k; n > 0; n -= k) {
        k = n < 1024 ? n : 1024;
        put(user, zero, (int)k);
        s->out += k;
    }
}

// n frames with k frames duplicated (ins) or skipped, spread evenly.
static void spread(AudioSync *s, const int16_t *in, int n, int k, int ins, AudioPut put, void *user) {
    int prev = 0;
    for (int j = 1; j <= k + 1; j++) {
        int b = j <= k ? (int)((int64_t)j * n / (k + 1)) : n;
        if (b > prev) put(user, in + (size_t)prev * s->ch, b - prev), s->out += b - prev;
        if (j > k) break;
        if (ins && b > 0) put(user, in + (size_t)(b - 1) * s->ch, 1), s->out++, s->inserted++;
        else if (!ins && b < n) b++, s->dropped++;
        prev = b;
    }
    s->in_pos += n;
}

int audio_sync_fill(AudioSync *s, double origin, int64_t limit, AudioPut put, void *user) {
    double lag = audio_sync_lag(s, origin);
    if (lag <= AUDIO_SYNC_HARD_S * s->rate) return 0;
    int64_t k = llround(lag), room = limit - s->out;
    if (k > room) k = room > 0 ? room : 0;
    silence(s, k, put, user);
    s->inserted += k;
    return audio_sync_lag(s, origin) > AUDIO_SYNC_HARD_S * s->rate;
}

void audio_sync_chunk(AudioSync *s, const int16_t *in, int n, double origin, AudioPut put, void *user) {
    double lag = audio_sync_lag(s, origin), band = AUDIO_SYNC_BAND_S * s->rate, hard = AUDIO_SYNC_HARD_S * s->rate;
    if (lag > hard) {  // lost or late input: silence where it belongs (audio_sync_fill does it within a limit)
        int64_t k = llround(lag);
        silence(s, k, put, user);
        s->inserted += k;
    } else if (lag < -hard) {  // early input (before the origin, a cut stall): dropped
        int d = -lag < n ? (int)llround(-lag) : n;
        s->in_pos += d, s->dropped += d, in += (size_t)d * s->ch, n -= d;
    }
    if (n <= 0) return;
    lag = audio_sync_lag(s, origin);
    int k = 0, most = n / 200 > 0 ? n / 200 : 1;
    if (fabs(lag) > band) k = (int)fmin(fabs(lag) - band + 1, most);
    spread(s, in, n, k, lag > 0, put, user);
    lag = fabs(audio_sync_lag(s, origin)) / s->rate;  // where this chunk's sound ended up
    if (s->out >= AUDIO_SYNC_SETTLE_S * s->rate && lag > s->max_err) s->max_err = lag;
}

void audio_sync_pad(AudioSync *s, int64_t to, AudioPut put, void *user) {
    if (to > s->out) {
        s->inserted += to - s->out;
        silence(s, to - s->out, put, user);
    }
}
