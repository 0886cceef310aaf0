// display.c: the window, the textures, the pane layouts, keys and screenshots.
// GLFW + GLEW, OpenGL 3.3 core. The overlay text lives in hud.c.
#define _POSIX_C_SOURCE 200809L
#include "display.h"

#include <math.h>
#include <string.h>

#include "compose.h"
#include "display_int.h"

// A private copy (static: no clash with another user of stb_image_write);
// "static inline" so the writers we do not call raise no warnings.
#define STB_IMAGE_WRITE_STATIC
#define STBIWDEF static inline
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

static int g_open;             // GLFW is process-wide: one display at a time
static char g_glfw_err[512];  // last GLFW error, for the message display_open returns

static void on_glfw_error(int code, const char *desc) {
    snprintf(g_glfw_err, sizeof g_glfw_err, "%s", desc);
    tb_log("display: GLFW error 0x%x: %s", code, desc);
}

// ---------------------------------------------------------------- keys

static void push_key(Display *d, DisplayKey k) {
    if (d->key_count == KEY_RING) {  // full: the newest intent wins
        d->key_head = (d->key_head + 1) % KEY_RING;
        d->key_count--;
    }
    d->keys[(d->key_head + d->key_count) % KEY_RING] = k;
    d->key_count++;
}

void display_on_key(GLFWwindow *w, int key, int scancode, int action, int mods) {
    if (action == GLFW_RELEASE) return;
    Display *d = glfwGetWindowUserPointer(w);
    if (d) push_key(d, (DisplayKey){key, scancode, action, mods});
}

int display_poll_key(Display *d, DisplayKey *out) {
    if (d->key_count == 0) return 0;
    *out = d->keys[d->key_head];
    d->key_head = (d->key_head + 1) % KEY_RING;
    d->key_count--;
    return 1;
}

void display_inject_key(Display *d, int key, int mods) {
    int sc = key >= GLFW_KEY_SPACE && key <= GLFW_KEY_LAST ? glfwGetKeyScancode(key) : -1;
    push_key(d, (DisplayKey){key, sc, GLFW_PRESS, mods});
}

// ---------------------------------------------------------------- textures

static GLuint make_texture(void) {
    GLuint t = 0;
    glGenTextures(1, &t);
    glBindTexture(GL_TEXTURE_2D, t);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    // Black until the first image: a pane never samples an undefined texture.
    static const uint8_t black[4] = {0, 0, 0, 255};
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, 1, 1, 0, GL_RGBA, GL_UNSIGNED_BYTE, black);
    return t;
}

// Upload an RGB8 image, reallocating the texture when the size changed.
// *tw, *th: the texture's size (set to 0 on failure so the next call retries).
static void upload_rgb(Display *d, GLuint tex, int *tw, int *th, const uint8_t *rgb, int w,
                       int h, const char *what) {
    if (!rgb || w <= 0 || h <= 0 || w > d->max_tex || h > d->max_tex) {
        tb_log("display: %s: ignoring a %dx%d image (limit %d)", what, w, h, (int)d->max_tex);
        return;
    }
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);  // RGB rows are not 4-byte aligned
    glBindTexture(GL_TEXTURE_2D, tex);
    if (w != *tw || h != *th)
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, w, h, 0, GL_RGB, GL_UNSIGNED_BYTE, rgb);
    else
        glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, rgb);
    *tw = w;
    *th = h;
    if (!gl_ok(what)) *tw = *th = 0;
}

void display_set_input(Display *d, const uint8_t *rgb, int w, int h) {
    upload_rgb(d, d->tex_in, &d->in_w, &d->in_h, rgb, w, h, "camera texture");
}

void display_set_net_input(Display *d, const uint8_t *rgb, int w, int h) {
    d->net_on = rgb != NULL;
    if (rgb) upload_rgb(d, d->tex_net, &d->net_w, &d->net_h, rgb, w, h, "network input texture");
}

void display_set_recon(Display *d, const uint8_t *rgb, int w, int h) {
    upload_rgb(d, d->tex_rec, &d->rec_w, &d->rec_h, rgb, w, h, "reconstruction texture");
}

void display_set_atlas(Display *d, const uint8_t *rgb, int w, int h) {
    upload_rgb(d, d->tex_atlas, &d->atlas_w, &d->atlas_h, rgb, w, h, "atlas texture");
}

void display_set_channels(Display *d, int n) {
    d->nch = n < 1 ? 1 : n > DISPLAY_CHANNELS ? DISPLAY_CHANNELS : n;
    for (int i = 1; i < d->nch; i++)
        if (!d->tex_ch[i]) d->tex_ch[i] = make_texture();
    if (d->windows) display_windows_place(d);  // fewer channels: their windows close
}

void display_set_channel(Display *d, int i, const uint8_t *rgb, int w, int h) {
    if (i >= 1 && i < d->nch) upload_rgb(d, d->tex_ch[i], &d->ch_w[i], &d->ch_h[i], rgb, w, h, "channel texture");
}

