// fuzz_ini.c: the INI reader (--config) and every value parser behind it, and
// the same text as command-line flags; then whether the settings make a network.
#include <string.h>

#include "fuzz_file.h"
#include "session.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".ini");
    Settings s;
    settings_default(&s);
    TbErr err;
    if (settings_load_file(&s, path, &err) == 0) session_check(&s, &err);  // the settings together
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
    if (settings_parse_args(&s, argc, argv, &err) == 0) session_check(&s, &err);
    return 0;
}
