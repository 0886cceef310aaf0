// test_cuda_shim_host.cc: why it exists: test_cuda_parity_host passing means
// something only if the shim under it behaves as the device and cuDNN do
// where the backend could go wrong: a graph replays what was captured (the
// arguments as they were, not as they are), a capture refuses what would wait,
// copies are held to their kind, freed memory is told apart, and the host
// cuDNN refuses what cuDNN refuses, blends with beta as cuDNN does and is
// non-deterministic where it says so. Each case here breaks one of those
// rules on purpose and expects to be told.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda_host.h"
#include "cudnn.h"
#include "test.h"

// y[i] = a * x[i], one thread an element.
__global__ void scale_kernel(float *y, const float *x, int n, float a) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) y[i] = a * x[i];
}

static float *dalloc(int n) {
    void *p = NULL;
    cudaMalloc(&p, (size_t)n * sizeof(float));
    return (float *)p;
}

static void launch_scale(float *y, const float *x, int n, float a, cudaStream_t s) {
    kh_launch_kernel("scale_kernel", __FILE__, __LINE__, dim3((unsigned)(n + 63) / 64), dim3(64), s,
                     scale_kernel, y, x, n, a);
}

// Nothing runs while captured; each launch of the graph runs the work with the
// scalar it had at the capture, and a copy reads the host buffer as it is then.
TEST_IMPL(graph_replays_the_captured_arguments) {
    const int n = 100;
    float *x = dalloc(n), *y = dalloc(n), h[n], back[n];
    for (int i = 0; i < n; i++) h[i] = (float)i;
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaMemset(y, 0, n * sizeof(float));
    float a = 2.0f;
    cudaGraph_t g = NULL;
    cudaGraphExec_t e = NULL;
    EXPECT(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess, "begin");
    cudaMemcpyAsync(x, h, sizeof h, cudaMemcpyHostToDevice, s);
    launch_scale(y, x, n, a, s);
    EXPECT(cudaStreamEndCapture(s, &g) == cudaSuccess && g, "end");
    cudaMemcpy(back, y, sizeof back, cudaMemcpyDeviceToHost);
    EXPECT(back[7] == 0.0f, "the captured work ran at once: %g", (double)back[7]);
    KhGraphCounts c = kh_last_graph_counts();
    EXPECT(c.kernels == 1 && c.copies == 1, "graph counts %d kernels %d copies", c.kernels, c.copies);
    EXPECT(cudaGraphInstantiate(&e, g, 0) == cudaSuccess, "instantiate");
    a = 5.0f;        // a host value changed after the capture: not seen
    h[7] = 70.0f;    // the copy reads its source when it runs: seen
    cudaGraphLaunch(e, s);
    cudaStreamSynchronize(s);
    cudaMemcpy(back, y, sizeof back, cudaMemcpyDeviceToHost);
    EXPECT(back[7] == 140.0f && back[8] == 16.0f, "replay: %g %g", (double)back[7], (double)back[8]);
    cudaGraphExecDestroy(e);
    cudaGraphDestroy(g);
    cudaStreamDestroy(s);
    cudaFree(x), cudaFree(y);
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
}

// A synchronous call inside a capture fails and invalidates it; the stream's
// later work and the end of the capture say so; the error is the last error.
TEST_IMPL(capture_refuses_what_would_wait) {
    float *x = dalloc(4), h[4] = {0};
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    (void)cudaGetLastError();
    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    EXPECT(cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice) == cudaErrorStreamCaptureUnsupported,
           "cudaMemcpy inside a capture");
    EXPECT(cudaGetLastError() == cudaErrorStreamCaptureUnsupported, "the last error");
    EXPECT(cudaMemsetAsync(x, 0, sizeof h, s) == cudaErrorStreamCaptureInvalidated,
           "work on an invalidated capture");
    void *p = NULL;
    EXPECT(cudaMalloc(&p, 16) == cudaErrorStreamCaptureUnsupported, "cudaMalloc inside a capture");
    cudaGraph_t g = (cudaGraph_t)1;
    EXPECT(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated && g == NULL,
           "the end of an invalidated capture");
    EXPECT(cudaStreamSynchronize(s) == cudaSuccess, "after the capture");
    (void)cudaGetLastError();
    cudaStreamDestroy(s);
    cudaFree(x);
}

