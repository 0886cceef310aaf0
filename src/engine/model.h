// model.h: the autoencoder as plain data. Layers hold shapes and offsets into
// one parameter block and one activation block; backends walk this list.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TB_MAX_LAYERS 16
#define TB_MAX_NAME 16

typedef enum { LAYER_CONV = 0, LAYER_CONVT = 1 } LayerKind;

typedef struct {
    LayerKind kind;
    int act;  // ACT_* from ops.h
    int cin, cout, k, stride, pad;
    int hin, win, hout, wout;
    size_t w_off, w_n;  // weight offset/count in the parameter block (floats)
    size_t b_off, b_n;  // bias offset/count
    char name[TB_MAX_NAME];  // "enc.0", "dec.3": safetensors prefix
} Layer;

// Architecture description, read from the config ([model] section).
typedef struct {
    int width, height;       // training size, multiples of 2^n_enc
    int n_enc;               // encoder layers (decoder mirrors them)
    int channels[TB_MAX_LAYERS / 2];  // encoder output channels, e.g. 32,64,128,256
    int kernel, stride, pad; // 4, 2, 1
    float slope;             // LeakyReLU negative slope, 0.2
} ModelSpec;

typedef struct {
    ModelSpec spec;
    int n_layers;
    Layer layers[TB_MAX_LAYERS];
    size_t n_params;  // floats in one copy of the parameters
    // Activation i (i = 0: input image, i = l+1: output of layer l), per sample:
    // act_n[i] floats at act_off[i]. For a batch of B the block is B*act_total
    // floats and activation i starts at B*act_off[i] (NCHW inside).
    size_t act_off[TB_MAX_LAYERS + 1];
    size_t act_n[TB_MAX_LAYERS + 1];
    size_t act_total;
} Model;

// The default network "tabula-ae-v1" (docs/ARCHITECTURE.md, "The network") at w x h.
ModelSpec model_spec_default(int width, int height);
// Build the layer list. Fails (bad input) if sizes are not multiples of 2^n_enc etc.
int model_build(Model *m, const ModelSpec *spec, TbErr *err);
// Same architecture at another training size (convs are size-agnostic).
int model_resize(Model *m, int width, int height, TbErr *err);
// "tabula-ae-v1:4:32,64,128,256:k4s2p1:leaky0.2" style one-line description.
void model_arch_string(const Model *m, char *buf, size_t n);
// Parse the same string back into a spec (width/height untouched).
int model_arch_parse(ModelSpec *spec, const char *arch, TbErr *err);
// He (Kaiming) normal init for LeakyReLU(slope), fan_in; biases 0.
void model_init_params(const Model *m, float *params, uint64_t seed);
// Per-layer table: shapes, parameters, FLOPs per training step (batch 1).
void model_print_summary(const Model *m, FILE *f);
// Host memory a backend needs for this network at batch max_batch (parameter
// block with gradients and optimizer state, activations and their gradients,
// the largest im2col scratch, load/save copies, the bottleneck control's
// buffers, decode's scratch and the atlas's copy of one sample's activations),
// in bytes, computed in 64 bits.
uint64_t model_host_bytes(const Model *m, int max_batch);
// The bottleneck: activation index of the encoder's last output (spec.n_enc),
// its channels, and where the decoder's parameters start in the block (the
// encoder's come first: a frozen encoder leaves [0, model_decoder_off)).
int model_bottleneck_act(const Model *m);
int model_bottleneck_channels(const Model *m);
size_t model_decoder_off(const Model *m);
// FLOPs of one forward pass for one sample (multiply-add = 2).
double model_forward_flops(const Model *m);

#ifdef __cplusplus
}
#endif
