// test_cuda_capture.c: why it exists: while the CUDA backend captures a
// training step as a graph, a failing CUDA or cuDNN call must not exit the
// program (the step can still run eagerly), yet outside a capture the same
// checks must still stop it with the message. The capture itself needs a GPU
// (test_cuda_parity: capture_failure_falls_back_to_eager); the checks' side of
// it needs none, so it is tested here on error codes given to the checks
// directly. Skips (77) in a build without CUDA.
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#ifdef TABULA_HAVE_CUDA
#include "cuda_common.h"

// The first failure is kept, with its expression and library; later ones (a
// broken capture makes every later call fail too) do not replace it.
TEST_IMPL(first_failure_is_recorded_and_nothing_exits) {
    char msg[640];
    cuda_capture_begin(0);
    cudaCheck(cudaSuccess);
    cudaCheck(cudaErrorInvalidValue);
    cudnnCheck(CUDNN_STATUS_BAD_PARAM);
    cuda_launch_check_(cudaErrorLaunchFailure, "some_kernel", __FILE__, __LINE__);
    int failed = cuda_capture_end(msg, sizeof msg);
    EXPECT(failed == 1, "cuda_capture_end: %d", failed);
    EXPECT(strstr(msg, "CUDA error 1 (cudaErrorInvalidValue)") != NULL, "first failure: %s", msg);
    EXPECT(strstr(msg, "in cudaErrorInvalidValue") != NULL, "the expression is named: %s", msg);
    EXPECT(strstr(msg, "test_cuda_capture.c:") != NULL, "where: %s", msg);
    EXPECT(strstr(msg, "BAD_PARAM") == NULL && strstr(msg, "some_kernel") == NULL,
           "a later failure replaced the first: %s", msg);
}

TEST_IMPL(clean_capture_reports_nothing) {
    char msg[64] = "x";
    cuda_capture_begin(0);
    cudaCheck(cudaSuccess);
    cudnnCheck(CUDNN_STATUS_SUCCESS);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 0, "a capture without failures failed");
    EXPECT(msg[0] == 0, "message \"%s\"", msg);
}

// cuDNN first this time: its library and status name are in the message.
TEST_IMPL(cudnn_failure_is_named) {
    char msg[640];
    cuda_capture_begin(0);
    cudnnCheck(CUDNN_STATUS_NOT_SUPPORTED);
    cudaCheck(cudaErrorInvalidValue);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 1, "not failed");
    EXPECT(strstr(msg, "cuDNN error") && strstr(msg, "NOT_SUPPORTED"), "message: %s", msg);
}

// TABULA_INJECT_CAPTURE_FAIL's path: the first check inside the capture
// reports a failure although its call succeeded; only the first.
TEST_IMPL(injected_failure_hits_the_first_check) {
    char msg[640];
    cuda_capture_begin(1);
    cudnnCheck(CUDNN_STATUS_SUCCESS);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 1, "the injected failure was not recorded");
    EXPECT(strstr(msg, "injected") && strstr(msg, "CUDNN_STATUS_SUCCESS"), "message: %s", msg);
    cuda_capture_begin(0);  // not carried into the next capture
    cudaCheck(cudaSuccess);
    EXPECT(cuda_capture_end(msg, sizeof msg) == 0, "the injection leaked into a later capture");
}

// Runs fn in a child; returns its exit status (-1 if it did not exit).
static int child_status(void (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void fail_outside(void) { cudaCheck(cudaErrorInvalidValue); }
static void fail_after_end(void) {
    cuda_capture_begin(0);
    cuda_capture_end(NULL, 0);
    cudnnCheck(CUDNN_STATUS_BAD_PARAM);
}
static void succeed_outside(void) { cudaCheck(cudaSuccess); }

// Outside capture mode the checks still exit 1 (and a success does not).
TEST_IMPL(outside_capture_a_failure_exits) {
    EXPECT(child_status(fail_outside) == 1, "cudaCheck of a failure did not exit 1");
    EXPECT(child_status(fail_after_end) == 1, "cudnnCheck after the capture ended did not exit 1");
    EXPECT(child_status(succeed_outside) == 0, "cudaCheck of a success exited");
}

// Capture mode is the calling thread's alone: the main thread's interop
// checks keep exiting while the training thread captures.
static void *fail_on_other_thread(void *arg) {
    (void)arg;
    cudaCheck(cudaErrorInvalidValue);
    return NULL;
}
static void capture_here_fail_there(void) {
    cuda_capture_begin(0);
    pthread_t t;
    pthread_create(&t, NULL, fail_on_other_thread, NULL);
    pthread_join(t, NULL);
    _exit(0);
}
TEST_IMPL(capture_mode_is_per_thread) {
    EXPECT(child_status(capture_here_fail_there) == 1,
           "a failure on another thread was swallowed by this thread's capture mode");
}

TEST_MAIN(TEST_ENTRY(first_failure_is_recorded_and_nothing_exits),
          TEST_ENTRY(clean_capture_reports_nothing), TEST_ENTRY(cudnn_failure_is_named),
          TEST_ENTRY(injected_failure_hits_the_first_check),
          TEST_ENTRY(outside_capture_a_failure_exits), TEST_ENTRY(capture_mode_is_per_thread))
#else
int main(void) { TEST_SKIP("built without the CUDA backend"); }
#endif