void display_set_train_size(Display *d, int w, int h) {
    d->train_w = w > 0 && h > 0 ? w : 0;
    d->train_h = w > 0 && h > 0 ? h : 0;
}

static void recon_alloc(Display *d, int w, int h) {
    if (d->rec_w == w && d->rec_h == h) return;
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    glBindTexture(GL_TEXTURE_2D, d->tex_rec);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    d->rec_w = w;
    d->rec_h = h;
    if (!gl_ok("reconstruction texture")) d->rec_w = d->rec_h = 0;
}

unsigned display_recon_pbo(Display *d, int w, int h) {
    if (w <= 0 || h <= 0 || w > d->max_tex || h > d->max_tex) {
        tb_log("display: no %dx%d reconstruction buffer (limit %d)", w, h, (int)d->max_tex);
        return 0;
    }
    if (d->pbo && d->pbo_w == w && d->pbo_h == h) return d->pbo;
    // The new buffer is made before the old one goes, so its name differs and
    // a caller that compares names knows to register it again.
    size_t bytes = (size_t)w * (size_t)h * 4;
    void *zero = tb_calloc(bytes, 1);  // a frame drawn before the first write is black
    GLuint id = 0;
    glGenBuffers(1, &id);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, id);
    glBufferData(GL_PIXEL_UNPACK_BUFFER, (GLsizeiptr)bytes, zero, GL_DYNAMIC_COPY);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    free(zero);
    if (d->pbo) glDeleteBuffers(1, &d->pbo);
    d->pbo = 0;
    d->pbo_w = d->pbo_h = 0;
    if (!gl_ok("reconstruction pixel buffer")) {
        glDeleteBuffers(1, &id);
        return 0;
    }
    d->pbo = id;
    d->pbo_w = w;
    d->pbo_h = h;
    recon_alloc(d, w, h);
    return id;
}

void display_recon_from_pbo(Display *d) {
    if (!d->pbo) return;
    recon_alloc(d, d->pbo_w, d->pbo_h);
    if (d->rec_w != d->pbo_w) return;  // allocation failed (logged)
    glBindTexture(GL_TEXTURE_2D, d->tex_rec);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, d->pbo);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
    glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, d->pbo_w, d->pbo_h, GL_RGBA, GL_UNSIGNED_BYTE,
                    (const void *)0);  // offset 0 into the bound buffer: no host copy
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    gl_ok("reconstruction from pixel buffer");
}

unsigned display_atlas_pbo(Display *d, size_t bytes) {
    if (d->atlas_pbo && d->atlas_pbo_bytes >= bytes) return d->atlas_pbo;
    GLuint id = 0;
    glGenBuffers(1, &id);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, id);
    glBufferData(GL_PIXEL_UNPACK_BUFFER, (GLsizeiptr)bytes, NULL, GL_DYNAMIC_COPY);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    if (d->atlas_pbo) glDeleteBuffers(1, &d->atlas_pbo);
    d->atlas_pbo = 0;
    if (!gl_ok("atlas pixel buffer")) {
        glDeleteBuffers(1, &id);
        return 0;
    }
    d->atlas_pbo = id;
    d->atlas_pbo_bytes = bytes;
    return id;
}

void display_atlas_from_pbo(Display *d, int w, int h) {
    if (!d->atlas_pbo || w <= 0 || h <= 0 || w > d->max_tex || h > d->max_tex ||
        (size_t)w * h * 4 > d->atlas_pbo_bytes) {
        tb_log("display: atlas texture: ignoring a %dx%d picture from the pixel buffer", w, h);
        return;
    }
    glBindTexture(GL_TEXTURE_2D, d->tex_atlas);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, d->atlas_pbo);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 4);  // RGBA rows: 4-byte aligned
    if (w != d->atlas_w || h != d->atlas_h)  // offset 0 into the bound buffer: no host copy
        glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, w, h, 0, GL_RGBA, GL_UNSIGNED_BYTE, (const void *)0);
    else
        glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, (const void *)0);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
    d->atlas_w = w, d->atlas_h = h;
    if (!gl_ok("atlas from pixel buffer")) d->atlas_w = d->atlas_h = 0;
}

// ---------------------------------------------------------------- geometry

// The training size whose aspect every pane has.
void display_train_size(const Display *d, int *w, int *h) {
    if (d->train_w) *w = d->train_w, *h = d->train_h;
    else if (d->rec_w) *w = d->rec_w, *h = d->rec_h;
    else *w = *h = 1;
}

