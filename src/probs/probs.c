/* probs.c — softmax-derived quantities in double precision. */
#include "probs.h"

#include <string.h>

#include "../kernels/vecf.h"
#include "../util/mathfn.h"

double lmz_token_bits(const float *logits, int n_vocab, int32_t token) {
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    /* the softmax normalizer: vectorized exp over blocks of 256, block sums added in double */
    double sum = 0.0;
    float block[256];
    for (int i = 0; i < n_vocab; i += 256) {
        int n = n_vocab - i < 256 ? n_vocab - i : 256;
        memcpy(block, logits + i, (size_t)n * sizeof(float));
        sum += (double)lmz_vec_exp_sum(block, n, mx);
    }
    double log_p = ((double)logits[token] - (double)mx) - lmz_log(sum);
    return -log_p / 0.69314718055994530942;
}

int32_t lmz_argmax(const float *logits, int n_vocab) {
    int32_t best = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}
