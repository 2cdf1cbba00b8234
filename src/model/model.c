/* model.c — reads hyperparameters and binds weight tensors for each supported architecture.
 * Every tensor's shape and type is checked here, so the forward pass can trust them. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/tensor_types.h"
#include "../kernels/quant.h"
#include "../util/error.h"

typedef struct {
    const gguf_file *f;
    const char *path;
    const char *arch;
} loader;

static int get_u32(loader *L, const char *suffix, int *out, bool required, int fallback) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    uint32_t v;
    if (!gguf_get_u32(L->f, key, &v)) {
        if (required) return lmz_fail("%s: model metadata lacks %s (or it is not an integer)", L->path, key);
        *out = fallback;
        return 0;
    }
    if (v > (1u << 30)) return lmz_fail("%s: model metadata %s = %u is absurd", L->path, key, v);
    *out = (int)v;
    return 0;
}

static int get_f32(loader *L, const char *suffix, float *out, bool required, float fallback) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    if (!gguf_get_f32(L->f, key, out)) {
        if (required) return lmz_fail("%s: model metadata lacks %s", L->path, key);
        *out = fallback;
    }
    return 0;
}

/* Binds tensor NAME, checking it has K x N elements (N = 1 for vectors) and a usable type. */
static int bind(loader *L, const char *name, int64_t k, int64_t n, bool required, lmz_weight *w) {
    memset(w, 0, sizeof *w);
    const gguf_tensor *t = gguf_find_tensor(L->f, name);
    if (!t) return required ? lmz_fail("%s: model lacks tensor %s", L->path, name) : 0;
    if ((int64_t)t->ne[0] != k || (int64_t)t->ne[1] != n || t->ne[2] != 1 || t->ne[3] != 1)
        return lmz_fail("%s: tensor %s has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]", L->path, name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                        (unsigned long long)t->ne[3], (long long)k, (long long)n);
    if (!lmz_type_supported(t->type))
        return lmz_fail("%s: tensor %s has type %s, which lmz cannot compute with yet", L->path, name,
                        lmz_type_name(t->type));
    w->data = t->data;
    w->type = t->type;
    w->k = k;
    w->n = n;
    w->row_bytes = (size_t)(t->nbytes / (uint64_t)n);
    return 0;
}

/* 1-D tensors used as plain float vectors (norm weights, biases) must be F32. */
static int bind_f32_vector(loader *L, const char *name, int64_t n, bool required, lmz_weight *w) {
    if (bind(L, name, n, 1, required, w)) return -1;
    if (w->data && w->type != LMZ_F32)
        return lmz_fail("%s: tensor %s has type %s; lmz expects F32 for 1-D tensors", L->path, name,
                        lmz_type_name(w->type));
    return 0;
}

static int load_layer(loader *L, lmz_model *m, int i, lmz_layer *ly) {
    char name[96];
    const int E = m->n_embd, D = m->head_dim, F = m->n_ff;
    const int QD = m->n_head * D, KD = m->n_head_kv * D;
    const bool gemma = m->arch == LMZ_ARCH_GEMMA3;
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s", i, s), name)
    if (bind_f32_vector(L, NAME("attn_norm.weight"), E, true, &ly->attn_norm) ||
        bind(L, NAME("attn_q.weight"), E, QD, true, &ly->wq) ||
        bind(L, NAME("attn_k.weight"), E, KD, true, &ly->wk) ||
        bind(L, NAME("attn_v.weight"), E, KD, true, &ly->wv) ||
        bind(L, NAME("attn_output.weight"), QD, E, true, &ly->wo) ||
        bind_f32_vector(L, NAME("ffn_norm.weight"), E, true, &ly->ffn_norm) ||
        bind(L, NAME("ffn_gate.weight"), E, F, true, &ly->w_gate) ||
        bind(L, NAME("ffn_up.weight"), E, F, true, &ly->w_up) ||
        bind(L, NAME("ffn_down.weight"), F, E, true, &ly->w_down) ||
        bind_f32_vector(L, NAME("attn_q_norm.weight"), D, gemma, &ly->q_norm) ||
        bind_f32_vector(L, NAME("attn_k_norm.weight"), D, gemma, &ly->k_norm) ||
        bind_f32_vector(L, NAME("post_attention_norm.weight"), E, gemma, &ly->post_attn_norm) ||
        bind_f32_vector(L, NAME("post_ffw_norm.weight"), E, gemma, &ly->post_ffn_norm))
        return -1;
    lmz_weight b;
    if (bind_f32_vector(L, NAME("attn_q.bias"), QD, false, &b)) return -1;
    ly->bq = b.data;
    if (bind_f32_vector(L, NAME("attn_k.bias"), KD, false, &b)) return -1;
    ly->bk = b.data;
    if (bind_f32_vector(L, NAME("attn_v.bias"), KD, false, &b)) return -1;
    ly->bv = b.data;
#undef NAME
    return 0;
}

