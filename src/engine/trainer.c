// trainer.c: frames in, gradient steps out.
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frame_fit.h"

int trainer_init(Trainer *t, const TrainerConfig *c, TbErr *err) {
    memset(t, 0, sizeof *t);
    if (c->ring < 1 || c->max_batch < 1)
        return tb_fail(err, "trainer: ring %d and largest batch %d must be at least 1", c->ring, c->max_batch);
    if (model_build(&t->model, &c->spec, err)) return -1;
    // Settings that cannot fit are bad input, said before anything is allocated.
    uint64_t net = model_host_bytes(&t->model, c->max_batch);
    uint64_t ring = (uint64_t)c->ring * c->spec.width * c->spec.height * 3;
    uint64_t avail = tb_mem_available();
    if (avail && net + ring > avail)
        return tb_fail(err, "these settings need %.2f GB of memory (network %.2f GB, ring of %d frames "
                       "%.2f GB) but %.2f GB are available: lower the size, channels, ring or memory",
                       (double)(net + ring) / 1e9, (double)net / 1e9, c->ring, (double)ring / 1e9,
                       (double)avail / 1e9);
    t->max_batch = c->max_batch;
    BackendOpts bo = {.deterministic = c->deterministic, .frames = c->ring, .device = c->device};
    t->be = backend_create_opts(c->backend, &t->model, t->max_batch, &bo, err);
    if (!t->be) return -1;
    t->hyper = c->hyper;
    t->hyper.t = 1;
    t->ring_cap = c->ring;
    t->ring_limit = c->ring;
    t->ring = tb_calloc((size_t)t->ring_cap, (size_t)c->spec.width * c->spec.height * 3);
    t->ring_ids = tb_calloc((size_t)t->ring_cap, sizeof *t->ring_ids);
    t->batch_ids = tb_calloc((size_t)t->max_batch, sizeof *t->batch_ids);
    t->batch = tb_calloc((size_t)t->max_batch, sizeof *t->batch);
    t->tf_in = tb_calloc((size_t)t->max_batch, sizeof *t->tf_in);
    t->tf = c->transform;
    trainer_reset(t, c->seed);
    const char *inj = getenv("TABULA_INJECT_NAN_AT_STEP");  // test hook only
    if (inj && *inj) t->inject_nan_step = strtol(inj, NULL, 10);
    return 0;
}

void trainer_free(Trainer *t) {
    backend_destroy(t->be);
    free(t->ring);
    free(t->ring_ids);
    free(t->batch_ids);
    free(t->batch);
    free(t->tf_buf);
    free(t->tf_in);
    free(t->bn_mask);
    memset(t, 0, sizeof *t);
}

void trainer_reset(Trainer *t, uint64_t seed) {
    float *p = tb_malloc(t->model.n_params * sizeof(float));
    model_init_params(&t->model, p, seed);
    t->be->set_params(t->be, p);
    t->be->reset_opt_state(t->be);
    free(p);
    t->seed = seed;
    tb_rng_seed(&t->rng, seed ^ 0x5eed5eedull);
    t->step = 0;
    t->opt_t0 = 0;
}

void trainer_set_optimizer(Trainer *t, int optimizer) {
    if (optimizer == t->hyper.optimizer) return;
    t->hyper.optimizer = optimizer;
    t->be->reset_opt_state(t->be);
    t->opt_t0 = t->step;  // Adam's bias correction starts again at t = 1
}

static size_t frame_bytes(const Trainer *t) {
    return (size_t)t->model.spec.width * t->model.spec.height * 3;
}

void trainer_push_frame(Trainer *t, const uint8_t *rgb, int w, int h) {
    t->ring_head = (t->ring_head + 1) % t->ring_cap;
    if (t->ring_len < t->ring_cap) t->ring_len++;
    t->ring_ids[t->ring_head] = t->pushes++;
    uint8_t *dst = t->ring + (size_t)t->ring_head * frame_bytes(t);
    if (w == t->model.spec.width && h == t->model.spec.height)
        memcpy(dst, rgb, frame_bytes(t));
    else
        frame_fit(dst, t->model.spec.width, t->model.spec.height, rgb, w, h);
}

