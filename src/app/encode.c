// encode.c: one video stream (and the room's audio) into one Matroska file (see encode.h).
#include "encode.h"

#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

// A killed process loses the cluster being built (the muxer holds it in
// memory): one second at most. Keyframes come as often, so every cluster
// decodes on its own.
#define CLUSTER_MS "1000"
#define CLUSTER_BYTES "2097152"
// With two streams the muxer holds a packet until the other stream passes its
// time; a stream that falls silent holds the other at most this long (µs).
#define INTERLEAVE_US 500000
#define AUDIO_FRAME 1024  // samples per FLAC frame (21 ms at 48 kHz)

struct MkvFile {
    char path[1024];
    MkvCodec codec;
    AVCodecContext *enc;
    AVFormatContext *fmt;
    AVRational enc_tb;      // the encoder's time base (the file half rescales from it)
    AVFrame *frame;         // the converted picture, kept for mkv_repeat
    struct SwsContext *sws; // RGB24 -> the encoder's pixel format
    int have_frame, want_key;
    int header_written;
    // The audio stream (stream 1), when asked for.
    AVCodecContext *aenc;
    AVFrame *aframe;  // being filled: afill of its nb_samples
    int afill;
    int64_t apts;     // samples handed to the encoder
};

static int av_fail(TbErr *err, const char *path, const char *what, int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(code, buf, sizeof buf);
    return tb_fail(err, "%s: %s: %s", path, what, buf);
}

// libx264 for realtime (no B-frames, no lookahead: one packet per frame at
// once), or FFV1 with every frame a keyframe (lossless, each decodes alone).
static int open_encoder(MkvFile *m, const MkvOpts *o, int global_header, TbErr *err) {
    const char *name = o->codec == MKV_FFV1 ? "ffv1" : "libx264";
    const AVCodec *c = avcodec_find_encoder_by_name(name);
    if (!c) return tb_fail(err, "%s: this libavcodec has no %s encoder", m->path, name);
    AVCodecContext *e = m->enc = avcodec_alloc_context3(c);
    if (!e) return tb_fail(err, "%s: out of memory for the encoder", m->path);
    e->width = o->w, e->height = o->h;
    e->time_base = o->time_base;
    e->framerate = o->rate;
    e->thread_count = o->threads;
    if (global_header) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (o->codec == MKV_FFV1) {
        e->pix_fmt = AV_PIX_FMT_BGR0;  // this FFV1 takes 8-bit RGB packed only
        e->gop_size = 1;
        e->level = 3;  // slices: threads, and CRCs per slice
    } else {
        e->pix_fmt = AV_PIX_FMT_YUV420P;
        e->gop_size = o->gop > 0 ? o->gop : 30;
        e->max_b_frames = 0;
        e->color_range = AVCOL_RANGE_MPEG;
        e->colorspace = AVCOL_SPC_BT709;
        e->color_primaries = AVCOL_PRI_BT709;
        e->color_trc = AVCOL_TRC_BT709;
        av_opt_set(e->priv_data, "preset", o->preset && o->preset[0] ? o->preset : "veryfast", 0);
        av_opt_set(e->priv_data, "tune", "zerolatency", 0);
        av_opt_set_double(e->priv_data, "crf", o->crf, 0);
        av_opt_set_int(e->priv_data, "forced-idr", 1, 0);  // a forced keyframe is a clean restart
    }
    int r = avcodec_open2(e, c, NULL);
    if (r < 0) return av_fail(err, m->path, "cannot open the encoder", r);
    m->enc_tb = e->time_base;
    m->frame = av_frame_alloc();
    if (!m->frame) return tb_fail(err, "%s: out of memory for a frame", m->path);
    m->frame->format = e->pix_fmt, m->frame->width = o->w, m->frame->height = o->h;
    m->frame->color_range = e->color_range, m->frame->colorspace = e->colorspace;
    if ((r = av_frame_get_buffer(m->frame, 0)) < 0) return av_fail(err, m->path, "frame buffer", r);
    m->sws = sws_getContext(o->w, o->h, AV_PIX_FMT_RGB24, o->w, o->h, e->pix_fmt,
                            SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!m->sws) return tb_fail(err, "%s: cannot convert RGB to %s", m->path, av_get_pix_fmt_name(e->pix_fmt));
    if (o->codec == MKV_H264)  // full-range RGB to limited-range BT.709, as tagged
        sws_setColorspaceDetails(m->sws, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                 sws_getCoefficients(SWS_CS_ITU709), 0, 0, 1 << 16, 1 << 16);
    return 0;
}

