// conv_dnnl.c: Conv2d and ConvTranspose2d through oneDNN (the library PyTorch
// uses for CPU convolutions), and the run-time choice between it and the
// im2col + GEMM path of conv2d.c / convt2d.c.
//
// The ops keep their NCHW arguments. oneDNN's direct (JIT) kernels want blocked
// layouts (nChw16c, weights OIhw16i16o...), so each primitive is created with
// "any" layouts and the op reorders at its edges: inputs into the primitive's
// layout, outputs back to NCHW (a reorder is a copy; the convolution it buys is
// far cheaper than im2col + GEMM on these shapes). Reorders and primitives are
// created once per shape and pass and cached: a network's shapes are fixed.
// The CPU backend goes further (the blk flags, ops.h): it keeps activations
// between layers in nChw16c and the weights in the forward pass's layout, so
// that a step reorders little more than the image, the output and the
// backward-data weights.
//
// Weights: Conv2d (OC,C,K,K) is oneDNN's oihw; ConvTranspose2d (C,OC,K,K) is
// iohw of a deconvolution from C to OC channels, so no op transposes anything.
// Backward ops overwrite dw (beta = 0 in oneDNN's backward-weights).
//
// Threads: Debian's libdnnl runs on OpenMP (libgomp, as tabula), so both share
// one pool and OMP_NUM_THREADS / OMP_WAIT_POLICY. Calls are serialised by one
// mutex: the cached memory objects hold the caller's pointers during a call.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ops.h"

static int impl = -1;  // CONV_IMPL_*, -1 until first asked
static pthread_mutex_t impl_mu = PTHREAD_MUTEX_INITIALIZER;

#ifdef TABULA_HAVE_DNNL
#include <dnnl.h>

static dnnl_engine_t eng;
static dnnl_stream_t strm;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

// One argument of a primitive: the caller's NCHW array (user), and when the
// primitive wants another layout, a buffer of its own (mine) with the reorder.
typedef struct {
    int arg;                   // DNNL_ARG_*
    int out;                   // written by the primitive (reorder after, not before)
    dnnl_memory_t user, mine;  // mine NULL: the primitive uses user directly
    dnnl_primitive_t reorder;  // user -> mine, or mine -> user for an output
} Arg;

typedef struct {
    dnnl_primitive_t p;  // NULL until first used
    Arg a[3];
    dnnl_memory_t scratch;
} Prim;

enum { FWD = 0, BWD_DATA, BWD_WEIGHTS, N_PASS };
#define KEY_N 11
typedef struct {
    int key[KEY_N];  // transposed, blk, B, C, H, W, OC, K, S, P, in use (1) or refused (-1)
    dnnl_primitive_desc_t fwd_pd;  // the hint the backward passes need
    Prim pass[N_PASS];
} Entry;

#define CACHE_N 64
static Entry cache[CACHE_N];
static int cache_next;  // round robin once full (only batch changes add shapes)

static int ok(dnnl_status_t s) { return s == dnnl_success; }

static int dnnl_init(void) {
    if (eng) return 0;
    if (!ok(dnnl_engine_create(&eng, dnnl_cpu, 0))) return -1;
    if (!ok(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags))) return -1;
    return 0;
}

