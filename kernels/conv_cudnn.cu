// conv_cudnn.cu: Conv2d and ConvTranspose2d through cuDNN (twins of the conv ops
// in ops.h). A ConvTranspose2d is run as the conv that maps its output back to
// its input (see ConvPlan in ops_cuda.h):
//   convT forward       = cudnnConvolutionBackwardData  (dy := x, dx := y)
//   convT backward data = cudnnConvolutionForward       (x := dy, y := dx)
//   convT backward w    = cudnnConvolutionBackwardFilter(x := dy, dy := x)
// with PyTorch's (C, OC, K, K) weight used unchanged as that conv's filter.
// ConvChoice.layout picks NCHW tensors with OIHW filters, or NHWC tensors with
// OHWI filters (CUDNN_TENSOR_NHWC for all three descriptors: never mixed).
// ConvChoice.bf16 makes the tensors and the filter CUDNN_DATA_BFLOAT16 with a
// FLOAT compute type (cuDNN's PSEUDO_BFLOAT16_CONFIG, which its forward,
// backward-data and backward-filter calls support in NCHW and NHWC, from
// compute capability 8.0; not with the FFT or Winograd algorithms, which the
// search then leaves out). The math type is then cuDNN's default (tensor
// cores allowed: bfloat16 inputs need no TF32 switch); the sums are float.
// Holds: no kernels of its own (cuDNN brings them); the plans (descriptors and
// the choice of the three algorithms), then the four conv launchers.
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "ops_cuda.h"

// ---- kernels: none (cuDNN's own)

// ---- launchers: plans

extern "C" int cuda_tf32_enabled(void) {
    const char *o = getenv("NVIDIA_TF32_OVERRIDE");
    const char *t = getenv("TABULA_NO_TF32");
    if (o && strcmp(o, "0") == 0) return 0;
    if (t && strcmp(t, "1") == 0) return 0;
    return 1;
}

extern "C" int cuda_layout_env(TbErr *err) {
    const char *v = getenv("TABULA_CUDA_LAYOUT");
    if (!v || strcmp(v, "nchw") == 0) return TB_NCHW;
    if (strcmp(v, "nhwc") == 0) return TB_NHWC;
    return tb_fail(err, "cuda backend: TABULA_CUDA_LAYOUT=%s: not a layout (nchw or nhwc)", v);
}

extern "C" const char *cuda_layout_name(int layout) { return layout == TB_NHWC ? "NHWC" : "NCHW"; }

extern "C" int cuda_dtype_env(TbErr *err) {
    const char *v = getenv("TABULA_CUDA_DTYPE");
    if (!v || strcmp(v, "fp32") == 0) return 0;
    if (strcmp(v, "bf16") == 0) return 1;
    return tb_fail(err, "cuda backend: TABULA_CUDA_DTYPE=%s: not an activation type (fp32 or bf16)", v);
}

// Status-returning check for plan building (bad shapes or an algorithm search
// that fails are reported in err, not fatal): returns -1 from the caller.
#define CUDNN_TRY(err, expr)                                                              \
    do {                                                                                  \
        cudnnStatus_t st_ = (expr);                                                       \
        if (st_ != CUDNN_STATUS_SUCCESS)                                                  \
            return tb_fail((err), "cuDNN: %s: %s", #expr, cudnnGetErrorString(st_));      \
    } while (0)

static int is_tensor_math(cudnnMathType_t m) {
    return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// Workspace one algorithm needs with the plan's descriptors and convolution
// descriptor cd: one overload per direction (the algorithm enums differ).
static cudnnStatus_t algo_workspace(cudnnHandle_t h, const ConvPlan *p,
                                    cudnnConvolutionDescriptor_t cd,
                                    cudnnConvolutionFwdAlgo_t algo, size_t *ws) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, p->in_desc, p->w_desc, cd, p->out_desc, algo,
                                                   ws);
}
static cudnnStatus_t algo_workspace(cudnnHandle_t h, const ConvPlan *p,
                                    cudnnConvolutionDescriptor_t cd,
                                    cudnnConvolutionBwdDataAlgo_t algo, size_t *ws) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w_desc, p->out_desc, cd, p->in_desc,
                                                        algo, ws);
}
static cudnnStatus_t algo_workspace(cudnnHandle_t h, const ConvPlan *p,
                                    cudnnConvolutionDescriptor_t cd,
                                    cudnnConvolutionBwdFilterAlgo_t algo, size_t *ws) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->in_desc, p->out_desc, cd,
                                                          p->w_desc, algo, ws);
}

