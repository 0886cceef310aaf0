// cuda_common.h: error checks and launch helpers shared by the .cu files (and the
// C tests that drive them). Every CUDA and cuDNN call goes through cudaCheck /
// cudnnCheck, which print the expression, where, and the library's own message;
// every kernel launch goes through LAUNCH, which names the kernel.
// These are for broken invariants and failures mid-run; code that may meet a
// missing GPU (cuda_available, backend creation) returns a status instead. While
// a step is captured as a CUDA graph they record instead of exiting (below).
#pragma once
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif
// Capture mode (capture.cu), per thread: while a step is being captured as a
// CUDA graph, a failing check must not exit, because the step can still run
// eagerly. Between cuda_capture_begin and cuda_capture_end on this thread the
// checks record the first failure (with where and what) and carry on; the
// caller always ends the capture and, if anything failed, runs the step without
// a graph. inject = 1 makes the first check inside the capture report a failure
// (TABULA_INJECT_CAPTURE_FAIL=1, a test hook). Checks on other threads are not
// affected.
void cuda_capture_begin(int inject);
// Leaves capture mode. Returns 1 if a check failed in it (its message in msg),
// else 0.
int cuda_capture_end(char *msg, size_t n);
// The checks' side of it: -1 outside capture mode; inside it, 1 if this check
// is to be recorded as a failure (failed, or the injected one), else 0.
int cuda_capture_failing_(int failed);
void cuda_capture_record_(const char *msg);
// Kernel launches made on this thread so far (every LAUNCH counts one, in or
// out of capture mode): the backend tells how many kernels a step launches
// from the difference across it.
unsigned long cuda_launch_count(void);
void cuda_count_launch_(void);
#ifdef __cplusplus
}
#endif

// A failed check: exit with the message, or record it in capture mode (cap > 0).
static inline void cuda_check_fail_(int cap, const char *msg) {
    if (cap > 0) {
        cuda_capture_record_(msg);
        return;
    }
    fprintf(stderr, "tabula: %s\n", msg);
    exit(1);
}

static inline void cuda_check_(cudaError_t e, const char *expr, const char *file, int line) {
    int cap = cuda_capture_failing_(e != cudaSuccess);
    if (cap == 0 || (cap < 0 && e == cudaSuccess)) return;
    char msg[640];
    if (e == cudaSuccess)
        snprintf(msg, sizeof msg, "%s:%d: injected failure (TABULA_INJECT_CAPTURE_FAIL)\n  in %s", file,
                 line, expr);
    else
        snprintf(msg, sizeof msg, "%s:%d: CUDA error %d (%s): %s\n  in %s", file, line, (int)e,
                 cudaGetErrorName(e), cudaGetErrorString(e), expr);
    cuda_check_fail_(cap, msg);
}
#define cudaCheck(expr) cuda_check_((expr), #expr, __FILE__, __LINE__)

static inline void cudnn_check_(cudnnStatus_t s, const char *expr, const char *file, int line) {
    int cap = cuda_capture_failing_(s != CUDNN_STATUS_SUCCESS);
    if (cap == 0 || (cap < 0 && s == CUDNN_STATUS_SUCCESS)) return;
    char msg[640];
    if (s == CUDNN_STATUS_SUCCESS) {
        snprintf(msg, sizeof msg, "%s:%d: injected failure (TABULA_INJECT_CAPTURE_FAIL)\n  in %s", file,
                 line, expr);
    } else {
        char detail[256] = {0};
        cudnnGetLastErrorString(detail, sizeof detail);
        snprintf(msg, sizeof msg, "%s:%d: cuDNN error %d (%s)%s%s\n  in %s", file, line, (int)s,
                 cudnnGetErrorString(s), detail[0] ? ": " : "", detail, expr);
    }
    cuda_check_fail_(cap, msg);
}
#define cudnnCheck(expr) cudnn_check_((expr), #expr, __FILE__, __LINE__)

