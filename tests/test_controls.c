// test_controls.c: why it exists: the operator plays lr, momentum, clip, steps,
// memory, ring and pause live, and a headless run sets the same parameters from
// the INI file and flags. One table gives them one range and one step, so the
// three ways in must agree on every value, steps must feel as documented, and
// the control queue must keep order without ever blocking a producer.
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "controls.h"
#include "test.h"

// lr: 4 steps per decade; a step down below 1e-5 stops learning, up from 0 restarts.
TEST_IMPL(lr_steps_four_a_decade) {
    Settings s;
    settings_default(&s);
    LiveParams p;
    live_params_from_settings(&p, &s);
    EXPECT_NEAR(p.v[PARAM_LR], s.lr, 0, "lr from settings");
    live_params_set(&p, PARAM_LR, 0.01f);
    float v = 0.01f;
    for (int i = 0; i < 4; i++) v = live_params_set(&p, PARAM_LR, live_params_nudge(&p, PARAM_LR, 1));
    EXPECT_NEAR(v, 0.1, 1e-6, "four steps up = x10");
    EXPECT_NEAR(live_params_nudge(&p, PARAM_LR, -1), 0.1 / 1.77827941, 1e-6, "one step down");
    EXPECT_NEAR(live_params_set(&p, PARAM_LR, 1e9f), 10.0, 0, "lr clamped to 10");
    EXPECT_NEAR(live_params_set(&p, PARAM_LR, NAN), 10.0, 0, "NaN ignored");
    live_params_set(&p, PARAM_LR, 1e-5f);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_LR, -1), 0, 0, "below 1e-5: learning stops");
    live_params_set(&p, PARAM_LR, 0);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_LR, 1), 1e-5, 1e-10, "up from 0: 1e-5");
}

// momentum: 0.01 steps without float drift, clamped at the table's 0.999.
TEST_IMPL(momentum_steps_without_drift) {
    LiveParams p = {{0}};
    live_params_set(&p, PARAM_MOMENTUM, 0.9f);
    for (int i = 0; i < 9; i++) live_params_set(&p, PARAM_MOMENTUM, live_params_nudge(&p, PARAM_MOMENTUM, 1));
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.99, 1e-6, "nine steps up from 0.9");
    live_params_set(&p, PARAM_MOMENTUM, live_params_nudge(&p, PARAM_MOMENTUM, 1));
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.999, 1e-6, "then the table's maximum");
    for (int i = 0; i < 6; i++) live_params_set(&p, PARAM_MOMENTUM, live_params_nudge(&p, PARAM_MOMENTUM, -1));
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.94, 1e-6, "six steps down");
}

// clip: x sqrt(2); down from small values turns it off; up from off = 1.
TEST_IMPL(clip_steps_and_off) {
    LiveParams p = {{0}};
    live_params_set(&p, PARAM_CLIP, 1.0f);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_CLIP, 1), 1.41421356, 1e-6, "clip up");
    live_params_set(&p, PARAM_CLIP, 0.011f);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_CLIP, -1), 0, 0, "clip down to off");
    live_params_set(&p, PARAM_CLIP, 0);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_CLIP, 1), 1, 0, "clip up from off");
}

TEST_IMPL(integers_round_and_clamp) {
    LiveParams p = {{0}};
    live_params_set(&p, PARAM_STEPS, 64);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_STEPS, 1), 64, 0, "steps max 64, as headless");
    EXPECT_NEAR(live_params_set(&p, PARAM_MEMORY, 2.6f), 3, 0, "memory rounded");
    EXPECT_NEAR(live_params_set(&p, PARAM_MEMORY, -4), 0, 0, "memory min 0");
    live_params_set(&p, PARAM_RING, 1);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_RING, 1), 2, 0, "ring x2 from 1");
    EXPECT(param_by_name("momentum") == PARAM_MOMENTUM && param_by_name("x") == -1 &&
               param_by_name("seed") == -1,
           "live names");
    EXPECT(params_max_batch() == 1 + (int)param_live(PARAM_MEMORY)->max, "largest batch from the table");
}

// The INI reader, the flags and the live controls take the same values: for each
// live parameter, at and just beyond each end of its range, the file accepts
// exactly what the flags accept, and the live value of an accepted one is that
// value unchanged (an out-of-range one is clamped to the same end).
static void check_agreement(int id, double v) {
    const Param *r = param_live(id);
    char text[64], ini[256], flag[80];
    snprintf(text, sizeof text, "%.9g", v);
    snprintf(ini, sizeof ini, "[%s]\n%s = %s\n", r->section, r->key, text);
    snprintf(flag, sizeof flag, "--%s", r->flag);
    char path[64];
    snprintf(path, sizeof path, "/tmp/tabula-agree-%d.ini", id);
    FILE *f = fopen(path, "w");
    fputs(ini, f);
    fclose(f);
    Settings a, b;
    settings_default(&a);
    settings_default(&b);
    TbErr e1 = {{0}}, e2 = {{0}};
    int by_file = settings_load_file(&a, path, &e1) == 0;
    char *argv[] = {"tabula", flag, text, NULL};
    int by_flag = settings_parse_args(&b, 3, argv, &e2) == 0;
    remove(path);
    EXPECT(by_file == by_flag, "%s = %s: file %s, flag %s (%s%s)", r->key, text,
           by_file ? "accepts" : "rejects", by_flag ? "accepts" : "rejects", e1.msg, e2.msg);
    LiveParams p = {{0}};
    float stored = live_params_set(&p, id, (float)v);
    int in_range = v >= r->min && v <= r->max;
    EXPECT(by_file == in_range, "%s = %s: the file %s a value %s the table's range", r->key, text,
           by_file ? "accepts" : "rejects", in_range ? "inside" : "outside");
    if (in_range) {
        EXPECT(stored == (float)v, "%s = %s: live stores %.9g", r->key, text, (double)stored);
        live_params_from_settings(&p, &a);
        EXPECT(p.v[id] == (float)v, "%s = %s from the file: live starts at %.9g", r->key, text,
               (double)p.v[id]);
    } else {
        double end = v < r->min ? r->min : r->max;
        EXPECT(stored == (float)end, "%s = %s: live clamps to %.9g, got %.9g", r->key, text, end,
               (double)stored);
    }
}

