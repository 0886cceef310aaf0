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

void atlas_lut(uint8_t lut[256][3]) {
    for (int i = 0; i < 256; i++) compose_inferno((float)i / 255.0f, lut[i]);
}

void atlas_tile_geom(const Model *m, const AtlasBlock *b, TileGeom *g) {
    *g = (TileGeom){.ch = b->ch, .cols = b->cols, .sw = b->sw, .sh = b->sh, .tw = b->tw, .th = b->th,
                    .x = b->x, .y = b->y, .image = b->act == m->n_layers, .gap = ATLAS_GAP_RGB, .bg = ATLAS_BG_RGB};
    if (g->image) g->ch = 3;
}

void atlas_draw_rgb(const AtlasBlock *b, const uint8_t *rgb, uint8_t *out, size_t pitch, int bpp) {
    for (int y = 0; y < b->h; y++) {
        uint8_t *row = out + (size_t)(b->y + y) * pitch + (size_t)b->x * bpp;
        const uint8_t *src = rgb + (size_t)(y * b->sh / b->th) * b->sw * 3;
        for (int x = 0; x < b->w; x++) {
            memcpy(row + (size_t)bpp * x, src + (size_t)(x * b->sw / b->tw) * 3, 3);
            if (bpp == 4) row[4 * x + 3] = 255;
        }
    }
}

void atlas_draw(const Model *m, int focus, const float *acts, const uint8_t *solo_rgb, uint8_t *out) {
    uint8_t lut[256][3];  // 256 polynomials: nothing next to the tiles
    atlas_lut(lut);
    AtlasBlock b[ATLAS_MAX_BLOCKS];
    int w, h, n = atlas_geometry(m, focus, solo_rgb != NULL, b, &w, &h);
    memset(out, ATLAS_BG_RGB, (size_t)w * h * 3);
    for (int k = 0; k < n; k++) {
        if (b[k].act < 0) {
            atlas_draw_rgb(&b[k], solo_rgb, out, (size_t)w * 3, 3);
            continue;
        }
        TileGeom g;
        atlas_tile_geom(m, &b[k], &g);
        tiles_draw(out, (size_t)w * 3, 3, acts + m->act_off[b[k].act], &g, (const uint8_t(*)[3])lut);
    }
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
