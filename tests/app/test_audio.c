// test_audio: why it exists: a take's sound must stay with its picture for an
// hour whatever the sound card's clock does, and a room with no input device
// must still get a valid take that says it has no sound.
// 1. The drift correction (audio_sync.c) on simulated clocks: a device 6 %
//    slow with late callbacks and an overrun (what JACK's dummy backend does on
//    this loaded machine: 44 900 samples a second for 48 000 measured) and a
//    sound card 100 ppm fast, each for a simulated hour; then the card with a
//    stall the picture cuts.
// 2. A live take with JACK's dummy backend as the input (a paced PortAudio
//    device with no sound card): video.mkv has a FLAC stream, its length is the
//    video's within one frame, take.json and the log say so.
// 3. The same take killed (SIGKILL) mid-way: both streams decode up to its
//    last second or so (Matroska written as it goes).
// 4. No input device (PortAudio with none): the take is valid, video only,
//    and one line says why; a device name that matches nothing says which.
// Each JACK case starts its own jackd under a name of its own (stopped by
// its PID; it dies with the test) and skips with the reason without jackd.
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "audio.h"
#include "audio_sync.h"
#include "clip_frame.h"
#include "record.h"
#include "run.h"
#include "test.h"

static char g_tmp[200];
static pid_t g_jack = -1;

// ---------------------------------------------------------------- simulated clocks

typedef struct {
    int64_t out;
} Sink;
static void sink_put(void *u, const int16_t *f, int n) {
    (void)f;
    ((Sink *)u)->out += n;
}

// A device whose clock runs at `ratio` times its nominal 48 kHz delivers
// 256-frame callbacks, each late by 0..2 ms (every 500th by 25 ms); at 20
// minutes 0.1 s finds the ring full (an overrun: lost after what the ring
// holds, as audio.c marks it). The reader takes the ring every 10 ms up to the
// newest frame's time, as the take's audio thread does. The worst distance
// of a chunk's last sample from where the true clock puts it, from the first
// second on (chunks that were all dropped place nothing).
// With stall > 0, no frame comes for that long from 30 minutes on, and the
// picture cuts it as record.c does (its origin moves on by the stall less a
// frame): the sound of the stall must go, what follows must stay in place.
static double simulate(double ratio, double seconds, double stall, AudioSync *s) {
    const int rate = 48000, period = 256;
    const double stall_at = 1800;
    double origin = 0.3;  // the first frame came 0.3 s after the device started
    audio_sync_init(s, rate, 2, 0);
    static int16_t buf[4096 * 2];
    Sink sink = {0};
    uint64_t rng = 12345;
    int64_t captured = 0, w = 0, r = 0, gap_at = -1, gap_len = 0;
    double worst = 0, t = 0, next_cb = period / (rate * ratio);
    for (long tick = 0; t < seconds; tick++) {
        t = tick * 0.010;
        while (next_cb <= t) {  // the callbacks due by now
            captured += period;
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            double late = (rng >> 33) % 2000 * 1e-6 + ((rng >> 20) % 500 == 0 ? 0.025 : 0);
            if (next_cb >= 1200 && next_cb < 1200 + 4800 / (rate * ratio)) {  // the ring is full
                if (gap_at < 0) gap_at = w;
                gap_len += period;
            } else {
                w += period;
            }
            audio_sync_clock(s, captured, next_cb + late);
            next_cb = (captured + period) / (rate * ratio);
        }
        if (stall > 0 && t >= stall_at + stall && origin < 1) origin += stall - 1.0 / 30;  // the cut
        double vt = stall > 0 && t >= stall_at && t < stall_at + stall ? stall_at : t;  // the newest frame's time
        int64_t limit = vt > origin ? (int64_t)((vt - origin) * rate) : 0;
        for (;;) {
            if (gap_at >= 0 && gap_at == r) audio_sync_lost(s, gap_len), gap_at = -1, gap_len = 0;
            int64_t end = gap_at >= 0 ? gap_at : w;
            int n = end - r < 4096 ? (int)(end - r) : 4096;
            if (t <= 0.3) {  // before the first frame the take lets the sound go
                s->in_pos += n, r += n;
                if (n <= 0) break;
                continue;
            }
            if (audio_sync_fill(s, origin, limit, sink_put, &sink)) break;
            if (n > limit - s->out) n = limit - s->out > 0 ? (int)(limit - s->out) : 0;
            if (n <= 0) break;
            int64_t out0 = s->out;
            audio_sync_chunk(s, buf, n, origin, sink_put, &sink);
            r += n;
            if (s->out == out0) continue;  // all dropped (the cut stall): nothing was placed
            double true_t = (double)(s->in_pos - 1) / (rate * ratio);  // the chunk's last input frame
            double err = fabs((true_t - origin) * rate - (double)(s->out - 1)) / rate;
            if (t > origin + 1 && err > worst) worst = err;
        }
    }
    return worst;
}

