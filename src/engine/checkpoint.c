// checkpoint.c: save/load the trainer through safetensors.c.
#include "checkpoint.h"

#include <string.h>

#include "ops.h"
#include "safetensors.h"

#define FORMAT "tabula-checkpoint-1"

static int layer_shape(const Layer *L, int bias, int64_t *shape) {
    if (bias) {
        shape[0] = L->cout;
        return 1;
    }
    shape[0] = L->kind == LAYER_CONV ? L->cout : L->cin;  // Conv2d (OC,C,K,K); ConvT (C,OC,K,K)
    shape[1] = L->kind == LAYER_CONV ? L->cin : L->cout;
    shape[2] = shape[3] = L->k;
    return 4;
}

static const char *tf_name(int kind) {
    static const char *const names[TF_KINDS] = {"none", "grey", "edges"};  // TF_CHOICES
    return kind >= 0 && kind < TF_KINDS ? names[kind] : "none";
}

// tf: the input transform the network was trained with (NULL: not recorded).
static int save_host(const char *path, const Model *m, const Hyper *h, long step, long opt_t0,
                     uint64_t seed, const float *p, const float *s, const Transform *tf, TbErr *err) {
    int with_opt = s != NULL;
    int adam = h->optimizer == OPT_ADAM;
    size_t n = m->n_params;

    StWriter w;
    st_writer_init(&w);
    char names[3][TB_MAX_LAYERS][2][48];
    const char *prefix[3] = {"", "opt.", "opt_v."};
    const float *base[3] = {p, s, s ? s + n : NULL};
    int n_sets = !with_opt ? 1 : adam ? 3 : 2;
    for (int set = 0; set < n_sets; set++)
        for (int l = 0; l < m->n_layers; l++) {
            const Layer *L = &m->layers[l];
            for (int bias = 0; bias < 2; bias++) {
                int64_t shape[4];
                int nd = layer_shape(L, bias, shape);
                snprintf(names[set][l][bias], sizeof names[set][l][bias], "%s%s.%s", prefix[set],
                         L->name, bias ? "bias" : "weight");
                st_writer_add(&w, names[set][l][bias], "F32", nd, shape,
                              base[set] + (bias ? L->b_off : L->w_off));
            }
        }
    char arch[128], buf[64];
    model_arch_string(m, arch, sizeof arch);
    st_writer_meta(&w, "format", FORMAT);
    st_writer_meta(&w, "arch", arch);
#define META_I(k, v) (snprintf(buf, sizeof buf, "%ld", (long)(v)), st_writer_meta(&w, k, buf))
#define META_F(k, v) (snprintf(buf, sizeof buf, "%.9g", (double)(v)), st_writer_meta(&w, k, buf))
    META_I("width", m->spec.width);
    META_I("height", m->spec.height);
    META_I("step", step);
    if (opt_t0) META_I("optimizer_start", opt_t0);  // step its state started at
    st_writer_meta(&w, "optimizer", adam ? "adam" : "sgd");
    st_writer_meta(&w, "has_optimizer_state", with_opt ? "1" : "0");
    META_F("lr", h->lr);
    META_F("momentum", h->momentum);
    META_F("clip", h->clip);
    META_F("weight_decay", h->weight_decay);
    META_F("adam_beta1", h->beta1);
    META_F("adam_beta2", h->beta2);
    META_F("adam_eps", h->eps);
    META_I("seed", seed);
    if (tf) {
        st_writer_meta(&w, "transform", tf_name(tf->kind));
        META_I("blur", tf->blur > 1 ? tf->blur : 1);
        META_F("jitter", tf->jitter);
    }
#undef META_I
#undef META_F
    int rc = st_writer_save(&w, path, err);
    st_writer_free(&w);
    return rc;
}

int checkpoint_save_host(const char *path, const Model *m, const Hyper *h, long step, long opt_t0,
                         uint64_t seed, const float *p, const float *s, const Transform *tf, TbErr *err) {
    return save_host(path, m, h, step, opt_t0, seed, p, s, tf, err);
}

int checkpoint_save(const char *path, Trainer *t, int with_opt, TbErr *err) {
    size_t n = t->model.n_params;
    float *p = tb_malloc(n * sizeof(float));
    float *s = with_opt ? tb_malloc(2 * n * sizeof(float)) : NULL;
    t->be->get_params(t->be, p);
    if (s) t->be->get_opt_state(t->be, s, t->hyper.optimizer);
    int rc = save_host(path, &t->model, &t->hyper, t->step, t->opt_t0, t->seed, p, s, &t->tf, err);
    free(p);
    free(s);
    return rc;
}

int checkpoint_peek_spec(const char *path, ModelSpec *spec, TbErr *err) {
    StFile f;
    if (st_read(&f, path, err)) return -1;
    const char *arch = st_meta(&f, "arch");
    int rc = 0;
    if (!arch) {
        rc = tb_fail(err, "%s: no \"arch\" in the metadata (not a tabula checkpoint?)", path);
    } else {
        TbErr e2;
        if (model_arch_parse(spec, arch, &e2)) rc = tb_fail(err, "%s: %s", path, e2.msg);
    }
    st_free(&f);
    return rc;
}

