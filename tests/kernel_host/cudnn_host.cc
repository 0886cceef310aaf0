// cudnn_host.cc: the part of cuDNN that conv_cudnn.cu calls (include/cudnn.h),
// on host memory, for the host build of the CUDA backend.
//
// Descriptors store what they are given and are checked where cuDNN checks
// them: a convolution whose descriptors do not fit together (channels, output
// shape, data type, layout) is CUDNN_STATUS_BAD_PARAM with the reason in
// cudnnGetLastErrorString. Tensors and filters are NCHW or NHWC (filters
// KRSC: (K, R, S, C)), all three of a convolution in the same format (a mix,
// or any other format, is CUDNN_STATUS_NOT_SUPPORTED_LAYOUT); the dimensions
// are given in NCHW order either way, and the arithmetic indexes through the
// format. The FFT algorithms take NCHW only, as cuDNN's. Every pointer a convolution gets must be device
// memory large enough for its descriptor (else a report and BAD_PARAM), and
// the workspace at least what the algorithm needs (cuDNN's own check).
//
// The algorithms are made up, in a fixed order of made-up speed, so that a
// caller's choice is put to work: the fastest forward and backward algorithms
// need more workspace than any limit (FFT_TILING: 300 MiB), the next need 16
// or 8 MiB per sample (so a larger batch makes the workspace grow), the
// fastest backward ones are non-deterministic (and here really are: their
// partial sums are added in an order that changes with every call), and the
// tensor-op ones (forward PRECOMP_GEMM, backward ALGO_1) round their inputs
// to TF32 unless the convolution descriptor's math type is FMA (or
// NVIDIA_TF32_OVERRIDE=0). The arithmetic itself is a direct loop in float
// with fused multiply-adds: out = alpha * op + beta * out, and beta = 0 does
// not read out (it may hold NaN). Work goes on the handle's stream
// (kh_enqueue): run at once, or recorded when the stream is capturing.
//
// Data types: FLOAT_CONFIG (float tensors, filter and compute) and cuDNN's
// PSEUDO_BFLOAT16_CONFIG (CUDNN_DATA_BFLOAT16 tensors and filter, FLOAT
// compute type; alpha and beta stay float): each bfloat16 is read exactly as
// a float, the sums are the float ones above (no TF32 rounding: the inputs
// already have 8 bits), and the result is rounded to nearest even into
// bfloat16 on store (beta reads the stored bfloat16). Anything else (a mix of
// types, BFLOAT16 compute) is CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE. cuDNN's
// tables list the FFT and Winograd algorithms for the float and half configs
// only: with bfloat16 they are NOT_SUPPORTED here; NCHW and NHWC both run.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <set>
#include <vector>

#include "cuda_bf16.h"
#include "cuda_host_internal.h"
#include "cudnn.h"

struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    int set;
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int n, c, h, w;
};
struct cudnnFilterStruct {
    int set;
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int k, c, h, w;
};
struct cudnnConvolutionStruct {
    int set;
    int ph, pw, u, v, dh, dw;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
    int groups;
};

