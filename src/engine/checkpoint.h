// checkpoint.h: trainer state <-> safetensors file.
// Tensors: enc.{i}.weight/bias, dec.{i}.weight/bias in PyTorch layouts; with
// optimizer state also opt.<name> (SGD momentum or Adam m) and opt_v.<name>
// (Adam v). __metadata__: format, arch, width, height, step, optimizer settings,
// and the input transform (transform, blur, jitter; ops.h) from checkpoint_save.
// Loads into PyTorch with safetensors.torch.load_file.
#pragma once
#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

int checkpoint_save(const char *path, Trainer *t, int with_opt_state, TbErr *err);
// The same file from host copies (an autosave writer thread has no Trainer):
// params (n_params floats), opt_state (2*n_params floats, as get_opt_state
// fills them; NULL = none), what the trainer knew (step, opt_t0, seed) and the
// input transform in force (tf: every writer records it, so whatever loads
// the file gets the network's transform back).
int checkpoint_save_host(const char *path, const Model *m, const Hyper *h, long step, long opt_t0,
                         uint64_t seed, const float *params, const float *opt_state, const Transform *tf,
                         TbErr *err);
// The architecture a checkpoint was trained with (to build the model to load into).
int checkpoint_peek_spec(const char *path, ModelSpec *spec, TbErr *err);
// Load weights (and optimizer state and step count if present and the optimizer
// matches). Shapes must match the trainer's model: else a clear error. A file
// that names an input transform sets t->tf (and t->tf_from_file = 1); one this
// build does not know is an error naming the file, and nothing is loaded.
int checkpoint_load(const char *path, Trainer *t, TbErr *err);

#ifdef __cplusplus
}
#endif
