// test_slots.c: why it exists: an operator keeps networks in the eight snapshot
// slots and plays them back in the middle of a show. A recall that came back
// one bit off would be a network nobody saved; a cross-fade that did not pass
// through the mix it promises would jump; a slot that did not survive the disk
// would be lost with the machine. Checked on the CPU backend (the CUDA one is
// held to it by tests/test_cuda_parity.c): the lerp op against its reference,
// recall bit for bit (weights and optimizer state), the fade's midpoint through
// the modulator and through the run loop (with its --events lines), and
// slot-N.safetensors round trips.
#define _DEFAULT_SOURCE
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modulate.h"
#include "run.h"
#include "settings_trainer.h"
#include "snapshot.h"
#include "test.h"

static void small_settings(Settings *s) {
    settings_default(s);
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->channels, sizeof s->channels, "8,16");
    s->width = 32;
    s->height = 32;
    s->lr = 0.05f;
}

// A frame that changes with k: something to learn.
static void make_frame(uint8_t *rgb, int w, int h, int k) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)((x * 7 + y * (3 + c) + 29 * k) & 255);
}

static void train(Trainer *t, int frames, int k0) {
    uint8_t rgb[32 * 32 * 3];
    StepStats st[TB_STATS_RING];
    for (int k = 0; k < frames; k++) {
        make_frame(rgb, 32, 32, k0 + k);
        trainer_push_frame(t, rgb, 32, 32);
        trainer_train(t, 2, 0);
        trainer_read_stats(t, st);
    }
}

static float *params_of(Trainer *t) {
    float *p = tb_malloc(t->model.n_params * sizeof(float));
    t->be->get_params(t->be, p);
    return p;
}

static float *state_of(Trainer *t) {
    float *s = tb_calloc(2 * t->model.n_params, sizeof(float));
    t->be->get_opt_state(t->be, s, t->hyper.optimizer);
    return s;
}

static int small_trainer(Trainer *t, const char *optimizer) {
    Settings s;
    small_settings(&s);
    snprintf(s.optimizer, sizeof s.optimizer, "%s", optimizer);
    TbErr err = {{0}};
    int rc = trainer_init_settings(t, &s, NULL, &err);
    EXPECT(rc == 0, "trainer: %s", err.msg);
    return rc;
}

// The CPU op against its plain-loop reference; both ends exact.
TEST_IMPL(lerp_matches_ref_and_ends_exact) {
    enum { N = 100003 };
    float *w = tb_malloc(N * sizeof(float)), *s = tb_malloc(N * sizeof(float));
    float *a = tb_malloc(N * sizeof(float)), *b = tb_malloc(N * sizeof(float));
    TbRng rng;
    tb_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) w[i] = 4 * tb_rng_uniform(&rng) - 2, s[i] = tb_rng_normal(&rng);
    const float alphas[] = {0.25f, 0.5f, 0.9f, 1e-3f};
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        memcpy(a, w, N * sizeof(float));
        memcpy(b, w, N * sizeof(float));
        lerp(a, s, N, alphas[k]);
        lerp_ref(b, s, N, alphas[k]);
        double e = max_rel_err(a, b, N, 1e-6);
        EXPECT(e <= 1e-6, "lerp a=%g: relative error %.3g against lerp_ref", (double)alphas[k], e);
    }
    memcpy(a, w, N * sizeof(float));
    lerp(a, s, N, 0);
    EXPECT(memcmp(a, w, N * sizeof(float)) == 0, "a = 0 leaves w bit for bit");
    lerp(a, s, N, 1);
    EXPECT(memcmp(a, s, N * sizeof(float)) == 0, "a = 1 gives s bit for bit");
    free(w), free(s), free(a), free(b);
}