// A device pointer given as host memory (and the reverse), a copy past an
// allocation, and a graph replayed after its buffer was freed: all reported.
TEST_IMPL(copies_are_held_to_their_kind) {
    float *x = dalloc(8), *y = dalloc(8), h[8] = {0};
    kh_clear();
    EXPECT(cudaMemcpy(x, y, 32, cudaMemcpyHostToDevice) == cudaErrorInvalidValue && kh_errors() == 1,
           "a device source for HostToDevice");
    EXPECT(cudaMemcpy(h, x, 32, cudaMemcpyHostToHost) == cudaErrorInvalidValue && kh_errors() == 2,
           "a device source for HostToHost");
    EXPECT(cudaMemcpy(x, h, 36, cudaMemcpyHostToDevice) == cudaErrorInvalidValue && kh_errors() == 3,
           "a copy past the end");
    EXPECT(cudaMemcpy(x, y, 32, cudaMemcpyDeviceToDevice) == cudaSuccess && kh_errors() == 3,
           "the right kind");
    cudaStream_t s;
    cudaStreamCreate(&s);
    cudaGraph_t g;
    cudaGraphExec_t e;
    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    cudaMemsetAsync(y, 0, 32, s);
    cudaStreamEndCapture(s, &g);
    cudaGraphInstantiate(&e, g, 0);
    cudaFree(y);
    cudaGraphLaunch(e, s);
    cudaStreamSynchronize(s);  // the launch runs (and its memset is checked) when waited for
    EXPECT(kh_errors() == 4 && strstr(kh_first_error(), "HostToDevice"), "freed: %d: %s",
           kh_errors(), kh_first_error());
    cudaGraphExecDestroy(e);
    cudaGraphDestroy(g);
    cudaStreamDestroy(s);
    cudaFree(x);
    kh_clear();
}

// Two devices (KH_DEVICES=2): a launch onto a stream of device 0 while device
// 1 is current is refused and told, as the device refuses it; so is an event
// of device 1 recorded on device 0's stream. A copy may go to either.
TEST_IMPL(devices_refuse_work_of_another) {
    setenv("KH_DEVICES", "2", 1);
    int n = 0;
    cudaGetDeviceCount(&n);
    EXPECT(n == 2, "KH_DEVICES=2 gives %d devices", n);
    EXPECT(cudaSetDevice(2) == cudaErrorInvalidDevice, "a third device made current");
    (void)cudaGetLastError();
    float *x = dalloc(64), *y = dalloc(64);
    cudaStream_t s0;
    cudaEvent_t e1;
    cudaSetDevice(0);
    cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking);
    cudaSetDevice(1);
    cudaEventCreateWithFlags(&e1, cudaEventDisableTiming);
    kh_clear();
    launch_scale(y, x, 64, 2.0f, s0);
    EXPECT(cudaGetLastError() == cudaErrorInvalidResourceHandle && kh_errors() == 1,
           "a launch on device 0's stream with device 1 current: %d told", kh_errors());
    EXPECT(cudaEventRecord(e1, s0) == cudaErrorInvalidResourceHandle && kh_errors() == 2,
           "device 1's event recorded on device 0's stream");
    (void)cudaGetLastError();
    EXPECT(cudaMemcpyAsync(y, x, 64 * sizeof(float), cudaMemcpyDeviceToDevice, s0) == cudaSuccess &&
               kh_errors() == 2, "a copy on another device's stream");
    cudaSetDevice(0);
    launch_scale(y, x, 64, 2.0f, s0);
    EXPECT(cudaGetLastError() == cudaSuccess && kh_errors() == 2, "a launch on the current device's stream");
    cudaEventDestroy(e1);
    cudaStreamDestroy(s0);
    cudaFree(x);
    cudaFree(y);
    setenv("KH_DEVICES", "1", 1);
    kh_clear();
}

