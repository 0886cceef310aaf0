// backend_cpu.c: the CPU backend. Walks the model's layer list with the ops of
// ops.h over one parameter block (params | grads | momentum | adam v) and one
// activation block (plus one of the same size for activation gradients).
#include <string.h>

#include "backend.h"
#include "ops.h"

typedef struct {
    float *params, *grads, *m, *v;  // m: SGD momentum buffer or Adam first moment
    float *acts, *dacts;            // max_batch * act_total each
    int batch;                      // B of the last load_batch/step
    int own_target;                 // 1: load_targets since load_batch (target in dacts[0])
    StepStats stats[TB_STATS_RING];
    float *slots[TB_SLOTS + 1];     // params | m | v each (3n floats), NULL until saved
    int blk;                        // oneDNN with blocked activations between layers
    int wblk[TB_MAX_LAYERS];        // layer l's weights (grads, m, v) in oneDNN's layout
    // The bottleneck control (backend.h): the op's output (the decoder's input
    // while it is on), its per-channel mask, the held code, the pass counter of
    // the noise draws, and the batch of the last forward pass.
    float *bn, *bn_mask, *bn_held;
    float bn_noise;
    int bn_on, bn_freeze, fwd_batch;
    uint64_t bn_pass;
    float *dec;                     // decode's own activations (one sample), NULL until used
} CpuCtx;

static float *act_ptr(const Backend *b, float *base, int i, int B) {
    return base + (size_t)B * b->model->act_off[i];
}

// On the oneDNN path the activations between layers whose channels are a
// multiple of 16 stay in oneDNN's blocked layout nChw16c (the same size as
// NCHW), so that only the network's edges, the image and the output, are
// reordered. The blocks of m->acts are then opaque to everything but these ops.
static int act_blocked(const Backend *b, int i) {
    const Model *m = b->model;
    if (!((CpuCtx *)b->ctx)->blk || i == 0 || i == m->n_layers) return 0;
    return m->layers[i - 1].cout % 16 == 0;
}

static int layer_blk(const Backend *b, int l) {
    return (act_blocked(b, l) ? CONV_BLK_X : 0) | (act_blocked(b, l + 1) ? CONV_BLK_Y : 0) |
           (((CpuCtx *)b->ctx)->wblk[l] ? CONV_BLK_W : 0);
}

// Likewise the weights, where oneDNN's layout for them has their size: the
// block (params, grads, m, v) holds them so, which the optimizer does not mind
// (it works element by element), and they are converted only where they leave
// or enter the backend (get/set of params and optimizer state), not per step.
static void weights_convert(Backend *b, float *dst, const float *src, int to_dnnl) {
    const Model *m = b->model;
    memcpy(dst, src, m->n_params * sizeof(float));
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        if (!((CpuCtx *)b->ctx)->wblk[l]) continue;
        CHECK(!conv_dnnl_weights(L->kind != LAYER_CONV, layer_blk(b, l) & ~CONV_BLK_W, to_dnnl,
                                 dst + L->w_off, src + L->w_off, L->cin, L->hin, L->win, L->cout,
                                 L->k, L->stride, L->pad),
              "oneDNN weights of layer %d", l);
    }
}

static void weights_layout_choose(Backend *b) {
    const Model *m = b->model;
    CpuCtx *c = b->ctx;
    for (int l = 0; l < m->n_layers && c->blk; l++) {
        const Layer *L = &m->layers[l];
        c->wblk[l] = !conv_dnnl_weights(L->kind != LAYER_CONV, layer_blk(b, l), 1, NULL, NULL,
                                        L->cin, L->hin, L->win, L->cout, L->k, L->stride, L->pad);
    }
}

// Whether oneDNN is in force and runs every layer with blocked activations.
static int blocked_usable(Backend *b) {
    const Model *m = b->model;
    if (conv_impl() != CONV_IMPL_DNNL) return 0;
    ((CpuCtx *)b->ctx)->blk = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        if (conv_dnnl_ready(L->kind != LAYER_CONV, layer_blk(b, l), 1, L->cin, L->hin, L->win,
                            L->cout, L->k, L->stride, L->pad))
            return 0;
    }
    return 1;
}