// Measured (60 simulated minutes each, a fixed seed): the slow device's worst
// error is 25.1 ms (0.2 s of its 6 % drift hides in the clock's window, then
// up to 15 ms before a hard correction), the sound card's 2.1 ms; uncorrected
// they would drift by 216 s and 0.36 s; with the cut stall 2.4 ms. The bounds:
// one frame at 30 fps (33 ms), and 5 ms for a sound card (the gradual
// correction's band and step).
TEST_IMPL(drift_correction_holds_an_hour_within_a_frame) {
    AudioSync s;
    double slow = simulate(0.94, 3600, 0, &s);
    printf("6 %% slow device: worst %.1f ms; inserted %lld, dropped %lld frames\n", slow * 1e3,
           (long long)s.inserted, (long long)s.dropped);
    EXPECT(slow < 1.0 / 30, "a slow device drifts %.1f ms from the picture", slow * 1e3);
    double card = simulate(1.0001, 3600, 0, &s);
    printf("100 ppm fast card: worst %.1f ms; inserted %lld, dropped %lld frames\n", card * 1e3,
           (long long)s.inserted, (long long)s.dropped);
    EXPECT(card < 0.005, "a sound card drifts %.1f ms from the picture", card * 1e3);
    // 100 ppm of an hour is 17 280 frames; the overrun's 4800 come back as
    // silence (4772: the rest is within the band).
    EXPECT(s.dropped > 15000 && s.dropped < 20000 && s.inserted >= 4500 && s.inserted < 6000,
           "corrections: %lld dropped, %lld inserted", (long long)s.dropped, (long long)s.inserted);
    // A 5.5 s stall the picture cuts: the sound of the stall goes (5.47 s of
    // frames dropped at once, besides the drift's), the rest stays in place.
    double cut = simulate(1.0001, 3600, 5.5, &s);
    printf("the same card, a 5.5 s stall cut: worst %.1f ms; inserted %lld, dropped %lld frames\n", cut * 1e3,
           (long long)s.inserted, (long long)s.dropped);
    EXPECT(cut < 0.005, "after a cut the sound is %.1f ms from the picture", cut * 1e3);
    EXPECT(s.dropped > 17000 + 5.4 * 48000 && s.dropped < 20000 + 5.5 * 48000, "%lld frames dropped",
           (long long)s.dropped);
}

// ---------------------------------------------------------------- live takes

// A unique JACK server name for this process: nobody else's server is met.
static void jack_name(char *buf, size_t n) { snprintf(buf, n, "tabula-test-audio-%d", (int)getpid()); }

static void jack_stop(void) {
    if (g_jack <= 0) return;
    kill(g_jack, SIGTERM);
    int st;
    for (int i = 0; i < 300 && waitpid(g_jack, &st, WNOHANG) == 0; i++) usleep(10000);
    if (waitpid(g_jack, &st, WNOHANG) == 0) kill(g_jack, SIGKILL), waitpid(g_jack, &st, 0);
    g_jack = -1;
}

static void count_line(void *u, const char *text) {
    if (strstr(text, "system")) (*(int *)u)++;
}

// jackd with the dummy backend (48 kHz, 256 frames), under this process's
// name; it dies with the process. 0 once PortAudio lists its input, or -1
// with why.
static int jack_start(char *why, size_t n) {
    char name[64];
    jack_name(name, sizeof name);
    setenv("JACK_DEFAULT_SERVER", name, 1);
    if (access("/usr/bin/jackd", X_OK) != 0) return snprintf(why, n, "no jackd (install jackd2)"), -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // no stale server if this test dies
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1), dup2(fd, 2);
        execl("/usr/bin/jackd", "jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256",
              (char *)NULL);
        _exit(127);
    }
    g_jack = pid;
    for (int i = 0; i < 50; i++) {
        int found = 0;
        audio_list(count_line, &found);
        if (found) return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_jack = -1;
            return snprintf(why, n, "jackd exited (status %d)", st), -1;
        }
        usleep(100000);
    }
    jack_stop();
    return snprintf(why, n, "jackd started but PortAudio lists no JACK input after 5 s"), -1;
}

