// test_replay: why it exists: a take is only worth replaying if the replay is
// the take. A headless take of a real clip is recorded through the headless
// driver's own calls, with control moves pushed onto its queue at set frames
// as OSC, MIDI and the keys push them (lr to a value that seven digits do not
// hold, input smoothing, a step nudge, jitter drawn from the trainer's random
// state, a slot saved and recalled, a pause and a reset, two codes stored and
// a journey through them started); then --replay runs it. Every per-frame loss and gradient norm must be the same bits (the
// metrics write them exactly: text equal means bits equal), and every move
// must land at the same frame and step with the same value. Measured: the
// take's 60 frames give 57 metrics lines (three are paused) and 14 moves.
#define _GNU_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controls.h"
#include "record.h"
#include "replay.h"
#include "run.h"
#include "settings.h"
#include "source.h"
#include "test.h"

static char g_tmp[200];

static const char *path_in(const char *name) {
    static char p[8][400];
    static int k;
    char *s = p[k++ % 8];
    snprintf(s, 400, "%s/%s", g_tmp, name);
    return s;
}

static const char *clip_path(void) {
    static char p[1024];
    const char *d = getenv("TABULA_DATA");
    snprintf(p, sizeof p, "%s/hikers_forest_320x240.y4m", d ? d : "../shared/data");
    return p;
}

static int parse(Settings *s, const char **argv, int argc) {
    TbErr err = {{0}};
    settings_default(s);
    int rc = settings_parse_args(s, argc, (char **)argv, &err);
    if (rc) fprintf(stderr, "settings: %s\n", err.msg);
    return rc;
}

// The moves, at the frame before which each is pushed.
typedef struct {
    int frame;
    ControlEvent e;
} Move;
static const Move MOVES[] = {
    {8, {CMD_SET, PARAM_LR, 0.123456789f, SRC_OSC, 0}},
    {12, {CMD_SET, PARAM_SMOOTH_IN, 0.5f, SRC_MIDI, 0}},
    {16, {CMD_NUDGE, PARAM_STEPS, 1, SRC_KEY, 0}},
    {20, {CMD_SET, PARAM_JITTER, 0.1f, SRC_OSC, 0}},
    {24, {CMD_SLOT_SAVE, 0, 1, SRC_MIDI, 0}},
    {30, {CMD_TOGGLE, PARAM_PAUSE, 0, SRC_KEY, 0}},
    {33, {CMD_TOGGLE, PARAM_PAUSE, 0, SRC_KEY, 0}},
    {36, {CMD_RESET, 0, 7, SRC_OSC, 0}},
    {40, {CMD_CODE_STORE, 0, 0, SRC_KEY, 0}},
    {44, {CMD_SLOT_RECALL, 0, 1, SRC_MIDI, 0}},
    {46, {CMD_CODE_STORE, 0, 0, SRC_OSC, 0}},
    {50, {CMD_SET, PARAM_LR, 0.5f, SRC_OSC, 0}},
    {52, {CMD_SET, PARAM_SMOOTH_OUT, 0.5f, SRC_KEY, 0}},
    {54, {CMD_JOURNEY, 0, 0, SRC_KEY, 0}},
};
#define N_MOVES (int)(sizeof MOVES / sizeof MOVES[0])
#define N_FRAMES 60

// A headless take (--record) of the clip with the moves: run_headless's loop,
// with the moves on its queue. 0, or -1 (the clip is missing).
static int record_take(const char *dir) {
    const char *argv[] = {"tabula", "--headless", "--backend", "cpu", "--size", "64x64", "--memory", "2",
                          "--source", "pattern", "--osc.port", "0", "--midi", "0", "--autosave.minutes", "0",
                          "--record.size", "128x96", "--record", dir};
    Settings s;
    if (parse(&s, argv, sizeof argv / sizeof argv[0])) return -1;
    TbErr err = {{0}};
    char spec[1100];
    snprintf(spec, sizeof spec, "file:%s", clip_path());
    SourceOpts so = {0};
    Source *src = source_open(spec, &so, &err);
    if (!src) return -1;
    ControlQueue q;
    control_queue_init(&q);
    Run r;
    CHECK(run_open(&r, &s, &q, &err) == 0, "%s", err.msg);
    Recorder *rec = recorder_new(&s);
    RunOutput out = recorder_output(rec);
    run_attach(&r, &out);
    uint8_t *frame = tb_malloc((size_t)src->width * src->height * 3), *recon = tb_malloc(64 * 64 * 3);
    for (int f = 0, m = 0; f < N_FRAMES; f++) {
        CHECK(src->read(src, frame, &err) == 1, "clip: %s", err.msg);
        for (; m < N_MOVES && MOVES[m].frame == f; m++) control_push(&q, MOVES[m].e);
        run_drain(&r, NULL, 0);
        run_frame(&r, frame, src->width, src->height);
        if (run_output_active(&r)) run_output(&r, recon);
    }
    run_flush(&r);
    run_close(&r);
    recorder_free(rec);
    source_close(src);
    control_queue_destroy(&q);
    free(frame);
    free(recon);
    return 0;
}

