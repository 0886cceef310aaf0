// record_tee.h: a stream that passes what is written on to another (the
// user's --metrics file, or none) and hands each complete line to a function
// as well: how a take gets the per-frame metrics lines (metrics.jsonl) and a
// replay reads its own, without a second writer in the engine.
#pragma once
#include <stdio.h>

// Called with each line, without its newline (on the writing thread).
typedef void (*TeeLine)(void *user, const char *line);

// A FILE* for writing (glibc's fopencookie). Each line goes to fn first, then
// to inner (may be NULL), which is flushed after each write: an error there
// is this stream's error. Closing it leaves inner open. NULL if none can be made.
FILE *tee_open(FILE *inner, TeeLine fn, void *user);
