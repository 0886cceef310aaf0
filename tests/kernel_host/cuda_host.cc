// cuda_host.cc: the launcher, barriers and warp operations of cuda_host.h, and
// the emulator's reports. One launch at a time, on the calling thread (device
// memory: cuda_host_mem.cc; streams, events, graphs: cuda_host_rt.cc).
//
// Each thread of a block runs on a slot: a small stack of its own, entered the
// first time through makecontext and afterwards by _setjmp/_longjmp, which
// switch in nanoseconds (swapcontext makes a system call each time, and a
// reduction kernel switches some twenty times per thread). A thread runs until
// it finishes or waits (at __syncthreads or a warp operation); when every
// thread waits, the scheduler releases a warp whose lanes all wait at a warp
// operation, else the block if all its live threads wait at __syncthreads, else
// it reports the deadlock the GPU would hang in.
#undef _FORTIFY_SOURCE  // its longjmp refuses to jump to another stack
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>
#include <unistd.h>

#include <vector>

#include "cuda_host_internal.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

enum { READY, WAIT_BLOCK, WAIT_WARP, DONE };
constexpr int kMaxThreads = 1024;
constexpr size_t kStack = 64 * 1024;  // kernels keep a few scalars on it

struct Slot {
    jmp_buf jb;  // where the thread waits
    char *stack;
    int started;  // its stack holds a live slot_main
    int state;
    const char *what;  // its pending warp operation
    uint3 tid;
};

Slot slots[kMaxThreads];
int nthreads;      // in the block being run
Slot *cur;         // the thread running, NULL between threads
jmp_buf sched;     // where the scheduler waits for it
KhBody body;       // the launch's per-thread body
void *body_ctx;
unsigned char xchg[kMaxThreads / 32][32 * 8];  // warp operations' deposits

const char *launch_kernel = "", *launch_file = "";
int launch_line;
int reverse;
int in_block;  // between a block's start and end (for the reports)
int nerrors, launch_errors;  // since kh_clear; in this launch (only its first is printed)
int total_errors;            // since the start (kh_set_strict)
char first_error[640], first_ever[640];
int strict;

void report(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[640];
    char where[96] = "";
    if (cur)
        snprintf(where, sizeof where, " block (%u,%u,%u) thread (%u,%u,%u)", blockIdx.x,
                 blockIdx.y, blockIdx.z, cur->tid.x, cur->tid.y, cur->tid.z);
    else if (in_block)
        snprintf(where, sizeof where, " block (%u,%u,%u)", blockIdx.x, blockIdx.y, blockIdx.z);
    snprintf(line, sizeof line, "%s (%s:%d)%s: %s", launch_kernel, launch_file, launch_line,
             where, msg);
    if (launch_errors++ == 0) fprintf(stderr, "kernel_host: %s\n", line);
    if (nerrors++ == 0) snprintf(first_error, sizeof first_error, "%s", line);
    if (total_errors++ == 0) snprintf(first_ever, sizeof first_ever, "%s", line);
}

// ---- threads as coroutines

void yield_to_scheduler() {
    if (!_setjmp(cur->jb)) _longjmp(sched, 1);
}

// A slot's stack runs this forever: one thread body after another.
void slot_main() {
    for (;;) {
        body(body_ctx);
        cur->state = DONE;
        yield_to_scheduler();
    }
}

// Runs s's thread until it waits or finishes.
void resume(Slot *s) {
    cur = s;
    threadIdx = s->tid;
    if (_setjmp(sched)) {
        cur = NULL;
        return;
    }
    if (s->started) _longjmp(s->jb, 1);
    s->started = 1;
    if (!s->stack) s->stack = (char *)malloc(kStack);
    if (!s->stack) {
        fprintf(stderr, "kernel_host: out of memory for a thread stack\n");
        exit(1);
    }
    static ucontext_t uc, from;
    getcontext(&uc);
    uc.uc_stack.ss_sp = s->stack;
    uc.uc_stack.ss_size = kStack;
    uc.uc_link = NULL;
    makecontext(&uc, slot_main, 0);
    swapcontext(&from, &uc);  // comes back through sched, never through `from`
}

// Releases the lanes of warp w if they all wait at a warp operation. Returns 1
// if it released them.
int release_warp(int w) {
    int lo = w * 32, hi = lo + 32 < nthreads ? lo + 32 : nthreads;
    int waiting = 0, done = 0;
    for (int t = lo; t < hi; t++) {
        waiting += slots[t].state == WAIT_WARP;
        done += slots[t].state == DONE;
    }
    if (waiting == 0 || waiting + done < hi - lo) return 0;
    if (done > 0) {
        Slot *s = cur;  // the report names the first waiting lane
        cur = &slots[lo];
        while (cur->state != WAIT_WARP) cur++;
        report("%s in warp %d while %d of its lanes have exited (their values are undefined)",
               cur->what, w, done);
        cur = s;
    }
    for (int t = lo; t < hi; t++)
        if (slots[t].state == WAIT_WARP) slots[t].state = READY;
    return 1;
}

// After a pass in which every thread ran until it waited or finished: release
// what can go on. Returns 0 when the block is over (done, or deadlocked: then
// reported and its threads' stacks dropped).
int release(void) {
    int done = 0, at_block = 0, at_warp = 0;
    for (int t = 0; t < nthreads; t++) {
        done += slots[t].state == DONE;
        at_block += slots[t].state == WAIT_BLOCK;
        at_warp += slots[t].state == WAIT_WARP;
    }
    if (done == nthreads) return 0;
    int released = 0;
    for (int w = 0; w * 32 < nthreads; w++) released |= release_warp(w);
    if (released) return 1;
    if (at_block == nthreads - done) {
        if (done > 0)
            report("__syncthreads reached by %d of the block's %d threads (the others exited)",
                   at_block, nthreads);
        for (int t = 0; t < nthreads; t++)
            if (slots[t].state == WAIT_BLOCK) slots[t].state = READY;
        return 1;
    }
    report("deadlock: %d threads at __syncthreads, %d at a warp operation whose warp is not all "
           "there, %d exited", at_block, at_warp, done);
    for (int t = 0; t < nthreads; t++)
        if (slots[t].state != DONE) slots[t].started = 0;  // drop the stuck frames
    return 0;
}

