// test_checkpoint.c: save -> load -> continue gives the same losses bit for bit
// (CPU); a checkpoint is self-describing; wrong shapes, truncation and garbage
// are clear errors naming the file.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "source.h"
#include "settings_trainer.h"
#include "test.h"

static void small_settings(Settings *s) {
    settings_default(s);
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->channels, sizeof s->channels, "8,16,16");
    s->width = 48;
    s->height = 32;
    s->lr = 0.05f;
    s->momentum = 0.9f;
    s->clip = 0.5f;
    s->weight_decay = 1e-4f;
}

// Run `n` frames of the clip from frame `first` on t; losses into out.
static void run(Trainer *t, Source *src, int n, float *out) {
    uint8_t *rgb = tb_malloc((size_t)src->width * src->height * 3);
    TbErr err;
    for (int i = 0; i < n; i++) {
        CHECK(src->read(src, rgb, &err) == 1, "%s", err.msg);
        trainer_push_frame(t, rgb, src->width, src->height);
        trainer_train(t, 2, 0);
        StepStats st[TB_STATS_RING];
        int k = trainer_read_stats(t, st);
        out[i] = st[k - 1].loss;
    }
    free(rgb);
}

int main(void) {
    TbErr err = {{0}};
    char path[128], path2[128];
    snprintf(path, sizeof path, "/tmp/tabula-ckpt-%d.safetensors", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/tabula-ckpt-%d-b.safetensors", (int)getpid());
    const char *clip = test_data("asl_signer_a_320x240.y4m");

    for (int opt = 0; opt < 2; opt++) {
        Settings s;
        small_settings(&s);
        if (opt) snprintf(s.optimizer, sizeof s.optimizer, "adam"), s.lr = 2e-3f;
        // A: 10 frames straight.
        Trainer a;
        EXPECT(trainer_init_settings(&a, &s, NULL, &err) == 0, "%s", err.msg);
        Source *src = source_open_y4m(clip, &err);
        if (!src) TEST_SKIP("%s", err.msg);
        float la[10], lb[10];
        run(&a, src, 10, la);
        source_close(src);
        // B: 5 frames, save, fresh trainer with another seed, load, 5 more.
        Trainer b;
        trainer_init_settings(&b, &s, NULL, &err);
        src = source_open_y4m(clip, &err);
        run(&b, src, 5, lb);
        EXPECT(checkpoint_save(path, &b, 1, &err) == 0, "%s", err.msg);
        trainer_free(&b);
        Settings s2 = s;
        s2.seed = 99;
        ModelSpec spec;
        EXPECT(checkpoint_peek_spec(path, &spec, &err) == 0 && spec.n_enc == 3 && spec.channels[2] == 16,
               "peek: %s", err.msg);
        Trainer c;
        trainer_init_settings(&c, &s2, &spec, &err);
        EXPECT(checkpoint_load(path, &c, &err) == 0, "%s", err.msg);
        EXPECT(c.step == 10, "step count restored: %ld", c.step);
        run(&c, src, 5, lb + 5);
        source_close(src);
        int same = memcmp(la, lb, sizeof la) == 0;
        EXPECT(same, "%s: save/load/continue not bit-exact (frame 9: %.9g vs %.9g)", opt ? "adam" : "sgd",
               (double)la[9], (double)lb[9]);
        EXPECT(la[9] < la[0], "it learned: %.5f -> %.5f", (double)la[0], (double)la[9]);

        // The file is self-describing and in PyTorch layouts.
        StFile f;
        EXPECT(st_read(&f, path, &err) == 0, "%s", err.msg);
        const StTensor *w = st_find(&f, "dec.0.weight");  // ConvT (C_in, OC, K, K)
        EXPECT(w && w->ndim == 4 && w->shape[0] == 16 && w->shape[1] == 16 && w->shape[2] == 4, "dec.0.weight shape");
        w = st_find(&f, "enc.0.weight");  // Conv2d (OC, C, K, K)
        EXPECT(w && w->shape[0] == 8 && w->shape[1] == 3, "enc.0.weight shape");
        EXPECT(st_find(&f, "opt.enc.0.weight") != NULL, "momentum saved");
        EXPECT((st_find(&f, "opt_v.enc.0.weight") != NULL) == opt, "adam v saved iff adam");
        EXPECT(st_meta(&f, "arch") && strcmp(st_meta(&f, "arch"), "tabula-ae-v1:8,16,16:k4s2p1:leaky0.2") == 0,
               "arch metadata");
        EXPECT(st_meta(&f, "step") && strcmp(st_meta(&f, "step"), "10") == 0, "step metadata");
        st_free(&f);
        trainer_free(&a);

        // Wrong shapes: a model with other channels refuses the file, naming it.
        Settings s3 = s;
        snprintf(s3.channels, sizeof s3.channels, "8,16,32");
        Trainer d;
        trainer_init_settings(&d, &s3, NULL, &err);
        EXPECT(checkpoint_load(path, &d, &err) == -1 && strstr(err.msg, path) && strstr(err.msg, "shape"),
               "wrong shape: %s", err.msg);
        // Truncated file: every prefix fails cleanly.
        FILE *in = fopen(path, "rb");
        fseek(in, 0, SEEK_END);
        long len = ftell(in);
        fseek(in, 0, SEEK_SET);
        char *bytes = tb_malloc((size_t)len);
        CHECK(fread(bytes, 1, (size_t)len, in) == (size_t)len, "read");
        fclose(in);
        long cuts[] = {0, 4, 8, 20, len / 2, len - 1};
        for (int i = 0; i < 6; i++) {
            FILE *o = fopen(path2, "wb");
            fwrite(bytes, 1, (size_t)cuts[i], o);
            fclose(o);
            EXPECT(checkpoint_load(path2, &c, &err) == -1 && strstr(err.msg, path2), "truncated at %ld: %s",
                   cuts[i], err.msg);
        }
        free(bytes);
        trainer_free(&d);
        trainer_free(&c);
    }
    // Garbage.
    FILE *o = fopen(path2, "wb");
    fputs("this is not a safetensors file at all, just words", o);
    fclose(o);
    ModelSpec spec;
    EXPECT(checkpoint_peek_spec(path2, &spec, &err) == -1 && strstr(err.msg, path2), "garbage: %s", err.msg);
    unlink(path);
    unlink(path2);
    return test_finish();
}
