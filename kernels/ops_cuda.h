// ops_cuda.h: the CUDA twins of ops.h. The twin of op `x` is `x_cuda`, with the
// same arguments as the CPU op plus a stream (last); all pointers are device
// pointers unless said otherwise. Like the CPU ops, backward ops OVERWRITE
// dw/db/dx (dx may be NULL: no input gradient).
//
// Differences forced by the device, so that a training step never waits for it:
//   - reductions (MSE and L1 losses, gradient norm) land in device scalars
//     instead of being returned, and take a scratch of TB_REDUCE_BLOCKS doubles
//     (mse/l1_forward_backward_cuda: loss after dy; grad_norm_cuda: norm first);
//   - the optimizer reads the gradient norm and its hyperparameters (StepParams)
//     from device memory, so a captured CUDA graph replays with current values
//     (sgd_update_cuda / adam_update_cuda take norm and p instead of scale and
//     the scalars; clip_scale has no twin: the update kernels apply it);
//   - convolutions run through cuDNN with a ConvPlan (descriptors and algorithms
//     chosen once per shape, so the shapes come in the plan) and one shared
//     workspace, plus the cuDNN handle;
//   - bias_act_backward_cuda takes a scratch for its two-stage, atomic-free
//     bias-gradient sum, finished by the block that finishes last (a device
//     counter, `done`, zero before and after: last_block_done, cuda_common.h);
//   - a step fuses more than the CPU ops: out_act_loss_cuda (the output
//     layer's bias + activation, loss and gradient), grad_norm_stats_cuda
//     (norm and stats record), frames_gather_cuda (the batch from the frame
//     store by slots in device memory);
//   - frame_to_tensor_cuda converts B frames in one launch (the CPU op does one
//     sample, and the CPU backend loops over them).
// Layout: the activations (and their gradients, the gathered frames) and the
// conv filters on the device are NCHW / OIHW (PyTorch's, as the CPU ops) or,
// with TABULA_CUDA_LAYOUT=nhwc, NHWC / OHWI (channels last: cuDNN's
// tensor-core friendly formats, CUDNN_TENSOR_NHWC). Every kernel that cares
// takes `layout` (TB_NCHW or TB_NHWC) before its stream; shapes are named as
// in NCHW either way (B, C, HW).
// Activation type: float, or with TABULA_CUDA_DTYPE=bf16 bfloat16
// (__nv_bfloat16) for the activations, their gradients, the gathered frames
// and the copies of the conv weights and weight gradients cuDNN works on,
// with every kernel computing in float and the master weights, their
// gradients, the optimizer state, biases, losses and norms float. Each op
// that touches activations has a bfloat16 twin with the same name (C++
// overloads, at the end of this header; the float ones stay C).
// Device-only helpers with no CPU twin: sum_partials_cuda (second stage of the
// reductions), stats_record_cuda (the CPU backend writes its stats ring
// directly), tensor_to_rgba_cuda (GL interop), step_params_fill, conv_plan_*,
// bottleneck_next_cuda (the device's pass counter; the CPU backend counts on
// the host and passes the pass to bottleneck_forward).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>
#include <cudnn.h>

#include "common.h"
#include "cuda_common.h"
#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TB_NCHW = 0, TB_NHWC = 1 };

// ---- act.cu: bias + activation, fused, in place on y (B,C,HW): y = act(y + b[c]).
// b may be NULL (no bias).
void bias_act_forward_cuda(float *y, const float *b, int B, int C, int HW, int act, float slope,
                           int layout, cudaStream_t stream);
// d <- d * act'(y) in place and db[c] = sum over (B, HW) of the new d, in one pass
// over d and one launch (db may be NULL). The per-channel sums go through
// `scratch`, which must hold bias_act_backward_scratch(B, C, HW, layout) floats, and
// the block that finishes last adds them: `done` is a device counter, zero
// before and after (needed when the scratch size is not 0).
size_t bias_act_backward_scratch(int B, int C, int HW, int layout);
void bias_act_backward_cuda(float *d, float *db, const float *y, int B, int C, int HW, int act,
                            float slope, float *scratch, unsigned *done, int layout,
                            cudaStream_t stream);
