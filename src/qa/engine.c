/* engine.c — the QA protocol's two uses of a model: greedy generation for a batch of
 * prompts, and yes/no scoring (P(yes) from the "Yes" and "No" tokens' next-token logits)
 * for a batch of questions sharing one prompt prefix per problem. */
#include <stdlib.h>
#include <string.h>

#include "../generate/generate.h"
#include "../util/error.h"
#include "../util/mathfn.h"
#include "qa_internal.h"

int qa_generate(const lmz_model *m, const lmz_tokenizer *tok, int threads, const qa_toks *prompts, int n,
                int max_tokens, const char *stop, char **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n; i++)
        if (prompts[i].n + (size_t)max_tokens > (size_t)m->n_ctx_train)
            return lmz_fail("a QA prompt for %s takes %zu tokens and may be answered in %d more, but the model's "
                            "context holds %d (a shorter problem or a smaller --answer-tokens helps)",
                            m->name, prompts[i].n, max_tokens, m->n_ctx_train);
    int rc = 0;
    for (int start = 0; start < n && !rc; start += QA_MAX_SEQS) {
        int k = n - start < QA_MAX_SEQS ? n - start : QA_MAX_SEQS;
        const int32_t *ids[QA_MAX_SEQS];
        size_t lens[QA_MAX_SEQS], longest = 0;
        for (int i = 0; i < k; i++) {
            ids[i] = prompts[start + i].ids;
            lens[i] = prompts[start + i].n;
            if (lens[i] > longest) longest = lens[i];
        }
        lmz_ctx *c = lmz_ctx_create(m, (int)longest + max_tokens + 1, k, threads);
        if (!c) {
            rc = -1;
            break;
        }
        lmz_gen_params gp = {.max_tokens = max_tokens, .sampling = {0.0f, 0, 1.0f}, .seed = 0};
        if (stop) {
            gp.stop = &stop;
            gp.n_stop = 1;
        }
        lmz_gen_output o[QA_MAX_SEQS];
        rc = lmz_generate(c, tok, ids, lens, k, &gp, o);
        lmz_ctx_free(c);
        if (!rc)
            for (int i = 0; i < k; i++) out[start + i] = o[i].text;
    }
    if (rc)
        for (int i = 0; i < n; i++) free(out[i]), out[i] = NULL;
    return rc;
}

/* The first token of TEXT, the way a reply might start with it. */
static int first_token(const lmz_tokenizer *tok, const char *text, int32_t *id) {
    int32_t *ids;
    size_t n;
    if (lmz_tokenize(tok, text, strlen(text), false, false, &ids, &n)) return -1;
    if (n == 0) {
        free(ids);
        return lmz_fail("the tokenizer gives no token for \"%s\"", text);
    }
    *id = ids[0];
    free(ids);
    return 0;
}