// Candidates perf[0..n) come sorted best first (by time for Find, by expected
// speed for Get). Take the first that succeeded, fits the workspace, uses the
// allowed math and, when asked, is deterministic; then set that math type on cd
// and ask cuDNN again for its workspace, which also confirms the algorithm runs
// with that descriptor. Without TF32, cd is pinned to FMA math and tensor-op
// results are skipped. ALLOW_CONVERSION (down-conversion below TF32) is never
// taken. Fills *algo_out and *ws_out and returns 0, or -1 with err filled
// (`direction` names it).
template <typename PerfT, typename AlgoT>
static int pick_algo(const PerfT *perf, int n, cudnnHandle_t h, const ConvPlan *p,
                     cudnnConvolutionDescriptor_t cd, const ConvChoice *ch,
                     const char *direction, AlgoT *algo_out, size_t *ws_out, TbErr *err) {
    for (int i = 0; i < n; i++) {
        const PerfT *r = &perf[i];
        if (r->status != CUDNN_STATUS_SUCCESS) continue;
        if (r->mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
        if (!ch->tf32 && !ch->bf16 && is_tensor_math(r->mathType)) continue;
        // Some algorithms (e.g. backward-filter ALGO_0 and ALGO_3) sum with atomics.
        if (ch->deterministic && r->determinism != CUDNN_DETERMINISTIC) continue;
        if (ch->find && r->memory > ch->ws_limit) continue;
        cudnnMathType_t mt = ch->tf32 || ch->bf16 ? r->mathType : CUDNN_FMA_MATH;
        CUDNN_TRY(err, cudnnSetConvolutionMathType(cd, mt));
        size_t ws = 0;
        if (algo_workspace(h, p, cd, r->algo, &ws) != CUDNN_STATUS_SUCCESS || ws > ch->ws_limit)
            continue;
        *algo_out = r->algo;
        *ws_out = ws;
        return 0;
    }
    return tb_fail(err, "cuDNN: no usable %s%s algorithm for %s %dx%dx%dx%d -> %d, k%d s%d p%d",
                   ch->deterministic ? "deterministic " : "", direction,
                   p->transposed ? "convT" : "conv", p->B, p->C, p->H, p->W, p->OC, p->K, p->S,
                   p->P);
}

// The math type every search starts from: cuDNN's default, or FMA for float
// without TF32.
static cudnnMathType_t base_math(const ConvChoice *ch) {
    return ch->tf32 || ch->bf16 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

// in -> out. find = 1 times the candidates (cudnnFind*), 0 asks the heuristics.
static int plan_fwd_algo(ConvPlan *p, cudnnHandle_t h, const ConvChoice *ch, TbErr *err) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    CUDNN_TRY(err, cudnnSetConvolutionMathType(p->cd_fwd, base_math(ch)));
    if (ch->find)
        CUDNN_TRY(err, cudnnFindConvolutionForwardAlgorithm(h, p->in_desc, p->w_desc, p->cd_fwd,
                                                            p->out_desc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                            &n, perf));
    else
        CUDNN_TRY(err, cudnnGetConvolutionForwardAlgorithm_v7(h, p->in_desc, p->w_desc, p->cd_fwd,
                                                              p->out_desc, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                              &n, perf));
    return pick_algo(perf, n, h, p, p->cd_fwd, ch, "forward", &p->algo_fwd, &p->ws_fwd, err);
}

// d(out) -> d(in)
static int plan_bwd_data_algo(ConvPlan *p, cudnnHandle_t h, const ConvChoice *ch, TbErr *err) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_TRY(err, cudnnSetConvolutionMathType(p->cd_bwd_data, base_math(ch)));
    if (ch->find)
        CUDNN_TRY(err, cudnnFindConvolutionBackwardDataAlgorithm(h, p->w_desc, p->out_desc, p->cd_bwd_data,
                                                                 p->in_desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                 &n, perf));
    else
        CUDNN_TRY(err, cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w_desc, p->out_desc, p->cd_bwd_data,
                                                                   p->in_desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                                   &n, perf));
    return pick_algo(perf, n, h, p, p->cd_bwd_data, ch, "backward-data", &p->algo_bwd_data,
                     &p->ws_bwd_data, err);
}