// A kernel launch failed to start (bad configuration, no kernel image for this
// device, an earlier asynchronous error): say which kernel, where, and exit
// (or record it, in capture mode).
static inline void cuda_launch_check_(cudaError_t e, const char *kernel, const char *file, int line) {
    cuda_count_launch_();
    int cap = cuda_capture_failing_(e != cudaSuccess);
    if (cap == 0 || (cap < 0 && e == cudaSuccess)) return;
    char msg[640];
    if (e == cudaSuccess)
        snprintf(msg, sizeof msg, "%s:%d: injected failure (TABULA_INJECT_CAPTURE_FAIL) launching %s",
                 file, line, kernel);
    else
        snprintf(msg, sizeof msg, "%s:%d: CUDA error %d (%s) launching %s: %s", file, line, (int)e,
                 cudaGetErrorName(e), kernel, cudaGetErrorString(e));
    cuda_check_fail_(cap, msg);
}

// Threads per block for the elementwise and reduction kernels.
#define TB_BLOCK 256
// Blocks of the first pass of the deterministic two-pass reductions (sum of
// squares, MSE): each writes one double partial, a second one-block kernel adds
// them in a fixed order, so a given shape always gives the same bits.
#define TB_REDUCE_BLOCKS 1024

static inline size_t tb_ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// Grid for a grid-stride loop over n elements: one element per thread up to `cap`
// blocks, then each thread takes several.
static inline unsigned tb_grid(size_t n, unsigned block, unsigned cap) {
    size_t g = tb_ceil_div(n, block);
    if (g < 1) g = 1;
    return (unsigned)(g < cap ? g : cap);
}

#ifdef __CUDACC__
// The one way the .cu files launch a kernel: kernel<<<grid, block, 0, stream>>>(...)
// (no dynamic shared memory), then cudaGetLastError checked, naming the kernel.
#define LAUNCH(kernel, grid, block, stream, ...)                                    \
    do {                                                                            \
        kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__);                      \
        cuda_launch_check_(cudaGetLastError(), #kernel, __FILE__, __LINE__);        \
    } while (0)
#endif

// The device helpers below also compile on the host under the test shim of
// tests/kernel_host (TB_KERNEL_HOST), which runs the kernels without a GPU and
// defines its own LAUNCH.
#if defined(__CUDACC__) || defined(TB_KERNEL_HOST)
#include <cuda_bf16.h>

// Activation storage (TABULA_CUDA_DTYPE): float, or bfloat16 (__nv_bfloat16)
// with the arithmetic in float. A kernel templated on the storage type T
// loads with tb_ld (exact) and stores with tb_st<T> (bfloat16: rounded to
// nearest even, once per value written).
__device__ __forceinline__ float tb_ld(float v) { return v; }
__device__ __forceinline__ float tb_ld(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T tb_st(float v);
template <>
__device__ __forceinline__ float tb_st<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 tb_st<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

// Sum over a warp; every lane of the warp must call it. Lane 0 holds the result.
template <typename T>
__device__ inline T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// Sum over a block (blockDim.x a multiple of 32, at most 1024); every thread must
// call it, once per kernel, or again only after a __syncthreads (its shared
// array is reused). Thread 0 holds the result.
template <typename T>
__device__ inline T block_sum(T v) {
    __shared__ T warp_part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) warp_part[warp] = v;
    __syncthreads();
    int nwarps = (int)(blockDim.x >> 5);
    v = (int)threadIdx.x < nwarps ? warp_part[threadIdx.x] : (T)0;
    if (warp == 0) v = warp_sum(v);
    return v;
}

// The last-block-done pattern, which lets one launch both reduce and finish:
// each block calls it once (every thread), after its thread 0 wrote the
// block's partials; it returns 1 in every thread of the one block that counts
// last, which may then read all the partials (through volatile loads: they
// were written by other blocks). *done counts the blocks: zero before the
// launch, and left zero for the next one (each launch is in stream order).
__device__ inline int last_block_done(unsigned *done, unsigned blocks) {
    __shared__ int last;
    if (threadIdx.x == 0) {
        __threadfence();  // this block's partials are seen before its count
        last = atomicAdd(done, 1u) == blocks - 1;
        if (last) *done = 0;  // every other block has counted
    }
    __syncthreads();
    return last;
}
#endif
