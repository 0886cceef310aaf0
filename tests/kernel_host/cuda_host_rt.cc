// cuda_host_rt.cc: streams, events, graph capture and replay, the device's
// description and the error calls of the shim (cuda_host_api.h).
//
// Work enqueued on a stream (kh_enqueue) waits in the stream's queue, as on a
// device that may run it any time before the host needs it: it runs when the
// host waits for it (a synchronise, a query, the legacy stream's implicit
// wait), FIFO within a stream, between streams in an adversarial order
// (KH_STREAM_ORDER, below), a stream held at a cudaStreamWaitEvent until the
// work before the event's record has run. A capturing stream records its work
// instead: each op is a closure over its arguments as the call had them (a
// kernel's converted parameters, a copy's pointers, a cuDNN call's
// descriptors, alpha and beta), and a graph launch runs the closures in order,
// as one item of its stream. One host thread.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <deque>
#include <set>
#include <vector>

#include "cuda_host_internal.h"

struct KhNode {
    int kind;  // KH_OP_*
    std::function<void()> run;
    KhGraphCounts inner;  // a launched graph's own counts (KH_OP_GRAPH)
};
// One item of a stream's queue: work (a node), or a wait for stream `on` to
// have run `upto` items (cudaStreamWaitEvent). ticket: the order of enqueueing
// over all streams, for the adversarial choice between streams.
struct KhItem {
    unsigned long long ticket;
    int wait;
    CUstream_st *on;
    unsigned long long on_id, upto;
    KhNode node;
};
struct CUstream_st {
    unsigned flags;
    int device;  // current at its creation
    unsigned long long id;  // never reused (a handle's address may be)
    // Items enqueued and run so far; the pending ones (done + 1 .. enq) queued.
    unsigned long long enq, done;
    std::deque<KhItem> queue;
    // Its waits for events of other streams: once it has run `at`, stream
    // `on` has run `upto` (what the host learns through it).
    struct Dep {
        unsigned long long at;
        CUstream_st *on;
        unsigned long long on_id, upto;
    };
    std::vector<Dep> deps;
    int capture;  // cudaStreamCaptureStatus
    cudaStreamCaptureMode mode;
    std::vector<KhNode> nodes;  // recorded so far
};
struct CUevent_st {
    unsigned flags;
    int device;  // current at its creation
    int captured;  // last recorded in a capturing stream
    CUstream_st *stream;       // where it was last recorded outside a capture (NULL none)
    unsigned long long stream_id;
    unsigned long long seq;    // that stream's enq then: the work it marks
};
struct CUgraph_st {
    std::vector<KhNode> nodes;
};
struct CUgraphExec_st {
    std::vector<KhNode> nodes;
};