namespace {

std::set<const void *> live;  // handles and descriptors
char last_msg[512];
unsigned long long nondet_calls;  // moves the summation order of non-deterministic algorithms

cudnnStatus_t fail(cudnnStatus_t s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cudnnStatus_t fail(cudnnStatus_t s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return s;
}

template <typename T>
T *make() {
    T *p = new T();
    live.insert(p);
    return p;
}
template <typename T>
cudnnStatus_t destroy(T *p) {
    if (!p) return CUDNN_STATUS_SUCCESS;
    if (!live.count(p)) {
        kh_report("cuDNN: destroy of a descriptor or handle that is not live (%p)", (void *)p);
        return CUDNN_STATUS_BAD_PARAM;
    }
    live.erase(p);
    delete p;
    return CUDNN_STATUS_SUCCESS;
}
template <typename T>
int usable(const T *p) {
    return p && live.count(p) && p->set;
}

// ---- geometry of one convolution: x (N,C,H,W) * w (K,C/groups,R,S) -> y (N,K,P,Q)
struct Geo {
    int N, C, H, W, K, Cg, R, S, P, Q;
    int ph, pw, u, v, dh, dw, groups, flip;
    int nhwc;  // tensors NHWC and the filter KRSC (else NCHW and KCRS)
    int bf16;  // PSEUDO_BFLOAT16_CONFIG: tensors and filter bfloat16 (else all float)
    size_t nx() const { return (size_t)N * C * H * W; }
    size_t nw() const { return (size_t)K * Cg * R * S; }
    size_t ny() const { return (size_t)N * K * P * Q; }
};

cudnnStatus_t geometry(const cudnnTensorStruct *x, const cudnnFilterStruct *w,
                       const cudnnConvolutionStruct *cd, const cudnnTensorStruct *y, Geo *g) {
    if (!usable(x) || !usable(w) || !usable(cd) || (y && !usable(y)))
        return fail(CUDNN_STATUS_BAD_PARAM, "a descriptor is null, destroyed or never set");
    if ((x->type != CUDNN_DATA_FLOAT && x->type != CUDNN_DATA_BFLOAT16) || w->type != x->type ||
        (y && y->type != x->type) || cd->compute != CUDNN_DATA_FLOAT)
        return fail(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE,
                    "data types x %d, filter %d, y %d, compute %d: float or bfloat16 data, all "
                    "three the same, float compute here",
                    (int)x->type, (int)w->type, y ? (int)y->type : (int)x->type, (int)cd->compute);
    if ((x->format != CUDNN_TENSOR_NCHW && x->format != CUDNN_TENSOR_NHWC) ||
        w->format != x->format || (y && y->format != x->format))
        return fail(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT,
                    "formats x %d, filter %d, y %d: NCHW or NHWC, all three the same here",
                    (int)x->format, (int)w->format, y ? (int)y->format : (int)x->format);
    if (x->c != w->c * cd->groups || w->k % cd->groups)
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "input has %d channels, the filter %dx%d in %d group(s)", x->c, w->k, w->c,
                    cd->groups);
    Geo q = {x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w, 0, 0,
             cd->ph, cd->pw, cd->u, cd->v, cd->dh, cd->dw, cd->groups, cd->mode == CUDNN_CONVOLUTION,
             x->format == CUDNN_TENSOR_NHWC, x->type == CUDNN_DATA_BFLOAT16};
    int eh = (q.R - 1) * q.dh + 1, ew = (q.S - 1) * q.dw + 1;
    q.P = q.H + 2 * q.ph < eh ? 0 : (q.H + 2 * q.ph - eh) / q.u + 1;
    q.Q = q.W + 2 * q.pw < ew ? 0 : (q.W + 2 * q.pw - ew) / q.v + 1;
    if (q.P < 1 || q.Q < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, "the filter (%dx%d) does not fit the padded input "
                    "(%dx%d)", eh, ew, q.H + 2 * q.ph, q.W + 2 * q.pw);
    if (y && (y->n != q.N || y->c != q.K || y->h != q.P || y->w != q.Q))
        return fail(CUDNN_STATUS_BAD_PARAM,
                    "output descriptor %dx%dx%dx%d, the convolution gives %dx%dx%dx%d", y->n, y->c,
                    y->h, y->w, q.N, q.K, q.P, q.Q);
    *g = q;
    return CUDNN_STATUS_SUCCESS;
}

// ---- the made-up algorithms. dir: 0 forward, 1 backward data, 2 backward filter.
struct Algo {
    int algo;
    float time;  // ms, made up; the list is in this order
    int nondet, tensor_op;
    int k3s1_only;    // Winograd: 3x3, stride 1
    int unsupported;  // listed, never usable
    size_t fixed, per_sample;  // workspace: fixed + N * per_sample bytes
    int nchw_only;    // FFT: NCHW tensors only
    int no_bf16;      // FFT and Winograd: float (and half) configs only
};
const size_t kMiB = 1u << 20;
const Algo kFwd[] = {
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, 0.010f, 0, 0, 0, 0, 300 * kMiB, 0, 1, 1},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, 0.020f, 0, 1, 0, 0, 4096, 16 * kMiB, 0, 0},
    {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0.030f, 0, 0, 0, 0, 0, 0, 0, 0},
    {CUDNN_CONVOLUTION_FWD_ALGO_GEMM, 0.040f, 0, 0, 0, 0, 0, 64 * 1024, 0, 0},
    {CUDNN_CONVOLUTION_FWD_ALGO_FFT, 0.050f, 0, 0, 0, 0, 1 * kMiB, 1 * kMiB, 1, 1},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, 0.060f, 0, 0, 1, 0, 256 * 1024, 0, 0, 1},
    {CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, -1, 0, 0, 0, 1, 0, 0, 0, 0},
    {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, -1, 0, 0, 0, 1, 0, 0, 0, 1},
};
const Algo kBwdData[] = {
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, 0.010f, 0, 0, 0, 0, 300 * kMiB, 0, 1, 1},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, 0.015f, 1, 0, 0, 0, 0, 0, 0, 0},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, 0.020f, 0, 1, 0, 0, 4096, 8 * kMiB, 0, 0},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, 0.050f, 0, 0, 0, 0, 1 * kMiB, 1 * kMiB, 1, 1},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, 0.060f, 0, 0, 1, 0, 256 * 1024, 0, 0, 1},
    {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, -1, 0, 0, 0, 1, 0, 0, 0, 1},
};
const Algo kBwdFilter[] = {
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, 0.010f, 0, 0, 0, 0, 300 * kMiB, 0, 1, 1},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, 0.012f, 1, 0, 0, 0, 64 * 1024, 0, 0, 0},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, 0.015f, 1, 0, 0, 0, 0, 0, 0, 0},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, 0.020f, 0, 1, 0, 0, 4096, 8 * kMiB, 0, 0},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, 0.050f, 0, 0, 0, 0, 1 * kMiB, 1 * kMiB, 1, 1},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, 0.060f, 0, 0, 1, 0, 256 * 1024, 0, 0, 1},
    {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, -1, 0, 0, 0, 1, 0, 0, 0, 1},
};
struct AlgoList {
    const Algo *a;
    int n;
};
AlgoList algos(int dir) {
    if (dir == 0) return {kFwd, (int)(sizeof kFwd / sizeof kFwd[0])};
    if (dir == 1) return {kBwdData, (int)(sizeof kBwdData / sizeof kBwdData[0])};
    return {kBwdFilter, (int)(sizeof kBwdFilter / sizeof kBwdFilter[0])};
}
const Algo *find_algo(int dir, int algo) {
    AlgoList l = algos(dir);
    for (int i = 0; i < l.n; i++)
        if (l.a[i].algo == algo) return &l.a[i];
    return NULL;
}
int supports(const Algo *a, const Geo &g) {
    if (a->unsupported || (a->nchw_only && g.nhwc) || (a->no_bf16 && g.bf16)) return 0;
    if (a->k3s1_only) return g.R == 3 && g.S == 3 && g.u == 1 && g.v == 1 && g.groups == 1;
    return 1;
}
size_t workspace(const Algo *a, const Geo &g) { return a->fixed + (size_t)g.N * a->per_sample; }

