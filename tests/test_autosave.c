// test_autosave.c: why it exists: a gallery runs tabula unattended for weeks;
// a power cut, a crash or a full disk must never cost what it learned. The
// autosaves must appear at their interval from a writer thread, only the newest
// `keep` may stay, a restart with resume must take the newest file that loads
// (skipping a truncated one) and continue bit for bit (CPU), and a failed
// write (disk full) must leave the previous autosave intact.
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "autosave.h"
#include "checkpoint.h"
#include "session.h"
#include "settings_trainer.h"
#include "source.h"
#include "test.h"

static char dir[128];

static void rm_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(p, sizeof p, "%s/%s", dir, e->d_name), unlink(p);
    closedir(d);
    rmdir(dir);
}

static void fresh_dir(const char *name) {
    if (dir[0]) rm_dir();
    snprintf(dir, sizeof dir, "/tmp/tabula-autosave-%d-%s", (int)getpid(), name);
    rm_dir();
}

static void small_settings(Settings *s) {
    settings_default(s);
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->channels, sizeof s->channels, "8,16,16");
    s->width = 48;
    s->height = 32;
    s->lr = 0.05f;
    s->momentum = 0.9f;
    s->clip = 0.5f;
    snprintf(s->autosave_dir, sizeof s->autosave_dir, "%s", dir);
}

// Files in dir: autosaves (names), and anything else (temp files).
static int count_files(int *others) {
    DIR *d = opendir(dir);
    int n = 0;
    *others = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            if (strncmp(e->d_name, "auto-", 5) == 0 && strstr(e->d_name, ".safetensors") &&
                !strstr(e->d_name, ".tmp"))
                n++;
            else (*others)++;
        }
    closedir(d);
    return n;
}


static Source *clip(void) {
    TbErr err = {{0}};
    Source *src = source_open_y4m(test_data("asl_signer_a_320x240.y4m"), &err);
    if (!src) TEST_SKIP("%s", err.msg);
    return src;
}

TEST_IMPL(autosaves_appear_at_the_interval_and_only_keep_remain) {
    fresh_dir("interval");
    Settings s;
    small_settings(&s);
    s.autosave_minutes = 0.1f / 60;  // every 0.1 s
    s.autosave_keep = 2;
    TbErr err = {{0}};
    Trainer t;
    EXPECT(trainer_init_settings(&t, &s, NULL, &err) == 0, "%s", err.msg);
    Autosave a;
    EXPECT(autosave_open(&a, &s, &t, &err) == 0, "%s", err.msg);
    Source *src = clip();
    double t0 = tb_now();
    int handed = 0, before_first = 0, ticks = 0, due_n = 0, wrong = 0;
    while (tb_now() - t0 < 1.05) {
        train_frames(&t, src, 1, NULL);
        // The rule, checked at every tick whatever the machine's speed: a tick
        // an interval after the last one due hands a copy over, or counts it
        // skipped while the writer is busy; any other tick does nothing.
        double now = tb_now();
        int due = now - a.last >= a.interval;
        long skipped = a.skipped;  // changes only in autosave_tick, on this thread
        int h = autosave_tick(&a, &t, now);
        if (h && !handed) before_first = now - t0 < 0.09;
        wrong += h + (int)(a.skipped - skipped) != due;
        due_n += due;
        handed += h;
        ticks++;
    }
    autosave_wait(&a);
    EXPECT(!before_first, "an autosave came before its interval");
    EXPECT(wrong == 0 && due_n >= 1 && handed >= 1,
           "%d of %d ticks broke the rule; %d due, %d handed over", wrong, ticks, due_n, handed);
    EXPECT(a.written == handed, "written %ld, handed %d", a.written, handed);
    // Keep 2: two files, or one where a loaded writer wrote only one (the rest
    // were handed over while it was busy, counted as skipped).
    int others = 0, keep = a.written < 2 ? (int)a.written : 2;
    EXPECT(a.written >= 1 && count_files(&others) == keep && others == 0,
           "%d autosaves (keep 2, written %ld), %d other files", count_files(&others), a.written, others);
    // The newest holds the latest handed-over step.
    char names[8][256];
    int n = autosave_list(dir, names, 8);
    EXPECT(n == keep, "listed %d", n);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    EXPECT(strcmp(path, a.last_path) == 0, "newest listed %s, last written %s", path, a.last_path);
    autosave_close(&a);
    source_close(src);
    trainer_free(&t);
    rm_dir();
}

