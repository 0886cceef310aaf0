// test_keys.c: why it exists: the README's key table is what an operator reads
// before a show; it must be the program's own key table (with the steps of the
// parameter table), and every key the overlay lists must do what it says.
#define _GNU_SOURCE
#include <GLFW/glfw3.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "params.h"
#include "test.h"

// The README's table between its <!-- keys --> markers.
static char *readme_keys(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/README.md", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *a = strstr(text, "<!-- keys -->\n"), *b = a ? strstr(a, "<!-- /keys -->") : NULL;
    if (!a || !b) return NULL;
    a += strlen("<!-- keys -->\n");
    *b = 0;
    return a;
}

TEST_IMPL(readme_table_is_the_key_table) {
    char *want = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&want, &len);
    keys_markdown(m);
    fclose(m);
    const char *have = readme_keys();
    EXPECT(have != NULL, "README.md has no <!-- keys --> ... <!-- /keys --> section");
    EXPECT(have && strcmp(have, want) == 0,
           "README's key table differs from the program's; it should read:\n%s", want);
    free(want);
}

TEST_IMPL(help_lines_carry_table_steps) {
    const KeyBinding *up = keys_lookup(GLFW_KEY_UP, 0), *c = keys_lookup(GLFW_KEY_C, GLFW_MOD_SHIFT);
    char buf[160];
    EXPECT(up && up->kind == KA_UP && up->arg == PARAM_LR, "Up is lr up");
    if (up) {
        keys_help(up, buf, sizeof buf);
        EXPECT(strcmp(buf, "learning rate up (x1.78)") == 0, "Up: '%s'", buf);
    }
    EXPECT(c && c->kind == KA_DOWN && c->arg == PARAM_CLIP, "Shift+C is clip down");
    if (c) {
        keys_help(c, buf, sizeof buf);
        EXPECT(strcmp(buf, "gradient clip down (/1.41; below 0.01 it turns off)") == 0, "Shift+C: '%s'", buf);
    }
    // A shifted key without its own binding acts as the plain key.
    EXPECT(keys_lookup(GLFW_KEY_UP, GLFW_MOD_SHIFT) == up, "Shift+Up is Up");
}

// Every key the overlay names is bound, and no two bindings take the same key.
TEST_IMPL(bindings_are_unique) {
    int n;
    const KeyBinding *k = keys_table(&n);
    int dup = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (k[i].key == k[j].key && k[i].mods == k[j].mods) dup++, fprintf(stderr, "twice: %s\n", k[i].keyname);
    EXPECT(dup == 0, "%d keys bound twice", dup);
    EXPECT(n > 20, "%d bindings", n);
}

// Slots 1..8 on F2..F9: plain fades, Shift saves, Ctrl recalls; Ctrl on a key
// without a Ctrl binding still acts as the key (Ctrl+S saves a snapshot).
TEST_IMPL(slot_keys) {
    for (int n = 1; n <= 8; n++) {
        const KeyBinding *f = keys_lookup(GLFW_KEY_F1 + n, 0);
        const KeyBinding *s = keys_lookup(GLFW_KEY_F1 + n, GLFW_MOD_SHIFT);
        const KeyBinding *r = keys_lookup(GLFW_KEY_F1 + n, GLFW_MOD_CONTROL | GLFW_MOD_ALT);
        EXPECT(f && f->kind == KA_SLOT_FADE && f->arg == n, "F%d fades into slot %d", n + 1, n);
        EXPECT(s && s->kind == KA_SLOT_SAVE && s->arg == n, "Shift+F%d saves slot %d", n + 1, n);
        EXPECT(r && r->kind == KA_SLOT_RECALL && r->arg == n, "Ctrl+F%d recalls slot %d", n + 1, n);
    }
    const KeyBinding *cs = keys_lookup(GLFW_KEY_S, GLFW_MOD_CONTROL);
    EXPECT(cs && cs->kind == KA_SAVE, "Ctrl+S is S");
    const KeyBinding *csc = keys_lookup(GLFW_KEY_C, GLFW_MOD_CONTROL | GLFW_MOD_SHIFT);
    EXPECT(csc && csc->kind == KA_DOWN && csc->arg == PARAM_CLIP, "Ctrl+Shift+C is Shift+C");
}

TEST_MAIN(TEST_ENTRY(readme_table_is_the_key_table), TEST_ENTRY(help_lines_carry_table_steps),
          TEST_ENTRY(bindings_are_unique), TEST_ENTRY(slot_keys))