static void md_plain(dnnl_memory_desc_t *md, int a, int b, int c, int d, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {a, b, c, d};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

static void arg_free(Arg *a) {
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    if (a->mine) dnnl_memory_destroy(a->mine);
    if (a->user) dnnl_memory_destroy(a->user);
    memset(a, 0, sizeof *a);
}

static void prim_free(Prim *p) {
    if (p->p) dnnl_primitive_destroy(p->p);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    for (int i = 0; i < 3; i++) arg_free(&p->a[i]);
    memset(p, 0, sizeof *p);
}

static void entry_free(Entry *e) {
    for (int i = 0; i < N_PASS; i++) prim_free(&e->pass[i]);
    if (e->fwd_pd) dnnl_primitive_desc_destroy(e->fwd_pd);
    memset(e, 0, sizeof *e);
}

// Binds argument `arg` of primitive desc pd to a plain array of layout `user_md`.
static int arg_make(Arg *a, const_dnnl_primitive_desc_t pd, int arg, int out,
                    const dnnl_memory_desc_t *user_md) {
    a->arg = arg, a->out = out;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!ok(dnnl_memory_create(&a->user, user_md, eng, DNNL_MEMORY_NONE))) return -1;
    if (dnnl_memory_desc_equal(want, user_md)) return 0;
    if (!ok(dnnl_memory_create(&a->mine, want, eng, DNNL_MEMORY_ALLOCATE))) return -1;
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = out ? want : user_md, *to = out ? user_md : want;
    if (!ok(dnnl_reorder_primitive_desc_create(&rpd, from, eng, to, eng, NULL))) return -1;
    dnnl_status_t s = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return ok(s) ? 0 : -1;
}

// Creates the primitive of pd (which it takes over) with its three arguments.
static int prim_make(Prim *p, dnnl_primitive_desc_t pd, const int args[3], const int outs[3],
                     const dnnl_memory_desc_t *mds[3]) {
    int r = ok(dnnl_primitive_create(&p->p, pd)) ? 0 : -1;
    for (int i = 0; i < 3 && !r; i++) r = arg_make(&p->a[i], pd, args[i], outs[i], mds[i]);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (!r && smd && smd->ndims > 0)
        r = ok(dnnl_memory_create(&p->scratch, smd, eng, DNNL_MEMORY_ALLOCATE)) ? 0 : -1;
    dnnl_primitive_desc_destroy(pd);
    return r;
}

static int reorder_run(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return ok(dnnl_primitive_execute(r, strm, 2, args)) ? 0 : -1;
}

// Runs p on the caller's arrays ptr[i] (argument i of prim_make).
static int prim_run(Prim *p, void *const ptr[3]) {
    dnnl_exec_arg_t args[4];
    int n = 0, r = 0;
    for (int i = 0; i < 3; i++) {
        Arg *a = &p->a[i];
        dnnl_memory_set_data_handle(a->user, ptr[i]);
        if (a->mine && !a->out) r |= reorder_run(a->reorder, a->user, a->mine);
        args[n++] = (dnnl_exec_arg_t){a->arg, a->mine ? a->mine : a->user};
    }
    if (p->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    r |= ok(dnnl_primitive_execute(p->p, strm, n, args)) ? 0 : -1;
    for (int i = 0; i < 3; i++) {
        Arg *a = &p->a[i];
        if (a->mine && a->out) r |= reorder_run(a->reorder, a->mine, a->user);
    }
    dnnl_stream_wait(strm);
    return r;
}

// The operation descriptor of one pass, layouts left to oneDNN ("any").
static int pd_make(const int *k, int pass, const_dnnl_primitive_desc_t hint,
                   dnnl_primitive_desc_t *pd) {
    int T = k[0], B = k[2], C = k[3], H = k[4], W = k[5], OC = k[6], K = k[7], S = k[8], P = k[9];
    int Ho = T ? convt_out(H, K, S, P) : conv_out(H, K, S, P);
    int Wo = T ? convt_out(W, K, S, P) : conv_out(W, K, S, P);
    dnnl_memory_desc_t x, w, y;
    // The blocked activations as they are (no reorder), the rest as oneDNN likes.
    md_plain(&x, B, C, H, W, k[1] & CONV_BLK_X ? dnnl_nChw16c : dnnl_format_tag_any);
    md_plain(&w, OC, C, K, K, dnnl_format_tag_any);
    md_plain(&y, B, OC, Ho, Wo, k[1] & CONV_BLK_Y ? dnnl_nChw16c : dnnl_format_tag_any);
    // Right padding P as well: oneDNN floors (in - K + 2P)/S as conv_out does.
    dnnl_dims_t st = {S, S}, pad = {P, P};
    dnnl_convolution_desc_t d;
    dnnl_status_t s;
    if (!T && pass == FWD)
        s = dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct,
                                               &x, &w, NULL, &y, st, pad, pad);
    else if (!T && pass == BWD_DATA)
        s = dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &x, &w, &y, st,
                                                     pad, pad);
    else if (!T)
        s = dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &x, &w, NULL,
                                                        &y, st, pad, pad);
    else if (pass == FWD)
        s = dnnl_deconvolution_forward_desc_init(&d, dnnl_forward_training,
                                                 dnnl_deconvolution_direct, &x, &w, NULL, &y, st,
                                                 pad, pad);
    else if (pass == BWD_DATA)
        s = dnnl_deconvolution_backward_data_desc_init(&d, dnnl_deconvolution_direct, &x, &w, &y,
                                                       st, pad, pad);
    else
        s = dnnl_deconvolution_backward_weights_desc_init(&d, dnnl_deconvolution_direct, &x, &w,
                                                          NULL, &y, st, pad, pad);
    if (!ok(s) || !ok(dnnl_primitive_desc_create(pd, &d, NULL, eng, hint))) return -1;
    // oneDNN's "ref:any" plain loops (it picks them where no kernel of its own
    // fits, e.g. 8 channels at the network's edge) run tens of times slower
    // than im2col + GEMM: refuse them, so the caller falls back.
    const char *impl = NULL;
    if (ok(dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl)) && impl &&
        !strncmp(impl, "ref", 3)) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
        return -1;
    }
    return 0;
}