// Copy tensor `name` of f into dst after checking dtype and shape.
static int take(const StFile *f, const char *path, const char *name, const Layer *L, int bias,
                float *dst, TbErr *err) {
    const StTensor *t = st_find(f, name);
    if (!t) return tb_fail(err, "%s: tensor \"%s\" is missing", path, name);
    if (strcmp(t->dtype, "F32") != 0)
        return tb_fail(err, "%s: tensor \"%s\" is %s, expected F32", path, name, t->dtype);
    int64_t shape[4];
    int nd = layer_shape(L, bias, shape);
    int ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[64], got[64];
        int o = 0;
        for (int i = 0; i < nd; i++) o += snprintf(want + o, sizeof want - (size_t)o, "%s%lld", i ? "," : "", (long long)shape[i]);
        o = 0;
        got[0] = 0;
        for (int i = 0; i < t->ndim && o < 60; i++)
            o += snprintf(got + o, sizeof got - (size_t)o, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        return tb_fail(err, "%s: tensor \"%s\" has shape (%s), the model needs (%s)", path, name, got, want);
    }
    memcpy(dst, t->data, t->nbytes);  // little-endian file, little-endian host
    return 0;
}

// A count in the metadata (absent = 0): digits only, at most 10^15. 0, or -1.
static int meta_count(const StFile *f, const char *key, long *out) {
    const char *v = st_meta(f, key);
    *out = 0;
    if (!v) return 0;
    size_t n = strlen(v);
    if (n == 0 || n > 15 || strspn(v, "0123456789") != n) return -1;
    *out = strtol(v, NULL, 10);
    return 0;
}

// The input transform in the metadata, if any: 1 with *tf filled, 0 if the file
// names none (older files), -1 with err naming the file (one this build does
// not know, a blur or jitter out of range).
static int meta_transform(const StFile *f, const char *path, Transform *tf, TbErr *err) {
    const char *kind = st_meta(f, "transform"), *jit = st_meta(f, "jitter");
    if (!kind) return 0;
    tf->kind = -1;
    for (int i = 0; i < TF_KINDS; i++)
        if (strcmp(kind, tf_name(i)) == 0) tf->kind = i;
    if (tf->kind < 0)
        return tb_fail(err, "%s: the network was trained with the input transform \"%.40s\", which this "
                       "tabula does not know (it knows " TF_CHOICES ")", path, kind);
    long blur = 1;
    if (st_meta(f, "blur") && (meta_count(f, "blur", &blur) || blur < 1 || blur > 64))
        return tb_fail(err, "%s: \"blur\" = \"%.40s\" is not a factor of 1 to 64", path, st_meta(f, "blur"));
    char *end = NULL;
    double j = jit ? strtod(jit, &end) : 0;
    if (jit && (end == jit || *end || !(j >= 0 && j <= 0.5)))
        return tb_fail(err, "%s: \"jitter\" = \"%.40s\" is not a number from 0 to 0.5", path, jit);
    tf->blur = (int)blur;
    tf->jitter = (float)j;
    return 1;
}

int checkpoint_load(const char *path, Trainer *t, TbErr *err) {
    StFile f;
    if (st_read(&f, path, err)) return -1;
    Transform tf;
    int has_tf = meta_transform(&f, path, &tf, err);
    if (has_tf < 0) {
        st_free(&f);
        return -1;
    }
    const Model *m = &t->model;
    size_t n = m->n_params;
    float *p = tb_malloc(n * sizeof(float));
    float *s = tb_calloc(2 * n, sizeof(float));
    int rc = 0;
    char name[64];
    for (int l = 0; l < m->n_layers && !rc; l++)
        for (int bias = 0; bias < 2 && !rc; bias++) {
            const Layer *L = &m->layers[l];
            snprintf(name, sizeof name, "%s.%s", L->name, bias ? "bias" : "weight");
            rc = take(&f, path, name, L, bias, p + (bias ? L->b_off : L->w_off), err);
        }
    // Optimizer state only if it is there and for the optimizer we run now.
    const char *opt = st_meta(&f, "optimizer");
    int want_adam = t->hyper.optimizer == OPT_ADAM;
    int have_state = !rc && st_find(&f, "opt.enc.0.weight") && opt &&
                     strcmp(opt, want_adam ? "adam" : "sgd") == 0;
    for (int l = 0; l < m->n_layers && have_state && !rc; l++)
        for (int bias = 0; bias < 2 && !rc; bias++) {
            const Layer *L = &m->layers[l];
            size_t off = bias ? L->b_off : L->w_off;
            snprintf(name, sizeof name, "opt.%s.%s", L->name, bias ? "bias" : "weight");
            rc = take(&f, path, name, L, bias, s + off, err);
            if (!rc && want_adam) {
                snprintf(name, sizeof name, "opt_v.%s.%s", L->name, bias ? "bias" : "weight");
                rc = take(&f, path, name, L, bias, s + n + off, err);
            }
        }
    if (!rc) {
        for (size_t i = 0; i < n && !rc; i++)
            if (!(p[i] == p[i]) || p[i] - p[i] != 0.0f)
                rc = tb_fail(err, "%s: weights contain NaN or infinity", path);
        for (size_t i = 0; have_state && i < 2 * n && !rc; i++)
            if (!(s[i] == s[i]) || s[i] - s[i] != 0.0f)
                rc = tb_fail(err, "%s: optimizer state contains NaN or infinity", path);
    }
    long step = 0, start = 0;
    if (!rc && have_state) {
        if (meta_count(&f, "step", &step) || meta_count(&f, "optimizer_start", &start) || start > step)
            rc = tb_fail(err, "%s: \"step\" or \"optimizer_start\" is not a count of steps", path);
    }
    if (!rc) {
        if (has_tf) t->tf = tf;  // a world brings the transform it was trained with
        t->tf_from_file = has_tf;
        t->be->set_params(t->be, p);
        if (have_state) {
            t->be->set_opt_state(t->be, s, t->hyper.optimizer);
            t->step = step;
            t->opt_t0 = start;
        } else {
            t->be->reset_opt_state(t->be);
            t->step = 0;
            t->opt_t0 = 0;
        }
    }
    free(p);
    free(s);
    st_free(&f);
    return rc;
}