TEST_IMPL(resume_skips_a_truncated_newest_and_continues_bit_for_bit) {
    fresh_dir("resume");
    Settings s;
    small_settings(&s);
    s.autosave_minutes = 10;
    TbErr err = {{0}};
    float la[10], lb[10];
    // A: 10 frames straight.
    Trainer a;
    EXPECT(trainer_init_settings(&a, &s, NULL, &err) == 0, "%s", err.msg);
    Source *src = clip();
    train_frames(&a, src, 10, la);
    source_close(src);
    trainer_free(&a);
    // B: 5 frames, the end-of-run autosave.
    Trainer b;
    trainer_init_settings(&b, &s, NULL, &err);
    src = clip();
    train_frames(&b, src, 5, lb);
    Autosave as;
    EXPECT(autosave_open(&as, &s, &b, &err) == 0, "%s", err.msg);
    EXPECT(autosave_final(&as, &b) == 0, "final autosave failed");
    char good[512];
    snprintf(good, sizeof good, "%s", as.last_path);
    autosave_close(&as);
    trainer_free(&b);
    // A newer autosave cut short (power lost mid-copy, say).
    char cut[512];
    snprintf(cut, sizeof cut, "%s/auto-29991231-235959.safetensors", dir);
    FILE *in = fopen(good, "rb"), *out = fopen(cut, "wb");
    CHECK(in && out, "copy");
    char buf[1000];
    size_t got = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, got, out);
    fclose(in);
    fclose(out);
    // C: resume (another seed and another architecture in the settings: the file's wins).
    Settings s2 = s;
    s2.seed = 99;
    snprintf(s2.channels, sizeof s2.channels, "4,8");
    s2.autosave_resume = 1;
    Trainer c;
    EXPECT(session_setup_trainer(&c, &s2, &err) == 0, "resume: %s", err.msg);
    EXPECT(c.step == 10, "step restored from the good autosave: %ld", c.step);
    EXPECT(c.model.spec.n_enc == 3 && c.model.spec.channels[2] == 16, "architecture from the file");
    train_frames(&c, src, 5, lb + 5);
    source_close(src);
    trainer_free(&c);
    EXPECT(memcmp(la, lb, sizeof la) == 0, "autosave/resume/continue not bit-exact (frame 9: %.9g vs %.9g)",
           (double)la[9], (double)lb[9]);
    rm_dir();
}

TEST_IMPL(resume_without_autosaves_starts_afresh) {
    fresh_dir("none");
    Settings s;
    small_settings(&s);
    s.autosave_resume = 1;
    TbErr err = {{0}};
    Trainer t;
    EXPECT(session_setup_trainer(&t, &s, &err) == 0, "%s", err.msg);
    EXPECT(t.step == 0, "fresh network, step %ld", t.step);
    trainer_free(&t);
}

TEST_IMPL(disk_full_keeps_the_previous_autosave) {
    fresh_dir("full");
    Settings s;
    small_settings(&s);
    s.autosave_minutes = 10;
    TbErr err = {{0}};
    Trainer t;
    EXPECT(trainer_init_settings(&t, &s, NULL, &err) == 0, "%s", err.msg);
    Source *src = clip();
    train_frames(&t, src, 2, NULL);
    Autosave a;
    EXPECT(autosave_open(&a, &s, &t, &err) == 0, "%s", err.msg);
    EXPECT(autosave_final(&a, &t) == 0, "first autosave");
    char first[512];
    snprintf(first, sizeof first, "%s", a.last_path);
    train_frames(&t, src, 2, NULL);
    // A write that fails part way (file size limit: the same write() error path
    // as a full disk).
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
    lim = old;
    lim.rlim_cur = 4096;  // the weights alone are more
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    int rc1 = autosave_final(&a, &t);
    // And through the writer thread: training goes on meanwhile.
    a.last = 0;
    a.interval = 0.001;
    int handed = autosave_tick(&a, &t, tb_now() + 1);
    autosave_wait(&a);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0, "restore rlimit");
    signal(SIGXFSZ, prev);
    EXPECT(rc1 == -1, "a save past the size limit succeeded");
    EXPECT(handed == 1 && a.failed == 2, "handed %d, failed %ld", handed, a.failed);
    int others;
    EXPECT(count_files(&others) == 1 && others == 0, "%d autosaves, %d other files (want 1, 0)",
           count_files(&others), others);
    Trainer c;
    EXPECT(trainer_init_settings(&c, &s, NULL, &err) == 0, "%s", err.msg);
    EXPECT(checkpoint_load(first, &c, &err) == 0 && c.step == 4, "previous autosave damaged: %s", err.msg);
    trainer_free(&c);
    // Training goes on.
    train_frames(&t, src, 1, NULL);
    EXPECT(t.step == 10, "trained on: step %ld", t.step);
    autosave_close(&a);
    source_close(src);
    trainer_free(&t);
    rm_dir();
}

TEST_MAIN(TEST_ENTRY(autosaves_appear_at_the_interval_and_only_keep_remain),
          TEST_ENTRY(resume_skips_a_truncated_newest_and_continues_bit_for_bit),
          TEST_ENTRY(resume_without_autosaves_starts_afresh), TEST_ENTRY(disk_full_keeps_the_previous_autosave))
