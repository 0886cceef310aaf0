// test_hostile_weights.c: why it exists: weights are files people share, and
// --load builds a network from what a file says. A crafted file must give a
// clear error naming it (exit 2 in the program), never a crash, a division by
// zero, a wrapped size or a huge allocation: every architecture field is
// bounded, sizes are computed in 64 bits, the memory a network needs is checked
// before anything is allocated, and counts and optimizer state are validated.
#define _DEFAULT_SOURCE
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "safetensors.h"
#include "settings_trainer.h"
#include "test.h"

static char dir[64];
static void cleanup(void);

static const char *tmp(const char *name) {
    static char path[4][128];
    static int k;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/tabula_hostile_XXXXXX");
        CHECK(mkdtemp(dir), "mkdtemp");
        atexit(cleanup);
    }
    k = (k + 1) & 3;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

// A file whose only content is its metadata's "arch".
static const char *file_with_arch(const char *arch) {
    const char *p = tmp("arch.safetensors");
    StWriter w;
    st_writer_init(&w);
    st_writer_meta(&w, "format", "tabula-checkpoint-1");
    st_writer_meta(&w, "arch", arch);
    TbErr err;
    CHECK(st_writer_save(&w, p, &err) == 0, "%s", err.msg);
    st_writer_free(&w);
    return p;
}

// Every field of the architecture string is bounded; nothing may follow it.
TEST_IMPL(arch_fields_bounded_and_exact) {
    static const char *const bad[] = {
        "tabula-ae-v1:32:k4s1000000p1:leaky0.2",      // stride: the product would wrap
        "tabula-ae-v1:32:k4s2p1073741824:leaky0.2",   // padding: sizes would wrap
        "tabula-ae-v1:32:k99s2p1:leaky0.2",           // kernel
        "tabula-ae-v1:32:k4s2p4:leaky0.2",            // padding as large as the kernel
        "tabula-ae-v1:4294967328:k4s2p1:leaky0.2",    // wraps to 32 in an int
        "tabula-ae-v1:32,,64:k4s2p1:leaky0.2",        // an empty item
        "tabula-ae-v1::k4s2p1:leaky0.2",              // no channels
        "tabula-ae-v1:32,64:k4s2p1:leaky0.2junk",     // trailing junk
        "tabula-ae-v1:32:k4s2p1:leaky-1",             // slope
        "tabula-ae-v1:32:k4s2p1:leakynan",
        "tabula-ae-v1:1,2,3,4,5,6,7,8,9:k4s2p1:leaky0.2",  // more layers than allowed
        "tabula-ae-v1:32:k-4s2p1:leaky0.2",
        "tabula-ae-v2:32:k4s2p1:leaky0.2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = file_with_arch(bad[i]);
        ModelSpec spec = model_spec_default(64, 64);
        TbErr err = {{0}};
        EXPECT(checkpoint_peek_spec(p, &spec, &err) == -1 && strstr(err.msg, p), "\"%s\" accepted (%s)", bad[i],
               err.msg);
    }
    ModelSpec spec = model_spec_default(64, 64);
    TbErr err = {{0}};
    EXPECT(checkpoint_peek_spec(file_with_arch("tabula-ae-v1:8,16:k4s2p1:leaky0.25"), &spec, &err) == 0 &&
               spec.n_enc == 2 && spec.channels[1] == 16 && spec.slope == 0.25f,
           "a good arch refused: %s", err.msg);
}

// An architecture that parses but cannot fit in memory is refused with what it
// needs, before anything is allocated.
TEST_IMPL(network_too_big_for_memory_is_refused) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.width = s.height = 256;
    ModelSpec spec = model_spec_default(256, 256);
    TbErr err = {{0}};
    const char *p = file_with_arch("tabula-ae-v1:4096,4096,4096,4096,4096,4096,4096,4096:k15s1p7:leaky0.2");
    EXPECT(checkpoint_peek_spec(p, &spec, &err) == 0, "%s", err.msg);
    Trainer t;
    EXPECT(trainer_init_settings(&t, &s, &spec, &err) == -1 && strstr(err.msg, "these settings need") &&
               strstr(err.msg, "GB"),
           "huge network: %s", err.msg);
}

// A real checkpoint, then a copy of it with one metadata value replaced or one
// optimizer-state value poisoned.
static const char *good_checkpoint(Trainer *t) {
    Settings s;
    settings_default(&s);
    snprintf(s.backend, sizeof s.backend, "cpu");
    s.width = s.height = 32;
    TbErr err = {{0}};
    CHECK(trainer_init_settings(t, &s, NULL, &err) == 0, "%s", err.msg);
    const char *p = tmp("good.safetensors");
    CHECK(checkpoint_save(p, t, 1, &err) == 0, "%s", err.msg);
    return p;
}

static const char *altered(const char *src, const char *key, const char *value, int poison_state) {
    StFile f;
    TbErr err;
    CHECK(st_read(&f, src, &err) == 0, "%s", err.msg);
    StWriter w;
    st_writer_init(&w);
    for (int i = 0; i < f.n_meta; i++)
        st_writer_meta(&w, f.meta_key[i], strcmp(f.meta_key[i], key) == 0 ? value : f.meta_val[i]);
    float *copy = NULL;
    for (int i = 0; i < f.n; i++) {
        const StTensor *t = &f.t[i];
        const void *data = t->data;
        if (poison_state && !copy && strncmp(t->name, "opt.", 4) == 0) {
            copy = tb_malloc(t->nbytes);
            memcpy(copy, t->data, t->nbytes);
            copy[0] = INFINITY;
            data = copy;
        }
        st_writer_add(&w, t->name, t->dtype, t->ndim, t->shape, data);
    }
    const char *p = tmp("altered.safetensors");
    CHECK(st_writer_save(&w, p, &err) == 0, "%s", err.msg);
    st_writer_free(&w);
    free(copy);
    st_free(&f);
    return p;
}

TEST_IMPL(step_counts_must_be_counts) {
    Trainer t;
    const char *good = good_checkpoint(&t);
    TbErr err = {{0}};
    EXPECT(checkpoint_load(good, &t, &err) == 0, "the good one: %s", err.msg);
    static const char *const bad[] = {"-5", "12abc", "", "99999999999999999999", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = altered(good, "step", bad[i], 0);
        EXPECT(checkpoint_load(p, &t, &err) == -1 && strstr(err.msg, "not a count"), "step \"%s\": %s", bad[i],
               err.msg);
    }
    trainer_free(&t);
}

TEST_IMPL(infinite_optimizer_state_refused) {
    Trainer t;
    const char *good = good_checkpoint(&t);
    TbErr err = {{0}};
    const char *p = altered(good, "", "", 1);
    EXPECT(checkpoint_load(p, &t, &err) == -1 && strstr(err.msg, "optimizer state contains NaN or infinity"),
           "inf in the momentum: %s", err.msg);
    trainer_free(&t);
}

static void cleanup(void) {
    if (!dir[0]) return;
    static const char *const names[] = {"arch.safetensors", "good.safetensors", "altered.safetensors"};
    for (size_t i = 0; i < 3; i++) unlink(tmp(names[i]));
    rmdir(dir);
}

TEST_MAIN(TEST_ENTRY(arch_fields_bounded_and_exact), TEST_ENTRY(network_too_big_for_memory_is_refused),
          TEST_ENTRY(step_counts_must_be_counts), TEST_ENTRY(infinite_optimizer_state_refused))