cudnnStatus_t workspace_size(int dir, int algo, const Geo &g, size_t *bytes) {
    const Algo *a = find_algo(dir, algo);
    if (!a) return fail(CUDNN_STATUS_BAD_PARAM, "algorithm %d does not exist", algo);
    if (!supports(a, g)) return fail(CUDNN_STATUS_NOT_SUPPORTED, "algorithm %d does not support "
                                     "this convolution", algo);
    *bytes = workspace(a, g);
    return CUDNN_STATUS_SUCCESS;
}

// The perf results of Find (timed) and Get_v7 (heuristics: time -1), in the
// list's order, the algorithms that cannot run last.
template <typename PerfT, typename AlgoT>
cudnnStatus_t perf_list(int dir, const Geo &g, const cudnnConvolutionStruct *cd, int timed,
                        int requested, int *returned, PerfT *out) {
    if (requested < 1 || !returned || !out)
        return fail(CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount %d, or a null result pointer",
                    requested);
    AlgoList l = algos(dir);
    std::vector<PerfT> res;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < l.n; i++) {
            const Algo *a = &l.a[i];
            if (supports(a, g) != (pass == 0)) continue;
            PerfT r;
            memset(&r, 0, sizeof r);
            r.algo = (AlgoT)a->algo;
            r.status = pass == 0 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
            r.time = pass == 0 && timed ? a->time : -1.0f;
            r.memory = pass == 0 ? workspace(a, g) : 0;
            r.determinism = a->nondet ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
            r.mathType = cd->math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH
                         : a->tensor_op             ? CUDNN_TENSOR_OP_MATH
                                                    : CUDNN_DEFAULT_MATH;
            res.push_back(r);
        }
    int n = (int)res.size() < requested ? (int)res.size() : requested;
    for (int i = 0; i < n; i++) out[i] = res[i];
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