// A copy from pinned memory reads its source when the stream gets to it: the
// host changing that buffer before it knows the copy done (a stream or event
// waited for, directly or through another stream's wait) is told when it
// learns; a change after that is not.
TEST_IMPL(pinned_source_changed_in_flight) {
    float *x = dalloc(16), *h = NULL;
    cudaMallocHost((void **)&h, 16 * sizeof(float));
    for (int i = 0; i < 16; i++) h[i] = (float)i;
    cudaStream_t s, t;
    cudaEvent_t e;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&t, cudaStreamNonBlocking);
    cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    kh_clear();
    cudaMemcpyAsync(x, h, 16 * sizeof(float), cudaMemcpyHostToDevice, s);
    h[3] = 30.0f;  // too early
    cudaStreamSynchronize(s);
    EXPECT(kh_errors() == 1 && strstr(kh_first_error(), "changed by the host"), "not told: %d",
           kh_errors());
    h[3] = 31.0f;  // known done: free to change
    cudaMemcpyAsync(x, h, 16 * sizeof(float), cudaMemcpyHostToDevice, s);
    cudaEventRecord(e, s);
    cudaEventSynchronize(e);
    h[4] = 40.0f;
    cudaMemcpyAsync(x, h, 16 * sizeof(float), cudaMemcpyHostToDevice, s);
    cudaEventRecord(e, s);
    cudaStreamWaitEvent(t, e, 0);
    cudaStreamSynchronize(t);  // t waited for the copy: known done through it
    h[5] = 50.0f;
    cudaStreamSynchronize(s);
    EXPECT(kh_errors() == 1, "a change after the copy was known done was told: %d", kh_errors());
    cudaEventDestroy(e);
    cudaStreamDestroy(t);
    cudaStreamDestroy(s);
    cudaFreeHost(h);
    cudaFree(x);
    kh_clear();
}

// The mirror image: a copy into pinned memory lands when the stream gets to it,
// so the host may read the destination only once it knows the copy done (the
// stream or an event after the copy waited for, found complete, or waited for
// through another stream). Before that the shim holds the bytes back: a read
// too early sees the poison (0xFF, NaN as float), never the result; the host
// writing the destination in flight is told. A pageable destination is
// written at once (the call returns when the copy is done).
TEST_IMPL(pinned_destination_read_too_early) {
    const int n = 16;
    float *x = dalloc(n), *h = NULL, src[n], page[n];
    for (int i = 0; i < n; i++) src[i] = (float)(i + 1);
    cudaMemcpy(x, src, sizeof src, cudaMemcpyHostToDevice);
    cudaMallocHost((void **)&h, n * sizeof(float));
    cudaStream_t s, t;
    cudaEvent_t e;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&t, cudaStreamNonBlocking);
    cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
    kh_clear();
    // Too early: read right after the copy, then after a wait on another stream.
    cudaMemcpyAsync(h, x, n * sizeof(float), cudaMemcpyDeviceToHost, s);
    EXPECT(isnan(h[0]) && isnan(h[n - 1]), "read before any wait: %g %g", (double)h[0],
           (double)h[n - 1]);
    cudaStreamSynchronize(t);
    EXPECT(isnan(h[3]), "read after waiting for another stream: %g", (double)h[3]);
    cudaEventRecord(e, s);  // an event after the copy: not ready once, then complete
    EXPECT(cudaEventQuery(e) == cudaErrorNotReady && isnan(h[3]), "first cudaEventQuery: %g",
           (double)h[3]);
    EXPECT(cudaEventQuery(e) == cudaSuccess && h[3] == 4.0f, "after cudaEventQuery: %g",
           (double)h[3]);
    // An event recorded before the copy does not cover it.
    cudaEventRecord(e, s);
    cudaMemcpyAsync(h, x, n * sizeof(float), cudaMemcpyDeviceToHost, s);
    cudaEventSynchronize(e);
    EXPECT(isnan(h[3]), "an event recorded before the copy made it land: %g", (double)h[3]);
    cudaStreamSynchronize(s);
    EXPECT(h[3] == 4.0f, "after cudaStreamSynchronize: %g", (double)h[3]);
    // Through another stream's wait for an event after the copy.
    cudaMemcpyAsync(h, x, n * sizeof(float), cudaMemcpyDeviceToHost, s);
    cudaEventRecord(e, s);
    cudaStreamWaitEvent(t, e, 0);
    cudaStreamSynchronize(t);
    EXPECT(h[5] == 6.0f, "after a stream that waited for it: %g", (double)h[5]);
    // A pageable destination: there at once.
    cudaMemcpyAsync(page, x, sizeof page, cudaMemcpyDeviceToHost, s);
    EXPECT(page[2] == 3.0f, "pageable destination: %g", (double)page[2]);
    EXPECT(kh_errors() == 0, "reads alone are not reported: %s", kh_first_error());
    // The host writing the destination in flight: told when it learns the copy done.
    cudaMemcpyAsync(h, x, n * sizeof(float), cudaMemcpyDeviceToHost, s);
    h[7] = 0.0f;
    cudaStreamSynchronize(s);
    EXPECT(kh_errors() == 1 && strstr(kh_first_error(), "written by the host"), "not told: %d",
           kh_errors());
    EXPECT(h[7] == 8.0f, "the copy's bytes did not land over the host's: %g", (double)h[7]);
    cudaEventDestroy(e);
    cudaStreamDestroy(t);
    cudaStreamDestroy(s);
    cudaFreeHost(h);
    cudaFree(x);
    kh_clear();
}

