// cuda_host_api.h: the CUDA runtime API of the host shim, for C and C++ (the
// part of cuda_host.h that C code sees: include/cuda_runtime.h brings in only
// this file in a C unit, such as tests/test_cuda_parity.c). The names, values
// and signatures are the toolkit's (driver_types.h, cuda_runtime_api.h); only
// what tabula calls is here. The list, and how each call behaves on the host,
// is in README.md.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
#define KH_DV(v) = v
extern "C" {
#else
#define KH_DV(v)
#endif

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalState = 401,
    cudaErrorNotReady = 600,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorCapturedEvent = 907,
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
#ifndef __cplusplus
typedef enum cudaMemcpyKind cudaMemcpyKind;
#endif

enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2,
};

#define cudaHostAllocDefault 0x00
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;

// The fields tabula reads (the real structs have many more).
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
    int maxThreadsPerBlock;
    int warpSize;
};
struct cudaFuncAttributes {
    size_t sharedSizeBytes, constSizeBytes, localSizeBytes;
    int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion;
};
#ifndef __cplusplus
typedef struct cudaDeviceProp cudaDeviceProp;
typedef struct cudaFuncAttributes cudaFuncAttributes;
#endif

// ---- the device: one, compute capability 9.0, driver and runtime 13.0
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaDriverGetVersion(int *version);
cudaError_t cudaRuntimeGetVersion(int *version);
// Any function of this build has code for the device (its attributes are made up).
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func);
// total: the H200's; free: total less what cudaMalloc holds.
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

// ---- memory. Device memory: 256-byte aligned host memory, filled with 0xFF
// (NaN as float) like memory nobody wrote, with guard bytes on both sides.
// Pinned memory: host memory the shim knows, so a copy can check its kind.
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
// Stream-ordered (tabula does not call them): cudaMalloc, and cudaFree once
// every stream's queued work has run.
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void *p, cudaStream_t stream);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void *p);
// The kind must match the pointers (device memory = a cudaMalloc allocation),
// and device ranges must lie inside one allocation; else the shim reports it
// and returns cudaErrorInvalidValue. Async copies and memsets are queued on
// their stream (recorded if it is capturing) and run when the host needs
// them; cudaMemcpy and cudaMemset are the legacy stream's: after the blocking
// streams' queued work, at once.
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t stream KH_DV(0));
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream KH_DV(0));

// ---- streams and events. Work is queued on its stream and runs when the
// host needs it: a synchronise runs what it waits for, a query of queued work
// says cudaErrorNotReady once and lets it run, the legacy stream runs the
// blocking streams' queues first; between streams, in the order
// kh_set_stream_order chooses (README.md). The calls also check that the
// handles are live and that nothing waits inside a capture.
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags KH_DV(0));
cudaError_t cudaEventCreate(cudaEvent_t *event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream KH_DV(0));
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);  // always 0

// ---- graphs. Between cudaStreamBeginCapture and cudaStreamEndCapture the
// stream's launches, copies, memsets, event records and cuDNN calls are
// recorded, not run (kernel arguments as converted at the launch: pointers by
// value); cudaGraphLaunch runs them in order. Inside a capture (not Relaxed),
// calls that would wait or allocate (cudaMalloc, cudaFree, cudaMemcpy,
// cudaMemset, cudaDeviceSynchronize, cudaStreamSynchronize of the capturing or
// the legacy stream, cudaHostAlloc ...) fail with cudaErrorStreamCaptureUnsupported, work on the legacy stream 0
// fails with cudaErrorStreamCaptureImplicit, and either invalidates the
// capture: cudaStreamEndCapture then returns cudaErrorStreamCaptureInvalidated.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags KH_DV(0));
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

// ---- errors. Every call that fails also sets the error cudaGetLastError
// returns (and clears), as the runtime does.
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorName(cudaError_t e);
const char *cudaGetErrorString(cudaError_t e);

// ---- what the emulator saw and did (not CUDA; for the tests)
// Problems found since the last kh_clear: writes outside an allocation, copies
// of the wrong kind or out of bounds, barriers or warp operations that not
// every thread reached, deadlocks, cuDNN calls on wrong descriptors. Each is
// printed when found; kh_first_error is the first one's text ("" if none).
int kh_errors(void);
const char *kh_first_error(void);
void kh_clear(void);
// 1: any problem the emulator reports makes the program exit 1 at its end
// (after the report), whatever the program itself concludes.
void kh_set_strict(int strict);
// Work recorded in a graph, by kind (a graph launched inside a capture counts
// its own work). kh_graph_counts fills them for g; kh_last_graph_counts for
// the last graph cudaStreamEndCapture made (zeros if none).
typedef struct {
    int kernels, cudnn, copies, memsets, events, graphs;
} KhGraphCounts;
KhGraphCounts kh_last_graph_counts(void);
// The same counts for the work run outside graphs since the last kh_reset_counts.
KhGraphCounts kh_eager_counts(void);
void kh_reset_counts(void);
// The order in which streams' queued work runs when several could go on:
// "newest" (the head enqueued last), "oldest", "random:SEED". Read from
// KH_STREAM_ORDER at the first use unless set here; 0, or -1 for a bad mode.
int kh_set_stream_order(const char *mode);

#ifdef __cplusplus
}
#endif
