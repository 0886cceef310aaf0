// record_meta.h: a take's description, take.json, and its one-line summary.
// take.json is written when the take starts, rewritten each second while it
// runs (so a killed take has counts at most a second old) and at its end,
// each time atomically (a temporary file, then rename):
//
//   {"format": "tabula-take", "version": "0.1.0", "state": "recording" | "done",
//    "end_reason": null | "stopped" | "run ended" | "...disk...",
//    "started": ISO-8601, "backend", "architecture": {...}, "start": {frame,
//    step, t, live: {every live parameter}}, "video": {...}, "input": {...},
//    "files": {...}, "frames": {trained, written, repeated, dropped_encoder,
//    dropped_disk, input_written, input_dropped}, "events", "audio": {file,
//    stream, codec, device, rate, channels, samples, duration_s, captured,
//    overruns,
//    inserted, dropped, packets_dropped, max_error_ms} | null with "no_audio":
//    why, "bytes", "duration_s"}
#pragma once
#include "record_take.h"
#include "run.h"

// take.json's fixed members (no braces; ends without a comma), from the run
// as the take starts. version: the project's. Returns a malloc'ed string.
char *take_meta(const Run *r, const TakeSpec *sp, const char *layout_name, const char *codec_name,
                const char *version);
// Write DIR/take.json atomically. 0, or -1 with err.
int take_json_write(const char *dir, const char *meta, const TakeCounts *c, const AVRational fps, int done,
                    const char *reason, TbErr *err);
// The one line that ends a take: duration, frames written, dropped by cause,
// size on disk, why it ended, and its audio (or "no audio").
void take_summary(char *buf, size_t n, const char *dir, const TakeCounts *c, AVRational fps, const char *reason);
// The bytes of the files in dir (not below).
int64_t take_dir_bytes(const char *dir);
