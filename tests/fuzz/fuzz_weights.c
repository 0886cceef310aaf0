// fuzz_weights.c: the whole --load path on arbitrary bytes: safetensors header
// and offsets, metadata, the architecture, the model built from it, the memory
// check, the tensors, the counts and the optimizer state.
#include <string.h>

#include "checkpoint.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".safetensors");
    ModelSpec spec = model_spec_default(16, 16);
    TbErr err;
    if (checkpoint_peek_spec(path, &spec, &err)) return 0;
    spec.width = spec.height = 16;
    for (int opt = 0; opt < 2; opt++) {
        TrainerConfig c = {.spec = spec, .backend = "cpu", .ring = 1, .max_batch = 1, .seed = 1};
        c.hyper.optimizer = opt;
        Trainer t;
        if (trainer_init(&t, &c, &err)) return 0;
        checkpoint_load(path, &t, &err);
        trainer_free(&t);
    }
    return 0;
}