// The convolution, then bias + activation. On oneDNN the Conv2d layers have
// them inside the primitive (its JIT kernel applies them as it stores); oneDNN
// 2.6 adds a deconvolution's bias and post-ops in scalar loops afterwards
// (2-4x slower than bias_act), so the decoder keeps the separate pass, as does
// a layer whose fusion oneDNN refuses.
static void conv_fwd(Backend *b, const Layer *L, int l, float *y, const float *x, const float *w,
                     const float *bias, int B) {
    int T = L->kind != LAYER_CONV, blk = layer_blk(b, l);
    float slope = b->model->spec.slope;
    if (((CpuCtx *)b->ctx)->blk && !T &&
        !conv_dnnl_forward_act(0, blk, y, x, w, bias, L->act, slope, B, L->cin, L->hin, L->win,
                               L->cout, L->k, L->stride, L->pad))
        return;
    if (((CpuCtx *)b->ctx)->blk)
        CHECK(!conv_dnnl_forward(T, blk, y, x, w, B, L->cin, L->hin, L->win, L->cout, L->k,
                                 L->stride, L->pad),
              "oneDNN refused layer %d at batch %d", l, B);
    else if (!T)
        conv2d_forward(y, x, w, B, L->cin, L->hin, L->win, L->cout, L->k, L->stride, L->pad);
    else
        convt2d_forward(y, x, w, B, L->cin, L->hin, L->win, L->cout, L->k, L->stride, L->pad);
    (blk & CONV_BLK_Y ? bias_act_forward_c16 : bias_act_forward)(y, bias, B, L->cout,
                                                                 L->hout * L->wout, L->act, slope);
}

static void conv_bwd(Backend *b, const Layer *L, int l, float *dx, float *dw, const float *d,
                     const float *x, const float *w, int B) {
    int T = L->kind != LAYER_CONV;
    if (((CpuCtx *)b->ctx)->blk) {
        CHECK(!conv_dnnl_backward(T, layer_blk(b, l), dx, dw, d, x, w, B, L->cin, L->hin, L->win,
                                  L->cout, L->k, L->stride, L->pad),
              "oneDNN refused layer %d at batch %d", l, B);
    } else if (!T) {
        conv2d_backward(dx, dw, d, x, w, B, L->cin, L->hin, L->win, L->cout, L->k, L->stride,
                        L->pad);
    } else {
        convt2d_backward(dx, dw, d, x, w, B, L->cin, L->hin, L->win, L->cout, L->k, L->stride,
                         L->pad);
    }
}

static void cpu_destroy(Backend *b) {
    CpuCtx *c = b->ctx;
    free(c->params);  // one allocation for params | grads | m | v
    free(c->acts);
    free(c->dacts);
    free(c->bn);
    free(c->bn_mask);
    free(c->bn_held);
    free(c->dec);
    for (int i = 0; i <= TB_SLOTS; i++) free(c->slots[i]);
    free(c);
    free(b);
}

static void cpu_set_params(Backend *b, const float *p) {
    CpuCtx *c = b->ctx;
    weights_convert(b, c->params, p, 1);
}

static void cpu_get_params(Backend *b, float *p) {
    CpuCtx *c = b->ctx;
    weights_convert(b, p, c->params, 0);
}

static void cpu_set_opt_state(Backend *b, const float *s, int optimizer) {
    CpuCtx *c = b->ctx;
    size_t n = b->model->n_params;
    weights_convert(b, c->m, s, 1);
    if (optimizer == OPT_ADAM) weights_convert(b, c->v, s + n, 1);
}

static void cpu_get_opt_state(Backend *b, float *s, int optimizer) {
    CpuCtx *c = b->ctx;
    size_t n = b->model->n_params;
    weights_convert(b, s, c->m, 0);
    if (optimizer == OPT_ADAM) weights_convert(b, s + n, c->v, 0);
}

