// record.h: takes. A take starts and stops with the record action (a key,
// MIDI, OSC /tabula/action/record) into [record] dir/YYYYmmdd-HHMMSS/, or runs
// from the start with --record DIR (into DIR). A take folder holds:
//   video.mkv            the picture in the layout to record ([record] layout,
//                        size, fps, codec: H.264 CRF or FFV1), constant rate; in live takes
//                        the room's sound beside it ([record] audio_device:
//                        FLAC from a PortAudio input, placed on the picture's
//                        clock: audio.h, audio_sync.h), or none, said once
//   input.mkv            every frame as it went into the replay ring (before a
//                        world's transform; FFV1, lossless; time stamps in ms
//                        since the take began), for replay
//   events.jsonl         every parameter change and action, as --events writes them
//   metrics.jsonl        the per-frame metrics of the take's frames, as --metrics
//                        writes them (the run's metrics stream is teed while the
//                        take runs: record_tee.h; a take stopped by hand misses
//                        the last few frames, not yet read back)
//   take.json            version, architecture, backend, start, counts, drops, audio
//   config.ini           the settings the run started with
//   weights.safetensors  the network (and optimizer state) as the take began
//
// Replay (replay.h) re-runs a take from these: input.mkv's frames, the
// weights, config.ini, and from take.json's "start" the frame and step, the
// seed, the trainer's and the modulator's random states and every live value;
// events.jsonl's moves at their frames; metrics.jsonl's losses to compare. Event
// values, live values and losses are written exactly (tb_fmt_float) for that.
//
// The recorder is the run loop's output hook (run.h: RunOutput): on the loop
// thread it only copies a frame into a bounded queue, or drops and counts it
// ("encoder overloaded"); encoding and every file write happen on the take's
// own threads (record_take.h). Headless takes keep every frame instead (the
// loop waits for room: no pacing to keep there). Live takes hold a constant
// rate on the monotonic clock (a frame repeated where training was slower,
// skipped where it was faster; a stall over 5 s, such as closed hours, is cut
// from the video instead); headless ones give each frame 1/fps.
#pragma once
#include "run.h"
#include "settings.h"

typedef struct Recorder Recorder;

// What the HUD shows (any thread).
typedef struct {
    int on;           // a take is running
    double secs;      // its video so far
    long written, dropped_encoder, dropped_disk;
    char dir[CFG_STR + 64];
    char msg[600];    // the newest line for the operator (a take began, ended and why)
    unsigned msg_seq; // changes with each new msg
} RecordStatus;

Recorder *recorder_new(const Settings *s);
// Ends a take still running (waiting for its files).
void recorder_free(Recorder *rec);
// The hook to attach (run_attach); rec must outlive the run.
RunOutput recorder_output(Recorder *rec);
// The window's layout (0 mirror, 1 side, 2 triptych) and flip, followed by
// [record] layout = display (any thread; headless runs use [display]).
void recorder_view(Recorder *rec, int layout, int flip);
void recorder_status(Recorder *rec, RecordStatus *st);
