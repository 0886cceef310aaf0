// backend_cuda.cu: the CUDA/cuDNN backend (the Backend table of backend.h).
//
// Memory: one allocation for the parameter block params | grads | m | v (m is
// the SGD momentum buffer or Adam's first moment, v Adam's second, as on the
// CPU), one for activations and their gradients (max_batch * act_total each),
// one cuDNN workspace shared by every convolution, and the frame store.
//
// Frames live on the device (docs/ARCHITECTURE.md, "The CUDA step"): the store
// keeps numbered frames (load_batch_ids) and has scratch slots for the rest; a
// load sends only what it does not hold, on the copy stream from pinned
// staging, and the compute stream waits with an event. A step gathers its
// batch from the store by slots pushed with its hyperparameters, so the whole
// step is in the graph. Streams: compute (everything else), copy (uploads),
// readback (output_recent); every dependency between them is an event.
//
// A training step never waits for the device. Its hyperparameters go from a
// small ring of pinned host structs to one device struct with an async copy; the
// kernels read them (and the stats slot) there. backend_cuda_step_work counts
// what a step enqueues: LAUNCH's count and the cuDNN calls. Loss and gradient norm stay on
// the device and land in a ring of TB_STATS_RING slots that read_stats copies
// back. For each (batch size, optimizer, loss) the step runs eagerly once, then
// is captured as a CUDA graph and replayed; the pinned-struct copy is issued
// just before each launch, so a replay sees the current values. The optimizer
// and the loss pick which kernels a step launches, so a switch of either
// selects (or captures) another graph. A failure inside a capture does not
// exit: the capture is ended and the backend goes on with eager launches.
//
// Convolution algorithms are timed (cudnnFind) for each batch size the first
// time it is used, outside any capture: batch 1 at creation, others at their
// first step. When they need a larger workspace it grows, and the captured
// graphs (which hold the old one) are dropped and captured again.
//
// The bottleneck control (backend.h): the op's noise amplitude and mask sit in
// device memory (d_bn: noise, then the mask), written from a pinned ring when
// they change, and its pass counter too, so a graph replays with the current
// values. Whether the op runs at all, and whether the encoder is frozen, pick
// the kernels a step launches: two more bits of the step kind.
//
// BackendOpts.deterministic: only deterministic algorithms, chosen by cuDNN's
// heuristics (not timed), so the same ones every run.
//
// Layout (TABULA_CUDA_LAYOUT=nchw|nhwc, read at creation, default nchw): the
// activations, their gradients, the gathered batch and the conv filters are
// NCHW / OIHW on the device, or NHWC / OHWI (channels last, cuDNN's
// CUDNN_TENSOR_NHWC). Only the device sees it: what crosses the table stays
// as on the CPU (params, optimizer state in PyTorch's layout, get_activation
// and decode's code NCHW, frames RGB8), transposed on the host at set/get_params,
// set/get_opt_state, get_activation and decode; the kernels that read or write
// by channel take the layout (frames, bias + activation, the fused loss, the
// bottleneck op, the output conversions, the atlas). Everything elementwise
// (optimizer, norm, slots, lerp, coupling between two CUDA nets: one process,
// one layout) is the same in both, and so is the work of a step.
//
// Activation type (TABULA_CUDA_DTYPE=fp32|bf16, read at creation, default
// fp32): with bf16 the activations, their gradients, the gathered batch, the
// bottleneck's buffers and decode's block are bfloat16 (every kernel computes
// in float: ops_cuda.h), and cuDNN runs in PSEUDO_BFLOAT16_CONFIG on a
// bfloat16 copy of the weights (w16) into bfloat16 weight gradients (g16).
// The master weights, their gradients, the optimizer state, the biases, the
// loss and the norm stay float. The step launches the same kernels as in
// fp32: the norm kernel takes the weights' gradients from g16 into the float
// block (wmask says which elements are conv weights), and the update kernel
// writes w16 with the new weights; set_params, slot recall and blend and the
// coupling make w16 again (one more launch each, outside the step). What
// crosses the table is as in fp32 (floats, RGB8), converted at the boundary.
//
// Environment: NVIDIA_TF32_OVERRIDE=0 or TABULA_NO_TF32=1 keep cuDNN on FMA math;
// TABULA_NO_GRAPH=1 launches every step eagerly; TABULA_CUDNN_FIND=0 takes
// cuDNN's heuristic algorithm choices instead of timing them;
// TABULA_INJECT_CAPTURE_FAIL=1 (a test hook) makes the first capture fail.
//
// Holds: one probe kernel (never launched: it tells whether this build has code
// for the device), then the host side: cuda_available, the passes of a step
// (through the launchers of kernels/ops_cuda.h), the Backend table's functions,
// the interop extras, and backend_cuda_create in steps.
#include <string.h>

#include "model.h"
#include "ops.h"
#include "backend_cuda.h"
#include "ops_cuda.h"

#define PIN_RING 16    // pinned per-op structs: the host may run this many steps ahead
#define FRAME_RING 4   // pinned staging buffers for the loads (max_batch frames each)
#define WS_MIN (32u << 20)   // workspace floor: fewer regrowths (and recaptures) as batch sizes come
#define WS_CAP (256u << 20)  // largest workspace an algorithm may ask for
#define STEP_KINDS 16         // graphs per batch size: one per step_kind (optimizer x loss x bottleneck)

typedef struct {
    const Model *m;
    int max_batch, L;
    int H, W;            // training size
    size_t frame_bytes;  // H*W*3
    int tf32, use_graphs, find, deterministic;
    int layout;               // TB_NCHW or TB_NHWC (TABULA_CUDA_LAYOUT)
    int bf16;                 // bfloat16 activations (TABULA_CUDA_DTYPE=bf16)
    size_t esz;               // bytes an activation: 4, or 2 in bf16
    int inject_capture_fail;  // TABULA_INJECT_CAPTURE_FAIL=1: the first capture fails (test hook)
    long graph_launches;      // steps replayed from a graph
    cudaStream_t stream;
    cudnnHandle_t cudnn;

    float *pblock, *params, *grads, *mom, *var;  // params | grads | m | v
    void *ablock, *acts, *dacts;                 // activations | their gradients (float or bf16)
    // bf16 only (else NULL): the weights' bfloat16 copy and cuDNN's bfloat16
    // weight gradients (n each, parameter-block offsets; bias elements unused),
    // and wmask[i] = 1 where element i is a conv weight.
    __nv_bfloat16 *w16, *g16;
    uint8_t *wmask;
    void *ws;
    size_t ws_size;
    float *bias_scratch;
    double *reduce_scratch;  // TB_REDUCE_BLOCKS partials
    unsigned *d_done;        // the last-block-done counter of the fused reductions (left 0)
    float *d_scalars;        // loss, grad norm
    // An op's pushed record, one copy: StepParams, then the batch's 2B store
    // slots (d_slots, as the gather reads them) from op_slots bytes on.
    uint8_t *d_op;
    StepParams *d_step;
    size_t op_bytes, op_slots;
    StepStats *d_ring;
    uint8_t *d_rgb;     // one output frame RGB8
    // The frame store (RGB8 frames on the device): n_cache slots that keep
    // numbered frames (frame id in slot id % n_cache; tag = id + 1, 0 empty),
    // then two sets of 2 * max_batch scratch slots (inputs, targets) for
    // frames without a number, a set per op in turn. reader: the last op that
    // read a slot, + 1 (0 none). cur: the loaded batch's slots, inputs at 0,
    // targets at max_batch.
    uint8_t *d_store;
    int n_cache, n_store;
    uint64_t *tag;
    unsigned long long *reader;
    int *cur, *d_slots;
    cudaStream_t copy;  // uploads: overlap the compute stream
    // output_recent's read-backs, on a stream of their own (behind a step,
    // they must not hold up the next uploads): two device frames and two
    // pinned ones, the events after each conversion and copy; the buffer in
    // flight (-1 none), the newest arrived (-1 none), whether it was given.
    cudaStream_t readback;
    uint8_t *d_rb[2], *h_rb[2];
    cudaEvent_t rb_conv[2], rb_done[2];
    int rb_busy, rb_newest, rb_fresh;

    // Ops (steps and forwards) in order; op k's pinned structs are slot k %
    // PIN_RING, free again once op_ev there (recorded after the op) is done.
    uint8_t *h_op;  // pinned, PIN_RING records of op_bytes
    cudaEvent_t op_ev[PIN_RING];
    int op_ev_used[PIN_RING];
    unsigned long long ops;
    uint8_t *h_frames;  // pinned, FRAME_RING * max_batch frames
    cudaEvent_t frame_ev[FRAME_RING];
    int frame_ev_used[FRAME_RING];
    unsigned frame_count;
    StepStats *h_stats;  // pinned, TB_STATS_RING
    uint8_t *h_rgb;      // pinned, one frame

    ConvPlan *plans;  // (max_batch + 1) * L, row B filled on first use of B
    int *plans_ready;
    cudaGraphExec_t *graphs;  // (max_batch + 1) * STEP_KINDS: key B*STEP_KINDS + step_kind
    int *graph_runs;          // steps run per key (the first runs eagerly)
    int batch;  // B of the last load_batch
    float *slots[TB_SLOTS + 1];  // device: params | m | v each (3n floats), NULL until saved
    // The bottleneck control: activation index nb with C channels; the op's
    // output (the decoder's input while on), the held code, noise | mask on the
    // device and its pinned staging ring, the pass counter; host flags.
    int nb, bn_c, bn_on, bn_freeze, fwd_batch;
    void *d_bnout, *d_held;  // activation-typed
    float *d_bn;
    unsigned long long *d_pass;
    float *h_bn;  // pinned, PIN_RING * (1 + C)
    cudaEvent_t bn_ev[PIN_RING];
    int bn_ev_used[PIN_RING];
    unsigned bn_count;
    void *d_dec;  // decode's own activations (one sample, activation-typed), NULL until used
    // cuda_couple's pointer array (this backend coupling as bs[0]), NULL until
    // the first coupling: the set last sent (cw_n pointers), its pinned source
    // and the event after that copy.
    float **cw_dev, **cw_host;
    float *cw_set[TB_COUPLE_MAX];
    int cw_n;
    cudaEvent_t cw_ev;
    // What a step enqueues (backend_cuda_step_work): cuDNN calls so far, the
    // work of each graph key as it was last enqueued (a replay runs the same),
    // and what the loads since the last step launched and uploaded.
    long cudnn_calls;
    CudaStepWork *key_work;
    CudaStepWork pending, last;
    long long uploaded;  // bytes of frames sent to the device, in all
} CudaCtx;

