// cuda_host.h: just enough of CUDA for the kernels in kernels/*.cu to compile
// as C++ and run on the host, without nvcc or the toolkit's headers (the
// stand-ins in include/ bring it in where a kernel includes <cuda_runtime.h>).
// A launch (LAUNCH in cuda_common.h, redefined here) runs the whole grid on the
// calling thread: blocks one after another, and each block's threads as
// cooperating contexts that switch at __syncthreads and at warp operations, so
// block_sum's barriers and shuffles do what they do on a GPU. Device memory is
// host memory with guard bytes (cuda_host.cc checks them after every launch).
// What this cannot show is listed in README.md.
#pragma once
#ifndef __cplusplus
#error "cuda_host.h is C++: compile the kernels with a C++ compiler"
#endif
#define TB_KERNEL_HOST 1

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
// Blocks run one at a time, so one static per declaration is one per block.
#define __shared__ static
#define __constant__
#define __restrict__ __restrict
#define __launch_bounds__(...)

// ---- vector types and the built-in variables
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(4) uchar4 {
    unsigned char x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
static inline uchar4 make_uchar4(unsigned char x, unsigned char y, unsigned char z,
                                 unsigned char w) {
    return uchar4{x, y, z, w};
}
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// Set by the launcher before it resumes a thread (one launch at a time).
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static const int warpSize = 32;

// ---- math intrinsics: the _rn forms are the IEEE operations they name (the
// test builds with -ffp-contract=off, so nothing fuses them); the fast
// approximations (__expf ...) become the accurate functions: what they change
// on a GPU is not seen here.
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
// (macros: glibc declares functions of these names.)
#define __expf(a) expf(a)
#define __logf(a) logf(a)
#define __powf(a, b) powf(a, b)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float a) { return a > 0.0f ? (a < 1.0f ? a : 1.0f) : 0.0f; }
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
static inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
template <typename T>
static inline T __ldg(const T *p) {
    return *p;
}

// ---- atomics: no two threads ever run at once, so plain read-modify-writes.
template <typename T>
static inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T>
static inline T atomicMax(T *p, T v) {
    T old = *p;
    *p = old > v ? old : v;
    return old;
}
template <typename T>
static inline T atomicMin(T *p, T v) {
    T old = *p;
    *p = old < v ? old : v;
    return old;
}
template <typename T>
static inline T atomicExch(T *p, T v) {
    T old = *p;
    *p = v;
    return old;
}
template <typename T>
static inline T atomicCAS(T *p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}

// ---- barriers and warp operations (cuda_host.cc). A warp operation waits
// for every lane of the warp; its mask must name all of them (partial masks
// are not emulated and are reported).
void __syncthreads(void);
// One thread runs at a time here: every write is seen by the next reader.
static inline void __threadfence(void) {}
void __syncwarp(unsigned mask = 0xffffffffu);
int kh_lane(void);
// Deposit `bytes` of v as this lane's value, wait for the whole warp, and get
// the warp's deposits (lane i's at 8*i); kh_warp_done waits again, so no lane
// deposits anew before every lane has read.
const unsigned char *kh_warp_deposit(const void *v, size_t bytes, unsigned mask, const char *what);
void kh_warp_done(void);

template <typename T>
static inline T kh_shfl(unsigned mask, T v, int src, const char *what) {
    static_assert(sizeof(T) <= 8, "warp values up to 8 bytes");
    const unsigned char *slots = kh_warp_deposit(&v, sizeof v, mask, what);
    T r;
    memcpy(&r, slots + 8 * src, sizeof r);
    kh_warp_done();
    return r;
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    int lane = kh_lane();
    int src = (lane % width) + (int)delta < width ? lane + (int)delta : lane;
    return kh_shfl(mask, v, src, "__shfl_down_sync");
}
template <typename T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    int lane = kh_lane();
    int src = (lane % width) >= (int)delta ? lane - (int)delta : lane;
    return kh_shfl(mask, v, src, "__shfl_up_sync");
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    int lane = kh_lane(), src = lane ^ lane_mask;
    if (src >= (lane / width + 1) * width) src = lane;
    return kh_shfl(mask, v, src, "__shfl_xor_sync");
}
template <typename T>
static inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    int lane = kh_lane();
    return kh_shfl(mask, v, (lane / width) * width + src_lane % width, "__shfl_sync");
}
unsigned __ballot_sync(unsigned mask, int pred);
static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, !pred) == 0; }

// ---- the runtime API, on host memory
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorLaunchFailure = 719,
} cudaError_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;

// Device memory: 256-byte aligned host memory, filled with 0xFF (NaN as float)
// like memory nobody wrote, with guard bytes on both sides.
cudaError_t cudaMalloc(void **p, size_t bytes);
template <typename T>
static inline cudaError_t cudaMalloc(T **p, size_t bytes) {
    return cudaMalloc((void **)p, bytes);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = 0);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream = 0);
// Launches finish before they return: synchronising does nothing.
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t *event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);  // always 0
// The error of the last launch (a bad configuration), then cudaSuccess.
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

// ---- the launcher
// Runs body(ctx) once per thread of grid x block (see the top of this file).
// A bad configuration (more than 1024 threads a block, a zero or oversized
// grid) runs nothing and is what cudaGetLastError returns next.
typedef void (*KhBody)(void *ctx);
void kh_launch(const char *kernel, const char *file, int line, dim3 grid, dim3 block,
               KhBody body, void *ctx);

// Launch of a kernel with its arguments converted to its parameters once, on
// the host, as a real launch does; each thread gets its own copy of them.
template <typename... P, typename... A>
static inline void kh_launch_kernel(const char *name, const char *file, int line, dim3 grid,
                                    dim3 block, void (*kernel)(P...), A &&...args) {
    struct Call {
        void (*kernel)(P...);
        std::tuple<typename std::decay<P>::type...> args;
    } call{kernel, std::tuple<typename std::decay<P>::type...>(std::forward<A>(args)...)};
    KhBody body = [](void *c) {
        Call *k = (Call *)c;
        std::apply(k->kernel, k->args);
    };
    kh_launch(name, file, line, grid, block, body, &call);
}

// cuda_common.h's LAUNCH, on the host: the same check of the launch after it.
#define LAUNCH(kernel, grid, block, stream, ...)                                                \
    do {                                                                                        \
        (void)(stream);                                                                         \
        kh_launch_kernel(#kernel, __FILE__, __LINE__, dim3(grid), dim3(block), kernel,          \
                         __VA_ARGS__);                                                          \
        cuda_launch_check_(cudaGetLastError(), #kernel, __FILE__, __LINE__);                    \
    } while (0)

// ---- what the emulator saw (for the tests)
// Problems found since the last kh_clear: writes outside an allocation, barriers
// or warp operations that not every thread reached, deadlocks. Each is printed
// when found; kh_first_error is the first one's text ("" if none).
int kh_errors(void);
const char *kh_first_error(void);
void kh_clear(void);
// 1: run blocks, and the threads of a block between barriers, in reverse order
// (a result that changes with it depends on an order the GPU does not promise).
void kh_set_reverse(int reverse);
