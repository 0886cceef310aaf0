// atlas.c: the layer atlas on the CPU (atlas.h).
#include "atlas.h"

#include <math.h>
#include <string.h>

#include "compose.h"

enum { BLOCK_GAP = 6 };  // pixels between layers and between the rows

// Drawn size of an sw x sh picture at s pixels per value, or, larger than
// `most` on a side, shrunk by a whole factor to fit (a training size of
// 1920x1088 would otherwise make an atlas wider than a texture may be).
static void fit(AtlasBlock *b, int sw, int sh, int s, int most) {
    int big = sw > sh ? sw : sh, sub = (big + most - 1) / most;
    while (s > 1 && big * s > most) s--;
    b->sw = sw, b->sh = sh;
    if (sub > 1) b->scale = 1, b->tw = (sw + sub - 1) / sub, b->th = (sh + sub - 1) / sub;
    else b->scale = s, b->tw = sw * s, b->th = sh * s;
}

// Block of activation i at scale s: a near-square grid of its channels, or an
// RGB image for the output (act n_layers) and the solo view (act -1).
static AtlasBlock block_of(const Model *m, int act, int s) {
    AtlasBlock b = {.act = act};
    if (act < 0 || act == m->n_layers) {
        b.ch = 1, b.cols = b.rows = 1;
        fit(&b, m->spec.width, m->spec.height, s, ATLAS_IMAGE_MAX);
        b.w = b.tw, b.h = b.th;
        return b;
    }
    const Layer *L = &m->layers[act - 1];
    b.ch = L->cout;
    b.cols = (int)ceil(sqrt((double)b.ch));
    b.rows = (b.ch + b.cols - 1) / b.cols;
    fit(&b, L->wout, L->hout, s, ATLAS_TILE_MAX);
    b.w = b.cols * (b.tw + 1) - 1, b.h = b.rows * (b.th + 1) - 1;
    return b;
}

// Blocks in a row from the left margin at y, each centred in the row's
// height; returns the row's right end.
static int place_row(AtlasBlock *b, int n, int y, int row_h) {
    int x = BLOCK_GAP;
    for (int i = 0; i < n; i++) {
        b[i].x = x, b[i].y = y + (row_h - b[i].h) / 2;
        x += b[i].w + BLOCK_GAP;
    }
    return x;
}

static int row_height(const AtlasBlock *b, int n) {
    int h = 0;
    for (int i = 0; i < n; i++) h = b[i].h > h ? b[i].h : h;
    return h;
}

int atlas_geometry(const Model *m, int focus, int solo, AtlasBlock *b, int *w, int *h) {
    int nb = model_bottleneck_act(m), nl = m->n_layers;
    if (focus >= 1 && focus < nl) {  // alone, with no margin: it fills the pane
        b[0] = block_of(m, focus, focus == nb ? ATLAS_BN_SCALE : 1);
        *w = b[0].w, *h = b[0].h;
        return 1;
    }
    int n0 = 0, n = 0;
    for (int i = 1; i <= nb; i++) b[n++] = block_of(m, i, i == nb ? ATLAS_BN_SCALE : 1);
    n0 = n;
    for (int i = nb + 1; i <= nl; i++) b[n++] = block_of(m, i, 1);
    if (solo) b[n++] = block_of(m, -1, 1);
    int h0 = row_height(b, n0), h1 = row_height(b + n0, n - n0);
    int w0 = place_row(b, n0, BLOCK_GAP, h0), w1 = place_row(b + n0, n - n0, h0 + 2 * BLOCK_GAP, h1);
    *w = w0 > w1 ? w0 : w1;  // a margin of BLOCK_GAP all round
    *h = h0 + h1 + 3 * BLOCK_GAP;
    return n;
}

size_t atlas_max_bytes(const Model *m) {
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h;
    atlas_geometry(m, -1, 1, b, &w, &h);
    size_t most = (size_t)w * h * 3;
    for (int i = 1; i < m->n_layers; i++) {  // a focused layer is never larger, but say so
        atlas_geometry(m, i, 0, b, &w, &h);
        if ((size_t)w * h * 3 > most) most = (size_t)w * h * 3;
    }
    return most;
}

void atlas_read(Backend *be, const Model *m, float *acts) {
    for (int i = 0; i <= m->n_layers; i++) be->get_activation(be, i, acts + m->act_off[i]);
}