// Activation i of a block of batch B, as the activation type T (float or
// __nv_bfloat16: the one c->bf16 says; the templates below are instantiated
// for both and dispatched on it).
template <typename T>
static T *act_at(const CudaCtx *c, void *base, int i, int B) {
    return (T *)base + (size_t)B * c->m->act_off[i];
}
static void *act_ptr(const CudaCtx *c, void *base, int i, int B) {
    return (char *)base + c->esz * (size_t)B * c->m->act_off[i];
}
// The weights and weight gradients cuDNN works on: the float block, or the
// bfloat16 copies.
static const float *conv_w(const CudaCtx *c, float *) { return c->params; }
static const __nv_bfloat16 *conv_w(const CudaCtx *c, __nv_bfloat16 *) { return c->w16; }
static float *conv_dw(const CudaCtx *c, float *) { return c->grads; }
static __nv_bfloat16 *conv_dw(const CudaCtx *c, __nv_bfloat16 *) { return c->g16; }
// bf16: the weights changed outside a step: their copy again (stream-ordered).
static void refresh_w16(CudaCtx *c, cudaStream_t s) {
    if (c->bf16) params_to_bf16_cuda(c->w16, c->params, c->m->n_params, s);
}

static ConvPlan *plan_at(CudaCtx *c, int B, int l) { return &c->plans[(size_t)B * c->L + l]; }

// ---------------------------------------------------------------- kernels

// Never launched: cuda_available asks the runtime for its attributes, which
// fails when the build has no code for the device.
__global__ void probe_kernel(void) {}

// ---------------------------------------------------------------- availability

#define STR_(...) #__VA_ARGS__  // the arch list is comma-separated
#define STR(...) STR_(__VA_ARGS__)

// The device side of cuda_available, each failure named by its cause: the
// driver, the device, this build's code for it, the cuDNN library. Makes no
// cuDNN handle. Returns 0, or -1 with err filled.
static int device_check(TbErr *err) {
    int n = 0, drv = 0, rt = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorInsufficientDriver) {
        (void)cudaGetLastError();
        (void)cudaDriverGetVersion(&drv);
        (void)cudaRuntimeGetVersion(&rt);
        if (drv == 0)
            return tb_fail(err, "no usable CUDA device: no NVIDIA driver is loaded (the CUDA %d.%d "
                           "runtime needs one; %s)", rt / 1000, rt % 1000 / 10, cudaGetErrorName(e));
        return tb_fail(err, "no usable CUDA device: the NVIDIA driver (CUDA %d.%d) is too old for the "
                       "CUDA %d.%d runtime (%s)", drv / 1000, drv % 1000 / 10, rt / 1000,
                       rt % 1000 / 10, cudaGetErrorName(e));
    }
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n < 1)) {
        (void)cudaGetLastError();
        return tb_fail(err, "no usable CUDA device: no CUDA device found (the driver sees none)");
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tb_fail(err, "no usable CUDA device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    // A device this build has no kernels for (e.g. older than the arch list).
    cudaFuncAttributes fa;
    e = cudaFuncGetAttributes(&fa, probe_kernel);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cudaDeviceProp prop;
        int major = 0, minor = 0;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) major = prop.major, minor = prop.minor;
#ifdef __CUDA_ARCH_LIST__
        return tb_fail(err, "no usable CUDA device: no code for it in this build: %s (compute "
                       "capability %d.%d; built for %s)", cudaGetErrorString(e), major, minor,
                       STR(__CUDA_ARCH_LIST__));
#else
        return tb_fail(err, "no usable CUDA device: no code for it in this build: %s (compute "
                       "capability %d.%d)", cudaGetErrorString(e), major, minor);
#endif
    }
    size_t ver = cudnnGetVersion();
    if (ver / 10000 != CUDNN_MAJOR)
        return tb_fail(err, "no usable CUDA device: cuDNN %zu loaded, built against %d.%d", ver,
                       CUDNN_MAJOR, CUDNN_MINOR);
    return 0;
}

// cudnnCreate failing: cuDNN's parts missing or unusable with this driver.
static int cudnn_fail(TbErr *err, cudnnStatus_t s) {
    return tb_fail(err, "no usable CUDA device: cuDNN missing or unusable: %s (cuDNN %zu)",
                   cudnnGetErrorString(s), cudnnGetVersion());
}

extern "C" int cuda_available(TbErr *err) {
    if (device_check(err)) return 0;
    cudnnHandle_t h;
    cudnnStatus_t s = cudnnCreate(&h);
    if (s != CUDNN_STATUS_SUCCESS) {
        cudnn_fail(err, s);
        return 0;
    }
    cudnnDestroy(h);
    return 1;
}

// ---------------------------------------------------------------- the passes

