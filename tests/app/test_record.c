// test_record: why it exists: a take is what is left of a show. Its video must
// be the picture that was shown, its input.mkv exactly the frames the network
// was shown (replay depends on it), and when the encoder or the disk cannot
// keep up, the loss must be counted by cause while the files stay decodable.
// A full disk or an unwritable folder must end the take, not the mirror.
// Checked on frames of a real clip, decoded back with libav.
#define _GNU_SOURCE
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "clip_frame.h"
#include "compose.h"
#include "encode.h"
#include "record.h"
#include "record_take.h"
#include "run.h"
#include "test.h"

// The lowest PSNR of a decoded H.264 frame against the picture composed for it,
// measured on the hikers clip (side layout, 320x240, CRF 20, veryfast, the
// first 30 frames of a blank network): 33.5 dB. Most of the loss is 4:2:0
// chroma on reconstructions that start as colour noise: losslessly coded
// (CRF 0) the same frames give 34.7 dB. The frame composed for the next time
// of half a second before gives at most 22.5 dB (checked), so the threshold
// tells them apart.
#define MIN_PSNR_DB 32.0

#define MAXF 128

static char g_tmp[200];

static const char *clip_path(void) {
    static char p[1024];
    snprintf(p, sizeof p, "%s/hikers_forest_320x240.y4m", getenv("TABULA_DATA") ? getenv("TABULA_DATA") : "../shared/data");
    return p;
}

// Frame k of the clip (320x240), or a skip of the case.
static uint8_t *clip(int k) {
    int w, h;
    uint8_t *f = clip_y4m_frame(clip_path(), k, &w, &h);
    CHECK(!f || (w == 320 && h == 240), "clip size %dx%d", w, h);
    return f;
}

// A clip frame at w x h (nearest neighbour; the content is what matters).
static uint8_t *clip_at(int k, int w, int h) {
    uint8_t *f = clip(k), *o = tb_malloc((size_t)w * h * 3);
    if (!f) return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) memcpy(o + ((size_t)y * w + x) * 3, f + ((size_t)(y * 240 / h) * 320 + x * 320 / w) * 3, 3);
    free(f);
    return o;
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += (double)(a[i] - b[i]) * (a[i] - b[i]);
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 / (se / n));
}

// ---------------------------------------------------------------- decoding

typedef struct {
    int n, w, h, corrupt;
    uint8_t *rgb[MAXF];
    int64_t pts[MAXF];  // in the stream's time base
    AVRational tb;
} Decoded;

static void decoded_free(Decoded *d) {
    for (int i = 0; i < d->n; i++) free(d->rgb[i]);
    memset(d, 0, sizeof *d);
}

static void keep_frame(Decoded *d, AVFrame *fr, struct SwsContext **sws) {
    if (d->n >= MAXF) return;
    d->w = fr->width, d->h = fr->height;
    d->corrupt += (fr->flags & AV_FRAME_FLAG_CORRUPT) || fr->decode_error_flags;
    *sws = sws_getCachedContext(*sws, fr->width, fr->height, fr->format, fr->width, fr->height, AV_PIX_FMT_RGB24,
                                SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (fr->format == AV_PIX_FMT_YUV420P)  // as tagged: BT.709, limited range
        sws_setColorspaceDetails(*sws, sws_getCoefficients(SWS_CS_ITU709), 0, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                 0, 1 << 16, 1 << 16);
    uint8_t *rgb = tb_malloc((size_t)fr->width * fr->height * 3);
    uint8_t *dst[4] = {rgb};
    int ds[4] = {fr->width * 3};
    sws_scale(*sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst, ds);
    d->pts[d->n] = fr->best_effort_timestamp;
    d->rgb[d->n++] = rgb;
}

// Every frame of the file's video stream, as RGB8. 0, or -1 if it does not open.
static int decode(const char *path, Decoded *d) {
    memset(d, 0, sizeof *d);
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0) return -1;
    avformat_find_stream_info(fmt, NULL);
    const AVCodec *c = NULL;
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &c, 0);
    if (si < 0) return avformat_close_input(&fmt), -1;
    AVCodecContext *dec = avcodec_alloc_context3(c);
    avcodec_parameters_to_context(dec, fmt->streams[si]->codecpar);
    avcodec_open2(dec, c, NULL);
    d->tb = fmt->streams[si]->time_base;
    AVPacket *p = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    struct SwsContext *sws = NULL;
    for (int eof = 0; !eof;) {
        eof = av_read_frame(fmt, p) < 0;
        if (!eof && p->stream_index != si) {
            av_packet_unref(p);
            continue;
        }
        avcodec_send_packet(dec, eof ? NULL : p);
        av_packet_unref(p);
        while (avcodec_receive_frame(dec, fr) == 0) keep_frame(d, fr, &sws), av_frame_unref(fr);
    }
    sws_freeContext(sws);
    av_frame_free(&fr);
    av_packet_free(&p);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return 0;
}