void run_block(dim3 block) {
    for (int t = 0; t < nthreads; t++) {
        slots[t].state = READY;
        slots[t].tid = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    }
    in_block = 1;
    do {
        for (int k = 0; k < nthreads; k++) {
            Slot *s = &slots[reverse ? nthreads - 1 - k : k];
            if (s->state == READY) resume(s);
        }
    } while (release());
    in_block = 0;
}

}  // namespace

// ---- launches

void kh_launch(const char *kernel, const char *file, int line, dim3 grid, dim3 block,
               KhBody b, void *ctx) {
    if (cur) {
        report("launch of %s from inside a kernel (dynamic parallelism) is not emulated", kernel);
        return;
    }
    launch_kernel = kernel;
    launch_file = file;
    launch_line = line;
    launch_errors = 0;
    if (!kh_config_ok(grid, block)) return;  // refused at the launch (kh_launch_kernel)
    body = b;
    body_ctx = ctx;
    gridDim = grid;
    blockDim = block;
    nthreads = (int)(block.x * block.y * block.z);
    size_t nb = (size_t)grid.x * grid.y * grid.z;
    for (size_t k = 0; k < nb; k++) {
        size_t i = reverse ? nb - 1 - k : k;
        blockIdx = uint3{(unsigned)(i % grid.x), (unsigned)(i / grid.x % grid.y),
                         (unsigned)(i / ((size_t)grid.x * grid.y))};
        run_block(block);
    }
    kh_check_guards();
    if (launch_errors > 1)
        fprintf(stderr, "kernel_host: %s: %d more problems in this launch\n", kernel,
                launch_errors - 1);
    launch_kernel = "";
    launch_file = "";
}

void kh_check_arg(const char *kernel, int i, const void *p) {
    if (p && kh_where(p, 1) == KH_FREED)
        kh_report("%s: argument %d (%p) points into freed device memory (freed while the launch "
                  "was queued, or a graph replayed after the free)", kernel, i, p);
}

int kh_config_ok(dim3 grid, dim3 block) {
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    return threads >= 1 && threads <= kMaxThreads && block.z <= 64 && grid.x >= 1 &&
           grid.x <= 0x7fffffffu && grid.y >= 1 && grid.y <= 65535 && grid.z >= 1 &&
           grid.z <= 65535;
}

// Outside a launch, a report names the API call (its text says which).
void kh_report(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cur || in_block) {
        report("%s", msg);
        return;
    }
    fprintf(stderr, "kernel_host: %s\n", msg);
    if (nerrors++ == 0) snprintf(first_error, sizeof first_error, "%s", msg);
    if (total_errors++ == 0) snprintf(first_ever, sizeof first_ever, "%s", msg);
}

void __syncthreads(void) {
    cur->state = WAIT_BLOCK;
    yield_to_scheduler();
}

int kh_lane(void) {
    return (int)((cur->tid.x + blockDim.x * (cur->tid.y + blockDim.y * cur->tid.z)) % 32);
}

const unsigned char *kh_warp_deposit(const void *v, size_t bytes, unsigned mask,
                                     const char *what) {
    int t = (int)(cur - slots), w = t / 32, lo = w * 32;
    int lanes = nthreads - lo < 32 ? nthreads - lo : 32;
    unsigned all = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    if (mask != all)
        report("%s with mask 0x%08x in a warp of %d threads (mask 0x%08x): lanes outside the "
               "block or left out of the mask", what, mask, lanes, all);
    memcpy(&xchg[w][8 * (t - lo)], v, bytes);
    cur->what = what;
    cur->state = WAIT_WARP;
    yield_to_scheduler();
    return xchg[w];
}

void kh_warp_done(void) {
    cur->state = WAIT_WARP;
    yield_to_scheduler();
}

void __syncwarp(unsigned mask) {
    kh_warp_deposit(&mask, sizeof mask, mask, "__syncwarp");
}

unsigned __ballot_sync(unsigned mask, int pred) {
    int lo = (int)(cur - slots) / 32 * 32;
    int lanes = nthreads - lo < 32 ? nthreads - lo : 32;
    int p = pred != 0;
    const unsigned char *d = kh_warp_deposit(&p, sizeof p, mask, "__ballot_sync");
    unsigned r = 0;
    for (int l = 0; l < lanes; l++) {
        int v;
        memcpy(&v, d + 8 * l, sizeof v);
        if (v) r |= 1u << l;
    }
    kh_warp_done();
    return r;
}

int kh_errors(void) { return nerrors; }
const char *kh_first_error(void) { return first_error; }
void kh_clear(void) {
    nerrors = 0;
    first_error[0] = 0;
    (void)cudaGetLastError();
}
void kh_set_reverse(int r) { reverse = r; }

// At exit in strict mode: what was left behind counts too, then any problem
// makes the exit status 1.
static void strict_exit(void) {
    kh_report_leaks();
    if (total_errors == 0) return;
    fflush(stdout);
    fprintf(stderr, "kernel_host: %d problem%s reported by the emulator (the first: %s)\n",
            total_errors, total_errors == 1 ? "" : "s", first_ever);
    _exit(1);
}

void kh_set_strict(int s) {
    if (s && !strict) atexit(strict_exit);
    strict = s;
}

