// replay_read.c: input.mkv read back frame by frame (see replay_read.h).
#include "replay_read.h"

#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

struct ReplayIn {
    char path[1024];
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frm;
    struct SwsContext *sws;  // formats other than the recorder's BGR0 (none expected)
    int stream, w, h, flushed;
};

static int av_fail(TbErr *err, const char *path, const char *what, int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(code, buf, sizeof buf);
    return tb_fail(err, "%s: %s: %s", path, what, buf);
}

// The demuxer and the video stream; with dec = 1 the decoder too.
static int open_file(ReplayIn *in, int dec, TbErr *err) {
    int r = avformat_open_input(&in->fmt, in->path, NULL, NULL);
    if (r < 0) return av_fail(err, in->path, "cannot open it", r);
    if ((r = avformat_find_stream_info(in->fmt, NULL)) < 0) return av_fail(err, in->path, "cannot read it", r);
    const AVCodec *c = NULL;
    in->stream = av_find_best_stream(in->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &c, 0);
    if (in->stream < 0 || !c) return tb_fail(err, "%s: no video stream it can decode", in->path);
    const AVCodecParameters *cp = in->fmt->streams[in->stream]->codecpar;
    in->w = cp->width, in->h = cp->height;
    if (in->w <= 0 || in->h <= 0) return tb_fail(err, "%s: no frame size", in->path);
    if (!dec) return 0;
    in->dec = avcodec_alloc_context3(c);
    if (!in->dec || avcodec_parameters_to_context(in->dec, cp) < 0) return tb_fail(err, "%s: out of memory", in->path);
    if ((r = avcodec_open2(in->dec, c, NULL)) < 0) return av_fail(err, in->path, "cannot open the decoder", r);
    return 0;
}

static void close_file(ReplayIn *in) {
    avcodec_free_context(&in->dec);
    avformat_close_input(&in->fmt);
}

ReplayIn *replay_in_open(const char *path, long *frames, TbErr *err) {
    ReplayIn *in = tb_calloc(1, sizeof *in);
    snprintf(in->path, sizeof in->path, "%s", path);
    in->pkt = av_packet_alloc();
    in->frm = av_frame_alloc();
    CHECK(in->pkt && in->frm, "out of memory");
    // Count the packets (one per frame: FFV1 is intra only), then start again to decode.
    if (open_file(in, 0, err)) goto fail;
    *frames = 0;
    while (av_read_frame(in->fmt, in->pkt) >= 0) {
        *frames += in->pkt->stream_index == in->stream;
        av_packet_unref(in->pkt);
    }
    close_file(in);
    if (open_file(in, 1, err)) goto fail;
    return in;
fail:
    replay_in_close(in);
    return NULL;
}

void replay_in_size(const ReplayIn *in, int *w, int *h) { *w = in->w, *h = in->h; }

// The decoded frame into RGB8: BGR0 (what the recorder writes) byte by byte.
static int to_rgb(ReplayIn *in, uint8_t *rgb, TbErr *err) {
    const AVFrame *f = in->frm;
    if (f->width != in->w || f->height != in->h) return tb_fail(err, "%s: a frame changed size", in->path);
    if (f->format == AV_PIX_FMT_BGR0 || f->format == AV_PIX_FMT_BGRA) {
        for (int y = 0; y < in->h; y++) {
            const uint8_t *s = f->data[0] + (size_t)y * f->linesize[0];
            uint8_t *d = rgb + (size_t)y * in->w * 3;
            for (int x = 0; x < in->w; x++, s += 4, d += 3) d[0] = s[2], d[1] = s[1], d[2] = s[0];
        }
        return 0;
    }
    in->sws = sws_getCachedContext(in->sws, in->w, in->h, f->format, in->w, in->h, AV_PIX_FMT_RGB24, SWS_POINT,
                                   NULL, NULL, NULL);
    if (!in->sws) return tb_fail(err, "%s: cannot convert its frames to RGB", in->path);
    uint8_t *dst[4] = {rgb};
    int ls[4] = {in->w * 3};
    sws_scale(in->sws, (const uint8_t *const *)f->data, f->linesize, 0, in->h, dst, ls);
    return 0;
}

int replay_in_read(ReplayIn *in, uint8_t *rgb, TbErr *err) {
    for (;;) {
        int r = avcodec_receive_frame(in->dec, in->frm);
        if (r == 0) {
            r = to_rgb(in, rgb, err);
            av_frame_unref(in->frm);
            return r ? -1 : 1;
        }
        if (r == AVERROR_EOF) return 0;
        if (r != AVERROR(EAGAIN)) return av_fail(err, in->path, "a frame does not decode", r);
        if (in->flushed) return 0;
        r = av_read_frame(in->fmt, in->pkt);
        if (r == AVERROR_EOF) {
            in->flushed = 1;
            avcodec_send_packet(in->dec, NULL);  // what the decoder still holds
            continue;
        }
        if (r < 0) return av_fail(err, in->path, "cannot read on", r);
        if (in->pkt->stream_index == in->stream && (r = avcodec_send_packet(in->dec, in->pkt)) < 0) {
            av_packet_unref(in->pkt);
            return av_fail(err, in->path, "a frame does not decode", r);
        }
        av_packet_unref(in->pkt);
    }
}

void replay_in_close(ReplayIn *in) {
    if (!in) return;
    close_file(in);
    sws_freeContext(in->sws);
    av_packet_free(&in->pkt);
    av_frame_free(&in->frm);
    free(in);
}
