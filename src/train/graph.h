/* graph.h — the training forward and backward pass through a model with a LoRA adapter.
 *
 * This module owns the math of training: a forward pass in f32 that keeps what the
 * backward pass needs, the next-token cross-entropy, and the backward pass that gives the
 * gradients of the adapter's A and B (the base weights are frozen and get none). It covers
 * the three architectures lmz runs (llama, qwen2, gemma3): RMSNorm, Q/K/V biases, normal
 * and NEOX RoPE, QK-norm, causal softmax attention with GQA and sliding windows, SwiGLU and
 * GeGLU, post-attention/post-FFN norms, the embedding scale, tied or separate output head
 * with bias and logit softcap.
 *
 * Base weights stay quantized in the mmap. A projection is computed on exactly dequantized
 * rows in f32 (y = W x; dx = W^T dy with W dequantized transposed), one matrix at a time
 * into a scratch buffer the size of the largest layer matrix (the output head goes in tiles
 * of rows): all of SmolLM2 in f32 would take ~540 MB against ~100 MB of Q4_1, and
 * dequantizing each matrix twice per sequence (forward, backward) costs ~5% of a 256-token
 * step there, while the products made with it cost 2 x 256 flops per weight each way.
 * Activations are not quantized as in inference (forward.c rounds them to 8 bits for its
 * integer kernels): the loss is then a smooth function of the adapter, which the gradient
 * check needs. It equals the inference engine's cross-entropy to ~2e-5 where inference does
 * not quantize activations (F16 weights) and to ~0.5% on the quantized real models (the
 * 8-bit rounding); tests/test_train.c checks both.
 *
 * Every sum has one order and every loop is split between threads by outputs, so the
 * gradients do not depend on the thread count. */
#ifndef LMZ_TRAIN_GRAPH_H
#define LMZ_TRAIN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "../lora/lora.h"
#include "../model/model.h"
#include "../runtime/threadpool.h"

/* One float per adapter parameter, in one array: weight i's A at a_off[i] (as w->a is laid
 * out), its B at b_off[i], weights in the adapter's order. Moments and gradients use it. */
typedef struct {
    size_t n;
    float *data;
    int n_weights;
    size_t *a_off, *b_off;
} lmz_train_vec;

int lmz_train_vec_init(lmz_train_vec *v, const lmz_lora *l);  /* zeroed; 0 or -1 + lmz_fail */
void lmz_train_vec_free(lmz_train_vec *v);

/* 0 when lmz can train adapter L on model M; -1 + lmz_fail saying why not (an adapter on
 * token_embd or output, a model without the layers' adapters... ). */
int lmz_train_check(const lmz_model *m, const lmz_lora *l);

typedef struct lmz_train_graph lmz_train_graph;

/* A graph for sequences of up to MAX_TOKENS positions of model M with adapter L (read in
 * place at every run, so updates to its weights apply to the next run), on POOL. Memory:
 * the activations kept for the backward pass (2 (E + Q + K + F) floats per position and
 * layer, E the embedding, Q and K the query and key widths, F the feed-forward width, plus
 * E + Q + K for gemma3's extra norms: ~180 MB for SmolLM2 at 256 positions), one head's
 * attention weights (3 x MAX_TOKENS^2 floats) and logits for up to 256 MB (the positions
 * whose logits fit are computed together, the head dequantized twice for each such group:
 * all 256 positions of a Gemma 3 sequence, 262,144 logits each, fit). NULL + lmz_fail on
 * failure. */
lmz_train_graph *lmz_train_graph_create(const lmz_model *m, const lmz_lora *l, int max_tokens, lmz_pool *pool);
void lmz_train_graph_free(lmz_train_graph *g);

/* Evaluates TOKENS[0..n) at positions 0..n-1 (1 <= n <= max_tokens), position t predicting
 * TOKENS[t + 1], and sets *LOSS to the sum over the n predictions of -ln p(TOKENS[t + 1])
 * (nats, accumulated in double in position order). With GRADS (laid out for the graph's
 * adapter), adds WEIGHT times the gradient of that sum with respect to every A and B to
 * it. 0, or -1 + lmz_fail (a token out of range). */
int lmz_train_graph_run(lmz_train_graph *g, const int32_t *tokens, int n, float weight, lmz_train_vec *grads,
                        double *loss);

#endif
