// record_meta.c: take.json and the summary line (see record_meta.h).
#define _DEFAULT_SOURCE
#include "record_meta.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// s as a JSON string's contents (quotes, backslashes, control characters escaped).
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

// The local time now, ISO-8601 with its offset: 2026-11-30T21:04:05+0100.
static void iso_now(char *buf, size_t n) {
    time_t now = time(NULL);
    struct tm tm;
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S%z", localtime_r(&now, &tm));
}

// The architecture and where the run stood: frame, step, clock, live values.
static void meta_run(FILE *f, const Run *r) {
    const ModelSpec *m = &r->t.model.spec;
    fprintf(f, "  \"architecture\": {\"width\": %d, \"height\": %d, \"channels\": [", m->width, m->height);
    for (int i = 0; i < m->n_enc; i++) fprintf(f, "%s%d", i ? ", " : "", m->channels[i]);
    fprintf(f, "], \"kernel\": %d, \"stride\": %d, \"pad\": %d, \"slope\": %.7g, \"parameters\": %zu},\n", m->kernel,
            m->stride, m->pad, (double)m->slope, r->t.model.n_params);
    // What a replay needs beside the weights: the seed, the trainer's and the
    // modulator's random states, and the live values exactly (tb_fmt_float).
    fprintf(f, "  \"start\": {\"frame\": %ld, \"step\": %ld, \"t\": %.4f, \"seed\": %llu, \"rng\": \"%016llx\", "
               "\"mod_rng\": \"%016llx\", \"live\": {",
            r->frames, r->t.step, run_now(r), (unsigned long long)r->t.seed, (unsigned long long)r->t.rng.s,
            (unsigned long long)r->mod.lfo.rng.s);
    char v[24];
    for (int id = 0; id < PARAM_COUNT; id++)
        fprintf(f, "%s\"%s\": %s", id ? ", " : "", param_live(id)->key, tb_fmt_float(v, r->p.v[id]));
    fprintf(f, "}},\n");
}

char *take_meta(const Run *r, const TakeSpec *sp, const char *layout_name, const char *codec_name,
                const char *version) {
    char *buf = NULL, when[40];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f, "open_memstream");
    iso_now(when, sizeof when);
    fprintf(f, "  \"format\": \"tabula-take\",\n  \"version\": ");
    json_str(f, version);
    fprintf(f, ",\n  \"started\": \"%s\",\n  \"backend\": ", when);
    json_str(f, r->t.be->name);
    fprintf(f, ",\n");
    meta_run(f, r);
    fprintf(f, "  \"video\": {\"file\": \"video.mkv\", \"codec\": \"%s\", \"width\": %d, \"height\": %d, "
               "\"fps\": \"%d/%d\", \"layout\": \"%s\"",
            codec_name, sp->ow, sp->oh, sp->fps.num, sp->fps.den, layout_name);
    if (sp->codec == MKV_H264) fprintf(f, ", \"crf\": %d, \"preset\": \"%s\"", sp->crf, sp->preset);
    fprintf(f, "},\n  \"input\": {\"file\": \"input.mkv\", \"codec\": \"ffv1\", \"width\": %d, \"height\": %d, "
               "\"time_base\": \"%d/%d\"},\n",
            sp->tw, sp->th, sp->input_tb.num, sp->input_tb.den);
    fprintf(f, "  \"files\": {\"events\": \"events.jsonl\", \"metrics\": \"metrics.jsonl\", "
               "\"config\": \"config.ini\", \"weights\": \"weights.safetensors\"}");
    fclose(f);
    return buf;
}

// "audio": the stream's device, format and counts, or null with the reason
// there is none.
static void take_json_audio(FILE *f, const TakeCounts *c) {
    if (!c->audio_rate) {
        fprintf(f, "  \"audio\": null,\n  \"no_audio\": ");
        json_str(f, c->audio_device[0] ? c->audio_device : "not asked for");
        fprintf(f, ",\n");
        return;
    }
    fprintf(f, "  \"audio\": {\"file\": \"video.mkv\", \"stream\": 1, \"codec\": \"flac\", \"device\": ");
    json_str(f, c->audio_device);
    fprintf(f,
            ", \"rate\": %d, \"channels\": %d, \"samples\": %lld, \"duration_s\": %.3f, \"captured\": %lld, "
            "\"overruns\": %lld, "
            "\"inserted\": %lld, \"dropped\": %lld, \"packets_dropped\": %ld, \"max_error_ms\": %.1f},\n",
            c->audio_rate, c->audio_ch, (long long)c->audio_samples, (double)c->audio_samples / c->audio_rate,
            (long long)c->audio_captured, (long long)c->audio_overruns, (long long)c->audio_inserted, (long long)c->audio_dropped,
            c->audio_packets_dropped, c->audio_max_err * 1e3);
}

int take_json_write(const char *dir, const char *meta, const TakeCounts *c, const AVRational fps, int done,
                    const char *reason, TbErr *err) {
    char path[CFG_STR + 128], tmp[CFG_STR + 160];
    snprintf(path, sizeof path, "%s/take.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return tb_fail(err, "%s: %s", tmp, strerror(errno));
    fprintf(f, "{\n%s,\n  \"state\": \"%s\",\n  \"end_reason\": ", meta, done ? "done" : "recording");
    if (reason && reason[0]) json_str(f, reason);
    else fputs("null", f);
    fprintf(f,
            ",\n  \"frames\": {\"trained\": %ld, \"written\": %ld, \"repeated\": %ld, \"dropped_encoder\": %ld, "
            "\"dropped_disk\": %ld, \"input_written\": %ld, \"input_dropped\": %ld},\n",
            c->frames, c->written, c->repeated, c->dropped_encoder, c->dropped_disk, c->input_written,
            c->input_dropped);
    fprintf(f, "  \"events\": {\"written\": %ld, \"dropped\": %ld},\n", c->events, c->events_dropped);
    take_json_audio(f, c);
    fprintf(f, "  \"bytes\": %lld,\n  \"duration_s\": %.3f\n}\n", (long long)c->bytes,
            fps.num > 0 ? (double)c->written * fps.den / fps.num : 0.0);
    int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;  // on disk before it replaces the last
    if (fclose(f) != 0 || bad) {
        int e = errno;
        remove(tmp);
        return tb_fail(err, "%s: %s", tmp, strerror(e ? e : EIO));
    }
    if (rename(tmp, path) != 0) return tb_fail(err, "%s: %s", path, strerror(errno));
    return 0;
}

int64_t take_dir_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int64_t sum = 0;
    struct dirent *e;
    char path[CFG_STR + 600];
    struct stat st;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode))
            sum += st.st_size;
    closedir(d);
    return sum;
}

void take_summary(char *buf, size_t n, const char *dir, const TakeCounts *c, AVRational fps, const char *reason) {
    double secs = fps.num > 0 ? (double)c->written * fps.den / fps.num : 0;
    char audio[160] = "no audio";
    if (c->audio_rate)
        snprintf(audio, sizeof audio, "audio %.1f s (%d Hz, %d ch, %lld overruns)", (double)c->audio_samples / c->audio_rate,
                 c->audio_rate, c->audio_ch, (long long)c->audio_overruns);
    snprintf(buf, n,
             "record: take %s: %.1f s, %ld frames written (%ld repeated), dropped %ld (encoder overloaded) + "
             "%ld (disk too slow), %.1f MB on disk; ended: %s; %s",
             dir, secs, c->written, c->repeated, c->dropped_encoder, c->dropped_disk, (double)c->bytes / 1e6,
             reason && reason[0] ? reason : "stopped", audio);
}
