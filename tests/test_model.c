// test_model.c: why it exists: the model's layer table is what every backend,
// the checkpoint format and the PyTorch loader index into. If the shapes,
// parameter count, offsets or architecture string drifted, saved weights would
// no longer load (here or in PyTorch), sizes that cannot work would be
// accepted, and a badly scaled initialisation would keep a fresh network from
// learning at all.
#include <math.h>
#include <string.h>

#include "model.h"
#include "ops.h"
#include "test.h"

// The default network at 256x256, built once for the cases that read it.
static Model *default_model(void) {
    static Model m;
    static int built;
    if (!built) {
        built = 1;
        TbErr err = {{0}};
        ModelSpec s = model_spec_default(256, 256);
        EXPECT(model_build(&m, &s, &err) == 0, "%s", err.msg);
    }
    return &m;
}

// Parameters by hand: Conv2d c_in*c_out*16 + c_out, ConvT the same product.
TEST_IMPL(default_net_has_8_layers_and_1380035_params) {
    Model *m = default_model();
    EXPECT(m->n_layers == 8, "8 layers, got %d", m->n_layers);
    size_t want = (3 * 32 * 16 + 32) + (32 * 64 * 16 + 64) + (64 * 128 * 16 + 128) +
                  (128 * 256 * 16 + 256) + (256 * 128 * 16 + 128) + (128 * 64 * 16 + 64) +
                  (64 * 32 * 16 + 32) + (32 * 3 * 16 + 3);
    EXPECT(m->n_params == want && want == 1380035, "parameters %zu, want %zu", m->n_params, want);
}

TEST_IMPL(default_net_shapes_and_layer_names) {
    Model *m = default_model();
    EXPECT(m->layers[3].hout == 16 && m->layers[3].wout == 16 && m->layers[3].cout == 256,
           "bottleneck 256x16x16");
    EXPECT(m->layers[7].hout == 256 && m->layers[7].cout == 3 && m->layers[7].act == ACT_SIGMOID,
           "output 3x256x256 sigmoid");
    EXPECT(m->layers[4].kind == LAYER_CONVT && strcmp(m->layers[4].name, "dec.0") == 0, "dec.0 name");
    EXPECT(strcmp(m->layers[3].name, "enc.3") == 0, "enc.3 name");
}

// Offsets tile the block without gaps; activation 0 is the input image.
TEST_IMPL(param_offsets_tile_the_block) {
    Model *m = default_model();
    size_t off = 0;
    int tiled = 1;
    for (int l = 0; l < m->n_layers; l++) {
        tiled &= m->layers[l].w_off == off;
        off += m->layers[l].w_n;
        tiled &= m->layers[l].b_off == off;
        off += m->layers[l].b_n;
    }
    EXPECT(tiled && off == m->n_params, "parameter offsets tile the block");
    EXPECT(m->act_n[0] == 3 * 256 * 256 && m->act_off[1] == m->act_n[0], "activation 0 is the image");
}

// FLOPs: encoder conv l: 2*cout*hout*wout*cin*16; the decoder mirrors it.
TEST_IMPL(forward_flops_count_both_halves) {
    Model *m = default_model();
    double f = 2.0 * 16 * (32.0 * 128 * 128 * 3 + 64.0 * 64 * 64 * 32 + 128.0 * 32 * 32 * 64 + 256.0 * 16 * 16 * 128);
    EXPECT_NEAR(model_forward_flops(m), 2 * f, 1, "forward FLOPs (decoder mirrors encoder)");
}

// 16:9 works, sizes not divisible by 16 do not.
TEST_IMPL(sizes_must_be_multiples_of_16) {
    Model m;
    TbErr err = {{0}};
    ModelSpec s = model_spec_default(448, 256);
    EXPECT(model_build(&m, &s, &err) == 0, "448x256: %s", err.msg);
    s = model_spec_default(250, 256);
    EXPECT(model_build(&m, &s, &err) == -1 && strstr(err.msg, "multiples of 16"), "250x256: %s", err.msg);
    s = model_spec_default(256, 8);
    EXPECT(model_build(&m, &s, &err) == -1, "256x8 rejected");
}

