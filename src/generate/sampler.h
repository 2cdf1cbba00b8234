/* sampler.h — choosing the next token from logits: greedy or seeded sampling with
 * temperature, top-k and top-p. Deterministic: the same logits, parameters and RNG state
 * give the same token on every machine (own exp, fixed orders, ties broken by token id). */
#ifndef LMZ_SAMPLER_H
#define LMZ_SAMPLER_H

#include <stdint.h>

typedef struct {
    float temperature; /* <= 0: greedy (argmax) */
    int top_k;         /* 0: no limit */
    float top_p;       /* 1: no limit */
} lmz_sampling;

/* splitmix64: small, fast, and fully specified. */
typedef struct {
    uint64_t state;
} lmz_rng;

void lmz_rng_seed(lmz_rng *r, uint64_t seed);
uint64_t lmz_rng_next(lmz_rng *r);

typedef struct lmz_sampler lmz_sampler;

lmz_sampler *lmz_sampler_create(int n_vocab);
void lmz_sampler_free(lmz_sampler *s);
int32_t lmz_sample(lmz_sampler *s, const float *logits, const lmz_sampling *p, lmz_rng *rng);

#endif
