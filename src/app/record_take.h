// record_take.h: one take's machinery (record.c drives it): its folder and
// files, two threads, the two bounded queues that feed them, and the counts.
//
//   loop thread --take_push--> frame queue (TAKE_SLOTS) --> encode thread
//     copies, or drops when full: "encoder overloaded"       composes the layout,
//                                                            encodes video + input
//   loop thread --take_line--> write queue <------------------ packets
//     (event lines,            bounded in items and bytes: a packet that does
//                              not fit is dropped, "disk too slow" (video then
//                              skips to the next keyframe, which it asks for)
//                                   |
//                                   v
//      take_metrics:           writer thread: every file of the take (video.mkv,
//      metrics lines)          input.mkv, events.jsonl, metrics.jsonl, take.json,
//                              config.ini, weights.safetensors); free space each second
//
//   PortAudio's thread --ring--> audio thread (live takes with a device):
//     audio.h                    places the samples on the picture's clock
//                                (audio_sync.h), encodes FLAC, packets into
//                                the write queue (full: dropped, counted)
//
// The loop thread never waits (wait = 0), except in headless takes (wait = 1),
// which keep every frame: there a full queue holds the producer instead.
// A write error or too little free space ends the take from the writer
// (take_failed); the files are closed as cleanly as the disk allows.
#pragma once
#include <stdint.h>

#include "encode.h"
#include "settings.h"
#include "trainer.h"

// Frames between the loop and the encoder: a quarter second at 30 fps (what
// the encoder's start-up and a hiccup take), fewer where frames are large.
#define TAKE_SLOTS 8
#define TAKE_SLOTS_BYTES (48 << 20)
#define TAKE_QUEUE_ITEMS 1024          // packets between the encoder and the disk
#define TAKE_QUEUE_BYTES (64 << 20)
#define TAKE_QUEUE_LINES 4096          // event lines waiting for the disk, beside them

// The starting weights: host copies made on the loop thread, written by the writer.
typedef struct {
    Model model;
    Hyper hyper;
    Transform tf;  // the input transform in force (recorded in the weights file)
    long step, opt_t0;
    uint64_t seed;
    float *params, *opt;  // n_params and 2 * n_params floats (owned)
} TakeWeights;

typedef struct {
    char dir[CFG_STR + 64];  // the take's folder (made, with its parents, if missing)
    int tw, th;              // training size: the frames handed in
    int ow, oh;              // video.mkv's size
    AVRational fps;          // video.mkv's constant rate (its pts unit is 1/fps)
    AVRational input_tb;     // input.mkv's pts unit
    MkvCodec codec;
    int crf;
    char preset[16];
    int wait;                // 1: a full queue holds the producer (headless), 0: drop
    long min_free_mb;
    double write_delay;      // seconds slept before each packet is written (a test hook)
    int queue_items;         // the write queue's bound (0: TAKE_QUEUE_ITEMS; tests make it small)
    char *meta;              // take.json's fixed members (record_meta.c; owned)
    char *config;            // config.ini's text (owned)
    TakeWeights w;           // owned
    int audio;               // 1: the room's sound into video.mkv, from audio_device
    char audio_device[CFG_STR];  // a part of the input device's name ("" = the default)
    char no_audio[200];      // audio 0: why, said once as the take starts ("" = say nothing)
} TakeSpec;

typedef struct {
    long frames;           // frames handed in (take_push)
    long written;          // video frames in video.mkv, repeated ones included
    long repeated;         // frames repeated to hold the rate
    long dropped_encoder;  // frame queue full: the frame is in neither file
    long dropped_disk;     // video frames lost to a full write queue
    long input_written, input_dropped;
    long events, events_dropped;
    int64_t bytes;         // the take's files on disk (updated each second and at the end)
    // The audio stream (audio_rate 0: none; audio_sync.h for the corrections).
    int audio_rate, audio_ch;
    char audio_device[256];    // its name, or why the take has none
    int64_t audio_samples;     // frames in video.mkv's audio stream
    int64_t audio_captured;    // frames the device delivered (its clock against the take's)
    int64_t audio_overruns;    // frames lost before the ring (it was full)
    int64_t audio_inserted, audio_dropped;  // frames added or removed to hold the clock
    long audio_packets_dropped;             // packets lost to a full write queue
    double audio_max_err;      // the largest gap met between sound and picture (s)
} TakeCounts;

typedef struct Take Take;

// Start the threads (the writer makes the folder and files). Takes the
// buffers of sp in every case. NULL with err if a thread cannot start.
Take *take_start(TakeSpec *sp, TbErr *err);
// Loop thread: one trained frame (copied; or dropped and counted): the frame
// that went into the ring, what the network was given (NULL: no transform in
// force) and the reconstruction. vpts: its frame number in video.mkv, or -1
// for input.mkv only (the rate has a frame at that time already); ipts: its
// time in input.mkv. layout, flip: the picture's (compose.h), which may
// change between frames.
void take_push(Take *t, const uint8_t *input, const uint8_t *net, const uint8_t *recon, int64_t vpts, int64_t ipts,
               int layout, int flip);
// Loop thread, live takes: video.mkv's time 0 is at monotonic time origin
// (it moves when a stall is cut), and a frame was handed at time now (the
// audio is written up to the picture, not beyond).
void take_clock(Take *t, double origin, double now);
// Loop thread: one events.jsonl line (copied; dropped and counted when
// TAKE_QUEUE_LINES wait already).
void take_line(Take *t, const char *line);
// Loop thread: one metrics.jsonl line (the same bound as event lines, shared).
void take_metrics(Take *t, const char *line);
// Ask the take to end (the threads finish what they hold, then close the
// files). Never waits. The first reason given is the one kept.
void take_stop(Take *t, const char *reason);
// 1 once the take ended by itself (a write error, a full disk).
int take_failed(Take *t);
// 1 once both threads are done (take_free will not wait).
int take_done(Take *t);
// Wait for the threads and free everything.
void take_free(Take *t);
void take_counts(Take *t, TakeCounts *c);
// The folder, and why the take ended ("" while it runs).
void take_info(Take *t, char *dir, size_t dn, char *reason, size_t rn);
