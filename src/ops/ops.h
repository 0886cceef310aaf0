// ops.h: the CPU ops of tabula. Each op has
//   - a readable reference (`*_ref`, plain loops) used by tests as ground truth,
//   - a fast version used by the CPU backend (OpenMP; convolutions through oneDNN
//     or im2col + GEMM, see conv_impl).
// The CUDA twins in kernels/ (ops_cuda.h) take the same arguments plus a stream.
//
// Layouts: activations NCHW float32; Conv2d weight (OC, C, K, K); ConvTranspose2d
// weight (C, OC, K, K) as in PyTorch. Backward ops OVERWRITE dw/db (every parameter
// is produced by exactly one op per step, so there is no zero_grad pass) and
// overwrite dx; pass dx = NULL to skip the input gradient (first layer).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

// Output size of a conv (stride S, padding P) and of a transposed conv.
static inline int conv_out(int in, int K, int S, int P) { return (in + 2 * P - K) / S + 1; }
static inline int convt_out(int in, int K, int S, int P) { return (in - 1) * S - 2 * P + K; }

// ---- Scratch: a growing buffer per calling thread and use, reused by every op
// (so a warm training step allocates nothing); freed when the thread ends.
enum { TB_BUF_COLS = 0, TB_BUF_BIAS_SUMS, TB_BUF_TRANSFORM, TB_BUF_COUNT };
void *tb_thread_buffer(int which, size_t bytes);

// ---- GEMM (row-major): C = alpha * op(A) * op(B) + beta * C, op = transpose if tX.
// Uses OpenBLAS when built with it (TABULA_HAVE_BLAS), else a blocked GEMM of our own.
void gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);
void gemm_ref(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

// ---- Conv2d (no bias): x (B,C,H,W), w (OC,C,K,K) -> y (B,OC,Ho,Wo)
void conv2d_forward(float *y, const float *x, const float *w, int B, int C, int H, int W,
                    int OC, int K, int S, int P);
void conv2d_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                     int B, int C, int H, int W, int OC, int K, int S, int P);
void conv2d_forward_ref(float *y, const float *x, const float *w, int B, int C, int H, int W,
                        int OC, int K, int S, int P);
void conv2d_backward_ref(float *dx, float *dw, const float *dy, const float *x, const float *w,
                         int B, int C, int H, int W, int OC, int K, int S, int P);

// ---- ConvTranspose2d (no bias): x (B,C,H,W), w (C,OC,K,K) -> y (B,OC,Ho,Wo),
// Ho = (H-1)*S - 2P + K.
void convt2d_forward(float *y, const float *x, const float *w, int B, int C, int H, int W,
                     int OC, int K, int S, int P);
void convt2d_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      int B, int C, int H, int W, int OC, int K, int S, int P);
void convt2d_forward_ref(float *y, const float *x, const float *w, int B, int C, int H, int W,
                         int OC, int K, int S, int P);
void convt2d_backward_ref(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          int B, int C, int H, int W, int OC, int K, int S, int P);

// ---- The fast convolutions' implementation, chosen at run time: oneDNN
// (conv_dnnl.c) when built with it (TABULA_HAVE_DNNL) and usable, else im2col +
// GEMM. TABULA_CPU_CONV=dnnl|gemm in the environment forces one (read once).
enum { CONV_IMPL_GEMM = 0, CONV_IMPL_DNNL = 1 };
int conv_impl(void);
// Selects one (tests, benchmarks); -1 if oneDNN is asked for and not usable.
int conv_impl_set(int which);
const char *conv_impl_name(void);  // e.g. "oneDNN 2.6.3" or "im2col + GEMM"
// The oneDNN ops (transposed: ConvTranspose2d, else Conv2d; same arguments as
// the ops above). They return -1, having written nothing, when oneDNN cannot run
// that shape (or is not built in): the caller then uses im2col + GEMM.
// blk: which activations are in the blocked layout nChw16c rather than NCHW
// (CONV_BLK_X: x and dx, CONV_BLK_Y: y and dy; that side's channels a multiple
// of 16), so that the CPU backend reorders only at the network's edges;
// CONV_BLK_W: w and dw in oneDNN's own layout for that layer (its forward
// pass's), kept so by the backend between steps (see conv_dnnl_weights).
enum { CONV_BLK_X = 1, CONV_BLK_Y = 2, CONV_BLK_W = 4 };
int conv_dnnl_forward(int transposed, int blk, float *y, const float *x, const float *w, int B,
                      int C, int H, int W, int OC, int K, int S, int P);
// The same followed by y = act(y + bias[c]) as bias_act_forward, inside the
// primitive (bias_act_backward is unchanged: it reads the output). -1 where
// oneDNN cannot fuse them: the caller then runs conv_dnnl_forward and bias_act.
int conv_dnnl_forward_act(int transposed, int blk, float *y, const float *x, const float *w,
                          const float *bias, int act, float slope, int B, int C, int H, int W,
                          int OC, int K, int S, int P);
