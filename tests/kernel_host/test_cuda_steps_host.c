// test_cuda_steps_host.c: why it exists: what one training step of the CUDA
// backend puts on the device (kernels, cuDNN calls, copies) is what kernel
// fusion works on, and a captured graph must hold exactly the step's eager
// work; and a graph must never outlive a buffer it uses. Both are questions
// about the backend's host code, so they are answered here, on the host build
// of the backend (tests/kernel_host, no GPU): the shim counts what a capture
// records and what runs outside graphs, and reports any use of freed memory.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_cuda.h"
#include "common.h"
#include "cuda_host_api.h"
#include "model.h"
#include "test.h"

static uint8_t *frames[4];

// The bounds against the float CPU backend: 1e-5 of the largest value in
// float. With bfloat16 activations (TABULA_CUDA_DTYPE=bf16) each stored value
// is rounded to 8 bits (2^-9 relative), once per layer it passes, so
// activation i is held to (2i+1) 2^-8 of its largest value, the weights after
// a run to 2^-9 and the output to 2 bytes, as in test_cuda_parity.c (measured:
// 0.002 to 0.0063 for the activations, 2.5e-4 for the weights).
static int bf16(void) {
    const char *v = getenv("TABULA_CUDA_DTYPE");
    return v && strcmp(v, "bf16") == 0;
}
static double act_bound(int i) { return bf16() ? (2 * i + 1) / 256.0 : 1e-5; }
static double weight_bound(void) { return bf16() ? 1 / 512.0 : 1e-5; }

static void make_frames(int W, int H, uint64_t seed) {
    TbRng r;
    tb_rng_seed(&r, seed);
    for (int i = 0; i < 4; i++) {
        frames[i] = (uint8_t *)tb_malloc((size_t)W * H * 3);
        for (size_t k = 0; k < (size_t)W * H * 3; k++) frames[i][k] = (uint8_t)(tb_rng_u32(&r) & 255);
    }
}

static void free_frames(void) {
    for (int i = 0; i < 4; i++) free(frames[i]), frames[i] = NULL;
}

static Hyper hyper(int optimizer) {
    Hyper h = {0};
    h.optimizer = optimizer;
    h.lr = optimizer == OPT_ADAM ? 1e-3f : 0.05f;
    h.momentum = 0.9f;
    h.weight_decay = 1e-4f;
    h.clip = 1.0f;
    h.beta1 = 0.9f;
    h.beta2 = 0.999f;
    h.eps = 1e-8f;
    return h;
}

// One step of batch B on be: loads, steps, and returns what ran eagerly.
static KhGraphCounts step(Backend *be, int B, Hyper *h, int k) {
    const uint8_t *batch[4] = {frames[0], frames[1], frames[2], frames[3]};
    be->load_batch(be, batch, B);
    h->t = k + 1;
    kh_reset_counts();
    be->train_step(be, B, h, k % TB_STATS_RING);
    return kh_eager_counts();
}

// The default model (model_spec_default's layers) at 48x32: for batch 1 and 4, SGD and
// Adam, the first step runs eagerly and the second is captured; the graph must
// hold the same kernels and cuDNN calls as the eager step. The counts are
// printed: the figure kernel fusion moves. (They do not move with the batch
// size: the bias gradient's sum, long or short, is one launch.)
TEST_IMPL(work_per_step) {
    // The default model's layers with fewer channels: the counts depend on the
    // layers and the sizes, not the channels, and the emulated optimizer's
    // time on the parameters' count.
    ModelSpec spec = model_spec_default(48, 32);
    for (int i = 0; i < spec.n_enc; i++) spec.channels[i] = 8 + 4 * i;
    Model m;
    TbErr err = {{0}};
    CHECK(model_build(&m, &spec, &err) == 0, "%s", err.msg);
    Backend *be = backend_cuda_create(&m, 4, NULL, &err);
    EXPECT(be != NULL, "backend_cuda_create: %s", err.msg);
    if (!be) return;
    float *p = (float *)tb_calloc(m.n_params, sizeof(float));
    model_init_params(&m, p, 7);
    make_frames(48, 32, 3);
    for (int opt = OPT_SGD; opt <= OPT_ADAM; opt++)
        for (int B = 1; B <= 4; B += 3) {
            be->set_params(be, p);
            be->reset_opt_state(be);
            Hyper h = hyper(opt);
            KhGraphCounts e = step(be, B, &h, 0);
            step(be, B, &h, 1);  // captured, then launched
            KhGraphCounts g = kh_last_graph_counts();
            printf("training step, default model's %d layers at 48x32, batch %d, %s: %d kernels + %d cuDNN "
                   "calls, %d copies, %d memsets in the graph; eager: %d + %d (+%d copies, the "
                   "hyperparameters' upload among them)\n",
                   m.n_layers, B, opt == OPT_ADAM ? "Adam" : "SGD", g.kernels, g.cudnn, g.copies,
                   g.memsets, e.kernels, e.cudnn, e.copies);
            EXPECT(g.kernels > 0 && g.cudnn > 0, "batch %d: an empty graph", B);
            EXPECT(g.kernels == e.kernels && g.cudnn == e.cudnn,
                   "batch %d opt %d: the graph holds %d kernels + %d cuDNN calls, the eager step "
                   "ran %d + %d", B, opt, g.kernels, g.cudnn, e.kernels, e.cudnn);
            // Uploads before the graph's launch are eager; the graph has no more.
            EXPECT(e.copies >= g.copies + 1 && e.memsets >= g.memsets,
                   "batch %d: eager copies %d, memsets %d; graph %d, %d", B, e.copies, e.memsets,
                   g.copies, g.memsets);
            // The backend's own count (backend_cuda_step_work) is the graph's.
            CudaStepWork w;
            backend_cuda_step_work(be, &w, NULL);
            EXPECT(w.kernels == g.kernels && w.cudnn == g.cudnn,
                   "batch %d: the backend counts %d kernels + %d cuDNN calls, the graph holds "
                   "%d + %d", B, w.kernels, w.cudnn, g.kernels, g.cudnn);
            // One cuDNN call per layer forward, two backward but for the
            // first layer's (no input gradient), whatever the batch size.
            EXPECT(g.cudnn == 3 * m.n_layers - 1, "batch %d: %d cuDNN calls for %d layers", B,
                   g.cudnn, m.n_layers);
        }
    EXPECT(backend_cuda_graph_launches(be) == 4, "%ld graph launches, want 4",
           backend_cuda_graph_launches(be));
    free(p);
    free_frames();
    backend_destroy(be);
}