int qa_yesno(const lmz_model *m, const lmz_tokenizer *tok, int threads, const qa_toks *prefix, const qa_toks *tail,
             const char *const *questions, int n, int nq, double *p_yes, uint8_t *yes) {
    /* "Yes" at the start of a chat reply, " Yes" after "Response:" (no chat template) */
    int32_t yes_id[2], no_id[2];
    if (first_token(tok, "Yes", &yes_id[0]) || first_token(tok, " Yes", &yes_id[1]) || first_token(tok, "No", &no_id[0]) ||
        first_token(tok, " No", &no_id[1]))
        return -1;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            if (yes_id[a] == no_id[b])
                return lmz_fail("the tokenizer of %s cannot tell \"Yes\" from \"No\" by their first token", m->name);
    const int V = m->n_vocab;
    qa_toks *suffix = lmz_calloc((size_t)n * nq, sizeof *suffix);
    float *logits = lmz_malloc((size_t)QA_MAX_SEQS * V * sizeof *logits);
    int rc = suffix && logits ? 0 : -1;
    /* each question's tokens, then the tail */
    for (int i = 0; i < n * nq && !rc; i++) {
        const char *q = questions[i];
        qa_toks *s = &suffix[i];
        if (*q && lmz_tokenize(tok, q, strlen(q), false, false, &s->ids, &s->n)) {
            rc = -1;
            break;
        }
        int32_t *grown = lmz_realloc(s->ids, (s->n + tail->n + 1) * sizeof *grown);
        if (!grown) {
            rc = -1;
            break;
        }
        s->ids = grown;
        memcpy(s->ids + s->n, tail->ids, tail->n * sizeof *tail->ids);
        s->n += tail->n;
        if (s->n == 0) rc = lmz_fail("internal: an empty yes/no suffix");
    }
    for (int start = 0; start < n && !rc; start += QA_MAX_SEQS) {
        int k = n - start < QA_MAX_SEQS ? n - start : QA_MAX_SEQS;
        size_t longest = 0, total = 0;
        for (int i = start; i < start + k; i++) {
            size_t most = 0;
            for (int j = 0; j < nq; j++)
                if (suffix[i * nq + j].n > most) most = suffix[i * nq + j].n;
            if (prefix[i].n + most > longest) longest = prefix[i].n + most;
            total += prefix[i].n + most;
        }
        if (longest > (size_t)m->n_ctx_train) {
            rc = lmz_fail("a yes/no prompt for %s takes %zu tokens, more than the model's context of %d", m->name,
                          longest, m->n_ctx_train);
            break;
        }
        lmz_ctx *c = lmz_ctx_create(m, (int)longest, k, threads);
        int32_t *tk = lmz_malloc(total * sizeof *tk), *pos = lmz_malloc(total * sizeof *pos),
                *seq = lmz_malloc(total * sizeof *seq);
        uint8_t *want = lmz_calloc(total, 1);
        if (!c || !tk || !pos || !seq || !want) rc = -1;
        /* the prefixes, in one batch (no logits needed) */
        size_t t = 0;
        for (int i = 0; i < k && !rc; i++)
            for (size_t p = 0; p < prefix[start + i].n; p++, t++) {
                tk[t] = prefix[start + i].ids[p];
                pos[t] = (int32_t)p;
                seq[t] = i;
                want[t] = 0;
            }
        if (!rc) {
            lmz_batch b = {(int)t, tk, pos, seq, want};
            rc = lmz_decode(c, &b, logits);
        }
        /* question j of every problem in one batch, each rewinding its sequence to the prefix */
        for (int j = 0; j < nq && !rc; j++) {
            t = 0;
            for (int i = 0; i < k; i++) {
                const qa_toks *s = &suffix[(start + i) * nq + j];
                for (size_t p = 0; p < s->n; p++, t++) {
                    tk[t] = s->ids[p];
                    pos[t] = (int32_t)(prefix[start + i].n + p);
                    seq[t] = i;
                    want[t] = p + 1 == s->n;
                }
            }
            lmz_batch b = {(int)t, tk, pos, seq, want};
            if ((rc = lmz_decode(c, &b, logits))) break;
            for (int i = 0; i < k; i++) {
                const float *row = logits + (size_t)i * V;
                int idx = (start + i) * nq + j;
                float ly = row[yes_id[0]] > row[yes_id[1]] ? row[yes_id[0]] : row[yes_id[1]];
                float ln = row[no_id[0]] > row[no_id[1]] ? row[no_id[0]] : row[no_id[1]];
                double d = (double)ln - (double)ly;
                if (p_yes) {
                    double p = 1.0 / (1.0 + lmz_exp(d));
                    p_yes[idx] = p == p ? p : 0.5;
                }
                if (yes) yes[idx] = ly > ln;
            }
        }
        lmz_ctx_free(c);
        free(tk);
        free(pos);
        free(seq);
        free(want);
    }
    if (suffix)
        for (int i = 0; i < n * nq; i++) qa_toks_free(&suffix[i]);
    free(suffix);
    free(logits);
    return rc;
}

int qa_yesno_split(const lmz_model *m, const lmz_tokenizer *tok, int threads, const qa_toks *prefix,
                   const qa_toks *tails, const char *what, const char *const *questions, int n, int nq, double *p_yes,
                   uint8_t *yes) {
    for (int i = 1; i < n; i++)
        if (tails[i].n != tails[0].n || memcmp(tails[i].ids, tails[0].ids, tails[0].n * sizeof *tails[0].ids))
            return lmz_fail("internal: %s prompts with different tails", what);
    return qa_yesno(m, tok, threads, prefix, &tails[0], questions, n, nq, p_yes, yes);
}

void qa_toks_free_split(qa_toks *prefix, qa_toks *tails, int n) {
    for (int i = 0; i < n && prefix && tails; i++) {
        qa_toks_free(&prefix[i]);
        qa_toks_free(&tails[i]);
    }
    free(prefix);
    free(tails);
}