// ---------------------------------------------------------------- helpers

static const char *tmpdir(const char *name) {
    static char p[300];
    snprintf(p, sizeof p, "%s/%s", g_tmp, name);
    return p;
}

static const char *file_in(const char *dir, const char *name) {
    static char p[2][1024];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

// A take's spec for the queue tests: no run, a tiny network for the weights file.
static void spec(TakeSpec *sp, const char *dir, int tw, int th, int ow, int oh, MkvCodec codec, const char *preset) {
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "%s", dir);
    sp->tw = tw, sp->th = th, sp->ow = ow, sp->oh = oh;
    sp->fps = (AVRational){30, 1};
    sp->input_tb = (AVRational){1, 1000};
    sp->codec = codec;
    sp->crf = 20;
    snprintf(sp->preset, sizeof sp->preset, "%s", preset);
    sp->min_free_mb = 0;
    sp->meta = strdup("  \"format\": \"tabula-take\"");
    sp->config = strdup("[train]\nlr = 2\n");
    ModelSpec ms = model_spec_default(16, 16);
    TbErr err;
    CHECK(model_build(&sp->w.model, &ms, &err) == 0, "%s", err.msg);
    sp->w.params = tb_calloc(sp->w.model.n_params, sizeof(float));
    sp->w.opt = tb_calloc(2 * sp->w.model.n_params, sizeof(float));
}

static void wait_done(Take *t) {
    for (int i = 0; i < 3000 && !take_done(t); i++) usleep(10000);
}

// ---------------------------------------------------------------- compose

// Panes sit where the window puts them: the training aspect, centred, a gap
// of 1.25% of the height between them.
TEST_IMPL(compose_places_panes_as_the_window_does) {
    int r[3][4];
    EXPECT(compose_panes(COMPOSE_MIRROR, 64, 64, 320, 240, r) == 1, "mirror: one pane");
    EXPECT(r[0][0] == 40 && r[0][1] == 0 && r[0][2] == 240 && r[0][3] == 240, "mirror %d,%d %dx%d", r[0][0], r[0][1],
           r[0][2], r[0][3]);
    EXPECT(compose_panes(COMPOSE_SIDE, 64, 64, 320, 240, r) == 2, "side: two panes");
    EXPECT(r[0][2] == 158 && r[1][0] - (r[0][0] + r[0][2]) == 3, "side: panes %d wide, gap %d", r[0][2],
           r[1][0] - (r[0][0] + r[0][2]));
    EXPECT(compose_panes(COMPOSE_TRIPTYCH, 448, 256, 1280, 720, r) == 3, "triptych: three panes");
    EXPECT(r[2][0] + r[2][2] <= 1280 && r[0][0] >= 0 && r[0][3] == lround(r[0][2] * 256.0 / 448), "triptych fits");
}