// The lines of a file (at most max), each cut at the first `cut` (NULL: whole).
static int lines_of(const char *path, char (*out)[400], int max, const char *cut) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    char line[2048];
    while (n < max && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c = cut ? strstr(line, cut) : NULL;
        if (c) *c = 0;
        snprintf(out[n++], 400, "%.399s", line);
    }
    fclose(f);
    return n;
}

// An event line without its time and source: "frame":F,"step":S,<what>,"value":V}.
static void move_of(char *line) {
    char *fr = strstr(line, "\"frame\""), *src = strstr(line, "\"source\":\"");
    if (!fr || !src) return;
    char *after = strchr(src + 10, '"');
    char buf[400];
    snprintf(buf, sizeof buf, "%.*s%s", (int)(src - fr), fr, after ? after + 2 : "");
    snprintf(line, 400, "%s", buf);
}

TEST_IMPL(replay_makes_the_moves_at_their_frames_with_the_same_losses) {
    struct stat st;
    if (stat(clip_path(), &st) != 0) TEST_SKIP_CASE("no clip at %s", clip_path());
    const char *take = path_in("take");
    EXPECT(record_take(take) == 0, "recording failed");
    const char *argv[] = {"tabula", "--replay", take, "--output", path_in("replay.mkv"), "--backend", "cpu",
                          "--metrics", path_in("replay-metrics.jsonl"), "--events", path_in("replay-events.jsonl")};
    Settings cli;
    EXPECT(parse(&cli, argv, sizeof argv / sizeof argv[0]) == 0, "flags");
    EXPECT(replay_main(&cli) == 0, "replay failed");

    // Losses: every metrics line the same up to the timings (step_ms, fps).
    static char want[128][400], got[128][400];
    int nw = lines_of(path_in("take/metrics.jsonl"), want, 128, ",\"step_ms\"");
    int ng = lines_of(path_in("replay-metrics.jsonl"), got, 128, ",\"step_ms\"");
    EXPECT(nw == N_FRAMES - 3 && ng == nw, "metrics lines: take %d, replay %d (want %d: 3 frames paused)", nw, ng,
           N_FRAMES - 3);
    int same = 0;
    for (int i = 0; i < nw && i < ng; i++) {
        if (strcmp(want[i], got[i]) == 0) same++;
        else if (same == i) fprintf(stderr, "first difference:\n  take   %s\n  replay %s\n", want[i], got[i]);
    }
    EXPECT(same == nw && nw > 0, "%d of %d metrics lines the same", same, nw);

    // Moves: the same frame, step, what and value, in the same order.
    nw = lines_of(path_in("take/events.jsonl"), want, 128, NULL);
    ng = lines_of(path_in("replay-events.jsonl"), got, 128, NULL);
    EXPECT(nw == N_MOVES && ng == nw, "events: take %d, replay %d (want %d)", nw, ng, N_MOVES);
    same = 0;
    for (int i = 0; i < nw && i < ng; i++) {
        move_of(want[i]), move_of(got[i]);
        if (strcmp(want[i], got[i]) == 0) same++;
        else fprintf(stderr, "move %d:\n  take   %s\n  replay %s\n", i, want[i], got[i]);
    }
    EXPECT(same == N_MOVES, "%d of %d moves the same", same, N_MOVES);
    // The lr set over OSC is the float sent, not seven digits of it.
    EXPECT(nw > 0 && strstr(want[0], "\"frame\":8,\"step\":8,\"param\":\"lr\",\"value\":0.12345679}") != NULL,
           "first move: %s", nw > 0 ? want[0] : "none");
}

static void cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
}

int main(int argc, char **argv) {
    // The take's encoder threads share two cores with training: OpenMP threads
    // spinning while they wait starve them (measured under a loaded machine:
    // 132 s -> 12 s). The policy is read when the runtime loads, so start again
    // with it set, once, as main.c does for takes.
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/tabula-replay-%d", (int)getpid());
    mkdir(g_tmp, 0755);
    atexit(cleanup);
    static const TestCase cases[] = {
        TEST_ENTRY(replay_makes_the_moves_at_their_frames_with_the_same_losses),
    };
    return test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
