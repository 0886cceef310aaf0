// pixconv.c: YUYV / MJPEG / RGB24 / BGR24 camera frames to RGB8 (YUYV through
// color.h, the one YUV -> RGB conversion).
#include "pixconv.h"

#include <setjmp.h>
#include <string.h>

#include "color.h"

#include <jpeglib.h>
// jpeglib.h needs stdio.h before it; jerror.h gives the warning codes.
#include <jerror.h>

int pix_supported(uint32_t f) {
    return f == PIX_YUYV || f == PIX_MJPEG || f == PIX_JPEG || f == PIX_RGB24 || f == PIX_BGR24;
}

void pix_bgr_to_rgb(uint8_t *rgb, const uint8_t *bgr, int w, int h, size_t stride) {
    if (!stride) stride = (size_t)w * 3;
    for (int r = 0; r < h; r++) {
        const uint8_t *p = bgr + (size_t)r * stride;
        uint8_t *o = rgb + (size_t)r * w * 3;
        for (int x = 0; x < w; x++, p += 3, o += 3) {
            o[0] = p[2];
            o[1] = p[1];
            o[2] = p[0];
        }
    }
}

// ---------------------------------------------------------------- JPEG

// The standard Huffman tables (ITU T.81 Annex K.3), which MJPEG webcams use
// implicitly (their frames carry no DHT segment).
static const uint8_t bits_dc_lum[16] = {0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t bits_dc_chr[16] = {0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
static const uint8_t val_dc[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const uint8_t bits_ac_lum[16] = {0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d};
static const uint8_t val_ac_lum[162] = {
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
    0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
    0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
    0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
    0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
    0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
    0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa};
static const uint8_t bits_ac_chr[16] = {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77};
static const uint8_t val_ac_chr[162] = {
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
    0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
    0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
    0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
    0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
    0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
    0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
    0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
    0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
    0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
    0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa};

// One DHT segment holding all four tables: marker, length, then (class<<4|id,
// 16 counts, values) per table. 2 + 2 + 2*(17+12) + 2*(17+162) = 420 bytes.
#define DHT_LEN 420
static size_t put_table(uint8_t *o, int cls_id, const uint8_t bits[16], const uint8_t *val,
                        size_t nval) {
    o[0] = (uint8_t)cls_id;
    memcpy(o + 1, bits, 16);
    memcpy(o + 17, val, nval);
    return 17 + nval;
}
static void build_dht(uint8_t o[DHT_LEN]) {
    size_t k = 4;
    o[0] = 0xFF;
    o[1] = 0xC4;
    o[2] = (DHT_LEN - 2) >> 8;
    o[3] = (DHT_LEN - 2) & 0xFF;
    // Same order as libjpeg writes them (luma DC, AC, then chroma DC, AC).
    k += put_table(o + k, 0x00, bits_dc_lum, val_dc, sizeof val_dc);
    k += put_table(o + k, 0x10, bits_ac_lum, val_ac_lum, sizeof val_ac_lum);
    k += put_table(o + k, 0x01, bits_dc_chr, val_dc, sizeof val_dc);
    k += put_table(o + k, 0x11, bits_ac_chr, val_ac_chr, sizeof val_ac_chr);
    CHECK(k == DHT_LEN, "DHT segment is %zu bytes", k);
}

const uint8_t *pix_std_dht(size_t *n) {
    static uint8_t dht[DHT_LEN];
    build_dht(dht);
    *n = DHT_LEN;
    return dht;
}

// Walk the marker segments up to the first scan. Returns the offset of the SOS
// marker (0 if the headers are malformed) and whether a DHT came before it.
static size_t scan_headers(const uint8_t *p, size_t n, int *has_dht) {
    *has_dht = 0;
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 0;
    size_t i = 2;
    while (i + 4 <= n) {
        if (p[i] != 0xFF) return 0;
        uint8_t m = p[i + 1];
        if (m == 0xFF) {  // fill byte
            i++;
            continue;
        }
        if (m == 0xDA) return i;
        if (m == 0xC4) *has_dht = 1;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // markers without a length
            i += 2;
            continue;
        }
        size_t len = ((size_t)p[i + 2] << 8) | p[i + 3];
        if (len < 2) return 0;
        i += 2 + len;
    }
    return 0;
}

int pix_jpeg_has_dht(const uint8_t *jpeg, size_t n) {
    int has = 0;
    scan_headers(jpeg, n, &has);
    return has;
}

// A libjpeg source that reads up to three pieces in a row, so the standard DHT
// can be spliced in before the scan without copying the frame.
typedef struct {
    struct jpeg_source_mgr pub;
    const uint8_t *piece[3];
    size_t len[3];
    int next;
} PieceSrc;

static void src_init(j_decompress_ptr c) { (void)c; }
static void src_term(j_decompress_ptr c) { (void)c; }
static boolean src_fill(j_decompress_ptr c) {
    static const JOCTET eoi[2] = {0xFF, JPEG_EOI};
    PieceSrc *s = (PieceSrc *)c->src;
    while (s->next < 3 && s->len[s->next] == 0) s->next++;
    if (s->next == 3) {  // out of data: a truncated frame; end it so libjpeg stops
        WARNMS(c, JWRN_JPEG_EOF);
        s->pub.next_input_byte = eoi;
        s->pub.bytes_in_buffer = 2;
        return TRUE;
    }
    s->pub.next_input_byte = s->piece[s->next];
    s->pub.bytes_in_buffer = s->len[s->next];
    s->next++;
    return TRUE;
}
static void src_skip(j_decompress_ptr c, long n) {
    while (n > 0) {
        if ((size_t)n <= c->src->bytes_in_buffer) {
            c->src->next_input_byte += n;
            c->src->bytes_in_buffer -= (size_t)n;
            return;
        }
        n -= (long)c->src->bytes_in_buffer;
        c->src->bytes_in_buffer = 0;
        src_fill(c);
    }
}

// libjpeg reports fatal errors through error_exit (which must not return):
// jump back and fail. Warnings that mean lost data (truncation, a broken
// entropy stream) also fail the frame; harmless ones (extra bytes) do not.
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int corrupt;
    char msg[JMSG_LENGTH_MAX];
} JErr;

static void jerr_exit(j_common_ptr c) {
    JErr *e = (JErr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}
static void jerr_emit(j_common_ptr c, int level) {
    JErr *e = (JErr *)c->err;
    if (level >= 0) return;
    int code = c->err->msg_code;
    if (!e->corrupt && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC)) {
        e->corrupt = 1;
        c->err->format_message(c, e->msg);
    }
    c->err->num_warnings++;
}
static void jerr_output(j_common_ptr c) { (void)c; }  // no stderr spam per frame

int pix_jpeg_to_rgb(uint8_t *rgb, int w, int h, const uint8_t *jpeg, size_t n, TbErr *err) {
    int has_dht = 0;
    size_t sos = scan_headers(jpeg, n, &has_dht);
    if (n < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8)
        return tb_fail(err, "corrupt JPEG: no start-of-image marker (%zu bytes)", n);

    uint8_t dht[DHT_LEN];
    PieceSrc src;
    memset(&src, 0, sizeof src);
    src.pub.init_source = src_init;
    src.pub.fill_input_buffer = src_fill;
    src.pub.skip_input_data = src_skip;
    src.pub.resync_to_restart = jpeg_resync_to_restart;
    src.pub.term_source = src_term;
    if (!has_dht && sos > 0) {
        build_dht(dht);
        src.piece[0] = jpeg, src.len[0] = sos;
        src.piece[1] = dht, src.len[1] = DHT_LEN;
        src.piece[2] = jpeg + sos, src.len[2] = n - sos;
    } else {
        src.piece[0] = jpeg, src.len[0] = n;
    }

    struct jpeg_decompress_struct cinfo;
    JErr je;
    memset(&je, 0, sizeof je);
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    je.pub.emit_message = jerr_emit;
    je.pub.output_message = jerr_output;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&cinfo);
        return tb_fail(err, "corrupt JPEG: %s", je.msg);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.src = &src.pub;
    int rc = -1;
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
        tb_fail(err, "corrupt JPEG: no image in the stream");
        goto done;
    }
    if ((int)cinfo.image_width != w || (int)cinfo.image_height != h) {
        tb_fail(err, "JPEG is %ux%u, expected %dx%d", cinfo.image_width, cinfo.image_height, w, h);
        goto done;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        tb_fail(err, "JPEG decodes to %d components, expected 3", cinfo.output_components);
        goto done;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[4];
        int k = 0;
        for (; k < 4 && cinfo.output_scanline + (unsigned)k < cinfo.output_height; k++)
            rows[k] = rgb + (size_t)(cinfo.output_scanline + (unsigned)k) * (size_t)w * 3;
        if (jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)k) == 0) break;
    }
    if (je.corrupt) {
        tb_fail(err, "corrupt JPEG: %s", je.msg);
        goto done;
    }
    if (cinfo.output_scanline < cinfo.output_height) {
        tb_fail(err, "corrupt JPEG: stopped at line %u of %u", cinfo.output_scanline,
                cinfo.output_height);
        goto done;
    }
    rc = 0;
    // No jpeg_finish_decompress: trailing bytes after the image (or a missing
    // EOI, common in webcam frames) do not matter once every line is decoded.
