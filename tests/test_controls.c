// test_controls.c: live parameter steps and clamps, and the control queue.
#include <math.h>
#include <pthread.h>

#include "controls.h"
#include "test.h"

static ControlQueue q;

static void *producer(void *arg) {
    int base = *(int *)arg;
    for (int i = 0; i < 100; i++) {
        while (control_push(&q, (ControlEvent){CMD_SET, PARAM_LR, (float)(base + i)}) != 0) {
        }
    }
    return NULL;
}

int main(void) {
    Settings s;
    settings_default(&s);
    LiveParams p;
    live_params_from_settings(&p, &s);
    EXPECT_NEAR(p.v[PARAM_LR], s.lr, 0, "lr from settings");

    // lr: 4 steps per decade.
    live_params_set(&p, PARAM_LR, 0.01f);
    float v = 0.01f;
    for (int i = 0; i < 4; i++) v = live_params_set(&p, PARAM_LR, live_params_nudge(&p, PARAM_LR, 1));
    EXPECT_NEAR(v, 0.1, 1e-6, "four steps up = x10");
    EXPECT_NEAR(live_params_nudge(&p, PARAM_LR, -1), 0.1 / 1.77827941, 1e-6, "one step down");
    EXPECT_NEAR(live_params_set(&p, PARAM_LR, 1e9f), 10.0, 0, "lr clamped to 10");
    EXPECT_NEAR(live_params_set(&p, PARAM_LR, NAN), 10.0, 0, "NaN ignored");

    // momentum: 0.01 steps without float drift, clamped at 0.99.
    live_params_set(&p, PARAM_MOMENTUM, 0.9f);
    for (int i = 0; i < 20; i++) live_params_set(&p, PARAM_MOMENTUM, live_params_nudge(&p, PARAM_MOMENTUM, 1));
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.99, 1e-6, "momentum stops at 0.99");
    for (int i = 0; i < 5; i++) live_params_set(&p, PARAM_MOMENTUM, live_params_nudge(&p, PARAM_MOMENTUM, -1));
    EXPECT_NEAR(p.v[PARAM_MOMENTUM], 0.94, 1e-6, "five steps down");

    // clip: x sqrt(2); down from small values turns it off; up from off = 1.
    live_params_set(&p, PARAM_CLIP, 1.0f);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_CLIP, 1), 1.41421356, 1e-6, "clip up");
    live_params_set(&p, PARAM_CLIP, 0.011f);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_CLIP, -1), 0, 0, "clip down to off");
    live_params_set(&p, PARAM_CLIP, 0);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_CLIP, 1), 1, 0, "clip up from off");

    // integers.
    live_params_set(&p, PARAM_STEPS, 16);
    EXPECT_NEAR(live_params_nudge(&p, PARAM_STEPS, 1), 16, 0, "steps max 16");
    EXPECT_NEAR(live_params_set(&p, PARAM_MEMORY, 2.6f), 3, 0, "memory rounded");
    EXPECT_NEAR(live_params_set(&p, PARAM_MEMORY, -4), 0, 0, "memory min 0");
    EXPECT(param_by_name("momentum") == PARAM_MOMENTUM && param_by_name("x") == -1, "names");

    // Queue: FIFO, bounded (drops and counts), safe with two producers.
    control_queue_init(&q);
    for (int i = 0; i < CONTROL_QUEUE_CAP; i++) control_push(&q, (ControlEvent){CMD_SET, PARAM_LR, (float)i});
    EXPECT(control_push(&q, (ControlEvent){CMD_QUIT, 0, 0}) == -1 && q.dropped == 1, "full queue drops");
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
    return test_finish();
}