// ---- the arithmetic

float tf32(float f) {  // round to nearest, ties away, to 10 mantissa bits
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&f, &u, 4);
    return f;
}

struct Run {
    Geo g;
    int dir, nondet, round_tf32;
    float alpha, beta;
    const void *a, *b;  // fwd: x, w; bwd data: w, dy; bwd filter: x, dy (float or bfloat16)
    void *out;
    void *ws;
    size_t ws_need;
};

float in(const Run &r, const void *p, size_t i) {
    if (r.g.bf16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    float f = ((const float *)p)[i];
    return r.round_tf32 ? tf32(f) : f;
}

void store(const Run &r, size_t i, float acc) {
    float v = r.beta != 0.0f ? r.alpha * acc + r.beta * in(r, r.out, i) : r.alpha * acc;
    if (r.g.bf16) ((__nv_bfloat16 *)r.out)[i] = __float2bfloat16(v);
    else ((float *)r.out)[i] = v;
}

// Filter tap (r, s) as the mode reads it (CUDNN_CONVOLUTION flips the filter).
size_t widx(const Geo &g, int k, int c, int r, int s) {
    if (g.flip) r = g.R - 1 - r, s = g.S - 1 - s;
    if (g.nhwc) return (((size_t)k * g.R + r) * g.S + s) * g.Cg + c;
    return (((size_t)k * g.Cg + c) * g.R + r) * g.S + s;
}

// Element (n, c, h, w) of a tensor of C channels, H x W, in the format.
size_t tidx(const Geo &g, int n, int c, int C, int h, int H, int w, int W) {
    if (g.nhwc) return (((size_t)n * H + h) * W + w) * C + c;
    return (((size_t)n * C + c) * H + h) * W + w;
}
size_t xidx(const Geo &g, int n, int c, int h, int w) { return tidx(g, n, c, g.C, h, g.H, w, g.W); }
size_t yidx(const Geo &g, int n, int k, int p, int q) { return tidx(g, n, k, g.K, p, g.P, q, g.Q); }

void run_fwd(const Run &r) {
    const Geo &g = r.g;
    int Kg = g.K / g.groups;
    for (int n = 0; n < g.N; n++)
        for (int k = 0; k < g.K; k++)
            for (int p = 0; p < g.P; p++)
                for (int q = 0; q < g.Q; q++) {
                    float acc = 0.0f;
                    for (int c = 0; c < g.Cg; c++)
                        for (int i = 0; i < g.R; i++)
                            for (int j = 0; j < g.S; j++) {
                                int h = p * g.u - g.ph + i * g.dh, w = q * g.v - g.pw + j * g.dw;
                                if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
                                size_t xi = xidx(g, n, k / Kg * g.Cg + c, h, w);
                                acc = fmaf(in(r, r.a, xi), in(r, r.b, widx(g, k, c, i, j)), acc);
                            }
                    store(r, yidx(g, n, k, p, q), acc);
                }
}

// dx[n,c,h,w]: over the filters k of c's group (a non-deterministic run adds
// them starting at another k each call).
void run_bwd_data(const Run &r) {
    const Geo &g = r.g;
    int Kg = g.K / g.groups, k0 = r.nondet ? (int)(nondet_calls++ % (unsigned)Kg) : 0;
    for (int n = 0; n < g.N; n++)
        for (int c = 0; c < g.C; c++)
            for (int h = 0; h < g.H; h++)
                for (int w = 0; w < g.W; w++) {
                    float acc = 0.0f;
                    int grp = c / g.Cg;
                    for (int kk = 0; kk < Kg; kk++) {
                        int k = grp * Kg + (kk + k0) % Kg;
                        for (int i = 0; i < g.R; i++) {
                            int t = h + g.ph - i * g.dh;
                            if (t < 0 || t % g.u || t / g.u >= g.P) continue;
                            for (int j = 0; j < g.S; j++) {
                                int s = w + g.pw - j * g.dw;
                                if (s < 0 || s % g.v || s / g.v >= g.Q) continue;
                                size_t yi = yidx(g, n, k, t / g.u, s / g.v);
                                acc = fmaf(in(r, r.b, yi), in(r, r.a, widx(g, k, c % g.Cg, i, j)), acc);
                            }
                        }
                    }
                    store(r, xidx(g, n, c, h, w), acc);
                }
}

// dw[k,c,i,j]: one partial sum per sample and output row, added in order (a
// non-deterministic run starts at another partial each call).
void run_bwd_filter(const Run &r) {
    const Geo &g = r.g;
    int Kg = g.K / g.groups, np = g.N * g.P;
    int p0 = r.nondet ? (int)(nondet_calls++ % (unsigned)np) : 0;
    std::vector<float> part((size_t)np);
    for (int k = 0; k < g.K; k++)
        for (int c = 0; c < g.Cg; c++)
            for (int i = 0; i < g.R; i++)
                for (int j = 0; j < g.S; j++) {
                    int cx = k / Kg * g.Cg + c;
                    for (int n = 0; n < g.N; n++)
                        for (int p = 0; p < g.P; p++) {
                            float acc = 0.0f;
                            int h = p * g.u - g.ph + i * g.dh;
                            for (int q = 0; h >= 0 && h < g.H && q < g.Q; q++) {
                                int w = q * g.v - g.pw + j * g.dw;
                                if (w < 0 || w >= g.W) continue;
                                size_t xi = xidx(g, n, cx, h, w);
                                size_t yi = yidx(g, n, k, p, q);
                                acc = fmaf(in(r, r.a, xi), in(r, r.b, yi), acc);
                            }
                            part[(size_t)n * g.P + p] = acc;
                        }
                    float acc = 0.0f;
                    for (int t = 0; t < np; t++) acc += part[(size_t)((t + p0) % np)];
                    store(r, widx(g, k, c, i, j), acc);
                }
}

int tf32_allowed(void) {
    const char *o = getenv("NVIDIA_TF32_OVERRIDE");
    return !(o && strcmp(o, "0") == 0);
}

const char *kDir[3] = {"cudnnConvolutionForward", "cudnnConvolutionBackwardData",
                       "cudnnConvolutionBackwardFilter"};

// Checks one convolution call as cuDNN would and enqueues it on the handle's
// stream. sizes of a, b, out in elements (float or bfloat16) from the geometry.
cudnnStatus_t convolve(cudnnHandle_t h, int dir, int algo, const Geo &g,
                       const cudnnConvolutionStruct *cd, const void *alpha, const void *beta,
                       const void *a, size_t na, const void *b, size_t nb, void *out, size_t nout,
                       void *ws, size_t ws_size) {
    const char *call = kDir[dir];
    if (!h || !live.count(h)) return fail(CUDNN_STATUS_BAD_PARAM, "%s: not a live handle", call);
    if (!alpha || !beta) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "%s: alpha or beta null", call);
    const Algo *al = find_algo(dir, algo);
    if (!al) return fail(CUDNN_STATUS_BAD_PARAM, "%s: algorithm %d does not exist", call, algo);
    if (!supports(al, g))
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: algorithm %d does not support it", call, algo);
    size_t need = workspace(al, g);
    if (ws_size < need)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: workspace of %zu bytes, algorithm %d needs %zu",
                    call, ws_size, algo, need);
    char what[96];
    snprintf(what, sizeof what, "%s (%s)", call, "inputs, output or workspace");
    size_t es = g.bf16 ? 2 : 4;  // bytes an element
    na *= es, nb *= es, nout *= es;
    if (!kh_device_ok(a, na, what) || !kh_device_ok(b, nb, what) ||
        !kh_device_ok(out, nout, what) || (need && !kh_device_ok(ws, ws_size, what)))
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: a pointer is not device memory of its size", call);
    Run r = {g, dir, al->nondet, al->tensor_op && cd->math != CUDNN_FMA_MATH && tf32_allowed(),
             *(const float *)alpha, *(const float *)beta, a, b, out, ws, need};
    cudaError_t e = kh_enqueue(h->stream, KH_OP_CUDNN, [r, na, nb, nout, call] {
        if (!kh_device_ok(r.a, na, call) || !kh_device_ok(r.b, nb, call) ||
            !kh_device_ok(r.out, nout, call) ||
            (r.ws_need && !kh_device_ok(r.ws, r.ws_need, call)))
            return;  // reported: a graph replayed after its buffers were freed
        if (r.ws_need) {  // the workspace is scratch: nothing may rely on what it held
            size_t edge = r.ws_need < 256 ? r.ws_need : 256;
            memset(r.ws, 0x5A, edge);
            memset((char *)r.ws + r.ws_need - edge, 0x5A, edge);
        }
        if (r.dir == 0) run_fwd(r);
        else if (r.dir == 1) run_bwd_data(r);
        else run_bwd_filter(r);
    });
    if (e != cudaSuccess)
        return fail(CUDNN_STATUS_EXECUTION_FAILED_CUDART, "%s: the stream refused the work: %s",
                    call, cudaGetErrorName(e));
    return CUDNN_STATUS_SUCCESS;
}

}  // namespace