// A failing CUDA call where the caller can report it: fill err and return -1.
#define CU_TRY(err, expr)                                                                   \
    do {                                                                                    \
        cudaError_t e_ = (expr);                                                            \
        if (e_ != cudaSuccess) {                                                            \
            (void)cudaGetLastError();                                                       \
            return tb_fail((err), "cuda backend: %s: %s", #expr, cudaGetErrorString(e_));  \
        }                                                                                   \
    } while (0)

// Captured graphs hold the workspace pointer (and the plans' algorithms): drop
// them all; each key is captured again at its next step.
static void drop_graphs(CudaCtx *c) {
    for (int k = 0; k < (c->max_batch + 1) * STEP_KINDS; k++)
        if (c->graphs[k]) {
            cudaCheck(cudaGraphExecDestroy(c->graphs[k]));
            c->graphs[k] = NULL;
        }
}

// The one workspace, grown to `need` bytes once the queued work (and any graph
// replay) that uses the old one is done.
static int grow_workspace(CudaCtx *c, size_t need, TbErr *err) {
    CU_TRY(err, cudaStreamSynchronize(c->stream));
    drop_graphs(c);
    if (c->ws) CU_TRY(err, cudaFree(c->ws));
    c->ws = NULL;
    c->ws_size = 0;
    CU_TRY(err, cudaMalloc(&c->ws, need));
    c->ws_size = need;
    return 0;
}

// The plans of batch size B, chosen for B itself (timed unless TABULA_CUDNN_FIND=0)
// on its first step or forward: never inside a capture, since a step is
// captured only at its second run. Grows the workspace when they need more.
static int plan_batch(CudaCtx *c, int B, size_t ws_floor, TbErr *err) {
    ConvChoice ch = {c->tf32, c->find, c->deterministic, WS_CAP, c->layout, c->bf16};
    size_t need = ws_floor;
    for (int l = 0; l < c->L; l++) {
        const Layer *L = &c->m->layers[l];
        if (conv_plan_init(plan_at(c, B, l), c->cudnn, L->kind == LAYER_CONVT, B, L->cin, L->hin,
                           L->win, L->cout, L->k, L->stride, L->pad, &ch, err)) {
            // Row B is not marked ready, so cuda_destroy leaves it: free it here.
            for (int k = 0; k < l; k++) conv_plan_destroy(plan_at(c, B, k));
            return -1;
        }
        size_t w = conv_plan_workspace(plan_at(c, B, l));
        if (w > need) need = w;
    }
    c->plans_ready[B] = 1;
    if (need <= c->ws_size) return 0;
    if (c->ws)
        tb_log("cuda: batch %d needs a %.0f MiB workspace: grown (CUDA graphs captured again)", B,
               (double)need / (1024.0 * 1024.0));
    return grow_workspace(c, need, err);
}

static void ensure_plans(CudaCtx *c, int B) {
    if (c->plans_ready[B]) return;
    TbErr e = {{0}};
    CHECK(plan_batch(c, B, 0, &e) == 0, "batch %d: %s", B, e.msg);
}

// Layer l's input: the bottleneck op's output for the decoder's first layer
// while the op is on, else the activation before it.
template <typename T>
static T *layer_in(CudaCtx *c, int l, int B) {
    return c->bn_on && l == c->nb ? (T *)c->d_bnout : act_at<T>(c, c->acts, l, B);
}

// The op on the encoder's output (frozen: on the held code, copied into every
// sample), then the counter moves on so the next pass draws new noise.
template <typename T>
static void enqueue_bottleneck(CudaCtx *c, int B) {
    size_t per = c->m->act_n[c->nb];
    T *x = act_at<T>(c, c->acts, c->nb, B);
    if (c->bn_freeze)
        for (int i = 0; i < B; i++)
            cudaCheck(cudaMemcpyAsync(x + (size_t)i * per, c->d_held, per * sizeof(T),
                                      cudaMemcpyDeviceToDevice, c->stream));
    bottleneck_forward_cuda((T *)c->d_bnout, x, c->d_bn + 1, c->d_bn, c->d_pass, B, c->bn_c,
                            (int)(per / c->bn_c), c->layout, c->stream);
    bottleneck_next_cuda(c->d_pass, c->stream);
}

// Layer l's convolution (one cuDNN call, counted) x -> y with the plans of B.
template <typename T>
static void conv_forward(CudaCtx *c, int l, int B, T *y, const T *x) {
    const Layer *L = &c->m->layers[l];
    const T *w = conv_w(c, (T *)NULL) + L->w_off;
    if (L->kind == LAYER_CONV)
        conv2d_forward_cuda(y, x, w, plan_at(c, B, l), c->cudnn, c->ws, c->ws_size, c->stream);
    else
        convt2d_forward_cuda(y, x, w, plan_at(c, B, l), c->cudnn, c->ws, c->ws_size, c->stream);
    c->cudnn_calls++;
}

// Layer l's weight gradient from d, and its input gradient into dx unless NULL:
// one cuDNN call each (counted).
template <typename T>
static void conv_backward(CudaCtx *c, int l, int B, T *dx, const T *d, const T *x) {
    const Layer *L = &c->m->layers[l];
    const T *w = conv_w(c, (T *)NULL) + L->w_off;
    T *dw = conv_dw(c, (T *)NULL) + L->w_off;
    if (L->kind == LAYER_CONV)
        conv2d_backward_cuda(dx, dw, d, x, w, plan_at(c, B, l), c->cudnn, c->ws, c->ws_size,
                             c->stream);
    else
        convt2d_backward_cuda(dx, dw, d, x, w, plan_at(c, B, l), c->cudnn, c->ws, c->ws_size,
                              c->stream);
    c->cudnn_calls += dx ? 2 : 1;
}

// The forward pass up to layer `last` (exclusive): a step leaves the last
// layer's bias and activation to the fused loss kernel.
template <typename T>
static void enqueue_forward_to(CudaCtx *c, int B, int last) {
    const Model *m = c->m;
    for (int l = c->bn_freeze ? c->nb : 0; l < c->L; l++) {
        const Layer *L = &m->layers[l];
        if (c->bn_on && l == c->nb) enqueue_bottleneck<T>(c, B);
        T *y = act_at<T>(c, c->acts, l + 1, B);
        conv_forward(c, l, B, y, (const T *)layer_in<T>(c, l, B));
        if (l < last)
            bias_act_forward_cuda(y, c->params + L->b_off, B, L->cout, L->hout * L->wout, L->act,
                                  m->spec.slope, c->layout, c->stream);
    }
}

// The batch from the frame store, then the forward pass (cuda_forward).
template <typename T>
static void enqueue_gather_forward(CudaCtx *c, int B) {
    frames_gather_cuda(act_at<T>(c, c->acts, 0, B), act_at<T>(c, c->dacts, 0, B), c->d_store,
                       c->d_slots, B, c->H, c->W, c->layout, c->stream);
    enqueue_forward_to<T>(c, B, c->L);
}

// Which kernels a step launches (and which graph replays it): Adam else SGD,
// L1 else MSE, the bottleneck op or none, the encoder frozen or not.
enum { STEP_ADAM = 1, STEP_L1 = 2, STEP_BN = 4, STEP_FROZEN = 8 };
static int step_kind(const CudaCtx *c, const Hyper *h) {
    return (h->optimizer == OPT_ADAM ? STEP_ADAM : 0) | (h->loss == LOSS_L1 ? STEP_L1 : 0) |
           (c->bn_on ? STEP_BN : 0) | (c->bn_freeze ? STEP_FROZEN : 0);
}

// Everything of one step, in stream order; this is what the graph captures.
template <typename T>
static void enqueue_step(CudaCtx *c, int B, int kind) {
    const Model *m = c->m;
    int nl = c->L;
    float *d_loss = c->d_scalars, *d_norm = c->d_scalars + 1;
    // The batch from the frame store, by the slots this op pushed: the input,
    // and the target (dacts[0]: the input itself, or the clean frames).
    frames_gather_cuda(act_at<T>(c, c->acts, 0, B), act_at<T>(c, c->dacts, 0, B), c->d_store,
                       c->d_slots, B, c->H, c->W, c->layout, c->stream);
    enqueue_forward_to<T>(c, B, nl - 1);
    // The output layer's bias and activation, the loss (MSE or L1) against the
    // target in dacts[0] (the input itself, or the clean frames of a
    // transformed input), its gradient back through the activation and the
    // bias gradient: one kernel, which seeds the backward pass.
    const Layer *Lo = &m->layers[nl - 1];
    out_act_loss_cuda(act_at<T>(c, c->acts, nl, B), act_at<T>(c, c->dacts, nl, B),
                      c->grads + Lo->b_off, d_loss, c->params + Lo->b_off,
                      (const T *)act_at<T>(c, c->dacts, 0, B), B, Lo->cout, Lo->hout * Lo->wout, Lo->act,
                      m->spec.slope, (kind & STEP_L1) ? LOSS_L1 : LOSS_MSE, c->reduce_scratch,
                      c->d_done, c->layout, c->stream);
    // Frozen, the backward pass ends at the decoder's first layer.
    int l_end = (kind & STEP_FROZEN) ? c->nb : 0;
    for (int l = nl - 1; l >= l_end; l--) {
        const Layer *L = &m->layers[l];
        T *d = act_at<T>(c, c->dacts, l + 1, B);
        const T *y = act_at<T>(c, c->acts, l + 1, B);
        const T *x = layer_in<T>(c, l, B);
        if ((kind & STEP_BN) && l + 1 == c->nb)  // back through the op
            bottleneck_backward_cuda(d, d, c->d_bn + 1, B, c->bn_c,
                                     (int)(m->act_n[c->nb] / c->bn_c), c->layout, c->stream);
        // No gradient for the image, nor for the held code.
        T *dx = l > l_end ? act_at<T>(c, c->dacts, l, B) : NULL;
        if (l < nl - 1)  // the output layer's is done
            bias_act_backward_cuda(d, c->grads + L->b_off, y, B, L->cout, L->hout * L->wout,
                                   L->act, m->spec.slope, c->bias_scratch, c->d_done, c->layout,
                                   c->stream);
        conv_backward(c, l, B, dx, d, x);
    }
    // Frozen, only the decoder's block [off, n) is measured, clipped and updated.
    size_t off = (kind & STEP_FROZEN) ? model_decoder_off(m) : 0, n = m->n_params - off;
    // bf16: the norm kernel brings the weights' gradients over from g16 and
    // the update writes w16: no launch more than in fp32.
    __nv_bfloat16 *g16 = c->bf16 ? c->g16 + off : NULL, *w16 = c->bf16 ? c->w16 + off : NULL;
    const uint8_t *wmask = c->bf16 ? c->wmask + off : NULL;
    grad_norm_stats_cuda(d_norm, c->d_ring, d_loss, c->d_step, c->grads + off, g16, wmask, n,
                         c->reduce_scratch, c->d_done, c->stream);
    if (kind & STEP_ADAM)
        adam_update_cuda(c->params + off, w16, c->mom + off, c->var + off, c->grads + off, n,
                         d_norm, c->d_step, c->stream);
    else
        sgd_update_cuda(c->params + off, w16, c->mom + off, c->grads + off, n, d_norm, c->d_step,
                        c->stream);
}

// enqueue_step, its work counted into key_work[key] (a replay of the key's
// graph runs the same kernels).
static void enqueue_counted(CudaCtx *c, int B, int kind) {
    unsigned long k0 = cuda_launch_count();
    long d0 = c->cudnn_calls;
    if (c->bf16) enqueue_step<__nv_bfloat16>(c, B, kind);
    else enqueue_step<float>(c, B, kind);
    CudaStepWork *w = &c->key_work[B * STEP_KINDS + kind];
    w->kernels = (int)(cuda_launch_count() - k0);
    w->cudnn = (int)(c->cudnn_calls - d0);
}

// Begins op number c->ops (a step, or a forward: both gather from the frame
// store): its record, in pinned slot j (free once op ops - PIN_RING is done:
// waits only when that far behind), goes to d_op in one copy: a step's
// hyperparameters (h not NULL) and the batch's 2B store slots, or the slots
// alone. Returns j for end_op.
static int push_op(CudaCtx *c, const Hyper *h, int slot, int B) {
    int j = (int)(c->ops % PIN_RING);
    if (c->op_ev_used[j]) cudaCheck(cudaEventSynchronize(c->op_ev[j]));
    uint8_t *rec = c->h_op + (size_t)j * c->op_bytes;
    int *hs = (int *)(rec + c->op_slots);
    for (int i = 0; i < B; i++) {
        hs[i] = c->cur[i];
        hs[B + i] = c->cur[c->max_batch + i];
        c->reader[hs[i]] = c->reader[hs[B + i]] = c->ops + 1;
    }
    size_t from = h ? 0 : c->op_slots, end = c->op_slots + 2 * (size_t)B * sizeof(int);
    if (h) step_params_fill((StepParams *)rec, h, slot);
    cudaCheck(cudaMemcpyAsync(c->d_op + from, rec + from, end - from, cudaMemcpyHostToDevice,
                              c->stream));
    return j;
}

// Ends the op push_op began: its event marks when its slots are read.
static void end_op(CudaCtx *c, int j) {
    cudaCheck(cudaEventRecord(c->op_ev[j], c->stream));
    c->op_ev_used[j] = 1;
    c->ops++;
}

// Captures the step into a graph ready to launch. Whatever fails inside (a
// check records the first failure instead of exiting), the capture is always
// ended; returns NULL with the reason in why if anything failed.
static cudaGraphExec_t capture_step(CudaCtx *c, int B, int kind, char *why, size_t n) {
    cudaGraph_t g = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(why, n, "cudaStreamBeginCapture: %s", cudaGetErrorString(e));
        return NULL;
    }
    cuda_capture_begin(c->inject_capture_fail);
    c->inject_capture_fail = 0;  // once
    enqueue_counted(c, B, kind);
    int failed = cuda_capture_end(why, n);
    e = cudaStreamEndCapture(c->stream, &g);
    if (!failed && e != cudaSuccess)
        failed = 1, snprintf(why, n, "cudaStreamEndCapture: %s", cudaGetErrorString(e));
    if (!failed && (e = cudaGraphInstantiate(&exec, g, 0)) != cudaSuccess)
        failed = 1, exec = NULL, snprintf(why, n, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
    if (g) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();  // a failed capture leaves its error behind: clear it
    for (char *p = why; failed && *p; p++)
        if (*p == '\n') *p = ' ';  // one log line
    return failed ? NULL : exec;
}

static void run_step(CudaCtx *c, int B, int kind) {
    if (!c->use_graphs) {
        enqueue_counted(c, B, kind);
        return;
    }
    int key = B * STEP_KINDS + kind;
    // First use of this shape runs eagerly, so that cuDNN and the runtime load
    // their kernels (and do any lazy setup) outside of a capture.
    if (!c->graphs[key] && c->graph_runs[key]++ == 0) {
        enqueue_counted(c, B, kind);
        return;
    }
    if (!c->graphs[key]) {
        char why[640];
        c->graphs[key] = capture_step(c, B, kind, why, sizeof why);
        if (!c->graphs[key]) {
            tb_log("cuda: capturing the training step failed (%s); running it without CUDA graphs",
                   why);
            c->use_graphs = 0;
            drop_graphs(c);
            enqueue_counted(c, B, kind);  // the captured work never ran
            return;
        }
    }
    cudaCheck(cudaGraphLaunch(c->graphs[key], c->stream));
    c->graph_launches++;
}

// ---------------------------------------------------------------- the table

static void cuda_destroy(Backend *b) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    if (c) {
        // Teardown also runs after a failed init: ignore errors, free what exists.
        if (c->stream) (void)cudaStreamSynchronize(c->stream);
        if (c->copy) (void)cudaStreamSynchronize(c->copy);
        if (c->readback) (void)cudaStreamSynchronize(c->readback);
        if (c->graphs)
            for (int k = 0; k < (c->max_batch + 1) * STEP_KINDS; k++)
                if (c->graphs[k]) (void)cudaGraphExecDestroy(c->graphs[k]);
        if (c->plans)
            for (int B = 0; B <= c->max_batch; B++)
                if (c->plans_ready[B])
                    for (int l = 0; l < c->L; l++) conv_plan_destroy(plan_at(c, B, l));
        for (int j = 0; j < PIN_RING; j++)
            if (c->op_ev[j]) (void)cudaEventDestroy(c->op_ev[j]);
        for (int j = 0; j < FRAME_RING; j++)
            if (c->frame_ev[j]) (void)cudaEventDestroy(c->frame_ev[j]);
        for (int j = 0; j < PIN_RING; j++)
            if (c->bn_ev[j]) (void)cudaEventDestroy(c->bn_ev[j]);
        void *dev[] = {c->pblock, c->ablock, c->ws, c->bias_scratch, c->reduce_scratch, c->d_done,
                       c->d_scalars, c->d_op, c->d_ring, c->d_store, c->d_rgb,
                       c->d_bnout, c->d_held, c->d_bn, c->d_pass, c->w16, c->g16, c->wmask};
        for (size_t k = 0; k < sizeof dev / sizeof dev[0]; k++)
            if (dev[k]) (void)cudaFree(dev[k]);
        for (int i = 0; i <= TB_SLOTS; i++)
            if (c->slots[i]) (void)cudaFree(c->slots[i]);
        if (c->d_dec) (void)cudaFree(c->d_dec);
        if (c->cw_dev) (void)cudaFree(c->cw_dev);
        if (c->cw_ev) (void)cudaEventDestroy(c->cw_ev);
        void *host[] = {c->h_op, c->h_frames, c->h_stats, c->h_rgb, c->h_bn, c->cw_host};
        for (size_t k = 0; k < sizeof host / sizeof host[0]; k++)
            if (host[k]) (void)cudaFreeHost(host[k]);
        if (c->cudnn) cudnnDestroy(c->cudnn);
        if (c->stream) (void)cudaStreamDestroy(c->stream);
        if (c->copy) (void)cudaStreamDestroy(c->copy);
        if (c->readback) (void)cudaStreamDestroy(c->readback);
        for (int k = 0; k < 2; k++) {
            if (c->rb_conv[k]) (void)cudaEventDestroy(c->rb_conv[k]);
            if (c->rb_done[k]) (void)cudaEventDestroy(c->rb_done[k]);
            if (c->d_rb[k]) (void)cudaFree(c->d_rb[k]);
            if (c->h_rb[k]) (void)cudaFreeHost(c->h_rb[k]);
        }
        free(c->tag);
        free(c->reader);
        free(c->cur);
        free(c->plans);
        free(c->plans_ready);
        free(c->graphs);
        free(c->graph_runs);
        free(c->key_work);
        free(c);
    }
    free(b);
}