// The trainer's centre crop (frame_fit's rounding) as a UV rectangle.
static void input_crop(const Display *d, float crop[4]) {
    int dw, dh, sw = d->in_w, sh = d->in_h;
    display_train_size(d, &dw, &dh);
    crop[0] = crop[1] = 0;
    crop[2] = crop[3] = 1;
    if (sw <= 0 || sh <= 0) return;
    int64_t cw = sw, ch = sh;
    if ((int64_t)sw * dh > (int64_t)sh * dw) {
        cw = ((int64_t)sh * dw * 2 + dh) / (2 * (int64_t)dh);
        if (cw < 1) cw = 1;
    } else if ((int64_t)sw * dh < (int64_t)sh * dw) {
        ch = ((int64_t)sw * dh * 2 + dw) / (2 * (int64_t)dw);
        if (ch < 1) ch = 1;
    }
    crop[0] = (float)((sw - cw) / 2) / (float)sw;
    crop[1] = (float)((sh - ch) / 2) / (float)sh;
    crop[2] = (float)cw / (float)sw;
    crop[3] = (float)ch / (float)sh;
}

static const int pane_modes[DISPLAY_LAYOUT_COUNT][3] = {
    {PANE_RECON}, {PANE_CAMERA, PANE_RECON}, {PANE_CAMERA, PANE_RECON, PANE_ERROR}, {PANE_ATLAS}};

// What pane i shows. With an input transform in force the triptych is camera |
// network input | reconstruction: the error against the camera would mostly
// show the transform, and the middle pane shows what the network repaints.
static int pane_mode(const Display *d, int i) {
    static const int world[3] = {PANE_CAMERA, PANE_NET, PANE_RECON};
    return d->layout == DISPLAY_TRIPTYCH && d->net_on ? world[i] : pane_modes[d->layout][i];
}

// Panes in a row, each with the training aspect, as large as fits, centred
// (compose.h: the recorded picture uses the same geometry). Returns the count.
static int layout_panes(const Display *d, int fw, int fh, int rect[3][4]) {
    int tw, th;
    display_train_size(d, &tw, &th);
    if (d->layout == DISPLAY_ATLAS)  // one pane at the atlas's own aspect
        return compose_panes(COMPOSE_MIRROR, d->atlas_w ? d->atlas_w : tw, d->atlas_h ? d->atlas_h : th, fw, fh, rect);
    return compose_panes((int)d->layout, tw, th, fw, fh, rect);
}

void display_size(const Display *d, int *w, int *h) {
    glfwGetFramebufferSize(d->win, w, h);
}

// The channels the main window shows: channel 0, then every channel without a
// window of its own (layout = windows). Returns their count (1: channel 0 alone,
// in the layout's panes).
static int main_channels(const Display *d, int ch[DISPLAY_CHANNELS]) {
    int k = 0;
    ch[k++] = 0;
    for (int i = 1; i < d->nch; i++)
        if (!d->cw[i].win) ch[k++] = i;
    return k;
}

// [channels]: camera and each of the k channels, in a row (compose.h's geometry).
static int channel_panes(const Display *d, int k, int fw, int fh, int rect[][4]) {
    int tw, th;
    display_train_size(d, &tw, &th);
    return compose_panes(k, tw, th, fw, fh, rect);
}

int display_pane_rect(const Display *d, int i, int rect[4]) {
    int fw, fh, r[DISPLAY_CHANNELS + 1][4], ch[DISPLAY_CHANNELS];
    display_size(d, &fw, &fh);
    int k = main_channels(d, ch);
    int n = k > 1 ? channel_panes(d, k, fw, fh, r) : layout_panes(d, fw, fh, r);
    if (i < 0 || i >= n) return 0;
    memcpy(rect, r[i], sizeof r[i]);
    return 1;
}

// Text size follows the window height: 2 px per font unit at 720p, 3 at 1080p.
static int text_scale(int fh) {
    int s = (int)lround(fh / 360.0);
    return s < 1 ? 1 : s;
}

static int hud_box(const Display *d, int fh, int rect[4]) {
    memset(rect, 0, 4 * sizeof(int));
    if (!d->show_hud || d->hud_lines.n == 0) return 0;
    int s = text_scale(fh);
    float w = 0;
    for (int i = 0; i < d->hud_lines.n; i++) {
        float lw = hud_text_width(d->hud_lines.line[i]);
        if (lw > w) w = lw;
    }
    rect[0] = rect[1] = 4 * s;
    rect[2] = (int)w * s + 8 * s;
    rect[3] = (d->hud_lines.n * HUD_LINE - 3) * s + 8 * s;
    return 1;
}

int display_hud_rect(const Display *d, int rect[4]) {
    int fw, fh;
    display_size(d, &fw, &fh);
    return hud_box(d, fh, rect);
}

// ---------------------------------------------------------------- drawing

static const float C_PANEL[4] = {0.0f, 0.0f, 0.0f, 0.62f};
static const float C_HELP_PANEL[4] = {0.0f, 0.0f, 0.0f, 0.88f};  // readable over anything
static const float C_TEXT[4] = {0.94f, 0.94f, 0.94f, 1.0f};
static const float C_ACCENT[4] = {1.0f, 0.72f, 0.22f, 1.0f};