// FLAC at the device's rate, 16-bit interleaved, AUDIO_FRAME samples a frame.
static int open_audio(MkvFile *m, const MkvAudio *o, int global_header, TbErr *err) {
    const AVCodec *c = avcodec_find_encoder(AV_CODEC_ID_FLAC);
    if (!c) return tb_fail(err, "%s: this libavcodec has no FLAC encoder", m->path);
    AVCodecContext *e = m->aenc = avcodec_alloc_context3(c);
    if (!e) return tb_fail(err, "%s: out of memory for the audio encoder", m->path);
    e->sample_fmt = AV_SAMPLE_FMT_S16;
    e->sample_rate = o->rate;
    e->time_base = (AVRational){1, o->rate};
    e->frame_size = AUDIO_FRAME;
    av_channel_layout_default(&e->ch_layout, o->channels);
    if (global_header) e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int r = avcodec_open2(e, c, NULL);
    if (r < 0) return av_fail(err, m->path, "cannot open the audio encoder", r);
    m->aframe = av_frame_alloc();
    if (!m->aframe) return tb_fail(err, "%s: out of memory for a frame", m->path);
    m->aframe->format = e->sample_fmt, m->aframe->nb_samples = e->frame_size, m->aframe->sample_rate = e->sample_rate;
    if ((r = av_channel_layout_copy(&m->aframe->ch_layout, &e->ch_layout)) < 0 ||
        (r = av_frame_get_buffer(m->aframe, 0)) < 0)
        return av_fail(err, m->path, "audio frame buffer", r);
    return 0;
}

// The file, its streams, and the header, on disk before the first frame.
static int open_file(MkvFile *m, const MkvOpts *o, TbErr *err) {
    AVStream *st = avformat_new_stream(m->fmt, NULL);
    if (!st) return tb_fail(err, "%s: out of memory for a stream", m->path);
    st->time_base = m->enc_tb;
    st->avg_frame_rate = o->rate;
    int r = avcodec_parameters_from_context(st->codecpar, m->enc);
    if (r < 0) return av_fail(err, m->path, "stream parameters", r);
    if (m->aenc) {
        AVStream *as = avformat_new_stream(m->fmt, NULL);
        if (!as) return tb_fail(err, "%s: out of memory for a stream", m->path);
        as->time_base = m->aenc->time_base;
        if ((r = avcodec_parameters_from_context(as->codecpar, m->aenc)) < 0)
            return av_fail(err, m->path, "audio stream parameters", r);
        m->fmt->max_interleave_delta = INTERLEAVE_US;
    }
    if ((r = avio_open(&m->fmt->pb, m->path, AVIO_FLAG_WRITE)) < 0) return av_fail(err, m->path, "cannot create", r);
    AVDictionary *opt = NULL;
    av_dict_set(&opt, "cluster_time_limit", CLUSTER_MS, 0);
    av_dict_set(&opt, "cluster_size_limit", CLUSTER_BYTES, 0);
    r = avformat_write_header(m->fmt, &opt);
    av_dict_free(&opt);
    if (r < 0) return av_fail(err, m->path, "cannot write the header", r);
    m->header_written = 1;
    avio_flush(m->fmt->pb);
    if (m->fmt->pb->error < 0) return av_fail(err, m->path, "cannot write the header", m->fmt->pb->error);
    return 0;
}

static void mkv_free(MkvFile *m) {
    if (m->fmt) {
        if (m->fmt->pb) avio_closep(&m->fmt->pb);
        avformat_free_context(m->fmt);
    }
    avcodec_free_context(&m->enc);
    avcodec_free_context(&m->aenc);
    av_frame_free(&m->frame);
    av_frame_free(&m->aframe);
    sws_freeContext(m->sws);
    free(m);
}

MkvFile *mkv_open(const char *path, const MkvOpts *o, TbErr *err) { return mkv_open_av(path, o, NULL, err); }

