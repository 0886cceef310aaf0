// test_config.c: why it exists: the INI file and the flags are how users and
// installers set tabula up, so config/default.ini must say exactly what the
// program does without it, every setting must be in it, bad files and flags must
// give "FILE:LINE: problem", and flags must override the file.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "params.h"
#include "settings.h"
#include "test.h"

static const char *write_tmp(const char *text) {
    static char path[4][64];
    static int k;
    k = (k + 1) & 3;
    snprintf(path[k], sizeof path[k], "/tmp/tabula-cfg-%d-%d.ini", (int)getpid(), k);
    FILE *f = fopen(path[k], "w");
    fputs(text, f);
    fclose(f);
    return path[k];
}

static void expect_file_error(const char *text, const char *needle) {
    Settings s;
    settings_default(&s);
    TbErr err = {{0}};
    const char *p = write_tmp(text);
    int rc = settings_load_file(&s, p, &err);
    EXPECT(rc == -1, "\"%s\" was accepted", text);
    EXPECT(strstr(err.msg, p) != NULL, "message names the file: %s", err.msg);
    EXPECT(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
    unlink(p);
}

static const char *default_ini(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/config/default.ini", getenv("TABULA_SRC") ? getenv("TABULA_SRC") : ".");
    return path;
}

// The shipped default.ini says exactly what the program does without it.
TEST_IMPL(default_ini_matches_builtin_defaults) {
    Settings def, file;
    settings_default(&def);
    settings_default(&file);
    memset(&file, 0x5a, sizeof file);  // anything the file fails to set shows up
    settings_default(&file);
    TbErr err = {{0}};
    EXPECT(settings_load_file(&file, default_ini(), &err) == 0, "%s", err.msg);
    // Every value the file can hold came from it, and says so.
    size_t np;
    const Param *P = params_table(&np);
    for (size_t i = 0; i < np; i++)
        if (P[i].section) EXPECT(strncmp(file.set_at[i], "default.ini:", 12) == 0 || strstr(file.set_at[i], "/default.ini:"),
               "row %zu set at \"%s\"", i, file.set_at[i]);
    memset(file.set_at, 0, sizeof file.set_at);
    EXPECT(memcmp(&def, &file, sizeof def) == 0, "default.ini differs from the built-in defaults");
}

// default.ini is its header comment and then exactly what the INI writer makes
// of the defaults: every row of the table, with its help and range.
TEST_IMPL(default_ini_is_the_table) {
    FILE *f = fopen(default_ini(), "r");
    EXPECT(f != NULL, "%s", default_ini());
    if (!f) return;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    Settings def;
    settings_default(&def);
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    settings_write_ini(&def, mf);
    fclose(mf);
    const char *body = strstr(text, "\n[model]");
    EXPECT(body && strcmp(body + 1, buf) == 0,
           "config/default.ini differs from the table; after its header it should read:\n%s", buf);
    free(buf);
}

// Every row of the parameter table that has an INI key is written in default.ini.
TEST_IMPL(default_ini_has_every_setting) {
    FILE *f = fopen(default_ini(), "r");
    EXPECT(f != NULL, "%s", default_ini());
    if (!f) return;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    size_t np;
    const Param *P = params_table(&np);
    for (size_t i = 0; i < np; i++) {
        if (!P[i].section) continue;
        char line[128];
        snprintf(line, sizeof line, "\n%s = ", P[i].key);
        EXPECT(strstr(text, line) != NULL, "default.ini lacks [%s] %s", P[i].section, P[i].key);
    }
}

// Write the INI from a changed struct, read it back: the writer covers the table.
TEST_IMPL(ini_writer_round_trip) {
    Settings def;
    settings_default(&def);
    TbErr err = {{0}};
    Settings changed = def;
    changed.lr = 0.0123f;
    changed.memory = 3;
    snprintf(changed.layout, sizeof changed.layout, "triptych");
    snprintf(changed.source, sizeof changed.source, "file:/x/y.y4m");
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    settings_write_ini(&changed, mf);
    fclose(mf);
    const char *p = write_tmp(buf);
    free(buf);
    Settings back;
    settings_default(&back);
    EXPECT(settings_load_file(&back, p, &err) == 0, "%s", err.msg);
    EXPECT(back.lr == changed.lr && back.memory == 3 && strcmp(back.layout, "triptych") == 0 &&
               strcmp(back.source, "file:/x/y.y4m") == 0,
           "round trip through the INI writer");
    unlink(p);
}

// Bad files: each a clear message with file and line.
TEST_IMPL(bad_files_name_file_and_line) {
    TbErr err = {{0}};
    expect_file_error("[train]\nlr = 0.1\nbogus = 3\n", ":3: unknown key \"bogus\" in [train]");
    expect_file_error("[train]\nlr = 50\n", ":2: lr = 50 is out of range (0 to 10)");
    expect_file_error("[train]\nmemory = 2.5\n", ":2: memory: \"2.5\" is not a whole number");
    expect_file_error("[nope]\n", ":1: unknown section [nope]");
    expect_file_error("lr = 1\n", ":1: \"lr\" outside any [section]");
    expect_file_error("[train]\njust words\n", ":2: expected key = value");
    expect_file_error("[display]\nlayout = diagonal\n", ":2: layout: \"diagonal\" is not one of mirror|side|triptych|atlas");
    expect_file_error("[train\n", ":1: bad section header");
    expect_file_error("[train] lr = 1\n", ":1: bad section header");
    expect_file_error("[model]\nchannels = 32,,64\n", ":2: channels: \"32,,64\" is not 1 to 8 comma-separated");
    expect_file_error("[model]\nchannels = 32,64x\n", ":2: channels: \"32,64x\" is not");
    expect_file_error("[model]\nchannels = 4294967328\n", ":2: channels:");
    Settings s;
    settings_default(&s);
    EXPECT(settings_load_file(&s, "/nonexistent/tabula.ini", &err) == -1 &&
               strstr(err.msg, "/nonexistent/tabula.ini: No such file") != NULL,
           "missing file: %s", err.msg);
}

// Flags override the file whatever the order; --size; --section.key.
TEST_IMPL(flags_override_file) {
    TbErr err = {{0}};
    Settings s;
    const char *p = write_tmp("[train]   # a section's comment\nlr = 0.2\nmomentum = 0.5 # inline comment\n");
    char *argv1[] = {"tabula", "--lr", "0.03", "--config", (char *)p, "--size", "448x256",
                     "--headless", "--frames=7", "--train.adam_beta1", "0.8", NULL};
    settings_default(&s);
    EXPECT(settings_parse_args(&s, 11, argv1, &err) == 0, "%s", err.msg);
    EXPECT_NEAR(s.lr, 0.03, 1e-7, "flag beats file");
    EXPECT_NEAR(s.momentum, 0.5, 1e-7, "file value kept");
    EXPECT(s.width == 448 && s.height == 256, "--size: %dx%d", s.width, s.height);
    EXPECT(s.headless == 1 && s.frames == 7, "--headless --frames=7");
    EXPECT_NEAR(s.adam_beta1, 0.8, 1e-7, "--section.key");
    unlink(p);
}

TEST_IMPL(bad_flags_are_clear_errors) {
    TbErr err = {{0}};
    Settings s;
    settings_default(&s);
    char *argv2[] = {"tabula", "--size", "256", NULL};
    EXPECT(settings_parse_args(&s, 3, argv2, &err) == -1 && strstr(err.msg, "--size"), "%s", err.msg);
    char *argv3[] = {"tabula", "--lr", NULL};
    EXPECT(settings_parse_args(&s, 2, argv3, &err) == -1 && strstr(err.msg, "needs a value"), "%s", err.msg);
    char *argv4[] = {"tabula", "--frobnicate", "1", NULL};
    EXPECT(settings_parse_args(&s, 3, argv4, &err) == -1 && strstr(err.msg, "unknown option --frobnicate"), "%s", err.msg);
    char *argv5[] = {"tabula", "--backend", "tpu", NULL};
    EXPECT(settings_parse_args(&s, 3, argv5, &err) == -1 && strstr(err.msg, "auto|cpu|cuda"), "%s", err.msg);
    char *argv6[] = {"tabula", "--size", "8x4096", NULL};
    EXPECT(settings_parse_args(&s, 3, argv6, &err) == -1 && strstr(err.msg, "16 to 4096"), "%s", err.msg);
}

TEST_MAIN(TEST_ENTRY(default_ini_matches_builtin_defaults), TEST_ENTRY(default_ini_is_the_table),
          TEST_ENTRY(default_ini_has_every_setting),
          TEST_ENTRY(ini_writer_round_trip), TEST_ENTRY(bad_files_name_file_and_line),
          TEST_ENTRY(flags_override_file), TEST_ENTRY(bad_flags_are_clear_errors))