// Host <-> device copies of the blocks: ordered after queued steps, then waited for.
static void copy_sync(CudaCtx *c, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, kind, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
}

// NHWC: each conv weight tensor (d0, d1, K, K) of a parameter-sized block
// (PyTorch's: (out, in) for a conv, (in, out) for a convT) is (d0, K, K, d1)
// on the device; biases stay. dst and src are whole blocks, not the same.
static void weights_layout(const Model *m, float *dst, const float *src, int to_device) {
    memcpy(dst, src, m->n_params * sizeof(float));
    for (int l = 0; l < m->n_layers; l++) {
        const Layer *L = &m->layers[l];
        int d0 = L->kind == LAYER_CONVT ? L->cin : L->cout, d1 = L->kind == LAYER_CONVT ? L->cout : L->cin;
        size_t kk = (size_t)L->k * L->k;
        float *o = dst + L->w_off;
        const float *w = src + L->w_off;
        for (size_t a = 0; a < (size_t)d0; a++)
            for (size_t b = 0; b < (size_t)d1; b++)
                for (size_t rs = 0; rs < kk; rs++) {
                    size_t pt = (a * d1 + b) * kk + rs, dev = (a * kk + rs) * d1 + b;
                    if (to_device) o[dev] = w[pt];
                    else o[pt] = w[dev];
                }
    }
}

// k parameter-sized blocks from the host into dev (through a host copy in
// the device's layout when NHWC), or back; waits.
static void blocks_to_device(CudaCtx *c, float *dev, const float *h, int k) {
    size_t n = c->m->n_params;
    if (c->layout == TB_NCHW) {
        copy_sync(c, dev, h, k * n * sizeof(float), cudaMemcpyHostToDevice);
        return;
    }
    float *t = (float *)tb_malloc(k * n * sizeof(float));
    for (int j = 0; j < k; j++) weights_layout(c->m, t + j * n, h + j * n, 1);
    copy_sync(c, dev, t, k * n * sizeof(float), cudaMemcpyHostToDevice);
    free(t);
}

static void blocks_from_device(CudaCtx *c, float *h, const float *dev, int k) {
    size_t n = c->m->n_params;
    if (c->layout == TB_NCHW) {
        copy_sync(c, h, dev, k * n * sizeof(float), cudaMemcpyDeviceToHost);
        return;
    }
    float *t = (float *)tb_malloc(k * n * sizeof(float));
    copy_sync(c, t, dev, k * n * sizeof(float), cudaMemcpyDeviceToHost);
    for (int j = 0; j < k; j++) weights_layout(c->m, h + j * n, t + j * n, 0);
    free(t);
}

static void cuda_set_params(Backend *b, const float *p) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    blocks_to_device(c, c->params, p, 1);
    refresh_w16(c, c->stream);
}

static void cuda_get_params(Backend *b, float *p) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    blocks_from_device(c, p, c->params, 1);
}

// m and v are adjacent: Adam's state (m then v, 2n floats) is one copy.
static void cuda_set_opt_state(Backend *b, const float *s, int optimizer) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    blocks_to_device(c, c->mom, s, optimizer == OPT_ADAM ? 2 : 1);
}

static void cuda_get_opt_state(Backend *b, float *s, int optimizer) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    blocks_from_device(c, s, c->mom, optimizer == OPT_ADAM ? 2 : 1);
}

static void cuda_reset_opt_state(Backend *b) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    cudaCheck(cudaMemsetAsync(c->mom, 0, 2 * c->m->n_params * sizeof(float), c->stream));
}

// Frame f into store slot s through the pinned staging frame `stage`, on the
// copy stream once the last op that read s is done (known done when it is
// PIN_RING ops back: push_op waited for it; else the copy stream waits for
// its event, which nothing has recorded again since).
static void upload_to(CudaCtx *c, int s, const uint8_t *f, uint8_t *stage) {
    unsigned long long r = c->reader[s];
    if (r && r + PIN_RING > c->ops)
        cudaCheck(cudaStreamWaitEvent(c->copy, c->op_ev[(r - 1) % PIN_RING], 0));
    memcpy(stage, f, c->frame_bytes);
    cudaCheck(cudaMemcpyAsync(c->d_store + (size_t)s * c->frame_bytes, stage, c->frame_bytes,
                              cudaMemcpyHostToDevice, c->copy));
    c->pending.upload_bytes += (long long)c->frame_bytes;
    c->uploaded += (long long)c->frame_bytes;
}

// The store slot for frame i of a load: a numbered frame's own cache slot (id
// % n_cache), unless another frame of this load took it; else scratch.
// *held: the slot already holds that frame.
static int store_slot(CudaCtx *c, const uint64_t *ids, int i, int off, int *held) {
    int scratch = c->n_cache + (int)(c->ops % 2) * 2 * c->max_batch + off + i;
    *held = 0;
    if (!ids || c->n_cache == 0) return scratch;
    int s = (int)(ids[i] % (uint64_t)c->n_cache);
    for (int k = 0; k < i; k++)
        if (c->cur[off + k] == s && ids[k] != ids[i]) return scratch;  // taken in this load
    *held = c->tag[s] == ids[i] + 1;
    c->tag[s] = ids[i] + 1;
    return s;
}

