/* freq.h — model logits to the range coder's integer frequencies.
 *
 * Encoder and decoder must derive bit-identical frequencies from bit-identical logits
 * (docs/determinism.md), so every step is fixed: lmz_expf on (logit - max), a sum in a
 * canonical order, one double multiply and a floor per token, and the rounding remainder
 * given to one token chosen by a fixed rule.
 *
 * The total is 2^30 (LMZ_FREQ_TOTAL). Each token gets a floor of 1, which takes V / 2^30 of
 * the probability mass from the others (2^-12 for a 262,144-token vocabulary, ~0.0004 bits
 * per token); the coder's truncation costs total / 2^48 <= 2^-18 per symbol. 2^30 balances
 * the two, stays below the coder's 2^31 limit, and keeps every cumulative sum in a uint32. */
#ifndef LMZ_FREQ_H
#define LMZ_FREQ_H

#include <stdint.h>

#define LMZ_FREQ_TOTAL_BITS 30
#define LMZ_FREQ_TOTAL (1u << LMZ_FREQ_TOTAL_BITS)
/* Vocabularies up to 2^20 tokens keep the floors (V) a small share of the total. */
#define LMZ_FREQ_MAX_VOCAB (1 << 20)

/* Fills freq[0..n_vocab) with frequencies >= 1 summing exactly to LMZ_FREQ_TOTAL.
 * Frequencies follow softmax(logits). NaN logits get the floor; if the largest logit is
 * infinite (+inf, or -inf when nothing is larger), the tokens at it share the mass equally;
 * if every logit is NaN, every token gets the same share (docs/format.md §7.1).
 * 0, or -1 if n_vocab is outside [1, LMZ_FREQ_MAX_VOCAB]. */
int lmz_freq_build(const float *logits, int n_vocab, uint32_t *freq);

/* Encoding: the cumulative frequency of TOKEN (the sum of freq[0..token)). */
uint32_t lmz_freq_cum(const uint32_t *freq, int32_t token);

/* Decoding: the token whose [cum, cum + freq) contains TARGET (< LMZ_FREQ_TOTAL); its
 * cumulative frequency goes to *cum. O(token), summing blocks of 64 at a time. */
int32_t lmz_freq_find(const uint32_t *freq, int n_vocab, uint32_t target, uint32_t *cum);

/* The ideal code length of a token with frequency F: -log2(F / LMZ_FREQ_TOTAL) bits. */
double lmz_freq_bits(uint32_t f);

#endif