// Save, train on, recall: the weights and optimizer state come back bit for
// bit; empty and unknown slots are errors, not crashes.
TEST_IMPL(slot_recall_restores_exact_weights) {
    const char *opts[] = {"sgd", "adam"};
    for (int o = 0; o < 2; o++) {
        Trainer t;
        if (small_trainer(&t, opts[o])) return;
        TbErr err = {{0}};
        train(&t, 3, 0);
        EXPECT(trainer_slot_save(&t, 3, &err) == 0, "save: %s", err.msg);
        float *p0 = params_of(&t), *s0 = state_of(&t);
        long adam_t0 = t.step - t.opt_t0;
        train(&t, 3, 10);
        float *p1 = params_of(&t);
        EXPECT(memcmp(p0, p1, t.model.n_params * sizeof(float)) != 0, "%s: training moved the weights", opts[o]);
        long step = t.step;
        EXPECT(trainer_slot_recall(&t, 3, &err) == 0, "recall: %s", err.msg);
        float *p2 = params_of(&t), *s2 = state_of(&t);
        EXPECT(memcmp(p0, p2, t.model.n_params * sizeof(float)) == 0, "%s: weights bit for bit", opts[o]);
        EXPECT(memcmp(s0, s2, 2 * t.model.n_params * sizeof(float)) == 0, "%s: optimizer state bit for bit",
               opts[o]);
        EXPECT(t.step == step && t.step - t.opt_t0 == adam_t0, "%s: step %ld kept, Adam's count %ld back to %ld",
               opts[o], t.step, t.step - t.opt_t0, adam_t0);
        // A reset keeps the slots.
        trainer_reset(&t, 99);
        EXPECT(trainer_slot_recall(&t, 3, &err) == 0, "recall after reset: %s", err.msg);
        free(p2);
        p2 = params_of(&t);
        EXPECT(memcmp(p0, p2, t.model.n_params * sizeof(float)) == 0, "%s: the slot survives a reset", opts[o]);
        EXPECT(trainer_slot_recall(&t, 4, &err) == -1 && strstr(err.msg, "slot 4 is empty"), "empty: %s", err.msg);
        EXPECT(trainer_slot_save(&t, 9, &err) == -1 && strstr(err.msg, "1 to 8"), "slot 9: %s", err.msg);
        EXPECT(trainer_slot_blend(&t, 5, 0.5f, &err) == -1, "blend with an empty slot is refused");
        free(p0), free(p1), free(p2), free(s0), free(s2);
        trainer_free(&t);
    }
}

// A slot saved under the other optimizer: weights back, that state afresh.
TEST_IMPL(slot_recall_across_optimizers) {
    Trainer t;
    if (small_trainer(&t, "adam")) return;
    TbErr err = {{0}};
    train(&t, 2, 0);
    trainer_slot_save(&t, 1, &err);
    float *p0 = params_of(&t);
    trainer_set_optimizer(&t, OPT_SGD);
    train(&t, 2, 5);
    EXPECT(trainer_slot_recall(&t, 1, &err) == 0, "%s", err.msg);
    float *p1 = params_of(&t), *s1 = state_of(&t);
    EXPECT(memcmp(p0, p1, t.model.n_params * sizeof(float)) == 0, "weights bit for bit");
    int zero = 1;
    for (size_t i = 0; i < t.model.n_params; i++) zero &= s1[i] == 0;
    EXPECT(zero && t.opt_t0 == t.step, "SGD's momentum starts afresh");
    free(p0), free(p1), free(s1);
    trainer_free(&t);
}

