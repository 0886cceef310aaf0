// bench_app_record.c: what recording costs. Two parts:
// 1. Encoding: per frame, composing the side layout from two 256x256 frames
//    of a real clip (compose.c) and encoding + writing it (encode.c) at
//    1280x720 and 1920x1080, for H.264 presets and FFV1; and input.mkv's
//    FFV1 frame at the training size. One thread, as the take's encode thread.
// 2. Training with and without a take, in the same run: the run loop as the
//    window's training thread drives it on the CPU (run_frame, run_output),
//    live (frames dropped, never waited for), blocks of frames alternating
//    off / on, steps per second and the take's drops.
//   bench_app_record [--clip PATH.y4m] [--frames N] [--size WxH] [--record-size WxH]
//                    [--preset P] [--no-encode 1]
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "app_sources.h"
#include "compose.h"
#include "encode.h"
#include "frame_fit.h"
#include "parse.h"
#include "record.h"
#include "run.h"
#include "source.h"

typedef struct {
    const char *clip, *preset;  // preset: the take's in the training part
    int frames;  // per encode measure, and per training block
    int no_encode;  // 1: the training part only
    int tw, th, rw, rh;
} Opts;

static Source *open_clip(const Opts *o) {
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", o->clip);
    TbErr err = {{0}};
    Source *s = source_open(spec, NULL, &err);
    if (!s) fprintf(stderr, "%s\n", err.msg), exit(2);
    return s;
}

// n frames of the clip at w x h (centre-fitted), and a "reconstruction" of
// each: the frame shifted by two pixels, so the error pane has content.
static uint8_t **clip_frames(const Opts *o, int n, int w, int h, uint8_t ***rec) {
    Source *s = open_clip(o);
    uint8_t *raw = tb_malloc((size_t)s->width * s->height * 3);
    uint8_t **f = tb_malloc(n * sizeof *f);
    *rec = tb_malloc(n * sizeof **rec);
    TbErr err;
    for (int i = 0; i < n; i++) {
        CHECK(s->read(s, raw, &err) == 1, "%s", err.msg);
        f[i] = tb_malloc((size_t)w * h * 3), (*rec)[i] = tb_malloc((size_t)w * h * 3);
        frame_fit(f[i], w, h, raw, s->width, s->height);
        memcpy((*rec)[i] + 6, f[i], (size_t)w * h * 3 - 6);
    }
    free(raw);
    source_close(s);
    return f;
}

static void write_packet(void *u, AVPacket *p) {
    TbErr err;
    CHECK(mkv_write(u, p, &err) == 0, "%s", err.msg);
}

// ms per frame: compose, then encode + write (one thread).
static void bench_encode(const Opts *o, const char *what, int ow, int oh, MkvCodec codec, const char *preset) {
    uint8_t **rec, **in = clip_frames(o, o->frames, 256, 256, &rec);
    ComposeOpts co = {COMPOSE_SIDE, 256, 256, ow, oh, 1, 4};
    TbErr err = {{0}};
    Composer *c = compose_new(&co, &err);
    CHECK(c, "%s", err.msg);
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench-record-%d.mkv", (int)getpid());
    MkvOpts mo = {ow, oh, {1, 30}, {30, 1}, codec, 20, preset, 30, 0};
    MkvFile *m = mkv_open(path, &mo, &err);
    CHECK(m, "%s", err.msg);
    uint8_t *pic = tb_malloc((size_t)ow * oh * 3);
    double t_comp = 0, t_enc = 0;
    for (int i = 0; i < o->frames; i++) {
        double t0 = tb_now();
        compose_frame(c, in[i], NULL, rec[i], pic);
        double t1 = tb_now();
        CHECK(mkv_encode(m, pic, i, write_packet, m, &err) == 0, "%s", err.msg);
        t_comp += t1 - t0, t_enc += tb_now() - t1;
    }
    double t0 = tb_now();
    CHECK(mkv_drain(m, write_packet, m, &err) == 0 && mkv_close(m, &err) == 0, "%s", err.msg);
    t_enc += tb_now() - t0;  // what the encoder held back is part of the cost
    printf("| %-10s | %dx%d | %-10s | %6.2f | %6.2f | %6.1f |\n", what, ow, oh, preset ? preset : "-",
           1e3 * t_comp / o->frames, 1e3 * t_enc / o->frames, o->frames / (t_comp + t_enc));
    unlink(path);
    compose_free(c);
    free(pic);
    for (int i = 0; i < o->frames; i++) free(in[i]), free(rec[i]);
    free(in), free(rec);
}

// input.mkv's frame: FFV1 at the training size.
static void bench_input(const Opts *o) {
    uint8_t **rec, **in = clip_frames(o, o->frames, o->tw, o->th, &rec);
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench-input-%d.mkv", (int)getpid());
    MkvOpts mo = {o->tw, o->th, {1, 1000}, {30, 1}, MKV_FFV1, 0, NULL, 1, 0};
    TbErr err = {{0}};
    MkvFile *m = mkv_open(path, &mo, &err);
    CHECK(m, "%s", err.msg);
    double t0 = tb_now();
    for (int i = 0; i < o->frames; i++) CHECK(mkv_encode(m, in[i], i * 33, write_packet, m, &err) == 0, "%s", err.msg);
    CHECK(mkv_drain(m, write_packet, m, &err) == 0 && mkv_close(m, &err) == 0, "%s", err.msg);
    double dt = tb_now() - t0;
    printf("| input.mkv  | %dx%d | -          |      - | %6.2f | %6.1f |\n", o->tw, o->th, 1e3 * dt / o->frames,
           o->frames / dt);
    unlink(path);
    for (int i = 0; i < o->frames; i++) free(in[i]), free(rec[i]);
    free(in), free(rec);
}