// The same rule in a graph: a captured copy into pinned memory lands when the
// host knows the launch done, not when the launch returns.
TEST_IMPL(pinned_destination_in_a_graph) {
    const int n = 8;
    float *x = dalloc(n), *h = NULL, src[n];
    for (int i = 0; i < n; i++) src[i] = (float)(i + 1);
    cudaMemcpy(x, src, sizeof src, cudaMemcpyHostToDevice);
    cudaMallocHost((void **)&h, n * sizeof(float));
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    kh_clear();
    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    cudaMemcpyAsync(h, x, n * sizeof(float), cudaMemcpyDeviceToHost, s);
    cudaStreamEndCapture(s, &g);
    cudaGraphInstantiate(&ge, g, 0);
    cudaGraphLaunch(ge, s);
    EXPECT(isnan(h[1]), "read before the launch was known done: %g", (double)h[1]);
    cudaStreamSynchronize(s);
    EXPECT(h[1] == 2.0f, "after cudaStreamSynchronize: %g", (double)h[1]);
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    cudaStreamDestroy(s);
    cudaFreeHost(h);
    cudaFree(x);
}

// A 2x3x5x4 input, 4 filters 3x3, pad 1: the descriptors set up for one call.
struct Conv {
    cudnnHandle_t h;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t cd;
    float *dx, *dw, *dy, *ws;
};

