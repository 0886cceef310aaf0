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
#include "cuda_host_api.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <memory>
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

// ---- the runtime API (cuda_host_api.h, shared with C), and the C++ overloads
// the toolkit's cuda_runtime.h adds.
template <typename T>
static inline cudaError_t cudaMalloc(T **p, size_t bytes) {
    return cudaMalloc((void **)p, bytes);
}
template <typename T>
static inline cudaError_t cudaMallocHost(T **p, size_t bytes) {
    return cudaMallocHost((void **)p, bytes);
}
template <typename T>
static inline cudaError_t cudaHostAlloc(T **p, size_t bytes, unsigned int flags) {
    return cudaHostAlloc((void **)p, bytes, flags);
}
template <typename T>
static inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, T *entry) {
    return cudaFuncGetAttributes(attr, (const void *)entry);
}

// Queues op on stream s (it runs when the host needs it: see cuda_host_rt.cc),
// or records it if s is capturing (it runs when the graph is launched); on the
// legacy stream it runs now, after the blocking streams' queued work.
// Returns cudaSuccess, or why the stream refused it (a dead handle, an
// invalidated capture, the legacy stream during a capture); the caller sets
// the last error. kind says what op is (KH_OP_*), for the counts.
enum { KH_OP_KERNEL, KH_OP_CUDNN, KH_OP_COPY, KH_OP_MEMSET, KH_OP_GRAPH };
cudaError_t kh_enqueue(cudaStream_t s, int kind, std::function<void()> op);
// Records e as the error cudaGetLastError returns next (unless cudaSuccess); returns e.
cudaError_t kh_error(cudaError_t e);

// ---- the launcher
// Runs body(ctx) once per thread of grid x block (see the top of this file),
// now: the launch itself, at its turn on its stream. The configuration is
// checked when the kernel is launched (kh_launch_kernel).
typedef void (*KhBody)(void *ctx);
void kh_launch(const char *kernel, const char *file, int line, dim3 grid, dim3 block,
               KhBody body, void *ctx);
// A pointer argument of a kernel as the launch runs: one into freed device
// memory (freed while the launch was queued, or a graph replayed after its
// buffer was freed) is reported.
void kh_check_arg(const char *kernel, int i, const void *p);
template <typename T>
static inline void kh_check_arg_of(const char *kernel, int i, const T &v) {
    if constexpr (std::is_pointer<T>::value) kh_check_arg(kernel, i, (const void *)v);
}
// A configuration the device accepts (at most 1024 threads a block, a grid
// neither empty nor oversized)?
int kh_config_ok(dim3 grid, dim3 block);

// Launch of a kernel with its arguments converted to its parameters once, on
// the host, as a real launch does; each thread gets its own copy of them. A
// bad configuration runs nothing and is what cudaGetLastError returns next;
// else the launch goes on the stream (and into its graph if it is capturing,
// the converted arguments with it).
template <typename... P, typename... A>
static inline void kh_launch_kernel(const char *name, const char *file, int line, dim3 grid,
                                    dim3 block, cudaStream_t stream, void (*kernel)(P...),
                                    A &&...args) {
    struct Call {
        void (*kernel)(P...);
        std::tuple<typename std::decay<P>::type...> args;
    };
    if (!kh_config_ok(grid, block)) {
        kh_error(cudaErrorInvalidConfiguration);
        return;
    }
    auto call = std::make_shared<Call>(
        Call{kernel, std::tuple<typename std::decay<P>::type...>(std::forward<A>(args)...)});
    KhBody body = [](void *c) {
        Call *k = (Call *)c;
        std::apply(k->kernel, k->args);
    };
    kh_error(kh_enqueue(stream, KH_OP_KERNEL, [=] {
        std::apply([&](const auto &...a) {
            int i = 0;
            (kh_check_arg_of(name, i++, a), ...);
        }, call->args);
        kh_launch(name, file, line, grid, block, body, call.get());
    }));
}

// cuda_common.h's LAUNCH, on the host: the same check of the launch after it.
#define LAUNCH(kernel, grid, block, stream, ...)                                                \
    do {                                                                                        \
        kh_launch_kernel(#kernel, __FILE__, __LINE__, dim3(grid), dim3(block), (stream),        \
                         kernel, __VA_ARGS__);                                                  \
        cuda_launch_check_(cudaGetLastError(), #kernel, __FILE__, __LINE__);                    \
    } while (0)

// ---- what the emulator saw: kh_errors, kh_first_error and kh_clear are in
// cuda_host_api.h.
// 1: run blocks, and the threads of a block between barriers, in reverse order
// (a result that changes with it depends on an order the GPU does not promise).
void kh_set_reverse(int reverse);
