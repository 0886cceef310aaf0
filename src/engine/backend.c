// backend.c: picks a backend by name ("auto" = CUDA when usable, else CPU).
#include <string.h>

#include "backend.h"
#ifdef TABULA_HAVE_CUDA
#include "backend_cuda.h"
#endif

Backend *backend_create(const char *name, const Model *m, int max_batch, TbErr *err) {
    return backend_create_opts(name, m, max_batch, NULL, err);
}

Backend *backend_create_opts(const char *name, const Model *m, int max_batch, const BackendOpts *o,
                             TbErr *err) {
    BackendOpts none = {0};
    if (!o) o = &none;
    if (strcmp(name, "cpu") == 0) return backend_cpu_create(m, max_batch, err);
    // backend_cuda_create checks the GPU itself (its one cuDNN handle is the cuDNN check).
    if (strcmp(name, "cuda") == 0) {
#ifdef TABULA_HAVE_CUDA
        return backend_cuda_on_device(m, max_batch, o, err);
#else
        tb_fail(err, "backend cuda: this build has no CUDA backend (CUDA toolkit or cuDNN missing at build time)");
        return NULL;
#endif
    }
    if (strcmp(name, "auto") == 0) {
#ifdef TABULA_HAVE_CUDA
        TbErr why = {{0}};
        Backend *b = backend_cuda_on_device(m, max_batch, o, &why);
        if (b) return b;
        tb_log("backend: using the CPU (%s)", why.msg);
#else
        tb_log("backend: using the CPU (this build has no CUDA backend)");
#endif
        return backend_cpu_create(m, max_batch, err);
    }
    tb_fail(err, "unknown backend \"%s\" (auto, cpu or cuda)", name);
    return NULL;
}

void backend_destroy(Backend *b) {
    if (b) b->destroy(b);
}

int backend_couple(Backend *const *bs, int k, float c, float *const *host) {
    CHECK(k >= 1 && k <= TB_COUPLE_MAX, "coupling %d backends", k);
    if (k < 2 || c == 0.0f) return 1;  // couple() would change nothing
    for (int j = 1; j < k; j++)
        CHECK(bs[j]->model->n_params == bs[0]->model->n_params, "coupling nets of %zu and %zu weights",
              (size_t)bs[j]->model->n_params, (size_t)bs[0]->model->n_params);
    int same = bs[0]->couple != NULL;
    for (int j = 1; j < k && same; j++) same = bs[j]->couple == bs[0]->couple;
    if (same && bs[0]->couple(bs, k, c) == 0) return 1;
    for (int j = 0; j < k; j++) bs[j]->get_params(bs[j], host[j]);
    couple(host, k, bs[0]->model->n_params, c);
    for (int j = 0; j < k; j++) bs[j]->set_params(bs[j], host[j]);
    return 0;
}