static Conv conv_make(void) {
    Conv c;
    cudnnCreate(&c.h);
    cudnnCreateTensorDescriptor(&c.x);
    cudnnCreateTensorDescriptor(&c.y);
    cudnnCreateFilterDescriptor(&c.w);
    cudnnCreateConvolutionDescriptor(&c.cd);
    cudnnSetTensor4dDescriptor(c.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 3, 5, 4);
    cudnnSetTensor4dDescriptor(c.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 5, 4);
    cudnnSetFilter4dDescriptor(c.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3);
    cudnnSetConvolution2dDescriptor(c.cd, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    cudnnSetConvolutionMathType(c.cd, CUDNN_FMA_MATH);
    c.dx = dalloc(120), c.dw = dalloc(108), c.dy = dalloc(160), c.ws = dalloc(1 << 20);
    std::vector<float> v(160);
    for (int i = 0; i < 160; i++) v[(size_t)i] = (float)((i * 37) % 17) / 16.0f - 0.4f;
    cudaMemcpy(c.dx, v.data(), 120 * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(c.dw, v.data(), 108 * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(c.dy, v.data(), 160 * 4, cudaMemcpyHostToDevice);
    return c;
}

static void conv_free(Conv *c) {
    cudnnDestroyTensorDescriptor(c->x);
    cudnnDestroyTensorDescriptor(c->y);
    cudnnDestroyFilterDescriptor(c->w);
    cudnnDestroyConvolutionDescriptor(c->cd);
    cudnnDestroy(c->h);
    cudaFree(c->dx), cudaFree(c->dw), cudaFree(c->dy), cudaFree(c->ws);
}

// Mismatched descriptors and a short workspace are BAD_PARAM with a reason;
// beta = 0 does not read a NaN output, beta = 1 adds to it.
TEST_IMPL(cudnn_refuses_and_blends_as_cudnn) {
    Conv c = conv_make();
    const float one = 1.0f, zero = 0.0f;
    cudnnTensorDescriptor_t bad;
    cudnnCreateTensorDescriptor(&bad);
    cudnnSetTensor4dDescriptor(bad, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 4, 4);
    size_t need = 0;
    cudnnGetConvolutionForwardWorkspaceSize(c.h, c.x, c.w, c.cd, c.y,
                                            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &need);
    EXPECT(need > 0, "PRECOMP_GEMM needs no workspace");
    EXPECT(cudnnConvolutionForward(c.h, &one, c.x, c.dx, c.w, c.dw, c.cd,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero, bad,
                                   c.dy) == CUDNN_STATUS_BAD_PARAM, "a wrong output shape");
    char msg[256];
    cudnnGetLastErrorString(msg, sizeof msg);
    EXPECT(strstr(msg, "2x4x4x4") != NULL, "the reason: %s", msg);
    EXPECT(cudnnConvolutionForward(c.h, &one, c.x, c.dx, c.w, c.dw, c.cd,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, c.ws, need - 1,
                                   &zero, c.y, c.dy) == CUDNN_STATUS_BAD_PARAM, "a short workspace");
    std::vector<float> y0(160), y1(160);
    cudaMemset(c.dy, 0xFF, 160 * 4);  // NaN
    EXPECT(cudnnConvolutionForward(c.h, &one, c.x, c.dx, c.w, c.dw, c.cd,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero, c.y,
                                   c.dy) == CUDNN_STATUS_SUCCESS, "forward");
    cudaMemcpy(y0.data(), c.dy, 160 * 4, cudaMemcpyDeviceToHost);
    int nans = 0;
    for (float v : y0) nans += isnan(v);
    EXPECT(nans == 0, "beta = 0 read the NaN output: %d NaNs", nans);
    cudnnConvolutionForward(c.h, &one, c.x, c.dx, c.w, c.dw, c.cd,
                            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &one, c.y, c.dy);
    cudaMemcpy(y1.data(), c.dy, 160 * 4, cudaMemcpyDeviceToHost);
    EXPECT(y1[17] == 2.0f * y0[17] && y0[17] != 0.0f, "beta = 1: %g, twice %g", (double)y1[17],
           (double)y0[17]);
    cudnnDestroyTensorDescriptor(bad);
    conv_free(&c);
}

// Backward filter: ALGO_0 (non-deterministic) differs in its bits between two
// calls on these inputs, ALGO_1 (deterministic) never.
TEST_IMPL(cudnn_nondeterminism_is_real) {
    Conv c = conv_make();
    const float one = 1.0f, zero = 0.0f;
    int differ[2] = {0, 0};
    cudnnConvolutionBwdFilterAlgo_t algos[2] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
    for (int k = 0; k < 2; k++) {
        std::vector<float> a(108), b(108);
        for (int run = 0; run < 2; run++) {
            cudnnConvolutionBackwardFilter(c.h, &one, c.x, c.dx, c.y, c.dy, c.cd, algos[k], c.ws,
                                           1 << 20, &zero, c.w, c.dw);
            cudaMemcpy(run ? b.data() : a.data(), c.dw, 108 * 4, cudaMemcpyDeviceToHost);
        }
        differ[k] = memcmp(a.data(), b.data(), 108 * 4) != 0;
    }
    EXPECT(differ[0] && !differ[1], "ALGO_0 differs: %d, ALGO_1 differs: %d", differ[0], differ[1]);
    conv_free(&c);
}

// ---- streams that run out of order. Queued work runs when the host needs
// it; between streams the newest head goes first (the default order), so a
// missing wait shows as a stale or overwritten value, as it could on a GPU.

// n floats on the device, each v (through the legacy stream: there at once).
static float *dfill(int n, float v) {
    float *d = dalloc(n);
    std::vector<float> h((size_t)n, v);
    cudaMemcpy(d, h.data(), (size_t)n * sizeof(float), cudaMemcpyHostToDevice);
    return d;
}

static float dget(const float *d, int i) {
    float v = 0;
    cudaMemcpy(&v, d + i, sizeof v, cudaMemcpyDeviceToHost);
    return v;
}

struct Two {
    cudaStream_t a, b;
    cudaEvent_t e;
};
// (In the default order whatever KH_STREAM_ORDER says: the cases expect it.)
static Two two_streams(unsigned flags) {
    kh_set_stream_order("newest");
    Two t;
    cudaStreamCreateWithFlags(&t.a, flags);
    cudaStreamCreateWithFlags(&t.b, flags);
    cudaEventCreateWithFlags(&t.e, cudaEventDisableTiming);
    return t;
}
static void two_free(Two *t) {
    cudaEventDestroy(t->e);
    cudaStreamDestroy(t->a);
    cudaStreamDestroy(t->b);
}

// Stream A writes y = 2x, stream B reads z = 3y. Without a wait B runs first
// (y still 1: z = 3, stale); with an event recorded after A's write and
// waited for by B, z = 6x. Under "oldest" the missing wait goes unseen: the
// reason "newest" is the default.
TEST_IMPL(streams_read_without_a_wait_stale) {
    const int n = 100;
    float *x = dfill(n, 5.0f), *y = dfill(n, 1.0f), *z = dfill(n, 0.0f), one[n];
    for (int i = 0; i < n; i++) one[i] = 1.0f;
    Two t = two_streams(cudaStreamNonBlocking);
    kh_clear();
    launch_scale(y, x, n, 2.0f, t.a);
    launch_scale(z, y, n, 3.0f, t.b);
    cudaDeviceSynchronize();
    EXPECT(dget(z, 7) == 3.0f, "no wait: B read %g, not the stale 3", (double)dget(z, 7));
    cudaMemcpy(y, one, sizeof one, cudaMemcpyHostToDevice);
    launch_scale(y, x, n, 2.0f, t.a);
    cudaEventRecord(t.e, t.a);
    cudaStreamWaitEvent(t.b, t.e, 0);
    launch_scale(z, y, n, 3.0f, t.b);
    cudaStreamSynchronize(t.b);  // runs A's write first: B waits for it
    EXPECT(dget(z, 7) == 30.0f && dget(z, n - 1) == 30.0f, "with the wait: %g",
           (double)dget(z, 7));
    kh_set_stream_order("oldest");
    cudaMemcpy(y, one, sizeof one, cudaMemcpyHostToDevice);
    launch_scale(y, x, n, 2.0f, t.a);
    launch_scale(z, y, n, 3.0f, t.b);
    cudaDeviceSynchronize();
    EXPECT(dget(z, 7) == 30.0f, "oldest: %g (A first)", (double)dget(z, 7));
    kh_set_stream_order("newest");
    two_free(&t);
    cudaFree(x), cudaFree(y), cudaFree(z);
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
}

// Write after read: B still has to read y (z = 3y) when A overwrites it
// (y = 2x). Without a wait the overwrite runs first and B reads the new y;
// with A waiting for an event recorded after B's read, B reads the old one.
TEST_IMPL(streams_overwrite_before_the_read) {
    const int n = 64;
    float *x = dfill(n, 5.0f), *y = dfill(n, 1.0f), *z = dfill(n, 0.0f);
    Two t = two_streams(cudaStreamNonBlocking);
    kh_clear();
    launch_scale(z, y, n, 3.0f, t.b);
    launch_scale(y, x, n, 2.0f, t.a);
    cudaStreamSynchronize(t.a);
    cudaStreamSynchronize(t.b);
    EXPECT(dget(z, 3) == 30.0f, "no wait: B read %g, not the overwritten y (30)", (double)dget(z, 3));
    float one[n];
    for (int i = 0; i < n; i++) one[i] = 1.0f;
    cudaMemcpy(y, one, sizeof one, cudaMemcpyHostToDevice);
    launch_scale(z, y, n, 3.0f, t.b);
    cudaEventRecord(t.e, t.b);
    cudaStreamWaitEvent(t.a, t.e, 0);
    launch_scale(y, x, n, 2.0f, t.a);
    cudaDeviceSynchronize();
    EXPECT(dget(z, 3) == 3.0f && dget(y, 3) == 10.0f, "with the wait: z %g y %g", (double)dget(z, 3),
           (double)dget(y, 3));
    two_free(&t);
    cudaFree(x), cudaFree(y), cudaFree(z);
    EXPECT(kh_errors() == 0, "%s", kh_first_error());
}

// A query of queued work says not ready once (without making it the last
// error), and the device goes on: the next query finds it done. An idle
// stream, and an event never recorded, are ready at once.
TEST_IMPL(query_not_ready_once_then_ready) {
    const int n = 32;
    float *x = dfill(n, 5.0f), *y = dfill(n, 1.0f);
    Two t = two_streams(cudaStreamNonBlocking);
    EXPECT(cudaEventQuery(t.e) == cudaSuccess, "an event never recorded is not complete");
    EXPECT(cudaStreamQuery(t.a) == cudaSuccess, "an idle stream is busy");
    launch_scale(y, x, n, 2.0f, t.a);
    cudaEventRecord(t.e, t.a);
    (void)cudaGetLastError();
    EXPECT(cudaEventQuery(t.e) == cudaErrorNotReady, "the event of queued work is complete");
    EXPECT(cudaGetLastError() == cudaSuccess, "not ready became the last error");
    EXPECT(cudaEventQuery(t.e) == cudaSuccess, "the second query still says not ready");
    launch_scale(y, x, n, 2.0f, t.b);
    EXPECT(cudaStreamQuery(t.b) == cudaErrorNotReady, "a stream with queued work is idle");
    EXPECT(cudaStreamQuery(t.b) == cudaSuccess, "the second stream query still says not ready");
    EXPECT(dget(y, 0) == 10.0f, "the work the queries let run: %g", (double)dget(y, 0));
    two_free(&t);
    cudaFree(x), cudaFree(y);
}

// cudaMemcpy is on the legacy stream: it waits for the blocking streams'
// work, not for a non-blocking stream's (that is what cudaStreamNonBlocking
// means): read right after a kernel there, the copy is stale.
TEST_IMPL(legacy_copy_waits_for_blocking_streams_only) {
    const int n = 16;
    float *x = dfill(n, 5.0f), *y = dfill(n, 1.0f), h[n];
    cudaStream_t nb, bl;
    cudaStreamCreateWithFlags(&nb, cudaStreamNonBlocking);
    cudaStreamCreate(&bl);
    launch_scale(y, x, n, 2.0f, nb);
    cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost);
    EXPECT(h[4] == 1.0f, "non-blocking stream: the copy read %g, not the stale 1", (double)h[4]);
    cudaStreamSynchronize(nb);
    launch_scale(y, x, n, 3.0f, bl);
    cudaMemcpy(h, y, sizeof h, cudaMemcpyDeviceToHost);
    EXPECT(h[4] == 15.0f, "blocking stream: the copy read %g, not 15", (double)h[4]);
    cudaStreamDestroy(nb);
    cudaStreamDestroy(bl);
    cudaFree(x), cudaFree(y);
}

// A graph launched on B that reads what A writes: it waits for A's event
// like any work of B (right), and without the wait reads stale data.
TEST_IMPL(graph_launch_waits_for_another_stream) {
    const int n = 40;
    float *x = dfill(n, 5.0f), *y = dfill(n, 1.0f), *z = dfill(n, 0.0f);
    Two t = two_streams(cudaStreamNonBlocking);
    cudaGraph_t g = NULL;
    cudaGraphExec_t ge = NULL;
    cudaStreamBeginCapture(t.b, cudaStreamCaptureModeThreadLocal);
    launch_scale(z, y, n, 3.0f, t.b);
    cudaStreamEndCapture(t.b, &g);
    cudaGraphInstantiate(&ge, g, 0);
    launch_scale(y, x, n, 2.0f, t.a);
    cudaEventRecord(t.e, t.a);
    cudaStreamWaitEvent(t.b, t.e, 0);
    cudaGraphLaunch(ge, t.b);
    cudaDeviceSynchronize();
    EXPECT(dget(z, 9) == 30.0f, "graph after the wait: %g", (double)dget(z, 9));
    launch_scale(y, x, n, 4.0f, t.a);  // y = 20, but B does not wait this time
    cudaGraphLaunch(ge, t.b);
    cudaDeviceSynchronize();
    EXPECT(dget(z, 9) == 30.0f, "graph without the wait: %g, not the stale 30", (double)dget(z, 9));
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    two_free(&t);
    cudaFree(x), cudaFree(y), cudaFree(z);
}

// Freeing what queued work still uses: cudaFree does not wait (the runtime
// does not document it as a synchronisation), so the launch runs on freed
// memory and is told; cudaFreeHost of a buffer a queued copy uses is told.
TEST_IMPL(free_while_work_is_queued_is_told) {
    const int n = 16;
    float *x = dfill(n, 5.0f), *y = dfill(n, 1.0f), *h = NULL;
    cudaMallocHost((void **)&h, n * sizeof(float));
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    kh_clear();
    launch_scale(y, x, n, 2.0f, s);
    cudaFree(x);
    cudaStreamSynchronize(s);
    EXPECT(kh_errors() == 1 && strstr(kh_first_error(), "freed device memory"), "not told: %d %s",
           kh_errors(), kh_first_error());
    cudaMemcpyAsync(h, y, n * sizeof(float), cudaMemcpyDeviceToHost, s);
    cudaFreeHost(h);
    EXPECT(kh_errors() == 2, "cudaFreeHost with a copy queued: %d told", kh_errors());
    cudaStreamDestroy(s);
    cudaFree(y);
    kh_clear();
}

TEST_MAIN(TEST_ENTRY(graph_replays_the_captured_arguments), TEST_ENTRY(capture_refuses_what_would_wait),
          TEST_ENTRY(copies_are_held_to_their_kind), TEST_ENTRY(cudnn_refuses_and_blends_as_cudnn),
          TEST_ENTRY(cudnn_nondeterminism_is_real), TEST_ENTRY(devices_refuse_work_of_another),
          TEST_ENTRY(pinned_source_changed_in_flight),
          TEST_ENTRY(pinned_destination_read_too_early), TEST_ENTRY(pinned_destination_in_a_graph),
          TEST_ENTRY(streams_read_without_a_wait_stale), TEST_ENTRY(streams_overwrite_before_the_read),
          TEST_ENTRY(query_not_ready_once_then_ready),
          TEST_ENTRY(legacy_copy_waits_for_blocking_streams_only),
          TEST_ENTRY(graph_launch_waits_for_another_stream), TEST_ENTRY(free_while_work_is_queued_is_told))