// B frames into the store, their slots into cur + off (0: inputs, max_batch:
// targets): only those it does not hold are sent, from a pinned staging
// buffer (reused once its copies are done) on the copy stream; the compute
// stream waits for them with an event. Nothing here waits for the device
// unless FRAME_RING loads behind.
static void load_frames(CudaCtx *c, const uint8_t *const *frames, const uint64_t *ids, int B,
                        int off) {
    int k = (int)(c->frame_count % FRAME_RING), sent = 0;
    uint8_t *stage = c->h_frames + (size_t)k * c->max_batch * c->frame_bytes;
    for (int i = 0; i < B; i++) {
        int held;
        int s = store_slot(c, ids, i, off, &held);
        c->cur[off + i] = s;
        if (held) continue;
        if (sent == 0 && c->frame_ev_used[k]) cudaCheck(cudaEventSynchronize(c->frame_ev[k]));
        upload_to(c, s, frames[i], stage + (size_t)sent++ * c->frame_bytes);
    }
    if (!sent) return;
    cudaCheck(cudaEventRecord(c->frame_ev[k], c->copy));
    c->frame_ev_used[k] = 1;
    c->frame_count++;
    cudaCheck(cudaStreamWaitEvent(c->stream, c->frame_ev[k], 0));
}

// The input, and the target too until load_targets says otherwise. The input
// transforms (ops.h) run on the host before this; a kernel for them would go
// in the step, after the gather.
static void load(CudaCtx *c, const uint8_t *const *frames, const uint64_t *ids, int B) {
    CHECK(B >= 1 && B <= c->max_batch, "batch %d outside 1..%d", B, c->max_batch);
    load_frames(c, frames, ids, B, 0);
    memcpy(c->cur + c->max_batch, c->cur, (size_t)B * sizeof(int));
    c->batch = B;
}

static void cuda_load_batch(Backend *b, const uint8_t *const *frames, int B) {
    load((CudaCtx *)b->ctx, frames, NULL, B);
}

static void cuda_load_batch_ids(Backend *b, const uint8_t *const *frames, const uint64_t *ids,
                                int B) {
    load((CudaCtx *)b->ctx, frames, ids, B);
}

static void cuda_load_targets(Backend *b, const uint8_t *const *frames, int B) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(B == c->batch, "targets for %d samples, %d loaded", B, c->batch);
    load_frames(c, frames, NULL, B, c->max_batch);
}

static void cuda_train_step(Backend *b, int B, const Hyper *h, int slot) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(B == c->batch, "step on %d samples, %d loaded", B, c->batch);
    CHECK(slot >= 0 && slot < TB_STATS_RING, "stats slot %d", slot);
    CHECK(h->optimizer == OPT_SGD || h->optimizer == OPT_ADAM, "optimizer %d", h->optimizer);
    CHECK(h->loss == LOSS_MSE || h->loss == LOSS_L1, "loss %d", h->loss);
    ensure_plans(c, B);
    int j = push_op(c, h, slot, B);
    int kind = step_kind(c, h);
    run_step(c, B, kind);
    end_op(c, j);
    c->fwd_batch = B;
    // This step's work: its loads' (since the last step) and the step's own.
    const CudaStepWork *w = &c->key_work[B * STEP_KINDS + kind];
    c->last = c->pending;
    c->last.kernels += w->kernels;
    c->last.cudnn += w->cudnn;
    memset(&c->pending, 0, sizeof c->pending);
}

static void cuda_forward(Backend *b, int B) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(B == c->batch, "forward on %d samples, %d loaded", B, c->batch);
    ensure_plans(c, B);
    int j = push_op(c, NULL, 0, B);
    if (c->bf16) enqueue_gather_forward<__nv_bfloat16>(c, B);
    else enqueue_gather_forward<float>(c, B);
    end_op(c, j);
    c->fwd_batch = B;
}

// noise | mask to the device through a pinned slot the device has finished
// reading; on freeze, the newest frame's code of the last pass is held.
static void cuda_bottleneck(Backend *b, const float *mask, float noise, int freeze) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    int j = (int)(c->bn_count++ % PIN_RING), all = 1;
    if (c->bn_ev_used[j]) cudaCheck(cudaEventSynchronize(c->bn_ev[j]));
    float *h = c->h_bn + (size_t)j * (1 + c->bn_c);
    h[0] = noise > 0 ? noise : 0;
    for (int i = 0; i < c->bn_c; i++) {
        h[1 + i] = mask ? mask[i] : 1.0f;
        all &= h[1 + i] == 1.0f;
    }
    cudaCheck(cudaMemcpyAsync(c->d_bn, h, (1 + c->bn_c) * sizeof(float), cudaMemcpyHostToDevice,
                              c->stream));
    cudaCheck(cudaEventRecord(c->bn_ev[j], c->stream));
    c->bn_ev_used[j] = 1;
    size_t per = c->m->act_n[c->nb];
    if (freeze && !c->bn_freeze) {
        if (c->fwd_batch)
            cudaCheck(cudaMemcpyAsync(c->d_held, act_ptr(c, c->acts, c->nb, c->fwd_batch),
                                      per * c->esz, cudaMemcpyDeviceToDevice, c->stream));
        else cudaCheck(cudaMemsetAsync(c->d_held, 0, per * c->esz, c->stream));
    }
    c->bn_freeze = freeze != 0;
    c->bn_on = !all || h[0] > 0 || c->bn_freeze;
}

static void cuda_read_stats(Backend *b, StepStats *out, int n) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(n >= 0 && n <= TB_STATS_RING, "read_stats n=%d", n);
    if (n == 0) return;
    copy_sync(c, c->h_stats, c->d_ring, (size_t)n * sizeof(StepStats), cudaMemcpyDeviceToHost);
    memcpy(out, c->h_stats, (size_t)n * sizeof(StepStats));
}

static const void *output_sample(CudaCtx *c, int i) {
    CHECK(i >= 0 && i < c->batch, "output %d of a batch of %d", i, c->batch);
    return (const char *)act_ptr(c, c->acts, c->L, c->batch) + c->esz * i * c->m->act_n[c->L];
}

// One sample's RGB8 from the activation type's tensor x.
static void to_frame(CudaCtx *c, uint8_t *rgb, const void *x) {
    if (c->bf16) tensor_to_frame_cuda(rgb, (const __nv_bfloat16 *)x, c->H, c->W, c->layout, c->stream);
    else tensor_to_frame_cuda(rgb, (const float *)x, c->H, c->W, c->layout, c->stream);
}

// Collects the read-back in flight if it has arrived, asks for the current
// output unless one is still on its way (into the buffer that is not the
// newest: neither the host nor a copy is using it), gives the newest once.
static int cuda_output_recent(Backend *b, uint8_t *rgb) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    if (c->rb_busy >= 0) {
        cudaError_t e = cudaEventQuery(c->rb_done[c->rb_busy]);
        if (e == cudaSuccess) {
            c->rb_newest = c->rb_busy, c->rb_busy = -1, c->rb_fresh = 1;
        } else if (e != cudaErrorNotReady) {
            cudaCheck(e);
        } else {
            (void)cudaGetLastError();  // not ready is no error
        }
    }
    if (c->rb_busy < 0 && c->batch > 0) {
        int k = c->rb_newest == 0 ? 1 : 0;
        to_frame(c, c->d_rb[k], output_sample(c, 0));
        cudaCheck(cudaEventRecord(c->rb_conv[k], c->stream));
        cudaCheck(cudaStreamWaitEvent(c->readback, c->rb_conv[k], 0));
        cudaCheck(cudaMemcpyAsync(c->h_rb[k], c->d_rb[k], c->frame_bytes, cudaMemcpyDeviceToHost,
                                  c->readback));
        cudaCheck(cudaEventRecord(c->rb_done[k], c->readback));
        c->rb_busy = k;
    }
    if (!c->rb_fresh) return 0;
    memcpy(rgb, c->h_rb[c->rb_newest], c->frame_bytes);
    c->rb_fresh = 0;
    return 1;
}

static void cuda_get_output(Backend *b, int i, uint8_t *rgb) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    to_frame(c, c->d_rgb, output_sample(c, i));
    copy_sync(c, c->h_rgb, c->d_rgb, c->frame_bytes, cudaMemcpyDeviceToHost);
    memcpy(rgb, c->h_rgb, c->frame_bytes);
}

// Snapshot slots in device memory: params (n floats), then m and v (adjacent in
// the block, 2n floats). Device-to-device copies and the lerp kernel on the
// stream, ordered with the steps (never inside a captured graph); nothing waits.
static int cuda_slot_save(Backend *b, int i, TbErr *err) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(i >= 0 && i <= TB_SLOTS, "slot %d", i);
    size_t n = c->m->n_params;
    if (!c->slots[i]) {
        cudaError_t e = cudaMalloc((void **)&c->slots[i], 3 * n * sizeof(float));
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            c->slots[i] = NULL;
            return tb_fail(err, "slot %d: no room on the GPU (%.0f MiB): %s", i,
                           3.0 * n * sizeof(float) / (1024.0 * 1024.0), cudaGetErrorString(e));
        }
    }
    cudaCheck(cudaMemcpyAsync(c->slots[i], c->params, n * sizeof(float), cudaMemcpyDeviceToDevice,
                              c->stream));
    cudaCheck(cudaMemcpyAsync(c->slots[i] + n, c->mom, 2 * n * sizeof(float),
                              cudaMemcpyDeviceToDevice, c->stream));
    return 0;
}

static void cuda_slot_recall(Backend *b, int i) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(i >= 0 && i <= TB_SLOTS && c->slots[i], "recall of empty slot %d", i);
    size_t n = c->m->n_params;
    cudaCheck(cudaMemcpyAsync(c->params, c->slots[i], n * sizeof(float), cudaMemcpyDeviceToDevice,
                              c->stream));
    cudaCheck(cudaMemcpyAsync(c->mom, c->slots[i] + n, 2 * n * sizeof(float),
                              cudaMemcpyDeviceToDevice, c->stream));
    refresh_w16(c, c->stream);
}

