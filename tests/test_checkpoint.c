// test_checkpoint.c: why it exists: a checkpoint is how a user stops a run and
// goes on later, or takes the weights to PyTorch. If save -> load -> continue
// were not bit-exact (CPU, SGD and Adam), a resumed run would quietly differ
// from an uninterrupted one; if the file were not self-describing and in
// PyTorch's layouts, it could not be loaded elsewhere; and wrong shapes,
// truncated files and garbage must be clear errors naming the file, not a crash
// or a half-loaded model.
#define _DEFAULT_SOURCE
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "source.h"
#include "settings_trainer.h"
#include "test.h"

enum { SGD, ADAM };
static const char *const OPT_NAME[2] = {"sgd", "adam"};

static void small_settings(Settings *s, int opt) {
    settings_default(s);
    snprintf(s->backend, sizeof s->backend, "cpu");
    snprintf(s->channels, sizeof s->channels, "8,16,16");
    s->width = 48;
    s->height = 32;
    s->lr = 0.05f;
    s->momentum = 0.9f;
    s->clip = 0.5f;
    s->weight_decay = 1e-4f;
    if (opt == ADAM) snprintf(s->optimizer, sizeof s->optimizer, "adam"), s->lr = 2e-3f;
}


// One optimizer's save/load run, done once and shared by its cases.
typedef struct {
    int ready;
    char path[128];   // the checkpoint B saved after 5 frames
    float la[10], lb[10];  // A: 10 frames straight; B then C: 5 + 5 around a save/load
    Trainer c;        // C: a fresh trainer with another seed that loaded the file
    Settings s;
} Resumed;
static Resumed runs[2];
static char path2[128];  // scratch file for cut and garbage copies

static void cleanup(void) {
    for (int opt = 0; opt < 2; opt++)
        if (runs[opt].ready) {
            trainer_free(&runs[opt].c);
            unlink(runs[opt].path);
        }
    unlink(path2);
}

static Resumed *resumed(int opt) {
    Resumed *r = &runs[opt];
    if (r->ready) return r;
    if (!path2[0]) {
        snprintf(path2, sizeof path2, "/tmp/tabula-ckpt-%d-b.safetensors", (int)getpid());
        atexit(cleanup);
    }
    r->ready = 1;
    snprintf(r->path, sizeof r->path, "/tmp/tabula-ckpt-%d-%s.safetensors", (int)getpid(), OPT_NAME[opt]);
    const char *clip = test_data("asl_signer_a_320x240.y4m");
    TbErr err = {{0}};
    small_settings(&r->s, opt);
    // A: 10 frames straight.
    Trainer a;
    EXPECT(trainer_init_settings(&a, &r->s, NULL, &err) == 0, "%s", err.msg);
    Source *src = source_open_y4m(clip, &err);
    if (!src) TEST_SKIP("%s", err.msg);
    train_frames(&a, src, 10, r->la);
    source_close(src);
    trainer_free(&a);
    // B: 5 frames, save, fresh trainer with another seed, load, 5 more.
    Trainer b;
    trainer_init_settings(&b, &r->s, NULL, &err);
    src = source_open_y4m(clip, &err);
    train_frames(&b, src, 5, r->lb);
    EXPECT(checkpoint_save(r->path, &b, 1, &err) == 0, "%s", err.msg);
    trainer_free(&b);
    Settings s2 = r->s;
    s2.seed = 99;
    ModelSpec spec;
    EXPECT(checkpoint_peek_spec(r->path, &spec, &err) == 0 && spec.n_enc == 3 && spec.channels[2] == 16,
           "peek: %s", err.msg);
    trainer_init_settings(&r->c, &s2, &spec, &err);
    EXPECT(checkpoint_load(r->path, &r->c, &err) == 0, "%s", err.msg);
    EXPECT(r->c.step == 10, "step count restored: %ld", r->c.step);
    train_frames(&r->c, src, 5, r->lb + 5);
    source_close(src);
    return r;
}

static void check_bit_exact(int opt) {
    Resumed *r = resumed(opt);
    int same = memcmp(r->la, r->lb, sizeof r->la) == 0;
    EXPECT(same, "%s: save/load/continue not bit-exact (frame 9: %.9g vs %.9g)", OPT_NAME[opt],
           (double)r->la[9], (double)r->lb[9]);
}