// The output layer's end of a step in one launch, from its convolution's
// result y (B,C,HW): bias_act_forward on y, then the loss (LOSS_MSE or LOSS_L1,
// ops.h's mse/l1_forward_backward) against t into the device scalar *loss with
// its gradient in dy, then bias_act_backward on dy into db. scratch: at least
// out_act_loss_scratch(B, C, HW, layout) doubles (at most TB_REDUCE_BLOCKS); done: a
// counter as above.
size_t out_act_loss_scratch(int B, int C, int HW, int layout);
void out_act_loss_cuda(float *y, float *dy, float *db, float *loss, const float *b, const float *t,
                       int B, int C, int HW, int act, float slope, int loss_kind, double *scratch,
                       unsigned *done, int layout, cudaStream_t stream);

// ---- loss.cu: MSE over n elements; dy = 2(y-t)/n (dy may be NULL) and the loss
// (sum in double, then / n) written to the device scalar *loss.
void mse_forward_backward_cuda(float *dy, float *loss, const float *y, const float *t, size_t n,
                               double *scratch, cudaStream_t stream);
// L1 over n elements; dy = sign(y-t)/n, sign(0) = 0 (dy may be NULL) and the loss
// (sum of |y-t| in double, then / n) written to the device scalar *loss.
void l1_forward_backward_cuda(float *dy, float *loss, const float *y, const float *t, size_t n,
                              double *scratch, cudaStream_t stream);
// Second stage of the two-pass reductions (loss.cu, optim.cu): *out =
// sum(partial[0..count)) / div, or its square root; count <= TB_REDUCE_BLOCKS.
void sum_partials_cuda(float *out, const double *partial, int count, double div, int take_sqrt,
                       cudaStream_t stream);

// ---- optim.cu: optimizer over the flat parameter block (docs/ARCHITECTURE.md, "The network").
// Hyperparameters of one step as the device sees them. The host fills it with
// step_params_fill and copies it to device memory before the step's kernels.
typedef struct {
    int optimizer;  // OPT_SGD or OPT_ADAM
    int slot;       // stats ring slot of this step
    int t;          // Adam step count, 1-based
    int pad_;
    float lr, momentum, weight_decay, clip;
    float beta1, beta2, eps;
    float adam_step;      // lr / (1 - beta1^t), computed in double on the host
    float adam_bc2_sqrt;  // sqrt(1 - beta2^t)
} StepParams;
void step_params_fill(StepParams *p, const Hyper *h, int slot);  // host only

// Global L2 norm of g, written to the device scalar *norm (sum in double).
void grad_norm_cuda(float *norm, const float *g, size_t n, double *scratch, cudaStream_t stream);
// grad_norm_cuda and stats_record_cuda in one launch: *norm, then ring[p->slot]
// = {*loss, *norm}. done: a device counter, zero before and after.
void grad_norm_stats_cuda(float *norm, StepStats *ring, const float *loss, const StepParams *p,
                          const float *g, size_t n, double *scratch, unsigned *done,
                          cudaStream_t stream);
// One fused pass, PyTorch's clip_grad_norm_ + SGD(momentum, weight_decay):
// scale = min(1, c/(norm+1e-6)) if c > 0 else 1 (clip_scale);  g' = scale*g + wd*w;
// buf = mu*buf + g';  w -= lr*buf.  norm and p are device pointers.
void sgd_update_cuda(float *w, float *buf, const float *g, size_t n, const float *norm,
                     const StepParams *p, cudaStream_t stream);
// Adam (torch.optim.Adam, L2 weight decay) after the same clipping.
void adam_update_cuda(float *w, float *m, float *v, const float *g, size_t n, const float *norm,
                      const StepParams *p, cudaStream_t stream);
// ring[p->slot] = {*loss, *norm}: the slot is read on the device, so graph
// replays write where the current step asks.
void stats_record_cuda(StepStats *ring, const float *loss, const float *norm, const StepParams *p,
                       cudaStream_t stream);