const uint8_t *trainer_newest(const Trainer *t) {
    return t->ring_len ? t->ring + (size_t)t->ring_head * frame_bytes(t) : NULL;
}

// The batch's inputs through the transform in force, the clean frames as
// targets. Jitter (training only) draws from the trainer's seeded RNG, so a
// CPU run stays reproducible; without a transform nothing changes. ids: the
// ring frames' numbers (the backend may hold them already), or NULL.
static void load_inputs(Trainer *t, const uint8_t **frames, const uint64_t *ids, int B,
                        int training) {
    t->tf_last = transform_active(&t->tf, training);
    if (!t->tf_last) {
        if (ids && t->be->load_batch_ids) t->be->load_batch_ids(t->be, frames, ids, B);
        else t->be->load_batch(t->be, frames, B);
        return;
    }
    int W = t->model.spec.width, H = t->model.spec.height;
    if (!t->tf_buf) t->tf_buf = tb_malloc((size_t)t->max_batch * frame_bytes(t));
    for (int i = 0; i < B; i++) {
        uint8_t *dst = t->tf_buf + (size_t)i * frame_bytes(t);
        transform_apply(&t->tf, dst, frames[i], W, H, training ? &t->rng : NULL);
        t->tf_in[i] = dst;
    }
    t->be->load_batch(t->be, t->tf_in, B);
    t->be->load_targets(t->be, frames, B);
}

// The batch: newest first, then `memory` frames drawn (with replacement) from
// the older frames in the ring, at most ring_limit back.
static int load_batch(Trainer *t, int memory, int training) {
    const uint8_t **frames = t->batch;
    int older = (t->ring_len < t->ring_limit ? t->ring_len : t->ring_limit) - 1;
    int B = 1 + (older > 0 ? memory : 0);
    if (B > t->max_batch) B = t->max_batch;
    frames[0] = trainer_newest(t);
    t->batch_ids[0] = t->ring_ids[t->ring_head];
    for (int i = 1; i < B; i++) {
        int back = 1 + (int)(tb_rng_u32(&t->rng) % (uint32_t)older);
        int idx = (t->ring_head - back + t->ring_cap) % t->ring_cap;
        frames[i] = t->ring + (size_t)idx * frame_bytes(t);
        t->batch_ids[i] = t->ring_ids[idx];
    }
    load_inputs(t, frames, t->batch_ids, B, training);
    t->last_batch = B;
    return B;
}

int trainer_slots_free(const Trainer *t) { return TB_STATS_RING - t->slot_next; }

// One optimizer step on the batch already loaded (B frames).
static int step_loaded(Trainer *t, int B) {
    t->hyper.t = (int)(t->step - t->opt_t0 + 1);
    int slot = t->slot_next++;
    t->be->train_step(t->be, B, &t->hyper, slot);
    t->step++;
    return slot;
}

int trainer_train_batch(Trainer *t, const uint8_t *const *frames, int B) {
    CHECK(B >= 1 && B <= t->max_batch, "batch of %d (1 to %d)", B, t->max_batch);
    CHECK(trainer_slots_free(t) >= 1, "no stats slot free");
    for (int i = 0; i < B; i++) t->batch[i] = frames[i];
    load_inputs(t, t->batch, NULL, B, 1);
    t->last_batch = B;
    return step_loaded(t, B);
}

