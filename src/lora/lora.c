/* lora.c — LoRA adapters in memory, and loading them from GGUF (see lora.h). Every tensor
 * is checked against the base model before anything is kept, so the forward pass can
 * trust the shapes; weights are converted to f32 once, here. */
#include "lora.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/tensor_types.h"
#include "../kernels/quant.h"
#include "../kernels/vecf.h"
#include "../util/error.h"
#include "../util/sha256.h"

/* Slots of the two weights outside the layers (layer slots are layer * N_TARGETS + target). */
#define SLOT_TOKEN_EMBD (-1L)
#define SLOT_OUTPUT (-2L)

static const char *const target_suffix[LMZ_LORA_N_TARGETS] = {
    "attn_q.weight",   "attn_k.weight", "attn_v.weight",  "attn_output.weight",
    "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
};

static const lmz_weight *layer_weight(const lmz_layer *L, enum lmz_lora_target t) {
    switch (t) {
    case LMZ_LORA_ATTN_Q: return &L->wq;
    case LMZ_LORA_ATTN_K: return &L->wk;
    case LMZ_LORA_ATTN_V: return &L->wv;
    case LMZ_LORA_ATTN_OUT: return &L->wo;
    case LMZ_LORA_FFN_GATE: return &L->w_gate;
    case LMZ_LORA_FFN_UP: return &L->w_up;
    default: return &L->w_down;
    }
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Where the base tensor NAME is used in M's forward pass (*slot) and its shape, or -1 with
 * a message when M has no such tensor or lmz does not adapt it. */
static int locate(const lmz_model *m, const char *label, const char *name, long *slot, int64_t *n_in,
                  int64_t *n_out) {
    if (!gguf_find_tensor(m->file, name))
        return lmz_fail("%s: adapter tensor %s does not exist in the base model %s (is the adapter for another "
                        "base model?)", label, name, m->path);
    const lmz_weight *w = NULL;
    if (!strcmp(name, "token_embd.weight")) {
        *slot = SLOT_TOKEN_EMBD;
        w = &m->token_embd;
    } else if (!strcmp(name, "output.weight")) {
        /* Only a separate output head: with tied embeddings the file has no output.weight,
         * and an adapter on token_embd.weight changes the input embeddings only (as in PEFT). */
        *slot = SLOT_OUTPUT;
        w = &m->output;
    } else if (!strncmp(name, "blk.", 4)) {
        char *end;
        long layer = isdigit((unsigned char)name[4]) ? strtol(name + 4, &end, 10) : -1;
        if (layer >= 0 && layer < m->n_layer && *end == '.')
            for (int t = 0; t < LMZ_LORA_N_TARGETS && !w; t++)
                if (!strcmp(end + 1, target_suffix[t])) {
                    *slot = layer * LMZ_LORA_N_TARGETS + t;
                    w = layer_weight(&m->layers[layer], (enum lmz_lora_target)t);
                }
    }
    if (!w)
        return lmz_fail("%s: adapter tensor %s: lmz applies adapters to the attention and feed-forward projections "
                        "(attn_q/k/v/output, ffn_gate/up/down), token_embd.weight and output.weight, not to %s",
                        label, name, name);
    *n_in = w->k;
    *n_out = w->n;
    return 0;
}

lmz_lora *lmz_lora_new(const lmz_model *base, float alpha) {
    lmz_lora *l = lmz_calloc(1, sizeof *l);
    if (!l) return NULL;
    l->model = base;
    l->alpha = alpha;
    snprintf(l->arch, sizeof l->arch, "%s", base->arch_name);
    l->layer = lmz_calloc((size_t)base->n_layer * LMZ_LORA_N_TARGETS, sizeof *l->layer);
    if (!l->layer) {
        free(l);
        return NULL;
    }
    return l;
}

void lmz_lora_free(lmz_lora *l) {
    if (!l) return;
    for (int i = 0; i < l->n_weights; i++) {
        free(l->weights[i]->a);
        free(l->weights[i]->b);
        free(l->weights[i]);
    }
    free(l->weights);
    free(l->layer);
    free(l);
}

static lmz_lora_weight *add_checked(lmz_lora *l, const char *label, const char *name, int rank) {
    long slot;
    int64_t n_in, n_out;
    if (locate(l->model, label, name, &slot, &n_in, &n_out)) return NULL;
    if (rank < 1 || rank > (1 << 20)) {
        lmz_fail("%s: adapter for %s has rank %d", label, name, rank);
        return NULL;
    }
    lmz_lora_weight **at = slot == SLOT_TOKEN_EMBD ? &l->token_embd
                           : slot == SLOT_OUTPUT   ? &l->output
                                                   : &l->layer[slot];
    if (*at) {
        lmz_fail("%s: %s is adapted twice", label, name);
        return NULL;
    }
    lmz_lora_weight **grown = lmz_realloc(l->weights, (size_t)(l->n_weights + 1) * sizeof *grown);
    if (!grown) return NULL;
    l->weights = grown;
    lmz_lora_weight *w = lmz_calloc(1, sizeof *w);
    if (!w) return NULL;
    snprintf(w->name, sizeof w->name, "%s", name);
    w->embedding = slot == SLOT_TOKEN_EMBD;
    w->rank = rank;
    w->n_in = n_in;
    w->n_out = n_out;
    /* llama.cpp's get_scale with the user scale 1: alpha / rank, or 1 when alpha is 0. */
    w->scale = l->alpha != 0.0f ? l->alpha / (float)rank : 1.0f;
    w->a = lmz_calloc((size_t)rank * (size_t)(w->embedding ? n_out : n_in), sizeof(float));
    w->b = lmz_calloc((size_t)rank * (size_t)(w->embedding ? n_in : n_out), sizeof(float));
    if (!w->a || !w->b) {
        free(w->a);
        free(w->b);
        free(w);
        return NULL;
    }
    l->weights[l->n_weights++] = w;
    *at = w;
    if (rank > l->max_rank) l->max_rank = rank;
    return w;
}

lmz_lora_weight *lmz_lora_add(lmz_lora *l, const char *base_tensor, int rank) {
    return add_checked(l, "adapter", base_tensor, rank);
}

/* ---------------- application ---------------- */

#define ROW_GRAIN 16  /* output rows per work unit at least */
#define ROW_BATCH 256 /* output rows per lmz_vec_dot_rows call */

typedef struct {
    const lmz_lora_weight *w;
    const float *x;
    float *z;
    float *y;
    int64_t ldy;
    int n_tok;
} apply_task;

/* z[t][r] = a_r . x_t for items t * rank + r in [b, e). */
static void project_a(void *p, long b, long e, int ith) {
    (void)ith;
    const apply_task *t = p;
    const lmz_lora_weight *w = t->w;
    for (long item = b; item < e; item++) {
        long tok = item / w->rank, r = item % w->rank;
        t->z[item] = lmz_vec_dot(w->a + r * w->n_in, t->x + tok * w->n_in, w->n_in);
    }
}

/* y[t][j] = y[t][j] + scale * (b_j . z_t) for output rows j in [r0, r1), every token. These
 * dot products are as short as the rank and there are n_out of them per token, so they go
 * many rows per call (lmz_vec_dot_rows: the canonical dot's bits, rows side by side). */
static void project_b(void *p, long r0, long r1, int ith) {
    (void)ith;
    const apply_task *t = p;
    const lmz_lora_weight *w = t->w;
    float dots[ROW_BATCH];
    for (long j0 = r0; j0 < r1; j0 += ROW_BATCH) {
        long n = r1 - j0 < ROW_BATCH ? r1 - j0 : ROW_BATCH;
        for (int tok = 0; tok < t->n_tok; tok++) {
            float *y = t->y + (size_t)tok * t->ldy + j0;
            lmz_vec_dot_rows(w->b + j0 * w->rank, n, w->rank, t->z + (size_t)tok * w->rank, dots);
            for (long j = 0; j < n; j++) y[j] = y[j] + w->scale * dots[j];
        }
    }
}

void lmz_lora_apply(const lmz_lora_weight *w, const float *x, int n_tok, float *y, int64_t ldy, float *z,
                    lmz_pool *pool) {
    apply_task t = {w, x, z, y, ldy, n_tok};
    lmz_pool_for(pool, (long)n_tok * w->rank, w->rank, project_a, &t);
    long grain = (long)(w->n_out / (8L * lmz_pool_size(pool)));
    lmz_pool_for(pool, (long)w->n_out, grain < ROW_GRAIN ? ROW_GRAIN : grain, project_b, &t);
}

void lmz_lora_apply_embedding(const lmz_lora_weight *w, int32_t token, float *x) {
    const float *a_row = w->a + (size_t)token * w->rank;
    for (int64_t i = 0; i < w->n_in; i++)
        x[i] = x[i] + w->scale * lmz_dot_canon_scalar(w->b + i * w->rank, a_row, w->rank);
}

/* ---------------- loading ---------------- */

static bool str_is(gguf_str s, const char *want) { return s.len == strlen(want) && !memcmp(s.ptr, want, s.len); }

/* S as a printable C string for messages (cut at 40 bytes). */
static const char *shown(gguf_str s, char out[48]) {
    snprintf(out, 48, "%.*s%s", (int)(s.len > 40 ? 40 : s.len), s.ptr, s.len > 40 ? "..." : "");
    return out;
}

static int check_metadata(const gguf_file *f, const char *label, const lmz_model *base, float *alpha) {
    gguf_str s;
    char buf[48];
    if (!gguf_get_str(f, "general.type", &s))
        return lmz_fail("%s: not a LoRA adapter (no general.type; an adapter has general.type = adapter)", label);
    if (!str_is(s, "adapter"))
        return lmz_fail("%s: not a LoRA adapter: general.type is '%s', expected 'adapter'%s", label, shown(s, buf),
                        str_is(s, "model") ? " (this is a model file; give it with -m)" : "");
    if (!gguf_get_str(f, "general.architecture", &s))
        return lmz_fail("%s: the adapter does not say which architecture it is for (no general.architecture)", label);
    if (!str_is(s, base->arch_name))
        return lmz_fail("%s: the adapter is for architecture '%s', but the model %s is '%s'", label, shown(s, buf),
                        base->path, base->arch_name);
    if (!gguf_get_str(f, "adapter.type", &s))
        return lmz_fail("%s: the adapter has no adapter.type (expected 'lora')", label);
    if (!str_is(s, "lora"))
        return lmz_fail("%s: adapter.type is '%s'; lmz loads only 'lora' adapters", label, shown(s, buf));
    if (gguf_find_key(f, "adapter.alora.invocation_tokens") >= 0)
        return lmz_fail("%s: activated LoRA adapters (adapter.alora.invocation_tokens) are not supported", label);
    *alpha = 0.0f; /* absent: 0, as llama.cpp, which then scales by 1 */
    int k = gguf_find_key(f, "adapter.lora.alpha");
    if (k >= 0) {
        enum gguf_value_type t = gguf_key_type(f, k);
        if ((t != GGUF_FLOAT32 && t != GGUF_FLOAT64) || !gguf_get_f32(f, "adapter.lora.alpha", alpha))
            return lmz_fail("%s: adapter.lora.alpha must be a float (value type %d)", label, (int)t);
        if (!isfinite(*alpha)) return lmz_fail("%s: adapter.lora.alpha is not finite", label);
    }
    return 0;
}

/* Copies tensor T (ne[1] rows of ne[0]) into OUT as f32, rejecting non-finite values. */
static int to_f32(const char *label, const gguf_tensor *t, float *out) {
    size_t row_bytes = (size_t)(t->nbytes / t->ne[1]);
    for (uint64_t r = 0; r < t->ne[1]; r++) {
        float *row = out + r * t->ne[0];
        lmz_dequantize_row(t->type, (const uint8_t *)t->data + r * row_bytes, (int64_t)t->ne[0], row);
        for (uint64_t i = 0; i < t->ne[0]; i++)
            if (!isfinite(row[i]))
                return lmz_fail("%s: adapter tensor %s holds a non-finite value (element %llu of row %llu)", label,
                                t->name, (unsigned long long)i, (unsigned long long)r);
    }
    return 0;
}

static int check_tensor(const char *label, const gguf_tensor *t, uint64_t ne0, uint64_t ne1, const char *role,
                        const char *base_name, int64_t n_in, int64_t n_out) {
    if (!lmz_type_supported(t->type))
        return lmz_fail("%s: adapter tensor %s has type %s, which lmz cannot read (F32, F16, BF16 and the quantized "
                        "types of models lmz runs are)", label, t->name, lmz_type_name(t->type));
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return lmz_fail("%s: adapter tensor %s has shape [%llu, %llu, %llu, %llu], expected [%llu, %llu] (%s) for "
                        "the base tensor %s of shape [%lld, %lld] (is the adapter for another base model?)",
                        label, t->name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                        (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (unsigned long long)ne0,
                        (unsigned long long)ne1, role, base_name, (long long)n_in, (long long)n_out);
    return 0;
}

/* Adds the pair A = NAME.lora_a, B = NAME.lora_b to L. */
static int load_pair(lmz_lora *l, const char *label, const char *name, const gguf_tensor *a, const gguf_tensor *b) {
    long slot;
    int64_t n_in, n_out;
    if (locate(l->model, label, name, &slot, &n_in, &n_out)) return -1;
    bool embedding = slot == SLOT_TOKEN_EMBD;
    /* The rank is lora_b's ne[0] in both layouts (llama.cpp takes it from there too). */
    uint64_t rank = b->ne[0];
    if (rank < 1 || rank > (1u << 20))
        return lmz_fail("%s: adapter tensor %s has rank %llu", label, b->name, (unsigned long long)rank);
    if (embedding) {
        if (check_tensor(label, a, rank, (uint64_t)n_out, "[rank, n_vocab]", name, n_in, n_out) ||
            check_tensor(label, b, rank, (uint64_t)n_in, "[rank, n_embd]", name, n_in, n_out))
            return -1;
    } else if (check_tensor(label, a, (uint64_t)n_in, rank, "[n_in, rank], rank from lora_b", name, n_in, n_out) ||
               check_tensor(label, b, rank, (uint64_t)n_out, "[rank, n_out]", name, n_in, n_out)) {
        return -1;
    }
    lmz_lora_weight *w = add_checked(l, label, name, (int)rank);
    if (!w) return -1;
    return to_f32(label, a, w->a) || to_f32(label, b, w->b) ? -1 : 0;
}

static int load_tensors(lmz_lora *l, const gguf_file *f, const char *label) {
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        bool is_a = ends_with(t->name, ".lora_a"), is_b = ends_with(t->name, ".lora_b");
        if (!is_a && !is_b) {
            if (ends_with(t->name, "_norm.weight")) continue; /* skipped by llama.cpp too (lora.h) */
            return lmz_fail("%s: unexpected tensor %s in the adapter (expected NAME.lora_a and NAME.lora_b)", label,
                            t->name);
        }
        char name[64], other[72];
        size_t base_len = strlen(t->name) - strlen(".lora_a");
        snprintf(name, sizeof name, "%.*s", (int)base_len, t->name);
        snprintf(other, sizeof other, "%s.lora_%c", name, is_a ? 'b' : 'a');
        const gguf_tensor *pair = gguf_find_tensor(f, other);
        if (!pair)
            return lmz_fail("%s: adapter tensor %s has no matching %s: the pair for %s is incomplete", label, t->name,
                            other, name);
        if (is_a && load_pair(l, label, name, t, pair)) return -1; /* each pair once, from its lora_a */
    }
    return 0;
}

lmz_lora *lmz_lora_load_buffer(const void *data, size_t size, const char *label, const lmz_model *base) {
    gguf_file *f = gguf_open_buffer(data, size, label);
    if (!f) return NULL;
    float alpha;
    lmz_lora *l = check_metadata(f, label, base, &alpha) ? NULL : lmz_lora_new(base, alpha);
    if (l && (load_tensors(l, f, label) ||
              (l->n_weights == 0 && lmz_fail("%s: the adapter has no NAME.lora_a / NAME.lora_b tensors", label)))) {
        lmz_lora_free(l);
        l = NULL;
    }
    gguf_close(f);
    if (l) {
        lmz_sha256 h;
        lmz_sha256_init(&h);
        lmz_sha256_update(&h, data, size);
        lmz_sha256_final(&h, l->sha256);
    }
    return l;
}

lmz_lora *lmz_lora_load(const char *path, const lmz_model *base) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        lmz_fail("cannot open the adapter %s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    bool ok = true;
    for (;;) {
        if (size == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            uint8_t *grown = lmz_realloc(data, cap);
            if (!grown) {
                ok = false;
                break;
            }
            data = grown;
        }
        size_t got = fread(data + size, 1, cap - size, fp);
        size += got;
        if (got == 0) break;
    }
    if (ok && ferror(fp)) {
        lmz_fail("cannot read the adapter %s: %s", path, strerror(errno));
        ok = false;
    }
    fclose(fp);
    lmz_lora *l = ok ? lmz_lora_load_buffer(data, size, path, base) : NULL;
    free(data);
    return l;
}
