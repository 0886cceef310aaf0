// audio_sync.h: the room's sound placed on the video's clock.
//
// video.mkv's picture runs on the monotonic clock (record.c: a frame's place
// is its time since the take's origin); its audio stream's time stamps are
// its sample count. The two clocks drift (a sound card's crystal is off by
// tens of ppm; JACK's dummy backend on a loaded machine by several percent)
// and samples get lost (overruns), so the sample count alone would slide away
// from the picture. Each chunk of input is placed by the clock instead:
//
//   off  = t_cb - latency - captured / rate   (the time of input frame 0)
//   lag  = (off - origin) * rate + in_pos - out
//
// lag is how many frames the output is short of where the clock puts the
// next input frame. off comes from callback times, which arrive late but
// never early, so it is the lowest value seen over the last 0.2 s. Then:
//   |lag| <= BAND (2 ms)   nothing (callback jitter);
//   |lag| <= HARD (15 ms)  up to 1 frame in 200 duplicated or skipped, spread
//                          over the chunk (a 0.5 % speed change: inaudible,
//                          and far above any sound card's drift);
//   |lag| >  HARD          at once: silence inserted before the input (lost
//                          samples, a device that opened after the first frame
//                          or fell behind; audio_sync_fill, no further than
//                          the picture so far), or input dropped (a cut stall).
// Pure arithmetic on what it is given: tests/app/test_audio.c drives it with
// simulated clocks.
#pragma once
#include <stdint.h>

#include "audio.h"

#define AUDIO_SYNC_BAND_S 0.002
#define AUDIO_SYNC_HARD_S 0.015
#define AUDIO_SYNC_WIN_S 0.1   // off's minimum over two such windows
#define AUDIO_SYNC_SETTLE_S 0.5  // max_err counts from this much output on (the start's silence)

typedef struct {
    int rate, ch;
    double latency;
    double off_min[2], win_t0;  // the window before and this one
    int have_off;
    int64_t in_pos, out;        // input frames consumed (lost ones included), output frames given
    int64_t inserted, dropped;  // frames added or removed to hold the clock
    double max_err;             // the largest |lag| left after a chunk (seconds), from SETTLE on
} AudioSync;

// Output frames (interleaved int16) for the encoder.
typedef void (*AudioPut)(void *user, const int16_t *frames, int n);

void audio_sync_init(AudioSync *s, int rate, int ch, double latency);
// A callback's clock: captured frames had come in at monotonic time t.
void audio_sync_clock(AudioSync *s, int64_t captured, double t);
// Frames that never reached the ring (overruns): they count as consumed.
void audio_sync_lost(AudioSync *s, int64_t n);
// The output's shortfall in frames against the clock (0 before any clock).
double audio_sync_lag(const AudioSync *s, double origin);
// Silence owed (a shortfall over HARD: lost or late input) given, up to limit
// output frames. 1 while some is still owed: read no input until the limit
// moves on (the input goes after the silence).
int audio_sync_fill(AudioSync *s, double origin, int64_t limit, AudioPut put, void *user);
// Pass n input frames on to put, corrected (after audio_sync_fill).
void audio_sync_chunk(AudioSync *s, const int16_t *in, int n, double origin, AudioPut put, void *user);
// Silence up to `to` output frames (the end of the picture).
void audio_sync_pad(AudioSync *s, int64_t to, AudioPut put, void *user);