// ---- library, handle, errors

extern "C" size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

extern "C" const char *cudnnGetErrorString(cudnnStatus_t s) {
    switch (s) {
#define KH_NAME(x) \
    case x: return #x;
        KH_NAME(CUDNN_STATUS_SUCCESS)
        KH_NAME(CUDNN_STATUS_NOT_INITIALIZED)
        KH_NAME(CUDNN_STATUS_BAD_PARAM)
        KH_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
        KH_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
        KH_NAME(CUDNN_STATUS_NOT_SUPPORTED)
        KH_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
        KH_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
        KH_NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
        KH_NAME(CUDNN_STATUS_INTERNAL_ERROR)
        KH_NAME(CUDNN_STATUS_EXECUTION_FAILED)
        KH_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
#undef KH_NAME
    }
    return "CUDNN_STATUS_UNKNOWN";
}

// The message of the last failure, then cleared (as cuDNN does).
extern "C" void cudnnGetLastErrorString(char *message, size_t max_size) {
    if (!message || !max_size) return;
    snprintf(message, max_size, "%s", last_msg);
    last_msg[0] = 0;
}

extern "C" cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) {
    if (!handle) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    if (kh_capture_forbids() != cudaSuccess)
        return fail(CUDNN_STATUS_INTERNAL_ERROR, "cudnnCreate inside a stream capture");
    *handle = make<cudnnContext>();
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnDestroy(cudnnHandle_t h) { return destroy(h); }

extern "C" cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    if (!h || !live.count(h)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream: not a handle");
    enum cudaStreamCaptureStatus st;
    if (cudaStreamIsCapturing(s, &st) != cudaSuccess) {
        (void)cudaGetLastError();
        kh_report("cudnnSetStream: %p is not a live stream", (void *)s);
        return CUDNN_STATUS_BAD_PARAM;
    }
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnGetStream(cudnnHandle_t h, cudaStream_t *s) {
    if (!h || !live.count(h) || !s) return CUDNN_STATUS_BAD_PARAM;
    *s = h->stream;
    return CUDNN_STATUS_SUCCESS;
}

// ---- descriptors

extern "C" cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) {
    if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    *d = make<cudnnTensorStruct>();
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d,
                                                    cudnnTensorFormat_t format,
                                                    cudnnDataType_t type, int n, int c, int h,
                                                    int w) {
    if (!d || !live.count(d)) return fail(CUDNN_STATUS_BAD_PARAM, "not a tensor descriptor");
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, "tensor %dx%dx%dx%d", n, c, h, w);
    *d = cudnnTensorStruct{1, format, type, n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
    return destroy(d);
}

extern "C" cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) {
    if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    *d = make<cudnnFilterStruct>();
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d,
                                                    cudnnDataType_t type,
                                                    cudnnTensorFormat_t format, int k, int c,
                                                    int h, int w) {
    if (!d || !live.count(d)) return fail(CUDNN_STATUS_BAD_PARAM, "not a filter descriptor");
    if (k < 1 || c < 1 || h < 1 || w < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, "filter %dx%dx%dx%d", k, c, h, w);
    *d = cudnnFilterStruct{1, format, type, k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
    return destroy(d);
}

extern "C" cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    *d = make<cudnnConvolutionStruct>();
    (*d)->math = CUDNN_DEFAULT_MATH;
    (*d)->groups = 1;
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
    return destroy(d);
}
extern "C" cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d,
                                                     cudnnMathType_t m) {
    if (!d || !live.count(d)) return fail(CUDNN_STATUS_BAD_PARAM, "not a convolution descriptor");
    if (m < CUDNN_DEFAULT_MATH || m > CUDNN_FMA_MATH)
        return fail(CUDNN_STATUS_BAD_PARAM, "math type %d", (int)m);
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t d,
                                                     cudnnMathType_t *m) {
    if (!d || !live.count(d) || !m) return CUDNN_STATUS_BAD_PARAM;
    *m = d->math;
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int g) {
    if (!d || !live.count(d) || g < 1) return fail(CUDNN_STATUS_BAD_PARAM, "group count %d", g);
    d->groups = g;
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph,
                                                         int pw, int u, int v, int dh, int dw,
                                                         cudnnConvolutionMode_t mode,
                                                         cudnnDataType_t compute) {
    if (!d || !live.count(d)) return fail(CUDNN_STATUS_BAD_PARAM, "not a convolution descriptor");
    if (ph < 0 || pw < 0 || u < 1 || v < 1 || dh < 1 || dw < 1 ||
        (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION))
        return fail(CUDNN_STATUS_BAD_PARAM, "pads %d,%d strides %d,%d dilation %d,%d mode %d", ph,
                    pw, u, v, dh, dw, (int)mode);
    d->set = 1;
    d->ph = ph, d->pw = pw, d->u = u, d->v = v, d->dh = dh, d->dw = dw;
    d->mode = mode;
    d->compute = compute;
    return CUDNN_STATUS_SUCCESS;
}
extern "C" cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t x,
    const cudnnFilterDescriptor_t w, int *n, int *c, int *h, int *wo) {
    Geo g;
    if (cudnnStatus_t s = geometry(x, w, cd, NULL, &g)) return s;
    *n = g.N, *c = g.K, *h = g.P, *wo = g.Q;
    return CUDNN_STATUS_SUCCESS;
}