// One channel (sw x sh floats) into its tile: min..max through the colour
// map, each pixel the nearest value (xmap: the value's column for each of the
// tile's tw columns, made once per layer: no division per pixel).
static void draw_tile(uint8_t *out, int ow, const AtlasBlock *b, int tx, int ty, const float *x, const int *xmap,
                      const uint8_t (*lut)[3]) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < b->sw * b->sh; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    float k = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int y = 0; y < b->th; y++) {
        uint8_t *row = out + ((size_t)(ty + y) * ow + tx) * 3;
        const float *src = x + (size_t)(y * b->sh / b->th) * b->sw;
        for (int xx = 0; xx < b->tw; xx++) {
            int v = (int)((src[xmap[xx]] - lo) * k + 0.5f);
            const uint8_t *c = lut[v < 0 ? 0 : v > 255 ? 255 : v];
            row[3 * xx] = c[0], row[3 * xx + 1] = c[1], row[3 * xx + 2] = c[2];
        }
    }
}

static void draw_rgb(uint8_t *out, int ow, const AtlasBlock *b, const uint8_t *rgb) {
    for (int y = 0; y < b->h; y++) {
        uint8_t *row = out + ((size_t)(b->y + y) * ow + b->x) * 3;
        const uint8_t *src = rgb + (size_t)(y * b->sh / b->th) * b->sw * 3;
        for (int x = 0; x < b->w; x++) memcpy(row + 3 * x, src + (size_t)(x * b->sw / b->tw) * 3, 3);
    }
}

static void fill_rect(uint8_t *out, int ow, int x, int y, int w, int h, uint8_t v) {
    for (int r = 0; r < h; r++) memset(out + ((size_t)(y + r) * ow + x) * 3, v, (size_t)w * 3);
}

void atlas_draw(const Model *m, int focus, const float *acts, const uint8_t *solo_rgb, uint8_t *out) {
    uint8_t lut[256][3];  // 256 polynomials: nothing next to the tiles
    for (int i = 0; i < 256; i++) compose_inferno((float)i / 255.0f, lut[i]);
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h, n = atlas_geometry(m, focus, solo_rgb != NULL, b, &w, &h);
    memset(out, ATLAS_BG_RGB, (size_t)w * h * 3);
    uint8_t *frame = tb_malloc((size_t)m->spec.width * m->spec.height * 3);
    for (int k = 0; k < n; k++) {
        const AtlasBlock *B = &b[k];
        if (B->act < 0 || B->act == m->n_layers) {
            const uint8_t *src = solo_rgb;
            if (B->act >= 0) {  // the output activation is the reconstruction
                tensor_to_frame(frame, acts + m->act_off[B->act], m->spec.height, m->spec.width);
                src = frame;
            }
            draw_rgb(out, w, B, src);
            continue;
        }
        fill_rect(out, w, B->x, B->y, B->w, B->h, ATLAS_GAP_RGB);
        // Unused cells of the last row: background, not tiles.
        int used = B->ch - (B->rows - 1) * B->cols;
        if (used < B->cols) {
            int x0 = B->x + used * (B->tw + 1) - 1;
            fill_rect(out, w, x0, B->y + (B->rows - 1) * (B->th + 1), B->x + B->w - x0, B->th, ATLAS_BG_RGB);
        }
        size_t hw = (size_t)B->sw * B->sh;
        int *xmap = tb_malloc((size_t)B->tw * sizeof(int));
        for (int xx = 0; xx < B->tw; xx++) xmap[xx] = xx * B->sw / B->tw;
        for (int c = 0; c < B->ch; c++)
            draw_tile(out, w, B, B->x + (c % B->cols) * (B->tw + 1), B->y + (c / B->cols) * (B->th + 1),
                      acts + m->act_off[B->act] + (size_t)c * hw, xmap, (const uint8_t(*)[3])lut);
        free(xmap);
    }
    free(frame);
}

void atlas_solo(Backend *be, const Model *m, const float *code, int c, int n, float *scratch, uint8_t *rgb) {
    // The bottleneck control's own op (ops.h) with a mask that keeps channels
    // c.. c+n-1: the decoder sees what it would with only those kept.
    int nb = model_bottleneck_act(m), C = model_bottleneck_channels(m);
    float *mask = tb_calloc((size_t)C, sizeof(float));
    for (int i = c < 0 ? 0 : c; i < c + n && i < C; i++) mask[i] = 1.0f;
    bottleneck_forward(scratch, code, mask, 1, C, (int)(m->act_n[nb] / (size_t)C), 0.0f, 0, 0);
    free(mask);
    be->decode(be, scratch, rgb);
}