static const float C_DIM[4] = {0.78f, 0.78f, 0.78f, 1.0f};

// A help line is "key<TAB>description" (without a tab: two or more spaces
// separate them); one without a separator is a heading. Returns the
// description or NULL, and the key's length in *klen.
static const char *help_split(const char *line, int *klen) {
    const char *p = strchr(line, '\t');
    if (!p) p = strstr(line, "  ");
    if (!p || p == line) return NULL;
    *klen = (int)(p - line);
    while (*p == ' ' || *p == '\t') p++;
    return *p ? p : NULL;
}

// Centred panel, keys and descriptions in two aligned columns (the font is
// proportional, so padding with spaces would not line up).
static void draw_help(Hud *h, const TextBlock *b, int fw, int fh, int s) {
    float kw = 0, dw = 0, hw = 0;
    char key[TEXT_LEN];
    for (int i = 0; i < b->n; i++) {
        int kl;
        const char *desc = help_split(b->line[i], &kl);
        float lw;
        if (desc) {
            snprintf(key, sizeof key, "%.*s", kl, b->line[i]);
            if ((lw = hud_text_width(key)) > kw) kw = lw;
            if ((lw = hud_text_width(desc)) > dw) dw = lw;
        } else if ((lw = hud_text_width(b->line[i])) > hw) {
            hw = lw;
        }
    }
    float col = kw > 0 ? kw + 8 : 0;  // description column, font units
    float w = col + dw > hw ? col + dw : hw;
    int hs = s;  // smaller text if the list would not fit the window
    while (hs > 1 && ((w + 8) * hs > fw * 0.95f || (b->n * HUD_LINE + 5) * hs > fh * 0.95f)) hs--;
    int pw = (int)w * hs + 8 * hs, ph = (b->n * HUD_LINE - 3) * hs + 8 * hs;
    int x = (fw - pw) / 2 + 4 * hs, y = (fh - ph) / 2;
    hud_rect(h, (float)(x - 4 * hs), (float)y, (float)pw, (float)ph, C_HELP_PANEL);
    y += 4 * hs;
    for (int i = 0; i < b->n; i++, y += HUD_LINE * hs) {
        int kl;
        const char *desc = help_split(b->line[i], &kl);
        if (!desc) {
            hud_text(h, (float)x, (float)y, (float)hs, b->line[i], C_ACCENT);
            continue;
        }
        snprintf(key, sizeof key, "%.*s", kl, b->line[i]);
        hud_text(h, (float)x, (float)y, (float)hs, key, C_TEXT);
        hud_text(h, (float)x + col * hs, (float)y, (float)hs, desc, C_DIM);
    }
}

static void draw_overlays(Display *d, int fw, int fh, int rect[3][4], int n, double t) {
    Hud *h = &d->hud;
    int s = text_scale(fh);
    if (d->show_hud && !(d->show_help && d->help.n > 0)) {  // help covers the HUD
        // Pane names at each pane's bottom-left, away from the HUD block.
        static const char *names[PANE_KINDS] = {"camera", "reconstruction", "error", "network input", "atlas"};
        for (int i = 0; i < n; i++) {
            int mode = pane_mode(d, i);
            char label[64];
            if (mode == PANE_ERROR) snprintf(label, sizeof label, "error x%g", (double)d->gain);
            else snprintf(label, sizeof label, "%s", names[mode]);
            int lw = (int)hud_text_width(label) * s + 6 * s, lh = (HUD_CAP + 6) * s;
            int x = rect[i][0] + 3 * s, y = rect[i][1] + rect[i][3] - lh - 3 * s;
            hud_rect(h, (float)x, (float)y, (float)lw, (float)lh, C_PANEL);
            hud_text(h, (float)(x + 3 * s), (float)(y + 3 * s), (float)s, label, C_TEXT);
        }
        int box[4];
        if (hud_box(d, fh, box)) {
            TextBlock *b = &d->hud_lines;
            hud_rect(h, (float)box[0], (float)box[1], (float)box[2], (float)box[3], C_PANEL);
            for (int i = 0; i < b->n; i++)
                hud_text(h, (float)(box[0] + 4 * s), (float)(box[1] + 4 * s + i * HUD_LINE * s),
                         (float)s, b->line[i], C_TEXT);
        }
    }
    if (d->show_help && d->help.n > 0) draw_help(h, &d->help, fw, fh, s);
    if (d->status[0] && t < d->status_until) {
        // Twice the HUD size, fading out over its last half second. Below the
        // panes when the bar there is tall enough, else just above the labels.
        float alpha = (float)((d->status_until - t) / 0.5);
        if (alpha > 1) alpha = 1;
        float tw = hud_text_width(d->status);
        int ss = 2 * s;
        while (ss > 1 && (tw + 12) * ss > fw * 0.92f) ss--;
        int pw = (int)tw * ss + 12 * ss, ph = (HUD_CAP + 8) * ss;
        int bottom = rect[0][1] + rect[0][3], room = fh - bottom;
        int x = (fw - pw) / 2;
        int y = room >= ph + 4 * s ? bottom + (room - ph) / 2 : bottom - ph - (HUD_CAP + 12) * s;
        if (y < 0) y = 0;
        float panel[4] = {0, 0, 0, 0.75f * alpha}, bar[4], text[4] = {1, 1, 1, alpha};
        memcpy(bar, C_ACCENT, sizeof bar);
        bar[3] = alpha;
        hud_rect(h, (float)x, (float)y, (float)pw, (float)ph, panel);
        hud_rect(h, (float)x, (float)y, (float)(2 * ss), (float)ph, bar);
        hud_text(h, (float)(x + 7 * ss), (float)(y + 4 * ss), (float)ss, d->status, text);
    }
    hud_flush(h, fw, fh);
}

