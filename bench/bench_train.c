// bench_train.c: training-step speed of the default network, batch 1, SGD with
// momentum and clipping, on each usable backend (or the one named).
//   bench_train [--backend cpu|cuda|all] [--sizes 128x128,256x256,...]
//               [--steps N] [--warmup N] [--memory R] [--layout nchw|nhwc]
//               [--dtype fp32|bf16]
// --layout: the CUDA backend's device layout (sets TABULA_CUDA_LAYOUT; without
// it, whatever that says, nchw by default); printed as the CUDA rows' layout.
// --dtype: the CUDA backend's activation type (sets TABULA_CUDA_DTYPE; without
// it, whatever that says, fp32 by default); printed as the CUDA rows' dtype.
// Prints a table and one JSON line per (backend, size). Pair it with
// bench/torch_bench.py on the same machine, back to back (bench/cpu_vs_torch.sh).
// Besides wall time it reports the process's CPU time per step: on a machine
// shared with other work (time slices lost to others) that is the steadier
// figure, as long as no thread spins while it waits (OMP_WAIT_POLICY=passive).
#define _POSIX_C_SOURCE 200809L  // setenv
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#ifdef TABULA_HAVE_CUDA
#include "backend_cuda.h"
#endif
#include "model.h"
#include "ops.h"

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The CUDA backend's layout in force (TABULA_CUDA_LAYOUT, as it reads it); "-" on the CPU.
static const char *layout_of(const Backend *be) {
    if (strcmp(be->name, "cuda")) return "-";
    const char *l = getenv("TABULA_CUDA_LAYOUT");
    return l && !strcmp(l, "nhwc") ? "nhwc" : "nchw";
}

// The CUDA backend's activation type in force (TABULA_CUDA_DTYPE); "-" on the CPU.
static const char *dtype_of(const Backend *be) {
    if (strcmp(be->name, "cuda")) return "-";
    const char *d = getenv("TABULA_CUDA_DTYPE");
    return d && !strcmp(d, "bf16") ? "bf16" : "fp32";
}