int trainer_train(Trainer *t, int K, int memory) {
    CHECK(t->ring_len > 0, "train before the first frame");
    CHECK(K <= trainer_slots_free(t), "%d steps but %d stats slots free", K, trainer_slots_free(t));
    if (K <= 0) {
        int B = load_batch(t, 0, 0);
        t->be->forward(t->be, B);
        return -1;
    }
    int slot = -1;
    for (int k = 0; k < K; k++) {
        // A new draw of replayed frames every step; the newest stays in each batch.
        int B = load_batch(t, memory, 1);
        slot = step_loaded(t, B);
        if (t->inject_nan_step > 0 && t->step >= t->inject_nan_step) {
            // Test hook (see inject_nan_step): one NaN into the first weight.
            float *p = tb_malloc(t->model.n_params * sizeof(float));
            t->be->get_params(t->be, p);
            p[0] = NAN;
            t->be->set_params(t->be, p);
            free(p);
            tb_log("TABULA_INJECT_NAN_AT_STEP: wrote a NaN into the weights after step %ld", t->step);
            t->inject_nan_step = 0;
        }
    }
    return slot;
}

int trainer_read_stats(Trainer *t, StepStats *out) {
    int n = t->slot_next;
    if (n) t->be->read_stats(t->be, out, n);
    t->slot_next = 0;
    return n;
}

void trainer_output(Trainer *t, uint8_t *rgb) { t->be->get_output(t->be, 0, rgb); }

int trainer_output_recent(Trainer *t, uint8_t *rgb) {
    if (t->be->output_recent) return t->be->output_recent(t->be, rgb);
    trainer_output(t, rgb);
    return 1;
}

const uint8_t *trainer_input(const Trainer *t) {
    if (!t->last_batch) return NULL;
    return t->tf_last ? t->tf_buf : t->batch[0];
}

void trainer_set_bottleneck(Trainer *t, int keep, float noise, int freeze) {
    int C = model_bottleneck_channels(&t->model);
    if (keep <= 0 || keep > C) keep = 0;  // 0: all
    if (!(noise > 0)) noise = 0;
    freeze = freeze != 0;
    if (t->bn_mask && keep == t->bn_keep && noise == t->bn_noise && freeze == t->bn_freeze) return;
    if (!t->bn_mask) t->bn_mask = tb_malloc((size_t)C * sizeof(float));
    bottleneck_mask_keep(t->bn_mask, C, keep);
    t->be->bottleneck(t->be, t->bn_mask, noise, freeze);
    t->bn_keep = keep, t->bn_noise = noise, t->bn_freeze = freeze;
}

int trainer_slot_full(const Trainer *t, int i) { return i >= 0 && i <= TB_SLOTS && t->slots[i].full; }

// A slot the operator can name (1..TB_SLOTS; 0 is internal scratch): 0, or -1.
static int slot_check(const Trainer *t, int i, int need_full, TbErr *err) {
    if (i < 0 || i > TB_SLOTS) return tb_fail(err, "slot %d: slots are 1 to %d", i, TB_SLOTS);
    if (need_full && !t->slots[i].full) return tb_fail(err, "slot %d is empty", i);
    return 0;
}

int trainer_slot_save(Trainer *t, int i, TbErr *err) {
    if (slot_check(t, i, 0, err) || t->be->slot_save(t->be, i, err)) return -1;
    TrainerSlot *s = &t->slots[i];
    s->full = 1;
    s->optimizer = t->hyper.optimizer;
    s->adam_t = t->step - t->opt_t0;
    s->step = t->step;
    return 0;
}

int trainer_slot_recall(Trainer *t, int i, TbErr *err) {
    if (slot_check(t, i, 1, err)) return -1;
    const TrainerSlot *s = &t->slots[i];
    t->be->slot_recall(t->be, i);
    if (s->optimizer == t->hyper.optimizer) {
        t->opt_t0 = t->step - s->adam_t;  // Adam's step count as it was
    } else {
        t->be->reset_opt_state(t->be);    // as trainer_set_optimizer does
        t->opt_t0 = t->step;
    }
    return 0;
}

int trainer_slot_blend(Trainer *t, int i, float a, TbErr *err) {
    if (slot_check(t, i, 1, err)) return -1;
    if (!(a > 0)) return 0;
    if (a > 1) a = 1;
    t->be->slot_blend(t->be, i, a, t->slots[i].optimizer == t->hyper.optimizer);
    return 0;
}