// Side: input | reconstruction, mirrored with flip; triptych's error pane is
// inferno(gain * mean |difference|): black where they agree.
TEST_IMPL(compose_draws_input_reconstruction_and_error) {
    enum { W = 16, H = 16 };
    uint8_t in[W * H * 3], rec[W * H * 3], out[96 * 32 * 3];
    for (int i = 0; i < W * H; i++) {
        int x = i % W;
        in[3 * i] = in[3 * i + 1] = in[3 * i + 2] = x < W / 2 ? 200 : 20;  // bright left half
        memcpy(rec + 3 * i, in + 3 * i, 3);
    }
    TbErr err;
    ComposeOpts o = {COMPOSE_SIDE, W, H, 64, 32, 0, 4};
    Composer *c = compose_new(&o, &err);
    EXPECT(c != NULL, "%s", err.msg);
    if (!c) return;
    compose_frame(c, in, NULL, rec, out);
    int r[3][4];
    compose_panes(COMPOSE_SIDE, W, H, 64, 32, r);
    const uint8_t *left = out + ((size_t)16 * 64 + r[0][0] + 4) * 3, *right = out + ((size_t)16 * 64 + r[0][0] + r[0][2] - 4) * 3;
    EXPECT(left[0] > 150 && right[0] < 60, "no flip: bright on the left (%d, %d)", left[0], right[0]);
    compose_free(c);
    o.flip = 1;
    c = compose_new(&o, &err);
    compose_frame(c, in, NULL, rec, out);
    EXPECT(left[0] < 60 && right[0] > 150, "flip: bright on the right (%d, %d)", left[0], right[0]);
    compose_free(c);
    ComposeOpts t = {COMPOSE_TRIPTYCH, W, H, 96, 32, 0, 4};
    c = compose_new(&t, &err);
    rec[3 * (8 * W + 2)] = 0;  // one wrong pixel, by 200 in red
    compose_frame(c, in, NULL, rec, out);
    compose_panes(COMPOSE_TRIPTYCH, W, H, 96, 32, r);
    uint8_t black[3], hot[3];
    compose_inferno(0, black);
    compose_inferno(4 * 200 / 765.0f, hot);
    const uint8_t *agree = out + ((size_t)(r[2][1] + 2) * 96 + r[2][0] + 20) * 3;
    EXPECT(memcmp(agree, black, 3) == 0, "error pane where they agree: %d %d %d", agree[0], agree[1], agree[2]);
    EXPECT(hot[0] > 150 && black[0] < 5, "inferno: %d at 0, %d at 1", black[0], hot[0]);
    compose_free(c);
}

// With an input transform in force the triptych is input | what the network
// was given | reconstruction, as the window shows it.
TEST_IMPL(compose_world_triptych_shows_the_network_input) {
    enum { W = 16, H = 16 };
    uint8_t in[W * H * 3], net[W * H * 3], rec[W * H * 3], out[96 * 32 * 3];
    memset(in, 200, sizeof in);
    memset(net, 0, sizeof net);
    for (int i = 0; i < W * H; i++) net[3 * i + 1] = 180;  // green
    memset(rec, 40, sizeof rec);
    TbErr err;
    ComposeOpts o = {COMPOSE_TRIPTYCH, W, H, 96, 32, 1, 4};
    Composer *c = compose_new(&o, &err);
    EXPECT(c != NULL, "%s", err.msg);
    if (!c) return;
    compose_frame(c, in, net, rec, out);
    int r[3][4];
    compose_panes(COMPOSE_TRIPTYCH, W, H, 96, 32, r);
    const uint8_t *p[3];
    for (int i = 0; i < 3; i++) p[i] = out + ((size_t)(r[i][1] + r[i][3] / 2) * 96 + r[i][0] + r[i][2] / 2) * 3;
    EXPECT(p[0][0] == 200 && p[1][0] == 0 && p[1][1] == 180 && p[2][0] == 40, "panes %d | %d,%d | %d", p[0][0],
           p[1][0], p[1][1], p[2][0]);
    compose_free(c);
}

// ---------------------------------------------------------------- encode

static AVPacket *g_pk[16];
static int g_np;
static void collect(void *u, AVPacket *p) {
    (void)u;
    CHECK(g_np < 16, "packets");
    g_pk[g_np++] = p;
}