namespace {

cudaError_t last_error = cudaSuccess;
std::set<const void *> live;  // streams, events, graphs, graph execs
std::vector<CUstream_st *> streams;  // the live ones, in creation order
unsigned long long next_stream_id = 1, next_ticket = 1;
int streams_live, events_live, graphs_live, execs_live;
KhGraphCounts last_graph, eager;

int is_live(const void *h) { return live.count(h) != 0; }

// s still the stream that had this id?
int same_stream(CUstream_st *s, unsigned long long id) { return s && is_live(s) && s->id == id; }

void count(KhGraphCounts *c, const KhNode &n) {
    switch (n.kind) {
    case KH_OP_KERNEL: c->kernels++; break;
    case KH_OP_CUDNN: c->cudnn++; break;
    case KH_OP_COPY: c->copies++; break;
    case KH_OP_MEMSET: c->memsets++; break;
    case KH_OP_GRAPH:
        c->graphs++;
        c->kernels += n.inner.kernels, c->cudnn += n.inner.cudnn, c->copies += n.inner.copies;
        c->memsets += n.inner.memsets;
        break;
    }
}

KhGraphCounts counts_of(const std::vector<KhNode> &nodes) {
    KhGraphCounts c = {0, 0, 0, 0, 0, 0};
    for (const KhNode &n : nodes) count(&c, n);
    return c;
}

// Streams capturing in a mode that forbids unsafe calls (one host thread, so
// Global and ThreadLocal are alike here).
std::set<CUstream_st *> capturing;

void invalidate(CUstream_st *s) {
    if (s->capture == cudaStreamCaptureStatusActive) s->capture = cudaStreamCaptureStatusInvalidated;
    s->nodes.clear();
}

cudaError_t stream_ok(cudaStream_t s) {
    return !s || is_live(s) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

// Devices: KH_DEVICES (1 to 8, default 1) of them, alike; the current one
// belongs to the thread. The device refuses a launch onto a stream of another
// device than the current one (a copy may go there) and an event recorded on
// a stream of another device than its own.
int device_count(void) {
    const char *e = getenv("KH_DEVICES");
    int n = e ? atoi(e) : 1;
    return n >= 1 && n <= 8 ? n : 1;
}
thread_local int current_device = 0;

// ---- the device's progress
//
// Work waits in its stream's queue until the host needs it (a synchronising
// call, a query, the legacy stream). Then the streams that must progress run
// their heads, FIFO within a stream; between streams the order is chosen to
// break what a missing wait would break on a GPU (KH_STREAM_ORDER):
// newest (the default): the head enqueued last, so a consumer that does not
// wait runs before its producer, and a producer before the earlier consumer
// of the buffer it overwrites; oldest: the head enqueued first (close to
// running work as it comes); random:SEED: a head drawn at random.
enum { ORDER_NEWEST, ORDER_OLDEST, ORDER_RANDOM };
int order_mode = -1;
unsigned long long order_rng;

int parse_order(const char *v) {
    if (!v || !*v || !strcmp(v, "newest")) order_mode = ORDER_NEWEST;
    else if (!strcmp(v, "oldest")) order_mode = ORDER_OLDEST;
    else if (!strcmp(v, "random")) order_mode = ORDER_RANDOM, order_rng = 1;
    else if (!strncmp(v, "random:", 7)) order_mode = ORDER_RANDOM, order_rng = strtoull(v + 7, NULL, 10);
    else return -1;
    return 0;
}

int order(void) {
    if (order_mode < 0 && parse_order(getenv("KH_STREAM_ORDER")) != 0) {
        fprintf(stderr, "kernel_host: KH_STREAM_ORDER=%s: not newest, oldest or random:SEED\n",
                getenv("KH_STREAM_ORDER"));
        _exit(2);  // not exit: the strict mode's report of what was left would follow
    }
    return order_mode;
}

// The stream whose work runs now (run_head), and that item's number.
CUstream_st *running;
unsigned long long running_seq;

int wait_met(const KhItem &it) {
    return !same_stream(it.on, it.on_id) || it.on->done >= it.upto;
}

void run_head(CUstream_st *s) {
    KhItem it = std::move(s->queue.front());
    s->queue.pop_front();
    if (!it.wait) {
        running = s, running_seq = s->done + 1;
        it.node.run();
        running = NULL;
    }
    s->done++;
}

// How far each stream must get: `need` holds the targets asked for; the waits
// among the items up to a target add their own.
typedef std::vector<std::pair<CUstream_st *, unsigned long long>> Need;

void close_need(Need *need) {
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t k = 0; k < need->size(); k++) {
            CUstream_st *t = (*need)[k].first;
            unsigned long long upto = (*need)[k].second;
            for (size_t i = 0; i < t->queue.size() && t->done + 1 + i <= upto; i++) {
                const KhItem &it = t->queue[i];
                if (!it.wait || wait_met(it)) continue;
                size_t j = 0;
                while (j < need->size() && (*need)[j].first != it.on) j++;
                if (j == need->size()) need->push_back({it.on, it.upto}), changed = 1;
                else if ((*need)[j].second < it.upto) (*need)[j].second = it.upto, changed = 1;
            }
        }
    }
}

// Runs until every stream of `need` has run its target.
void run_needed(Need need) {
    close_need(&need);
    for (;;) {
        CUstream_st *pick = NULL;
        int left = 0;
        for (const auto &n : need) {
            CUstream_st *t = n.first;
            if (t->done >= n.second) continue;
            left = 1;
            KhItem &h = t->queue.front();
            if (h.wait) {
                if (wait_met(h)) {
                    pick = t;
                    break;
                }
                continue;
            }
            if (!pick) {
                pick = t;
            } else {
                int later = h.ticket > pick->queue.front().ticket;
                int m = order();
                if (m == ORDER_RANDOM) {
                    order_rng = order_rng * 6364136223846793005ull + 1442695040888963407ull;
                    later = (int)(order_rng >> 63);
                }
                if (m == ORDER_OLDEST ? !later : later) pick = t;
            }
        }
        if (!left) return;
        if (!pick) {
            kh_report("streams wait for each other: no queued work can run");
            return;
        }
        run_head(pick);
    }
}