// The modulator's fade over 2 s, the network not training in between: at 1 s
// the weights are the even mix, at 1.5 s a quarter / three quarters, at 2 s the
// slot bit for bit.
TEST_IMPL(slot_fade_passes_through_the_blend) {
    Trainer t;
    if (small_trainer(&t, "sgd")) return;
    TbErr err = {{0}};
    size_t n = t.model.n_params;
    trainer_reset(&t, 11);
    EXPECT(trainer_slot_save(&t, 2, &err) == 0, "%s", err.msg);
    float *a = params_of(&t);
    trainer_reset(&t, 12);
    float *b = params_of(&t), *want = tb_malloc(n * sizeof(float));
    Modulator m;
    modulate_init(&m, 1);
    LiveParams p;
    Settings s;
    small_settings(&s);
    live_params_from_settings(&p, &s);
    modulate_fade(&m, 2, 2.0, 10.0, SRC_KEY);
    const double at[] = {10.0, 11.0, 11.5, 12.0};
    const double share[] = {0.0, 0.5, 0.75, 1.0};
    for (int k = 0; k < 4; k++) {
        ModBlend bl = modulate_step(&m, &p, at[k]);
        if (bl.alpha > 0) EXPECT(trainer_slot_blend(&t, bl.slot, bl.alpha, &err) == 0, "%s", err.msg);
        float *got = params_of(&t);
        for (size_t i = 0; i < n; i++) want[i] = (float)((1 - share[k]) * b[i] + share[k] * a[i]);
        double e = max_rel_err(got, want, n, 1e-3);
        EXPECT(e <= 1e-6, "at %.1f s: %.3g from %.0f%% of the slot", at[k], e, 100 * share[k]);
        if (k == 3) EXPECT(memcmp(got, a, n * sizeof(float)) == 0, "at the end: the slot bit for bit");
        free(got);
    }
    EXPECT(!m.fade.on && m.n_notes == 1 && m.note[0].kind == MOD_FADE_END && m.note[0].param == 2,
           "one note: the fade's end (%d notes)", m.n_notes);
    free(a), free(b), free(want);
    trainer_free(&t);
}

// slot_write then slot_read give back the slot (weights, state, Adam's count)
// bit for bit, and neither touches the live network.
TEST_IMPL(slots_round_trip_through_disk) {
    char dir[64], path[256];
    snprintf(dir, sizeof dir, "/tmp/tabula-slots-%d", (int)getpid());
    Trainer t;
    if (small_trainer(&t, "adam")) return;
    TbErr err = {{0}};
    size_t n = t.model.n_params;
    train(&t, 3, 0);
    trainer_slot_save(&t, 6, &err);
    float *p6 = params_of(&t), *s6 = state_of(&t);
    long adam_t6 = t.step - t.opt_t0;
    train(&t, 2, 7);
    float *live = params_of(&t);
    long live_step = t.step;
    EXPECT(snapshot_slot_write(dir, &t, 6, path, sizeof path, &err) == 0, "write: %s", err.msg);
    char want[128];
    snprintf(want, sizeof want, "%s/slot-6.safetensors", dir);
    EXPECT(strcmp(path, want) == 0, "written to %s", path);
    float *after = params_of(&t);
    EXPECT(memcmp(after, live, n * sizeof(float)) == 0 && t.step == live_step, "write leaves the live network");
    free(after);
    // Overwrite slot 6 in memory, then read the file back into it.
    trainer_slot_save(&t, 6, &err);
    EXPECT(snapshot_slot_read(dir, &t, 6, path, sizeof path, &err) == 0, "read: %s", err.msg);
    after = params_of(&t);
    EXPECT(memcmp(after, live, n * sizeof(float)) == 0 && t.step == live_step, "read leaves the live network");
    free(after);
    EXPECT(trainer_slot_recall(&t, 6, &err) == 0, "%s", err.msg);
    float *p = params_of(&t), *s = state_of(&t);
    EXPECT(memcmp(p, p6, n * sizeof(float)) == 0, "weights bit for bit through the disk");
    EXPECT(memcmp(s, s6, 2 * n * sizeof(float)) == 0, "Adam's m and v bit for bit through the disk");
    EXPECT(t.step - t.opt_t0 == adam_t6, "Adam's step count %ld, want %ld", t.step - t.opt_t0, adam_t6);
    // Errors name the slot or the file.
    EXPECT(snapshot_slot_write(dir, &t, 7, path, sizeof path, &err) == -1 && strstr(err.msg, "slot 7 is empty"),
           "write an empty slot: %s", err.msg);
    EXPECT(snapshot_slot_read(dir, &t, 8, path, sizeof path, &err) == -1 && strstr(err.msg, "slot-8.safetensors"),
           "read a missing file: %s", err.msg);
    unlink(want);
    rmdir(dir);
    free(p6), free(s6), free(live), free(p), free(s);
    trainer_free(&t);
}

// --- through the run loop, headless (time = frames / fps)