// A choice plays as the index of its name: the file and the flags take each
// name, live the index stands for it, and anything else is refused.
static void check_choice(int id) {
    const Param *r = param_live(id);
    int count = param_choice_count(r);
    char name[32];
    for (int i = 0; i < count; i++) {
        Settings a;
        settings_default(&a);
        TbErr e1 = {{0}}, e2 = {{0}};
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", r->flag);
        char *argv[] = {"tabula", flag, (char *)param_choice_name(r, i, name, sizeof name), NULL};
        EXPECT(settings_parse_args(&a, 3, argv, &e1) == 0, "%s %s: %s", flag, name, e1.msg);
        char key[64];
        snprintf(key, sizeof key, "%s.%s", r->section, r->key);
        EXPECT(settings_set(&a, key, name, &e2) == 0, "%s = %s: %s", key, name, e2.msg);
        LiveParams p;
        live_params_from_settings(&p, &a);
        EXPECT(p.v[id] == (float)i, "%s = %s: live index %g, want %d", r->key, name, (double)p.v[id], i);
    }
    Settings a;
    settings_default(&a);
    TbErr err = {{0}};
    char key[64];
    snprintf(key, sizeof key, "%s.%s", r->section, r->key);
    EXPECT(settings_set(&a, key, "bogus", &err) == -1 && strstr(err.msg, r->choices), "%s = bogus: %s",
           r->key, err.msg);
    LiveParams p = {{0}};
    EXPECT(live_params_set(&p, id, (float)count + 3) == (float)(count - 1), "%s: index past the end clamps",
           r->key);
    EXPECT(live_params_set(&p, id, -2) == 0, "%s: index below 0 clamps", r->key);
}

TEST_IMPL(file_flags_and_live_agree) {
    for (int id = 0; id < PARAM_COUNT; id++) {
        const Param *r = param_live(id);
        EXPECT(r->section && r->flag, "live parameter %d needs an INI key and a flag", id);
        if (!r->section || !r->flag) continue;
        if (r->type == P_CHOICE) {
            check_choice(id);
            continue;
        }
        double span = r->max - r->min, eps = span * 1e-3 > 0.001 ? 0.001 : span * 1e-3;
        if (param_is_int(id)) eps = 1;
        check_agreement(id, r->min);
        check_agreement(id, r->max);
        check_agreement(id, r->min - eps);
        check_agreement(id, r->max + eps);
    }
    // The reported cases: the window used to take 16 steps and momentum 0.99 at most.
    check_agreement(PARAM_STEPS, 32);
    check_agreement(PARAM_MOMENTUM, 0.995);
}

static ControlQueue q;

static void *producer(void *arg) {
    int base = *(int *)arg;
    for (int i = 0; i < 100; i++) {
        while (control_push(&q, (ControlEvent){.cmd = CMD_SET, .param = PARAM_LR, .value = (float)(base + i)}) != 0) {
        }
    }
    return NULL;
}

// FIFO, bounded (drops and counts), safe with two producers.
TEST_IMPL(queue_fifo_bounded_two_producers) {
    control_queue_init(&q);
    for (int i = 0; i < CONTROL_QUEUE_CAP; i++) control_push(&q, (ControlEvent){.cmd = CMD_SET, .param = PARAM_LR, .value = (float)i});
    EXPECT(control_push(&q, (ControlEvent){.cmd = CMD_QUIT}) == -1 && q.dropped == 1, "full queue drops");
    ControlEvent e;
    int order_ok = 1, n = 0;
    while (control_pop(&q, &e)) order_ok &= (e.value == (float)n++);
    EXPECT(order_ok && n == CONTROL_QUEUE_CAP, "FIFO order, %d events", n);
    pthread_t t1, t2;
    int b1 = 0, b2 = 1000;
    pthread_create(&t1, NULL, producer, &b1);
    pthread_create(&t2, NULL, producer, &b2);
    int got = 0, last1 = -1, last2 = 999, mono = 1;
    while (got < 200) {
        if (!control_pop(&q, &e)) continue;
        int v2 = (int)e.value;
        if (v2 < 1000) mono &= v2 > last1, last1 = v2;
        else mono &= v2 > last2, last2 = v2;
        got++;
    }
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    EXPECT(mono && got == 200, "each producer's events arrive in order");
    control_queue_destroy(&q);
}

TEST_MAIN(TEST_ENTRY(lr_steps_four_a_decade), TEST_ENTRY(momentum_steps_without_drift),
          TEST_ENTRY(clip_steps_and_off), TEST_ENTRY(integers_round_and_clamp),
          TEST_ENTRY(file_flags_and_live_agree), TEST_ENTRY(queue_fifo_bounded_two_producers))
