// fuzz_file.h: the fuzzers' input as a file (the code under test reads paths).
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/tabula-fuzz-%d%s", (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