void run_stream(CUstream_st *s, unsigned long long upto) {
    if (s && s->done < upto) run_needed(Need{{s, upto}});
}

// Every stream (blocking_only: every blocking one) to the end of its queue.
void run_all(int blocking_only) {
    Need need;
    for (CUstream_st *t : streams)
        if (t->done < t->enq && !(blocking_only && (t->flags & cudaStreamNonBlocking)))
            need.push_back({t, t->enq});
    if (!need.empty()) run_needed(need);
}

int blocking_pending(void) {
    for (CUstream_st *t : streams)
        if (t->done < t->enq && !(t->flags & cudaStreamNonBlocking)) return 1;
    return 0;
}

cudaError_t enqueue_node(cudaStream_t s, KhNode node) {
    if (cudaError_t e = stream_ok(s)) {
        kh_report("work enqueued on stream %p, which is not a live stream", (void *)s);
        return e;
    }
    if (s && node.kind == KH_OP_KERNEL && s->device != current_device) {
        kh_report("a kernel launched on a stream of device %d while device %d is current", s->device,
                  current_device);
        return cudaErrorInvalidResourceHandle;
    }
    if (s && s->capture == cudaStreamCaptureStatusInvalidated)
        return cudaErrorStreamCaptureInvalidated;
    if (s && s->capture == cudaStreamCaptureStatusActive) {
        s->nodes.push_back(std::move(node));
        return cudaSuccess;
    }
    if (!s) {  // the legacy stream waits for (and would join) a blocking stream's capture
        int implicit = 0;
        for (CUstream_st *c : capturing)
            if (!(c->flags & cudaStreamNonBlocking) && c->mode != cudaStreamCaptureModeRelaxed)
                invalidate(c), implicit = 1;
        if (implicit) return cudaErrorStreamCaptureImplicit;
    }
    count(&eager, node);
    if (!s) {  // after the blocking streams' work, and before their later work: now
        run_all(1);
        node.run();
        return cudaSuccess;
    }
    s->queue.push_back(KhItem{next_ticket++, 0, NULL, 0, 0, std::move(node)});
    s->enq++;
    return cudaSuccess;
}

// Copies from pinned memory in flight: on the device such a copy reads its
// source when the stream gets to it, so the host may change that buffer only
// once it knows the copy done (the stream, or an event after the copy, waited
// for or found complete). Each eager copy from pinned memory is kept with a
// hash of its source; when the host learns it done (or at exit), a changed
// source is reported: the device could have copied either bytes.
struct InFlight {
    CUstream_st *s;
    unsigned long long seq;  // done once s has run this much
    const unsigned char *src;
    size_t bytes;
    unsigned long long hash;
};
std::vector<InFlight> inflight;

// Copies into pinned memory in flight, the mirror image: on the device the
// destination holds the new bytes only once the copy is done, so a host that
// reads it before it knows that reads garbage or the old bytes (and on this
// machine would read the right ones). Each is held back here, the destination
// filled with kh_poison, until the host learns it done; the destination must
// still hold the poison then, or the host wrote it while the device could.
struct Landing {
    CUstream_st *s;
    unsigned long long seq;
    unsigned char *dst;
    std::vector<unsigned char> bytes;
};
std::vector<Landing> landing;

// Eager copies from or into pinned memory still queued (not run): the host
// must not free such a buffer, and must not write a destination (filled with
// kh_poison when the copy was queued) before the copy is known done.
struct Queued {
    unsigned long long id;
    unsigned char *p;
    size_t bytes;
    int into;
};
std::vector<Queued> queued;
unsigned long long next_queued = 1;

int all_poison(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != kh_poison) return 0;
    return 1;
}

