/* model.h — a transformer loaded from GGUF, and the context that runs it.
 *
 * lmz_model binds hyperparameters and weight tensors (used in place from the mmap) for
 * the architectures lmz supports: llama, qwen2, gemma3 (gguf-spec.md §3–4). lmz_ctx owns
 * a KV cache for one or more independent sequences and evaluates batches of tokens;
 * the logits it returns are bit-identical whatever the batch composition, the thread
 * count or the ISA (docs/determinism.md). */
#ifndef LMZ_MODEL_H
#define LMZ_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "../gguf/gguf.h"

enum lmz_arch { LMZ_ARCH_LLAMA, LMZ_ARCH_QWEN2, LMZ_ARCH_GEMMA3 };
enum lmz_rope_kind { LMZ_ROPE_NORMAL, LMZ_ROPE_NEOX };

/* A weight matrix with n rows of k elements (ggml ne = [k, n]) in its stored type. */
typedef struct {
    const void *data;
    uint32_t type;
    int64_t k, n;
    size_t row_bytes;
} lmz_weight;

typedef struct {
    lmz_weight attn_norm, wq, wk, wv, wo, q_norm, k_norm, post_attn_norm;
    lmz_weight ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
    const float *bq, *bk, *bv;   /* optional biases (qwen2) */
    bool is_swa;                 /* sliding-window layer (gemma3 local) */
    float rope_base, rope_scale; /* per layer: gemma3 local and global layers differ */
} lmz_layer;

typedef struct {
    enum lmz_arch arch;
    char arch_name[32];
    char name[128];              /* general.name */
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train, n_rot;
    float rms_eps;
    enum lmz_rope_kind rope_kind;
    int n_swa;                   /* 0: no sliding window */
    float embd_scale;            /* 1, or sqrt(n_embd) for gemma3 */
    float q_scale;               /* applied to q after RoPE; attention then uses kq_scale */
    float kq_scale;
    float logit_softcap;         /* 0: none */
    bool gelu;                   /* GeGLU (gemma3) instead of SwiGLU */

    lmz_weight token_embd, output, output_norm;
    const float *output_bias;
    lmz_layer *layers;

    gguf_file *file;
    char path[4096];
} lmz_model;

/* Loads a model; NULL and lmz_last_error() on failure (missing tensor, wrong shape,
 * unsupported type or architecture, ...). */
lmz_model *lmz_model_load(const char *path);
void lmz_model_free(lmz_model *m);

typedef struct lmz_ctx lmz_ctx;

/* A context with room for N_SEQ sequences of up to N_CTX positions each, evaluated on
 * N_THREADS threads (>= 1). */
lmz_ctx *lmz_ctx_create(const lmz_model *m, int n_ctx, int n_seq, int n_threads);
void lmz_ctx_free(lmz_ctx *c);
int lmz_ctx_n_ctx(const lmz_ctx *c);
const lmz_model *lmz_ctx_model(const lmz_ctx *c);
/* The context's thread pool, for callers that parallelize their own per-sequence work. */
struct lmz_pool *lmz_ctx_pool(lmz_ctx *c);
/* Applies the LoRA adapter LORA (src/lora/lora.h), which must have been loaded or made for
 * this context's model, to every evaluation from now on; NULL removes it. The adapter is
 * read in place, not copied: it must outlive its use, and changes to its weights apply from
 * the next evaluation. Every sequence's cached positions are forgotten, since they were
 * computed with the previous adapter. 0, or -1 + lmz_fail. */
struct lmz_lora;
int lmz_ctx_set_lora(lmz_ctx *c, const struct lmz_lora *lora);
/* Forgets the cached positions of a sequence. */
void lmz_ctx_reset_seq(lmz_ctx *c, int seq);
/* Forgets every sequence's cached positions and returns the cache's memory to the system;
 * it comes back, page by page, as positions are written. A caller that reuses one context
 * for many short-lived sequences (the codec's chunk groups) keeps its resident set at what
 * the current sequences hold, not at the most any of them ever held. */
void lmz_ctx_release_kv(lmz_ctx *c);
/* Bytes of K and V cache that one position of one sequence takes (every layer, fp16). */
size_t lmz_kv_bytes_per_position(const lmz_model *m);
int lmz_ctx_seq_len(const lmz_ctx *c, int seq);

/* A batch: token i goes to sequence seq[i] at position pos[i]. Within a batch, positions
 * of one sequence must increase, and each must be <= the sequence's current length
 * (a smaller one rewinds it). want_logits[i] != 0 requests the logits of token i (NULL:
 * all tokens); they are written to LOGITS in batch order, n_vocab floats each. */
typedef struct {
    int n_tokens;
    const int32_t *token, *pos, *seq;
    const uint8_t *want_logits;
} lmz_batch;

int lmz_decode(lmz_ctx *c, const lmz_batch *b, float *logits);

/* Convenience: evaluates TOKENS[0..n) as one sequence SEQ starting at position START,
 * writing logits for every token (n * n_vocab floats) when LOGITS is not NULL. The input
 * is split into internal batches; the result does not depend on that split. */
int lmz_eval(lmz_ctx *c, int seq, const int32_t *tokens, int n, int start, float *logits);

#endif