static void cuda_slot_blend(Backend *b, int i, float a, int with_state) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(i >= 0 && i <= TB_SLOTS && c->slots[i], "blend with empty slot %d", i);
    size_t n = c->m->n_params;
    lerp_cuda(c->params, c->slots[i], n, a, c->stream);
    if (with_state) lerp_cuda(c->mom, c->slots[i] + n, 2 * n, a, c->stream);
    refresh_w16(c, c->stream);
}

// `waiter` runs nothing more until what `done` has queued so far is done.
static void stream_after(cudaStream_t waiter, cudaStream_t done) {
    cudaEvent_t ev;
    cudaCheck(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaCheck(cudaEventRecord(ev, done));
    cudaCheck(cudaStreamWaitEvent(waiter, ev, 0));
    cudaCheck(cudaEventDestroy(ev));  // released once it completes
}

// The channels' coupling (backend.h couple) as one kernel on bs[0]'s stream:
// it starts after every other backend's queued work, and each other stream
// waits for it before its next step. Nothing waits on the host. The kernel
// reads the k weight pointers from cw_dev, an array in bs[0]'s context made on
// the first call and sent again only when the set of backends changes, from
// pinned cw_host (rewritten only once cw_ev says its last copy is done: a set
// that changes again so soon waits for that one copy). Never inside a
// captured graph. -1, nothing done, when the nets are on different devices or
// the first call's allocation fails: the host path takes over.
static int couple_ptrs(CudaCtx *c0, float *const *w, int k) {
    if (!c0->cw_ev) {  // made last: each part made once, whichever call gets that far
        if ((!c0->cw_dev && cudaMalloc((void **)&c0->cw_dev, TB_COUPLE_MAX * sizeof(float *)) != cudaSuccess) ||
            (!c0->cw_host && cudaHostAlloc((void **)&c0->cw_host, TB_COUPLE_MAX * sizeof(float *),
                                           cudaHostAllocDefault) != cudaSuccess) ||
            cudaEventCreateWithFlags(&c0->cw_ev, cudaEventDisableTiming) != cudaSuccess) {
            c0->cw_ev = NULL;
            (void)cudaGetLastError();
            return -1;  // what was made stays for cuda_destroy; the next call tries again
        }
    }
    if (c0->cw_n == k && memcmp(c0->cw_set, w, (size_t)k * sizeof *w) == 0) return 0;
    if (c0->cw_n) cudaCheck(cudaEventSynchronize(c0->cw_ev));  // cw_host's last copy
    memcpy(c0->cw_host, w, (size_t)k * sizeof *w);
    memcpy(c0->cw_set, w, (size_t)k * sizeof *w);
    c0->cw_n = k;
    // Stream-ordered: the last coupling kernel has read the old set before it changes.
    cudaCheck(cudaMemcpyAsync(c0->cw_dev, c0->cw_host, (size_t)k * sizeof *w, cudaMemcpyHostToDevice,
                              c0->stream));
    cudaCheck(cudaEventRecord(c0->cw_ev, c0->stream));
    return 0;
}

static int cuda_couple(Backend *const *bs, int k, float c) {
    CudaCtx *c0 = (CudaCtx *)bs[0]->ctx;
    float *w[TB_COUPLE_MAX];
    for (int j = 0; j < k; j++) {
        if (bs[j]->device != bs[0]->device) return -1;
        w[j] = ((CudaCtx *)bs[j]->ctx)->params;
    }
    cudaCheck(cudaSetDevice(bs[0]->device));
    cudaStreamCaptureStatus cap;
    cudaCheck(cudaStreamIsCapturing(c0->stream, &cap));
    CHECK(cap == cudaStreamCaptureStatusNone, "coupling inside a captured graph");
    if (couple_ptrs(c0, w, k)) return -1;
    for (int j = 1; j < k; j++) stream_after(c0->stream, ((CudaCtx *)bs[j]->ctx)->stream);
    couple_cuda(c0->cw_dev, k, c0->m->n_params, c, c0->stream);
    for (int j = 0; j < k; j++) refresh_w16((CudaCtx *)bs[j]->ctx, c0->stream);  // same device
    for (int j = 1; j < k; j++) stream_after(((CudaCtx *)bs[j]->ctx)->stream, c0->stream);
    return 0;
}

extern "C" void backend_cuda_output_rgba(Backend *b, int i, void *dev_rgba, size_t pitch_bytes) {
    CHECK(b && b->name && strcmp(b->name, "cuda") == 0, "backend_cuda_output_rgba on a %s backend",
          b && b->name ? b->name : "null");
    CudaCtx *c = (CudaCtx *)b->ctx;
    cudaCheck(cudaSetDevice(b->device));  // not a table entry: no thunk sets it (interop extras)
    const void *x = output_sample(c, i);
    if (c->bf16)
        tensor_to_rgba_cuda((uint8_t *)dev_rgba, pitch_bytes, (const __nv_bfloat16 *)x, c->H, c->W,
                            c->layout, c->stream);
    else
        tensor_to_rgba_cuda((uint8_t *)dev_rgba, pitch_bytes, (const float *)x, c->H, c->W,
                            c->layout, c->stream);
}

// The atlas's tiles of activation `act` straight from the activation block (the
// layer get_activation reads), on the backend's stream.
extern "C" void backend_cuda_atlas_rgba(Backend *b, int act, const TileGeom *g, const uint8_t *dev_lut,
                                        void *dev_rgba, size_t pitch_bytes) {
    CHECK(b && b->name && strcmp(b->name, "cuda") == 0, "backend_cuda_atlas_rgba on a %s backend",
          b && b->name ? b->name : "null");
    CudaCtx *c = (CudaCtx *)b->ctx;
    cudaCheck(cudaSetDevice(b->device));
    CHECK(act >= 0 && act <= c->L && c->batch > 0, "atlas: activation %d (batch %d)", act, c->batch);
    CHECK((size_t)g->ch * g->sw * g->sh == c->m->act_n[act], "atlas: %d x %dx%d values for activation %d",
          g->ch, g->sw, g->sh, act);
    if (c->bf16)
        tiles_draw_cuda((uint8_t *)dev_rgba, pitch_bytes, act_at<__nv_bfloat16>(c, c->acts, act, c->batch),
                        g, dev_lut, c->layout, c->stream);
    else
        tiles_draw_cuda((uint8_t *)dev_rgba, pitch_bytes, act_at<float>(c, c->acts, act, c->batch), g,
                        dev_lut, c->layout, c->stream);
}

extern "C" long backend_cuda_graph_launches(Backend *b) {
    CHECK(b && b->name && strcmp(b->name, "cuda") == 0, "backend_cuda_graph_launches on a %s backend",
          b && b->name ? b->name : "null");
    return ((CudaCtx *)b->ctx)->graph_launches;
}

extern "C" void backend_cuda_step_work(Backend *b, CudaStepWork *w, long long *uploaded) {
    CHECK(b && b->name && strcmp(b->name, "cuda") == 0, "backend_cuda_step_work on a %s backend",
          b && b->name ? b->name : "null");
    CudaCtx *c = (CudaCtx *)b->ctx;
    if (w) *w = c->last;
    if (uploaded) *uploaded = c->uploaded;
}

extern "C" void *backend_cuda_stream(Backend *b) {
    CHECK(b && b->name && strcmp(b->name, "cuda") == 0, "backend_cuda_stream on a %s backend",
          b && b->name ? b->name : "null");
    // The caller enqueues on it next (interop): its device must be this thread's current one.
    cudaCheck(cudaSetDevice(b->device));
    return ((CudaCtx *)b->ctx)->stream;
}

// Device-wide memory for the health report, of the current device (any
// thread: the runtime is thread-safe; backend_cuda_device.cu's thunk makes
// the backend's device current on the calling thread first).
static int cuda_mem_info(Backend *b, size_t *used, size_t *total) {
    (void)b;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    *used = total_b - free_b;
    *total = total_b;
    return 0;
}

// ---------------------------------------------------------------- looking inside
// The caller sees NCHW: in NCHW a read-out is one copy, in NHWC it goes
// through a host copy, transposed. Both wait.

// Channels of activation i (the input of layer i, or the output).
static int act_channels(const CudaCtx *c, int i) {
    return i < c->L ? c->m->layers[i].cin : c->m->layers[c->L - 1].cout;
}

// One sample of C channels x HW from NCHW to NHWC (to_nhwc) or back.
static void sample_layout(float *dst, const float *src, int C, size_t HW, int to_nhwc) {
    for (size_t ch = 0; ch < (size_t)C; ch++)
        for (size_t p = 0; p < HW; p++) {
            if (to_nhwc) dst[p * C + ch] = src[ch * HW + p];
            else dst[ch * HW + p] = src[p * C + ch];
        }
}

// n values of the activation type at dev into floats at out (bf16: through a
// host copy, each widened exactly); waits.
static void acts_to_host(CudaCtx *c, float *out, const void *dev, size_t n) {
    if (!c->bf16) {
        copy_sync(c, out, dev, n * sizeof(float), cudaMemcpyDeviceToHost);
        return;
    }
    __nv_bfloat16 *h = (__nv_bfloat16 *)tb_malloc(n * sizeof *h);
    copy_sync(c, h, dev, n * sizeof *h, cudaMemcpyDeviceToHost);
    for (size_t k = 0; k < n; k++) out[k] = __bfloat162float(h[k]);
    free(h);
}

// n floats at src to the activation type at dev (bf16: rounded to nearest
// even on the host); waits.
static void acts_to_device(CudaCtx *c, void *dev, const float *src, size_t n) {
    if (!c->bf16) {
        copy_sync(c, dev, src, n * sizeof(float), cudaMemcpyHostToDevice);
        return;
    }
    __nv_bfloat16 *h = (__nv_bfloat16 *)tb_malloc(n * sizeof *h);
    for (size_t k = 0; k < n; k++) h[k] = __float2bfloat16(src[k]);
    copy_sync(c, dev, h, n * sizeof *h, cudaMemcpyHostToDevice);
    free(h);
}

static void cuda_get_activation(Backend *b, int i, float *out) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    CHECK(i >= 0 && i <= c->L && c->batch > 0, "activation %d (batch %d)", i, c->batch);
    size_t n = c->m->act_n[i];
    if (c->layout == TB_NCHW) {
        acts_to_host(c, out, act_ptr(c, c->acts, i, c->batch), n);
        return;
    }
    float *t = (float *)tb_malloc(n * sizeof(float));
    acts_to_host(c, t, act_ptr(c, c->acts, i, c->batch), n);
    int C = act_channels(c, i);
    sample_layout(out, t, C, n / C, 0);
    free(t);
}