static void cpu_reset_opt_state(Backend *b) {
    CpuCtx *c = b->ctx;
    size_t n = b->model->n_params;
    memset(c->m, 0, 2 * n * sizeof(float));  // m and v are adjacent
}

static void cpu_load_batch(Backend *b, const uint8_t *const *frames, int B) {
    CpuCtx *c = b->ctx;
    CHECK(B >= 1 && B <= b->max_batch, "batch %d outside 1..%d", B, b->max_batch);
    const ModelSpec *s = &b->model->spec;
    float *x = act_ptr(b, c->acts, 0, B);
    for (int i = 0; i < B; i++)
        frame_to_tensor(x + (size_t)i * b->model->act_n[0], frames[i], s->height, s->width);
    c->batch = B;
    c->own_target = 0;
}

// The frames are read where they are: the ids change nothing here.
static void cpu_load_batch_ids(Backend *b, const uint8_t *const *frames, const uint64_t *ids, int B) {
    (void)ids;
    cpu_load_batch(b, frames, B);
}

static void cpu_load_targets(Backend *b, const uint8_t *const *frames, int B) {
    CpuCtx *c = b->ctx;
    CHECK(B == c->batch, "targets for %d samples, %d loaded", B, c->batch);
    const ModelSpec *s = &b->model->spec;
    float *t = act_ptr(b, c->dacts, 0, B);
    for (int i = 0; i < B; i++)
        frame_to_tensor(t + (size_t)i * b->model->act_n[0], frames[i], s->height, s->width);
    c->own_target = 1;
}

// Layer l's input: the bottleneck op's output for the decoder's first layer
// while the op is on, else the activation before it.
static const float *layer_in(Backend *b, int l, int B) {
    CpuCtx *c = b->ctx;
    if (c->bn_on && l == model_bottleneck_act(b->model)) return c->bn;
    return act_ptr(b, c->acts, l, B);
}

// The op on the encoder's output (frozen: on the held code, copied into every
// sample, the encoder having not run). Each pass draws new noise.
static void bottleneck_fwd(Backend *b, int B) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    int nb = model_bottleneck_act(m), C = model_bottleneck_channels(m);
    size_t per = m->act_n[nb];
    float *x = act_ptr(b, c->acts, nb, B);
    if (c->bn_freeze)
        for (int i = 0; i < B; i++) memcpy(x + (size_t)i * per, c->bn_held, per * sizeof(float));
    bottleneck_forward(c->bn, x, c->bn_mask, B, C, (int)(per / C), c->bn_noise, c->bn_pass++,
                       act_blocked(b, nb));
}

static void cpu_forward_impl(Backend *b, int B) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    int nb = model_bottleneck_act(m);
    for (int l = c->bn_freeze ? nb : 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        if (c->bn_on && l == nb) bottleneck_fwd(b, B);
        const float *x = layer_in(b, l, B);
        float *y = act_ptr(b, c->acts, l + 1, B);
        conv_fwd(b, L, l, y, x, c->params + L->w_off, c->params + L->b_off, B);
    }
    c->fwd_batch = B;
}

static void cpu_forward(Backend *b, int B) {
    CHECK(B == ((CpuCtx *)b->ctx)->batch, "forward on %d samples, %d loaded", B,
          ((CpuCtx *)b->ctx)->batch);
    cpu_forward_impl(b, B);
}

