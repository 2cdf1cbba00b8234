/* freq.c — the logits -> frequencies mapping (fixed operation order, see freq.h) and the
 * cumulative lookups the range coder needs. */
#include "freq.h"

#include <string.h>

#include "../kernels/vecf.h"
#include "../util/error.h"
#include "../util/mathfn.h"

/* Each pass is a vecf.h primitive: its SIMD versions give the scalar reference's bits, so
 * the frequencies are the same on every ISA. */
int lmz_freq_build(const float *logits, int n_vocab, uint32_t *freq) {
    if (n_vocab < 1 || n_vocab > LMZ_FREQ_MAX_VOCAB)
        return lmz_fail("frequencies: vocabulary size %d is outside 1..%d", n_vocab, LMZ_FREQ_MAX_VOCAB);
    /* NaN never counts as the largest. A zero maximum comes back as +0 even if -0 came first,
     * which cannot show: x - mx depends on the zero's sign only for x = ±0, where it is a zero
     * and lmz_expf gives 1 either way (and x == mx holds for both zeros). */
    const float mx = lmz_vec_max(logits, n_vocab);

    /* Pass 1: weights lmz_exp_weight(logit, mx), parked as float bits in freq[] (overwritten
     * in pass 2, which saves computing every exp twice), and their sum in double over 8 lanes
     * (element i into lane i mod 8, lanes combined as in vecf.h): a fixed order with
     * independent chains. */
    double sum = lmz_vec_exp_weights(logits, n_vocab, mx, freq);
    if (!(sum > 0.0)) { /* only when every logit is NaN: every token gets the same weight */
        const float one = 1.0f;
        for (int i = 0; i < n_vocab; i++) memcpy(&freq[i], &one, sizeof one);
        sum = (double)n_vocab;
    }

    /* Pass 2: every token gets 1 plus floor(w * budget / sum). The floors lose less than 1
     * each, and the double rounding of sum, scale and products adds under n * 2^-52 of the
     * budget (< 1 for n <= 2^20), so the remainder below is never negative and under n.
     * Weights are at most 1 and sum at least 1 (the largest logit's weight), or all 1 with
     * sum = n, so w * scale <= budget < 2^31 as lmz_vec_freq_scale requires. */
    const uint32_t budget = LMZ_FREQ_TOTAL - (uint32_t)n_vocab;
    const double scale = (double)budget / sum;
    int64_t best;
    uint32_t assigned = lmz_vec_freq_scale(freq, n_vocab, scale, &best);
    /* The remainder goes to the most probable token (the lowest index among equals), where
     * it costs the least. */
    freq[best] += LMZ_FREQ_TOTAL - assigned;
    return 0;
}

/* Sum of freq[0..n) with 8 independent accumulators (integer sums are exact in any order). */
static uint32_t sum_u32(const uint32_t *freq, int64_t n) {
    uint32_t acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += freq[i + k];
    uint32_t s = 0;
    for (; i < n; i++) s += freq[i];
    for (int k = 0; k < 8; k++) s += acc[k];
    return s;
}

uint32_t lmz_freq_cum(const uint32_t *freq, int32_t token) { return sum_u32(freq, token); }

int32_t lmz_freq_find(const uint32_t *freq, int n_vocab, uint32_t target, uint32_t *cum) {
    enum { BLOCK = 64 };
    uint32_t acc = 0;
    int i = 0;
    /* Skip whole blocks while the target lies beyond them; then walk token by token. */
    for (; i + BLOCK <= n_vocab; i += BLOCK) {
        uint32_t s = sum_u32(freq + i, BLOCK);
        if (target - acc < s) break;
        acc += s;
    }
    for (; i < n_vocab; i++) {
        if (target - acc < freq[i]) {
            *cum = acc;
            return i;
        }
        acc += freq[i];
    }
    /* Only for target >= the total (a caller's error): the last token, which the decoder
     * will then find inconsistent with its state. */
    *cum = acc - freq[n_vocab - 1];
    return n_vocab - 1;
}

double lmz_freq_bits(uint32_t f) {
    return (double)LMZ_FREQ_TOTAL_BITS - lmz_log((double)f) / 0.69314718055994530942;
}
