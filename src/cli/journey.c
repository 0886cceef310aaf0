// journey.c: keyframes of bottleneck codes and the path through them (journey.h).
#include "journey.h"

#include <math.h>
#include <string.h>

void journey_init(Journey *j, size_t n_code, size_t frame_bytes, int mode, float seconds) {
    memset(j, 0, sizeof *j);
    j->n_code = n_code;
    j->frame_bytes = frame_bytes;
    j->mode = mode;
    j->seconds = seconds > 0 ? seconds : 1;
    j->cur = tb_calloc(n_code, sizeof(float));
}

void journey_free(Journey *j) {
    for (int i = 0; i < JOURNEY_KEYS; i++) free(j->code[i]), free(j->rec[i]);
    free(j->cur);
    memset(j, 0, sizeof *j);
}

int journey_store(Journey *j, int i, const float *code, const uint8_t *rec) {
    if (i >= 0 && (i >= JOURNEY_KEYS || i > j->n)) return -1;
    if (i < 0 && j->n == JOURNEY_KEYS) {  // full: the oldest goes, the rest move down
        float *c0 = j->code[0];
        uint8_t *r0 = j->rec[0];
        memmove(j->code, j->code + 1, (JOURNEY_KEYS - 1) * sizeof j->code[0]);
        memmove(j->rec, j->rec + 1, (JOURNEY_KEYS - 1) * sizeof j->rec[0]);
        j->code[JOURNEY_KEYS - 1] = c0, j->rec[JOURNEY_KEYS - 1] = r0;
        i = JOURNEY_KEYS - 1;
    } else if (i < 0) {
        i = j->n;
    }
    if (!j->code[i]) j->code[i] = tb_malloc(j->n_code * sizeof(float));
    if (!j->rec[i]) j->rec[i] = tb_malloc(j->frame_bytes);
    memcpy(j->code[i], code, j->n_code * sizeof(float));
    if (rec) memcpy(j->rec[i], rec, j->frame_bytes);
    else memset(j->rec[i], 0, j->frame_bytes);
    if (i == j->n) j->n++;
    return i;
}

void journey_lerp(float *out, const float *a, const float *b, size_t n, double u) {
    // a + u*(b - a) would not give b exactly at u = 1: weights of 1 and 0 do.
    float wa = (float)(1.0 - u), wb = (float)u;
    for (size_t i = 0; i < n; i++) out[i] = wa * a[i] + wb * b[i];
}

void journey_slerp(float *out, const float *a, const float *b, size_t n, double u) {
    double aa = 0, bb = 0, ab = 0;
    for (size_t i = 0; i < n; i++) {
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
        ab += (double)a[i] * b[i];
    }
    double cosv = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 1.0;
    // Nearly parallel (or a zero code): the angle says nothing; nearly
    // opposite: no one great circle, and sin(th) near 0. Linear then.
    if (cosv > 0.9995 || cosv < -0.9995) {
        journey_lerp(out, a, b, n, u);
        return;
    }
    double th = acos(cosv), s = sin(th);
    // At u = 0: sin(th)/sin(th) = 1 and sin(0) = 0, so the ends are exact.
    double wa = sin((1.0 - u) * th) / s, wb = sin(u * th) / s;
    for (size_t i = 0; i < n; i++) out[i] = (float)(wa * a[i] + wb * b[i]);
}

void journey_curve(float *out, const float *p0, const float *p1, const float *p2, const float *p3,
                   size_t n, double u) {
    // Uniform Catmull-Rom as weights of the four points: (0, 1, 0, 0) at u = 0
    // and (0, 0, 1, 0) at u = 1, exactly.
    double u2 = u * u, u3 = u2 * u;
    float w0 = (float)(0.5 * (-u + 2 * u2 - u3)), w1 = (float)(0.5 * (2 - 5 * u2 + 3 * u3));
    float w2 = (float)(0.5 * (u + 4 * u2 - 3 * u3)), w3 = (float)(0.5 * (u3 - u2));
    for (size_t i = 0; i < n; i++) out[i] = w0 * p0[i] + w1 * p1[i] + w2 * p2[i] + w3 * p3[i];
}

void journey_at(const Journey *j, double p, float *out) {
    CHECK(j->n >= 1, "journey with no keyframe");
    double k = floor(p);
    double u = p - k;
    int n = j->n, i = (int)fmod(k, n);
    if (i < 0) i += n;
    const float *a = j->code[i], *b = j->code[(i + 1) % n];
    if (u == 0 || n == 1) {
        memcpy(out, a, j->n_code * sizeof(float));
        return;
    }
    if (j->mode == JOURNEY_SLERP) journey_slerp(out, a, b, j->n_code, u);
    else if (j->mode == JOURNEY_CURVE)
        journey_curve(out, j->code[(i + n - 1) % n], a, b, j->code[(i + 2) % n], j->n_code, u);
    else journey_lerp(out, a, b, j->n_code, u);
}

int journey_start(Journey *j, double now) {
    if (j->n < 1) return -1;
    j->playing = 1;
    j->t0 = now;
    return 0;
}

void journey_stop(Journey *j) { j->playing = 0; }

const float *journey_code(Journey *j, double now) {
    double p = (now - j->t0) / j->seconds;
    journey_at(j, p > 0 ? p : 0, j->cur);
    return j->cur;
}

int journey_store_trainer(Journey *j, Trainer *t, int i) {
    Backend *b = t->be;
    uint8_t *rec = tb_malloc(j->frame_bytes);
    b->get_activation(b, model_bottleneck_act(&t->model), j->cur);
    b->get_output(b, 0, rec);
    int slot = journey_store(j, i, j->cur, rec);
    free(rec);
    return slot;
}

void journey_render(Journey *j, Trainer *t, double now, uint8_t *rgb) {
    t->be->decode(t->be, journey_code(j, now), rgb);
}
