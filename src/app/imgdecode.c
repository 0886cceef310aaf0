// imgdecode.c: PNG (libpng) and JPEG (libjpeg-turbo) files to RGB8; see
// imgdecode.h for the contract. Both libraries report errors by longjmp from
// a callback: each decoder sets its jump point before the first library call,
// keeps what it allocates in volatile pointers, and frees everything on the
// way out, so an error never leaks or leaves the program in a bad state.
#define _POSIX_C_SOURCE 200809L
#include "imgdecode.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
// jpeglib.h needs stdio.h before it; jerror.h gives the warning codes.
#include <jerror.h>
#include <png.h>

void img_free(Image *im) {
    free(im->rgb);
    im->rgb = NULL;
    im->width = im->height = 0;
}

// ---------------------------------------------------------------- reading a file

static const char *not_regular(mode_t m) {
    if (S_ISREG(m)) return NULL;
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISDIR(m)) return "a folder";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int img_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *n, TbErr *err) {
    *data = NULL;
    *n = 0;
    // stat first, so a device or FIFO is not even opened (opening some devices
    // does things); fstat on the open file is what counts (it may have been
    // swapped in between).
    struct stat st;
    const char *kind;
    if (stat(path, &st) < 0) return tb_fail(err, "%s: %s", path, strerror(errno));
    if ((kind = not_regular(st.st_mode))) return tb_fail(err, "%s: is %s, not an image file", path, kind);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return tb_fail(err, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return tb_fail(err, "%s: %s", path, strerror(e));
    }
    if ((kind = not_regular(st.st_mode))) {
        close(fd);
        return tb_fail(err, "%s: is %s, not an image file", path, kind);
    }
    if (st.st_size <= 0) {
        close(fd);
        return tb_fail(err, "%s: empty file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return tb_fail(err, "%s: %lld bytes, over the limit of %zu MiB for one image", path,
                       (long long)st.st_size, max_bytes >> 20);
    }
    size_t want = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(want);
    if (!buf) {
        close(fd);
        return tb_fail(err, "%s: out of memory for %zu bytes", path, want);
    }
    while (got < want) {  // a file that shrinks meanwhile is decoded as far as it goes
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return tb_fail(err, "%s: %s", path, strerror(e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got == 0) {
        free(buf);
        return tb_fail(err, "%s: empty file", path);
    }
    *data = buf;
    *n = got;
    return 0;
}

// Within the limits? (Checked before any pixel memory is allocated.)
static int size_ok(const char *name, const char *fmt, unsigned long w, unsigned long h, TbErr *err) {
    if (w == 0 || h == 0) return tb_fail(err, "%s: cannot decode image: %s of size %lux%lu", name, fmt, w, h);
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || (size_t)w * (size_t)h > IMG_MAX_PIXELS)
        return tb_fail(err, "%s: %s of %lux%lu is over the limit (%d per side, %zu megapixels)", name,
                       fmt, w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS >> 20);
    return 0;
}

// ---------------------------------------------------------------- JPEG

// Fatal errors come through error_exit (which must not return): jump back.
// Warnings that mean lost data (a file that ends early, a broken entropy
// stream, a bad progression) fail the image too, at once, so a damaged file
// is skipped rather than shown half grey and no time is spent decoding the
// rest; the harmless ones (stray bytes before a marker, an unknown JFIF
// version or Adobe transform, a bad ICC marker) do not.
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} JErr;

static void jerr_exit(j_common_ptr c) {
    JErr *e = (JErr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}
static void jerr_emit(j_common_ptr c, int level) {
    if (level >= 0) return;  // trace messages
    int code = c->err->msg_code;
    c->err->num_warnings++;
    if (code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM ||
        code == JWRN_BOGUS_ICC)
        return;
    jerr_exit(c);
}
static void jerr_output(j_common_ptr c) { (void)c; }  // nothing on stderr

// Called between scans while a multi-scan file is read in: refuse a file with
// absurdly many (TurboJPEG's TJFLAG_LIMITSCANS does the same).
static void jpeg_progress(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > IMG_MAX_JPEG_SCANS) {
        JErr *e = (JErr *)c->err;
        snprintf(e->msg, sizeof e->msg, "more than %d progressive scans", IMG_MAX_JPEG_SCANS);
        longjmp(e->jb, 1);
    }
}

