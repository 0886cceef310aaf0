// replay_mux.c: a take's audio copied into a replay's video (see replay_mux.h).
#include "replay_mux.h"

#include <libavformat/avformat.h>

static int av_fail(TbErr *err, const char *path, const char *what, int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(code, buf, sizeof buf);
    return tb_fail(err, "%s: %s: %s", path, what, buf);
}

// The input's first stream of that kind (-1 if none); the file stays open in *fmt.
static int open_stream(AVFormatContext **fmt, const char *path, enum AVMediaType type, TbErr *err) {
    int r = avformat_open_input(fmt, path, NULL, NULL);
    if (r < 0) return av_fail(err, path, "cannot open it", r), -1;
    if ((r = avformat_find_stream_info(*fmt, NULL)) < 0) return av_fail(err, path, "cannot read it", r), -1;
    r = av_find_best_stream(*fmt, type, -1, -1, NULL, 0);
    if (r < 0) tb_fail(err, "%s: no %s stream", path, type == AVMEDIA_TYPE_AUDIO ? "audio" : "video");
    return r < 0 ? -1 : r;
}

int replay_has_audio(const char *path) {
    AVFormatContext *f = NULL;
    TbErr err;
    int s = open_stream(&f, path, AVMEDIA_TYPE_AUDIO, &err);
    avformat_close_input(&f);
    return s >= 0;
}

typedef struct {
    AVFormatContext *in;
    int stream;   // in the input
    AVStream *out;
    AVPacket *pkt;
    int have, done;  // pkt holds the next packet; the input is at its end
} Feed;

// The feed's next packet of its stream into pkt (have = 0 at the end).
static int feed_next(Feed *f, const char *path, TbErr *err) {
    for (;;) {
        int r = av_read_frame(f->in, f->pkt);
        if (r == AVERROR_EOF) return f->have = 0, f->done = 1, 0;
        if (r < 0) return av_fail(err, path, "cannot read on", r);
        if (f->pkt->stream_index == f->stream) return f->have = 1, 0;
        av_packet_unref(f->pkt);
    }
}

// Write the packet of the feed that comes first in time, until both end.
static int interleave(AVFormatContext *o, Feed fd[2], const char *paths[2], const char *out, TbErr *err) {
    for (int i = 0; i < 2; i++)
        if (feed_next(&fd[i], paths[i], err)) return -1;
    while (fd[0].have || fd[1].have) {
        int i = fd[0].have ? 0 : 1;
        if (fd[0].have && fd[1].have) {
            AVRational tb0 = fd[0].in->streams[fd[0].stream]->time_base, tb1 = fd[1].in->streams[fd[1].stream]->time_base;
            int64_t t0 = fd[0].pkt->dts != AV_NOPTS_VALUE ? fd[0].pkt->dts : fd[0].pkt->pts;
            int64_t t1 = fd[1].pkt->dts != AV_NOPTS_VALUE ? fd[1].pkt->dts : fd[1].pkt->pts;
            i = av_compare_ts(t0, tb0, t1, tb1) <= 0 ? 0 : 1;
        }
        Feed *f = &fd[i];
        av_packet_rescale_ts(f->pkt, f->in->streams[f->stream]->time_base, f->out->time_base);
        f->pkt->stream_index = f->out->index;
        f->pkt->pos = -1;
        int r = av_interleaved_write_frame(o, f->pkt);  // takes the packet's reference
        if (r < 0) return av_fail(err, out, "cannot write", r);
        if (feed_next(f, paths[i], err)) return -1;
    }
    return 0;
}

int replay_mux(const char *video, const char *audio_from, const char *out, TbErr *err) {
    Feed fd[2] = {{0}};
    const char *paths[2] = {video, audio_from};
    AVFormatContext *o = NULL;
    int rc = -1, r;
    if ((fd[0].stream = open_stream(&fd[0].in, video, AVMEDIA_TYPE_VIDEO, err)) < 0 ||
        (fd[1].stream = open_stream(&fd[1].in, audio_from, AVMEDIA_TYPE_AUDIO, err)) < 0)
        goto done;
    if ((r = avformat_alloc_output_context2(&o, NULL, "matroska", out)) < 0 || !o) {
        av_fail(err, out, "no Matroska muxer", r < 0 ? r : AVERROR(ENOMEM));
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        AVStream *in = fd[i].in->streams[fd[i].stream];
        fd[i].pkt = av_packet_alloc();
        if (!fd[i].pkt || !(fd[i].out = avformat_new_stream(o, NULL)) ||
            avcodec_parameters_copy(fd[i].out->codecpar, in->codecpar) < 0) {
            tb_fail(err, "%s: out of memory", out);
            goto done;
        }
        fd[i].out->codecpar->codec_tag = 0;
        fd[i].out->time_base = in->time_base;
        fd[i].out->avg_frame_rate = in->avg_frame_rate;
    }
    if ((r = avio_open(&o->pb, out, AVIO_FLAG_WRITE)) < 0) {
        av_fail(err, out, "cannot create", r);
        goto done;
    }
    if ((r = avformat_write_header(o, NULL)) < 0) {
        av_fail(err, out, "cannot write the header", r);
        goto done;
    }
    if (interleave(o, fd, paths, out, err) == 0) {
        if ((r = av_write_trailer(o)) < 0) av_fail(err, out, "cannot finish the file", r);
        else rc = 0;
    }
done:
    for (int i = 0; i < 2; i++) {
        av_packet_free(&fd[i].pkt);
        avformat_close_input(&fd[i].in);
    }
    if (o) {
        if (o->pb && avio_closep(&o->pb) < 0 && rc == 0) rc = tb_fail(err, "%s: cannot close it", out);
        avformat_free_context(o);
    }
    return rc;
}