// Everything but the swap, so screenshots can draw the same frame again.
// The channels' panes: the camera, then each channel's reconstruction through
// the reconstruction's program with that channel's texture, each labelled.
static void render_channels(Display *d, const int *ch, int k, int fw, int fh, float crop[4]) {
    int rect[DISPLAY_CHANNELS + 1][4];
    int n = channel_panes(d, k, fw, fh, rect);
    glBindVertexArray(d->vao);
    for (int i = 0; i < n; i++) {  // pane i >= 1 is channel ch[i - 1]
        glViewport(rect[i][0], fh - rect[i][1] - rect[i][3], rect[i][2], rect[i][3]);
        glActiveTexture(GL_TEXTURE1);
        glBindTexture(GL_TEXTURE_2D, i <= 1 ? d->tex_rec : d->tex_ch[ch[i - 1]]);
        const PaneProg *p = &d->pane[i ? PANE_RECON : PANE_CAMERA][d->bicubic];
        glUseProgram(p->prog);
        glUniform4fv(p->u_crop, 1, crop);
        glUniform1f(p->u_flip, (float)d->flip);
        glUniform1f(p->u_gain, d->gain);
        glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    }
    glActiveTexture(GL_TEXTURE0);
    glBindVertexArray(0);
    gl_ok("channel panes");
    glViewport(0, 0, fw, fh);
    int s = text_scale(fh);
    for (int i = 0; i < n && d->show_hud; i++) {
        char label[32];
        if (i) snprintf(label, sizeof label, "ch %d", ch[i - 1]);
        else snprintf(label, sizeof label, "camera");
        int lw = (int)hud_text_width(label) * s + 6 * s, lh = (HUD_CAP + 6) * s;
        int x = rect[i][0] + 3 * s, y = rect[i][1] + rect[i][3] - lh - 3 * s;
        hud_rect(&d->hud, (float)x, (float)y, (float)lw, (float)lh, C_PANEL);
        hud_text(&d->hud, (float)(x + 3 * s), (float)(y + 3 * s), (float)s, label, C_TEXT);
    }
}

static void render(Display *d, double t) {
    int fw, fh;
    display_size(d, &fw, &fh);
    if (fw <= 0 || fh <= 0) return;  // minimised
    glDisable(GL_BLEND);
    glViewport(0, 0, fw, fh);
    glClearColor(0, 0, 0, 1);
    glClear(GL_COLOR_BUFFER_BIT);

    int rect[DISPLAY_CHANNELS + 1][4];
    int n = layout_panes(d, fw, fh, rect);
    float crop[4];
    input_crop(d, crop);
    int ch[DISPLAY_CHANNELS], k = main_channels(d, ch);
    if (k > 1) {  // [channels]: its own row of panes; the overlays without pane names
        glActiveTexture(GL_TEXTURE0);
        glBindTexture(GL_TEXTURE_2D, d->tex_in);
        render_channels(d, ch, k, fw, fh, crop);
        channel_panes(d, k, fw, fh, rect);  // the status line sits below the row
        draw_overlays(d, fw, fh, rect, 0, t);
        return;
    }
    glActiveTexture(GL_TEXTURE0);
    glBindTexture(GL_TEXTURE_2D, d->tex_in);
    glActiveTexture(GL_TEXTURE1);
    glBindTexture(GL_TEXTURE_2D, d->tex_rec);
    glActiveTexture(GL_TEXTURE2);
    glBindTexture(GL_TEXTURE_2D, d->tex_net);
    glActiveTexture(GL_TEXTURE3);
    glBindTexture(GL_TEXTURE_2D, d->tex_atlas);
    glActiveTexture(GL_TEXTURE0);
    glBindVertexArray(d->vao);
    for (int i = 0; i < n; i++) {
        // GL's viewport origin is the bottom-left; rect is from the top-left.
        glViewport(rect[i][0], fh - rect[i][1] - rect[i][3], rect[i][2], rect[i][3]);
        const PaneProg *p = &d->pane[pane_mode(d, i)][d->bicubic];
        glUseProgram(p->prog);
        glUniform4fv(p->u_crop, 1, crop);
        glUniform1f(p->u_flip, (float)d->flip);
        glUniform1f(p->u_gain, d->gain);
        glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    }
    glBindVertexArray(0);
    gl_ok("panes");
    draw_overlays(d, fw, fh, rect, n, t);
}