static int bench_one(const char *backend, int W, int H, int steps, int warmup, int memory) {
    Model m;
    TbErr err = {{0}};
    ModelSpec s = model_spec_default(W, H);
    if (model_build(&m, &s, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int B = 1 + memory;
    BackendOpts o = {.frames = 64};  // a replay ring's worth kept on the device
    Backend *be = backend_create_opts(backend, &m, B, &o, &err);
    if (!be) {
        fprintf(stderr, "%s: %s\n", backend, err.msg);
        return -1;
    }
    float *p = tb_malloc(m.n_params * sizeof(float));
    model_init_params(&m, p, 1);
    be->set_params(be, p);
    free(p);
    // A real-looking frame: smooth gradients plus texture (the content does not
    // change the cost, but keeps the numbers finite and typical).
    uint8_t *frames[16];
    for (int b = 0; b < B; b++) {
        frames[b] = tb_malloc((size_t)W * H * 3);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++)
                    frames[b][((size_t)y * W + x) * 3 + c] = (uint8_t)((x * 255 / W + y * 97 / H + c * 50 + b * 13 + ((x ^ y) & 15)) & 255);
    }
    Hyper h = {.optimizer = OPT_SGD, .lr = 0.05f, .momentum = 0.9f, .clip = 1.0f, .t = 1};
    StepStats st[TB_STATS_RING];
    be->load_batch(be, (const uint8_t *const *)frames, B);
    for (int i = 0; i < warmup; i++) be->train_step(be, B, &h, i % TB_STATS_RING);
    be->read_stats(be, st, 1);  // waits for the device
#ifdef TABULA_HAVE_CUDA
    long long uploaded0 = 0;
    if (!strcmp(be->name, "cuda")) backend_cuda_step_work(be, NULL, &uploaded0);
#endif
    double t0 = tb_now(), c0 = cpu_seconds();
    for (int i = 0; i < steps; i++) {
        // A new frame every step, as the live loop has: numbered anew, while
        // the replayed ones keep their numbers (the device may hold them).
        uint64_t ids[16];
        ids[0] = 1000 + (uint64_t)i;
        for (int b = 1; b < B; b++) ids[b] = (uint64_t)b;
        if (be->load_batch_ids) be->load_batch_ids(be, (const uint8_t *const *)frames, ids, B);
        else be->load_batch(be, (const uint8_t *const *)frames, B);
        be->train_step(be, B, &h, i % TB_STATS_RING);
    }
    be->read_stats(be, st, 1);
    double dt = tb_now() - t0, cpu_ms = 1e3 * (cpu_seconds() - c0) / steps;
    double ms = 1e3 * dt / steps;
    double gflops = 3.0 * model_forward_flops(&m) * B / (ms * 1e-3) * 1e-9;
    const char *conv = strcmp(be->name, "cpu") ? "" : conv_impl() == CONV_IMPL_DNNL ? "dnnl" : "gemm";
    // CUDA: what one step enqueues (kernels, cuDNN calls) and the frame bytes
    // it sent to the device; -1 on the CPU.
    int kernels = -1, cudnn = -1;
    double upload = -1;
#ifdef TABULA_HAVE_CUDA
    if (!strcmp(be->name, "cuda")) {
        CudaStepWork w;
        long long total = 0;
        backend_cuda_step_work(be, &w, &total);
        kernels = w.kernels, cudnn = w.cudnn;
        upload = (double)(total - uploaded0) / steps;
    }
#endif
    const char *layout = layout_of(be), *dtype = dtype_of(be);
    printf("%-5s %-4s %-4s %-4s %9dx%-5d batch %2d  %9.3f ms/step  %8.1f steps/s  %7.1f GFLOP/s  %8.3f cpu ms/step",
           be->name, conv, layout, dtype, W, H, B, ms, 1e3 / ms, gflops, cpu_ms);
    if (kernels >= 0) printf("  %d kernels + %d cuDNN/step  %.0f B uploaded/step", kernels, cudnn, upload);
    printf("\n{\"impl\":\"tabula\",\"backend\":\"%s\",\"conv\":\"%s\",\"layout\":\"%s\",\"dtype\":\"%s\",\"size\":\"%dx%d\",\"batch\":%d,"
           "\"ms_per_step\":%.4f,\"steps_per_s\":%.2f,\"cpu_ms_per_step\":%.4f,\"kernels_per_step\":%d,"
           "\"cudnn_per_step\":%d,\"upload_bytes_per_step\":%.0f}\n",
           be->name, conv, layout, dtype, W, H, B, ms, 1e3 / ms, cpu_ms, kernels, cudnn, upload);
    fflush(stdout);
    for (int b = 0; b < B; b++) free(frames[b]);
    backend_destroy(be);
    return 0;
}

int main(int argc, char **argv) {
    const char *backend = "all";
    // 1080 is not a multiple of 16: "1080p" trains at 1920x1088 (as bench/torch_bench.py does).
    const char *sizes = "128x128,256x256,448x256,1280x720,1920x1088";
    int steps = 0, warmup = 3, memory = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
        else if (!strcmp(argv[i], "--sizes")) sizes = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--memory")) memory = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layout") && (!strcmp(argv[i + 1], "nchw") || !strcmp(argv[i + 1], "nhwc")))
            setenv("TABULA_CUDA_LAYOUT", argv[i + 1], 1);
        else if (!strcmp(argv[i], "--dtype") && (!strcmp(argv[i + 1], "fp32") || !strcmp(argv[i + 1], "bf16")))
            setenv("TABULA_CUDA_DTYPE", argv[i + 1], 1);
        else {
            fprintf(stderr, "usage: bench_train [--backend cpu|cuda|all] [--sizes WxH,...] [--steps N] "
                            "[--warmup N] [--memory R] [--layout nchw|nhwc] [--dtype fp32|bf16]\n");
            return 2;
        }
    }
    const char *list[2];
    int nb = 0;
    if (!strcmp(backend, "all")) {
        list[nb++] = "cpu";
#ifdef TABULA_HAVE_CUDA
        TbErr why;
        if (cuda_available(&why)) list[nb++] = "cuda";
        else fprintf(stderr, "cuda: skipped (%s)\n", why.msg);
#endif
    } else {
        list[nb++] = backend;
    }
    for (int b = 0; b < nb; b++) {
        const char *p = sizes;
        while (*p) {
            int W, H;
            if (sscanf(p, "%dx%d", &W, &H) != 2) break;
            // Default step counts: enough for a stable figure without taking minutes on a CPU.
            double px = (double)W * H;
            int n = steps ? steps : !strcmp(list[b], "cuda") ? 200 : (px <= 70000 ? 50 : px <= 120000 ? 20 : 5);
            bench_one(list[b], W, H, n, !strcmp(list[b], "cuda") ? 20 : warmup, memory);
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
    }
    return 0;
}