static Settings live_settings(const char *dir, const char *device) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.width = s.height = 64;
    s.headless = 0;
    s.autosave_minutes = 0;
    snprintf(s.record, sizeof s.record, "%.200s", dir);
    snprintf(s.record_size, sizeof s.record_size, "160x120");
    snprintf(s.channels, sizeof s.channels, "8,16");  // a small network: frames come at the rate asked
    snprintf(s.record_audio_device, sizeof s.record_audio_device, "%s", device);
    return s;
}

// stderr into a file while a take runs (the log lines are what is checked).
static int g_saved_err = -1;
static void capture_log(const char *path) {
    fflush(stderr);
    g_saved_err = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}
static void restore_log(void) {
    fflush(stderr);
    dup2(g_saved_err, 2);
    close(g_saved_err);
}

// A take of `secs` on the clock: the clip's frames at about 30 a second,
// trained and shown as the window's loop would. The log goes to dir.log.
// -1 without the clip.
static int live_take(const char *dir, const char *device, double secs) {
    char log[400];
    snprintf(log, sizeof log, "%s.log", dir);
    Settings s = live_settings(dir, device);
    int w, h;
    uint8_t *frame = clip_y4m_frame(test_data("hikers_forest_320x240.y4m"), 0, &w, &h), rec[64 * 64 * 3];
    if (!frame) return -1;
    capture_log(log);
    Recorder *R = recorder_new(&s);
    Run r;
    TbErr err = {{0}};
    CHECK(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    RunOutput out = recorder_output(R);
    run_attach(&r, &out);
    double t0 = tb_now();
    for (long k = 0; tb_now() - t0 < secs; k++) {
        run_frame(&r, frame, w, h);
        run_output(&r, rec);
        double wait = t0 + (k + 1) / 30.0 - tb_now();
        if (wait > 0) usleep((useconds_t)(wait * 1e6));
    }
    run_close(&r);
    recorder_free(R);
    restore_log();
    free(frame);
    return 0;
}

typedef struct {
    int streams, rate, channels;
    char acodec[32];
    double vdur, adur;  // seconds: video frames / fps, audio packets' end
    long decoded, bad;  // audio samples decoded, packets that failed
} Probe;

// video.mkv's streams, read back with libavformat: the video's length from
// its frames, the audio's from its packets' samples.
static int probe(const char *path, Probe *p) {
    memset(p, 0, sizeof *p);
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0) return -1;
    avformat_find_stream_info(fmt, NULL);
    p->streams = (int)fmt->nb_streams;
    int vi = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    int ai = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (ai >= 0) {
        AVCodecParameters *c = fmt->streams[ai]->codecpar;
        p->rate = c->sample_rate, p->channels = c->ch_layout.nb_channels;
        snprintf(p->acodec, sizeof p->acodec, "%s", avcodec_get_name(c->codec_id));
    }
    AVCodecContext *dec = NULL;
    if (ai >= 0) {
        const AVCodec *c = avcodec_find_decoder(fmt->streams[ai]->codecpar->codec_id);
        dec = avcodec_alloc_context3(c);
        avcodec_parameters_to_context(dec, fmt->streams[ai]->codecpar);
        if (avcodec_open2(dec, c, NULL) < 0) avcodec_free_context(&dec);
    }
    AVPacket *pk = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    long vframes = 0;
    int64_t aend = 0;
    while (av_read_frame(fmt, pk) >= 0) {
        if (pk->stream_index == vi) vframes++;
        if (pk->stream_index == ai && pk->pts + pk->duration > aend) aend = pk->pts + pk->duration;
        if (pk->stream_index == ai && dec) {  // the sound decodes, every sample of it
            p->bad += avcodec_send_packet(dec, pk) < 0;
            while (avcodec_receive_frame(dec, fr) == 0) p->decoded += fr->nb_samples, av_frame_unref(fr);
        }
        av_packet_unref(pk);
    }
    av_frame_free(&fr);
    avcodec_free_context(&dec);
    if (vi >= 0) p->vdur = vframes * av_q2d(av_inv_q(fmt->streams[vi]->avg_frame_rate));
    if (ai >= 0) p->adur = aend * av_q2d(fmt->streams[ai]->time_base);
    av_packet_free(&pk);
    avformat_close_input(&fmt);
    return 0;
}