// ---- frame.cu
// B frames RGB8 interleaved (B,H,W,3), contiguous -> float (B,3,H,W) in [0,1]
// ((B,H,W,3) in NHWC).
void frame_to_tensor_cuda(float *x, const uint8_t *rgb, int B, int H, int W, int layout,
                          cudaStream_t stream);
// The batch from a store of RGB8 frames (H*W*3 bytes each, one after another):
// sample b's input is frame slots[b] into x (B,3,H,W), its target frame
// slots[B + b] into t; each as frame_to_tensor. slots: 2B ints in device memory.
void frames_gather_cuda(float *x, float *t, const uint8_t *store, const int *slots, int B, int H,
                        int W, int layout, cudaStream_t stream);
// One sample float CHW -> RGB8 interleaved (clamped, rounded).
void tensor_to_frame_cuda(uint8_t *rgb, const float *x, int H, int W, int layout,
                          cudaStream_t stream);
// One sample float CHW -> RGBA8 rows `pitch` bytes apart (alpha 255), e.g. into a
// mapped OpenGL pixel buffer. Row 0 is the image's top row.
void tensor_to_rgba_cuda(uint8_t *rgba, size_t pitch, const float *x, int H, int W, int layout,
                         cudaStream_t stream);

// ---- tiles.cu: the layer atlas's tiles (tiles_draw in ops.h, the same bits)
// from a device activation block into an RGBA8 picture in device memory (rows
// `pitch` bytes apart, a multiple of 4); lut: the 256 RGB colours, 768 bytes
// in device memory. One launch: a block per grid cell finds its channel's min
// and max, then draws its tile.
void tiles_draw_cuda(uint8_t *rgba, size_t pitch, const float *act, const TileGeom *g,
                     const uint8_t *lut, int layout, cudaStream_t stream);

// ---- lerp.cu: w = (1-a)*w + a*s over n floats (snapshot slots' cross-fade),
// the same bits as lerp() on the CPU. a is a host value: never captured in a graph.
void lerp_cuda(float *w, const float *s, size_t n, float a, cudaStream_t stream);

// ---- couple.cu: k blocks of n floats each toward their mean by c (the
// channels' coupling), the same bits as couple() on the CPU. w is a device
// array of k device pointers; c is a host value: never captured in a graph.
void couple_cuda(float *const *w, int k, size_t n, float c, cudaStream_t stream);

// ---- bottleneck.cu: the bottleneck control on x (B,C,HW) (or NHWC): y = mask[c] *
// (x + noise * N(0,1)) (a channel with mask 0 is +0), the draws those of
// bottleneck_gauss(*pass, NCHW index). noise (one float) and pass are device
// pointers, read when the kernel runs, so a captured graph replays with the
// current amplitude; bottleneck_next_cuda adds 1 to *pass (one kernel, in stream
// order) so the next pass draws anew. y may be x; dx may be dy.
void bottleneck_forward_cuda(float *y, const float *x, const float *mask, const float *noise,
                             const unsigned long long *pass, int B, int C, int HW, int layout,
                             cudaStream_t stream);
void bottleneck_backward_cuda(float *dx, const float *dy, const float *mask, int B, int C, int HW,
                              int layout, cudaStream_t stream);
void bottleneck_next_cuda(unsigned long long *pass, cudaStream_t stream);

