/* sampler.c — candidate selection by logit (ties: lower id first), softmax over the
 * candidates with lmz_expf and a sequential sum, then one uniform draw. */
#include "sampler.h"

#include <stdlib.h>

#include "../probs/probs.h"
#include "../util/error.h"
#include "../util/mathfn.h"

typedef struct {
    float logit;
    int32_t id;
} candidate;

struct lmz_sampler {
    int n_vocab;
    int32_t *ids;
    float *probs;
    candidate *sorted; /* for sampling from the whole vocabulary */
};

void lmz_rng_seed(lmz_rng *r, uint64_t seed) { r->state = seed; }

uint64_t lmz_rng_next(lmz_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

lmz_sampler *lmz_sampler_create(int n_vocab) {
    lmz_sampler *s = lmz_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n_vocab = n_vocab;
    s->ids = lmz_malloc((size_t)n_vocab * sizeof(int32_t));
    s->probs = lmz_malloc((size_t)n_vocab * sizeof(float));
    s->sorted = lmz_malloc((size_t)n_vocab * sizeof(candidate));
    if (!s->ids || !s->probs || !s->sorted) {
        lmz_sampler_free(s);
        return NULL;
    }
    return s;
}

void lmz_sampler_free(lmz_sampler *s) {
    if (!s) return;
    free(s->ids);
    free(s->probs);
    free(s->sorted);
    free(s);
}

static int by_logit_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

/* True when token a ranks before token b. */
static int ranks_before(const float *l, int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); }

/* The K best tokens, best first, into ids[0..k). */
static int select_top(lmz_sampler *s, const float *logits, int k) {
    const int n_vocab = s->n_vocab;
    int32_t *ids = s->ids;
    if (k <= 0 || k >= n_vocab) {
        for (int i = 0; i < n_vocab; i++) s->sorted[i] = (candidate){logits[i], i};
        qsort(s->sorted, (size_t)n_vocab, sizeof *s->sorted, by_logit_desc);
        for (int i = 0; i < n_vocab; i++) ids[i] = s->sorted[i].id;
        return n_vocab;
    }
    /* insertion into a sorted list of k: fine for the small k sampling uses */
    int n = 0;
    for (int32_t v = 0; v < n_vocab; v++) {
        if (n == k && !ranks_before(logits, v, ids[k - 1])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && ranks_before(logits, v, ids[j - 1])) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = v;
    }
    return n;
}

int32_t lmz_sample(lmz_sampler *s, const float *logits, const lmz_sampling *p, lmz_rng *rng) {
    if (p->temperature <= 0.0f) return lmz_argmax(logits, s->n_vocab);
    int n = select_top(s, logits, p->top_k);
    const float top = logits[s->ids[0]];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = lmz_expf((logits[s->ids[i]] - top) / p->temperature);
        sum += s->probs[i];
    }
    if (p->top_p < 1.0f) {
        double cum = 0.0, limit = (double)p->top_p * sum;
        int keep = 0;
        while (keep < n) {
            cum += s->probs[keep++];
            if (cum >= limit) break;
        }
        n = keep;
        sum = cum;
    }
    /* u uniform in [0, sum): 53 random bits */
    double u = (double)(lmz_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += s->probs[i];
        if (u < cum) return s->ids[i];
    }
    return s->ids[n - 1];
}