// input.mkv holds exactly the frames it was given: FFV1 on 8-bit RGB.
TEST_IMPL(ffv1_round_trip_is_bit_exact) {
    const char *path = tmpdir("ffv1.mkv");
    MkvOpts o = {64, 48, {1, 1000}, {30, 1}, MKV_FFV1, 0, NULL, 1, 0};
    TbErr err = {{0}};
    MkvFile *m = mkv_open(path, &o, &err);
    EXPECT(m != NULL, "%s", err.msg);
    if (!m) return;
    uint8_t *f[8];
    for (int k = 0; k < 8; k++) {
        if (!(f[k] = clip_at(k * 5, 64, 48))) TEST_SKIP_CASE("no clip at %s", clip_path());
        g_np = 0;
        EXPECT(mkv_encode(m, f[k], k * 33, collect, NULL, &err) == 0, "%s", err.msg);
        for (int i = 0; i < g_np; i++) EXPECT(mkv_write(m, g_pk[i], &err) == 0, "%s", err.msg);
    }
    EXPECT(mkv_close(m, &err) == 0, "%s", err.msg);
    Decoded d;
    EXPECT(decode(path, &d) == 0 && d.n == 8, "decoded %d frames of 8", d.n);
    for (int k = 0; k < d.n; k++) EXPECT(memcmp(d.rgb[k], f[k], 64 * 48 * 3) == 0, "frame %d differs", k);
    for (int k = 0; k < 8; k++) free(f[k]);
    decoded_free(&d);
}

// ---------------------------------------------------------------- takes through the run loop

static Settings run_settings(const char *record) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.width = s.height = 64;
    s.headless = 1;
    s.autosave_minutes = 0;
    snprintf(s.record, sizeof s.record, "%.200s", record);
    snprintf(s.record_size, sizeof s.record_size, "320x240");
    return s;
}

// The text of a small file ("" if it cannot be read).
static const char *text_of(const char *path) {
    const char *t = test_read_all(path);
    return t ? t : "";
}

