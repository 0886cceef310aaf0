// hud.h: internal to the display. GL helpers (shader programs, error checks)
// and the overlay batch: translucent panels and stb_easy_font text, drawn in
// framebuffer pixels with one shader and one draw call per frame.
#pragma once
#include <GL/glew.h>

#include "common.h"

// From the build: shaders/NAME.glsl embedded as a string (NULL if none).
const char *shader_source(const char *name);

// Compiles and links shaders/<vs>.glsl + shaders/<fs>.glsl, with `defines`
// (may be NULL) inserted after each #version line. The info logs are always
// printed when not empty. Returns 0 with err filled on failure.
GLuint gl_program(const char *vs, const char *fs, const char *defines, TbErr *err);
// Drains glGetError, logging each error with `where` (rate-limited). 1 if clean.
int gl_ok(const char *where);

typedef struct {
    float x, y, r, g, b, a;
} HudVert;

typedef struct {
    GLuint prog, vao, vbo;
    GLint u_size;
    HudVert *v;
    int n, cap;
    char *scratch;  // stb_easy_font output
    int scratch_cap;
} Hud;

int hud_init(Hud *h, TbErr *err);
void hud_free(Hud *h);

// Queue a rectangle / a line of text (x, y: top-left; scale: pixels per font
// unit; an integer scale keeps the strokes on pixel boundaries).
void hud_rect(Hud *h, float x, float y, float w, float ht, const float rgba[4]);
void hud_text(Hud *h, float x, float y, float scale, const char *s, const float rgba[4]);
// Size of one line in font units (line height is HUD_LINE units).
float hud_text_width(const char *s);
enum { HUD_LINE = 12, HUD_CAP = 7 };

// Draw everything queued with alpha blending, then empty the batch.
void hud_flush(Hud *h, int fb_w, int fb_h);

// The feedback dream's HUD line ([dream]): "" at feedback <= 0, else the amount
// and the transforms that move the picture, e.g. "dream: feedback 0.4   zoom
// 1.01   rotate 2   shift 3,-1   tau 2 s" (identity ones left out). Returns
// the length written.
int hud_dream_line(char *buf, size_t n, float feedback, float zoom, float rotate, float shift_x,
                   float shift_y, float tau);

// Copy src into dst as ASCII: UTF-8 dashes become '-', other non-ASCII '?';
// tabs stay (column separators; drawn as a space), other control characters
// are dropped.
void hud_ascii(char *dst, size_t cap, const char *src);
