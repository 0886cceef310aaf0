// fuzz_ini.c: the INI reader (--config) and every value parser behind it, and
// the same text as command-line flags.
#include <string.h>

#include "fuzz_file.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".ini");
    Settings s;
    settings_default(&s);
    TbErr err;
    settings_load_file(&s, path, &err);
    // The bytes as "--name value" pairs split at NULs.
    char buf[512];
    size_t n = size < sizeof buf - 1 ? size : sizeof buf - 1;
    memcpy(buf, data, n);
    buf[n] = 0;
    char *argv[8] = {"tabula"};
    int argc = 1;
    for (char *p = buf; p < buf + n && argc < 7; p += strlen(p) + 1) argv[argc++] = p;
    argv[argc] = NULL;
    settings_default(&s);
    settings_parse_args(&s, argc, argv, &err);
    return 0;
}
