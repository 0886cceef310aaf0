// keys.h: the keyboard panel. One table maps keys to actions; the help overlay
// and the README's key list are the same table.
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef enum {
    KA_UP = 0,      // parameter `arg` one step up
    KA_DOWN,        // parameter `arg` one step down
    KA_CLIP_TOGGLE, // clip off, or back to the value it had
    KA_PAUSE,       // freeze / resume learning
    KA_RESET,       // fresh random network
    KA_SAVE,        // snapshot into the snapshot folder
    KA_LOAD,        // newest snapshot
    KA_LAYOUT_NEXT,
    KA_LAYOUT_SET,  // arg = layout
    KA_FLIP,
    KA_HUD,
    KA_HELP,
    KA_FULLSCREEN,
    KA_MIDI_LEARN,  // arg +1 / -1: MIDI learn's next / previous target (midi.h)
    KA_QUIT,
    KA_SLOT_FADE,   // cross-fade into slot `arg` (1..8) over fade_time
    KA_SLOT_SAVE,   // live network into slot `arg`
    KA_SLOT_RECALL, // slot `arg` at once
    KA_RECORD,      // start a take, or stop the one running
    KA_WORLD,       // world `arg` ([world] dir) into [world] slot, cross-faded to
    KA_ATLAS,       // the atlas layout, or back to the layout before it
    KA_ATLAS_FOCUS, // arg +1 / -1: the next / previous layer alone (past the ends: every layer)
    KA_SOLO,        // arg +1 / -1: the next / previous bottleneck channel (or group) solo (past the ends: none)
    KA_SOLO_GROUP,  // the solo group's size: 1, 4, 16, 64 channels, round again
    KA_CODE_STORE,  // the current bottleneck code into the next keyframe
    KA_JOURNEY,     // play the journey through the keyframes, or stop it
    KA_CHANNEL_NEXT, // [channels]: the keys act on the next channel
} KeyActionKind;

typedef struct {
    int key;   // GLFW_KEY_*
    int mods;  // required GLFW_MOD_SHIFT and/or GLFW_MOD_CONTROL (others ignored), 0 = neither
    KeyActionKind kind;
    int arg;
    const char *keyname;  // as printed in help
    const char *help;     // KA_UP/KA_DOWN: the parameter's name (keys_help adds the step)
} KeyBinding;

// Binding for a key press (NULL if none). Shift- and Ctrl-sensitive where the
// table says; a modifier with no binding of its own falls back to the key without it.
const KeyBinding *keys_lookup(int key, int mods);
const KeyBinding *keys_table(int *n);
// The help line of a binding: its text, and for a parameter step the direction
// and the step from the parameter table ("learning rate up (x1.78)").
void keys_help(const KeyBinding *k, char *buf, size_t n);
// The key table as Markdown (the README's "Keys" table is this, checked by
// tests/app/test_keys.c): up/down pairs share a row.
void keys_markdown(FILE *f);