// The primitive of one pass, with its arguments bound to plain NCHW arrays (or
// the blocked ones of blk), and w, dw to PyTorch's layout or, given, to wmd.
static int pass_make(Entry *e, int pass, const dnnl_memory_desc_t *wmd) {
    const int *k = e->key;
    int T = k[0], blk = k[1], B = k[2], C = k[3], H = k[4], W = k[5], OC = k[6], K = k[7];
    int S = k[8], P = k[9];
    int Ho = T ? convt_out(H, K, S, P) : conv_out(H, K, S, P);
    int Wo = T ? convt_out(W, K, S, P) : conv_out(W, K, S, P);
    dnnl_memory_desc_t x, w, y;
    md_plain(&x, B, C, H, W, blk & CONV_BLK_X ? dnnl_nChw16c : dnnl_nchw);
    md_plain(&w, OC, C, K, K, T ? dnnl_iohw : dnnl_oihw);
    md_plain(&y, B, OC, Ho, Wo, blk & CONV_BLK_Y ? dnnl_nChw16c : dnnl_nchw);
    if (!e->fwd_pd && pd_make(k, FWD, NULL, &e->fwd_pd)) return -1;
    dnnl_primitive_desc_t pd;
    if (pass == FWD) {
        if (!ok(dnnl_primitive_desc_clone(&pd, e->fwd_pd))) return -1;
    } else if (pd_make(k, pass, e->fwd_pd, &pd)) {
        return -1;
    }
    // Argument order = the order of the caller's pointers in conv_dnnl_run.
    static const int args[N_PASS][3] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}};
    static const int outs[3] = {0, 0, 1};
    const dnnl_memory_desc_t *wu = wmd ? wmd : &w;
    const dnnl_memory_desc_t *mds[N_PASS][3] = {{&x, wu, &y}, {&y, wu, &x}, {&x, &y, wu}};
    return prim_make(&e->pass[pass], pd, args[pass], outs, mds[pass]);
}

static Entry *entry_get(const int key[KEY_N]) {
    for (int i = 0; i < CACHE_N; i++)
        if (cache[i].key[KEY_N - 1] && !memcmp(cache[i].key, key, (KEY_N - 1) * sizeof(int)))
            return &cache[i];
    Entry *e = &cache[cache_next];
    cache_next = (cache_next + 1) % CACHE_N;
    entry_free(e);
    memcpy(e->key, key, sizeof e->key);
    return e;
}

