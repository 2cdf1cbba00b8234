/* probs.h — from logits to probabilities (the stage between the model and the coder).
 * Everything here is deterministic: lmz's own exp/log, fixed summation order. */
#ifndef LMZ_PROBS_H
#define LMZ_PROBS_H

#include <stdint.h>

/* -log2 softmax(logits)[token]: the ideal code length of TOKEN in bits. */
double lmz_token_bits(const float *logits, int n_vocab, int32_t token);
/* Index of the largest logit (the lowest index among equals). */
int32_t lmz_argmax(const float *logits, int n_vocab);

#endif