void display_draw(Display *d) {
    d->last_t = tb_now();
    render(d, d->last_t);
    display_windows_draw(d);  // the channel windows first: only the main swap waits for vsync
    glfwSwapBuffers(d->win);
    double now = tb_now();
    // Swaps counted over half-second windows (the first swap starts the clock).
    if (d->fps_t0 == 0) {
        d->fps_t0 = now;
    } else {
        d->fps_frames++;
        if (now - d->fps_t0 >= 0.5) {
            d->fps = d->fps_frames / (now - d->fps_t0);
            d->fps_t0 = now;
            d->fps_frames = 0;
        }
    }
    display_poll_events(d);
}

void display_poll_events(Display *d) {
    glfwPollEvents();
    if (d->mon_changed) display_windows_place(d);  // outside GLFW's callback
}

double display_fps(const Display *d) {
    return d->fps;
}

int display_read_pixels(Display *d, uint8_t *rgb, size_t cap, int *w, int *h, TbErr *err) {
    int fw, fh;
    display_size(d, &fw, &fh);
    size_t row = (size_t)fw * 3, need = row * (size_t)fh;
    if (fw <= 0 || fh <= 0) return tb_fail(err, "display: window is minimised");
    if (cap < need) return tb_fail(err, "display: %zu bytes given, %dx%d needs %zu", cap, fw, fh, need);
    render(d, d->last_t > 0 ? d->last_t : tb_now());
    glBindBuffer(GL_PIXEL_PACK_BUFFER, 0);
    glReadBuffer(GL_BACK);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadPixels(0, 0, fw, fh, GL_RGB, GL_UNSIGNED_BYTE, rgb);
    if (!gl_ok("glReadPixels")) return tb_fail(err, "display: glReadPixels failed (GL error above)");
    // GL returns the bottom row first.
    uint8_t *tmp = tb_malloc(row);
    for (int y = 0; y < fh / 2; y++) {
        uint8_t *a = rgb + (size_t)y * row, *b = rgb + (size_t)(fh - 1 - y) * row;
        memcpy(tmp, a, row);
        memcpy(a, b, row);
        memcpy(b, tmp, row);
    }
    free(tmp);
    *w = fw;
    *h = fh;
    return 0;
}

int display_screenshot(Display *d, const char *path_png, TbErr *err) {
    int fw, fh, w, h;
    display_size(d, &fw, &fh);
    size_t cap = (size_t)(fw > 0 ? fw : 1) * (size_t)(fh > 0 ? fh : 1) * 3;
    uint8_t *rgb = tb_malloc(cap);
    int rc = display_read_pixels(d, rgb, cap, &w, &h, err);
    if (rc == 0 && !stbi_write_png(path_png, w, h, 3, rgb, w * 3))
        rc = tb_fail(err, "display: cannot write %s", path_png);
    free(rgb);
    return rc;
}

// ---------------------------------------------------------------- settings

static const char *layout_names[DISPLAY_LAYOUT_COUNT] = {"mirror", "side", "triptych", "atlas"};

const char *display_layout_name(DisplayLayout layout) {
    return layout >= 0 && layout < DISPLAY_LAYOUT_COUNT ? layout_names[layout] : "?";
}

int display_layout_parse(const char *name) {
    for (int i = 0; i < DISPLAY_LAYOUT_COUNT; i++)
        if (name && strcmp(name, layout_names[i]) == 0) return i;
    return -1;
}

void display_set_layout(Display *d, DisplayLayout layout) {
    if (layout >= 0 && layout < DISPLAY_LAYOUT_COUNT) d->layout = layout;
}
DisplayLayout display_layout(const Display *d) { return d->layout; }
void display_set_flip(Display *d, int on) { d->flip = on != 0; }
void display_set_bicubic(Display *d, int on) { d->bicubic = on != 0; }
void display_set_error_gain(Display *d, float gain) { d->gain = gain > 0 ? gain : 1; }

static void set_block(TextBlock *b, const char *const *lines, int n) {
    if (!lines || n < 0) n = 0;
    if (n > TEXT_LINES) n = TEXT_LINES;
    for (int i = 0; i < n; i++) hud_ascii(b->line[i], TEXT_LEN, lines[i] ? lines[i] : "");
    b->n = n;
}

