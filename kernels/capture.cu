// capture.cu: capture mode for the error checks of cuda_common.h. While a
// training step is captured as a CUDA graph, a failing call records its message
// here (the first one only: later calls in a broken capture fail too, for that
// reason) instead of exiting, and the backend runs the step eagerly instead.
// Per thread: the main thread's interop calls keep exiting on failure while the
// training thread captures.
// Holds: the per-thread state and its four functions, the per-thread launch
// counter; no kernels.
#include <string.h>

#include "cuda_common.h"

namespace {
struct CaptureState {
    int on;          // between cuda_capture_begin and cuda_capture_end
    int inject;      // the next check reports a failure (once)
    int failed;      // a check failed; msg is the first one
    char msg[640];
};
thread_local CaptureState cap;
thread_local unsigned long launches;
}  // namespace

extern "C" void cuda_count_launch_(void) { launches++; }
extern "C" unsigned long cuda_launch_count(void) { return launches; }

extern "C" void cuda_capture_begin(int inject) {
    cap.on = 1;
    cap.inject = inject;
    cap.failed = 0;
    cap.msg[0] = 0;
}

extern "C" int cuda_capture_end(char *msg, size_t n) {
    int failed = cap.failed;
    if (msg && n) snprintf(msg, n, "%s", failed ? cap.msg : "");
    cap.on = cap.inject = cap.failed = 0;
    return failed;
}

extern "C" int cuda_capture_failing_(int failed) {
    if (!cap.on) return -1;
    if (cap.inject) {
        cap.inject = 0;
        return 1;
    }
    return failed;
}

extern "C" void cuda_capture_record_(const char *msg) {
    if (cap.failed) return;
    cap.failed = 1;
    snprintf(cap.msg, sizeof cap.msg, "%s", msg);
}
