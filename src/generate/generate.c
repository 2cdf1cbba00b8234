/* generate.c — prefill, then lockstep decode with per-sequence sampling and stop checks. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

typedef struct {
    bool active;
    int pos;                 /* next position to write */
    int32_t next;            /* token to feed at the next step */
    lmz_rng rng;
    char *buf;
    size_t len, cap;
} seq_state;

static int append(seq_state *s, const char *bytes, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2 + 64;
        char *nb = realloc(s->buf, cap);
        if (!nb) return lmz_fail("out of memory during generation");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, bytes, n);
    s->len += n;
    s->buf[s->len] = 0;
    return 0;
}

/* Position of the first stop string that now occurs in the text, searching only where the
 * last append could have completed one; -1 if none. */
static long find_stop(const seq_state *s, size_t appended, const lmz_gen_params *p) {
    long best = -1;
    for (int k = 0; k < p->n_stop; k++) {
        size_t n = strlen(p->stop[k]);
        if (!n || n > s->len) continue;
        size_t from = s->len - appended >= n - 1 ? s->len - appended - (n - 1) : 0;
        for (size_t i = from; i + n <= s->len; i++) {
            if (!memcmp(s->buf + i, p->stop[k], n)) {
                if (best < 0 || (long)i < best) best = (long)i;
                break;
            }
        }
    }
    return best;
}

const char *lmz_stop_reason_name(enum lmz_stop_reason r) {
    switch (r) {
    case LMZ_STOP_EOG: return "end-of-generation token";
    case LMZ_STOP_STRING: return "stop string";
    case LMZ_STOP_LENGTH: return "token limit";
    case LMZ_STOP_CANCELLED: return "cancelled";
    default: return "context full";
    }
}

void lmz_gen_output_free(lmz_gen_output *o) {
    free(o->text);
    o->text = NULL;
}

int lmz_generate(lmz_ctx *c, const lmz_tokenizer *tok, const int32_t *const *prompts, const size_t *lens, int n,
                 const lmz_gen_params *p, lmz_gen_output *out) {
    const lmz_gen_params **params = lmz_malloc((n > 0 ? (size_t)n : 1) * sizeof *params);
    int *stream = lmz_malloc((n > 0 ? (size_t)n : 1) * sizeof *stream);
    int rc = -1;
    if (params && stream) {
        for (int i = 0; i < n; i++) params[i] = p, stream[i] = i;
        rc = lmz_generate_each(c, tok, prompts, lens, n, params, stream, NULL, out);
    }
    free(params);
    free(stream);
    return rc;
}

int lmz_generate_each(lmz_ctx *c, const lmz_tokenizer *tok, const int32_t *const *prompts, const size_t *lens, int n,
                      const lmz_gen_params *const *params, const int *stream, const atomic_int *const *cancel,
                      lmz_gen_output *out) {
    const lmz_model *m = lmz_ctx_model(c);
    const int V = m->n_vocab, n_ctx = lmz_ctx_n_ctx(c);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (lens[i] == 0) return lmz_fail("prompt %d is empty", i);
        if (lens[i] >= (size_t)n_ctx) return lmz_fail("prompt %d (%zu tokens) does not fit the context of %d", i, lens[i], n_ctx);
        total += lens[i];
    }
    seq_state *seqs = lmz_calloc((size_t)n, sizeof *seqs);
    int32_t *tokens = lmz_malloc((total > (size_t)n ? total : (size_t)n) * sizeof(int32_t));
    int32_t *pos = lmz_malloc((total > (size_t)n ? total : (size_t)n) * sizeof(int32_t));
    int32_t *seq_of = lmz_malloc((total > (size_t)n ? total : (size_t)n) * sizeof(int32_t));
    uint8_t *want = lmz_calloc(total > (size_t)n ? total : (size_t)n, 1);
    int *row_seq = lmz_malloc((size_t)n * sizeof(int));
    float *logits = lmz_malloc((size_t)n * V * sizeof(float));
    lmz_sampler *sampler = lmz_sampler_create(V);
    int rc = -1;
    if (!seqs || !tokens || !pos || !seq_of || !want || !row_seq || !logits || !sampler) goto done;

    /* prefill every prompt in one batch; logits only for each prompt's last token */
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        lmz_ctx_reset_seq(c, i);
        for (size_t j = 0; j < lens[i]; j++, k++) {
            tokens[k] = prompts[i][j];
            pos[k] = (int32_t)j;
            seq_of[k] = i;
            want[k] = j + 1 == lens[i];
        }
        seqs[i].active = true;
        seqs[i].pos = (int)lens[i];
        lmz_rng_seed(&seqs[i].rng, params[i]->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(stream[i] + 1)));
        row_seq[i] = i;
        out[i] = (lmz_gen_output){NULL, 0, 0, LMZ_STOP_LENGTH};
    }
    lmz_batch b = {(int)total, tokens, pos, seq_of, want};
    if (lmz_decode(c, &b, logits)) goto done;
    int rows = n;

    while (rows > 0) {
        int next_rows = 0;
        for (int r = 0; r < rows; r++) {
            int i = row_seq[r];
            seq_state *s = &seqs[i];
            const lmz_gen_params *p = params[i];
            if (cancel && cancel[i] && atomic_load_explicit(cancel[i], memory_order_relaxed)) {
                s->active = false;
                out[i].reason = LMZ_STOP_CANCELLED;
                continue;
            }
            int32_t t = lmz_sample(sampler, logits + (size_t)r * V, &p->sampling, &s->rng);
            if (lmz_tokenizer_is_eog(tok, t)) {
                s->active = false;
                out[i].reason = LMZ_STOP_EOG;
                continue;
            }
            char piece[512];
            size_t plen = lmz_token_bytes(tok, t, false, piece, sizeof piece);
            if (plen > sizeof piece) plen = sizeof piece;
            if (append(s, piece, plen)) goto done;
            out[i].n_tokens++;
            long stop_at = find_stop(s, plen, p);
            if (stop_at >= 0) {
                s->len = (size_t)stop_at;
                s->buf[s->len] = 0;
                s->active = false;
                out[i].reason = LMZ_STOP_STRING;
            } else if (out[i].n_tokens >= p->max_tokens) {
                s->active = false;
                out[i].reason = LMZ_STOP_LENGTH;
            } else if (s->pos >= n_ctx) {
                s->active = false;
                out[i].reason = LMZ_STOP_CONTEXT;
            }
            if (!s->active) continue;
            tokens[next_rows] = t;
            pos[next_rows] = s->pos++;
            seq_of[next_rows] = i;
            want[next_rows] = 1;
            next_rows++;
        }
        /* the rows of the next batch, in sequence order */
        for (int r = 0; r < next_rows; r++) row_seq[r] = seq_of[r];
        rows = next_rows;
        if (rows == 0) break;
        lmz_batch step = {rows, tokens, pos, seq_of, want};
        if (lmz_decode(c, &step, logits)) goto done;
    }
    for (int i = 0; i < n; i++) {
        out[i].text = seqs[i].buf ? seqs[i].buf : calloc(1, 1);
        out[i].len = seqs[i].len;
        seqs[i].buf = NULL;
        if (!out[i].text) goto done;
    }
    rc = 0;
done:
    if (rc && seqs)
        for (int i = 0; i < n; i++) free(seqs[i].buf);
    free(seqs);
    free(tokens);
    free(pos);
    free(seq_of);
    free(want);
    free(row_seq);
    free(logits);
    lmz_sampler_free(sampler);
    return rc;
}