// The layout in which the CPU backend may keep a layer's weights between steps
// (CONV_BLK_W): the one the forward pass at batch 1 takes, so that it needs no
// reorder. Copied out: making another entry may evict that one. mu held.
static int stored_wmd(const int *key, dnnl_memory_desc_t *md) {
    int k1[KEY_N];
    memcpy(k1, key, sizeof k1);
    k1[2] = 1;
    Entry *e = entry_get(k1);
    if (e->key[KEY_N - 1] < 0) return -1;
    if (!e->fwd_pd && pd_make(k1, FWD, NULL, &e->fwd_pd)) {
        e->key[KEY_N - 1] = -1;
        return -1;
    }
    *md = *dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_weights_md, 0);
    return 0;
}

// One pass on the caller's arrays, in the order of pass_make's `args`.
// Returns -1 when oneDNN cannot run this shape (the caller falls back).
static int conv_dnnl_run(int T, int blk, int pass, void *p0, void *p1, void *p2, int B, int C,
                         int H, int W, int OC, int K, int S, int P) {
    int key[KEY_N] = {T, blk, B, C, H, W, OC, K, S, P, 1};
    void *ptr[3] = {p0, p1, p2};
    pthread_mutex_lock(&mu);
    dnnl_memory_desc_t wmd;
    int r = dnnl_init() || ((blk & CONV_BLK_W) && stored_wmd(key, &wmd)) ? -1 : 0;
    Entry *e = r ? NULL : entry_get(key);
    if (e && e->key[KEY_N - 1] < 0) r = -1;  // failed before
    if (e && !r && !e->pass[pass].p && pass_make(e, pass, blk & CONV_BLK_W ? &wmd : NULL)) {
        prim_free(&e->pass[pass]);
        e->key[KEY_N - 1] = -1;
        r = -1;
    }
    if (!r && p0) r = prim_run(&e->pass[pass], ptr);  // no arrays: only make it
    pthread_mutex_unlock(&mu);
    return r;
}

int conv_dnnl_forward(int transposed, int blk, float *y, const float *x, const float *w, int B,
                      int C, int H, int W, int OC, int K, int S, int P) {
    return conv_dnnl_run(transposed, blk, FWD, (void *)x, (void *)w, y, B, C, H, W, OC, K, S, P);
}

int conv_dnnl_backward(int transposed, int blk, float *dx, float *dw, const float *dy,
                       const float *x, const float *w, int B, int C, int H, int W, int OC, int K,
                       int S, int P) {
    if (conv_dnnl_run(transposed, blk, BWD_WEIGHTS, (void *)x, (void *)dy, dw, B, C, H, W, OC, K,
                      S, P))
        return -1;
    if (!dx) return 0;
    return conv_dnnl_run(transposed, blk, BWD_DATA, (void *)dy, (void *)w, dx, B, C, H, W, OC, K,
                         S, P);
}

int conv_dnnl_ready(int transposed, int blk, int B, int C, int H, int W, int OC, int K, int S,
                    int P) {
    for (int pass = 0; pass < N_PASS; pass++)
        if (conv_dnnl_run(transposed, blk, pass, NULL, NULL, NULL, B, C, H, W, OC, K, S, P))
            return -1;
    return 0;
}

// One reorder between two layouts of the caller's arrays (rare: no caching).
static int reorder_once(const dnnl_memory_desc_t *from_md, const void *from,
                        const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_memory_t a = NULL, b = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t p = NULL;
    int r = ok(dnnl_memory_create(&a, from_md, eng, (void *)from)) &&
                    ok(dnnl_memory_create(&b, to_md, eng, to)) &&
                    ok(dnnl_reorder_primitive_desc_create(&pd, from_md, eng, to_md, eng, NULL)) &&
                    ok(dnnl_primitive_create(&p, pd))
                ? reorder_run(p, a, b)
                : -1;
    dnnl_stream_wait(strm);
    if (p) dnnl_primitive_destroy(p);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (b) dnnl_memory_destroy(b);
    if (a) dnnl_memory_destroy(a);
    return r;
}

