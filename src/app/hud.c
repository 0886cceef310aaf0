// hud.c: GL program helpers and the overlay batch (panels + bitmap text).
// Text comes from stb_easy_font as axis-aligned quads; scaled by a whole
// number of pixels per font unit they stay crisp on a big screen.
#include "hud.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// Third-party header: quiet its -Wmissing-braces and its unused statics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

// ---------------------------------------------------------------- GL helpers

static const char *gl_error_name(GLenum e) {
    switch (e) {
    case GL_INVALID_ENUM: return "GL_INVALID_ENUM";
    case GL_INVALID_VALUE: return "GL_INVALID_VALUE";
    case GL_INVALID_OPERATION: return "GL_INVALID_OPERATION";
    case GL_INVALID_FRAMEBUFFER_OPERATION: return "GL_INVALID_FRAMEBUFFER_OPERATION";
    case GL_OUT_OF_MEMORY: return "GL_OUT_OF_MEMORY";
    default: return "unknown GL error";
    }
}

int gl_ok(const char *where) {
    // A broken state repeats every frame: log the first few, then stay quiet.
    static int logged;
    int ok = 1;
    for (GLenum e; (e = glGetError()) != GL_NO_ERROR;) {
        ok = 0;
        if (logged < 20) tb_log("display: %s: %s (0x%04x)", where, gl_error_name(e), e);
        if (++logged == 20) tb_log("display: further GL errors are not logged");
    }
    return ok;
}

// `defines` ("#define X 1\n"...) go right after the source's #version line.
static GLuint compile(GLenum type, const char *name, const char *defines, TbErr *err) {
    const char *src = shader_source(name);
    if (!src) {
        tb_fail(err, "display: shader '%s' is not embedded in this build", name);
        return 0;
    }
    const char *body = src;
    if (strncmp(src, "#version", 8) == 0 && strchr(src, '\n')) body = strchr(src, '\n') + 1;
    const char *parts[3] = {src, defines ? defines : "", body};
    GLint lens[3] = {(GLint)(body - src), -1, -1};
    GLuint s = glCreateShader(type);
    glShaderSource(s, 3, parts, lens);
    glCompileShader(s);
    GLint ok = 0, len = 0;
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    glGetShaderiv(s, GL_INFO_LOG_LENGTH, &len);
    if (len > 1) {  // warnings too: a driver's complaint is worth seeing
        char *log = tb_malloc((size_t)len);
        glGetShaderInfoLog(s, len, NULL, log);
        tb_log("display: shader %s.glsl log:\n%s", name, log);
        free(log);
    }
    if (!ok) {
        glDeleteShader(s);
        tb_fail(err, "display: shader %s.glsl failed to compile (log above)", name);
        return 0;
    }
    return s;
}

GLuint gl_program(const char *vs, const char *fs, const char *defines, TbErr *err) {
    GLuint v = compile(GL_VERTEX_SHADER, vs, defines, err);
    if (!v) return 0;
    GLuint f = compile(GL_FRAGMENT_SHADER, fs, defines, err);
    if (!f) {
        glDeleteShader(v);
        return 0;
    }
    GLuint p = glCreateProgram();
    glAttachShader(p, v);
    glAttachShader(p, f);
    glLinkProgram(p);
    glDeleteShader(v);  // flagged; freed with the program
    glDeleteShader(f);
    GLint ok = 0, len = 0;
    glGetProgramiv(p, GL_LINK_STATUS, &ok);
    glGetProgramiv(p, GL_INFO_LOG_LENGTH, &len);
    if (len > 1) {
        char *log = tb_malloc((size_t)len);
        glGetProgramInfoLog(p, len, NULL, log);
        tb_log("display: program %s+%s link log:\n%s", vs, fs, log);
        free(log);
    }
    if (!ok) {
        glDeleteProgram(p);
        tb_fail(err, "display: program %s+%s failed to link (log above)", vs, fs);
        return 0;
    }
    return p;
}

// ---------------------------------------------------------------- text

void hud_ascii(char *dst, size_t cap, const char *src) {
    if (cap == 0) return;
    size_t n = 0;
    const unsigned char *s = (const unsigned char *)src;
    while (*s && n + 1 < cap) {
        unsigned c = *s;
        if (c < 0x80) {
            if (c == '\t' || (c >= 32 && c < 127)) dst[n++] = (char)c;
            s++;
            continue;
        }
        // One UTF-8 sequence: its length from the lead byte (bad bytes: 1).
        int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        int ok = 1;
        for (int i = 1; i < len; i++)
            if ((s[i] & 0xC0) != 0x80) ok = 0;
        if (!ok) len = 1;
        // U+2010..U+2015 (hyphens and dashes) and U+2212 (minus) read as '-'.
        int dash = ok && len == 3 &&
                   ((s[0] == 0xE2 && s[1] == 0x80 && s[2] >= 0x90 && s[2] <= 0x95) ||
                    (s[0] == 0xE2 && s[1] == 0x88 && s[2] == 0x92));
        dst[n++] = dash ? '-' : '?';
        s += len;
    }
    dst[n] = 0;
}

// Printable ASCII only: stb_easy_font indexes its tables with (c - 32).
static void printable(char *dst, size_t cap, const char *src) {
    hud_ascii(dst, cap, src);
    for (char *p = dst; *p; p++)
        if (*p == '\t') *p = ' ';
}

// printf onto the end of what buf holds (truncated at n).
static void append(char *buf, size_t n, const char *fmt, ...) {
    size_t k = strlen(buf);
    if (k + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, n - k, fmt, ap);
    va_end(ap);
}