TEST_IMPL(arch_string_round_trip) {
    Model m;
    TbErr err = {{0}};
    ModelSpec s = model_spec_default(64, 32);
    s.n_enc = 3;
    s.channels[0] = 8, s.channels[1] = 24, s.channels[2] = 40;
    s.slope = 0.1f;
    EXPECT(model_build(&m, &s, &err) == 0, "%s", err.msg);
    char arch[128];
    model_arch_string(&m, arch, sizeof arch);
    EXPECT(strcmp(arch, "tabula-ae-v1:8,24,40:k4s2p1:leaky0.1") == 0, "arch string %s", arch);
    ModelSpec back = model_spec_default(64, 32);
    EXPECT(model_arch_parse(&back, arch, &err) == 0 && back.n_enc == 3 && back.channels[1] == 24 &&
               fabsf(back.slope - 0.1f) < 1e-7f,
           "arch parse");
    EXPECT(model_arch_parse(&back, "resnet50", &err) == -1, "bad arch rejected");
}

// He init: std of enc.1 = sqrt(2/((1+0.2^2)*32*16)), biases zero, seeded.
TEST_IMPL(he_init_is_seeded_with_pytorch_fan_in) {
    Model m;
    TbErr err = {{0}};
    ModelSpec s = model_spec_default(256, 256);
    model_build(&m, &s, &err);
    float *p = tb_malloc(m.n_params * sizeof(float)), *q = tb_malloc(m.n_params * sizeof(float));
    model_init_params(&m, p, 7);
    model_init_params(&m, q, 7);
    EXPECT(memcmp(p, q, m.n_params * sizeof(float)) == 0, "same seed, same weights");
    model_init_params(&m, q, 8);
    EXPECT(memcmp(p, q, m.n_params * sizeof(float)) != 0, "other seed, other weights");
    const Layer *L = &m.layers[1];
    double sum = 0, sq = 0;
    for (size_t i = 0; i < L->w_n; i++) sum += p[L->w_off + i], sq += (double)p[L->w_off + i] * p[L->w_off + i];
    double mean = sum / L->w_n, sd = sqrt(sq / L->w_n - mean * mean);
    double want_sd = sqrt(2.0 / (1.04 * 32 * 16));
    EXPECT(fabs(sd - want_sd) < 0.02 * want_sd, "enc.1 std %.5f want %.5f", sd, want_sd);
    EXPECT(fabs(mean) < 0.02 * want_sd, "enc.1 mean %.5f", mean);
    const Layer *D = &m.layers[5];  // ConvT: fan_in = c_out * k * k
    sq = 0;
    for (size_t i = 0; i < D->w_n; i++) sq += (double)p[D->w_off + i] * p[D->w_off + i];
    EXPECT(fabs(sqrt(sq / D->w_n) - sqrt(2.0 / (1.04 * 64 * 16))) < 0.02 * sqrt(2.0 / (1.04 * 64 * 16)),
           "dec.1 std uses PyTorch's fan_in for ConvTranspose2d");
    int zero_bias = 1;
    for (int l = 0; l < m.n_layers; l++)
        for (size_t i = 0; i < m.layers[l].b_n; i++) zero_bias &= p[m.layers[l].b_off + i] == 0;
    EXPECT(zero_bias, "biases start at zero");
    model_print_summary(&m, stdout);
    free(p);
    free(q);
}

TEST_MAIN(TEST_ENTRY(default_net_has_8_layers_and_1380035_params),
          TEST_ENTRY(default_net_shapes_and_layer_names), TEST_ENTRY(param_offsets_tile_the_block),
          TEST_ENTRY(forward_flops_count_both_halves), TEST_ENTRY(sizes_must_be_multiples_of_16),
          TEST_ENTRY(arch_string_round_trip), TEST_ENTRY(he_init_is_seeded_with_pytorch_fan_in))