int conv_dnnl_backward(int transposed, int blk, float *dx, float *dw, const float *dy,
                       const float *x, const float *w, int B, int C, int H, int W, int OC, int K,
                       int S, int P);
// Whether oneDNN runs this shape with this layout (creates and caches its
// primitives): 0 if so, else -1.
int conv_dnnl_ready(int transposed, int blk, int B, int C, int H, int W, int OC, int K, int S,
                    int P);
// Converts one layer's weights (or anything of their shape: gradients, optimizer
// state) from PyTorch's layout to CONV_BLK_W's (to_dnnl = 1) or back; blk: the
// layer's activation flags. dst = NULL only asks whether that layout has the
// same size (no padding). Returns 0, or -1 where it cannot be used.
int conv_dnnl_weights(int transposed, int blk, int to_dnnl, float *dst, const float *src, int C,
                      int H, int W, int OC, int K, int S, int P);

// ---- Bias + activation, fused, in place on y (B,C,HW): y = act(y + b[c]).
enum { ACT_NONE = 0, ACT_LEAKY = 1, ACT_SIGMOID = 2 };
void bias_act_forward(float *y, const float *b, int B, int C, int HW, int act, float slope);
// Backward through act and bias, given the activation OUTPUT y (LeakyReLU keeps the
// sign, so y > 0 <=> pre > 0; sigmoid' = y(1-y)): d <- d * act'(y) in place, and
// db[c] = sum over (B, HW) of the new d.
void bias_act_backward(float *d, float *db, const float *y, int B, int C, int HW, int act,
                       float slope);
// The same two on oneDNN's blocked layout nChw16c (C a multiple of 16: the
// activations the CPU backend keeps between layers on the oneDNN path).
void bias_act_forward_c16(float *y, const float *b, int B, int C, int HW, int act, float slope);
void bias_act_backward_c16(float *d, float *db, const float *y, int B, int C, int HW, int act,
                           float slope);

// ---- MSE loss, mean over all n elements, and its gradient dy = 2(y-t)/n.
// Returns the loss (accumulated in double). dy may be NULL (loss only).
float mse_forward_backward(float *dy, const float *y, const float *t, size_t n);
// ---- L1 loss, mean |y-t| over all n elements, and its gradient dy = sign(y-t)/n
// with sign(0) = 0 (PyTorch's F.l1_loss). Returns the loss (accumulated in
// double). dy may be NULL (loss only). The _ref sums in element order.
float l1_forward_backward(float *dy, const float *y, const float *t, size_t n);
float l1_forward_backward_ref(float *dy, const float *y, const float *t, size_t n);

// ---- Optimizer over the flat parameter block (PyTorch semantics: see
// docs/ARCHITECTURE.md, "The network").
enum { OPT_SGD = 0, OPT_ADAM = 1 };
enum { LOSS_MSE = 0, LOSS_L1 = 1 };

// Optimizer settings for one step; changed live between steps.
typedef struct {
    int optimizer;  // OPT_SGD or OPT_ADAM
    int loss;       // LOSS_MSE or LOSS_L1: what train_step minimises
    float lr, momentum, clip, weight_decay;
    float beta1, beta2, eps;  // Adam
    int t;                    // Adam step count, 1-based (the trainer counts)
} Hyper;

// What one training step measured (computed in its forward pass, before the update).
typedef struct {
    float loss;       // the loss in force (Hyper.loss: MSE or L1) over the whole batch
    float grad_norm;  // global L2 norm before clipping
} StepStats;

// Steps whose stats fit between two reads of them (a ring of StepStats).
#define TB_STATS_RING 64

// Global L2 norm of g (accumulated in double).
float grad_norm(const float *g, size_t n);
// The clip factor PyTorch's clip_grad_norm_ applies: c/(norm+1e-6) if c > 0 and
// norm > c, else 1.
float clip_scale(float norm, float clip);
// g' = scale*g + wd*w;  buf = mu*buf + g';  w -= lr*buf.
void sgd_update(float *w, float *buf, const float *g, size_t n, float scale, float lr, float mu,
                float wd);
// Adam (PyTorch torch.optim.Adam, L2 weight decay): t is the 1-based step count.
void adam_update(float *w, float *m, float *v, const float *g, size_t n, float scale, float lr,
                 float beta1, float beta2, float eps, float wd, int t);

// ---- Frames: RGB8 interleaved (H,W,3) -> float CHW in [0,1], one sample.
void frame_to_tensor(float *x, const uint8_t *rgb, int H, int W);
// float CHW in [0,1] -> RGB8 interleaved (clamped, rounded).
void tensor_to_frame(uint8_t *rgb, const float *x, int H, int W);

// ---- Blend toward a stored block (snapshot slots): w = (1-a)*w + a*s, a in
// [0,1]; a = 0 leaves w, a = 1 gives s exactly. No gradient (never trained through).
void lerp(float *w, const float *s, size_t n, float a);
void lerp_ref(float *w, const float *s, size_t n, float a);
// The channels' coupling: each of the k blocks w[j] (n floats) moves toward
// their mean by c (the mean is taken first); c = 0 leaves them bit for bit.
void couple(float *const *w, int k, size_t n, float c);
void couple_ref(float *const *w, int k, size_t n, float c);

