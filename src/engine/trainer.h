// trainer.h: online training on a stream of frames. Owns the model, the backend,
// the replay ring of recent frames (at the training size) and the step count.
// Used by the headless driver and the live app alike.
#pragma once
#include "backend.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

// What a trainer is built from (the command line fills it from its settings).
typedef struct {
    ModelSpec spec;    // architecture and training size
    const char *backend;  // "auto", "cpu" or "cuda"
    Hyper hyper;       // optimizer and its settings (hyper.t is reset to 1)
    int ring;          // replay ring length (frames)
    int max_batch;     // largest batch: 1 + the most replayed frames per step
    uint64_t seed;     // initial weights and replay draws
    Transform transform;  // what the network is given (ops.h); zero = the frame itself
    int deterministic; // 1: the backend gives the same bits on every run (BackendOpts)
    int device;        // the CUDA device ([chN] device; 0 = channel 0's; BackendOpts)
} TrainerConfig;

// What the trainer knows of a snapshot slot (the backend holds its numbers).
typedef struct {
    int full;       // saved at least once
    int optimizer;  // whose state it holds (OPT_SGD or OPT_ADAM)
    long adam_t;    // steps that state had taken (Adam's bias correction)
    long step;      // the trainer's step count when it was saved (written to its file)
} TrainerSlot;

typedef struct {
    Model model;
    Backend *be;
    Hyper hyper;
    int max_batch;
    const uint8_t **batch;  // max_batch frame pointers, filled per step
    // Input transform (live; ops.h): with one in force, each step's inputs are
    // transformed copies of the batch (tf_buf, max_batch frames, made on first
    // use) and the clean frames are the targets. The ring keeps clean frames.
    Transform tf;
    uint8_t *tf_buf;
    const uint8_t **tf_in;
    int tf_last;  // 1: the last step/forward was given tf_buf
    int tf_from_file;  // 1: the last checkpoint_load set tf from the file
    // Replay ring: ring_cap frames of W*H*3 bytes; the newest is at ring_head.
    uint8_t *ring;
    int ring_cap, ring_len, ring_head;
    // Each ring frame's number for load_batch_ids (frames pushed before it),
    // and the numbers of the batch's frames.
    uint64_t *ring_ids, pushes, *batch_ids;
    int ring_limit;  // live "ring" control: draw only from the newest ring_limit frames
    TbRng rng;
    uint64_t seed;
    long step;      // optimizer steps taken (checkpointed)
    long opt_t0;    // step at which the optimizer's state last started afresh
    int slot_next;  // next free stats slot (see trainer_read_stats)
    int last_batch; // B of the last step/forward
    TrainerSlot slots[TB_SLOTS + 1];  // 1..TB_SLOTS played; 0 is scratch (snapshot.c)
    // The bottleneck control in force (trainer_set_bottleneck); the mask the
    // backend was given (bn_mask, one float per bottleneck channel).
    int bn_keep, bn_freeze;
    float bn_noise;
    float *bn_mask;
    // Test hook (fault injection): TABULA_INJECT_NAN_AT_STEP=N in the environment
    // at trainer_init writes a NaN into the weights once, after step N (0 = off).
    long inject_nan_step;
} Trainer;

// Build model + backend and a fresh He-initialised network from c->seed.
int trainer_init(Trainer *t, const TrainerConfig *c, TbErr *err);
void trainer_free(Trainer *t);
// Fresh random weights (seed) and zeroed optimizer state; step count 0.
void trainer_reset(Trainer *t, uint64_t seed);
// Switch between OPT_SGD and OPT_ADAM live: the weights stay, the optimizer's
// state starts afresh (as a new torch.optim optimizer would).
void trainer_set_optimizer(Trainer *t, int optimizer);
// Fit a source frame (any size) into the ring as the newest frame.
void trainer_push_frame(Trainer *t, const uint8_t *rgb, int w, int h);
// Pointer to the newest frame at the training size (NULL before the first push).
const uint8_t *trainer_newest(const Trainer *t);
// K steps on the newest frame plus up to `memory` frames drawn from the ring.
// Returns the stats slot of the last step, or -1 if K == 0 (then it runs a forward
// pass on the newest frame so the reconstruction is current).
// Needs trainer_slots_free(t) >= K.
int trainer_train(Trainer *t, int K, int memory);
// One step on B given frames (B <= max_batch, each at the training size): the
// theme trainer's batches of random crops. The transform in force applies as
// in trainer_train; the ring is untouched. Returns the step's stats slot.
// Needs trainer_slots_free(t) >= 1.
int trainer_train_batch(Trainer *t, const uint8_t *const *frames, int B);
int trainer_slots_free(const Trainer *t);
// Read back all stats slots used since the last call (waits for the device)
// and free them. Returns how many were read into out (TB_STATS_RING max).
int trainer_read_stats(Trainer *t, StepStats *out);
// Reconstruction of the newest frame (sample 0 of the last step/forward), RGB8.
void trainer_output(Trainer *t, uint8_t *rgb);
// trainer_output for the display, without waiting for the queued steps
// (backend.h, output_recent): 1 with the newest reconstruction that has
// arrived in rgb, 0 when none newer has (rgb untouched). Backends without
// the entry give trainer_output's and 1.
int trainer_output_recent(Trainer *t, uint8_t *rgb);
// What the network was given for the newest frame (sample 0 of the last
// step/forward: the transformed frame, or the frame itself), at the training
// size; NULL before the first step/forward. Valid until the next one.
const uint8_t *trainer_input(const Trainer *t);

// The bottleneck control (backend.h, bottleneck): keep the first `keep`
// channels of the encoder's output and zero the rest (0 or the channel count
// or more: all), add Gaussian noise of std `noise`, and freeze (1) the code the
// decoder sees while only the decoder learns. In training and display alike;
// the backend hears of it only when something changed.
void trainer_set_bottleneck(Trainer *t, int keep, float noise, int freeze);

// Snapshot slots 1..TB_SLOTS, held in the backend's memory (on the GPU for
// CUDA): the weights and the optimizer's state. They survive a reset; the step
// count never goes back. Each returns 0, or -1 with err (no such slot, an empty
// one, out of device memory).
// Save the live network into slot i.
int trainer_slot_save(Trainer *t, int i, TbErr *err);
// The live network becomes slot i, bit for bit. Its optimizer state comes back
// when it was saved under the optimizer in use now, else that starts afresh.
int trainer_slot_recall(Trainer *t, int i, TbErr *err);
// w = (1-a)*w + a*slot (a in [0,1]): one step of a cross-fade toward slot i.
// The optimizer state blends too when the slot holds the optimizer in use.
int trainer_slot_blend(Trainer *t, int i, float a, TbErr *err);
// 1 if slot i (0..TB_SLOTS) holds a network.
int trainer_slot_full(const Trainer *t, int i);

#ifdef __cplusplus
}
#endif
