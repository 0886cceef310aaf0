// backend_cuda_device.cu: the CUDA backend on the device BackendOpts names
// (0 unless [chN] device names another). The runtime's current device belongs
// to the thread, and the channels run on one thread, so every entry point of a
// CUDA backend made by backend_create makes its own device current first: each entry of the table is a thunk that calls
// cudaSetDevice and then the CUDA backend's own function. Kept apart from
// backend_cuda.cu so that the backend itself stays written for one device. A
// new entry in the Backend table needs its thunk here.
#include <string.h>

#include "backend_cuda.h"
#include "ops_cuda.h"

static Backend real;  // the CUDA backend's own table: the same for every one

static void enter(Backend *b) { cudaCheck(cudaSetDevice(b->device)); }

static void d_destroy(Backend *b) {
    enter(b);
    real.destroy(b);
}
static void d_set_params(Backend *b, const float *p) {
    enter(b);
    real.set_params(b, p);
}
static void d_get_params(Backend *b, float *p) {
    enter(b);
    real.get_params(b, p);
}
static void d_set_opt_state(Backend *b, const float *s, int opt) {
    enter(b);
    real.set_opt_state(b, s, opt);
}
static void d_get_opt_state(Backend *b, float *s, int opt) {
    enter(b);
    real.get_opt_state(b, s, opt);
}
static void d_reset_opt_state(Backend *b) {
    enter(b);
    real.reset_opt_state(b);
}
static void d_load_batch(Backend *b, const uint8_t *const *frames, int B) {
    enter(b);
    real.load_batch(b, frames, B);
}
static void d_load_batch_ids(Backend *b, const uint8_t *const *frames, const uint64_t *ids, int B) {
    enter(b);
    real.load_batch_ids(b, frames, ids, B);
}
static void d_load_targets(Backend *b, const uint8_t *const *frames, int B) {
    enter(b);
    real.load_targets(b, frames, B);
}
static void d_train_step(Backend *b, int B, const Hyper *h, int slot) {
    enter(b);
    real.train_step(b, B, h, slot);
}
static void d_forward(Backend *b, int B) {
    enter(b);
    real.forward(b, B);
}
static void d_read_stats(Backend *b, StepStats *out, int n) {
    enter(b);
    real.read_stats(b, out, n);
}
static void d_get_output(Backend *b, int i, uint8_t *rgb) {
    enter(b);
    real.get_output(b, i, rgb);
}
static int d_output_recent(Backend *b, uint8_t *rgb) {
    enter(b);
    return real.output_recent(b, rgb);
}
static int d_slot_save(Backend *b, int i, TbErr *err) {
    enter(b);
    return real.slot_save(b, i, err);
}
static void d_slot_recall(Backend *b, int i) {
    enter(b);
    real.slot_recall(b, i);
}
static void d_slot_blend(Backend *b, int i, float a, int with_state) {
    enter(b);
    real.slot_blend(b, i, a, with_state);
}
static void d_bottleneck(Backend *b, const float *mask, float noise, int freeze) {
    enter(b);
    real.bottleneck(b, mask, noise, freeze);
}
static int d_mem_info(Backend *b, size_t *used, size_t *total) {
    if (cudaSetDevice(b->device) != cudaSuccess) {  // any thread: never exits here
        (void)cudaGetLastError();
        return -1;
    }
    return real.mem_info(b, used, total);
}
static void d_get_activation(Backend *b, int i, float *out) {
    enter(b);
    real.get_activation(b, i, out);
}
static void d_decode(Backend *b, const float *code, uint8_t *rgb) {
    enter(b);
    real.decode(b, code, rgb);
}
static int d_couple(Backend *const *bs, int k, float c) {
    enter(bs[0]);
    return real.couple(bs, k, c);
}

extern "C" Backend *backend_cuda_on_device(const Model *m, int max_batch, const BackendOpts *o, TbErr *err) {
    int n = 0, dev = o ? o->device : 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0, (void)cudaGetLastError();
    if (dev < 0 || (dev > 0 && dev >= n)) {
        tb_fail(err, "cuda backend: device %d asked for, but this machine has %d CUDA device%s", dev, n,
                n == 1 ? "" : "s");
        return NULL;
    }
    if (n > 0 && cudaSetDevice(dev) != cudaSuccess) {  // creation allocates on the current device
        (void)cudaGetLastError();
        tb_fail(err, "cuda backend: device %d cannot be made current", dev);
        return NULL;
    }
    Backend *b = backend_cuda_create(m, max_batch, o, err);
    if (!b) return NULL;
    b->device = dev;
    if (!real.destroy) real = *b;
    b->destroy = d_destroy;
    b->set_params = d_set_params;
    b->get_params = d_get_params;
    b->set_opt_state = d_set_opt_state;
    b->get_opt_state = d_get_opt_state;
    b->reset_opt_state = d_reset_opt_state;
    b->load_batch = d_load_batch;
    b->load_batch_ids = real.load_batch_ids ? d_load_batch_ids : NULL;
    b->load_targets = d_load_targets;
    b->train_step = d_train_step;
    b->forward = d_forward;
    b->read_stats = d_read_stats;
    b->get_output = d_get_output;
    b->output_recent = real.output_recent ? d_output_recent : NULL;
    b->slot_save = d_slot_save;
    b->slot_recall = d_slot_recall;
    b->slot_blend = d_slot_blend;
    b->bottleneck = d_bottleneck;
    b->mem_info = d_mem_info;
    b->get_activation = d_get_activation;
    b->decode = d_decode;
    b->couple = d_couple;
    return b;
}
