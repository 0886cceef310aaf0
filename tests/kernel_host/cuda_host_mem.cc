// cuda_host_mem.cc: device and pinned memory of the shim, and the copies and
// memsets that move it (cuda_host_api.h).
//
// Device memory is host memory between guard bytes, filled with 0xFF (a NaN
// as float) like memory nobody wrote. The shim knows every allocation, so a
// copy's kind can be checked against its pointers and a range against its
// allocation. Freed device memory is poisoned with 0xFF and kept a while
// (kQuarantine bytes) so that a later use of it (a graph holding a buffer
// freed since) is told apart from host memory and reported.
#include <stdio.h>
#include <stdlib.h>

#include <deque>
#include <memory>
#include <vector>

#include "cuda_host_internal.h"

namespace {

constexpr size_t kGuard = 256;
constexpr unsigned char kGuardByte = 0xA5;
constexpr size_t kQuarantine = 64u << 20;

struct Alloc {
    unsigned char *base;  // user pointer - kGuard
    size_t bytes, total;
};
std::vector<Alloc> allocs;
std::deque<Alloc> freed;  // oldest first
size_t freed_bytes, live_bytes;

struct Pinned {
    unsigned char *p;
    size_t bytes;
};
std::vector<Pinned> pinned;

// The quarantine goes at exit (what is still allocated is a leak, and left to
// the leak checks).
struct DropQuarantine {
    ~DropQuarantine() {
        for (const Alloc &a : freed) free(a.base);
        freed.clear();
    }
} drop_quarantine;

unsigned char *user(const Alloc &a) { return a.base + kGuard; }

// The allocation of `list` holding p, or NULL.
template <typename L>
const Alloc *holder(const L &list, const void *p) {
    const unsigned char *q = (const unsigned char *)p;
    for (const Alloc &a : list)
        if (q >= user(a) && q < user(a) + (a.bytes ? a.bytes : 1)) return &a;
    return NULL;
}

// p inside a pinned buffer?
int is_pinned(const void *p) {
    const unsigned char *q = (const unsigned char *)p;
    for (const Pinned &b : pinned)
        if (q >= b.p && q < b.p + (b.bytes ? b.bytes : 1)) return 1;
    return 0;
}

const char *kind_name(cudaMemcpyKind k) {
    switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
    }
    return "an unknown kind";
}

// One side of a copy: where it is, against what the kind says it is.
int side_ok(const void *p, size_t bytes, int want_device, const char *call, cudaMemcpyKind kind,
            const char *side) {
    int w = kh_where(p, bytes);
    if (w == KH_FREED) {
        kh_report("%s %s: the %s is freed device memory", call, kind_name(kind), side);
        return 0;
    }
    if (w == KH_OVERRUN) return kh_device_ok(p, bytes, call);
    if (want_device < 0 || (w == KH_DEVICE) == (want_device == 1)) return 1;
    kh_report("%s %s: the %s (%p) is %s memory", call, kind_name(kind), side, p,
              w == KH_DEVICE ? "device" : "host");
    return 0;
}

cudaError_t copy_check(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                       const char *call) {
    if (!dst || !src) {
        kh_report("%s of %zu bytes with a null pointer", call, bytes);
        return cudaErrorInvalidValue;
    }
    int dst_dev = -1, src_dev = -1;
    switch (kind) {
    case cudaMemcpyHostToHost: dst_dev = src_dev = 0; break;
    case cudaMemcpyHostToDevice: dst_dev = 1, src_dev = 0; break;
    case cudaMemcpyDeviceToHost: dst_dev = 0, src_dev = 1; break;
    case cudaMemcpyDeviceToDevice: dst_dev = src_dev = 1; break;
    case cudaMemcpyDefault: break;
    default: kh_report("%s with kind %d", call, (int)kind); return cudaErrorInvalidMemcpyDirection;
    }
    if (!side_ok(dst, bytes, dst_dev, call, kind, "destination") ||
        !side_ok(src, bytes, src_dev, call, kind, "source"))
        return cudaErrorInvalidValue;
    return cudaSuccess;
}