static void cpu_train_step(Backend *b, int B, const Hyper *h, int slot) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    CHECK(B == c->batch, "step on %d samples, %d loaded", B, c->batch);
    CHECK(slot >= 0 && slot < TB_STATS_RING, "stats slot %d", slot);
    CHECK(h->loss == LOSS_MSE || h->loss == LOSS_L1, "loss %d", h->loss);
    int nl = m->n_layers;
    cpu_forward_impl(b, B);

    // Loss (h->loss: MSE or L1) against the input itself, or the clean frames
    // of a transformed input; its gradient seeds the backward pass.
    float *out = act_ptr(b, c->acts, nl, B);
    float *dout = act_ptr(b, c->dacts, nl, B);
    const float *target = act_ptr(b, c->own_target ? c->dacts : c->acts, 0, B);
    size_t nout = (size_t)B * m->act_n[nl];
    float loss = h->loss == LOSS_L1 ? l1_forward_backward(dout, out, target, nout)
                                    : mse_forward_backward(dout, out, target, nout);

    // Frozen, the backward pass ends at the decoder's first layer (the encoder
    // did not run and learns nothing).
    int nb = model_bottleneck_act(m), l_end = c->bn_freeze ? nb : 0;
    for (int l = nl - 1; l >= l_end; l--) {
        const Layer *L = &m->layers[l];
        float *d = act_ptr(b, c->dacts, l + 1, B);
        const float *y = act_ptr(b, c->acts, l + 1, B);
        const float *x = layer_in(b, l, B);
        if (c->bn_on && l + 1 == nb) {  // back through the op: masked channels get none
            int C = model_bottleneck_channels(m);
            bottleneck_backward(d, d, c->bn_mask, B, C, (int)(m->act_n[nb] / C), act_blocked(b, nb));
        }
        // No gradient for the image, nor for the held code.
        float *dx = l > l_end ? act_ptr(b, c->dacts, l, B) : NULL;
        (act_blocked(b, l + 1) ? bias_act_backward_c16 : bias_act_backward)(
            d, c->grads + L->b_off, y, B, L->cout, L->hout * L->wout, L->act, m->spec.slope);
        conv_bwd(b, L, l, dx, c->grads + L->w_off, d, x, c->params + L->w_off, B);
    }

    // Frozen, only the decoder's block [off, n) is measured, clipped and updated.
    size_t off = c->bn_freeze ? model_decoder_off(m) : 0, n = m->n_params - off;
    float norm = grad_norm(c->grads + off, n);
    float scale = clip_scale(norm, h->clip);
    if (h->optimizer == OPT_ADAM)
        adam_update(c->params + off, c->m + off, c->v + off, c->grads + off, n, scale, h->lr,
                    h->beta1, h->beta2, h->eps, h->weight_decay, h->t);
    else
        sgd_update(c->params + off, c->m + off, c->grads + off, n, scale, h->lr, h->momentum,
                   h->weight_decay);
    c->stats[slot].loss = loss;
    c->stats[slot].grad_norm = norm;
}

static void cpu_read_stats(Backend *b, StepStats *out, int n) {
    CpuCtx *c = b->ctx;
    CHECK(n >= 0 && n <= TB_STATS_RING, "read_stats n=%d", n);
    memcpy(out, c->stats, (size_t)n * sizeof *out);
}

static void cpu_get_output(Backend *b, int i, uint8_t *rgb) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    CHECK(i >= 0 && i < c->batch, "output %d of a batch of %d", i, c->batch);
    const float *y = act_ptr(b, c->acts, m->n_layers, c->batch) + (size_t)i * m->act_n[m->n_layers];
    tensor_to_frame(rgb, y, m->spec.height, m->spec.width);
}

// Slots: params (n floats), then m and v (adjacent in the block, 2n floats).
static int cpu_slot_save(Backend *b, int i, TbErr *err) {
    CpuCtx *c = b->ctx;
    CHECK(i >= 0 && i <= TB_SLOTS, "slot %d", i);
    size_t n = b->model->n_params;
    if (!c->slots[i]) c->slots[i] = tb_malloc(3 * n * sizeof(float));
    memcpy(c->slots[i], c->params, n * sizeof(float));
    memcpy(c->slots[i] + n, c->m, 2 * n * sizeof(float));
    return 0;
}

static void cpu_slot_recall(Backend *b, int i) {
    CpuCtx *c = b->ctx;
    CHECK(i >= 0 && i <= TB_SLOTS && c->slots[i], "recall of empty slot %d", i);
    size_t n = b->model->n_params;
    memcpy(c->params, c->slots[i], n * sizeof(float));
    memcpy(c->m, c->slots[i] + n, 2 * n * sizeof(float));
}