// Batch 2 captured and replayed, then batch 3, whose algorithms need a larger
// workspace (the host cuDNN's PRECOMP_GEMM takes 16 MiB a sample): the old
// workspace is freed, so the graphs that hold it must go. Then batch 2 again:
// it must be captured anew, not replayed onto freed memory (the shim reports
// that), and the run must match the CPU backend's.
TEST_IMPL(graphs_dropped_when_the_workspace_grows) {
    ModelSpec spec = model_spec_default(48, 32);
    spec.n_enc = 2;
    spec.channels[0] = 8;
    spec.channels[1] = 12;
    Model m;
    TbErr err = {{0}};
    CHECK(model_build(&m, &spec, &err) == 0, "%s", err.msg);
    Backend *gpu = backend_cuda_create(&m, 3, NULL, &err), *cpu = backend_cpu_create(&m, 3, &err);
    EXPECT(gpu != NULL, "backend_cuda_create: %s", err.msg);
    if (!gpu) return;
    float *p = (float *)tb_calloc(m.n_params, sizeof(float));
    float *pc = (float *)tb_calloc(m.n_params, sizeof(float));
    float *pg = (float *)tb_calloc(m.n_params, sizeof(float));
    model_init_params(&m, p, 11);
    make_frames(48, 32, 5);
    static const int batches[] = {2, 2, 2, 3, 3, 2, 2, 2};
    int n = (int)(sizeof batches / sizeof batches[0]), errors0 = kh_errors();
    Backend *be[2] = {cpu, gpu};
    for (int b = 0; b < 2; b++) {
        be[b]->set_params(be[b], p);
        be[b]->reset_opt_state(be[b]);
        Hyper h = hyper(OPT_SGD);
        for (int k = 0; k < n; k++) step(be[b], batches[k], &h, k);
    }
    cpu->get_params(cpu, pc);
    gpu->get_params(gpu, pg);
    double e = max_rel_err(pg, pc, m.n_params, 1e-6);
    printf("workspace growth: %ld of %d steps replayed; params rel. error %.2g\n",
           backend_cuda_graph_launches(gpu), n, e);
    EXPECT(kh_errors() == errors0, "the emulator reported: %s", kh_first_error());
    EXPECT(e <= weight_bound(), "params after the run: relative error %.3g", e);
    // batch 2: 2 replays, then 3 from its capture anew; batch 3: 1
    EXPECT(backend_cuda_graph_launches(gpu) == 6, "%ld graph launches, want 6",
           backend_cuda_graph_launches(gpu));
    free(p), free(pc), free(pg);
    free_frames();
    backend_destroy(gpu);
    backend_destroy(cpu);
}