// One block of frames through the run loop (as train_thread.c on the CPU):
// steps per second, and the mean time of run_output (which hands a take its
// frame: the loop's own cost of recording) in *out_us.
static double train_block(Run *r, Source *src, uint8_t *raw, uint8_t *rec, int n, double *out_us) {
    TbErr err;
    long s0 = r->t.step;
    double t0 = tb_now(), t_out = 0;
    int i;
    for (i = 0; i < n; i++) {
        if (src->read(src, raw, &err) != 1) break;
        run_frame(r, raw, src->width, src->height);
        double t1 = tb_now();
        run_output(r, rec);
        t_out += tb_now() - t1;
    }
    *out_us = i ? 1e6 * t_out / i : 0;
    return (r->t.step - s0) / (tb_now() - t0);
}

static void bench_training(const Opts *o) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.width = o->tw, s.height = o->th;
    s.autosave_minutes = 0;
    snprintf(s.record_dir, sizeof s.record_dir, "/tmp/bench-takes-%d", (int)getpid());
    snprintf(s.record_size, sizeof s.record_size, "%dx%d", o->rw, o->rh);
    snprintf(s.record_preset, sizeof s.record_preset, "%s", o->preset);
    Recorder *rec = recorder_new(&s);
    Run r;
    TbErr err = {{0}};
    CHECK(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    RunOutput out = recorder_output(rec);
    run_attach(&r, &out);
    Source *src = open_clip(o);
    uint8_t *raw = tb_malloc((size_t)src->width * src->height * 3), *recbuf = tb_malloc((size_t)o->tw * o->th * 3);
    double sum[2] = {0, 0};
    char msg[600];
    double us;
    train_block(&r, src, raw, recbuf, o->frames / 4, &us);  // warm up
    for (int round = 0; round < 3; round++)
        for (int on = 0; on < 2; on++) {
            if (on) run_control(&r, &(ControlEvent){CMD_RECORD, -1, 0, SRC_KEY, 0}, msg, sizeof msg);
            double sps = train_block(&r, src, raw, recbuf, o->frames, &us);
            RecordStatus st;
            recorder_status(rec, &st);
            if (on) run_control(&r, &(ControlEvent){CMD_RECORD, -1, 0, SRC_KEY, 0}, msg, sizeof msg);
            printf("| %d | %-3s | %6.1f | %6.0f | %s |\n", round + 1, on ? "on" : "off", sps, us,
                   on ? (snprintf(msg, sizeof msg, "%ld written, dropped %ld encoder / %ld disk", st.written,
                                  st.dropped_encoder, st.dropped_disk), msg) : "");
            sum[on] += sps;
            for (int i = 0; i < 500 && on; i++) run_output_active(&r), usleep(10000);  // let its files close
        }
    printf("recording on / off: %.2f\n", sum[1] / sum[0]);
    run_close(&r);
    recorder_free(rec);
    source_close(src);
    free(raw), free(recbuf);
    snprintf(msg, sizeof msg, "rm -rf %s", s.record_dir);
    if (system(msg) != 0) fprintf(stderr, "could not remove %s\n", s.record_dir);
}

int main(int argc, char **argv) {
    Opts o = {.preset = "veryfast", .frames = 90, .tw = 128, .th = 128, .rw = 1280, .rh = 720};
    static char clip[1024];
    snprintf(clip, sizeof clip, "%s/hikers_forest_320x240.y4m", getenv("TABULA_DATA") ? getenv("TABULA_DATA") : "../shared/data");
    o.clip = clip;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--clip")) o.clip = argv[i + 1];
        else if (!strcmp(argv[i], "--frames")) o.frames = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) tb_parse_size(argv[i + 1], 16, 4096, &o.tw, &o.th);
        else if (!strcmp(argv[i], "--record-size")) tb_parse_size(argv[i + 1], 16, 7680, &o.rw, &o.rh);
        else if (!strcmp(argv[i], "--preset")) o.preset = argv[i + 1];
        else if (!strcmp(argv[i], "--no-encode")) o.no_encode = atoi(argv[i + 1]);
        else fprintf(stderr, "unknown option %s\n", argv[i]), exit(2);
    }
    app_register_sources();
    av_log_set_level(AV_LOG_ERROR);
    char load[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");  // a shared machine: say how busy it was
    if (lf && fgets(load, sizeof load, lf)) load[strcspn(load, "\n")] = 0;
    if (lf) fclose(lf);
    printf("load average at the start: %s\n\n", load);
    printf("| what | size | preset | compose ms | encode+write ms | frames/s |\n|---|---|---|---|---|---|\n");
    static const int sizes[2][2] = {{1280, 720}, {1920, 1080}};
    for (int k = 0; k < 2 && !o.no_encode; k++) {
        bench_encode(&o, "h264", sizes[k][0], sizes[k][1], MKV_H264, "ultrafast");
        bench_encode(&o, "h264", sizes[k][0], sizes[k][1], MKV_H264, "veryfast");
        bench_encode(&o, "ffv1", sizes[k][0], sizes[k][1], MKV_FFV1, NULL);
    }
    if (!o.no_encode) bench_input(&o);
    printf("\ntraining %dx%d, recording %dx%d h264 %s (live: frames dropped, never waited for)\n", o.tw, o.th, o.rw,
           o.rh, o.preset);
    printf("| round | take | steps/s | run_output us | take |\n|---|---|---|---|---|\n");
    bench_training(&o);
    return 0;
}
