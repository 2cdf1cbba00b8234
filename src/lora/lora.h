/* lora.h — LoRA adapters: the in-memory form the forward pass applies, loading and checking
 * llama.cpp's GGUF adapter files against a base model, and writing them.
 *
 * This module owns everything about an adapter except its application, which is in
 * src/model/forward.c (lmz_ctx_set_lora): y = W x + scale * B (A x) for every adapted
 * weight, unmerged, in f32 with the canonical dot product, so logits stay bit-identical
 * across threads, batching and ISAs (docs/determinism.md).
 *
 * File format (gguf-spec.md §6, llama.cpp's convert_lora_to_gguf.py): general.type
 * "adapter", adapter.type "lora", adapter.lora.alpha (f32; absent means 0),
 * general.architecture of the base; for each adapted base tensor NAME, the tensors
 * NAME.lora_a and NAME.lora_b. Tensors named *_norm.weight are skipped, as llama.cpp
 * skips them (mergekit puts layer norms there), so lmz computes what llama.cpp computes.
 * An adapter on token_embd.weight changes the input embeddings only, also where the output
 * head is tied to them (as in PEFT; llama.cpp looks the tied head up by the same name and
 * fails on the shapes); output.weight can be adapted only where the file has that tensor.
 *
 * The weights are plain f32 arrays that a trainer may update in place; the adapter's
 * fingerprint (sha256) is that of the file it was loaded from or last saved to, and it is
 * what archives record, so an adapter changed in memory must be saved before it is used
 * for compression. */
#ifndef LMZ_LORA_H
#define LMZ_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../model/model.h"
#include "../runtime/threadpool.h"

/* The per-layer projections an adapter may target. */
enum lmz_lora_target {
    LMZ_LORA_ATTN_Q, LMZ_LORA_ATTN_K, LMZ_LORA_ATTN_V, LMZ_LORA_ATTN_OUT,
    LMZ_LORA_FFN_GATE, LMZ_LORA_FFN_UP, LMZ_LORA_FFN_DOWN,
    LMZ_LORA_N_TARGETS
};

/* One adapted base weight W (ggml ne = [n_in, n_out]: n_out rows of n_in), in the GGUF
 * tensors' own memory layout (ne[0] contiguous), f32:
 *   a projection or output.weight:  a = rank rows of n_in   (NAME.lora_a, ne [n_in, rank];
 *                                                            PEFT lora_A)
 *                                   b = n_out rows of rank  (NAME.lora_b, ne [rank, n_out];
 *                                                            PEFT lora_B)
 *                                   y = W x + scale * (b (a x))
 *   token_embd.weight (embedding):  a = n_out (vocabulary) rows of rank, row t for token t
 *                                   (ne [rank, n_vocab], PEFT lora_embedding_A transposed)
 *                                   b = n_in (n_embd) rows of rank (ne [rank, n_embd])
 *                                   embd(t) = W[t] + scale * (b a[t])                    */
typedef struct {
    char name[64];   /* the base tensor, e.g. "blk.3.attn_q.weight" */
    bool embedding;  /* token_embd.weight: the layout above */
    int rank;
    int64_t n_in, n_out;
    float *a, *b;    /* owned */
    float scale;     /* alpha / rank, or 1 when alpha is 0 (llama.cpp's get_scale, user scale 1) */
} lmz_lora_weight;

typedef struct lmz_lora {
    char arch[32];               /* general.architecture: the base model's */
    float alpha;                 /* adapter.lora.alpha */
    int n_weights;
    lmz_lora_weight **weights;   /* owned, in file order; each stays where it is */
    const lmz_model *model;      /* the base it was checked against and binds to */
    /* Lookup for the forward pass, NULL where a weight is not adapted. */
    lmz_lora_weight **layer;     /* [layer * LMZ_LORA_N_TARGETS + target] */
    lmz_lora_weight *token_embd, *output;
    int max_rank;
    uint8_t sha256[32];          /* of the file loaded or last saved; all zero: never saved */
} lmz_lora;

/* Loads the adapter file PATH and checks it against BASE: general.type and adapter.type,
 * the architecture, that every NAME.lora_a has its NAME.lora_b and the reverse, that NAME
 * is a weight of BASE that lmz adapts, with matching shapes; tensor types F32, F16, BF16
 * or any quantized type lmz computes with (converted to f32 exactly). NULL and
 * lmz_last_error() on failure, naming the tensor at fault. */
lmz_lora *lmz_lora_load(const char *path, const lmz_model *base);
/* The same from memory (not kept); the fingerprint is the buffer's SHA-256. */
lmz_lora *lmz_lora_load_buffer(const void *data, size_t size, const char *label, const lmz_model *base);

/* An empty adapter for BASE (to be filled with lmz_lora_add; for training and tests). */
lmz_lora *lmz_lora_new(const lmz_model *base, float alpha);
/* Adds an adapter of RANK for the base weight BASE_TENSOR, with A and B zero, and returns
 * it (owned by L). NULL + lmz_fail when the tensor is not one lmz adapts, or is already
 * adapted. */
lmz_lora_weight *lmz_lora_add(lmz_lora *l, const char *base_tensor, int rank);
void lmz_lora_free(lmz_lora *l);

/* The adapter as a GGUF v3 file in memory (malloc'd), tensors of TYPE (LMZ_F32 or
 * LMZ_F16, rounded to nearest even). Writes what the struct holds without checking it
 * against a model, so tests can write malformed adapters too. 0, or -1 + lmz_fail. */
int lmz_lora_serialize(const lmz_lora *l, uint32_t type, uint8_t **data, size_t *size);
/* Writes the adapter to PATH (through a temporary file renamed into place) and sets
 * l->sha256 to the file's. With LMZ_F16 the weights in memory are first rounded to the
 * values the file holds, so that the fingerprint describes exactly what is computed. */
int lmz_lora_save(lmz_lora *l, const char *path, uint32_t type);

/* The adapter's term for N_TOK input rows (x rows W->n_in apart, y rows LDY apart, y holding
 * W x on entry): z_t = A x_t, then y[t][j] = y[t][j] + scale * (b_j . z_t), each dot product
 * the canonical f32 one (the bits of lmz_vec_dot), in that fixed order, as llama.cpp adds
 * scale * B (A x) to W x. Z is scratch for n_tok * W->rank floats. POOL (NULL: this thread)
 * splits the work by outputs, so the bits depend neither on the thread count nor on which
 * tokens share a call. */
void lmz_lora_apply(const lmz_lora_weight *w, const float *x, int n_tok, float *y, int64_t ldy, float *z,
                    lmz_pool *pool);
/* token_embd's term for TOKEN, added to its looked-up embedding X (n_embd values):
 * x[i] = x[i] + scale * (b_i . a[token]). */
void lmz_lora_apply_embedding(const lmz_lora_weight *w, int32_t token, float *x);

static inline const lmz_lora_weight *lmz_lora_layer_weight(const lmz_lora *l, int layer, enum lmz_lora_target t) {
    return l ? l->layer[(size_t)layer * LMZ_LORA_N_TARGETS + t] : NULL;
}

#endif
