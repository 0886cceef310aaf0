// model.c: builds the layer list of the autoencoder (docs/ARCHITECTURE.md, "The network") from a spec,
// initialises parameters, and prints the per-layer summary.
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "parse.h"

ModelSpec model_spec_default(int width, int height) {
    ModelSpec s = {0};
    s.width = width;
    s.height = height;
    s.n_enc = 4;
    int ch[4] = {32, 64, 128, 256};
    memcpy(s.channels, ch, sizeof ch);
    s.kernel = 4;
    s.stride = 2;
    s.pad = 1;
    s.slope = 0.2f;
    return s;
}

static int check_spec(const ModelSpec *s, TbErr *err) {
    if (s->n_enc < 1 || s->n_enc > TB_MAX_LAYERS / 2)
        return tb_fail(err, "model: %d encoder layers (1 to %d allowed)", s->n_enc, TB_MAX_LAYERS / 2);
    for (int i = 0; i < s->n_enc; i++)
        if (s->channels[i] < 1 || s->channels[i] > 4096)
            return tb_fail(err, "model: encoder layer %d has %d channels (1 to 4096)", i, s->channels[i]);
    // Every field is bounded before any size is derived from it: specs come from
    // files people share (a checkpoint's "arch").
    if (s->kernel < 1 || s->kernel > 15 || s->stride < 1 || s->stride > 8 || s->pad < 0 ||
        s->pad >= s->kernel)
        return tb_fail(err, "model: bad kernel/stride/pad %d/%d/%d (kernel 1 to 15, stride 1 to 8, "
                       "pad below the kernel)", s->kernel, s->stride, s->pad);
    if (!(s->slope >= 0.0f && s->slope < 1.0f))
        return tb_fail(err, "model: LeakyReLU slope %g outside [0, 1)", (double)s->slope);
    if (s->width < 1 || s->height < 1 || s->width > 8192 || s->height > 8192)
        return tb_fail(err, "training size %dx%d: 1 to 8192 each", s->width, s->height);
    int64_t mult = 1;  // at most 8^8
    for (int i = 0; i < s->n_enc; i++) mult *= s->stride;
    if (s->width < mult || s->height < mult || s->width % mult || s->height % mult)
        return tb_fail(err, "training size %dx%d: width and height must be positive multiples of %lld",
                       s->width, s->height, (long long)mult);
    return 0;
}

int model_build(Model *m, const ModelSpec *spec, TbErr *err) {
    if (check_spec(spec, err)) return -1;
    memset(m, 0, sizeof *m);
    m->spec = *spec;
    const ModelSpec *s = spec;
    int n = s->n_enc;
    int c = 3, h = s->height, w = s->width;
    size_t poff = 0, aoff = 0;
    m->act_off[0] = 0;
    m->act_n[0] = (size_t)3 * h * w;
    aoff = m->act_n[0];
    for (int l = 0; l < 2 * n; l++) {
        Layer *L = &m->layers[l];
        int enc = l < n;
        L->kind = enc ? LAYER_CONV : LAYER_CONVT;
        L->cin = c;
        L->cout = enc ? s->channels[l] : (l == 2 * n - 1 ? 3 : s->channels[2 * n - 2 - l]);
        L->k = s->kernel;
        L->stride = s->stride;
        L->pad = s->pad;
        L->hin = h;
        L->win = w;
        L->hout = enc ? conv_out(h, L->k, L->stride, L->pad) : convt_out(h, L->k, L->stride, L->pad);
        L->wout = enc ? conv_out(w, L->k, L->stride, L->pad) : convt_out(w, L->k, L->stride, L->pad);
        if (L->hout < 1 || L->wout < 1)
            return tb_fail(err, "model: layer %d output %dx%d is empty", l, L->wout, L->hout);
        L->act = (l == 2 * n - 1) ? ACT_SIGMOID : ACT_LEAKY;
        L->w_n = (size_t)L->cin * L->cout * L->k * L->k;
        L->b_n = (size_t)L->cout;
        L->w_off = poff;
        poff += L->w_n;
        L->b_off = poff;
        poff += L->b_n;
        snprintf(L->name, sizeof L->name, "%s.%d", enc ? "enc" : "dec", enc ? l : l - n);
        m->act_off[l + 1] = aoff;
        m->act_n[l + 1] = (size_t)L->cout * L->hout * L->wout;
        aoff += m->act_n[l + 1];
        c = L->cout;
        h = L->hout;
        w = L->wout;
    }
    if (h != s->height || w != s->width)
        return tb_fail(err, "model: decoder output %dx%d does not match the input %dx%d (kernel/stride/pad)",
                       w, h, s->width, s->height);
    m->n_layers = 2 * n;
    m->n_params = poff;
    m->act_total = aoff;
    return 0;
}

int model_resize(Model *m, int width, int height, TbErr *err) {
    ModelSpec s = m->spec;
    s.width = width;
    s.height = height;
    Model tmp;
    if (model_build(&tmp, &s, err)) return -1;
    *m = tmp;
    return 0;
}

void model_arch_string(const Model *m, char *buf, size_t n) {
    const ModelSpec *s = &m->spec;
    int o = snprintf(buf, n, "tabula-ae-v1:");
    for (int i = 0; i < s->n_enc && o < (int)n; i++)
        o += snprintf(buf + o, n - (size_t)o, "%s%d", i ? "," : "", s->channels[i]);
    if (o < (int)n)
        snprintf(buf + o, n - (size_t)o, ":k%ds%dp%d:leaky%g", s->kernel, s->stride, s->pad,
                 (double)s->slope);
}

// A whole number in [lo, hi] at *p, which moves past it. 0, or -1.
static int take_int(const char **p, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p || errno || v < lo || v > hi) return -1;
    *out = (int)v;
    *p = end;
    return 0;
}

