// keys.c: the key table, and its help lines (the overlay and the README's table)
// with the steps of the parameters taken from the parameter table.
#include "keys.h"

#include <GLFW/glfw3.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "params.h"
#include "display.h"

#define SH GLFW_MOD_SHIFT
#define CT GLFW_MOD_CONTROL
// Slots 1..8 on F2..F9: the first of each eight carries the help line for all.
#define SLOT_KEY(n, mods, kind) {GLFW_KEY_F1 + (n), mods, kind, n, NULL, NULL}
#define SLOT_KEYS(mods, kind, name, help)                                                       \
    {GLFW_KEY_F2, mods, kind, 1, name, help}, SLOT_KEY(2, mods, kind), SLOT_KEY(3, mods, kind), \
        SLOT_KEY(4, mods, kind), SLOT_KEY(5, mods, kind), SLOT_KEY(6, mods, kind),              \
        SLOT_KEY(7, mods, kind), SLOT_KEY(8, mods, kind)
static const KeyBinding KEYS[] = {
    {GLFW_KEY_UP, 0, KA_UP, PARAM_LR, "Up", "learning rate"},
    {GLFW_KEY_DOWN, 0, KA_DOWN, PARAM_LR, "Down", "learning rate"},
    {GLFW_KEY_RIGHT, 0, KA_UP, PARAM_MOMENTUM, "Right", "momentum"},
    {GLFW_KEY_LEFT, 0, KA_DOWN, PARAM_MOMENTUM, "Left", "momentum"},
    {GLFW_KEY_C, 0, KA_UP, PARAM_CLIP, "C", "gradient clip"},
    {GLFW_KEY_C, SH, KA_DOWN, PARAM_CLIP, "Shift+C", "gradient clip"},
    {GLFW_KEY_X, 0, KA_CLIP_TOGGLE, 0, "X", "gradient clip off / back on"},
    {GLFW_KEY_RIGHT_BRACKET, 0, KA_UP, PARAM_STEPS, "]", "steps per frame"},
    {GLFW_KEY_LEFT_BRACKET, 0, KA_DOWN, PARAM_STEPS, "[", "steps per frame"},
    {GLFW_KEY_M, 0, KA_UP, PARAM_MEMORY, "M", "memory (frames replayed with the newest)"},
    {GLFW_KEY_M, SH, KA_DOWN, PARAM_MEMORY, "Shift+M", "memory (frames replayed with the newest)"},
    {GLFW_KEY_N, 0, KA_UP, PARAM_RING, "N", "memory's reach (ring length)"},
    {GLFW_KEY_N, SH, KA_DOWN, PARAM_RING, "Shift+N", "memory's reach (ring length)"},
    {GLFW_KEY_T, 0, KA_UP, PARAM_TRANSFORM, "T", "input transform (none, grey, edges)"},
    {GLFW_KEY_T, SH, KA_DOWN, PARAM_TRANSFORM, "Shift+T", "input transform (none, grey, edges)"},
    {GLFW_KEY_B, 0, KA_UP, PARAM_BLUR, "B", "input blur factor"},
    {GLFW_KEY_B, SH, KA_DOWN, PARAM_BLUR, "Shift+B", "input blur factor"},
    {GLFW_KEY_J, 0, KA_UP, PARAM_JITTER, "J", "input jitter (training)"},
    {GLFW_KEY_J, SH, KA_DOWN, PARAM_JITTER, "Shift+J", "input jitter (training)"},
    {GLFW_KEY_G, 0, KA_UP, PARAM_BN_NOISE, "G", "bottleneck noise"},
    {GLFW_KEY_G, SH, KA_DOWN, PARAM_BN_NOISE, "Shift+G", "bottleneck noise"},
    {GLFW_KEY_E, 0, KA_UP, PARAM_BN_FREEZE, "E", "latent freeze, 1 = on (only the decoder learns)"},
    {GLFW_KEY_E, SH, KA_DOWN, PARAM_BN_FREEZE, "Shift+E", "latent freeze, 1 = on (only the decoder learns)"},
    {GLFW_KEY_D, 0, KA_UP, PARAM_FEEDBACK, "D", "dream: feedback of the output into the input"},
    {GLFW_KEY_D, SH, KA_DOWN, PARAM_FEEDBACK, "Shift+D", "dream: feedback of the output into the input"},
    {GLFW_KEY_Z, 0, KA_UP, PARAM_ZOOM, "Z", "dream: zoom per pass"},
    {GLFW_KEY_Z, SH, KA_DOWN, PARAM_ZOOM, "Shift+Z", "dream: zoom per pass"},
    {GLFW_KEY_O, 0, KA_UP, PARAM_ROTATE, "O", "dream: rotation per pass (clockwise)"},
    {GLFW_KEY_O, SH, KA_DOWN, PARAM_ROTATE, "Shift+O", "dream: rotation per pass (clockwise)"},
    {GLFW_KEY_SPACE, 0, KA_PAUSE, 0, "Space", "pause / resume learning"},
    {GLFW_KEY_R, 0, KA_RESET, 0, "R", "reset: a fresh blank network"},
    {GLFW_KEY_S, 0, KA_SAVE, 0, "S", "save a snapshot of the weights (snapshot_dir)"},
    {GLFW_KEY_L, 0, KA_LOAD, 0, "L", "load the newest snapshot"},
    {GLFW_KEY_F12, 0, KA_RECORD, 0, "F12", "record: start a take ([record] dir), or stop it"},
    SLOT_KEYS(0, KA_SLOT_FADE, "F2 to F9", "cross-fade into slot 1 to 8 over fade_time seconds"),
    SLOT_KEYS(SH, KA_SLOT_SAVE, "Shift+F2 to F9", "save the network into slot 1 to 8 (in memory)"),
    SLOT_KEYS(CT, KA_SLOT_RECALL, "Ctrl+F2 to F9", "recall slot 1 to 8 at once"),
    SLOT_KEYS(SH | CT, KA_WORLD, "Ctrl+Shift+F2 to F9", "load world 1 to 8 ([world] dir) and cross-fade to it"),
    {GLFW_KEY_W, 0, KA_CHANNEL_NEXT, 0, "W", "next channel: the training keys act on it ([channels]; the HUD says which)"},
    {GLFW_KEY_TAB, 0, KA_LAYOUT_NEXT, 0, "Tab", "next layout"},
    {GLFW_KEY_1, 0, KA_LAYOUT_SET, DISPLAY_MIRROR, "1", "layout: mirror (reconstruction only)"},
    {GLFW_KEY_2, 0, KA_LAYOUT_SET, DISPLAY_SIDE, "2", "layout: camera | reconstruction"},
    {GLFW_KEY_3, 0, KA_LAYOUT_SET, DISPLAY_TRIPTYCH, "3", "layout: camera | reconstruction | error"},
    {GLFW_KEY_A, 0, KA_ATLAS, 0, "A", "layer atlas: every layer's activations / back"},
    {GLFW_KEY_PERIOD, 0, KA_ATLAS_FOCUS, 1, ". and ,", "atlas: next / previous layer alone (past the ends: every layer)"},
    {GLFW_KEY_COMMA, 0, KA_ATLAS_FOCUS, -1, NULL, NULL},
    {GLFW_KEY_I, 0, KA_SOLO, 1, "I", "atlas: solo the next bottleneck channel or group (past the last: none)"},
    {GLFW_KEY_I, SH, KA_SOLO, -1, "Shift+I", "atlas: solo the previous bottleneck channel or group"},
    {GLFW_KEY_U, 0, KA_SOLO_GROUP, 0, "U", "atlas: solo group of 1, 4, 16 or 64 channels"},
    {GLFW_KEY_V, 0, KA_CODE_STORE, 0, "V", "journey: store the current bottleneck code as the next keyframe (8 kept)"},
    {GLFW_KEY_P, 0, KA_JOURNEY, 0, "P", "journey: play through the stored codes / stop"},
    {GLFW_KEY_F, 0, KA_FLIP, 0, "F", "mirror flip on / off"},
    {GLFW_KEY_H, 0, KA_HUD, 0, "H", "heads-up display on / off"},
    {GLFW_KEY_F1, 0, KA_HELP, 0, "F1 or ?", "help overlay: every key"},
    {GLFW_KEY_SLASH, SH, KA_HELP, 0, NULL, NULL},
    {GLFW_KEY_F11, 0, KA_FULLSCREEN, 0, "F11", "fullscreen on / off"},
    {GLFW_KEY_K, 0, KA_MIDI_LEARN, 1, "K", "MIDI learn: next parameter or action (then move a control to bind it)"},
    {GLFW_KEY_K, SH, KA_MIDI_LEARN, -1, "Shift+K", "MIDI learn: previous parameter or action (past the first: off)"},
    {GLFW_KEY_ESCAPE, 0, KA_QUIT, 0, "Esc or Q", "quit"},
    {GLFW_KEY_Q, 0, KA_QUIT, 0, NULL, NULL},
};
#define N_KEYS (int)(sizeof KEYS / sizeof KEYS[0])

