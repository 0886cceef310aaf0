// keys.c: the key table.
#include "keys.h"

#include <GLFW/glfw3.h>
#include <stddef.h>

#include "controls.h"
#include "display.h"

#define SH GLFW_MOD_SHIFT
static const KeyBinding KEYS[] = {
    {GLFW_KEY_UP, 0, KA_UP, PARAM_LR, "Up", "learning rate up (x1.78, 4 steps a decade)"},
    {GLFW_KEY_DOWN, 0, KA_DOWN, PARAM_LR, "Down", "learning rate down"},
    {GLFW_KEY_RIGHT, 0, KA_UP, PARAM_MOMENTUM, "Right", "momentum up (+0.01)"},
    {GLFW_KEY_LEFT, 0, KA_DOWN, PARAM_MOMENTUM, "Left", "momentum down (-0.01)"},
    {GLFW_KEY_C, 0, KA_UP, PARAM_CLIP, "C", "gradient clip up (x1.41)"},
    {GLFW_KEY_C, SH, KA_DOWN, PARAM_CLIP, "Shift+C", "gradient clip down"},
    {GLFW_KEY_X, 0, KA_CLIP_TOGGLE, 0, "X", "gradient clip off / back on"},
    {GLFW_KEY_RIGHT_BRACKET, 0, KA_UP, PARAM_STEPS, "]", "steps per frame up (+1)"},
    {GLFW_KEY_LEFT_BRACKET, 0, KA_DOWN, PARAM_STEPS, "[", "steps per frame down"},
    {GLFW_KEY_M, 0, KA_UP, PARAM_MEMORY, "M", "memory up: replay one more recent frame per step"},
    {GLFW_KEY_M, SH, KA_DOWN, PARAM_MEMORY, "Shift+M", "memory down"},
    {GLFW_KEY_N, 0, KA_UP, PARAM_RING, "N", "memory reaches further back (ring x2)"},
    {GLFW_KEY_N, SH, KA_DOWN, PARAM_RING, "Shift+N", "memory reaches less far back"},
    {GLFW_KEY_SPACE, 0, KA_PAUSE, 0, "Space", "pause / resume learning"},
    {GLFW_KEY_R, 0, KA_RESET, 0, "R", "reset: a fresh blank network"},
    {GLFW_KEY_S, 0, KA_SAVE, 0, "S", "save a snapshot of the weights"},
    {GLFW_KEY_L, 0, KA_LOAD, 0, "L", "load the last snapshot"},
    {GLFW_KEY_TAB, 0, KA_LAYOUT_NEXT, 0, "Tab", "next layout"},
    {GLFW_KEY_1, 0, KA_LAYOUT_SET, DISPLAY_MIRROR, "1", "layout: mirror (reconstruction only)"},
    {GLFW_KEY_2, 0, KA_LAYOUT_SET, DISPLAY_SIDE, "2", "layout: camera | reconstruction"},
    {GLFW_KEY_3, 0, KA_LAYOUT_SET, DISPLAY_TRIPTYCH, "3", "layout: camera | reconstruction | error"},
    {GLFW_KEY_F, 0, KA_FLIP, 0, "F", "mirror flip on / off"},
    {GLFW_KEY_H, 0, KA_HUD, 0, "H", "heads-up display on / off"},
    {GLFW_KEY_F1, 0, KA_HELP, 0, "F1 or ?", "this help"},
    {GLFW_KEY_SLASH, SH, KA_HELP, 0, NULL, NULL},
    {GLFW_KEY_F11, 0, KA_FULLSCREEN, 0, "F11", "fullscreen on / off"},
    {GLFW_KEY_ESCAPE, 0, KA_QUIT, 0, "Esc or Q", "quit"},
    {GLFW_KEY_Q, 0, KA_QUIT, 0, NULL, NULL},
};
#define N_KEYS (int)(sizeof KEYS / sizeof KEYS[0])

const KeyBinding *keys_lookup(int key, int mods) {
    int shift = (mods & SH) ? SH : 0;
    for (int i = 0; i < N_KEYS; i++)
        if (KEYS[i].key == key && KEYS[i].mods == shift) return &KEYS[i];
    // A shifted key with no shifted binding acts as the plain key (e.g. Shift+Up).
    for (int i = 0; shift && i < N_KEYS; i++)
        if (KEYS[i].key == key && KEYS[i].mods == 0) return &KEYS[i];
    return NULL;
}

const KeyBinding *keys_table(int *n) {
    *n = N_KEYS;
    return KEYS;
}