done:
    jpeg_destroy_decompress(&cinfo);
    return rc;
}

// ---------------------------------------------------------------- dispatch

int pix_convert(uint32_t fourcc, uint8_t *rgb, int w, int h, const uint8_t *src, size_t n,
                size_t stride, TbErr *err) {
    if (w <= 0 || h <= 0) return tb_fail(err, "bad frame size %dx%d", w, h);
    size_t bpp = 0;
    switch (fourcc) {
        case PIX_MJPEG:
        case PIX_JPEG: return pix_jpeg_to_rgb(rgb, w, h, src, n, err);
        case PIX_YUYV: bpp = 2; break;
        case PIX_RGB24:
        case PIX_BGR24: bpp = 3; break;
        default:
            return tb_fail(err, "unsupported pixel format '%c%c%c%c'", (char)(fourcc & 0xFF),
                           (char)((fourcc >> 8) & 0xFF), (char)((fourcc >> 16) & 0xFF),
                           (char)((fourcc >> 24) & 0xFF));
    }
    size_t line = (size_t)(w + (fourcc == PIX_YUYV ? (w & 1) : 0)) * bpp;
    if (!stride) stride = line;
    if (stride < line || n < stride * (size_t)(h - 1) + line)
        return tb_fail(err, "short frame: %zu bytes for %dx%d (stride %zu)", n, w, h, stride);
    if (fourcc == PIX_YUYV) {
        yuyv_to_rgb(rgb, src, w, h, stride);
    } else if (fourcc == PIX_BGR24) {
        pix_bgr_to_rgb(rgb, src, w, h, stride);
    } else {
        for (int r = 0; r < h; r++)
            memcpy(rgb + (size_t)r * w * 3, src + (size_t)r * stride, (size_t)w * 3);
    }
    return 0;
}