// ---- conv_cudnn.cu: Conv2d and ConvTranspose2d through cuDNN.
// A plan describes one convolution in cuDNN's terms: `in` (N, Ci, Hi, Wi) ->
// `out` with filter (Ko, Ci, K, K). For Conv2d, in = x (B,C,H,W), out = y
// (B,OC,Ho,Wo), filter = w (OC,C,K,K). A ConvTranspose2d is the data gradient of
// the conv that maps its output back to its input, so in = y (B,OC,Ho,Wo),
// out = x (B,C,H,W) and PyTorch's weight (C,OC,K,K) is that conv's filter as is.
// In NHWC every tensor is channels last and the filter (Ko, K, K, Ci): each
// weight tensor (d0, d1, K, K) of the parameter block is stored on the device
// as (d0, K, K, d1) (the backend transposes at its boundary).
typedef struct {
    int transposed;
    int bf16;  // tensors and filter CUDNN_DATA_BFLOAT16 (float compute), else float
    int B, C, H, W, OC, K, S, P, Ho, Wo;  // the layer's own shapes (x -> y)
    cudnnTensorDescriptor_t in_desc, out_desc;
    cudnnFilterDescriptor_t w_desc;
    // One convolution descriptor per direction: each carries the math type of
    // the algorithm chosen for it.
    cudnnConvolutionDescriptor_t cd_fwd, cd_bwd_data, cd_bwd_filter;
    cudnnConvolutionFwdAlgo_t algo_fwd;
    cudnnConvolutionBwdDataAlgo_t algo_bwd_data;
    cudnnConvolutionBwdFilterAlgo_t algo_bwd_filter;
    size_t ws_fwd, ws_bwd_data, ws_bwd_filter;  // bytes each chosen algorithm needs
} ConvPlan;

// 1 unless the environment turns TF32 off (NVIDIA_TF32_OVERRIDE=0 or TABULA_NO_TF32=1).
int cuda_tf32_enabled(void);
// The layout TABULA_CUDA_LAYOUT asks for: unset or "nchw" TB_NCHW, "nhwc" TB_NHWC;
// any other value -1 with err naming it and the two allowed.
int cuda_layout_env(TbErr *err);
const char *cuda_layout_name(int layout);  // "NCHW" or "NHWC"
// The activation type TABULA_CUDA_DTYPE asks for: unset or "fp32" 0, "bf16" 1;
// any other value -1 with err naming it and the two allowed.
int cuda_dtype_env(TbErr *err);
// How a plan chooses its three algorithms.
typedef struct {
    int tf32;           // 0: FMA math only
    int find;           // 1: time the candidates on the device (cudnnFind*, synchronises,
                        // never while capturing); 0: cuDNN's heuristics (cudnnGet*_v7, no device work)
    int deterministic;  // 1: only algorithms that give the same bits on every run
    size_t ws_limit;    // most workspace an algorithm may need (bytes)
    int layout;         // TB_NCHW: tensors NCHW, filters OIHW; TB_NHWC: tensors NHWC,
                        // filters OHWI (all three descriptors CUDNN_TENSOR_NHWC)
    int bf16;           // 1: bfloat16 tensors and filters, float compute
                        // (PSEUDO_BFLOAT16_CONFIG; tensor-core math whatever tf32 says)
} ConvChoice;
// Build descriptors and choose the three algorithms for a layer's shapes.
// Returns 0, or -1 with err filled.
int conv_plan_init(ConvPlan *p, cudnnHandle_t h, int transposed, int B, int C, int H, int W,
                   int OC, int K, int S, int P, const ConvChoice *ch, TbErr *err);
void conv_plan_destroy(ConvPlan *p);
// Largest workspace the plan's three algorithms need (bytes).
size_t conv_plan_workspace(const ConvPlan *p);

// The ops. x (B,C,H,W), y (B,OC,Ho,Wo); w as in ops.h; ws a device workspace of
// ws_size >= conv_plan_workspace(p) bytes. The handle is bound to `stream`.
void conv2d_forward_cuda(float *y, const float *x, const float *w, const ConvPlan *p,
                         cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream);
void conv2d_backward_cuda(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                          cudaStream_t stream);
void convt2d_forward_cuda(float *y, const float *x, const float *w, const ConvPlan *p,
                          cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream);
void convt2d_backward_cuda(float *dx, float *dw, const float *dy, const float *x, const float *w,
                           const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                           cudaStream_t stream);

#ifdef __cplusplus
}

// ---- the bfloat16 twins (C++): the same ops on __nv_bfloat16 activations.
#include <cuda_bf16.h>

void bias_act_forward_cuda(__nv_bfloat16 *y, const float *b, int B, int C, int HW, int act,
                           float slope, int layout, cudaStream_t stream);