static void check_learned(int opt) {
    Resumed *r = resumed(opt);
    EXPECT(r->la[9] < r->la[0], "it learned: %.5f -> %.5f", (double)r->la[0], (double)r->la[9]);
}

// The file is self-describing and in PyTorch layouts.
static void check_self_describing(int opt) {
    Resumed *r = resumed(opt);
    TbErr err = {{0}};
    StFile f;
    EXPECT(st_read(&f, r->path, &err) == 0, "%s", err.msg);
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
}

// Wrong shapes: a model with other channels refuses the file, naming it.
static void check_wrong_shape(int opt) {
    Resumed *r = resumed(opt);
    TbErr err = {{0}};
    Settings s3 = r->s;
    snprintf(s3.channels, sizeof s3.channels, "8,16,32");
    Trainer d;
    trainer_init_settings(&d, &s3, NULL, &err);
    EXPECT(checkpoint_load(r->path, &d, &err) == -1 && strstr(err.msg, r->path) && strstr(err.msg, "shape"),
           "wrong shape: %s", err.msg);
    trainer_free(&d);
}

// Truncated file: every prefix fails cleanly.
static void check_truncated(int opt) {
    Resumed *r = resumed(opt);
    TbErr err = {{0}};
    FILE *in = fopen(r->path, "rb");
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
        EXPECT(checkpoint_load(path2, &r->c, &err) == -1 && strstr(err.msg, path2), "truncated at %ld: %s",
               cuts[i], err.msg);
    }
    free(bytes);
}

TEST_IMPL(save_load_continue_is_bit_exact_sgd) { check_bit_exact(SGD); }
TEST_IMPL(ten_frames_lower_the_loss_sgd) { check_learned(SGD); }
TEST_IMPL(checkpoint_is_self_describing_pytorch_layout_sgd) { check_self_describing(SGD); }
TEST_IMPL(wrong_shapes_refused_naming_the_file_sgd) { check_wrong_shape(SGD); }
TEST_IMPL(every_truncation_fails_naming_the_file_sgd) { check_truncated(SGD); }
TEST_IMPL(save_load_continue_is_bit_exact_adam) { check_bit_exact(ADAM); }
TEST_IMPL(ten_frames_lower_the_loss_adam) { check_learned(ADAM); }
TEST_IMPL(checkpoint_is_self_describing_pytorch_layout_adam) { check_self_describing(ADAM); }
TEST_IMPL(wrong_shapes_refused_naming_the_file_adam) { check_wrong_shape(ADAM); }
TEST_IMPL(every_truncation_fails_naming_the_file_adam) { check_truncated(ADAM); }

TEST_IMPL(garbage_file_refused_naming_it) {
    TbErr err = {{0}};
    if (!path2[0]) {
        snprintf(path2, sizeof path2, "/tmp/tabula-ckpt-%d-b.safetensors", (int)getpid());
        atexit(cleanup);
    }
    FILE *o = fopen(path2, "wb");
    fputs("this is not a safetensors file at all, just words", o);
    fclose(o);
    ModelSpec spec;
    EXPECT(checkpoint_peek_spec(path2, &spec, &err) == -1 && strstr(err.msg, path2), "garbage: %s", err.msg);
}

TEST_MAIN(TEST_ENTRY(save_load_continue_is_bit_exact_sgd), TEST_ENTRY(ten_frames_lower_the_loss_sgd),
          TEST_ENTRY(checkpoint_is_self_describing_pytorch_layout_sgd),
          TEST_ENTRY(wrong_shapes_refused_naming_the_file_sgd),
          TEST_ENTRY(every_truncation_fails_naming_the_file_sgd),
          TEST_ENTRY(save_load_continue_is_bit_exact_adam), TEST_ENTRY(ten_frames_lower_the_loss_adam),
          TEST_ENTRY(checkpoint_is_self_describing_pytorch_layout_adam),
          TEST_ENTRY(wrong_shapes_refused_naming_the_file_adam),
          TEST_ENTRY(every_truncation_fails_naming_the_file_adam), TEST_ENTRY(garbage_file_refused_naming_it))
