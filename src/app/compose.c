// compose.c: the recorded picture on the CPU (see compose.h).
#include "compose.h"

#include <math.h>
#include <string.h>

#include <libswscale/swscale.h>

struct Composer {
    ComposeOpts o;
    int n, rect[3][4];
    struct SwsContext *sws;  // one pane: tw x th -> pane size (all panes share it)
    uint8_t *pane;           // tw*th*3: the pane before scaling (flipped, or the error)
    uint8_t *scaled;         // pane w*h*3
    uint8_t lut[766][3];     // error colour by the sum of the three absolute differences
};

int compose_panes(int layout, int tw, int th, int ow, int oh, int rect[3][4]) {
    int n = layout + 1;
    double a = (double)tw / (double)th;
    int gap = n > 1 ? (int)lround(oh * 0.0125) : 0;
    double avail = (double)(ow - (n - 1) * gap) / n;
    int pw, ph;
    if (avail / a <= oh) {
        pw = (int)floor(avail);
        ph = (int)lround(pw / a);
    } else {
        ph = oh;
        pw = (int)lround(oh * a);
    }
    if (pw < 1) pw = 1;
    if (ph < 1) ph = 1;
    int x = (ow - (n * pw + (n - 1) * gap)) / 2, y = (oh - ph) / 2;
    for (int i = 0; i < n; i++) {
        rect[i][0] = x + i * (pw + gap);
        rect[i][1] = y;
        rect[i][2] = pw;
        rect[i][3] = ph;
    }
    return n;
}

void compose_inferno(float t, uint8_t rgb[3]) {
    // The shader's polynomial fit (shaders/display_frag.glsl), per channel.
    static const double c[7][3] = {
        {0.0002189403691192265, 0.001651004631001012, -0.01948089843709184},
        {0.1065134194856116, 0.5639564367884091, 3.932712388889277},
        {11.60249308247187, -3.972853965665698, -15.9423941062914},
        {-41.70399613139459, 17.43639888205313, 44.35414519872813},
        {77.162935699427, -33.40235894210092, -81.80730925738993},
        {-71.31942824499214, 32.62606426397723, 73.20951985803202},
        {25.13112622477341, -12.24266895238567, -23.07032500287172},
    };
    double x = t < 0 ? 0 : t > 1 ? 1 : t;
    for (int k = 0; k < 3; k++) {
        double v = c[6][k];
        for (int i = 5; i >= 0; i--) v = c[i][k] + x * v;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        rgb[k] = (uint8_t)lround(v * 255);
    }
}

Composer *compose_new(const ComposeOpts *o, TbErr *err) {
    if (o->layout < 0 || o->layout >= COMPOSE_LAYOUTS || o->tw < 1 || o->th < 1 || o->ow < 1 || o->oh < 1) {
        tb_fail(err, "compose: bad layout %d or size %dx%d -> %dx%d", o->layout, o->tw, o->th, o->ow, o->oh);
        return NULL;
    }
    Composer *c = tb_calloc(1, sizeof *c);
    c->o = *o;
    c->n = compose_panes(o->layout, o->tw, o->th, o->ow, o->oh, c->rect);
    int pw = c->rect[0][2], ph = c->rect[0][3];
    c->sws = sws_getContext(o->tw, o->th, AV_PIX_FMT_RGB24, pw, ph, AV_PIX_FMT_RGB24,
                            SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!c->sws) {
        tb_fail(err, "compose: swscale cannot scale %dx%d to %dx%d", o->tw, o->th, pw, ph);
        free(c);
        return NULL;
    }
    c->pane = tb_malloc((size_t)o->tw * o->th * 3);
    c->scaled = tb_malloc((size_t)pw * ph * 3);
    float gain = o->gain > 0 ? o->gain : 4;
    for (int s = 0; s < 766; s++) compose_inferno(gain * (float)s / (3 * 255.0f), c->lut[s]);
    return c;
}

void compose_free(Composer *c) {
    if (!c) return;
    sws_freeContext(c->sws);
    free(c->pane);
    free(c->scaled);
    free(c);
}

// Pane content at the training size: a frame (flipped if asked: 0 input,
// 1 reconstruction, 3 the network's input), or the error (2).
static const uint8_t *pane_source(Composer *c, int mode, const uint8_t *in, const uint8_t *net, const uint8_t *rec) {
    int w = c->o.tw, h = c->o.th;
    const uint8_t *src = mode == 0 ? in : mode == 3 ? net : rec;
    if (mode == 3) mode = 0;
    if (mode < 2 && !c->o.flip) return src;
    for (int y = 0; y < h; y++) {
        uint8_t *d = c->pane + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            int sx = c->o.flip ? w - 1 - x : x;
            size_t i = ((size_t)y * w + sx) * 3;
            if (mode < 2) {
                memcpy(d + 3 * x, src + i, 3);
                continue;
            }
            int s = abs(in[i] - rec[i]) + abs(in[i + 1] - rec[i + 1]) + abs(in[i + 2] - rec[i + 2]);
            memcpy(d + 3 * x, c->lut[s], 3);
        }
    }
    return c->pane;
}

void compose_frame(Composer *c, const uint8_t *in, const uint8_t *net, const uint8_t *rec, uint8_t *out) {
    // Pane kinds per layout: 0 input, 1 reconstruction, 2 error, 3 the network's
    // input (the triptych's middle while a transform is in force).
    static const int modes[COMPOSE_LAYOUTS][3] = {{1}, {0, 1}, {0, 1, 2}};
    static const int world[3] = {0, 3, 1};
    memset(out, 0, (size_t)c->o.ow * c->o.oh * 3);
    int pw = c->rect[0][2], ph = c->rect[0][3];
    for (int i = 0; i < c->n; i++) {
        int mode = c->o.layout == COMPOSE_TRIPTYCH && net ? world[i] : modes[c->o.layout][i];
        const uint8_t *src = pane_source(c, mode, in, net, rec);
        const uint8_t *sp[4] = {src, NULL, NULL, NULL};
        int ss[4] = {c->o.tw * 3, 0, 0, 0};
        uint8_t *dp[4] = {c->scaled, NULL, NULL, NULL};
        int ds[4] = {pw * 3, 0, 0, 0};
        sws_scale(c->sws, sp, ss, 0, c->o.th, dp, ds);
        for (int y = 0; y < ph; y++)
            memcpy(out + ((size_t)(c->rect[i][1] + y) * c->o.ow + c->rect[i][0]) * 3, c->scaled + (size_t)y * pw * 3,
                   (size_t)pw * 3);
    }
}