void display_set_hud(Display *d, const char *const *lines, int n) { set_block(&d->hud_lines, lines, n); }
void display_show_hud(Display *d, int on) { d->show_hud = on != 0; }
void display_set_help(Display *d, const char *const *lines, int n) { set_block(&d->help, lines, n); }
void display_show_help(Display *d, int on) { d->show_help = on != 0; }

void display_status(Display *d, const char *msg, double seconds) {
    if (!msg || !msg[0] || seconds <= 0) {
        d->status[0] = 0;
        d->status_until = 0;
        return;
    }
    hud_ascii(d->status, sizeof d->status, msg);
    d->status_until = tb_now() + seconds;
}

// ---------------------------------------------------------------- window

GLFWmonitor *display_pick_monitor(int index) {
    int count = 0;
    GLFWmonitor **mons = glfwGetMonitors(&count);
    if (!mons || count == 0) return NULL;
    if (index < 0 || index >= count) {
        tb_log("display: monitor %d not found (%d connected): using the primary", index, count);
        return glfwGetPrimaryMonitor();
    }
    return mons[index];
}

void display_set_fullscreen(Display *d, int on) {
    on = on != 0;
    d->want_full = on;
    if (on == d->fullscreen) return;
    if (on) {
        GLFWmonitor *m = display_pick_monitor(d->monitor);
        const GLFWvidmode *mode = m ? glfwGetVideoMode(m) : NULL;
        if (!mode) {
            tb_log("display: no monitor to go fullscreen on: staying windowed");
            return;
        }
        glfwGetWindowPos(d->win, &d->win_x, &d->win_y);
        glfwGetWindowSize(d->win, &d->win_w, &d->win_h);
        glfwSetWindowMonitor(d->win, m, 0, 0, mode->width, mode->height, mode->refreshRate);
        glfwSetInputMode(d->win, GLFW_CURSOR, GLFW_CURSOR_HIDDEN);  // kiosk: no pointer
        tb_log("display: fullscreen %dx%d@%dHz on '%s'", mode->width, mode->height,
               mode->refreshRate, glfwGetMonitorName(m));
    } else {
        glfwSetWindowMonitor(d->win, NULL, d->win_x, d->win_y, d->win_w, d->win_h, GLFW_DONT_CARE);
        glfwSetInputMode(d->win, GLFW_CURSOR, GLFW_CURSOR_NORMAL);
    }
    d->fullscreen = on;
    glfwSwapInterval(d->vsync);  // some platforms reset it with the mode change
}

int display_fullscreen(const Display *d) { return d->fullscreen; }
int display_should_close(Display *d) { return glfwWindowShouldClose(d->win) || display_windows_should_close(d); }
void display_set_should_close(Display *d, int on) { glfwSetWindowShouldClose(d->win, on != 0); }

static void free_gl(Display *d) {
    hud_free(&d->hud);
    if (d->pbo) glDeleteBuffers(1, &d->pbo);
    if (d->atlas_pbo) glDeleteBuffers(1, &d->atlas_pbo);
    if (d->tex_in) glDeleteTextures(1, &d->tex_in);
    if (d->tex_rec) glDeleteTextures(1, &d->tex_rec);
    if (d->tex_net) glDeleteTextures(1, &d->tex_net);
    if (d->tex_atlas) glDeleteTextures(1, &d->tex_atlas);
    for (int i = 0; i < DISPLAY_CHANNELS; i++)
        if (d->tex_ch[i]) glDeleteTextures(1, &d->tex_ch[i]);
    if (d->vao) glDeleteVertexArrays(1, &d->vao);
    for (int m = 0; m < PANE_KINDS; m++)
        for (int b = 0; b < 2; b++)
            if (d->pane[m][b].prog) glDeleteProgram(d->pane[m][b].prog);
}

// GLFW, and a 3.3 core window with its context current and GLEW loaded.
// Returns the window, or NULL with err (GLFW terminated again).
static GLFWwindow *open_window(const DisplayOpts *o, TbErr *err) {
    glfwSetErrorCallback(on_glfw_error);  // first, so that every failure says why
    const char *dpy = getenv("DISPLAY");
    if ((!dpy || !dpy[0]) && !getenv("WAYLAND_DISPLAY")) {
        tb_fail(err, "cannot open a window: no X display (DISPLAY unset); use --headless");
        return NULL;
    }
    g_glfw_err[0] = 0;
    if (!glfwInit()) {
        tb_fail(err, "cannot open a window on DISPLAY=%s: %s; use --headless", dpy ? dpy : "",
                g_glfw_err[0] ? g_glfw_err : "glfwInit failed");
        return NULL;
    }
    int w = o->width > 0 ? o->width : 1280, h = o->height > 0 ? o->height : 720;
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    glfwWindowHint(GLFW_VISIBLE, o->hidden ? GLFW_FALSE : GLFW_TRUE);
    glfwWindowHint(GLFW_DOUBLEBUFFER, GLFW_TRUE);
    GLFWwindow *win = glfwCreateWindow(w, h, "tabula", NULL, NULL);
    if (!win) {
        tb_fail(err, "cannot create an OpenGL 3.3 core window: %s",
                g_glfw_err[0] ? g_glfw_err : "glfwCreateWindow failed");
        glfwTerminate();
        return NULL;
    }
    glfwMakeContextCurrent(win);
    glewExperimental = GL_TRUE;  // core profiles need it for the 3.x entry points
    GLenum ge = glewInit();
    // GLEW_ERROR_NO_GLX_DISPLAY: an EGL context; the entry points are loaded.
    if (ge != GLEW_OK && ge != GLEW_ERROR_NO_GLX_DISPLAY) {
        tb_fail(err, "display: glewInit failed: %s", (const char *)glewGetErrorString(ge));
        glfwDestroyWindow(win);
        glfwTerminate();
        return NULL;
    }
    while (glGetError() != GL_NO_ERROR) {}  // glewInit leaves GL_INVALID_ENUM on core
    return win;
}