// The copies the host now knows done (s NULL: all of them) land, oldest first;
// the destinations of those still in flight stay poisoned.
void land(CUstream_st *s, unsigned long long seq) {
    std::vector<std::pair<unsigned char *, size_t>> landed;
    for (size_t i = 0; i < landing.size();) {
        Landing &l = landing[i];
        if (s && (l.s != s || l.seq > seq)) {
            i++;
            continue;
        }
        if (!all_poison(l.dst, l.bytes.size()))
            kh_report("pinned %p (%zu bytes) written by the host while the copy into it on stream "
                      "%p was in flight", (void *)l.dst, l.bytes.size(), (void *)l.s);
        memcpy(l.dst, l.bytes.data(), l.bytes.size());
        landed.push_back({l.dst, l.bytes.size()});
        landing.erase(landing.begin() + (long)i);
    }
    for (const Landing &l : landing)
        for (const auto &d : landed)
            if (l.dst < d.first + d.second && d.first < l.dst + l.bytes.size())
                memset(l.dst, kh_poison, l.bytes.size());
    for (const Queued &q : queued)
        for (const auto &d : landed)
            if (q.into && q.p < d.first + d.second && d.first < q.p + q.bytes)
                memset(q.p, kh_poison, q.bytes);
}

unsigned long long fnv1a(const unsigned char *p, size_t n) {
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// The host knows stream s's work up to seq done (s NULL: every stream's), and
// with it what s had waited for by then.
void observe(CUstream_st *s, unsigned long long seq) {
    if (s) {
        std::vector<CUstream_st::Dep> through;
        for (size_t i = 0; i < s->deps.size();) {
            if (s->deps[i].at <= seq) {
                through.push_back(s->deps[i]);
                s->deps.erase(s->deps.begin() + (long)i);
            } else {
                i++;
            }
        }
        for (const CUstream_st::Dep &d : through)
            if (same_stream(d.on, d.on_id)) observe(d.on, d.upto);
    }
    for (size_t i = 0; i < inflight.size();) {
        const InFlight &f = inflight[i];
        if (s && (f.s != s || f.seq > seq)) {
            i++;
            continue;
        }
        if (fnv1a(f.src, f.bytes) != f.hash)
            kh_report("pinned %p (%zu bytes) changed by the host before the copy from it on stream "
                      "%p was known done", (const void *)f.src, f.bytes, (void *)f.s);
        inflight.erase(inflight.begin() + (long)i);
    }
    land(s, seq);
}

}  // namespace

void kh_inflight_read(cudaStream_t s, const void *src, size_t bytes) {
    if (!s || s->capture != cudaStreamCaptureStatusNone) return;  // captured: copied at replay
    inflight.push_back(InFlight{s, s->enq, (const unsigned char *)src, bytes,
                                fnv1a((const unsigned char *)src, bytes)});
}

void kh_inflight_forget(const void *p, size_t bytes) {
    const unsigned char *a = (const unsigned char *)p;
    for (size_t i = 0; i < inflight.size();) {
        const InFlight &f = inflight[i];
        if (f.src < a + bytes && a < f.src + f.bytes) inflight.erase(inflight.begin() + (long)i);
        else i++;
    }
    for (size_t i = 0; i < landing.size();) {
        const Landing &l = landing[i];
        if (l.dst < a + bytes && a < l.dst + l.bytes.size())
            landing.erase(landing.begin() + (long)i);
        else
            i++;
    }
    for (size_t i = 0; i < queued.size();) {
        if (queued[i].p < a + bytes && a < queued[i].p + queued[i].bytes)
            queued.erase(queued.begin() + (long)i);
        else
            i++;
    }
}

unsigned long long kh_pinned_queued(const void *p, size_t bytes, int into) {
    queued.push_back(Queued{next_queued, (unsigned char *)p, bytes, into});
    if (into) memset((void *)p, kh_poison, bytes);
    return next_queued++;
}

void kh_pinned_ran(unsigned long long id) {
    for (size_t i = 0; i < queued.size(); i++) {
        if (queued[i].id != id) continue;
        const Queued q = queued[i];
        queued.erase(queued.begin() + (long)i);
        if (q.into && !all_poison(q.p, q.bytes))
            kh_report("pinned %p (%zu bytes) written by the host while the copy into it on stream "
                      "%p was in flight (queued)", (void *)q.p, q.bytes, (void *)running);
        return;
    }
}

int kh_pinned_busy(const void *p, size_t bytes) {
    const unsigned char *a = (const unsigned char *)p;
    for (const Queued &q : queued)
        if (q.p < a + bytes && a < q.p + q.bytes) return 1;
    return 0;
}

int kh_stream_capturing(cudaStream_t s) { return s && s->capture != cudaStreamCaptureStatusNone; }

