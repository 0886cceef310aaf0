// avfile.c: "file:PATH" for any video libavformat can demux and libavcodec can
// decode (MP4, MKV, WebM, Y4M, ...), converted to RGB8 with libswscale and
// looped forever: at the end, seek to the start and flush the decoder.
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "app_sources.h"

// Packets the decoder may reject in a row before the file counts as corrupt.
#define MAX_BAD_PACKETS 200

typedef struct {
    char path[1024];
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frm;
    struct SwsContext *sws;
    int sws_key[5];  // src format, w, h, colorspace, range of the current sws
    int stream, w, h;
    int draining;       // end of file reached, decoder being emptied
    int pending;        // frm holds a decoded frame not yet returned
    long pass_frames;   // frames decoded since the last rewind
    int bad_packets;
} AvFile;

static int av_fail(TbErr *err, const char *path, const char *what, int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(code, buf, sizeof buf);
    return tb_fail(err, "%s: %s: %s", path, what, buf);
}

// Back to the first frame. Demuxers without seeking (a pipe) end the loop here.
static int rewind_file(AvFile *f, TbErr *err) {
    AVStream *st = f->fmt->streams[f->stream];
    int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    int r = av_seek_frame(f->fmt, f->stream, start, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = avformat_seek_file(f->fmt, -1, INT64_MIN, 0, INT64_MAX, 0);
    if (r < 0) return av_fail(err, f->path, "cannot seek back to the start to loop", r);
    avcodec_flush_buffers(f->dec);
    f->draining = 0, f->pass_frames = 0;
    return 0;
}

// A damaged packet or frame is skipped, up to a point.
static int bad_packet(AvFile *f, TbErr *err) {
    if (++f->bad_packets <= MAX_BAD_PACKETS) return 0;
    return tb_fail(err, "%s: corrupt video (%d undecodable packets in a row)", f->path,
                   f->bad_packets);
}

// Decode the next frame into f->frm, looping at the end. 0 or -1 (err set).
static int next_frame(AvFile *f, TbErr *err) {
    for (;;) {
        int r = avcodec_receive_frame(f->dec, f->frm);
        if (r == 0) {
            f->pass_frames++, f->bad_packets = 0;
            return 0;
        }
        if (r == AVERROR_EOF) {
            if (f->pass_frames == 0)
                return tb_fail(err, "%s: no decodable video frames", f->path);
            if (rewind_file(f, err)) return -1;
            continue;
        }
        if (r == AVERROR_INVALIDDATA) {  // a damaged frame (threaded decoders report late)
            if (bad_packet(f, err)) return -1;
            continue;
        }
        if (r != AVERROR(EAGAIN)) return av_fail(err, f->path, "decoding", r);

        // The decoder wants input.
        r = av_read_frame(f->fmt, f->pkt);
        if (r < 0) {
            // End of file, or damage at its end once frames have played: drain
            // what the decoder holds, then loop.
            if (r != AVERROR_EOF && f->pass_frames == 0) return av_fail(err, f->path, "reading", r);
            if (f->draining) {  // nothing more will come out: start over
                if (rewind_file(f, err)) return -1;
                continue;
            }
            r = avcodec_send_packet(f->dec, NULL);
            if (r < 0 && r != AVERROR_EOF && r != AVERROR_INVALIDDATA)
                return av_fail(err, f->path, "flushing the decoder", r);
            f->draining = 1;
            continue;
        }
        if (f->pkt->stream_index != f->stream) {
            av_packet_unref(f->pkt);
            continue;
        }
        r = avcodec_send_packet(f->dec, f->pkt);
        av_packet_unref(f->pkt);
        if (r == AVERROR_INVALIDDATA) {
            if (bad_packet(f, err)) return -1;
            continue;
        }
        if (r < 0) return av_fail(err, f->path, "decoding", r);
    }
}

// Frame colours: the tagged matrix and range; untagged video is BT.601 below
// 720 lines and BT.709 above, limited range (what encoders assume).
static int convert(AvFile *f, uint8_t *rgb, TbErr *err) {
    AVFrame *fr = f->frm;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get((enum AVPixelFormat)fr->format);
    if (!desc) return tb_fail(err, "%s: decoder gave an unknown pixel format", f->path);
    int yuv = !(desc->flags & AV_PIX_FMT_FLAG_RGB) && desc->nb_components >= 3;
    int cs = fr->colorspace != AVCOL_SPC_UNSPECIFIED ? (int)fr->colorspace
             : fr->height >= 720                     ? SWS_CS_ITU709
                                                     : SWS_CS_ITU601;
    int full = fr->color_range == AVCOL_RANGE_JPEG || fr->format == AV_PIX_FMT_YUVJ420P ||
               fr->format == AV_PIX_FMT_YUVJ422P || fr->format == AV_PIX_FMT_YUVJ444P;
    int key[5] = {fr->format, fr->width, fr->height, cs, full};
    if (!f->sws || memcmp(key, f->sws_key, sizeof key) != 0) {
        f->sws = sws_getCachedContext(f->sws, fr->width, fr->height, (enum AVPixelFormat)fr->format,
                                      f->w, f->h, AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
        if (!f->sws)
            return tb_fail(err, "%s: cannot convert %s %dx%d to RGB", f->path, desc->name, fr->width,
                           fr->height);
        // Only YUV input has a matrix to set; a refusal leaves swscale's default.
        if (yuv && sws_setColorspaceDetails(f->sws, sws_getCoefficients(cs), full,
                                            sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16,
                                            1 << 16) < 0)
            tb_log("%s: keeping swscale's default colour matrix", f->path);
        memcpy(f->sws_key, key, sizeof key);
    }
    uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
    int dst_stride[4] = {f->w * 3, 0, 0, 0};
    int rows = sws_scale(f->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, dst,
                         dst_stride);
    if (rows != f->h) return tb_fail(err, "%s: sws_scale wrote %d of %d rows", f->path, rows, f->h);
    return 0;
}

static int avfile_read(Source *s, uint8_t *rgb, TbErr *err) {
    AvFile *f = s->ctx;
    if (!f->pending && next_frame(f, err)) return -1;
    f->pending = 0;
    int r = convert(f, rgb, err);
    av_frame_unref(f->frm);
    return r < 0 ? -1 : 1;
}

static void avfile_free(AvFile *f) {
    sws_freeContext(f->sws);
    av_frame_free(&f->frm);
    av_packet_free(&f->pkt);
    avcodec_free_context(&f->dec);
    avformat_close_input(&f->fmt);
    free(f);
}

// Frees the decoder state; source_close() frees the Source itself.
static void avfile_close(Source *s) {
    if (s->ctx) avfile_free(s->ctx);
    s->ctx = NULL;
}

Source *source_open_avfile(const char *path, TbErr *err) {
    AvFile *f = tb_calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int r = avformat_open_input(&f->fmt, path, NULL, NULL);
    if (r < 0) {
        av_fail(err, path, "cannot open as video", r);
        goto fail;
    }
    r = avformat_find_stream_info(f->fmt, NULL);
    if (r < 0) {
        av_fail(err, path, "cannot read stream info", r);
        goto fail;
    }
    const AVCodec *codec = NULL;
    f->stream = av_find_best_stream(f->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (f->stream == AVERROR_DECODER_NOT_FOUND) {
        AVStream *v = NULL;
        for (unsigned i = 0; i < f->fmt->nb_streams && !v; i++)
            if (f->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) v = f->fmt->streams[i];
        tb_fail(err, "%s: no decoder in this libavcodec for %s video", path,
                v ? avcodec_get_name(v->codecpar->codec_id) : "its");
        goto fail;
    }
    if (f->stream < 0) {
        tb_fail(err, "%s: no video stream", path);
        goto fail;
    }
    AVStream *st = f->fmt->streams[f->stream];
    f->dec = avcodec_alloc_context3(codec);
    if (!f->dec) {
        tb_fail(err, "%s: out of memory for the decoder", path);
        goto fail;
    }
    r = avcodec_parameters_to_context(f->dec, st->codecpar);
    if (r < 0) {
        av_fail(err, path, "decoder parameters", r);
        goto fail;
    }
    f->dec->thread_count = 2;  // the trainer wants the other cores
    r = avcodec_open2(f->dec, codec, NULL);
    if (r < 0) {
        av_fail(err, path, "cannot open the decoder", r);
        goto fail;
    }
    f->w = st->codecpar->width, f->h = st->codecpar->height;
    if (f->w <= 0 || f->h <= 0 || f->w > 16384 || f->h > 16384) {
        tb_fail(err, "%s: bad video size %dx%d", path, f->w, f->h);
        goto fail;
    }
    f->pkt = av_packet_alloc();
    f->frm = av_frame_alloc();
    if (!f->pkt || !f->frm) {
        tb_fail(err, "%s: out of memory for frames", path);
        goto fail;
    }
    // Decode the first frame now, so a file that cannot play fails here, where
    // the caller can still fall back, and not later on the capture thread.
    if (next_frame(f, err)) goto fail;
    f->pending = 1;

    Source *s = tb_calloc(1, sizeof *s);
    snprintf(s->spec, sizeof s->spec, "file:%s", path);
    s->width = f->w, s->height = f->h;
    AVRational fr = av_guess_frame_rate(f->fmt, st, NULL);
    double fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0;
    s->fps = fps >= 1 && fps <= 240 ? fps : 30;
    s->ctx = f, s->read = avfile_read, s->close = avfile_close;
    return s;

fail:
    avfile_free(f);
    return NULL;
}