// ---- algorithms

// Timing would run the convolutions and allocate: not inside a capture.
static cudnnStatus_t find_ok(cudnnHandle_t h) {
    if (!h || !live.count(h)) return fail(CUDNN_STATUS_BAD_PARAM, "not a live handle");
    if (kh_capture_forbids() != cudaSuccess)
        return fail(CUDNN_STATUS_EXECUTION_FAILED_CUDART, "cudnnFind* inside a stream capture");
    kh_sync_stream(h->stream);  // Find is synchronous: it times runs on the handle's stream
    return CUDNN_STATUS_SUCCESS;
}

extern "C" cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t y, const int req,
    int *ret, cudnnConvolutionFwdAlgoPerf_t *perf) {
    Geo g;
    if (!h || !live.count(h)) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = geometry(x, w, cd, y, &g)) return s;
    return perf_list<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(0, g, cd, 0, req, ret, perf);
}
extern "C" cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t y, const int req,
    int *ret, cudnnConvolutionFwdAlgoPerf_t *perf) {
    Geo g;
    if (cudnnStatus_t s = find_ok(h)) return s;
    if (cudnnStatus_t s = geometry(x, w, cd, y, &g)) return s;
    return perf_list<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(0, g, cd, 1, req, ret, perf);
}
extern "C" cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t y,
    cudnnConvolutionFwdAlgo_t algo, size_t *bytes) {
    Geo g;
    if (!h || !live.count(h) || !bytes) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = geometry(x, w, cd, y, &g)) return s;
    return workspace_size(0, algo, g, bytes);
}