static void cpu_slot_blend(Backend *b, int i, float a, int with_state) {
    CpuCtx *c = b->ctx;
    CHECK(i >= 0 && i <= TB_SLOTS && c->slots[i], "blend with empty slot %d", i);
    size_t n = b->model->n_params;
    lerp(c->params, c->slots[i], n, a);
    if (with_state) lerp(c->m, c->slots[i] + n, 2 * n, a);
}

static void cpu_bottleneck(Backend *b, const float *mask, float noise, int freeze) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    int nb = model_bottleneck_act(m), C = model_bottleneck_channels(m), all = 1;
    for (int i = 0; i < C; i++) {
        c->bn_mask[i] = mask ? mask[i] : 1.0f;
        all &= c->bn_mask[i] == 1.0f;
    }
    if (freeze && !c->bn_freeze) {  // hold the newest frame's code of the last pass
        size_t per = m->act_n[nb];
        if (c->fwd_batch) memcpy(c->bn_held, act_ptr(b, c->acts, nb, c->fwd_batch), per * sizeof(float));
        else memset(c->bn_held, 0, per * sizeof(float));
    }
    c->bn_noise = noise > 0 ? noise : 0;
    c->bn_freeze = freeze != 0;
    c->bn_on = !all || c->bn_noise > 0 || c->bn_freeze;
}

// ---------------------------------------------------------------- looking inside

// One sample's activation between NCHW and nChw16c (act.c: channel c of pixel p
// at ((c/16)*HW + p)*16 + c%16).
// The blocked side is walked in order (16 channels of one pixel together).
static void c16_to_nchw(float *dst, const float *src, int C, int HW) {
    for (int cb = 0; cb < C / 16; cb++)
        for (int p = 0; p < HW; p++)
            for (int j = 0; j < 16; j++) dst[(size_t)(cb * 16 + j) * HW + p] = src[((size_t)cb * HW + p) * 16 + j];
}

static void nchw_to_c16(float *dst, const float *src, int C, int HW) {
    for (int cb = 0; cb < C / 16; cb++)
        for (int p = 0; p < HW; p++)
            for (int j = 0; j < 16; j++) dst[((size_t)cb * HW + p) * 16 + j] = src[(size_t)(cb * 16 + j) * HW + p];
}

static int act_channels(const Model *m, int i) { return i == 0 ? 3 : m->layers[i - 1].cout; }

static void cpu_get_activation(Backend *b, int i, float *out) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    CHECK(i >= 0 && i <= m->n_layers && c->batch > 0, "activation %d (batch %d)", i, c->batch);
    const float *x = act_ptr(b, c->acts, i, c->batch);  // sample 0 comes first
    int C = act_channels(m, i);
    if (act_blocked(b, i)) c16_to_nchw(out, x, C, (int)(m->act_n[i] / C));
    else memcpy(out, x, m->act_n[i] * sizeof(float));
}

// The decoder's layers at batch 1 on the scratch block, the code put in at the
// bottleneck in the layout the layers keep there.
static void cpu_decode(Backend *b, const float *code, uint8_t *rgb) {
    CpuCtx *c = b->ctx;
    const Model *m = b->model;
    int nb = model_bottleneck_act(m), C = model_bottleneck_channels(m);
    if (!c->dec) c->dec = tb_calloc(m->act_total, sizeof(float));
    float *x = act_ptr(b, c->dec, nb, 1);
    if (act_blocked(b, nb)) nchw_to_c16(x, code, C, (int)(m->act_n[nb] / C));
    else memcpy(x, code, m->act_n[nb] * sizeof(float));
    for (int l = nb; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        float *y = act_ptr(b, c->dec, l + 1, 1);
        conv_fwd(b, L, l, y, act_ptr(b, c->dec, l, 1), c->params + L->w_off, c->params + L->b_off, 1);
    }
    tensor_to_frame(rgb, act_ptr(b, c->dec, m->n_layers, 1), m->spec.height, m->spec.width);
}

// ---------------------------------------------------------------- coupling

