// replay_mux.h: the take's sound into a replay's video: the first audio stream
// of the take's video.mkv copied as it is (libavformat, no re-encoding) beside
// the video the replay rendered.
#pragma once
#include "common.h"

// 1 if the file has an audio stream (0: none, or it does not open).
int replay_has_audio(const char *path);
// out = the video stream of video + the first audio stream of audio_from,
// packets interleaved by time, both copied. 0, or -1 with err.
int replay_mux(const char *video, const char *audio_from, const char *out, TbErr *err);