// A headless take (--record) of the hikers clip: input.mkv is bit for bit the
// frames the network was shown, video.mkv the picture composed from them and
// the reconstructions shown (PSNR above MIN_PSNR_DB), at 30 fps with exact
// time stamps, and take.json and events.jsonl say what happened.
TEST_IMPL(headless_take_is_what_was_shown) {
    enum { N = 30, F = 64 * 64 * 3 };
    const char *dir = tmpdir("take");
    Settings s = run_settings(dir);
    uint8_t *frame = clip(0), recbuf[F], *shown_in[N], *shown_rec[N];
    if (!frame) TEST_SKIP_CASE("no clip at %s", clip_path());
    free(frame);
    Recorder *rec = recorder_new(&s);
    Run r;
    TbErr err = {{0}};
    EXPECT(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    RunOutput out = recorder_output(rec);
    run_attach(&r, &out);
    EXPECT(run_output_active(&r), "--record starts a take at once");
    for (int k = 0; k < N; k++) {
        frame = clip(k);
        run_frame(&r, frame, 320, 240);
        free(frame);
        char msg[256];
        if (k == 10) run_control(&r, &(ControlEvent){CMD_SET, PARAM_LR, 0.5f, SRC_OSC, 0}, msg, sizeof msg);
        run_output(&r, recbuf);
        shown_in[k] = tb_malloc(F), shown_rec[k] = tb_malloc(F);
        memcpy(shown_in[k], trainer_newest(&r.t), F);
        memcpy(shown_rec[k], recbuf, F);
    }
    run_close(&r);  // ends the take: its files closed
    recorder_free(rec);

    Decoded d;
    EXPECT(decode(file_in(dir, "input.mkv"), &d) == 0 && d.n == N, "input.mkv: %d frames of %d", d.n, N);
    for (int k = 0; k < d.n && k < N; k++) EXPECT(memcmp(d.rgb[k], shown_in[k], F) == 0, "input frame %d differs", k);
    decoded_free(&d);
    EXPECT(decode(file_in(dir, "video.mkv"), &d) == 0 && d.n == N && d.w == 320 && d.h == 240,
           "video.mkv: %d frames %dx%d", d.n, d.w, d.h);
    ComposeOpts co = {COMPOSE_SIDE, 64, 64, 320, 240, 1, 4};
    Composer *c = compose_new(&co, &err);
    uint8_t *want = tb_malloc(320 * 240 * 3);
    double worst = 99, other = 0;
    for (int k = 0; k < d.n && k < N; k++) {
        compose_frame(c, shown_in[k], NULL, shown_rec[k], want);
        double p = psnr(d.rgb[k], want, 320 * 240 * 3);
        worst = p < worst ? p : worst;
        if (k >= 15) {  // the same picture against the one of half a second before
            compose_frame(c, shown_in[k - 15], NULL, shown_rec[k - 15], want);
            double q = psnr(d.rgb[k], want, 320 * 240 * 3);
            other = q > other ? q : other;
        }
        EXPECT(d.pts[k] == llround(k * 1000.0 / 30), "frame %d at %lld ms", k, (long long)d.pts[k]);
    }
    printf("video.mkv: lowest PSNR against the composed picture %.2f dB (threshold %.1f), highest against the "
           "one half a second before %.2f dB\n", worst, MIN_PSNR_DB, other);
    EXPECT(worst >= MIN_PSNR_DB, "PSNR %.2f dB", worst);
    EXPECT(other < MIN_PSNR_DB - 3, "another moment matches as well: %.2f dB", other);
    compose_free(c);
    free(want);
    decoded_free(&d);
    const char *j = text_of(file_in(dir, "take.json"));
    EXPECT(strstr(j, "\"state\": \"done\"") && strstr(j, "\"trained\": 30, \"written\": 30") &&
               strstr(j, "\"dropped_encoder\": 0, \"dropped_disk\": 0") && strstr(j, "\"end_reason\": \"run ended\""),
           "take.json:\n%s", j);
    const char *ev = text_of(file_in(dir, "events.jsonl"));
    EXPECT(strstr(ev, "\"frame\":11,") && strstr(ev, "\"source\":\"osc\",\"param\":\"lr\",\"value\":0.5"),
           "events.jsonl: %s", ev);
    struct stat st;
    EXPECT(stat(file_in(dir, "weights.safetensors"), &st) == 0 && st.st_size > 1000, "weights.safetensors");
    EXPECT(stat(file_in(dir, "config.ini"), &st) == 0 && st.st_size > 1000, "config.ini");
    for (int k = 0; k < N; k++) free(shown_in[k]), free(shown_rec[k]);
}

// A live take holds its rate on the clock: a frame that comes 0.3 s after the
// one before is preceded by repeats of it (at 30 fps, about 8), frames that
// come at once share a place (input.mkv still has each), and the time stamps
// stay on the grid.
TEST_IMPL(live_take_holds_a_constant_rate) {
    enum { F = 64 * 64 * 3 };
    const char *dir = tmpdir("live");
    Settings s = run_settings(dir);
    s.headless = 0;
    uint8_t *frame = clip(0), recbuf[F];
    if (!frame) TEST_SKIP_CASE("no clip at %s", clip_path());
    Recorder *rec = recorder_new(&s);
    Run r;
    TbErr err = {{0}};
    EXPECT(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    RunOutput out = recorder_output(rec);
    run_attach(&r, &out);
    double t[5];
    for (int k = 0; k < 5; k++) {
        if (k == 1) usleep(300000);
        run_frame(&r, frame, 320, 240);
        t[k] = tb_now();  // about when the recorder takes it (run_output's end)
        run_output(&r, recbuf);
    }
    run_close(&r);
    recorder_free(rec);
    free(frame);
    const char *j = text_of(file_in(dir, "take.json"));
    long written = -1, repeated = -1;
    const char *w = strstr(j, "\"written\": "), *rp = strstr(j, "\"repeated\": ");
    if (w) written = atol(w + 11);
    if (rp) repeated = atol(rp + 12);
    long want = llround((t[4] - t[0]) * 30) + 1;  // the grid's places from the first frame to the last
    EXPECT(labs(written - want) <= 1 && repeated >= 6, "%ld written (%ld repeated) for %.3f s at 30 fps", written,
           repeated, t[4] - t[0]);
    Decoded d;
    EXPECT(decode(file_in(dir, "video.mkv"), &d) == 0 && d.n == written && written >= 8, "video.mkv: %d frames, take.json %ld",
           d.n, written);
    for (int i = 0; i < d.n; i++) EXPECT(d.pts[i] == llround(i * 1000.0 / 30), "frame %d at %lld ms", i, (long long)d.pts[i]);
    decoded_free(&d);
    EXPECT(decode(file_in(dir, "input.mkv"), &d) == 0 && d.n == 5 && d.pts[1] >= 290, "input.mkv: %d frames, the second at %lld ms",
           d.n, d.n > 1 ? (long long)d.pts[1] : -1LL);
    decoded_free(&d);
}

// The names in dir, sorted (at most 8).
static int list_dir(const char *dir, char names[8][256]) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 8)
        if (e->d_name[0] != '.') snprintf(names[n++], 256, "%s", e->d_name);
    if (d) closedir(d);
    qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

// The record action twice: two takes in [record] dir, named by the time, each
// with its frames; the event starts a take's log and ends it.
TEST_IMPL(record_action_starts_and_stops_takes) {
    enum { F = 64 * 64 * 3 };
    Settings s = run_settings("");
    snprintf(s.record_dir, sizeof s.record_dir, "%.200s", tmpdir("takes"));
    uint8_t *frame = clip(0), recbuf[F];
    if (!frame) TEST_SKIP_CASE("no clip at %s", clip_path());
    Recorder *rec = recorder_new(&s);
    Run r;
    TbErr err = {{0}};
    EXPECT(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    RunOutput out = recorder_output(rec);
    run_attach(&r, &out);
    EXPECT(!run_output_active(&r), "no take without --record");
    char msg[512];
    for (int take = 0; take < 2; take++) {
        run_control(&r, &(ControlEvent){CMD_RECORD, -1, 0, SRC_OSC, 0}, msg, sizeof msg);
        EXPECT(strstr(msg, "recording to") && run_output_active(&r), "start: %s", msg);
        for (int k = 0; k < 5; k++) run_frame(&r, frame, 320, 240), run_output(&r, recbuf);
        run_control(&r, &(ControlEvent){CMD_RECORD, -1, 0, SRC_MIDI, 0}, msg, sizeof msg);
        EXPECT(strstr(msg, "recording stopped") && !run_output_active(&r), "stop: %s", msg);
        RecordStatus st;
        for (int i = 0; i < 1000; i++) {  // until the take's files are done (its summary comes)
            run_output_active(&r);
            recorder_status(rec, &st);
            if (strncmp(st.msg, "take ", 5) == 0) break;
            usleep(10000);
        }
        EXPECT(strstr(st.msg, "5 frames written") != NULL, "summary: %s", st.msg);
    }
    run_close(&r);
    recorder_free(rec);
    free(frame);
    char names[8][256];
    int n = list_dir(tmpdir("takes"), names);
    EXPECT(n == 2, "%d takes", n);
    for (int i = 0; i < n; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%.300s/%.200s", tmpdir("takes"), names[i]);
        EXPECT(strlen(names[i]) >= 15 && names[i][8] == '-', "take folder %s is YYYYmmdd-HHMMSS", names[i]);
        Decoded d;
        EXPECT(decode(file_in(dir, "video.mkv"), &d) == 0 && d.n == 5, "%s: %d frames", names[i], d.n);
        decoded_free(&d);
        const char *ev = text_of(file_in(dir, "events.jsonl"));
        char first[256];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(ev, "\n"), ev);
        EXPECT(strstr(first, "\"source\":\"osc\",\"action\":\"record\",\"value\":1}") != NULL,
               "%s: starts with the record event: %s", names[i], ev);
        EXPECT(strstr(ev, "\"source\":\"midi\",\"action\":\"record\",\"value\":0}\n") != NULL &&
                   test_count(ev, "\n") == 2,
               "%s: ends with the stop: %s", names[i], ev);
    }
}

// ---------------------------------------------------------------- drops and failures

// Frames come faster than a slow encoder (1280x720, preset medium) takes them:
// the frame queue drops and counts "encoder overloaded", the frames taken are
// encoded with the skipped places filled by repeats (a constant rate), and
// the video decodes whole.
TEST_IMPL(full_frame_queue_drops_and_counts_encoder_overloaded) {
    enum { N = 60 };
    uint8_t *in = clip_at(0, 64, 64);
    if (!in) TEST_SKIP_CASE("no clip at %s", clip_path());
    const char *dir = tmpdir("overload");
    TakeSpec sp;
    spec(&sp, dir, 64, 64, 1280, 720, MKV_H264, "medium");
    TbErr err = {{0}};
    Take *t = take_start(&sp, &err);
    EXPECT(t != NULL, "%s", err.msg);
    if (!t) return;
    for (int k = 0; k < N; k++) {
        take_push(t, in, NULL, in, k, k * 33, COMPOSE_SIDE, 0);
        usleep(4000);  // 250 frames a second
    }
    take_stop(t, "stopped");
    wait_done(t);
    TakeCounts c;
    take_counts(t, &c);
    take_free(t);
    long taken = N - c.dropped_encoder;
    EXPECT(c.frames == N && c.dropped_encoder > 0 && c.dropped_disk == 0, "frames %ld, dropped %ld encoder %ld disk",
           c.frames, c.dropped_encoder, c.dropped_disk);
    EXPECT(c.written == taken + c.repeated && c.input_written == taken, "written %ld = %ld taken + %ld repeated; input %ld",
           c.written, taken, c.repeated, c.input_written);
    Decoded d;
    EXPECT(decode(file_in(dir, "video.mkv"), &d) == 0 && d.n == c.written && !d.corrupt, "decoded %d of %ld, %d corrupt",
           d.n, c.written, d.corrupt);
    decoded_free(&d);
    EXPECT(strstr(text_of(file_in(dir, "take.json")), "\"dropped_encoder\": ") != NULL, "take.json has the drops");
    free(in);
}

// A slow disk (each packet written late) behind a short write queue: packets
// that find no room are dropped and counted "disk too slow"; the video skips
// to the next keyframe, so every frame that is in the file decodes right.
TEST_IMPL(slow_disk_drops_and_counts_disk_too_slow) {
    enum { N = 60, F = 64 * 64 * 3 };
    uint8_t *f[N];
    for (int k = 0; k < N; k++)
        if (!(f[k] = clip_at(k, 64, 64))) TEST_SKIP_CASE("no clip at %s", clip_path());
    const char *dir = tmpdir("slowdisk");
    TakeSpec sp;
    spec(&sp, dir, 64, 64, 64, 64, MKV_H264, "ultrafast");
    sp.write_delay = 0.02;
    sp.queue_items = 6;
    TbErr err = {{0}};
    Take *t = take_start(&sp, &err);
    EXPECT(t != NULL, "%s", err.msg);
    if (!t) return;
    for (int k = 0; k < N; k++) {
        take_push(t, f[k], NULL, f[k], k, k * 33, COMPOSE_MIRROR, 0);
        usleep(3000);
    }
    take_stop(t, "stopped");
    wait_done(t);
    TakeCounts c;
    take_counts(t, &c);
    take_free(t);
    EXPECT(c.dropped_disk > 0 && c.written + c.dropped_disk == N - c.dropped_encoder + c.repeated,
           "written %ld + dropped %ld (disk) = %ld - %ld (encoder) + %ld repeated", c.written, c.dropped_disk, (long)N,
           c.dropped_encoder, c.repeated);
    Decoded d;
    EXPECT(decode(file_in(dir, "video.mkv"), &d) == 0 && d.n == c.written && !d.corrupt, "decoded %d of %ld, %d corrupt",
           d.n, c.written, d.corrupt);
    // Each frame in the file is one given at or before its time (a repeat
    // where the encoder dropped some), the best match of all (64x64 at
    // ultrafast: about 27 dB, a neighbour 4 less), in order.
    int last = -1;
    for (int i = 0; i < d.n; i++) {
        long k = lround((double)d.pts[i] * d.tb.num / d.tb.den * 30);
        int best = -1;
        double bp = 0;
        for (int j = 0; j < N; j++) {
            double p = psnr(d.rgb[i], f[j], F);
            if (p > bp) bp = p, best = j;
        }
        EXPECT(bp > 24 && best <= k && best >= last && (c.repeated > 0 || best == k),
               "frame at %ld is most like frame %d (%.1f dB), after %d", k, best, bp, last);
        last = best;
    }
    decoded_free(&d);
    for (int k = 0; k < N; k++) free(f[k]);
}

// Less free space than [record] min_free_mb: the take ends at once, says why
// in take.json, and nothing else happens.
TEST_IMPL(low_free_space_ends_the_take) {
    const char *dir = tmpdir("nospace");
    TakeSpec sp;
    spec(&sp, dir, 16, 16, 32, 32, MKV_H264, "ultrafast");
    sp.min_free_mb = 1000000000;
    TbErr err = {{0}};
    Take *t = take_start(&sp, &err);
    EXPECT(t != NULL, "%s", err.msg);
    if (!t) return;
    for (int i = 0; i < 500 && !take_failed(t); i++) usleep(10000);
    EXPECT(take_failed(t), "the take goes on with no space");
    take_stop(t, "stopped");
    wait_done(t);
    char reason[600];
    take_info(t, NULL, 0, reason, sizeof reason);
    take_free(t);
    EXPECT(strstr(reason, "min_free_mb 1000000000") != NULL, "reason: %s", reason);
    const char *j = text_of(file_in(dir, "take.json"));
    EXPECT(strstr(j, "\"state\": \"done\"") && strstr(j, "nearly full"), "take.json: %s", j);
}

// A folder that cannot be made: the take ends with the reason; nothing hangs.
TEST_IMPL(unwritable_folder_ends_the_take) {
    TakeSpec sp;
    spec(&sp, "/proc/tabula-no/take", 16, 16, 32, 32, MKV_H264, "ultrafast");
    TbErr err = {{0}};
    Take *t = take_start(&sp, &err);
    EXPECT(t != NULL, "%s", err.msg);
    if (!t) return;
    uint8_t px[16 * 16 * 3] = {0};
    for (int i = 0; i < 500 && !take_failed(t); i++) take_push(t, px, NULL, px, i, i, 0, 0), usleep(10000);
    take_stop(t, "stopped");
    wait_done(t);
    char reason[600];
    take_info(t, NULL, 0, reason, sizeof reason);
    EXPECT(take_done(t) && strstr(reason, "cannot make /proc/tabula-no/take/") != NULL, "reason: %s", reason);
    take_free(t);
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
}

int main(int argc, char **argv) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tabula-record-%d", (int)getpid());
    mkdir(g_tmp, 0755);
    atexit(cleanup);
    static const TestCase cases[] = {
        TEST_ENTRY(compose_places_panes_as_the_window_does),
        TEST_ENTRY(compose_draws_input_reconstruction_and_error),
        TEST_ENTRY(compose_world_triptych_shows_the_network_input),
        TEST_ENTRY(ffv1_round_trip_is_bit_exact),
        TEST_ENTRY(headless_take_is_what_was_shown),
        TEST_ENTRY(live_take_holds_a_constant_rate),
        TEST_ENTRY(record_action_starts_and_stops_takes),
        TEST_ENTRY(full_frame_queue_drops_and_counts_encoder_overloaded),
        TEST_ENTRY(slow_disk_drops_and_counts_disk_too_slow),
        TEST_ENTRY(low_free_space_ends_the_take),
        TEST_ENTRY(unwritable_folder_ends_the_take),
    };
    return test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