// ---- Input transforms: what the network is given in place of the camera frame
// (the loss still compares with the clean frame). On RGB8 (H,W,3), per frame,
// in this order: blur (area-average down to 1/blur of the size, bilinear back
// up: the factor sets the cut-off), then the kind (grey: BT.601 luminance;
// edges: Sobel magnitude of the luminance, as grey), then jitter (training
// only: brightness +-jitter*255 and contrast x(1+-jitter) about mid-grey, one
// draw of each per frame from rng). One rounding at the end.
enum { TF_NONE = 0, TF_GREY = 1, TF_EDGES = 2, TF_KINDS };
#define TF_CHOICES "none|grey|edges"  // the names of the kinds, in order
typedef struct {
    int kind;      // TF_NONE, TF_GREY or TF_EDGES
    int blur;      // downscale factor; 1 (or less) = off
    float jitter;  // 0 = off
} Transform;
// 1 if the transform changes a frame (training: jitter counts; else it does not).
int transform_active(const Transform *tf, int training);
// out = transform of in (w x h). rng NULL: not training (no jitter). out != in.
void transform_apply(const Transform *tf, uint8_t *out, const uint8_t *in, int w, int h, TbRng *rng);

// ---- The bottleneck control (the encoder's last activation, x (B,C,HW)):
// y = mask[c] * (x + noise * N(0,1)), so a channel with mask 0 is exactly 0.
// mask: C floats (1 keep, 0 zero; any weight works, e.g. a solo view). The
// draws come from bottleneck_gauss(pass, NCHW index): a counter-based hash, so
// a run is reproducible whatever the layout or the thread count, and the CUDA
// twin draws the same numbers. c16: x and y in oneDNN's nChw16c (C a multiple
// of 16). y may be x. Backward: dx = mask[c] * dy (the noise is additive: no
// gradient of its own); dx may be dy.
float bottleneck_gauss(uint64_t pass, uint64_t i);
void bottleneck_forward(float *y, const float *x, const float *mask, int B, int C, int HW,
                        float noise, uint64_t pass, int c16);
void bottleneck_forward_ref(float *y, const float *x, const float *mask, int B, int C, int HW,
                            float noise, uint64_t pass);
void bottleneck_backward(float *dx, const float *dy, const float *mask, int B, int C, int HW,
                         int c16);
void bottleneck_backward_ref(float *dx, const float *dy, const float *mask, int B, int C, int HW);
// mask = 1 for the first `keep` channels, 0 for the rest (keep <= 0: all 1).
void bottleneck_mask_keep(float *mask, int C, int keep);

// ---- The feedback dream's transform (warp.c), per pass on RGB8 (H,W,3): zoom
// (> 1 magnifies) and rotate (degrees, clockwise on screen) about the centre,
// then shift (pixels, right and down), by bilinear sampling with the edges
// clamped. The identity copies the frame bit for bit.
typedef struct {
    float zoom, rotate, shift_x, shift_y;
} Warp;
int warp_identity(const Warp *wp);
void warp_apply(const Warp *wp, uint8_t *out, const uint8_t *in, int w, int h);

// ---- The layer atlas's tiles (tiles.c; CUDA twin kernels/tiles.cu): one
// layer's activation (ch planes of sw x sh floats, NCHW, one sample) drawn at
// (x, y) of a picture whose rows are `pitch` bytes apart, bpp 3 (RGB8) or 4
// (RGBA8, alpha 255), as a grid of `cols` tiles of tw x th pixels, each pixel
// the nearest value (column u*sw/tw, row v*sh/th). Each channel is normalised
// by its own min and max (NaN values left out): colour index
// fmaf(x - lo, 255/(hi - lo), 0.5) truncated to 0..255 through `lut`; a flat
// channel, NaN and +-inf values draw colour 0 or a clamped end, never garbage.
// 1-pixel gaps of grey `gap` between tiles, the last row's unused cells grey
// `bg`: the block is cols*(tw+1)-1 x rows*(th+1)-1 pixels, every one written.
// image = 1: ch is 3 and the block is one tw x th RGB picture of the planes in
// [0,1] (clamped, NaN 0, fmaf(v, 255, 0.5) truncated), again nearest value.
typedef struct {
    int ch, cols;  // channels (tiles) and grid columns
    int sw, sh;    // values per channel (a plane's width and height)
    int tw, th;    // pixels per tile: magnified or shrunk by nearest value
    int x, y;      // the block's top-left pixel in the picture
    int image;     // 1: one RGB picture of 3 planes instead of tiles
    uint8_t gap, bg;
} TileGeom;
// Pixel size of the block.
void tiles_size(const TileGeom *g, int *w, int *h);
void tiles_draw(uint8_t *out, size_t pitch, int bpp, const float *act, const TileGeom *g,
                const uint8_t lut[256][3]);

#ifdef __cplusplus
}
#endif
