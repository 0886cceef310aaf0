// fuzz_image.c: the image decoder behind dir: folders (src/app/imgdecode.c,
// libpng and libjpeg-turbo) on arbitrary bytes: signatures, PNG chunks, CRCs,
// zlib streams, palettes and bit depths; JPEG markers, Huffman and
// quantization tables, sampling factors, progressive scans, truncation, and
// declared sizes up to the limits. Every decoded pixel is read (ASan checks
// the buffer is the size it claims) and the image is fitted to a training
// size, as the trainer would.
#include "frame_fit.h"
#include "imgdecode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Image im;
    TbErr err;
    if (img_decode(data, size, "fuzz", &im, &err) != 0) {
        if (im.rgb || !err.msg[0]) abort();  // a failure leaves no image and says why
        return 0;
    }
    if (!im.rgb || im.width < 1 || im.height < 1 || im.width > IMG_MAX_SIDE || im.height > IMG_MAX_SIDE ||
        (size_t)im.width * (size_t)im.height > IMG_MAX_PIXELS)
        abort();
    size_t n = (size_t)im.width * (size_t)im.height * 3;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += im.rgb[i];
    uint8_t fit[16 * 16 * 3];
    frame_fit(fit, 16, 16, im.rgb, im.width, im.height);
    img_free(&im);
    return 0;
}