// The read-outs the parity test leaves out: every activation of a one-sample
// forward against the CPU backend's, decode of the code against get_output
// (bit for bit: backend.h promises it), and mem_info.
TEST_IMPL(activations_decode_and_mem_info) {
    ModelSpec spec = model_spec_default(48, 32);
    spec.n_enc = 2;
    spec.channels[0] = 8;
    spec.channels[1] = 12;
    Model m;
    TbErr err = {{0}};
    CHECK(model_build(&m, &spec, &err) == 0, "%s", err.msg);
    Backend *gpu = backend_cuda_create(&m, 2, NULL, &err), *cpu = backend_cpu_create(&m, 2, &err);
    EXPECT(gpu != NULL, "backend_cuda_create: %s", err.msg);
    if (!gpu) return;
    float *p = (float *)tb_calloc(m.n_params, sizeof(float));
    model_init_params(&m, p, 13);
    make_frames(48, 32, 9);
    Backend *be[2] = {cpu, gpu};
    float *act[2];
    uint8_t out[2][48 * 32 * 3], dec[48 * 32 * 3];
    for (int b = 0; b < 2; b++) {
        const uint8_t *one[1] = {frames[1]};
        be[b]->set_params(be[b], p);
        be[b]->load_batch(be[b], one, 1);
        be[b]->forward(be[b], 1);
        be[b]->get_output(be[b], 0, out[b]);
        act[b] = (float *)tb_calloc(m.act_total, sizeof(float));
        for (int i = 0; i <= m.n_layers; i++) be[b]->get_activation(be[b], i, act[b] + m.act_off[i]);
    }
    for (int i = 0; i <= m.n_layers; i++) {
        double e = max_rel_err(act[1] + m.act_off[i], act[0] + m.act_off[i], m.act_n[i], 1e-6);
        EXPECT(e <= act_bound(i), "activation %d: relative error %.3g", i, e);
    }
    int nb = model_bottleneck_act(&m), maxd = 0;
    gpu->decode(gpu, act[1] + m.act_off[nb], dec);
    EXPECT(memcmp(dec, out[1], sizeof dec) == 0, "decode(code) is not get_output(0) bit for bit");
    for (size_t k = 0; k < sizeof dec; k++) {
        int d = abs((int)dec[k] - (int)out[0][k]);
        if (d > maxd) maxd = d;
    }
    EXPECT(maxd <= (bf16() ? 2 : 1), "decode against the CPU's output: max byte difference %d", maxd);
    size_t used = 0, total = 0;
    EXPECT(gpu->mem_info(gpu, &used, &total) == 0 && used > 0 && used < total,
           "mem_info: used %zu of %zu", used, total);
    free(p), free(act[0]), free(act[1]);
    free_frames();
    backend_destroy(gpu);
    backend_destroy(cpu);
}

// output_recent reads a read-back only once its event says it arrived. Here
// queued work runs only when the host needs it, and a query of work still
// queued says "not ready" once (then lets the device run it): the second call
// finds the read-back on its way and gives nothing, the third gives it. The
// shim also holds a copy into pinned memory back until the host knows it done
// (the destination holds 0xFF until then), so a read-back read without that
// cudaEventQuery gives 0xFF bytes, not get_output's.
TEST_IMPL(output_recent_reads_what_arrived) {
    ModelSpec spec = model_spec_default(48, 32);
    spec.n_enc = 2;
    spec.channels[0] = 8;
    spec.channels[1] = 12;
    Model m;
    TbErr err = {{0}};
    CHECK(model_build(&m, &spec, &err) == 0, "%s", err.msg);
    Backend *gpu = backend_cuda_create(&m, 1, NULL, &err);
    EXPECT(gpu != NULL, "backend_cuda_create: %s", err.msg);
    if (!gpu) return;
    float *p = (float *)tb_calloc(m.n_params, sizeof(float));
    model_init_params(&m, p, 17);
    make_frames(48, 32, 11);
    enum { FB = 48 * 32 * 3 };
    static uint8_t got[FB], want[FB];
    const uint8_t *one[1] = {frames[2]};
    gpu->set_params(gpu, p);
    gpu->load_batch(gpu, one, 1);
    gpu->forward(gpu, 1);
    EXPECT(gpu->output_recent(gpu, got) == 0, "a read-back given before any was asked");
    memset(got, 0, FB);
    EXPECT(gpu->output_recent(gpu, got) == 0, "a read-back given before its query said ready");
    EXPECT(gpu->output_recent(gpu, got) == 1, "the read-back asked is not given");
    gpu->get_output(gpu, 0, want);
    EXPECT(memcmp(got, want, FB) == 0, "the read-back is not get_output's bytes (got[0] = %d)",
           got[0]);
    free(p);
    free_frames();
    backend_destroy(gpu);
}

int main(int argc, char **argv) {
    setenv("TABULA_NO_TF32", "1", 1);
    static const TestCase cases[] = {
        TEST_ENTRY(work_per_step),
        TEST_ENTRY(graphs_dropped_when_the_workspace_grows),
        TEST_ENTRY(activations_decode_and_mem_info),
        TEST_ENTRY(output_recent_reads_what_arrived),
    };
    return test_run(cases, sizeof cases / sizeof cases[0], argc, argv);
}
