// test_deterministic.c: why it exists: `[train] deterministic = 1` is what
// makes a replay of a run on CUDA reproducible (cuDNN restricted to
// deterministic algorithms); the help promises the CPU backend is so anyway.
// The setting must reach the backend from the file and the flag, and two runs
// from the same start must give the same bits: on the CPU here, on CUDA where
// there is a usable GPU (test_cuda_parity checks it at the op level too).
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "settings_trainer.h"
#include "test.h"
#ifdef TABULA_HAVE_CUDA
#include "backend_cuda.h"
#endif

enum { W = 32, H = 32 };

TEST_IMPL(flag_and_key_reach_the_trainer_config) {
    Settings s;
    settings_default(&s);
    EXPECT(s.deterministic == 0, "default %d", s.deterministic);
    TbErr err = {{0}};
    char *argv[] = {"tabula", "--deterministic", "1"};
    EXPECT(settings_parse_args(&s, 3, argv, &err) == 0, "%s", err.msg);
    EXPECT(s.deterministic == 1, "--deterministic 1 gave %d", s.deterministic);
    EXPECT(settings_set(&s, "train.deterministic", "0", &err) == 0 && s.deterministic == 0,
           "train.deterministic 0: %s", err.msg);
    EXPECT(settings_set(&s, "train.deterministic", "2", &err) == -1, "2 accepted");
    s.deterministic = 1;
    TrainerConfig c;
    EXPECT(session_trainer_config(&s, NULL, &c, &err) == 0, "%s", err.msg);
    EXPECT(c.deterministic == 1, "TrainerConfig.deterministic %d", c.deterministic);
}

// Eight frames of a moving pattern, three steps each with two replayed frames
// (batch 3), on a small network: the weights after (*n floats, malloc'd).
static float *run_once(const char *backend, size_t *n, TbErr *err) {
    Settings s;
    settings_default(&s);
    s.width = W, s.height = H, s.deterministic = 1, s.memory = 2;
    snprintf(s.channels, sizeof s.channels, "8,16,32");
    snprintf(s.backend, sizeof s.backend, "%s", backend);
    Trainer t;
    if (trainer_init_settings(&t, &s, NULL, err)) return NULL;
    uint8_t rgb[W * H * 3];
    for (int f = 0; f < 8; f++) {
        for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 7 + f * 31 + (i / (W * 3)) * 5);
        trainer_push_frame(&t, rgb, W, H);
        trainer_train(&t, 3, 2);
        StepStats st[TB_STATS_RING];
        trainer_read_stats(&t, st);
    }
    *n = t.model.n_params;
    float *p = tb_malloc(*n * sizeof(float));
    t.be->get_params(t.be, p);
    trainer_free(&t);
    return p;
}

static void twice_the_same_bits(const char *backend) {
    TbErr err = {{0}};
    size_t na = 0, nb = 0;
    float *a = run_once(backend, &na, &err), *b = a ? run_once(backend, &nb, &err) : NULL;
    EXPECT(a && b, "%s: %s", backend, err.msg);
    if (a && b)
        EXPECT(na == nb && memcmp(a, b, na * sizeof(float)) == 0,
               "%s: two runs from the same start differ in their weights", backend);
    free(a), free(b);
}

TEST_IMPL(cpu_runs_repeat_bit_for_bit) { twice_the_same_bits("cpu"); }

TEST_IMPL(cuda_runs_repeat_bit_for_bit) {
#ifdef TABULA_HAVE_CUDA
    TbErr err = {{0}};
    if (!cuda_available(&err)) TEST_SKIP_CASE("%s", err.msg);
    twice_the_same_bits("cuda");
#else
    TEST_SKIP_CASE("built without the CUDA backend");
#endif
}

TEST_MAIN(TEST_ENTRY(flag_and_key_reach_the_trainer_config), TEST_ENTRY(cpu_runs_repeat_bit_for_bit),
          TEST_ENTRY(cuda_runs_repeat_bit_for_bit))