// decode's layers from activation nb on, in its own block.
template <typename T>
static void decode_layers(CudaCtx *c, int nb) {
    const Model *m = c->m;
    for (int l = nb; l < c->L; l++) {
        const Layer *L = &m->layers[l];
        T *y = act_at<T>(c, c->d_dec, l + 1, 1);
        conv_forward(c, l, 1, y, (const T *)act_at<T>(c, c->d_dec, l, 1));
        bias_act_forward_cuda(y, c->params + L->b_off, 1, L->cout, L->hout * L->wout, L->act,
                              m->spec.slope, c->layout, c->stream);
    }
}

// The decoder at batch 1 (its plans are made at creation) on a block of its own.
static void cuda_decode(Backend *b, const float *code, uint8_t *rgb) {
    CudaCtx *c = (CudaCtx *)b->ctx;
    const Model *m = c->m;
    int nb = model_bottleneck_act(m);
    if (!c->d_dec) cudaCheck(cudaMalloc(&c->d_dec, m->act_total * c->esz));
    ensure_plans(c, 1);
    if (c->layout == TB_NCHW && !c->bf16) {
        cudaCheck(cudaMemcpyAsync(act_ptr(c, c->d_dec, nb, 1), code, m->act_n[nb] * sizeof(float),
                                  cudaMemcpyHostToDevice, c->stream));
    } else {  // waits: the host copy is freed next
        size_t n = m->act_n[nb];
        float *t = (float *)tb_malloc(n * sizeof(float));
        int C = act_channels(c, nb);
        if (c->layout == TB_NHWC) sample_layout(t, code, C, n / C, 1);
        else memcpy(t, code, n * sizeof(float));
        acts_to_device(c, act_ptr(c, c->d_dec, nb, 1), t, n);
        free(t);
    }
    if (c->bf16) decode_layers<__nv_bfloat16>(c, nb);
    else decode_layers<float>(c, nb);
    to_frame(c, c->d_rgb, act_ptr(c, c->d_dec, c->L, 1));
    copy_sync(c, c->h_rgb, c->d_rgb, c->frame_bytes, cudaMemcpyDeviceToHost);
    memcpy(rgb, c->h_rgb, c->frame_bytes);
}

// ---------------------------------------------------------------- creation
// backend_cuda_create in steps of one job each. A step returns 0, or -1 with err
// filled; what it made before failing stays in the context, and cuda_destroy
// (the one cleanup path) frees whatever exists.

// The Backend table over context c.
static Backend *backend_table_new(const Model *m, int max_batch, CudaCtx *c) {
    Backend *b = (Backend *)tb_calloc(1, sizeof *b);
    b->name = "cuda";
    b->ctx = c;
    b->model = m;
    b->max_batch = max_batch;
    b->destroy = cuda_destroy;
    b->set_params = cuda_set_params;
    b->get_params = cuda_get_params;
    b->set_opt_state = cuda_set_opt_state;
    b->get_opt_state = cuda_get_opt_state;
    b->reset_opt_state = cuda_reset_opt_state;
    b->load_batch = cuda_load_batch;
    b->load_batch_ids = cuda_load_batch_ids;
    b->load_targets = cuda_load_targets;
    b->train_step = cuda_train_step;
    b->forward = cuda_forward;
    b->read_stats = cuda_read_stats;
    b->get_output = cuda_get_output;
    b->output_recent = cuda_output_recent;
    b->slot_save = cuda_slot_save;
    b->slot_recall = cuda_slot_recall;
    b->slot_blend = cuda_slot_blend;
    b->bottleneck = cuda_bottleneck;
    b->mem_info = cuda_mem_info;
    b->get_activation = cuda_get_activation;
    b->decode = cuda_decode;
    b->couple = cuda_couple;
    return b;
}

// Shapes, the environment's switches, and the host tables of plans and graphs
// (filled on first use of a batch size); no device work.
static void ctx_init(CudaCtx *c, const Model *m, int max_batch, const BackendOpts *o, int layout,
                     int bf16) {
    int nl = m->n_layers;
    c->m = m;
    c->max_batch = max_batch;
    c->L = nl;
    c->H = m->layers[0].hin;
    c->W = m->layers[0].win;
    c->frame_bytes = (size_t)c->H * c->W * 3;
    c->nb = model_bottleneck_act(m);
    c->bn_c = model_bottleneck_channels(m);
    c->tf32 = cuda_tf32_enabled();
    c->layout = layout;
    c->bf16 = bf16;
    c->esz = bf16 ? sizeof(__nv_bfloat16) : sizeof(float);
    // Escape hatches for debugging on a new machine: eager launches, and
    // cuDNN's heuristics instead of timing the algorithms at init.
    const char *g = getenv("TABULA_NO_GRAPH"), *f = getenv("TABULA_CUDNN_FIND");
    const char *inj = getenv("TABULA_INJECT_CAPTURE_FAIL");
    c->use_graphs = !(g && strcmp(g, "1") == 0);
    c->deterministic = o && o->deterministic;
    // Deterministic runs take the heuristics' picks, the same every run: timing
    // could pick another (deterministic, but different) algorithm next time.
    c->find = !(f && strcmp(f, "0") == 0) && !c->deterministic;
    c->inject_capture_fail = inj && strcmp(inj, "1") == 0;
    c->n_cache = o && o->frames > 0 ? o->frames : 0;  // asked for; size_frame_store bounds it
    c->plans = (ConvPlan *)tb_calloc((size_t)(max_batch + 1) * nl, sizeof(ConvPlan));
    c->plans_ready = (int *)tb_calloc((size_t)max_batch + 1, sizeof(int));
    c->graphs = (cudaGraphExec_t *)tb_calloc((size_t)(max_batch + 1) * STEP_KINDS,
                                             sizeof(cudaGraphExec_t));
    c->graph_runs = (int *)tb_calloc((size_t)(max_batch + 1) * STEP_KINDS, sizeof(int));
    c->key_work = (CudaStepWork *)tb_calloc((size_t)(max_batch + 1) * STEP_KINDS,
                                            sizeof(CudaStepWork));
}

// Values of the activation block's each half (activations, their gradients).
static size_t acts_floats(const CudaCtx *c) { return (size_t)c->max_batch * c->m->act_total; }

// Largest scratch bias_act_backward_cuda needs over every batch size and layer (floats).
static size_t bias_scratch_floats(const CudaCtx *c) {
    size_t most = 0;
    for (int B = 1; B <= c->max_batch; B++)
        for (int l = 0; l < c->L; l++) {
            const Layer *L = &c->m->layers[l];
            size_t s = bias_act_backward_scratch(B, L->cout, L->hout * L->wout, c->layout);
            if (s > most) most = s;
        }
    return most;
}

// The non-blocking stream all work runs on, and the cuDNN handle bound to it:
// the backend's one handle, made here and destroyed with it.
static int create_stream_and_handle(CudaCtx *c, TbErr *err) {
    CU_TRY(err, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CU_TRY(err, cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking));
    CU_TRY(err, cudaStreamCreateWithFlags(&c->readback, cudaStreamNonBlocking));
    cudnnStatus_t st = cudnnCreate(&c->cudnn);
    if (st != CUDNN_STATUS_SUCCESS) {
        c->cudnn = NULL;
        return cudnn_fail(err, st);
    }
    if ((st = cudnnSetStream(c->cudnn, c->stream)) != CUDNN_STATUS_SUCCESS)
        return tb_fail(err, "cuda backend: cudnnSetStream: %s", cudnnGetErrorString(st));
    return 0;
}

// The frame store's size: the frames asked for (BackendOpts.frames) while they
// take at most a quarter of the free device memory, then the scratch slots.
static int size_frame_store(CudaCtx *c, TbErr *err) {
    size_t free_b = 0, total_b = 0;
    CU_TRY(err, cudaMemGetInfo(&free_b, &total_b));
    size_t most = free_b / 4 / c->frame_bytes;
    if ((size_t)c->n_cache > most) {
        tb_log("cuda: %d frames asked to be kept on the device, room for %zu: the others are "
               "sent again when used", c->n_cache, most);
        c->n_cache = (int)most;
    }
    c->n_store = c->n_cache + 4 * c->max_batch;
    c->tag = (uint64_t *)tb_calloc((size_t)c->n_cache + 1, sizeof *c->tag);
    c->reader = (unsigned long long *)tb_calloc((size_t)c->n_store, sizeof *c->reader);
    c->cur = (int *)tb_calloc(2 * (size_t)c->max_batch, sizeof *c->cur);
    return 0;
}

