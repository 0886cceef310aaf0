// replay_read.h: a take's input.mkv read back frame by frame, in order, once
// (the file source, avfile.c, loops and paces: a replay needs neither): FFV1
// decoded with libavcodec, its packed RGB turned into RGB8 by a plain loop, so
// the frames are the bytes that went into the replay ring.
#pragma once
#include <stdint.h>

#include "common.h"

typedef struct ReplayIn ReplayIn;

// Open the file and count its frames without decoding them (*frames; a
// truncated file has fewer than take.json says). NULL with err.
ReplayIn *replay_in_open(const char *path, long *frames, TbErr *err);
// Its frame size.
void replay_in_size(const ReplayIn *in, int *w, int *h);
// The next frame into rgb (w*h*3): 1, 0 at the end, -1 with err (a damaged frame).
int replay_in_read(ReplayIn *in, uint8_t *rgb, TbErr *err);
void replay_in_close(ReplayIn *in);