static int decode_jpeg(const uint8_t *data, size_t n, const char *name, Image *out, TbErr *err) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    JErr je;
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;  // one CMYK row
    memset(&cinfo, 0, sizeof cinfo);
    memset(&je, 0, sizeof je);
    memset(&progress, 0, sizeof progress);
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    je.pub.emit_message = jerr_emit;
    je.pub.output_message = jerr_output;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(row);
        return tb_fail(err, "%s: cannot decode image: corrupt JPEG: %s", name, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    // Working memory beyond this is refused (no backing store in libjpeg-turbo:
    // an error, not a swap file). 64 Mpx progressive 4:4:4 needs 384 MiB.
    cinfo.mem->max_memory_to_use = 512L << 20;
    progress.progress_monitor = jpeg_progress;
    cinfo.progress = &progress;
    // jpeg_mem_src: past the end it warns (JWRN_JPEG_EOF, fatal here) and
    // feeds an EOI, so it never reads out of bounds.
    jpeg_mem_src(&cinfo, (unsigned char *)data, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);  // TRUE: an error unless there is an image
    unsigned long w = cinfo.image_width, h = cinfo.image_height;
    if (size_ok(name, "JPEG", w, h, err) < 0) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // grey becomes RGB in libjpeg
    jpeg_start_decompress(&cinfo);
    int comps = cmyk ? 4 : 3;
    if (cinfo.output_components != comps || cinfo.output_width != w || cinfo.output_height != h) {
        snprintf(je.msg, sizeof je.msg, "decodes to %d components at %ux%u", cinfo.output_components,
                 cinfo.output_width, cinfo.output_height);
        longjmp(je.jb, 1);
    }
    rgb = malloc(w * h * 3);
    if (cmyk) row = malloc(w * 4);
    if (!rgb || (cmyk && !row)) {
        snprintf(je.msg, sizeof je.msg, "out of memory for %lux%lu", w, h);
        longjmp(je.jb, 1);
    }
    while (cinfo.output_scanline < h) {
        unsigned y = cinfo.output_scanline;
        JSAMPROW dst = cmyk ? (JSAMPROW)row : (JSAMPROW)(rgb + (size_t)y * w * 3);
        if (jpeg_read_scanlines(&cinfo, &dst, 1) != 1) {  // only a suspending source returns 0
            snprintf(je.msg, sizeof je.msg, "stopped at line %u of %lu", y, h);
            longjmp(je.jb, 1);
        }
        if (cmyk) {  // Adobe stores CMYK inverted: R = C*K/255 (as stb_image, TurboJPEG)
            uint8_t *o = rgb + (size_t)y * w * 3;
            for (unsigned long x = 0; x < w; x++) {
                unsigned k = row[4 * x + 3];
                for (int c = 0; c < 3; c++) o[3 * x + c] = (uint8_t)((row[4 * x + c] * k + 127) / 255);
            }
        }
    }
    // No jpeg_finish_decompress: once every line is decoded, what follows the
    // image (a missing EOI, trailing bytes) does not matter.
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->rgb = rgb;
    out->width = (int)w;
    out->height = (int)h;
    return 0;
}

// ---------------------------------------------------------------- PNG

typedef struct {
    const uint8_t *p;
    size_t n, off;
    char msg[256];
} PngCtx;

static void png_read_mem(png_structp png, png_bytep dst, size_t len) {
    PngCtx *c = png_get_io_ptr(png);
    if (len > c->n - c->off) png_error(png, "file is truncated");
    memcpy(dst, c->p + c->off, len);
    c->off += len;
}
static void png_on_error(png_structp png, png_const_charp msg) {
    PngCtx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static int decode_png(const uint8_t *data, size_t n, const char *name, Image *out, TbErr *err) {
    PngCtx ctx = {.p = data, .n = n};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return tb_fail(err, "%s: cannot decode image: out of memory for libpng", name);
    }
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(rows);
        return tb_fail(err, "%s: cannot decode image: corrupt PNG: %s", name, ctx.msg);
    }
    png_set_read_fn(png, &ctx, png_read_mem);
    // Only the chunks that make the picture (IHDR, PLTE, tRNS, IDAT, IEND):
    // text, ICC profiles and the rest are skipped unparsed, and no ancillary
    // chunk may claim more than 8 MB.
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_chunk_malloc_max(png, 8000000);
    png_set_chunk_cache_max(png, 1000);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, type, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
    if (size_ok(name, "PNG", w, h, err) < 0) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png);
    if (type & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if (!(type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected layout after conversion to RGB8");
    rgb = malloc((size_t)w * h * 3);
    rows = malloc(sizeof *rows * h);
    if (!rgb || !rows) png_error(png, "out of memory for the pixels");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = rgb + (size_t)y * w * 3;
    png_read_image(png, rows);
    // No png_read_end: chunks after the image data do not change the picture.
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->rgb = rgb;
    out->width = (int)w;
    out->height = (int)h;
    return 0;
}

// ---------------------------------------------------------------- entry points

int img_decode(const uint8_t *data, size_t n, const char *name, Image *out, TbErr *err) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    out->rgb = NULL;
    out->width = out->height = 0;
    if (n >= 8 && memcmp(data, png_sig, 8) == 0) return decode_png(data, n, name, out, err);
    if (n >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, n, name, out, err);
    return tb_fail(err, "%s: cannot decode image: neither PNG nor JPEG (%zu bytes)", name, n);
}

int img_load(const char *path, Image *out, TbErr *err) {
    uint8_t *data;
    size_t n;
    out->rgb = NULL;
    out->width = out->height = 0;
    if (img_read_file(path, IMG_MAX_FILE_BYTES, &data, &n, err) < 0) return -1;
    int rc = img_decode(data, n, path, out, err);
    free(data);
    return rc;
}