// slot_save, reset, slot_fade over 1 s at 10 frames a second, paused: the run
// passes the midpoint on its 5th frame and ends on the slot; the log has the
// save, the fade's start and its end, from the surface that sent them.
TEST_IMPL(run_fade_through_the_loop) {
    Settings s;
    small_settings(&s);
    s.headless = 1;
    s.fps = 10;
    s.pause = 1;
    s.fade_time = 1;
    snprintf(s.events, sizeof s.events, "/tmp/tabula-slots-%d.jsonl", (int)getpid());
    Run r;
    TbErr err = {{0}};
    if (run_open(&r, &s, NULL, &err)) {
        EXPECT(0, "run_open: %s", err.msg);
        return;
    }
    uint8_t rgb[32 * 32 * 3];
    make_frame(rgb, 32, 32, 0);
    char msg[512];
    run_frame(&r, rgb, 32, 32);  // t = 0
    run_control(&r, &(ControlEvent){.cmd = CMD_SLOT_SAVE, .value = 1, .source = SRC_OSC}, msg, sizeof msg);
    EXPECT(strcmp(msg, "slot 1 saved") == 0, "msg '%s'", msg);
    float *a = params_of(&r.t);
    run_control(&r, &(ControlEvent){.cmd = CMD_RESET, .value = 77, .source = SRC_OSC}, msg, sizeof msg);
    float *b = params_of(&r.t);
    size_t n = r.t.model.n_params;
    run_control(&r, &(ControlEvent){.cmd = CMD_SLOT_FADE, .value = 1, .source = SRC_MIDI}, msg, sizeof msg);
    EXPECT(strstr(msg, "fading into slot 1 over 1 s") != NULL, "msg '%s'", msg);
    // The fade began at t = 0.1 (1 frame in); the next six frames run at t =
    // 0.1 .. 0.6: the last one at half of the fade's second.
    for (int k = 0; k < 6; k++) run_frame(&r, rgb, 32, 32);
    float *got = params_of(&r.t), *want = tb_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) want[i] = 0.5f * b[i] + 0.5f * a[i];
    double e = max_rel_err(got, want, n, 1e-3);
    EXPECT(e <= 1e-6, "midpoint of the fade: %.3g from the even mix", e);
    for (int k = 0; k < 6; k++) run_frame(&r, rgb, 32, 32);
    free(got);
    got = params_of(&r.t);
    EXPECT(memcmp(got, a, n * sizeof(float)) == 0, "the fade ends on the slot bit for bit");
    run_control(&r, &(ControlEvent){.cmd = CMD_SLOT_RECALL, .value = 9, .source = SRC_OSC}, msg, sizeof msg);
    EXPECT(strstr(msg, "slots are 1 to 8") != NULL, "slot 9: '%s'", msg);
    run_control(&r, &(ControlEvent){.cmd = CMD_SLOT_FADE, .value = 4, .source = SRC_OSC}, msg, sizeof msg);
    EXPECT(strstr(msg, "slot_fade failed: slot 4 is empty") != NULL, "empty slot: '%s'", msg);
    run_close(&r);
    const char *log = test_read_all(s.events);
    EXPECT(log != NULL, "no events file");
    if (log) {
        EXPECT(test_count(log, "\"source\":\"osc\",\"action\":\"slot_save\",\"value\":1}") == 1, "save logged:\n%s", log);
        EXPECT(test_count(log, "\"source\":\"midi\",\"action\":\"slot_fade\",\"seconds\":1,\"value\":1}") == 1,
               "fade start logged:\n%s", log);
        EXPECT(test_count(log, "\"source\":\"midi\",\"action\":\"slot_fade\",\"slot\":1,\"fade\":\"end\"") == 1,
               "fade end logged once:\n%s", log);
        EXPECT(test_count(log, "\n") == 6, "6 lines (save, reset, fade, end, two refusals):\n%s", log);
    }
    unlink(s.events);
    free(a), free(b), free(got), free(want);
}

TEST_MAIN(TEST_ENTRY(lerp_matches_ref_and_ends_exact), TEST_ENTRY(slot_recall_restores_exact_weights),
          TEST_ENTRY(slot_recall_across_optimizers), TEST_ENTRY(slot_fade_passes_through_the_blend),
          TEST_ENTRY(slots_round_trip_through_disk), TEST_ENTRY(run_fade_through_the_loop))