int hud_dream_line(char *buf, size_t n, float feedback, float zoom, float rotate, float shift_x,
                   float shift_y, float tau) {
    if (n == 0) return 0;
    buf[0] = 0;
    if (!(feedback > 0)) return 0;
    append(buf, n, "dream: feedback %.3g", (double)feedback);
    if (zoom != 1.0f) append(buf, n, "   zoom %.3g", (double)zoom);
    if (rotate != 0.0f) append(buf, n, "   rotate %.3g", (double)rotate);
    if (shift_x != 0.0f || shift_y != 0.0f) append(buf, n, "   shift %.3g,%.3g", (double)shift_x, (double)shift_y);
    if (tau > 0) append(buf, n, "   tau %.3g s", (double)tau);
    return (int)strlen(buf);
}

float hud_text_width(const char *s) {
    char line[512];  // same truncation as hud_text
    printable(line, sizeof line, s);
    return (float)stb_easy_font_width(line);
}

// ---------------------------------------------------------------- batch

int hud_init(Hud *h, TbErr *err) {
    memset(h, 0, sizeof *h);
    h->prog = gl_program("hud_vert", "hud_frag", NULL, err);
    if (!h->prog) return -1;
    h->u_size = glGetUniformLocation(h->prog, "u_size");
    glGenVertexArrays(1, &h->vao);
    glGenBuffers(1, &h->vbo);
    glBindVertexArray(h->vao);
    glBindBuffer(GL_ARRAY_BUFFER, h->vbo);
    glEnableVertexAttribArray(0);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, sizeof(HudVert), (void *)0);
    glEnableVertexAttribArray(1);
    glVertexAttribPointer(1, 4, GL_FLOAT, GL_FALSE, sizeof(HudVert),
                          (void *)offsetof(HudVert, r));
    glBindVertexArray(0);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    h->cap = 6 * 4096;
    h->v = tb_malloc(sizeof(HudVert) * (size_t)h->cap);
    h->scratch_cap = 64 * 1024;
    h->scratch = tb_malloc((size_t)h->scratch_cap);
    if (!gl_ok("hud init")) {
        hud_free(h);
        return tb_fail(err, "display: could not set up the overlay (GL error above)");
    }
    return 0;
}

void hud_free(Hud *h) {
    if (h->vbo) glDeleteBuffers(1, &h->vbo);
    if (h->vao) glDeleteVertexArrays(1, &h->vao);
    if (h->prog) glDeleteProgram(h->prog);
    free(h->v);
    free(h->scratch);
    memset(h, 0, sizeof *h);
}

static void push_quad(Hud *h, float x0, float y0, float x1, float y1, const float c[4]) {
    if (h->n + 6 > h->cap) {
        h->cap *= 2;
        HudVert *v = realloc(h->v, sizeof(HudVert) * (size_t)h->cap);
        CHECK(v != NULL, "out of memory growing the overlay batch");
        h->v = v;
    }
    const float xy[6][2] = {{x0, y0}, {x1, y0}, {x0, y1}, {x1, y0}, {x1, y1}, {x0, y1}};
    for (int i = 0; i < 6; i++)
        h->v[h->n++] = (HudVert){xy[i][0], xy[i][1], c[0], c[1], c[2], c[3]};
}

void hud_rect(Hud *h, float x, float y, float w, float ht, const float rgba[4]) {
    push_quad(h, x, y, x + w, y + ht, rgba);
}

void hud_text(Hud *h, float x, float y, float scale, const char *s, const float rgba[4]) {
    char line[512];
    printable(line, sizeof line, s);
    // ~270 bytes of quads per character; grow the scratch to fit the line.
    int need = (int)strlen(line) * 300 + 64;
    if (need > h->scratch_cap) {
        free(h->scratch);
        h->scratch_cap = need;
        h->scratch = tb_malloc((size_t)need);
    }
    int nq = stb_easy_font_print(0, 0, line, NULL, h->scratch, h->scratch_cap);
    for (int q = 0; q < nq; q++) {
        const float *v0 = (const float *)(h->scratch + q * 64);       // x, y, z, rgba
        const float *v2 = (const float *)(h->scratch + q * 64 + 32);  // opposite corner
        push_quad(h, x + v0[0] * scale, y + v0[1] * scale, x + v2[0] * scale,
                  y + v2[1] * scale, rgba);
    }
}

void hud_flush(Hud *h, int fb_w, int fb_h) {
    if (h->n == 0) return;
    glViewport(0, 0, fb_w, fb_h);
    glEnable(GL_BLEND);
    glBlendFunc(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
    glUseProgram(h->prog);
    glUniform2f(h->u_size, (float)fb_w, (float)fb_h);
    glBindVertexArray(h->vao);
    glBindBuffer(GL_ARRAY_BUFFER, h->vbo);
    // Orphan the old storage so the driver need not wait for the last frame.
    glBufferData(GL_ARRAY_BUFFER, (GLsizeiptr)(sizeof(HudVert) * (size_t)h->n), NULL,
                 GL_STREAM_DRAW);
    glBufferSubData(GL_ARRAY_BUFFER, 0, (GLsizeiptr)(sizeof(HudVert) * (size_t)h->n), h->v);
    glDrawArrays(GL_TRIANGLES, 0, h->n);
    glBindVertexArray(0);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glDisable(GL_BLEND);
    h->n = 0;
    gl_ok("overlay draw");
}