// (in, d(out)) -> d(filter)
static int plan_bwd_filter_algo(ConvPlan *p, cudnnHandle_t h, const ConvChoice *ch,
                                TbErr *err) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    CUDNN_TRY(err, cudnnSetConvolutionMathType(p->cd_bwd_filter, base_math(ch)));
    if (ch->find)
        CUDNN_TRY(err, cudnnFindConvolutionBackwardFilterAlgorithm(h, p->in_desc, p->out_desc, p->cd_bwd_filter,
                                                                   p->w_desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                   &n, perf));
    else
        CUDNN_TRY(err, cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->in_desc, p->out_desc, p->cd_bwd_filter,
                                                                     p->w_desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                     &n, perf));
    return pick_algo(perf, n, h, p, p->cd_bwd_filter, ch, "backward-filter", &p->algo_bwd_filter,
                     &p->ws_bwd_filter, err);
}

static int plan_algos(ConvPlan *p, cudnnHandle_t h, const ConvChoice *ch, TbErr *err) {
    if (plan_fwd_algo(p, h, ch, err)) return -1;
    if (plan_bwd_data_algo(p, h, ch, err)) return -1;
    return plan_bwd_filter_algo(p, h, ch, err);
}

static int plan_descriptors(ConvPlan *p, int layout, TbErr *err) {
    cudnnDataType_t dt = p->bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    // cuDNN-conv shapes: in (N, Ci, Hi, Wi) -> out (N, Ko, Ho', Wo'), filter (Ko, Ci, K, K).
    int ci = p->transposed ? p->OC : p->C, hi = p->transposed ? p->Ho : p->H,
        wi = p->transposed ? p->Wo : p->W;
    int ko = p->transposed ? p->C : p->OC, ho = p->transposed ? p->H : p->Ho,
        wo = p->transposed ? p->W : p->Wo;
    CUDNN_TRY(err, cudnnCreateTensorDescriptor(&p->in_desc));
    CUDNN_TRY(err, cudnnCreateTensorDescriptor(&p->out_desc));
    CUDNN_TRY(err, cudnnCreateFilterDescriptor(&p->w_desc));
    // The dimensions are given in NCHW order whatever the format.
    cudnnTensorFormat_t f = layout == TB_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    CUDNN_TRY(err, cudnnSetTensor4dDescriptor(p->in_desc, f, dt, p->B, ci, hi, wi));
    CUDNN_TRY(err, cudnnSetTensor4dDescriptor(p->out_desc, f, dt, p->B, ko, ho, wo));
    CUDNN_TRY(err, cudnnSetFilter4dDescriptor(p->w_desc, dt, f, ko, ci, p->K, p->K));
    cudnnConvolutionDescriptor_t *cds[3] = {&p->cd_fwd, &p->cd_bwd_data, &p->cd_bwd_filter};
    for (int i = 0; i < 3; i++) {
        CUDNN_TRY(err, cudnnCreateConvolutionDescriptor(cds[i]));
        // PyTorch's convolutions are cross-correlations; the compute type is
        // float for either data type.
        CUDNN_TRY(err, cudnnSetConvolution2dDescriptor(*cds[i], p->P, p->P, p->S, p->S, 1, 1,
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    }
    // The conv must map `in` exactly onto `out` (for convT this is where an
    // output_padding would show up; tabula has none).
    int n, c, h, w;
    CUDNN_TRY(err, cudnnGetConvolution2dForwardOutputDim(p->cd_fwd, p->in_desc, p->w_desc, &n, &c, &h, &w));
    if (n != p->B || c != ko || h != ho || w != wo)
        return tb_fail(err, "cuDNN: %s k%d s%d p%d maps %dx%d to %dx%d, expected %dx%d",
                       p->transposed ? "convT" : "conv", p->K, p->S, p->P, wi, hi, w, h, wo, ho);
    return 0;
}

extern "C" int conv_plan_init(ConvPlan *p, cudnnHandle_t h, int transposed, int B, int C, int H,
                              int W, int OC, int K, int S, int P, const ConvChoice *ch,
                              TbErr *err) {
    memset(p, 0, sizeof *p);
    p->transposed = transposed;
    p->bf16 = ch->bf16;
    p->B = B, p->C = C, p->H = H, p->W = W, p->OC = OC, p->K = K, p->S = S, p->P = P;
    p->Ho = transposed ? convt_out(H, K, S, P) : conv_out(H, K, S, P);
    p->Wo = transposed ? convt_out(W, K, S, P) : conv_out(W, K, S, P);
    if (B < 1 || C < 1 || OC < 1 || p->Ho < 1 || p->Wo < 1) {
        tb_fail(err, "conv plan: empty shape %dx%dx%dx%d -> %d, k%d s%d p%d", B, C, H, W, OC, K, S, P);
        return -1;
    }
    if (plan_descriptors(p, ch->layout, err) || plan_algos(p, h, ch, err)) {
        conv_plan_destroy(p);
        return -1;
    }
    return 0;
}

extern "C" void conv_plan_destroy(ConvPlan *p) {
    if (p->cd_fwd) cudnnDestroyConvolutionDescriptor(p->cd_fwd);
    if (p->cd_bwd_data) cudnnDestroyConvolutionDescriptor(p->cd_bwd_data);
    if (p->cd_bwd_filter) cudnnDestroyConvolutionDescriptor(p->cd_bwd_filter);
    if (p->w_desc) cudnnDestroyFilterDescriptor(p->w_desc);
    if (p->in_desc) cudnnDestroyTensorDescriptor(p->in_desc);
    if (p->out_desc) cudnnDestroyTensorDescriptor(p->out_desc);
    memset(p, 0, sizeof *p);
}

extern "C" size_t conv_plan_workspace(const ConvPlan *p) {
    size_t m = p->ws_fwd;
    if (p->ws_bwd_data > m) m = p->ws_bwd_data;
    if (p->ws_bwd_filter > m) m = p->ws_bwd_filter;
    return m;
}

// ---- launchers: the ops

static const float kOne = 1.0f, kZero = 0.0f;  // beta = 0: outputs are overwritten, never read

// in -> out
static void run_fwd(const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size, const void *in,
                    const void *w, void *out, cudaStream_t stream) {
    CHECK(ws_size >= p->ws_fwd, "workspace %zu < %zu", ws_size, p->ws_fwd);
    cudnnCheck(cudnnSetStream(h, stream));
    cudnnCheck(cudnnConvolutionForward(h, &kOne, p->in_desc, in, p->w_desc, w, p->cd_fwd,
                                       p->algo_fwd, ws, ws_size, &kZero, p->out_desc, out));
}

// d(out) -> d(in)
static void run_bwd_data(const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                         const void *dout, const void *w, void *din, cudaStream_t stream) {
    CHECK(ws_size >= p->ws_bwd_data, "workspace %zu < %zu", ws_size, p->ws_bwd_data);
    cudnnCheck(cudnnSetStream(h, stream));
    cudnnCheck(cudnnConvolutionBackwardData(h, &kOne, p->w_desc, w, p->out_desc, dout,
                                            p->cd_bwd_data, p->algo_bwd_data, ws, ws_size, &kZero,
                                            p->in_desc, din));
}

// (in, d(out)) -> d(filter)
static void run_bwd_filter(const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                           const void *in, const void *dout, void *dw, cudaStream_t stream) {
    CHECK(ws_size >= p->ws_bwd_filter, "workspace %zu < %zu", ws_size, p->ws_bwd_filter);
    cudnnCheck(cudnnSetStream(h, stream));
    cudnnCheck(cudnnConvolutionBackwardFilter(h, &kOne, p->in_desc, in, p->out_desc, dout,
                                              p->cd_bwd_filter, p->algo_bwd_filter, ws, ws_size,
                                              &kZero, p->w_desc, dw));
}

// The four ops on either type; the plan's (float or bfloat16) must be the data's.
static void conv2d_forward_v(void *y, const void *x, const void *w, const ConvPlan *p,
                             cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream) {
    CHECK(!p->transposed, "conv2d with a convT plan");
    run_fwd(p, h, ws, ws_size, x, w, y, stream);
}

static void conv2d_backward_v(void *dx, void *dw, const void *dy, const void *x, const void *w,
                              const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                              cudaStream_t stream) {
    CHECK(!p->transposed, "conv2d with a convT plan");
    if (dx) run_bwd_data(p, h, ws, ws_size, dy, w, dx, stream);
    run_bwd_filter(p, h, ws, ws_size, x, dy, dw, stream);
}

static void convt2d_forward_v(void *y, const void *x, const void *w, const ConvPlan *p,
                              cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream) {
    CHECK(p->transposed, "convt2d with a conv plan");
    run_bwd_data(p, h, ws, ws_size, x, w, y, stream);
}

static void convt2d_backward_v(void *dx, void *dw, const void *dy, const void *x, const void *w,
                               const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                               cudaStream_t stream) {
    CHECK(p->transposed, "convt2d with a conv plan");
    if (dx) run_fwd(p, h, ws, ws_size, dy, w, dx, stream);
    run_bwd_filter(p, h, ws, ws_size, dy, x, dw, stream);
}

extern "C" void conv2d_forward_cuda(float *y, const float *x, const float *w, const ConvPlan *p,
                                    cudnnHandle_t h, void *ws, size_t ws_size,
                                    cudaStream_t stream) {
    CHECK(!p->bf16, "conv2d on float data with a bf16 plan");
    conv2d_forward_v(y, x, w, p, h, ws, ws_size, stream);
}
void conv2d_forward_cuda(__nv_bfloat16 *y, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                         const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                         cudaStream_t stream) {
    CHECK(p->bf16, "conv2d on bf16 data with a float plan");
    conv2d_forward_v(y, x, w, p, h, ws, ws_size, stream);
}

extern "C" void conv2d_backward_cuda(float *dx, float *dw, const float *dy, const float *x,
                                     const float *w, const ConvPlan *p, cudnnHandle_t h, void *ws,
                                     size_t ws_size, cudaStream_t stream) {
    CHECK(!p->bf16, "conv2d on float data with a bf16 plan");
    conv2d_backward_v(dx, dw, dy, x, w, p, h, ws, ws_size, stream);
}
void conv2d_backward_cuda(__nv_bfloat16 *dx, __nv_bfloat16 *dw, const __nv_bfloat16 *dy,
                          const __nv_bfloat16 *x, const __nv_bfloat16 *w, const ConvPlan *p,
                          cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream) {
    CHECK(p->bf16, "conv2d on bf16 data with a float plan");
    conv2d_backward_v(dx, dw, dy, x, w, p, h, ws, ws_size, stream);
}

extern "C" void convt2d_forward_cuda(float *y, const float *x, const float *w, const ConvPlan *p,
                                     cudnnHandle_t h, void *ws, size_t ws_size,
                                     cudaStream_t stream) {
    CHECK(!p->bf16, "convt2d on float data with a bf16 plan");
    convt2d_forward_v(y, x, w, p, h, ws, ws_size, stream);
}
void convt2d_forward_cuda(__nv_bfloat16 *y, const __nv_bfloat16 *x, const __nv_bfloat16 *w,
                          const ConvPlan *p, cudnnHandle_t h, void *ws, size_t ws_size,
                          cudaStream_t stream) {
    CHECK(p->bf16, "convt2d on bf16 data with a float plan");
    convt2d_forward_v(y, x, w, p, h, ws, ws_size, stream);
}

extern "C" void convt2d_backward_cuda(float *dx, float *dw, const float *dy, const float *x,
                                      const float *w, const ConvPlan *p, cudnnHandle_t h, void *ws,
                                      size_t ws_size, cudaStream_t stream) {
    CHECK(!p->bf16, "convt2d on float data with a bf16 plan");
    convt2d_backward_v(dx, dw, dy, x, w, p, h, ws, ws_size, stream);
}
void convt2d_backward_cuda(__nv_bfloat16 *dx, __nv_bfloat16 *dw, const __nv_bfloat16 *dy,
                           const __nv_bfloat16 *x, const __nv_bfloat16 *w, const ConvPlan *p,
                           cudnnHandle_t h, void *ws, size_t ws_size, cudaStream_t stream) {
    CHECK(p->bf16, "convt2d on bf16 data with a float plan");
    convt2d_backward_v(dx, dw, dy, x, w, p, h, ws, ws_size, stream);
}
