/* tiny_model.h — a tiny llama-architecture GGUF built at test time: the default model's
 * real tokenizer (every tokenizer.* key of SmolLM2, so tokens and escapes are exactly what
 * the real model sees) with 2 layers of small pseudo-random weights. Round-trip tests need
 * a model that is fast, not one that predicts well: losslessness does not depend on the
 * quality of the predictions, only on encoder and decoder computing the same ones.
 *
 * The content depends only on the seed and on the SmolLM2 file, so archives made with it
 * are reproducible. The default instance lives in a temporary directory removed at exit. */
#ifndef LMZ_TINY_MODEL_H
#define LMZ_TINY_MODEL_H

#include <stdint.h>

#include "../src/model/model.h"
#include "../src/tokenizer/tokenizer.h"

#define TINY_MODEL_SEED 0x6c6d7a74696e79ull /* "lmztiny" */
#define TINY_MODEL_NAME "lmz-tiny-test (random weights)"

/* Writes a tiny model with weights drawn from SEED to PATH (tokenizer taken from the
 * SmolLM2 model, which must be downloaded). 0, or -1 + lmz_fail. */
int tiny_model_write(const char *path, uint64_t seed);

/* Other shapes and architectures, for tests of the model math (tests/test_train.c). */
typedef struct {
    const char *arch;     /* "llama", "qwen2" (adds Q/K/V biases) or "gemma3" (QK-norm, post norms,
                             every other layer local with window n_swa) */
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff; /* n_embd, head_dim, n_ff: multiples of 32 */
    int n_vocab;          /* 0: SmolLM2's tokenizer and vocabulary; else a bare vocabulary of this
                             many tokens, enough for lmz_model_load but not for a tokenizer */
    float layer_scale;    /* Q4_1 step of the layer matrices (default 0.01) */
    bool f16_matrices;    /* layer matrices in F16 (entries as the embeddings'), which inference
                             multiplies without quantizing activations */
    int n_swa;            /* gemma3's sliding window */
    float logit_softcap;  /* 0: none */
    uint64_t seed;
} tiny_model_config;

/* The default tiny model's configuration (what tiny_model_write writes). */
void tiny_model_config_default(tiny_model_config *c);
int tiny_model_write_config(const char *path, const tiny_model_config *c);

/* The default tiny model (TINY_MODEL_SEED), built once per test run in a private
 * temporary directory; NULL after reporting a test failure. */
const char *tiny_model_path(void);
lmz_model *tiny_model(void);
lmz_tokenizer *tiny_tokenizer(void);
/* SHA-256 of the default tiny model's file (what archives record). */
const uint8_t *tiny_model_sha256(void);

#endif
