// backend.h: one table of functions per compute backend (cpu, cuda).
// The trainer talks only to this; the backend owns its parameter block
// (params | grads | optimizer state) and activation block.
#pragma once
#include <stdint.h>

#include "common.h"
#include "model.h"
#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Backend Backend;
struct Backend {
    const char *name;  // "cpu" or "cuda"
    void *ctx;
    const Model *model;
    int max_batch;
    int device;  // the CUDA device it runs on; -1 on the CPU

    void (*destroy)(Backend *b);
    // Weights and optimizer state to/from host (n = model->n_params floats each).
    // state: momentum buffer (SGD) or m then v (Adam, 2n floats). get_* sync.
    void (*set_params)(Backend *b, const float *params);
    void (*get_params)(Backend *b, float *params);
    void (*set_opt_state)(Backend *b, const float *state, int optimizer);
    void (*get_opt_state)(Backend *b, float *state, int optimizer);
    void (*reset_opt_state)(Backend *b);
    // Upload B frames (RGB8 interleaved at the model's training size) as the batch.
    void (*load_batch)(Backend *b, const uint8_t *const *frames, int B);
    // load_batch with an identity for each frame: ids[i] names the content of
    // frames[i] (the same id is always the same pixels; the trainer numbers
    // its frames as it pushes them). A backend that keeps frames where it
    // computes (CUDA: in device memory) sends only those it does not hold;
    // the CPU ignores the ids. NULL: use load_batch.
    void (*load_batch_ids)(Backend *b, const uint8_t *const *frames, const uint64_t *ids, int B);
    // After load_batch: the loss compares the output with these B frames instead
    // of the input (the clean frames of a transformed input). Without it, the
    // input is its own target. Held in the image's gradient slot (dacts[0]),
    // which no step writes: the image gets no gradient.
    void (*load_targets)(Backend *b, const uint8_t *const *frames, int B);
    // One training step on the loaded batch: forward, loss, backward, clip, update.
    // Its stats go into slot `slot` of a small ring (slot < TB_STATS_RING); nothing
    // here waits for the device.
    void (*train_step)(Backend *b, int B, const Hyper *h, int slot);
    // Forward only on the loaded batch (e.g. for display while paused).
    void (*forward)(Backend *b, int B);
    // Copy back stats of slots [0, n) (waits for the device).
    void (*read_stats)(Backend *b, StepStats *out, int n);
    // Reconstruction of sample i of the last forward/step, as RGB8 (waits).
    void (*get_output)(Backend *b, int i, uint8_t *rgb);
    // The display's read-back, which never waits for the device: asks for
    // sample 0 of the last forward/step (converted and copied back behind the
    // work queued so far, unless one asked before is still on its way) and
    // gives the newest that has arrived. Returns 1 with it in rgb when it is
    // newer than the last one given, else 0 (rgb untouched). NULL where
    // get_output does not wait on a queue (the CPU).
    int (*output_recent)(Backend *b, uint8_t *rgb);

    // Snapshot slots 0..TB_SLOTS, held by the backend (device memory on the
    // GPU): each keeps the weights and the whole optimizer state (m and v), 3n
    // floats, allocated on its first save. The trainer numbers its slots 1..8
    // and keeps slot 0 as scratch. Enqueued in order with the steps; none waits.
    // slot_save: 0, or -1 with err (out of memory). slot_recall / slot_blend
    // need a saved slot. slot_blend: w = (1-a)*w + a*slot (lerp) on the weights,
    // and on the optimizer state too when with_state.
    int (*slot_save)(Backend *b, int i, TbErr *err);
    void (*slot_recall)(Backend *b, int i);
    void (*slot_blend)(Backend *b, int i, float a, int with_state);

