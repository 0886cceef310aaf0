// cuda_host_internal.h: what the shim's own files share (cuda_host.cc, the
// launcher and reports; cuda_host_mem.cc, memory; cuda_host_rt.cc, streams,
// events and graphs; cudnn_host.cc). Not for the kernels.
#pragma once
#include "cuda_host.h"

// A problem the emulator found (printed; counted by kh_errors). Inside a
// launch it names the kernel, block and thread.
void kh_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// After every launch: the guard bytes of every device allocation intact?
void kh_check_guards(void);
// Where [p, p + bytes) lies: KH_HOST (in no device allocation, pinned or not),
// KH_DEVICE (inside one live device allocation), KH_OVERRUN (starts in a
// device allocation and runs past its end), KH_FREED (in a freed one: the
// shim keeps freed memory a while to tell).
enum { KH_HOST, KH_DEVICE, KH_OVERRUN, KH_FREED };
int kh_where(const void *p, size_t bytes);
// A device range an API call reads or writes: 1 if it lies inside one live
// allocation, else 0 after a report naming `what` (a null p is reported too).
int kh_device_ok(const void *p, size_t bytes, const char *what);
// Bytes cudaMalloc holds now.
size_t kh_device_bytes(void);
// Inside a capture that forbids waiting and allocating (not Relaxed): the
// capture is invalidated and this returns cudaErrorStreamCaptureUnsupported;
// else cudaSuccess.
cudaError_t kh_capture_forbids(void);
// At exit (strict mode): device allocations, pinned buffers, streams, events
// and graphs never freed are reported.
void kh_report_leaks(void);
void kh_report_mem_leaks(void);
// Copies from pinned memory in flight (cuda_host_rt.cc): cudaMemcpyAsync tells
// of each eager one; the source must not change before the host knows the
// copy done (a changed one is reported then). cudaFreeHost forgets a buffer
// (its copies in and out).
void kh_inflight_read(cudaStream_t s, const void *src, size_t bytes);
void kh_inflight_forget(const void *p, size_t bytes);
// Eager copies from (into = 0) or into (1) pinned memory while they wait in
// their stream's queue: kh_pinned_queued when enqueued (a destination is
// filled with kh_poison then), kh_pinned_ran when it runs (a destination the
// host wrote since is reported); kh_pinned_busy: is one queued on [p, p+bytes)?
unsigned long long kh_pinned_queued(const void *p, size_t bytes, int into);
void kh_pinned_ran(unsigned long long id);
int kh_pinned_busy(const void *p, size_t bytes);
// Is s capturing (or its capture invalidated)? The legacy stream never is.
int kh_stream_capturing(cudaStream_t s);
// The host waits: for stream s's queued work (NULL: the legacy stream, i.e.
// every blocking stream's), run now and then known done; kh_run_all runs every
// stream's queue without telling the host anything.
void kh_sync_stream(cudaStream_t s);
void kh_sync_legacy(void);
void kh_run_all(void);
// Is any stream's work still queued?
int kh_work_queued(void);
// A copy into pinned memory, as it runs on a stream (eagerly or in a graph
// launch): the bytes are held back and dst filled with kh_poison until the host
// knows the copy done, as on the device (a read before that sees garbage
// there). 1 if held; 0 outside a stream's run (the legacy stream, the
// synchronous calls): the caller copies at once.
int kh_defer_write(void *dst, const void *src, size_t bytes);
constexpr unsigned char kh_poison = 0xFF;  // NaN as float, 255 as a byte