static const KeyBinding *find(int key, int mods) {
    for (int i = 0; i < N_KEYS; i++)
        if (KEYS[i].key == key && KEYS[i].mods == mods) return &KEYS[i];
    return NULL;
}

const KeyBinding *keys_lookup(int key, int mods) {
    int m = mods & (SH | CT);
    const KeyBinding *b = find(key, m);
    // A modifier with no binding of its own acts as the key without it (e.g.
    // Shift+Up is Up; Ctrl+S is S, as before Ctrl meant anything).
    if (!b && (m & CT)) b = find(key, m & SH);
    if (!b && m) b = find(key, 0);
    return b;
}

const KeyBinding *keys_table(int *n) {
    *n = N_KEYS;
    return KEYS;
}

// "x1.78" or "+0.01" (up), "/1.78" or "-0.01" (down): one step of parameter id.
static void step_text(int id, int dir, char *buf, size_t n) {
    const Param *r = param_live(id);
    if (r->scale == SCALE_LOG) snprintf(buf, n, "%s%.3g", dir > 0 ? "x" : "/", r->step);
    else snprintf(buf, n, "%s%g", dir > 0 ? "+" : "-", r->step);
}

// "; below 0.01 it turns off" for a log-scaled parameter that can be off.
static void off_text(int id, char *buf, size_t n) {
    const Param *r = param_live(id);
    buf[0] = 0;
    if (r->scale == SCALE_LOG && r->min <= 0 && r->floor > 0)
        snprintf(buf, n, "; below %g it turns off", r->floor);
}

