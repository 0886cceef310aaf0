// bench_app_audio.c: what a take's sound costs: FLAC encoding and writing
// (encode.c, as the take's audio thread and writer do it, here on one thread)
// plus the drift correction (audio_sync.c), per second of 48 kHz stereo, for
// silence (JACK's dummy backend), a tone, and noise (FLAC's worst case; the
// same in both channels, which FLAC codes once).
//   bench_app_audio [--seconds N]
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "audio_sync.h"
#include "encode.h"

typedef struct {
    MkvFile *m;
    TbErr err;
} Sink;

static void write_pkt(void *u, AVPacket *p) {
    Sink *s = u;
    if (mkv_write(s->m, p, &s->err)) fprintf(stderr, "%s\n", s->err.msg), exit(1);
}

static void put(void *u, const int16_t *f, int n) {
    Sink *s = u;
    if (mkv_audio(s->m, f, n, write_pkt, s, &s->err)) fprintf(stderr, "%s\n", s->err.msg), exit(1);
}

// kind 0 silence, 1 a 440 Hz tone, 2 white noise. CPU seconds per audio second, and bytes per second.
static double run(int kind, int seconds, double *bytes_per_s) {
    const int rate = 48000, chunk = 480;  // the audio thread's 10 ms
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench_audio_%d.mkv", (int)getpid());
    MkvOpts vo = {64, 64, {1, 30}, {30, 1}, MKV_H264, 20, "ultrafast", 30, 1};
    MkvAudio ao = {rate, 2};
    Sink s = {0};
    s.m = mkv_open_av(path, &vo, &ao, &s.err);
    if (!s.m) fprintf(stderr, "%s\n", s.err.msg), exit(1);
    static int16_t buf[480 * 2];
    uint32_t rng = 1;
    AudioSync sync;
    audio_sync_init(&sync, rate, 2, 0);
    double c0 = (double)clock() / CLOCKS_PER_SEC;
    for (long i = 0; i < (long)seconds * rate / chunk; i++) {
        for (int k = 0; k < chunk; k++) {
            long n = i * chunk + k;
            int16_t v = kind == 0 ? 0 : kind == 1 ? (int16_t)(8000 * sin(2 * M_PI * 440 * n / rate))
                                                  : (int16_t)((rng = rng * 1664525u + 1013904223u) >> 16);
            buf[2 * k] = buf[2 * k + 1] = v;
        }
        audio_sync_clock(&sync, (i + 1) * chunk, (double)(i + 1) * chunk / rate);
        audio_sync_chunk(&sync, buf, chunk, 0, put, &s);
    }
    if (mkv_audio_drain(s.m, write_pkt, &s, &s.err) || mkv_close(s.m, &s.err)) fprintf(stderr, "%s\n", s.err.msg), exit(1);
    double cpu = (double)clock() / CLOCKS_PER_SEC - c0;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *bytes_per_s = (double)ftell(f) / seconds;
    fclose(f);
    remove(path);
    return cpu / seconds;
}

int main(int argc, char **argv) {
    int seconds = 60;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--seconds") == 0) seconds = atoi(argv[i + 1]);
    av_log_set_level(AV_LOG_ERROR);
    static const char *names[] = {"silence", "440 Hz tone", "white noise"};
    printf("FLAC, 48 kHz stereo 16-bit, %d s each, one thread\n", seconds);
    printf("%-12s %14s %12s\n", "signal", "ms CPU per s", "kB per s");
    for (int k = 0; k < 3; k++) {
        double b, c = run(k, seconds, &b);
        printf("%-12s %14.2f %12.1f\n", names[k], c * 1e3, b / 1e3);
    }
    return 0;
}