    // The bottleneck control (ops.h, bottleneck_*), on the encoder's last
    // activation in every forward pass (training and display alike). mask: C
    // floats for its C channels, NULL = all kept. freeze 1: the decoder sees the
    // code held when it was turned on (sample 0 of the last pass, for every
    // sample; zeros before any pass), the encoder does not run, and a step
    // updates only the decoder (its gradient norm and clip too): the encoder's
    // weights and optimizer state stay as they were. Keeping every channel with
    // no noise and no freeze is no op at all (the same bits as before).
    void (*bottleneck)(Backend *b, const float *mask, float noise, int freeze);

    // Device memory in use and in all, in bytes, for the health report: 0, or
    // -1 if unknown. Device-wide (other processes count too), never waits for
    // the stream, callable from any thread. NULL on the CPU (host memory is
    // the process's own, in health.h).
    int (*mem_info)(Backend *b, size_t *used, size_t *total);

    // Looking inside (the atlas and journeys, app/atlas.h, cli/journey.h).
    // get_activation: activation i (0 the image, l+1 the output of layer l:
    // model.h) of sample 0 of the last forward/step, as NCHW floats (act_n[i])
    // into out on the host; waits for the device. decode: the decoder alone
    // (layers n_enc..) on one code, act_n[n_enc] NCHW floats from the host, to
    // RGB8 at the training size; waits. It works on scratch of its own, so the
    // batch's activations (get_output, get_activation) stay as they were; with
    // the same weights, decode(get_activation(n_enc)) is get_output(0) of a
    // forward on one sample, bit for bit. The bottleneck control does not act
    // on either: the read-out is the encoder's output, decode takes the code
    // as given.
    void (*get_activation)(Backend *b, int i, float *out);
    void (*decode)(Backend *b, const float *code, uint8_t *rgb);

    // The channels' coupling (ops couple()) in the backends' own memory: the
    // weights of bs[0..k-1], all of this kind (bs[0] is this one), each pulled
    // toward their mean by c; optimizer state untouched. 0, or -1 having done
    // nothing when this backend cannot (weights in different layouts, on
    // different devices): backend_couple then goes through host copies.
    // Enqueued in order with each backend's steps; never waits.
    int (*couple)(Backend *const *bs, int k, float c);
};

// Slots a backend holds: the trainer's 1..TB_SLOTS and its scratch slot 0.
#define TB_SLOTS 8


// Choices fixed when a backend is made (all zero: the defaults).
typedef struct {
    // 1: CUDA uses only cuDNN algorithms that give the same bits on every run
    // (a replay can be reproduced); the CPU backend always does.
    int deterministic;
    // Frames the caller numbers for load_batch_ids (its replay ring): CUDA
    // keeps that many on the device when memory allows (else fewer, as a
    // cache). 0: none kept, every frame is sent.
    int frames;
    // The CUDA device to run on ([chN] device; 0, the default, is channel 0's).
    // The CPU backend ignores it: channels.c refuses a device there.
    int device;
} BackendOpts;

// Create a backend by name: "cpu", "cuda" or "auto" (cuda if usable, else cpu,
// with one log line saying why). Returns NULL with err filled when the named
// backend cannot be used (e.g. "cuda" without a GPU). o may be NULL (defaults).
Backend *backend_create(const char *name, const Model *m, int max_batch, TbErr *err);
Backend *backend_create_opts(const char *name, const Model *m, int max_batch, const BackendOpts *o,
                             TbErr *err);
void backend_destroy(Backend *b);

// Backends one coupling takes, at most (the channels are 4).
#define TB_COUPLE_MAX 8

// Couples the weights of k backends (ops couple(): each toward their mean by
// c) inside them when all are of one kind and its `couple` takes them, else
// through host copies (get_params, couple(), set_params) in host[0..k-1],
// n_params floats each (k <= TB_COUPLE_MAX): the path for mixed kinds and devices. Either way the
// same bits. Returns 1 if coupled inside the backends, 0 through the host.
int backend_couple(Backend *const *bs, int k, float c, float *const *host);

// The CPU backend (backend_cpu.c); the CUDA one is in backend_cuda.h.
Backend *backend_cpu_create(const Model *m, int max_batch, TbErr *err);

#ifdef __cplusplus
}
#endif