void bias_act_backward_cuda(__nv_bfloat16 *d, float *db, const __nv_bfloat16 *y, int B, int C,
                            int HW, int act, float slope, float *scratch, unsigned *done,
                            int layout, cudaStream_t stream);
void out_act_loss_cuda(__nv_bfloat16 *y, __nv_bfloat16 *dy, float *db, float *loss, const float *b,
                       const __nv_bfloat16 *t, int B, int C, int HW, int act, float slope,
                       int loss_kind, double *scratch, unsigned *done, int layout,
                       cudaStream_t stream);
void frame_to_tensor_cuda(__nv_bfloat16 *x, const uint8_t *rgb, int B, int H, int W, int layout,
                          cudaStream_t stream);
void frames_gather_cuda(__nv_bfloat16 *x, __nv_bfloat16 *t, const uint8_t *store,
                        const int *slots, int B, int H, int W, int layout, cudaStream_t stream);
void tensor_to_frame_cuda(uint8_t *rgb, const __nv_bfloat16 *x, int H, int W, int layout,
                          cudaStream_t stream);
void tensor_to_rgba_cuda(uint8_t *rgba, size_t pitch, const __nv_bfloat16 *x, int H, int W,
                         int layout, cudaStream_t stream);
void tiles_draw_cuda(uint8_t *rgba, size_t pitch, const __nv_bfloat16 *act, const TileGeom *g,
                     const uint8_t *lut, int layout, cudaStream_t stream);
void bottleneck_forward_cuda(__nv_bfloat16 *y, const __nv_bfloat16 *x, const float *mask,
                             const float *noise, const unsigned long long *pass, int B, int C,
                             int HW, int layout, cudaStream_t stream);
void bottleneck_backward_cuda(__nv_bfloat16 *dx, const __nv_bfloat16 *dy, const float *mask, int B,
                              int C, int HW, int layout, cudaStream_t stream);
// The convolutions with a bf16 plan (ConvChoice.bf16): w the bfloat16 copy of
// the weights, dw the bfloat16 weight gradient.
void conv2d_forward_cuda(__nv_bfloat16 *y, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                         const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                         cudaStream_t stream);
void conv2d_backward_cuda(__nv_bfloat16 *dx, __nv_bfloat16 *dw, const __nv_bfloat16 *dy,
                          const __nv_bfloat16 *x, const __nv_bfloat16 *w, const ConvPlan *p,
                          cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream);
void convt2d_forward_cuda(__nv_bfloat16 *y, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                          const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                          cudaStream_t stream);
void convt2d_backward_cuda(__nv_bfloat16 *dx, __nv_bfloat16 *dw, const __nv_bfloat16 *dy,
                           const __nv_bfloat16 *x, const __nv_bfloat16 *w, const ConvPlan *p,
                           cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream);
// The step's norm with the weight gradients taken from g16 first: g[i] =
// g16[i] (exact) where wmask[i] = 1 (a conv weight; biases' gradients are
// float already), then as the float grad_norm_stats_cuda. g16 and wmask both
// NULL: the float op.
void grad_norm_stats_cuda(float *norm, StepStats *ring, const float *loss, const StepParams *p,
                          float *g, const __nv_bfloat16 *g16, const uint8_t *wmask, size_t n,
                          double *scratch, unsigned *done, cudaStream_t stream);
// The updates writing w16 = bfloat16(w) with each new weight (w16 NULL: the float op).
void sgd_update_cuda(float *w, __nv_bfloat16 *w16, float *buf, const float *g, size_t n,
                     const float *norm, const StepParams *p, cudaStream_t stream);
void adam_update_cuda(float *w, __nv_bfloat16 *w16, float *m, float *v, const float *g, size_t n,
                      const float *norm, const StepParams *p, cudaStream_t stream);
// w16 = bfloat16(w) over n floats (round to nearest even): after the weights
// change outside a step.
void params_to_bf16_cuda(__nv_bfloat16 *w16, const float *w, size_t n, cudaStream_t stream);
#endif