// Whether a and b hold their weights in the same layout, element for element:
// the same layers (shapes), and per layer the same choice of NCHW or oneDNN's
// forward layout, which for the same shape and flags is the same permutation.
static int same_layout(const Backend *a, const Backend *b) {
    const Model *ma = a->model, *mb = b->model;
    const CpuCtx *ca = a->ctx, *cb = b->ctx;
    if (ma->n_params != mb->n_params || ma->n_layers != mb->n_layers || ca->blk != cb->blk) return 0;
    for (int l = 0; l < ma->n_layers; l++) {
        const Layer *x = &ma->layers[l], *y = &mb->layers[l];
        if (x->kind != y->kind || x->cin != y->cin || x->cout != y->cout || x->hin != y->hin ||
            x->win != y->win || x->k != y->k || x->stride != y->stride || x->pad != y->pad ||
            x->w_off != y->w_off || x->b_off != y->b_off || ca->wblk[l] != cb->wblk[l])
            return 0;
    }
    return 1;
}

// couple() on the blocks themselves. The pull is element by element, so a
// layout that permutes each layer's weights alike in every net gives the same
// bits as coupling the PyTorch-layout copies: no conversion, no copy.
static int cpu_couple(Backend *const *bs, int k, float c) {
    float *w[TB_COUPLE_MAX];
    for (int j = 0; j < k; j++) {
        if (!same_layout(bs[0], bs[j])) return -1;
        w[j] = ((CpuCtx *)bs[j]->ctx)->params;
    }
    couple(w, k, bs[0]->model->n_params, c);
    return 0;
}

Backend *backend_cpu_create(const Model *m, int max_batch, TbErr *err) {
    if (max_batch < 1) {
        tb_fail(err, "cpu backend: batch %d < 1", max_batch);
        return NULL;
    }
    Backend *b = tb_calloc(1, sizeof *b);
    CpuCtx *c = tb_calloc(1, sizeof *c);
    size_t n = m->n_params;
    c->params = tb_calloc(4 * n, sizeof(float));
    c->grads = c->params + n;
    c->m = c->params + 2 * n;
    c->v = c->params + 3 * n;
    c->acts = tb_calloc((size_t)max_batch * m->act_total, sizeof(float));
    c->dacts = tb_calloc((size_t)max_batch * m->act_total, sizeof(float));
    c->batch = 0;
    int nb = model_bottleneck_act(m), C = model_bottleneck_channels(m);
    c->bn = tb_calloc((size_t)max_batch * m->act_n[nb], sizeof(float));
    c->bn_held = tb_calloc(m->act_n[nb], sizeof(float));
    c->bn_mask = tb_calloc((size_t)C, sizeof(float));
    bottleneck_mask_keep(c->bn_mask, C, 0);
    b->name = "cpu";
    b->ctx = c;
    b->model = m;
    b->max_batch = max_batch;
    b->device = -1;
    b->destroy = cpu_destroy;
    b->set_params = cpu_set_params;
    b->get_params = cpu_get_params;
    b->set_opt_state = cpu_set_opt_state;
    b->get_opt_state = cpu_get_opt_state;
    b->reset_opt_state = cpu_reset_opt_state;
    b->load_batch = cpu_load_batch;
    b->load_batch_ids = cpu_load_batch_ids;
    b->load_targets = cpu_load_targets;
    b->train_step = cpu_train_step;
    b->forward = cpu_forward;
    b->read_stats = cpu_read_stats;
    b->get_output = cpu_get_output;
    b->slot_save = cpu_slot_save;
    b->slot_recall = cpu_slot_recall;
    b->slot_blend = cpu_slot_blend;
    b->bottleneck = cpu_bottleneck;
    b->mem_info = NULL;  // host memory: the health report reads the process's own
    b->get_activation = cpu_get_activation;
    b->decode = cpu_decode;
    b->couple = cpu_couple;
    c->blk = blocked_usable(b);
    weights_layout_choose(b);
    tb_debug("cpu backend: convolutions through %s%s", conv_impl_name(),
             c->blk ? ", blocked layouts between layers" : "");
    return b;
}