void kh_sync_stream(cudaStream_t s) {
    if (!s) {
        kh_sync_legacy();
        return;
    }
    run_stream(s, s->enq);
    observe(s, s->enq);
}

void kh_sync_legacy(void) {
    run_all(1);
    for (CUstream_st *t : streams)
        if (!(t->flags & cudaStreamNonBlocking)) observe(t, t->enq);
}

void kh_run_all(void) { run_all(0); }

int kh_work_queued(void) {
    for (CUstream_st *t : streams)
        if (t->done < t->enq) return 1;
    return 0;
}

int kh_set_stream_order(const char *mode) { return parse_order(mode); }

int kh_defer_write(void *dst, const void *src, size_t bytes) {
    if (!running) return 0;
    const unsigned char *from = (const unsigned char *)src;
    landing.push_back(Landing{running, running_seq, (unsigned char *)dst,
                              std::vector<unsigned char>(from, from + bytes)});
    memset(dst, kh_poison, bytes);
    return 1;
}

cudaError_t kh_enqueue(cudaStream_t s, int kind, std::function<void()> op) {
    return enqueue_node(s, KhNode{kind, std::move(op), KhGraphCounts{0, 0, 0, 0, 0, 0}});
}

cudaError_t kh_error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

cudaError_t kh_capture_forbids(void) {
    int any = 0;
    for (CUstream_st *c : capturing)
        if (c->mode != cudaStreamCaptureModeRelaxed) invalidate(c), any = 1;
    return any ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}

void kh_report_leaks(void) {
    observe(NULL, 0);  // what is still in flight must not have changed either
    kh_report_mem_leaks();
    if (streams_live || events_live || graphs_live || execs_live)
        kh_report("never destroyed: %d streams, %d events, %d graphs, %d graph execs",
                  streams_live, events_live, graphs_live, execs_live);
}

KhGraphCounts kh_last_graph_counts(void) { return last_graph; }
KhGraphCounts kh_eager_counts(void) { return eager; }
void kh_reset_counts(void) { eager = KhGraphCounts{0, 0, 0, 0, 0, 0}; }

// ---- the device

cudaError_t cudaGetDeviceCount(int *count) {
    *count = device_count();
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *device) {
    *device = current_device;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= device_count()) return kh_error(cudaErrorInvalidDevice);
    current_device = device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    if (device < 0 || device >= device_count()) return kh_error(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "kernel_host emulator (as an H200)");
    prop->totalGlobalMem = (size_t)143771 << 20;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 132;
    prop->maxThreadsPerBlock = 1024;
    prop->warpSize = 32;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *version) {
    *version = 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *version) {
    *version = 13000;
    return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
    if (!func) return kh_error(cudaErrorInvalidDeviceFunction);
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = 1024;
    attr->numRegs = 32;
    attr->ptxVersion = attr->binaryVersion = 90;
    return cudaSuccess;
}

// ---- streams and events

cudaError_t cudaDeviceSynchronize(void) {
    cudaError_t e = kh_capture_forbids();
    if (e == cudaSuccess) run_all(0), observe(NULL, 0);
    return kh_error(e);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    if (flags & ~1u) return kh_error(cudaErrorInvalidValue);
    CUstream_st *s = new CUstream_st();
    s->flags = flags;
    s->device = current_device;
    s->id = next_stream_id++;
    s->capture = cudaStreamCaptureStatusNone;
    live.insert(s);
    streams.push_back(s);
    streams_live++;
    *stream = s;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, 0); }

// On the device the stream's work still runs after this returns; here it runs
// now, so that nothing is left queued on a handle that is gone.
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s || !is_live(s)) {
        kh_report("cudaStreamDestroy(%p): not a live stream", (void *)s);
        return kh_error(cudaErrorInvalidResourceHandle);
    }
    if (s->capture != cudaStreamCaptureStatusNone) {
        kh_report("cudaStreamDestroy of a stream that is capturing");
        capturing.erase(s);
    }
    run_stream(s, s->enq);
    observe(s, ~0ull);  // its copies: checked now, before the handle can be reused
    live.erase(s);
    for (size_t i = 0; i < streams.size(); i++)
        if (streams[i] == s) streams.erase(streams.begin() + (long)i);
    streams_live--;
    delete s;
    return cudaSuccess;
}

