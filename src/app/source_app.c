// source_app.c: the app build's openers for the specs the engine cannot open
// itself (this strong definition replaces the engine's weak fallback).
#include <string.h>

#include "app_sources.h"

Source *source_open_app(const char *spec, TbErr *err) {
    if (strncmp(spec, "dir:", 4) == 0) return source_open_imgdir(spec + 4, err);
    if (strncmp(spec, "file:", 5) == 0) return source_open_avfile(spec + 5, err);
    if (strcmp(spec, "camera") == 0) return source_open_camera(NULL, 0, 0, 0, err);
    if (strncmp(spec, "camera:", 7) == 0) return source_open_camera(spec + 7, 0, 0, 0, err);
    tb_fail(err, "unknown source '%s'", spec);
    return NULL;
}