int conv_dnnl_weights(int transposed, int blk, int to_dnnl, float *dst, const float *src, int C,
                      int H, int W, int OC, int K, int S, int P) {
    int key[KEY_N] = {transposed, blk | CONV_BLK_W, 1, C, H, W, OC, K, S, P, 1};
    dnnl_memory_desc_t plain, mine;
    md_plain(&plain, OC, C, K, K, transposed ? dnnl_iohw : dnnl_oihw);
    pthread_mutex_lock(&mu);
    int r = dnnl_init() || stored_wmd(key, &mine) ? -1 : 0;
    // Padded layouts (channels not a multiple of the block) would not fit.
    if (!r && dnnl_memory_desc_get_size(&mine) != dnnl_memory_desc_get_size(&plain)) r = -1;
    if (!r && dst)
        r = to_dnnl ? reorder_once(&plain, src, &mine, dst) : reorder_once(&mine, src, &plain, dst);
    pthread_mutex_unlock(&mu);
    return r;
}

static int dnnl_usable(void) {
    pthread_mutex_lock(&mu);
    int r = dnnl_init();
    pthread_mutex_unlock(&mu);
    return r == 0;
}

static const char *dnnl_version_str(void) {
    static char s[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(s, sizeof s, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    return s;
}
#else
int conv_dnnl_forward(int transposed, int blk, float *y, const float *x, const float *w, int B,
                      int C, int H, int W, int OC, int K, int S, int P) {
    return -1;
}
int conv_dnnl_backward(int transposed, int blk, float *dx, float *dw, const float *dy,
                       const float *x, const float *w, int B, int C, int H, int W, int OC, int K,
                       int S, int P) {
    return -1;
}
int conv_dnnl_ready(int transposed, int blk, int B, int C, int H, int W, int OC, int K, int S,
                    int P) {
    return -1;
}
int conv_dnnl_weights(int transposed, int blk, int to_dnnl, float *dst, const float *src, int C,
                      int H, int W, int OC, int K, int S, int P) {
    return -1;
}
static int dnnl_usable(void) { return 0; }
static const char *dnnl_version_str(void) { return "oneDNN"; }
#endif

// ---------------------------------------------------------------- the choice

int conv_impl_set(int which) {
    if (which == CONV_IMPL_DNNL && !dnnl_usable()) return -1;
    pthread_mutex_lock(&impl_mu);
    impl = which;
    pthread_mutex_unlock(&impl_mu);
    return 0;
}

int conv_impl(void) {
    pthread_mutex_lock(&impl_mu);
    if (impl < 0) {
        const char *e = getenv("TABULA_CPU_CONV");
        int want = e && !strcmp(e, "gemm") ? CONV_IMPL_GEMM : CONV_IMPL_DNNL;
        if (e && *e && strcmp(e, "gemm") && strcmp(e, "dnnl"))
            tb_warn("TABULA_CPU_CONV=%s: expected dnnl or gemm", e);
        if (want == CONV_IMPL_DNNL && !dnnl_usable()) {
            if (e && !strcmp(e, "dnnl")) tb_warn("TABULA_CPU_CONV=dnnl: oneDNN is not available");
            want = CONV_IMPL_GEMM;
        }
        impl = want;
    }
    int r = impl;
    pthread_mutex_unlock(&impl_mu);
    return r;
}

const char *conv_impl_name(void) {
    return conv_impl() == CONV_IMPL_DNNL ? dnnl_version_str() : "im2col + GEMM";
}