MkvFile *mkv_open_av(const char *path, const MkvOpts *o, const MkvAudio *a, TbErr *err) {
    MkvFile *m = tb_calloc(1, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    m->codec = o->codec;
    int r = avformat_alloc_output_context2(&m->fmt, NULL, "matroska", path);
    if (r < 0 || !m->fmt) {
        av_fail(err, path, "no Matroska muxer", r < 0 ? r : AVERROR(ENOMEM));
        mkv_free(m);
        return NULL;
    }
    int global = (m->fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0;
    if (open_encoder(m, o, global, err) || (a && open_audio(m, a, global, err)) ||
        open_file(m, o, err)) {
        mkv_free(m);
        return NULL;
    }
    return m;
}

// Send a frame (NULL: the end) to encoder e (stream si) and hand every packet out.
static int send_to(MkvFile *m, AVCodecContext *e, int si, const AVFrame *f, MkvEmit emit, void *user, TbErr *err) {
    int r = avcodec_send_frame(e, f);
    if (r < 0 && !(f == NULL && r == AVERROR_EOF)) return av_fail(err, m->path, "encoding", r);
    for (;;) {
        AVPacket *p = av_packet_alloc();
        if (!p) return tb_fail(err, "%s: out of memory for a packet", m->path);
        r = avcodec_receive_packet(e, p);
        if (r < 0) {
            av_packet_free(&p);
            if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return 0;
            return av_fail(err, m->path, "encoding", r);
        }
        p->stream_index = si;
        emit(user, p);
    }
}

static int send(MkvFile *m, const AVFrame *f, MkvEmit emit, void *user, TbErr *err) {
    return send_to(m, m->enc, 0, f, emit, user, err);
}

static int send_frame(MkvFile *m, int64_t pts, MkvEmit emit, void *user, TbErr *err) {
    m->frame->pts = pts;
    m->frame->pict_type = m->want_key ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    m->want_key = 0;
    return send(m, m->frame, emit, user, err);
}

int mkv_encode(MkvFile *m, const uint8_t *rgb, int64_t pts, MkvEmit emit, void *user, TbErr *err) {
    int r = av_frame_make_writable(m->frame);  // the encoder may still hold the last one
    if (r < 0) return av_fail(err, m->path, "frame buffer", r);
    const uint8_t *src[4] = {rgb, NULL, NULL, NULL};
    int stride[4] = {m->enc->width * 3, 0, 0, 0};
    sws_scale(m->sws, src, stride, 0, m->enc->height, m->frame->data, m->frame->linesize);
    m->have_frame = 1;
    return send_frame(m, pts, emit, user, err);
}

int mkv_repeat(MkvFile *m, int64_t pts, MkvEmit emit, void *user, TbErr *err) {
    return m->have_frame ? send_frame(m, pts, emit, user, err) : 0;
}

void mkv_want_key(MkvFile *m) { m->want_key = 1; }

int mkv_drain(MkvFile *m, MkvEmit emit, void *user, TbErr *err) { return send(m, NULL, emit, user, err); }

// The audio frame being filled goes to the encoder (a short last one at the end).
static int send_audio(MkvFile *m, MkvEmit emit, void *user, TbErr *err) {
    m->aframe->nb_samples = m->afill;
    m->aframe->pts = m->apts;
    m->apts += m->afill;
    m->afill = 0;
    return send_to(m, m->aenc, 1, m->aframe, emit, user, err);
}

int mkv_audio(MkvFile *m, const int16_t *frames, int n, MkvEmit emit, void *user, TbErr *err) {
    int ch = m->aenc->ch_layout.nb_channels;
    while (n > 0) {
        if (m->afill == 0) {
            int r = av_frame_make_writable(m->aframe);
            if (r < 0) return av_fail(err, m->path, "audio frame buffer", r);
        }
        int k = m->aenc->frame_size - m->afill < n ? m->aenc->frame_size - m->afill : n;
        memcpy((int16_t *)m->aframe->data[0] + (size_t)m->afill * ch, frames, (size_t)k * ch * sizeof(int16_t));
        m->afill += k, frames += (size_t)k * ch, n -= k;
        if (m->afill == m->aenc->frame_size && send_audio(m, emit, user, err)) return -1;
    }
    return 0;
}

int mkv_audio_drain(MkvFile *m, MkvEmit emit, void *user, TbErr *err) {
    if (m->afill > 0 && send_audio(m, emit, user, err)) return -1;
    return send_to(m, m->aenc, 1, NULL, emit, user, err);
}

int64_t mkv_audio_frames(const MkvFile *m) { return m->apts + m->afill; }

int mkv_write(MkvFile *m, AVPacket *p, TbErr *err) {
    int si = m->aenc && p->stream_index == 1;
    AVStream *st = m->fmt->streams[si];
    p->stream_index = si;
    av_packet_rescale_ts(p, si ? m->aenc->time_base : m->enc_tb, st->time_base);
    int r = av_interleaved_write_frame(m->fmt, p);  // takes the packet's data
    av_packet_free(&p);
    if (r >= 0) {
        avio_flush(m->fmt->pb);  // to the kernel now: a killed process loses nothing written
        r = m->fmt->pb->error;
    }
    return r < 0 ? av_fail(err, m->path, "writing", r) : 0;
}

int mkv_close(MkvFile *m, TbErr *err) {
    if (!m) return 0;
    int r = 0;
    if (m->header_written && m->fmt->pb->error >= 0) {
        r = av_write_trailer(m->fmt);
        if (r >= 0) avio_flush(m->fmt->pb), r = m->fmt->pb->error;
    }
    int c = avio_closep(&m->fmt->pb);
    if (r >= 0 && c < 0) r = c;
    if (r < 0) av_fail(err, m->path, "closing", r);
    mkv_free(m);
    return r < 0 ? -1 : 0;
}