// Waiting for the capturing stream, or for the legacy one (which would wait
// for it), is refused; another stream may be waited for. The legacy stream
// waits for every blocking stream.
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (cudaError_t e = stream_ok(s)) return kh_error(e);
    if (s && s->capture != cudaStreamCaptureStatusNone) {
        invalidate(s);
        return kh_error(cudaErrorStreamCaptureUnsupported);
    }
    if (!s) {
        if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
    }
    kh_sync_stream(s);
    return cudaSuccess;
}

// Work still queued: not ready, and the device goes on with it (the next
// query finds it done), so a host that polls sees "not yet" at least once.
cudaError_t cudaStreamQuery(cudaStream_t s) {
    if (cudaError_t e = stream_ok(s)) return kh_error(e);
    if (s && s->capture != cudaStreamCaptureStatusNone) {
        invalidate(s);
        return kh_error(cudaErrorStreamCaptureUnsupported);
    }
    if (!s) {
        if (cudaError_t e = kh_capture_forbids()) return kh_error(e);
        if (blocking_pending()) return run_all(1), cudaErrorNotReady;
    } else if (s->done < s->enq) {
        run_stream(s, s->enq);
        return cudaErrorNotReady;
    }
    kh_sync_stream(s);
    return cudaSuccess;
}

// The wait holds s until the work before the event's last record has run; the
// legacy stream's work runs at once, so waiting there runs that work now.
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int) {
    if (cudaError_t err = stream_ok(s)) return kh_error(err);
    if (!e || !is_live(e)) return kh_error(cudaErrorInvalidResourceHandle);
    if (s && s->capture != cudaStreamCaptureStatusNone) return cudaSuccess;  // joins the capture
    if (!same_stream(e->stream, e->stream_id) || e->stream == s ||
        e->stream->done >= e->seq)
        return cudaSuccess;  // never recorded, its stream gone, the same stream, or complete
    if (!s) {
        run_stream(e->stream, e->seq);
        return cudaSuccess;
    }
    s->queue.push_back(KhItem{next_ticket++, 1, e->stream, e->stream->id, e->seq,
                              KhNode{0, nullptr, KhGraphCounts{0, 0, 0, 0, 0, 0}}});
    s->enq++;
    s->deps.push_back(CUstream_st::Dep{s->enq, e->stream, e->stream->id, e->seq});
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    if (flags & ~7u) return kh_error(cudaErrorInvalidValue);
    CUevent_st *e = new CUevent_st();
    e->flags = flags;
    e->device = current_device;
    live.insert(e);
    events_live++;
    *event = e;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, 0); }

// A wait already enqueued holds the stream and count it marked, not the event:
// destroying it after the wait is fine, as on the device.
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!e || !is_live(e)) {
        kh_report("cudaEventDestroy(%p): not a live event", (void *)e);
        return kh_error(cudaErrorInvalidResourceHandle);
    }
    live.erase(e);
    events_live--;
    delete e;
    return cudaSuccess;
}

// In a capture the record adds no work (it marks a point of the capture), and
// the event may not be waited for on the host until it is recorded outside one.
// Outside one it marks the work queued on s so far (on the legacy stream:
// that of the blocking streams, run now like all legacy work).
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (!e || !is_live(e)) return kh_error(cudaErrorInvalidResourceHandle);
    if (cudaError_t err = stream_ok(s)) return kh_error(err);
    if (e->device != (s ? s->device : current_device)) {
        kh_report("an event of device %d recorded on a stream of device %d", e->device,
                  s ? s->device : current_device);
        return kh_error(cudaErrorInvalidResourceHandle);
    }
    if (s && s->capture == cudaStreamCaptureStatusInvalidated)
        return kh_error(cudaErrorStreamCaptureInvalidated);
    e->captured = s && s->capture == cudaStreamCaptureStatusActive;
    if (e->captured) return cudaSuccess;
    if (!s) run_all(1);
    e->stream = s, e->stream_id = s ? s->id : 0, e->seq = s ? s->enq : 0;
    return cudaSuccess;
}