// The backward passes name the forward convolution's descriptors: dy is its
// output (y), dx its input (x).
extern "C" cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t h, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t dx, const int req,
    int *ret, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    Geo g;
    if (!h || !live.count(h)) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = geometry(dx, w, cd, dy, &g)) return s;
    return perf_list<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(1, g, cd, 0, req, ret, perf);
}
extern "C" cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(
    cudnnHandle_t h, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t dx, const int req,
    int *ret, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    Geo g;
    if (cudnnStatus_t s = find_ok(h)) return s;
    if (cudnnStatus_t s = geometry(dx, w, cd, dy, &g)) return s;
    return perf_list<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(1, g, cd, 1, req, ret, perf);
}
extern "C" cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t h, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t dx,
    cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes) {
    Geo g;
    if (!h || !live.count(h) || !bytes) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = geometry(dx, w, cd, dy, &g)) return s;
    return workspace_size(1, algo, g, bytes);
}

extern "C" cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t cd, const cudnnFilterDescriptor_t dw, const int req,
    int *ret, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    Geo g;
    if (!h || !live.count(h)) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = geometry(x, dw, cd, dy, &g)) return s;
    return perf_list<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(2, g, cd, 0, req, ret, perf);
}
extern "C" cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t cd, const cudnnFilterDescriptor_t dw, const int req,
    int *ret, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    Geo g;
    if (cudnnStatus_t s = find_ok(h)) return s;
    if (cudnnStatus_t s = geometry(x, dw, cd, dy, &g)) return s;
    return perf_list<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(2, g, cd, 1, req, ret, perf);
}
extern "C" cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t cd, const cudnnFilterDescriptor_t dw,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes) {
    Geo g;
    if (!h || !live.count(h) || !bytes) return CUDNN_STATUS_BAD_PARAM;
    if (cudnnStatus_t s = geometry(x, dw, cd, dy, &g)) return s;
    return workspace_size(2, algo, g, bytes);
}

