// trainer.c: frames in, gradient steps out.
#include "trainer.h"

#include <string.h>

#include "source.h"

int trainer_spec_from_settings(ModelSpec *spec, const Settings *s, TbErr *err) {
    ModelSpec m = model_spec_default(s->width, s->height);
    m.kernel = s->kernel;
    m.stride = s->stride;
    m.pad = s->pad;
    m.slope = s->slope;
    m.n_enc = 0;
    const char *p = s->channels;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 4096 || m.n_enc >= TB_MAX_LAYERS / 2)
            return tb_fail(err, "channels = \"%s\": expected up to %d comma-separated counts (1 to 4096)",
                           s->channels, TB_MAX_LAYERS / 2);
        m.channels[m.n_enc++] = (int)v;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    if (m.n_enc == 0) return tb_fail(err, "channels is empty");
    *spec = m;
    return 0;
}

Hyper trainer_hyper_from_settings(const Settings *s) {
    Hyper h = {0};
    h.optimizer = strcmp(s->optimizer, "adam") == 0 ? OPT_ADAM : OPT_SGD;
    h.lr = s->lr;
    h.momentum = s->momentum;
    h.clip = s->clip;
    h.weight_decay = s->weight_decay;
    h.beta1 = s->adam_beta1;
    h.beta2 = s->adam_beta2;
    h.eps = s->adam_eps;
    h.t = 1;
    return h;
}

int trainer_init(Trainer *t, const Settings *s, const ModelSpec *spec, TbErr *err) {
    memset(t, 0, sizeof *t);
    ModelSpec ms;
    if (spec) {
        ms = *spec;
        ms.width = s->width;
        ms.height = s->height;
    } else if (trainer_spec_from_settings(&ms, s, err)) {
        return -1;
    }
    if (model_build(&t->model, &ms, err)) return -1;
    // Room for the live "memory" control to grow without reallocating.
    t->max_batch = 16;  // 1 + the largest live "memory" (PARAM_MEMORY), no reallocation
    t->be = backend_create(s->backend, &t->model, t->max_batch, err);
    if (!t->be) return -1;
    t->hyper = trainer_hyper_from_settings(s);
    t->ring_cap = s->ring;
    t->ring_limit = s->ring;
    t->ring = tb_calloc((size_t)t->ring_cap, (size_t)ms.width * ms.height * 3);
    trainer_reset(t, (uint64_t)s->seed);
    return 0;
}

void trainer_free(Trainer *t) {
    backend_destroy(t->be);
    free(t->ring);
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
}

static size_t frame_bytes(const Trainer *t) {
    return (size_t)t->model.spec.width * t->model.spec.height * 3;
}

void trainer_push_frame(Trainer *t, const uint8_t *rgb, int w, int h) {
    t->ring_head = (t->ring_head + 1) % t->ring_cap;
    if (t->ring_len < t->ring_cap) t->ring_len++;
    uint8_t *dst = t->ring + (size_t)t->ring_head * frame_bytes(t);
    if (w == t->model.spec.width && h == t->model.spec.height)
        memcpy(dst, rgb, frame_bytes(t));
    else
        frame_fit(dst, t->model.spec.width, t->model.spec.height, rgb, w, h);
}

const uint8_t *trainer_newest(const Trainer *t) {
    return t->ring_len ? t->ring + (size_t)t->ring_head * frame_bytes(t) : NULL;
}

// The batch: newest first, then `memory` frames drawn (with replacement) from
// the older frames in the ring, at most ring_limit back.
static int load_batch(Trainer *t, int memory) {
    const uint8_t *frames[64];
    int older = (t->ring_len < t->ring_limit ? t->ring_len : t->ring_limit) - 1;
    int B = 1 + (older > 0 ? memory : 0);
    if (B > t->max_batch) B = t->max_batch;
    frames[0] = trainer_newest(t);
    for (int i = 1; i < B; i++) {
        int back = 1 + (int)(tb_rng_u32(&t->rng) % (uint32_t)older);
        int idx = (t->ring_head - back + t->ring_cap) % t->ring_cap;
        frames[i] = t->ring + (size_t)idx * frame_bytes(t);
    }
    t->be->load_batch(t->be, frames, B);
    t->last_batch = B;
    return B;
}

int trainer_slots_free(const Trainer *t) { return TB_STATS_RING - t->slot_next; }

int trainer_train(Trainer *t, int K, int memory) {
    CHECK(t->ring_len > 0, "train before the first frame");
    CHECK(K <= trainer_slots_free(t), "%d steps but %d stats slots free", K, trainer_slots_free(t));
    if (K <= 0) {
        int B = load_batch(t, 0);
        t->be->forward(t->be, B);
        return -1;
    }
    int slot = -1;
    for (int k = 0; k < K; k++) {
        // A new draw of replayed frames every step; the newest stays in each batch.
        int B = load_batch(t, memory);
        t->hyper.t = (int)(t->step + 1);
        slot = t->slot_next++;
        t->be->train_step(t->be, B, &t->hyper, slot);
        t->step++;
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