// The event's work still queued: Query says not ready and lets the device run
// it (the next query finds it done); Synchronize runs it. Either, once it is
// done, tells the host what that work did.
static cudaError_t event_wait(cudaEvent_t e, int query) {
    if (!e || !is_live(e)) return kh_error(cudaErrorInvalidResourceHandle);
    if (e->captured) return kh_error(cudaErrorCapturedEvent);
    if (!same_stream(e->stream, e->stream_id)) return cudaSuccess;
    if (e->stream->done < e->seq) {
        run_stream(e->stream, e->seq);
        if (query) return cudaErrorNotReady;
    }
    observe(e->stream, e->seq);
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return event_wait(e, 1); }
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return event_wait(e, 0); }

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!is_live(start) || !is_live(end)) return kh_error(cudaErrorInvalidResourceHandle);
    *ms = 0.0f;
    return cudaSuccess;
}

// ---- graphs

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    if (!s) return kh_error(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot
    if (cudaError_t e = stream_ok(s)) return kh_error(e);
    if (s->capture != cudaStreamCaptureStatusNone) return kh_error(cudaErrorIllegalState);
    s->capture = cudaStreamCaptureStatusActive;
    s->mode = mode;
    s->nodes.clear();
    capturing.insert(s);
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    if (!s || !is_live(s)) return kh_error(cudaErrorInvalidResourceHandle);
    if (s->capture == cudaStreamCaptureStatusNone) return kh_error(cudaErrorIllegalState);
    int ok = s->capture == cudaStreamCaptureStatusActive;
    s->capture = cudaStreamCaptureStatusNone;
    capturing.erase(s);
    *graph = NULL;
    if (!ok) return kh_error(cudaErrorStreamCaptureInvalidated);
    CUgraph_st *g = new CUgraph_st();
    g->nodes.swap(s->nodes);
    last_graph = counts_of(g->nodes);
    live.insert(g);
    graphs_live++;
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
    if (cudaError_t e = stream_ok(s)) return kh_error(e);
    *status = s ? (cudaStreamCaptureStatus)s->capture : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long) {
    if (!g || !is_live(g)) return kh_error(cudaErrorInvalidValue);
    CUgraphExec_st *x = new CUgraphExec_st();
    x->nodes = g->nodes;  // the closures share their captured arguments
    live.insert(x);
    execs_live++;
    *exec = x;
    return cudaSuccess;
}

// Inside a capture the launch is recorded as one node holding the graph's work.
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s) {
    if (!x || !is_live(x)) {
        kh_report("cudaGraphLaunch(%p): not a live graph exec", (void *)x);
        return kh_error(cudaErrorInvalidResourceHandle);
    }
    std::vector<KhNode> nodes = x->nodes;
    KhNode n{KH_OP_GRAPH, [nodes] {
                 for (const KhNode &k : nodes) k.run();
             },
             counts_of(nodes)};
    return kh_error(enqueue_node(s, std::move(n)));
}

cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    if (!g || !is_live(g)) return kh_error(cudaErrorInvalidValue);
    live.erase(g);
    graphs_live--;
    delete g;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
    if (!x || !is_live(x)) return kh_error(cudaErrorInvalidValue);
    live.erase(x);
    execs_live--;
    delete x;
    return cudaSuccess;
}

// ---- errors

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define KH_NAME(x) \
    case x: return #x;
        KH_NAME(cudaSuccess)
        KH_NAME(cudaErrorInvalidValue)
        KH_NAME(cudaErrorMemoryAllocation)
        KH_NAME(cudaErrorInvalidConfiguration)
        KH_NAME(cudaErrorInvalidDevicePointer)
        KH_NAME(cudaErrorInvalidMemcpyDirection)
        KH_NAME(cudaErrorInsufficientDriver)
        KH_NAME(cudaErrorInvalidDeviceFunction)
        KH_NAME(cudaErrorNoDevice)
        KH_NAME(cudaErrorInvalidDevice)
        KH_NAME(cudaErrorInvalidResourceHandle)
        KH_NAME(cudaErrorIllegalState)
        KH_NAME(cudaErrorNotReady)
        KH_NAME(cudaErrorLaunchFailure)
        KH_NAME(cudaErrorStreamCaptureUnsupported)
        KH_NAME(cudaErrorStreamCaptureInvalidated)
        KH_NAME(cudaErrorStreamCaptureImplicit)
        KH_NAME(cudaErrorCapturedEvent)
#undef KH_NAME
    }
    return "cudaErrorUnknown";
}

// The runtime's own texts.
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver:
        return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent:
        return "operation not permitted on an event last recorded in a capturing stream";
    }
    return "unknown error";
}