// ---- the convolutions

extern "C" cudnnStatus_t cudnnConvolutionForward(
    cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
    const cudnnFilterDescriptor_t wd, const void *w, const cudnnConvolutionDescriptor_t cd,
    cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_size, const void *beta,
    const cudnnTensorDescriptor_t yd, void *y) {
    Geo g;
    if (cudnnStatus_t s = geometry(xd, wd, cd, yd, &g)) return s;
    return convolve(h, 0, algo, g, cd, alpha, beta, x, g.nx(), w, g.nw(), y, g.ny(), ws, ws_size);
}

extern "C" cudnnStatus_t cudnnConvolutionBackwardData(
    cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd, const void *w,
    const cudnnTensorDescriptor_t dyd, const void *dy, const cudnnConvolutionDescriptor_t cd,
    cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_size, const void *beta,
    const cudnnTensorDescriptor_t dxd, void *dx) {
    Geo g;
    if (cudnnStatus_t s = geometry(dxd, wd, cd, dyd, &g)) return s;
    return convolve(h, 1, algo, g, cd, alpha, beta, w, g.nw(), dy, g.ny(), dx, g.nx(), ws, ws_size);
}

extern "C" cudnnStatus_t cudnnConvolutionBackwardFilter(
    cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
    const cudnnTensorDescriptor_t dyd, const void *dy, const cudnnConvolutionDescriptor_t cd,
    cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_size, const void *beta,
    const cudnnFilterDescriptor_t dwd, void *dw) {
    Geo g;
    if (cudnnStatus_t s = geometry(xd, dwd, cd, dyd, &g)) return s;
    return convolve(h, 2, algo, g, cd, alpha, beta, x, g.nx(), dy, g.ny(), dw, g.nw(), ws, ws_size);
}
