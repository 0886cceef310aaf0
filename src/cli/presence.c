// presence.c: the empty-room detector (presence.h).
#include "presence.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int presence_mode_parse(const char *name) {
    static const char *const names[] = {"off", "slow", "pause"};
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

void presence_init(Presence *p, const PresenceConfig *c) {
    memset(p, 0, sizeof *p);
    p->c = *c;
    p->moving = 1;
}

// Cell i of n over a length of len pixels: [*a, *b), never empty (a frame
// narrower than the thumbnail repeats pixels).
static void cell_span(int i, int n, int len, int *a, int *b) {
    *a = (int)((long)i * len / n);
    *b = (int)((long)(i + 1) * len / n);
    if (*b <= *a) *b = *a + 1;
}

void presence_thumb(const uint8_t *rgb, int w, int h, float *thumb) {
    for (int cy = 0; cy < PRESENCE_TH; cy++) {
        int y0, y1;
        cell_span(cy, PRESENCE_TH, h, &y0, &y1);
        for (int cx = 0; cx < PRESENCE_TW; cx++) {
            int x0, x1;
            cell_span(cx, PRESENCE_TW, w, &x0, &x1);
            unsigned long sum = 0;
            for (int y = y0; y < y1; y++) {
                const uint8_t *px = rgb + ((size_t)y * w + x0) * 3;
                for (int x = x0; x < x1; x++, px += 3) sum += 77u * px[0] + 150u * px[1] + 29u * px[2];
            }
            long count = (long)(y1 - y0) * (x1 - x0);
            thumb[cy * PRESENCE_TW + cx] = (float)((double)sum / (256.0 * 255.0 * (double)count));
        }
    }
}

float presence_measure(Presence *p, const uint8_t *rgb, int w, int h, double now) {
    float cur[PRESENCE_TW * PRESENCE_TH];
    presence_thumb(rgb, w, h, cur);
    float m = 0;
    if (p->have_ref) {
        double sum = 0;
        for (int i = 0; i < PRESENCE_TW * PRESENCE_TH; i++) sum += fabsf(cur[i] - p->ref[i]);
        m = (float)(sum / (PRESENCE_TW * PRESENCE_TH));
    }
    if (!p->have_ref || now - p->ref_t >= PRESENCE_REF_S) {
        memcpy(p->ref, cur, sizeof cur);
        p->have_ref = 1;
        p->ref_t = now;
    }
    p->level = m;
    return m;
}

int presence_feed(Presence *p, float m, double now) {
    if (p->c.mode == PRESENCE_OFF) return 0;
    p->level = m;
    if (m > p->c.threshold * PRESENCE_HYST) {
        p->moving = 1;
    } else if (m < p->c.threshold && p->moving) {
        p->moving = 0;
        p->still_since = now;
    }
    if (p->moving && p->empty) {
        p->empty = 0;
        return -1;
    }
    if (!p->moving && !p->empty && now - p->still_since >= p->c.after_s) {
        p->empty = 1;
        return 1;
    }
    return 0;
}

int presence_pausing(const Presence *p) { return p->empty && p->c.mode == PRESENCE_PAUSE; }

float presence_lr_factor(const Presence *p) {
    return p->empty && p->c.mode == PRESENCE_SLOW ? p->c.slow_factor : 1.0f;
}

void presence_describe(const Presence *p, char *buf, size_t n) {
    if (!p->empty) snprintf(buf, n, "learning resumed");
    else if (p->c.mode == PRESENCE_PAUSE) snprintf(buf, n, "empty room: learning paused");
    else snprintf(buf, n, "empty room: learning slowed (lr x%.3g)", (double)p->c.slow_factor);
}
