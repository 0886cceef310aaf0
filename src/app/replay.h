// replay.h: --replay TAKE --output FILE.mkv: a take (record.h) run again
// offline. The trainer starts from the take's weights, optimizer state, seed
// and random states with the live values it had, under the settings of its
// config.ini (flags given with --replay win: --size, --steps-per-frame,
// --layout, [record] codec, crf, size, ...); input.mkv's frames go in one by
// one, each control move of events.jsonl is applied before the frame it was
// applied before, through the run loop's own run_control; each frame is
// rendered as the take's video was (compose.h, encode.h), and the take's sound,
// if its video.mkv has any, is copied in. The losses are compared with the
// take's metrics.jsonl and the result logged: at the recorded settings on the
// CPU backend they are the same bits.
//
// Exact for takes recorded from a run's start (--record DIR, or a take started
// with the record action at frame 0). A take started later began with frames
// in the replay ring, snapshot slots and smoothing that the take does not
// hold: its replay starts with an empty ring and empty slots. A take recorded
// in the window ran on the wall clock: its glides, LFO and fades are replayed
// on the frame clock (frames / fps). The empty-room detector measures the
// recorded frames, which are after input smoothing.
#pragma once
#include "settings.h"

// The replay cli->replay asks for. An exit code: 0, or 2 with one message
// (a missing or incomplete take, a truncated input.mkv, an output that cannot
// be written, no --output).
int replay_main(const Settings *cli);