// Device memory: the parameter and activation blocks, scratches, scalars, the
// stats ring and the frame buffers; the state is zeroed on the stream.
static int alloc_device_blocks(CudaCtx *c, TbErr *err) {
    size_t n = c->m->n_params, acts_n = acts_floats(c), bias_n = bias_scratch_floats(c);
    CU_TRY(err, cudaMalloc((void **)&c->pblock, 4 * n * sizeof(float)));
    c->params = c->pblock;
    c->grads = c->pblock + n;
    c->mom = c->pblock + 2 * n;
    c->var = c->pblock + 3 * n;
    CU_TRY(err, cudaMalloc((void **)&c->ablock, 2 * acts_n * c->esz));
    c->acts = c->ablock;
    c->dacts = (char *)c->ablock + acts_n * c->esz;
    if (bias_n) CU_TRY(err, cudaMalloc((void **)&c->bias_scratch, bias_n * sizeof(float)));
    CU_TRY(err, cudaMalloc((void **)&c->reduce_scratch, TB_REDUCE_BLOCKS * sizeof(double)));
    CU_TRY(err, cudaMalloc((void **)&c->d_scalars, 2 * sizeof(float)));
    CU_TRY(err, cudaMalloc((void **)&c->d_done, sizeof(unsigned)));
    CU_TRY(err, cudaMemsetAsync(c->d_done, 0, sizeof(unsigned), c->stream));
    c->op_slots = (sizeof(StepParams) + 15) / 16 * 16;
    c->op_bytes = c->op_slots + 2 * (size_t)c->max_batch * sizeof(int);
    CU_TRY(err, cudaMalloc((void **)&c->d_op, c->op_bytes));
    c->d_step = (StepParams *)c->d_op;
    c->d_slots = (int *)(c->d_op + c->op_slots);
    CU_TRY(err, cudaMalloc((void **)&c->d_ring, TB_STATS_RING * sizeof(StepStats)));
    CU_TRY(err, cudaMalloc((void **)&c->d_store, (size_t)c->n_store * c->frame_bytes));
    CU_TRY(err, cudaMalloc((void **)&c->d_rgb, c->frame_bytes));
    size_t bn_n = c->m->act_n[c->nb];
    CU_TRY(err, cudaMalloc((void **)&c->d_bnout, (size_t)c->max_batch * bn_n * c->esz));
    CU_TRY(err, cudaMalloc((void **)&c->d_held, bn_n * c->esz));
    CU_TRY(err, cudaMalloc((void **)&c->d_bn, (1 + (size_t)c->bn_c) * sizeof(float)));
    CU_TRY(err, cudaMalloc((void **)&c->d_pass, sizeof(unsigned long long)));
    CU_TRY(err, cudaMemsetAsync(c->d_held, 0, bn_n * c->esz, c->stream));
    CU_TRY(err, cudaMemsetAsync(c->d_bn, 0, sizeof(float), c->stream));  // noise 0
    CU_TRY(err, cudaMemsetAsync(c->d_pass, 0, sizeof(unsigned long long), c->stream));
    // Zeroed like the CPU backend: parameters until set_params, optimizer state,
    // activations (so an output read before any step is black, not garbage).
    CU_TRY(err, cudaMemsetAsync(c->pblock, 0, 4 * n * sizeof(float), c->stream));
    CU_TRY(err, cudaMemsetAsync(c->ablock, 0, 2 * acts_n * c->esz, c->stream));
    CU_TRY(err, cudaMemsetAsync(c->d_ring, 0, TB_STATS_RING * sizeof(StepStats), c->stream));
    CU_TRY(err, cudaMemsetAsync(c->d_scalars, 0, 2 * sizeof(float), c->stream));
    return 0;
}

// bf16: the weights' bfloat16 copy (zero, as the weights), cuDNN's bfloat16
// weight gradients (zero) and the mask of conv weights, made on the host.
static int alloc_bf16_blocks(CudaCtx *c, TbErr *err) {
    if (!c->bf16) return 0;
    size_t n = c->m->n_params;
    CU_TRY(err, cudaMalloc((void **)&c->w16, n * sizeof(__nv_bfloat16)));
    CU_TRY(err, cudaMalloc((void **)&c->g16, n * sizeof(__nv_bfloat16)));
    CU_TRY(err, cudaMalloc((void **)&c->wmask, n));
    CU_TRY(err, cudaMemsetAsync(c->w16, 0, n * sizeof(__nv_bfloat16), c->stream));
    CU_TRY(err, cudaMemsetAsync(c->g16, 0, n * sizeof(__nv_bfloat16), c->stream));
    uint8_t *mask = (uint8_t *)tb_calloc(n, 1);
    for (int l = 0; l < c->L; l++) {
        const Layer *L = &c->m->layers[l];
        memset(mask + L->w_off, 1, L->w_n);
    }
    cudaError_t e = cudaMemcpy(c->wmask, mask, n, cudaMemcpyHostToDevice);
    free(mask);
    CU_TRY(err, e);
    return 0;
}

// Pinned host rings (hyperparameters, frame staging, stats, one output frame)
// and the events that say when a ring slot is free again.
static int alloc_host_rings(CudaCtx *c, TbErr *err) {
    CU_TRY(err, cudaHostAlloc((void **)&c->h_op, PIN_RING * c->op_bytes, cudaHostAllocDefault));
    CU_TRY(err, cudaHostAlloc((void **)&c->h_frames, (size_t)FRAME_RING * c->max_batch * c->frame_bytes,
                              cudaHostAllocDefault));
    CU_TRY(err, cudaHostAlloc((void **)&c->h_stats, TB_STATS_RING * sizeof(StepStats), cudaHostAllocDefault));
    CU_TRY(err, cudaHostAlloc((void **)&c->h_rgb, c->frame_bytes, cudaHostAllocDefault));
    c->rb_busy = c->rb_newest = -1;
    for (int k = 0; k < 2; k++) {
        CU_TRY(err, cudaMalloc((void **)&c->d_rb[k], c->frame_bytes));
        CU_TRY(err, cudaHostAlloc((void **)&c->h_rb[k], c->frame_bytes, cudaHostAllocDefault));
        CU_TRY(err, cudaEventCreateWithFlags(&c->rb_conv[k], cudaEventDisableTiming));
        CU_TRY(err, cudaEventCreateWithFlags(&c->rb_done[k], cudaEventDisableTiming));
    }
    for (int j = 0; j < PIN_RING; j++)
        CU_TRY(err, cudaEventCreateWithFlags(&c->op_ev[j], cudaEventDisableTiming));
    for (int j = 0; j < FRAME_RING; j++)
        CU_TRY(err, cudaEventCreateWithFlags(&c->frame_ev[j], cudaEventDisableTiming));
    CU_TRY(err, cudaHostAlloc((void **)&c->h_bn, PIN_RING * (1 + (size_t)c->bn_c) * sizeof(float),
                              cudaHostAllocDefault));
    for (int j = 0; j < PIN_RING; j++)
        CU_TRY(err, cudaEventCreateWithFlags(&c->bn_ev[j], cudaEventDisableTiming));
    return 0;
}

// Batch 1 (the live default, memory 0) is planned now, so that a layer cuDNN
// has no algorithm for fails creation instead of the first step; the workspace
// starts at WS_MIN or what batch 1 needs. Other batch sizes come at first use.
static int plan_first_batch(CudaCtx *c, TbErr *err) { return plan_batch(c, 1, WS_MIN, err); }

// Wait for the zeroing queued above, so creation ends with the device idle.
static int wait_for_init(CudaCtx *c, TbErr *err) {
    CU_TRY(err, cudaStreamSynchronize(c->stream));
    return 0;
}

// One line: the device, the settings in force, the memory taken.
static int log_device(const CudaCtx *c, TbErr *err) {
    cudaDeviceProp prop;
    int dev = 0;
    CU_TRY(err, cudaGetDevice(&dev));
    CU_TRY(err, cudaGetDeviceProperties(&prop, dev));
    size_t n = c->m->n_params;
    double mib = (double)(4 * n * sizeof(float) + 2 * acts_floats(c) * c->esz + c->ws_size +
                          (c->bf16 ? n * (2 * sizeof(__nv_bfloat16) + 1) : 0)) /
                 (1024.0 * 1024.0);
    mib += (double)c->n_store * c->frame_bytes / (1024.0 * 1024.0);
    tb_log("cuda: %s (sm_%d%d), cuDNN %zu, TF32 %s, layout %s, activations %s, algorithms %s%s, "
           "CUDA graphs %s, %.0f MiB (workspace %.0f MiB, grows with the batch sizes used; %d "
           "frames kept)",
           prop.name, prop.major, prop.minor, cudnnGetVersion(), c->tf32 ? "on" : "off",
           cuda_layout_name(c->layout), c->bf16 ? "BF16 (FP32 master weights)" : "FP32",
           c->find ? "timed per batch size" : "by heuristics",
           c->deterministic ? ", deterministic only" : "", c->use_graphs ? "on" : "off", mib,
           (double)c->ws_size / (1024.0 * 1024.0), c->n_cache);
    return 0;
}

// Returns the backend, or NULL with the reason in err (no usable GPU, out of
// device memory, no usable cuDNN algorithm): never exits for those.
extern "C" Backend *backend_cuda_create(const Model *m, int max_batch, const BackendOpts *o,
                                       TbErr *err) {
    if (max_batch < 1) {
        tb_fail(err, "cuda backend: batch %d < 1", max_batch);
        return NULL;
    }
    int layout = cuda_layout_env(err);  // a bad value fails here, GPU or not
    if (layout < 0) return NULL;
    int bf16 = cuda_dtype_env(err);  // likewise
    if (bf16 < 0) return NULL;
    if (device_check(err)) return NULL;  // cuDNN is checked by making the handle
    int nl = m->n_layers;
    CHECK(nl >= 1 && m->layers[0].cin == 3 && m->layers[nl - 1].cout == 3 &&
              m->act_n[nl] == m->act_n[0],
          "model: the output must have the input's shape");

    CudaCtx *c = (CudaCtx *)tb_calloc(1, sizeof *c);
    Backend *b = backend_table_new(m, max_batch, c);
    ctx_init(c, m, max_batch, o, layout, bf16);
    if (create_stream_and_handle(c, err) || size_frame_store(c, err) || alloc_device_blocks(c, err) ||
        alloc_bf16_blocks(c, err) || alloc_host_rings(c, err) || plan_first_batch(c, err) || wait_for_init(c, err) ||
        log_device(c, err)) {
        cuda_destroy(b);
        return NULL;
    }
    return b;
}