// Programs, textures and the HUD in the current context. 0, or -1 with err
// (what was made is freed by free_gl).
static int init_gl(Display *d, TbErr *err) {
    const char *renderer = (const char *)glGetString(GL_RENDERER);
    tb_log("display: OpenGL %s, %s", (const char *)glGetString(GL_VERSION), renderer);
    // Catmull-Rom costs 9 texture reads a pixel: free on a GPU, about 4x the
    // frame time on a CPU rasteriser, where bilinear is the default.
    d->bicubic = 1;
    if (renderer && (strstr(renderer, "llvmpipe") || strstr(renderer, "softpipe") ||
                     strstr(renderer, "SWR") || strstr(renderer, "Software"))) {
        d->bicubic = 0;
        tb_log("display: software renderer: bilinear upscaling (display_set_bicubic to change)");
    }
    glGetIntegerv(GL_MAX_TEXTURE_SIZE, &d->max_tex);
    for (int m = 0; m < PANE_KINDS; m++)
        for (int b = 0; b < 2; b++) {
            char defs[64];
            snprintf(defs, sizeof defs, "#define MODE %d\n#define BICUBIC %d\n", m, b);
            PaneProg *p = &d->pane[m][b];
            if (!(p->prog = gl_program("display_vert", "display_frag", defs, err))) return -1;
            p->u_crop = glGetUniformLocation(p->prog, "u_crop");
            p->u_flip = glGetUniformLocation(p->prog, "u_flip");
            p->u_gain = glGetUniformLocation(p->prog, "u_gain");
            glUseProgram(p->prog);  // samplers: camera on unit 0, reconstruction 1, network input 2
            glUniform1i(glGetUniformLocation(p->prog, "u_input"), 0);
            glUniform1i(glGetUniformLocation(p->prog, "u_recon"), 1);
            glUniform1i(glGetUniformLocation(p->prog, "u_net"), 2);
            glUniform1i(glGetUniformLocation(p->prog, "u_atlas"), 3);
        }
    glUseProgram(0);
    glGenVertexArrays(1, &d->vao);  // core profile draws need one, even empty
    d->tex_in = make_texture();
    d->tex_rec = make_texture();
    d->tex_net = make_texture();
    d->tex_atlas = make_texture();
    glBindTexture(GL_TEXTURE_2D, d->tex_atlas);  // magnified: sharp tiles; shrunk: smooth
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    if (!gl_ok("display init")) return tb_fail(err, "display: could not set up textures (GL error above)");
    return hud_init(&d->hud, err);
}

Display *display_open(const DisplayOpts *o, TbErr *err) {
    DisplayOpts def = {0};
    if (!o) o = &def;
    if (g_open) {
        tb_fail(err, "display: a window is already open in this process");
        return NULL;
    }
    GLFWwindow *win = open_window(o, err);
    if (!win) return NULL;
    Display *d = tb_calloc(1, sizeof *d);
    d->win = win;
    d->vsync = o->vsync ? 1 : 0;
    d->monitor = o->monitor;
    d->layout = DISPLAY_MIRROR;
    d->gain = 4;
    if (init_gl(d, err) != 0) {
        free_gl(d);
        glfwDestroyWindow(d->win);
        free(d);
        glfwTerminate();
        return NULL;
    }
    glfwSetWindowUserPointer(d->win, d);
    glfwSetKeyCallback(d->win, display_on_key);
    glfwSwapInterval(d->vsync);
    g_open = 1;
    display_windows_watch(d);
    if (o->fullscreen) display_set_fullscreen(d, 1);
    return d;
}

void display_close(Display *d) {
    if (!d) return;
    display_windows_close(d);
    free_gl(d);
    glfwDestroyWindow(d->win);
    glfwTerminate();
    free(d);
    g_open = 0;
}