// "literal" at *p, which moves past it. 0, or -1.
static int take_lit(const char **p, const char *lit) {
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0) return -1;
    *p += n;
    return 0;
}

int model_arch_parse(ModelSpec *spec, const char *arch, TbErr *err) {
    ModelSpec s = *spec;
    const char *p = arch;
    if (take_lit(&p, "tabula-ae-v1:"))
        return tb_fail(err, "unknown architecture \"%.80s\" (expected tabula-ae-v1:...)", arch);
    s.n_enc = tb_parse_int_list(p, s.channels, TB_MAX_LAYERS / 2, 1, 4096, &p);
    if (s.n_enc < 1) return tb_fail(err, "bad channel list in architecture \"%.80s\"", arch);
    // ":k4s2p1:leaky0.2", every number bounded, nothing after.
    char *end;
    if (take_lit(&p, ":k") || take_int(&p, 1, 15, &s.kernel) || take_lit(&p, "s") ||
        take_int(&p, 1, 8, &s.stride) || take_lit(&p, "p") || take_int(&p, 0, 14, &s.pad) ||
        take_lit(&p, ":leaky") || s.pad >= s.kernel)
        return tb_fail(err, "bad layer settings in architecture \"%.80s\"", arch);
    errno = 0;
    float slope = strtof(p, &end);
    if (end == p || errno || *end || !(slope >= 0.0f && slope < 1.0f))
        return tb_fail(err, "bad slope in architecture \"%.80s\"", arch);
    s.slope = slope;
    *spec = s;
    return 0;
}

void model_init_params(const Model *m, float *params, uint64_t seed) {
    // He (Kaiming) normal for LeakyReLU(a): std = sqrt(2 / ((1 + a^2) * fan_in)),
    // fan_in as PyTorch computes it from the weight's dims 1.. (C*K*K for Conv2d,
    // OC*K*K for ConvTranspose2d). Biases start at 0.
    TbRng r;
    tb_rng_seed(&r, seed);
    float a = m->spec.slope;
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        int fan_in = (L->kind == LAYER_CONV ? L->cin : L->cout) * L->k * L->k;
        float std = sqrtf(2.0f / ((1.0f + a * a) * (float)fan_in));
        for (size_t i = 0; i < L->w_n; i++) params[L->w_off + i] = std * tb_rng_normal(&r);
        for (size_t i = 0; i < L->b_n; i++) params[L->b_off + i] = 0.0f;
    }
}

static double layer_flops(const Layer *L) {
    // Multiply-adds of the conv: every output (conv) or input (convT) pixel
    // touches cin*k*k (resp. cout*k*k) weights.
    if (L->kind == LAYER_CONV)
        return 2.0 * L->cout * L->hout * L->wout * (double)L->cin * L->k * L->k;
    return 2.0 * L->cin * L->hin * L->win * (double)L->cout * L->k * L->k;
}

uint64_t model_host_bytes(const Model *m, int max_batch) {
    uint64_t scratch = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        // im2col of a conv: C*K*K rows of Ho*Wo; a transposed conv's: OC*K*K of H*W.
        uint64_t rows = (uint64_t)(L->kind == LAYER_CONV ? L->cin : L->cout) * L->k * L->k;
        uint64_t cols = L->kind == LAYER_CONV ? (uint64_t)L->hout * L->wout : (uint64_t)L->hin * L->win;
        if (rows * cols > scratch) scratch = rows * cols;
    }
    uint64_t floats = 4 * (uint64_t)m->n_params             // params | grads | m | v
                      + 2 * (uint64_t)max_batch * m->act_total  // activations, their gradients
                      + 2 * scratch                             // one scratch per thread (2 cores)
                      + 4 * (uint64_t)m->n_params               // load/save and good-weights copies
                      + (uint64_t)(max_batch + 1) * m->act_n[m->spec.n_enc]  // bottleneck op, held code
                      + 2 * (uint64_t)m->act_total;  // decode's one-sample scratch, the atlas's read-out
    return floats * sizeof(float);
}

double model_forward_flops(const Model *m) {
    double f = 0;
    for (int l = 0; l < m->n_layers; l++) f += layer_flops(&m->layers[l]);
    return f;
}

void model_print_summary(const Model *m, FILE *f) {
    char arch[128];
    model_arch_string(m, arch, sizeof arch);
    fprintf(f, "model %s at %dx%d\n", arch, m->spec.width, m->spec.height);
    fprintf(f, "  %-6s %-16s %-17s %-17s %10s %12s\n", "layer", "op", "input", "output", "params",
            "GFLOP/step");
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        char op[32], in[32], out[32];
        snprintf(op, sizeof op, "%s k%ds%dp%d", L->kind == LAYER_CONV ? "conv" : "convT", L->k,
                 L->stride, L->pad);
        snprintf(in, sizeof in, "%dx%dx%d", L->cin, L->hin, L->win);
        snprintf(out, sizeof out, "%dx%dx%d", L->cout, L->hout, L->wout);
        // A training step is forward + backward (data and weights): about 3x forward.
        fprintf(f, "  %-6s %-16s %-17s %-17s %10zu %12.3f\n", L->name, op, in, out, L->w_n + L->b_n,
                3.0 * layer_flops(L) * 1e-9);
    }
    fprintf(f, "  total: %zu parameters, %.3f GFLOP per training step (batch 1)\n", m->n_params,
            3.0 * model_forward_flops(m) * 1e-9);
}

int model_bottleneck_act(const Model *m) { return m->spec.n_enc; }

int model_bottleneck_channels(const Model *m) { return m->layers[m->spec.n_enc - 1].cout; }

size_t model_decoder_off(const Model *m) { return m->layers[m->spec.n_enc].w_off; }
