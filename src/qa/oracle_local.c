/* oracle_local.c — two oracles that run through lmz's engine: a local instruct model (the
 * LLM as a GGUF: its own greedy reference solution, then each yes/no decided by whether the
 * "Yes" token's next-token logit beats the "No" token's, with the problem, the reference and
 * the attempt in view), and the SLM answering its own questions (the self-refinement
 * baseline: the same decision from the SLM's belief prompt, i.e. P(yes) > 1/2). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"
#include "qa_internal.h"

#define QA_ORACLE_DEFAULT_TOKENS 512

typedef struct {
    const lmz_model *m;
    const lmz_tokenizer *tok;
    enum lmz_qa_task task;
    int threads;
    bool self; /* the SLM: no reference in its prompts */
} local_oracle;

static int local_solve(lmz_qa_oracle *o, const char *const *problems, int n, char **out) {
    local_oracle *s = o->self;
    if (o->max_tokens < 1) return lmz_fail("the oracle's token limit must be positive, not %d", o->max_tokens);
    qa_toks *prompts = lmz_calloc((size_t)n, sizeof *prompts);
    int rc = prompts ? 0 : -1;
    for (int i = 0; i < n && !rc; i++) rc = qa_prompt_attempt(s->m, s->tok, s->task, problems[i], &prompts[i]);
    if (!rc) rc = qa_generate(s->m, s->tok, s->threads, prompts, n, o->max_tokens, NULL, out);
    for (int i = 0; i < n && prompts; i++) qa_toks_free(&prompts[i]);
    free(prompts);
    return rc;
}

static int local_answer(lmz_qa_oracle *o, const char *const *problems, const char *const *refs,
                        const char *const *attempts, const char *const *questions, int n, int nq, uint8_t *bits) {
    local_oracle *s = o->self;
    qa_toks *prefix = lmz_calloc((size_t)n, sizeof *prefix), *tails = lmz_calloc((size_t)n, sizeof *tails);
    int rc = prefix && tails ? 0 : -1;
    for (int i = 0; i < n && !rc; i++) {
        if (s->self) rc = qa_prompt_belief(s->m, s->tok, problems[i], attempts[i], &prefix[i], &tails[i]);
        else if (!refs || !refs[i]) rc = lmz_fail("internal: the local oracle has no reference for problem %d", i);
        else rc = qa_prompt_checker(s->m, s->tok, problems[i], refs[i], attempts[i], &prefix[i], &tails[i]);
    }
    if (!rc) rc = qa_yesno_split(s->m, s->tok, s->threads, prefix, tails, "checker", questions, n, nq, NULL, bits);
    qa_toks_free_split(prefix, tails, n);
    return rc;
}

static int local_judge(lmz_qa_oracle *o, const char *const *problems, const char *const *refs,
                       const char *const *attempts, int n, uint8_t *accept) {
    const local_oracle *s = o->self;
    return qa_judge_by_answer(o, s->task, problems, refs, attempts, n, accept);
}

static void local_free(lmz_qa_oracle *o) {
    if (!o) return;
    free(o->self);
    free(o);
}

static lmz_qa_oracle *make(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, int threads, bool self) {
    if (!m || !tok) {
        lmz_fail("the oracle needs a model and its tokenizer");
        return NULL;
    }
    if (task < LMZ_QA_MATH || task > LMZ_QA_GENERAL) {
        lmz_fail("unknown QA task %d", task);
        return NULL;
    }
    lmz_qa_oracle *o = lmz_calloc(1, sizeof *o);
    local_oracle *s = lmz_calloc(1, sizeof *s);
    if (!o || !s) {
        free(o);
        free(s);
        return NULL;
    }
    *s = (local_oracle){m, tok, task, threads > 0 ? threads : 1, self};
    o->solve = local_solve;
    o->answer = local_answer;
    o->judge = local_judge;
    o->free = local_free;
    o->self = s;
    o->max_tokens = QA_ORACLE_DEFAULT_TOKENS;
    return o;
}

lmz_qa_oracle *lmz_qa_oracle_local(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, int threads) {
    return make(m, tok, task, threads, false);
}

lmz_qa_oracle *lmz_qa_oracle_self(const lmz_qa_models *m, enum lmz_qa_task task) {
    if (!m) {
        lmz_fail("the self oracle needs the small model");
        return NULL;
    }
    return make(m->slm, m->slm_tok, task, m->threads, true);
}