lmz_model *lmz_model_load(const char *path) {
    gguf_file *f = gguf_open(path);
    if (!f) return NULL;
    lmz_model *m = lmz_calloc(1, sizeof *m);
    if (!m) {
        gguf_close(f);
        return NULL;
    }
    m->file = f;
    snprintf(m->path, sizeof m->path, "%s", path);

    gguf_str s;
    if (!gguf_get_str(f, "general.architecture", &s)) {
        lmz_fail("%s: not a model file (no general.architecture)", path);
        goto fail;
    }
    snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)(s.len < 31 ? s.len : 31), s.ptr);
    gguf_str type;
    if (gguf_get_str(f, "general.type", &type) && !(type.len == 5 && !memcmp(type.ptr, "model", 5))) {
        lmz_fail("%s: this GGUF file is a '%.*s', not a model", path, (int)(type.len > 40 ? 40 : type.len), type.ptr);
        goto fail;
    }
    if (gguf_get_str(f, "general.name", &s))
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);
    if (!strcmp(m->arch_name, "llama")) m->arch = LMZ_ARCH_LLAMA;
    else if (!strcmp(m->arch_name, "qwen2")) m->arch = LMZ_ARCH_QWEN2;
    else if (!strcmp(m->arch_name, "gemma3")) m->arch = LMZ_ARCH_GEMMA3;
    else {
        lmz_fail("%s: unsupported architecture '%s' (lmz runs llama, qwen2 and gemma3)", path, m->arch_name);
        goto fail;
    }

    loader L = {f, path, m->arch_name};
    float rope_base, rope_base_swa, rope_factor;
    if (get_u32(&L, "embedding_length", &m->n_embd, true, 0) || get_u32(&L, "block_count", &m->n_layer, true, 0) ||
        get_u32(&L, "feed_forward_length", &m->n_ff, true, 0) ||
        get_u32(&L, "attention.head_count", &m->n_head, true, 0) ||
        get_u32(&L, "context_length", &m->n_ctx_train, true, 0) ||
        get_u32(&L, "attention.head_count_kv", &m->n_head_kv, false, m->n_head) ||
        get_f32(&L, "attention.layer_norm_rms_epsilon", &m->rms_eps, true, 0) ||
        get_f32(&L, "rope.freq_base", &rope_base, false, 10000.0f) ||
        get_f32(&L, "rope.freq_base_swa", &rope_base_swa, false, 10000.0f) ||
        get_f32(&L, "rope.scaling.factor", &rope_factor, false, 0.0f) ||
        get_f32(&L, "final_logit_softcapping", &m->logit_softcap, false, 0.0f))
        goto fail;
    if (m->n_embd < 1 || m->n_layer < 1 || m->n_head < 1 || m->n_head_kv < 1 || m->n_ff < 1 ||
        m->n_head % m->n_head_kv || m->n_layer > 1024) {
        lmz_fail("%s: inconsistent model dimensions", path);
        goto fail;
    }
    if (get_u32(&L, "attention.key_length", &m->head_dim, false, m->n_embd / m->n_head) ||
        get_u32(&L, "rope.dimension_count", &m->n_rot, false, 0))
        goto fail;
    if (m->n_rot == 0) m->n_rot = m->head_dim;
    if (m->head_dim < 2 || m->head_dim % 2 || m->n_rot > m->head_dim || m->n_rot % 2 || m->head_dim > 1024) {
        lmz_fail("%s: unsupported head dimension %d / rope dimension %d", path, m->head_dim, m->n_rot);
        goto fail;
    }
    int value_length;
    if (get_u32(&L, "attention.value_length", &value_length, false, m->head_dim)) goto fail;
    if (value_length != m->head_dim) {
        lmz_fail("%s: key and value head sizes differ (%d, %d); not supported", path, m->head_dim, value_length);
        goto fail;
    }

    enum gguf_value_type et;
    uint64_t n_tokens;
    if (!gguf_get_array(f, "tokenizer.ggml.tokens", &et, &n_tokens) || n_tokens == 0 || n_tokens > (1u << 24)) {
        lmz_fail("%s: model has no usable tokenizer.ggml.tokens", path);
        goto fail;
    }
    m->n_vocab = (int)n_tokens;

    m->rope_kind = m->arch == LMZ_ARCH_LLAMA ? LMZ_ROPE_NORMAL : LMZ_ROPE_NEOX;
    m->embd_scale = 1.0f;
    m->kq_scale = (float)(1.0 / sqrt((double)m->head_dim));
    m->q_scale = 1.0f;
    int swa_pattern = 6;
    if (m->arch == LMZ_ARCH_GEMMA3) {
        if (get_u32(&L, "attention.sliding_window", &m->n_swa, false, 0) ||
            get_u32(&L, "attention.sliding_window_pattern", &swa_pattern, false, 6))
            goto fail;
        m->gelu = true;
        m->embd_scale = (float)sqrt((double)m->n_embd);
        /* Gemma 3 scales queries by 1/sqrt(head_dim) (1/sqrt(n_embd/n_head) for the 62-layer 27B). */
        m->q_scale = m->n_layer == 62 ? (float)(1.0 / sqrt((double)m->n_embd / m->n_head)) : m->kq_scale;
        m->kq_scale = 1.0f;
    }

    if (bind(&L, "token_embd.weight", m->n_embd, m->n_vocab, true, &m->token_embd) ||
        bind_f32_vector(&L, "output_norm.weight", m->n_embd, true, &m->output_norm) ||
        bind(&L, "output.weight", m->n_embd, m->n_vocab, false, &m->output))
        goto fail;
    if (!m->output.data) m->output = m->token_embd; /* tied embeddings */
    lmz_weight ob;
    if (bind_f32_vector(&L, "output.bias", m->n_vocab, false, &ob)) goto fail;
    m->output_bias = ob.data;

    m->layers = lmz_calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers) goto fail;
    for (int i = 0; i < m->n_layer; i++) {
        lmz_layer *ly = &m->layers[i];
        if (load_layer(&L, m, i, ly)) goto fail;
        ly->rope_base = rope_base;
        ly->rope_scale = rope_factor > 0 ? 1.0f / rope_factor : 1.0f;
        if (m->arch == LMZ_ARCH_GEMMA3 && m->n_swa > 0 && swa_pattern > 0 && i % swa_pattern < swa_pattern - 1) {
            ly->is_swa = true;
            ly->rope_base = rope_base_swa;
            ly->rope_scale = 1.0f;
        }
    }
    return m;
fail:
    lmz_model_free(m);
    return NULL;
}

void lmz_model_free(lmz_model *m) {
    if (!m) return;
    free(m->layers);
    gguf_close(m->file);
    free(m);
}
