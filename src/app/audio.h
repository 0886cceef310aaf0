// audio.h: the room's sound from one PortAudio input device, for a take.
//
// The device opens when a take starts, on the take's writer thread, and
// closes with the take: nothing is held between takes (another program may
// use the device; a device or JACK server that appears later is found by the
// next take; one that went away is not a dead stream held for weeks), and
// the few tens of ms PortAudio takes to start never touch the loop thread.
//
// PortAudio's callback copies each buffer into a lock-free ring (one writer,
// the callback; one reader, the take's audio thread) and notes the monotonic
// time and the running sample count, so the reader can place the samples on
// the video's clock (audio_sync.h). It never blocks: what finds the ring full
// is lost and counted (overruns).
#pragma once
#include <stddef.h>
#include <stdint.h>

#define AUDIO_MAX_CH 2       // the first two inputs of a larger device
#define AUDIO_RING_S 8       // seconds the ring holds (a take holds up to 6 s back)

typedef struct AudioIn AudioIn;

typedef struct {
    char name[256];  // the device's name (host API in brackets)
    int rate;        // samples per second (the device's default rate)
    int channels;    // 1 or 2
    double latency;  // seconds from the sound to the callback (PortAudio's input latency)
} AudioInfo;

// Where the device stands (any thread). t_cb: tb_now() at the newest callback,
// when `captured` samples had come in; lost: samples that found the ring full.
typedef struct {
    int64_t captured, lost;
    double t_cb;
} AudioClock;

// Open and start the input device whose name contains `want` (case does not
// matter; "" = the default input). NULL with the reason in why (no device,
// none matches, PortAudio failed): the take then has no audio.
AudioIn *audio_open(const char *want, AudioInfo *info, char *why, size_t n);
// Up to max frames (interleaved int16) from the ring; the number read. It
// stops at a gap (an overrun): once there it reads none and sets *gap to the
// frames lost (0 otherwise), so the reader puts silence where they were.
int audio_read(AudioIn *a, int16_t *dst, int max, int64_t *gap);
// Frames waiting in the ring.
int audio_avail(AudioIn *a);
void audio_clock(AudioIn *a, AudioClock *c);
void audio_close(AudioIn *a);
// One line per input device ("NAME (API): N ch, R Hz"), the default marked,
// for --check. The number of input devices.
int audio_list(void (*line)(void *user, const char *text), void *user);