static const char *file_in(const char *dir, const char *name) {
    static char p[2][600];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static double json_num(const char *text, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = text ? strstr(text, pat) : NULL;
    return at ? atof(at + strlen(pat)) : -1;
}

// Measured here (3 s takes, JACK dummy at 48 kHz, 2 cores loaded by builds):
// the audio stream's length equals the video's to the sample (the end is
// padded to the last frame), and the worst error the correction met on the
// way was 4-16 ms. The bound is one frame at 30 fps.
TEST_IMPL(jack_take_has_audio_as_long_as_the_video) {
    char why[200], dir[300];
    if (jack_start(why, sizeof why)) TEST_SKIP_CASE("%s", why);
    snprintf(dir, sizeof dir, "%s/jack", g_tmp);
    int clip = live_take(dir, "system", 3.0);
    jack_stop();
    if (clip) TEST_SKIP_CASE("no clip at %s", test_data("hikers_forest_320x240.y4m"));
    Probe p;
    EXPECT(probe(file_in(dir, "video.mkv"), &p) == 0, "video.mkv does not open");
    printf("video.mkv: %d streams, video %.3f s, audio %s %d Hz %d ch %.3f s\n", p.streams, p.vdur, p.acodec, p.rate,
           p.channels, p.adur);
    EXPECT(p.streams == 2 && strcmp(p.acodec, "flac") == 0 && p.rate == 48000 && p.channels == 2,
           "streams %d, audio %s %d Hz %d ch", p.streams, p.acodec, p.rate, p.channels);
    EXPECT(p.vdur > 1.5 && fabs(p.adur - p.vdur) < 1.0 / 30, "audio %.3f s, video %.3f s", p.adur, p.vdur);
    char *j = test_read_all(file_in(dir, "take.json"));
    double err_ms = json_num(j, "max_error_ms"), samples = json_num(j, "samples");
    printf("take.json: %.0f samples, the device delivered %.0f (%.0f a second), worst error %.1f ms, overruns %.0f, "
           "inserted %.0f, dropped %.0f\n", samples, json_num(j, "captured"), json_num(j, "captured") / p.adur, err_ms,
           json_num(j, "overruns"), json_num(j, "inserted"), json_num(j, "dropped"));
    EXPECT(j && strstr(j, "\"device\": \"system (JACK Audio Connection Kit)\", \"rate\": 48000, \"channels\": 2"),
           "take.json: %s", j ? j : "(none)");
    EXPECT(err_ms >= 0 && err_ms < 1000.0 / 30, "the sound met %.1f ms from the picture", err_ms);
    EXPECT(fabs(samples / 48000 - p.adur) < 1e-3 && p.decoded == (long)samples && p.bad == 0,
           "take.json %.0f samples, the stream %.3f s, %ld decoded, %ld bad packets", samples, p.adur, p.decoded, p.bad);
    char log[400];
    snprintf(log, sizeof log, "%s.log", dir);
    const char *l = test_read_all(log);
    EXPECT(test_count(l, "record: audio from system (JACK Audio Connection Kit), 48000 Hz, 2 ch") == 1 &&
               test_count(l, "; audio ") == 1 && test_count(l, "has no audio") == 0,
           "log:\n%s", l ? l : "");
}

// A take killed (SIGKILL) mid-way keeps its sound: video.mkv opens with both
// streams and the sound decodes up to about where the picture stops (the
// muxer holds a cluster, a second, and interleaves within half a second).
TEST_IMPL(killed_take_keeps_its_sound) {
    char why[200], dir[300];
    if (jack_start(why, sizeof why)) TEST_SKIP_CASE("%s", why);
    snprintf(dir, sizeof dir, "%s/killed", g_tmp);
    pid_t pid = fork();
    if (pid == 0) {  // a fresh process (a forked copy would inherit this one's OpenMP pool, stuck)
        execl("/proc/self/exe", "test_audio", "--take", dir, (char *)NULL);
        _exit(127);
    }
    double written = -1;
    for (int i = 0; i < 300 && written < 90; i++) {  // 3 s of picture, as take.json counts (each second)
        usleep(100000);
        written = json_num(test_read_all(file_in(dir, "take.json")), "written");
    }
    usleep(500000);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    jack_stop();
    Probe p;
    EXPECT(written >= 90, "take.json: %.0f frames written", written);
    EXPECT(probe(file_in(dir, "video.mkv"), &p) == 0 && p.streams == 2, "video.mkv: %d streams", p.streams);
    printf("killed at about %.1f s: video %.3f s, audio %.3f s, %ld samples decoded, %ld bad packets\n",
           written / 30 + 0.5, p.vdur, p.adur, p.decoded, p.bad);
    EXPECT(p.vdur >= 1.0 && p.adur >= p.vdur - 1.0 && p.decoded >= (long)((p.vdur - 1.0) * 48000) && p.bad == 0,
           "video %.3f s, audio %.3f s, %ld samples decoded, %ld bad", p.vdur, p.adur, p.decoded, p.bad);
}

// PortAudio with no input device: video.mkv has the picture only, take.json
// says why, and so does exactly one log line; a name that matches no device
// is named in the reason.
TEST_IMPL(no_input_device_gives_a_valid_take_without_audio) {
    char name[64], dir[300], log[400];
    jack_name(name, sizeof name);
    setenv("JACK_DEFAULT_SERVER", name, 1);  // no server by this name runs
    int found = 0;
    if (audio_list(count_line, &found) > 0) TEST_SKIP_CASE("this machine has an input device");
    const char *devices[2] = {"", "nosuchdevice"};
    const char *reasons[2] = {"record: this take has no audio: no input device (PortAudio lists",
                              "record: this take has no audio: no input device's name contains \"nosuchdevice\""};
    for (int i = 0; i < 2; i++) {
        snprintf(dir, sizeof dir, "%s/none%d", g_tmp, i);
        if (live_take(dir, devices[i], 1.0)) TEST_SKIP_CASE("no clip at %s", test_data("hikers_forest_320x240.y4m"));
        Probe p;
        // Any picture at all: a loaded machine may spend most of the 1 s starting.
        EXPECT(probe(file_in(dir, "video.mkv"), &p) == 0 && p.streams == 1 && p.vdur > 0,
               "video.mkv: %d streams, %.3f s", p.streams, p.vdur);
        const char *j = test_read_all(file_in(dir, "take.json"));
        EXPECT(j && strstr(j, "\"audio\": null,\n  \"no_audio\": \"no input device") && strstr(j, "\"state\": \"done\""),
               "take.json: %s", j ? j : "(none)");
        snprintf(log, sizeof log, "%s.log", dir);
        const char *l = test_read_all(log);
        EXPECT(test_count(l, "has no audio") == 1 && test_count(l, reasons[i]) == 1 && test_count(l, "; no audio") == 1,
               "log:\n%s", l ? l : "");
    }
}

// A headless take's picture runs on frame counts: it records no sound, says
// so once, and take.json says why.
TEST_IMPL(headless_take_has_no_audio_and_says_why) {
    char dir[300], log[400];
    snprintf(dir, sizeof dir, "%s/headless", g_tmp);
    snprintf(log, sizeof log, "%s.log", dir);
    Settings s = live_settings(dir, "");
    s.headless = 1;
    int w, h;
    uint8_t *frame = clip_y4m_frame(test_data("hikers_forest_320x240.y4m"), 0, &w, &h), rec[64 * 64 * 3];
    if (!frame) TEST_SKIP_CASE("no clip at %s", test_data("hikers_forest_320x240.y4m"));
    capture_log(log);
    Recorder *R = recorder_new(&s);
    Run r;
    TbErr err = {{0}};
    CHECK(run_open(&r, &s, NULL, &err) == 0, "%s", err.msg);
    RunOutput out = recorder_output(R);
    run_attach(&r, &out);
    for (int k = 0; k < 10; k++) run_frame(&r, frame, w, h), run_output(&r, rec);
    run_close(&r);
    recorder_free(R);
    restore_log();
    free(frame);
    Probe p;
    EXPECT(probe(file_in(dir, "video.mkv"), &p) == 0 && p.streams == 1, "video.mkv: %d streams", p.streams);
    const char *j = test_read_all(file_in(dir, "take.json"));
    EXPECT(j && strstr(j, "\"audio\": null,\n  \"no_audio\": \"a headless take runs on frame counts"), "take.json: %s",
           j ? j : "(none)");
    const char *l = test_read_all(log);
    EXPECT(test_count(l, "record: this take has no audio: a headless take runs on frame counts") == 1 &&
               test_count(l, "has no audio") == 1,
           "log:\n%s", l ? l : "");
}

static void cleanup(void) {
    jack_stop();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
}

int main(int argc, char **argv) {
    setenv("OMP_NUM_THREADS", "1", 0);  // spinning threads on 2 cores starve jackd (not realtime here)
    if (argc == 3 && strcmp(argv[1], "--take") == 0) return live_take(argv[2], "system", 30.0) ? 3 : 0;  // to be killed
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tabula-audio-%d", (int)getpid());
    mkdir(g_tmp, 0755);
    atexit(cleanup);
    static const TestCase cases[] = {
        TEST_ENTRY(drift_correction_holds_an_hour_within_a_frame),
        TEST_ENTRY(jack_take_has_audio_as_long_as_the_video),
        TEST_ENTRY(killed_take_keeps_its_sound),
        TEST_ENTRY(no_input_device_gives_a_valid_take_without_audio),
        TEST_ENTRY(headless_take_has_no_audio_and_says_why),
    };
    return test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
