// encode.h: one video stream, and the room's sound beside it when asked, into
// one Matroska file (libavcodec + libavformat),
// written as it goes so that a killed process leaves a file that plays up to
// its last second: the header goes out at once, clusters close every second,
// and every packet is pushed to the kernel as soon as it is muxed (the take's
// writer also syncs the files to the disk each second, for power cuts).
//
// Two halves for two threads (record_take.c): the encoding half turns RGB8
// frames into packets (mkv_encode, mkv_repeat, mkv_drain), the file half
// writes them (mkv_write, mkv_close). They share nothing but the file's
// fixed parameters, so each may run on its own thread. The audio stream's
// encoding half (mkv_audio, mkv_audio_drain) is a third, for a third thread.
//
// Audio is FLAC (libavcodec's own encoder, 16-bit): lossless, cheap (well
// under 1 % of a core for 48 kHz stereo, bench/RESULTS.md), no encoder delay
// or priming samples (AAC and Opus start with some, which a player trims
// only if told: the sound would start late), and Matroska carries it.
// Its time stamps are its sample count (1/rate); audio_sync.h puts the
// samples where the picture's clock says.
#pragma once
#include <stdint.h>

#include <libavcodec/avcodec.h>

#include "common.h"

typedef enum { MKV_H264 = 0, MKV_FFV1 } MkvCodec;

typedef struct {
    int w, h;             // frame size (even for H.264's 4:2:0)
    AVRational time_base; // units of the pts given to mkv_encode
    AVRational rate;      // the nominal frame rate (written to the header)
    MkvCodec codec;       // H.264 (libx264, 4:2:0 BT.709) or FFV1 (lossless RGB)
    int crf;              // H.264 quality
    const char *preset;   // H.264 speed: ultrafast .. medium
    int gop;              // H.264: a keyframe at least every gop frames
    int threads;          // encoder threads (0 = the codec's choice)
} MkvOpts;

// A second stream: the room's sound, FLAC.
typedef struct {
    int rate;      // samples per second
    int channels;  // 1 or 2
} MkvAudio;

typedef struct MkvFile MkvFile;

// Open the encoder, create the file and write its header. NULL with err.
MkvFile *mkv_open(const char *path, const MkvOpts *o, TbErr *err);
// The same with an audio stream (stream 1) when a is not NULL.
MkvFile *mkv_open_av(const char *path, const MkvOpts *o, const MkvAudio *a, TbErr *err);

// ---- the encoding half (one thread)
// Receives each packet the encoder gives (it owns it: av_packet_free when
// done; AV_PKT_FLAG_KEY marks where decoding can start).
typedef void (*MkvEmit)(void *user, AVPacket *pkt);
// Encode one RGB8 frame (w*h*3, rows top first) at pts. 0, or -1 with err.
int mkv_encode(MkvFile *m, const uint8_t *rgb, int64_t pts, MkvEmit emit, void *user, TbErr *err);
// Encode the last frame again at pts (holds a constant frame rate). 0 if
// there is none yet.
int mkv_repeat(MkvFile *m, int64_t pts, MkvEmit emit, void *user, TbErr *err);
// The next frame is a keyframe (a packet was lost: decoding restarts there).
void mkv_want_key(MkvFile *m);
// End of the stream: what the encoder still holds.
int mkv_drain(MkvFile *m, MkvEmit emit, void *user, TbErr *err);

// ---- the audio's encoding half (one thread; files opened with a MkvAudio)
// n frames of interleaved int16 samples; they are the stream's next ones.
int mkv_audio(MkvFile *m, const int16_t *frames, int n, MkvEmit emit, void *user, TbErr *err);
// End of the audio: the last partial frame and what the encoder holds.
int mkv_audio_drain(MkvFile *m, MkvEmit emit, void *user, TbErr *err);
// Audio frames given so far (the next one's time stamp).
int64_t mkv_audio_frames(const MkvFile *m);

// ---- the file half (one thread)
// Write one packet from either encoding half (consumed in every case). 0, or -1
// with err (a full disk: EFBIG, ENOSPC).
int mkv_write(MkvFile *m, AVPacket *pkt, TbErr *err);
// Write the trailer (index, durations) and close; frees m (NULL: nothing).
// 0, or -1 with err (the file is then as a killed process would leave it).
int mkv_close(MkvFile *m, TbErr *err);