cudaError_t memset_check(void *p, size_t bytes, const char *call) {
    int w = kh_where(p, bytes);
    if (w == KH_HOST) {
        kh_report("%s of %zu bytes at %p: not device memory", call, bytes, p);
        return cudaErrorInvalidValue;
    }
    return kh_device_ok(p, bytes, call) ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace

int kh_where(const void *p, size_t bytes) {
    if (const Alloc *a = holder(allocs, p)) {
        size_t off = (size_t)((const unsigned char *)p - user(*a));
        return off + bytes <= a->bytes ? KH_DEVICE : KH_OVERRUN;
    }
    return holder(freed, p) ? KH_FREED : KH_HOST;
}

int kh_device_ok(const void *p, size_t bytes, const char *what) {
    if (!p) {
        kh_report("%s: a null device pointer", what);
        return 0;
    }
    if (const Alloc *a = holder(allocs, p)) {
        size_t off = (size_t)((const unsigned char *)p - user(*a));
        if (off + bytes <= a->bytes) return 1;
        kh_report("%s: %zu bytes at byte %zu of a %zu-byte device allocation", what, bytes, off,
                  a->bytes);
        return 0;
    }
    kh_report("%s: %p is %s", what, p,
              holder(freed, p) ? "freed device memory" : "not device memory");
    return 0;
}

size_t kh_device_bytes(void) { return live_bytes; }

void kh_check_guards(void) {
    for (const Alloc &a : allocs) {
        for (size_t i = 0; i < a.total; i++) {
            if (i == kGuard) i = kGuard + a.bytes;  // skip the user bytes
            if (a.base[i] == kGuardByte) continue;
            long off = (long)i - (long)kGuard;
            kh_report("wrote outside a %zu-byte device allocation, at byte %ld (%s)", a.bytes,
                      off, off < 0 ? "before its start" : "past its end");
            break;
        }
    }
}

void kh_report_mem_leaks(void) {
    if (!allocs.empty())
        kh_report("%zu device allocations (%zu bytes) never freed", allocs.size(), live_bytes);
    if (!pinned.empty()) kh_report("%zu pinned host buffers never freed", pinned.size());
}

// ---- runtime API: memory

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    size_t total = kGuard + (bytes + 255) / 256 * 256 + kGuard;
    unsigned char *base = (unsigned char *)aligned_alloc(256, total);
    if (!base) return kh_error(cudaErrorMemoryAllocation);
    memset(base, kGuardByte, total);
    memset(base + kGuard, 0xFF, bytes);
    allocs.push_back(Alloc{base, bytes, total});
    live_bytes += bytes;
    *p = base + kGuard;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    for (size_t i = 0; i < allocs.size(); i++) {
        if (user(allocs[i]) != p) continue;
        Alloc a = allocs[i];
        allocs.erase(allocs.begin() + (long)i);
        live_bytes -= a.bytes;
        memset(user(a), 0xFF, a.bytes);
        freed.push_back(a);
        freed_bytes += a.total;
        // Queued work may still use what it would give back to the heap.
        while (freed_bytes > kQuarantine && freed.size() > 1 && !kh_work_queued()) {
            freed_bytes -= freed.front().total;
            free(freed.front().base);
            freed.pop_front();
        }
        return cudaSuccess;
    }
    kh_report("cudaFree(%p): %s", p,
              holder(freed, p) ? "already freed" : "not a pointer cudaMalloc returned");
    return kh_error(cudaErrorInvalidValue);
}

// Stream-ordered (tabula does not call them): the free waits for all queued work.
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t) {
    kh_run_all();
    return cudaFree(p);
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
    if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    if (flags & ~0x0Fu) return kh_error(cudaErrorInvalidValue);
    unsigned char *q = (unsigned char *)malloc(bytes ? bytes : 1);
    if (!q) return kh_error(cudaErrorMemoryAllocation);
    memset(q, 0xFF, bytes);
    pinned.push_back(Pinned{q, bytes});
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }

cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    for (size_t i = 0; i < pinned.size(); i++) {
        if (pinned[i].p != p) continue;
        if (kh_pinned_busy(p, pinned[i].bytes)) {  // run first: the shim would use freed memory
            kh_report("cudaFreeHost(%p) while a copy from or into it is still queued", p);
            kh_run_all();
        }
        kh_inflight_forget(p, pinned[i].bytes);
        free(p);
        pinned.erase(pinned.begin() + (long)i);
        return cudaSuccess;
    }
    kh_report("cudaFreeHost(%p): not a pointer cudaHostAlloc or cudaMallocHost returned", p);
    return kh_error(cudaErrorInvalidValue);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    const size_t total = (size_t)143771 << 20;  // an H200's
    *total_bytes = total;
    *free_bytes = live_bytes < total ? total - live_bytes : 0;
    return cudaSuccess;
}

// ---- copies and memsets

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    if (bytes == 0) return cudaSuccess;
    if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    if (cudaError_t e = copy_check(dst, src, bytes, kind, "cudaMemcpy")) return kh_error(e);
    kh_sync_legacy();  // the legacy stream: after the blocking streams' work
    memmove(dst, src, bytes);
    return cudaSuccess;
}

// The copy runs when the stream gets to it; checked again then (a captured
// copy may replay after its buffers were freed). As the runtime documents
// for the Async copies: a pageable source is staged (read now), a pageable
// destination makes the call return only once the copy is done; a pinned
// source is read when the copy runs, and into pinned memory the bytes land
// only once the host knows the copy done (kh_defer_write).
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    if (bytes == 0) return cudaSuccess;
    if (cudaError_t e = copy_check(dst, src, bytes, kind, "cudaMemcpyAsync")) return kh_error(e);
    int eager = stream && !kh_stream_capturing(stream);
    int host_src = kh_where(src, bytes) == KH_HOST, host_dst = kh_where(dst, bytes) == KH_HOST;
    std::shared_ptr<std::vector<unsigned char>> staged;
    if (eager && host_src && !is_pinned(src)) {
        const unsigned char *from = (const unsigned char *)src;
        staged = std::make_shared<std::vector<unsigned char>>(from, from + bytes);
    }
    unsigned long long q = 0;
    if (eager && (is_pinned(src) || is_pinned(dst)))
        q = kh_pinned_queued(is_pinned(dst) ? dst : src, bytes, is_pinned(dst));
    cudaError_t e = kh_enqueue(stream, KH_OP_COPY, [=] {
        if (q) kh_pinned_ran(q);
        if (copy_check(dst, src, bytes, kind, "cudaMemcpyAsync (as it runs)") != cudaSuccess)
            return;
        const void *from = staged ? (const void *)staged->data() : src;
        if (!is_pinned(dst) || !kh_defer_write(dst, from, bytes)) memmove(dst, from, bytes);
    });
    if (e != cudaSuccess) {
        if (q) kh_pinned_ran(q);
        return kh_error(e);
    }
    if (is_pinned(src)) kh_inflight_read(stream, src, bytes);
    if (eager && host_dst && !is_pinned(dst)) kh_sync_stream(stream);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
    if (bytes == 0) return cudaSuccess;
    if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    if (cudaError_t e = memset_check(p, bytes, "cudaMemset")) return kh_error(e);
    kh_sync_legacy();
    memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream) {
    if (bytes == 0) return cudaSuccess;
    if (cudaError_t e = memset_check(p, bytes, "cudaMemsetAsync")) return kh_error(e);
    return kh_error(kh_enqueue(stream, KH_OP_MEMSET, [=] {
        if (memset_check(p, bytes, "cudaMemsetAsync (as it runs)") == cudaSuccess)
            memset(p, value, bytes);
    }));
}