void keys_help(const KeyBinding *k, char *buf, size_t n) {
    if (k->kind != KA_UP && k->kind != KA_DOWN) {
        snprintf(buf, n, "%s", k->help);
        return;
    }
    int dir = k->kind == KA_UP ? 1 : -1;
    char step[32], off[64] = "";
    step_text(k->arg, dir, step, sizeof step);
    if (dir < 0) off_text(k->arg, off, sizeof off);
    snprintf(buf, n, "%s %s (%s%s)", k->help, dir > 0 ? "up" : "down", step, off);
}

// Text in a Markdown table cell: "|" escaped.
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

void keys_markdown(FILE *f) {
    fprintf(f, "| key | action |\n|---|---|\n");
    for (int i = 0; i < N_KEYS; i++) {
        const KeyBinding *k = &KEYS[i];
        if (!k->keyname) continue;
        const KeyBinding *nx = i + 1 < N_KEYS ? &KEYS[i + 1] : NULL;
        if (k->kind == KA_UP && nx && nx->kind == KA_DOWN && nx->arg == k->arg) {
            // An up/down pair on one row.
            char step[32], off[64];
            step_text(k->arg, 1, step, sizeof step);
            off_text(k->arg, off, sizeof off);
            fprintf(f, "| %s / %s | %s up / down (%s a step%s) |\n", k->keyname, nx->keyname, k->help,
                    step, off);
            i++;
            continue;
        }
        char help[160];
        keys_help(k, help, sizeof help);
        fputs("| ", f);
        md_cell(f, k->keyname);
        fputs(" | ", f);
        md_cell(f, help);
        fputs(" |\n", f);
    }
}
