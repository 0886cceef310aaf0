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
        return backend_cuda_create(m, max_batch, o, err);
#else
        tb_fail(err, "backend cuda: this build has no CUDA backend (CUDA toolkit or cuDNN missing at build time)");
        return NULL;
#endif
    }
    if (strcmp(name, "auto") == 0) {
#ifdef TABULA_HAVE_CUDA
        TbErr why = {{0}};
        Backend *b = backend_cuda_create(m, max_batch, o, &why);
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
