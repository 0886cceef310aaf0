// fuzz_y4m.c: the Y4M reader on arbitrary bytes: header, frame markers, sizes,
// chroma formats, truncation; each frame read is fitted to a training size.
#include "frame_fit.h"
#include "fuzz_file.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".y4m");
    TbErr err;
    Source *s = source_open_y4m(path, &err);
    if (!s) return 0;
    uint8_t fit[16 * 16 * 3];
    for (int i = 0; i < 4; i++) {
        int w = s->width, h = s->height;
        if ((size_t)w * h > (1u << 22)) break;
        uint8_t *rgb = malloc((size_t)w * h * 3);
        int got = s->read(s, rgb, &err);
        if (got == 1) frame_fit(fit, 16, 16, rgb, w, h);
        free(rgb);
        if (got < 0) break;
    }
    source_close(s);
    return 0;
}
