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

/* The default tiny model (TINY_MODEL_SEED), built once per test run in a private
 * temporary directory; NULL after reporting a test failure. */
const char *tiny_model_path(void);
lmz_model *tiny_model(void);
lmz_tokenizer *tiny_tokenizer(void);
/* SHA-256 of the default tiny model's file (what archives record). */
const uint8_t *tiny_model_sha256(void);

#endif
