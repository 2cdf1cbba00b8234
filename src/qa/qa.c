/* qa.c — the Question-Asking protocol (qa.h; docs/qa.md), written once as a loop over a
 * batch of problems that asks a *channel* for every decision bit: the encoder's channel asks
 * the oracle and logs the bit (with the SLM's P(yes) when coding); the decoder's channel reads
 * the bit back from the stream. Also lmz_qa_encode / lmz_qa_decode around it: parameter
 * checks, the stream's header and body (qa_format.h), and the model and problem checks. */
#include "qa.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../container/archive.h"
#include "../model/fingerprint.h"
#include "../util/crc32.h"
#include "../util/error.h"
#include "qa_format.h"
#include "qa_internal.h"

void lmz_qa_params_default(lmz_qa_params *p, enum lmz_qa_variant v, enum lmz_qa_task t) {
    p->variant = v;
    p->task = t;
    p->questions = v == LMZ_QA_ONESHOT ? 10 : 5;
    p->rounds = v == LMZ_QA_ONESHOT ? 1 : 2;
    p->answer_tokens = 512;
    p->coded = 0;
}

void lmz_qa_result_free(lmz_qa_result *r) {
    free(r->first_answer);
    free(r->answer);
    free(r->reference);
    for (int i = 0; i < r->n_questions; i++) free(r->questions[i]);
    free(r->questions);
    free(r->question_bits);
    free(r->judge_bits);
    free(r->bits);
    free(r->p_yes);
    memset(r, 0, sizeof *r);
}

/* ---------------- protocol state ---------------- */

typedef struct {
    const char *problem;
    const char *reference; /* encoder: the oracle's solution */
    char *first, *answer;
    char **qs;             /* every question asked so far */
    uint8_t *qbits;
    int nq, cap_q;
    uint8_t *jbits;
    int nj;
    uint8_t *bits;         /* every decision, in order */
    double *p;
    uint32_t *f;
    int nbits, cap_bits;
    bool done;
} qa_run;

static void run_free(qa_run *r) {
    free(r->first);
    free(r->answer);
    for (int i = 0; i < r->nq; i++) free(r->qs[i]);
    free(r->qs);
    free(r->qbits);
    free(r->jbits);
    free(r->bits);
    free(r->p);
    free(r->f);
}

static int add_decision(qa_run *r, int bit, const double *p, bool judge) {
    if (r->nbits == r->cap_bits) {
        int cap = r->cap_bits ? r->cap_bits * 2 : 16;
        uint8_t *b = lmz_realloc(r->bits, (size_t)cap);
        if (!b) return -1;
        r->bits = b;
        double *pp = lmz_realloc(r->p, (size_t)cap * sizeof *pp);
        if (!pp) return -1;
        r->p = pp;
        uint32_t *ff = lmz_realloc(r->f, (size_t)cap * sizeof *ff);
        if (!ff) return -1;
        r->f = ff;
        uint8_t *j = lmz_realloc(r->jbits, (size_t)cap);
        if (!j) return -1;
        r->jbits = j;
        r->cap_bits = cap;
    }
    r->bits[r->nbits] = (uint8_t)bit;
    r->p[r->nbits] = p ? *p : 0.5;
    r->f[r->nbits] = p ? lmz_qa_prob_freq(*p) : 0;
    r->nbits++;
    if (judge) r->jbits[r->nj++] = (uint8_t)bit;
    return 0;
}

/* Adds question Q (taken over) with answer BIT. */
static int add_question(qa_run *r, char *q, int bit) {
    if (r->nq == r->cap_q) {
        int cap = r->cap_q ? r->cap_q * 2 : 16;
        char **qs = lmz_realloc(r->qs, (size_t)cap * sizeof *qs);
        if (!qs) return -1;
        r->qs = qs;
        uint8_t *b = lmz_realloc(r->qbits, (size_t)cap);
        if (!b) return -1;
        r->qbits = b;
        r->cap_q = cap;
    }
    r->qs[r->nq] = q;
    r->qbits[r->nq++] = (uint8_t)bit;
    return 0;
}

/* The source of decision bits. IDX[0..m) are the problems deciding; each takes NQ bits,
 * about QS[k * nq + j] (the judge's question when JUDGE), with the SLM's P(yes) in P (NULL
 * when not coded). Writes BITS[k * nq + j]. */
typedef struct qa_channel {
    int (*decide)(struct qa_channel *ch, qa_run *runs, const int *idx, int m, int nq, const char *const *qs,
                  bool judge, const double *p, uint8_t *bits);
} qa_channel;

/* ---------------- the protocol ---------------- */

typedef struct {
    const lmz_qa_models *M;
    const lmz_qa_params *P;
    const lmz_model *qm;
    const lmz_tokenizer *qm_tok;
} qa_env;

/* P(yes) of the SLM for question QS[k * nq + j] about problem IDX[k]'s current answer. */
static int beliefs(const qa_env *e, qa_run *runs, const int *idx, int m, int nq, const char *const *qs, double *p) {
    qa_toks *prefix = lmz_calloc((size_t)m, sizeof *prefix), *tails = lmz_calloc((size_t)m, sizeof *tails);
    int rc = prefix && tails ? 0 : -1;
    for (int k = 0; k < m && !rc; k++)
        rc = qa_prompt_belief(e->M->slm, e->M->slm_tok, runs[idx[k]].problem, runs[idx[k]].answer, &prefix[k], &tails[k]);
    /* every belief prompt has the same tail */
    if (!rc) rc = qa_yesno_split(e->M->slm, e->M->slm_tok, e->M->threads, prefix, tails, "belief", qs, m, nq, p, NULL);
    qa_toks_free_split(prefix, tails, m);
    return rc;
}

/* Generates with the SLM (or, QUESTIONS, the question model) from PROMPTS[0..m). */
static int generate(const qa_env *e, bool questions, const qa_toks *prompts, int m, int max_tokens, char **out) {
    const lmz_model *model = questions ? e->qm : e->M->slm;
    const lmz_tokenizer *tok = questions ? e->qm_tok : e->M->slm_tok;
    /* a question list ends where item K + 1 would begin */
    char stop[32];
    snprintf(stop, sizeof stop, "\n%d.", e->P->questions + 1);
    return qa_generate(model, tok, e->M->threads, prompts, m, max_tokens, questions ? stop : NULL, out);
}

static void free_toks(qa_toks *t, int m) {
    if (!t) return;
    for (int k = 0; k < m; k++) qa_toks_free(&t[k]);
    free(t);
}

/* One judge step for the problems IDX[0..m): the accepted ones are done. *M_LEFT gets the
 * rejected ones, compacted into IDX. */
static int judge_step(const qa_env *e, qa_channel *ch, qa_run *runs, int *idx, int m, int *m_left) {
    const char *jq = qa_judge_question(e->P->task);
    const char **qs = lmz_malloc((size_t)m * sizeof *qs);
    double *p = e->P->coded ? lmz_malloc((size_t)m * sizeof *p) : NULL;
    uint8_t *bits = lmz_malloc((size_t)m);
    int rc = qs && bits && (p || !e->P->coded) ? 0 : -1;
    for (int k = 0; k < m && !rc; k++) qs[k] = jq;
    if (!rc && p) rc = beliefs(e, runs, idx, m, 1, qs, p);
    if (!rc) rc = ch->decide(ch, runs, idx, m, 1, qs, true, p, bits);
    int left = 0;
    for (int k = 0; k < m && !rc; k++) {
        qa_run *r = &runs[idx[k]];
        if ((rc = add_decision(r, bits[k], p ? &p[k] : NULL, true))) break;
        if (bits[k]) r->done = true;
        else idx[left++] = idx[k];
    }
    *m_left = left;
    free(qs);
    free(p);
    free(bits);
    return rc;
}

/* One question step for the problems IDX[0..m): Q questions each, their bits, a refinement. */
static int question_step(const qa_env *e, qa_channel *ch, qa_run *runs, const int *idx, int m) {
    const int q = e->P->questions;
    const enum lmz_qa_task task = e->P->task;
    qa_toks *prompts = lmz_calloc((size_t)m, sizeof *prompts);
    char **lists = lmz_calloc((size_t)m, sizeof *lists), **answers = lmz_calloc((size_t)m, sizeof *answers);
    char ***parsed = lmz_calloc((size_t)m, sizeof *parsed);
    const char **qs = lmz_malloc((size_t)m * q * sizeof *qs);
    double *p = e->P->coded ? lmz_malloc((size_t)m * q * sizeof *p) : NULL;
    uint8_t *bits = lmz_malloc((size_t)m * q);
    int rc = prompts && lists && answers && parsed && qs && bits && (p || !e->P->coded) ? 0 : -1;
    /* the questions */
    for (int k = 0; k < m && !rc; k++) {
        qa_run *r = &runs[idx[k]];
        rc = qa_prompt_questions(e->qm, e->qm_tok, task, r->problem, r->answer, r->qs, r->qbits, r->nq, q, &prompts[k]);
    }
    if (!rc) rc = generate(e, true, prompts, m, qa_question_tokens(q), lists);
    for (int k = 0; k < m && !rc; k++) {
        /* the list as the question model wrote it: its prompt ended with the prefill */
        size_t pre = strlen(qa_question_prefill), len = strlen(lists[k]);
        char *whole = lmz_malloc(pre + len + 1);
        if (!whole) {
            rc = -1;
            break;
        }
        memcpy(whole, qa_question_prefill, pre);
        memcpy(whole + pre, lists[k], len + 1);
        free(lists[k]);
        lists[k] = whole;
    }
    for (int k = 0; k < m && !rc; k++) {
        qa_run *r = &runs[idx[k]];
        if (getenv("LMZ_QA_DEBUG")) fprintf(stderr, "[qa] problem %d question list:\n%s\n[qa] --\n", idx[k], lists[k]);
        if ((rc = qa_parse_questions(lists[k], q, task, r->qs, r->nq, &parsed[k]))) break;
        for (int j = 0; j < q; j++) qs[k * q + j] = parsed[k][j];
    }
    /* the bits */
    if (!rc && p) rc = beliefs(e, runs, idx, m, q, qs, p);
    if (!rc) rc = ch->decide(ch, runs, idx, m, q, qs, false, p, bits);
    for (int k = 0; k < m && !rc; k++) {
        qa_run *r = &runs[idx[k]];
        for (int j = 0; j < q && !rc; j++) {
            if ((rc = add_decision(r, bits[k * q + j], p ? &p[k * q + j] : NULL, false))) break;
            if ((rc = add_question(r, parsed[k][j], bits[k * q + j]))) break;
            parsed[k][j] = NULL; /* the run owns it now */
        }
    }
    /* the refinement, with every question answered so far */
    free_toks(prompts, m);
    prompts = rc ? NULL : lmz_calloc((size_t)m, sizeof *prompts);
    if (!rc && !prompts) rc = -1;
    for (int k = 0; k < m && !rc; k++) {
        qa_run *r = &runs[idx[k]];
        rc = qa_prompt_refine(e->M->slm, e->M->slm_tok, task, r->problem, r->answer, r->qs, r->qbits, r->nq, &prompts[k]);
    }
    if (!rc) rc = generate(e, false, prompts, m, e->P->answer_tokens, answers);
    for (int k = 0; k < m && !rc; k++) {
        qa_run *r = &runs[idx[k]];
        free(r->answer);
        r->answer = answers[k];
        answers[k] = NULL;
    }
    free_toks(prompts, m);
    for (int k = 0; k < m && lists; k++) free(lists[k]);
    for (int k = 0; k < m && answers; k++) free(answers[k]);
    for (int k = 0; k < m && parsed; k++) {
        if (!parsed[k]) continue;
        for (int j = 0; j < q; j++) free(parsed[k][j]);
        free(parsed[k]);
    }
    free(lists);
    free(answers);
    free(parsed);
    free(qs);
    free(p);
    free(bits);
    return rc;
}

static int run_protocol(const qa_env *e, qa_channel *ch, qa_run *runs, int n) {
    int *idx = lmz_malloc((size_t)n * sizeof *idx);
    qa_toks *prompts = lmz_calloc((size_t)n, sizeof *prompts);
    char **out = lmz_calloc((size_t)n, sizeof *out);
    int rc = idx && prompts && out ? 0 : -1;
    /* the first attempt */
    for (int i = 0; i < n && !rc; i++)
        rc = qa_prompt_attempt(e->M->slm, e->M->slm_tok, e->P->task, runs[i].problem, &prompts[i]);
    if (!rc) rc = generate(e, false, prompts, n, e->P->answer_tokens, out);
    for (int i = 0; i < n && !rc; i++) {
        runs[i].answer = out[i];
        out[i] = NULL;
        if (!(runs[i].first = lmz_malloc(strlen(runs[i].answer) + 1))) rc = -1;
        else strcpy(runs[i].first, runs[i].answer);
    }
    free_toks(prompts, n);
    for (int i = 0; i < n && out; i++) free(out[i]);
    free(out);
    /* the rounds, over the problems not yet done */
    int m = n;
    for (int i = 0; i < n && idx; i++) idx[i] = i;
    const int rounds = e->P->variant == LMZ_QA_ONESHOT ? 1 : e->P->rounds;
    for (int r = 0; r < rounds && m > 0 && !rc; r++) {
        if (e->P->variant == LMZ_QA_ITERATIVE && (rc = judge_step(e, ch, runs, idx, m, &m))) break;
        if (m == 0) break;
        rc = question_step(e, ch, runs, idx, m);
    }
    free(idx);
    return rc;
}

/* ---------------- checks ---------------- */

static int check_params(const lmz_qa_params *p) {
    if (p->variant != LMZ_QA_ONESHOT && p->variant != LMZ_QA_ITERATIVE) return lmz_fail("unknown QA variant %d", p->variant);
    if (p->task < LMZ_QA_MATH || p->task > LMZ_QA_GENERAL) return lmz_fail("unknown QA task %d", p->task);
    if (p->questions < 1 || p->questions > LMZ_QA_MAX_QUESTIONS)
        return lmz_fail("the question count must be 1 to %d, not %d", LMZ_QA_MAX_QUESTIONS, p->questions);
    if (p->variant == LMZ_QA_ITERATIVE && (p->rounds < 1 || p->rounds > LMZ_QA_MAX_ROUNDS))
        return lmz_fail("the round count must be 1 to %d, not %d", LMZ_QA_MAX_ROUNDS, p->rounds);
    if (p->answer_tokens < 1 || p->answer_tokens > LMZ_QA_MAX_ANSWER_TOKENS)
        return lmz_fail("the answer token limit must be 1 to %d, not %d", LMZ_QA_MAX_ANSWER_TOKENS, p->answer_tokens);
    return 0;
}

static int check_models(const lmz_qa_models *m) {
    if (!m->slm || !m->slm_tok) return lmz_fail("QA needs the small model and its tokenizer");
    if (m->qm && !m->qm_tok) return lmz_fail("QA: the question model has no tokenizer");
    return 0;
}

static void fp8(const lmz_model *m, uint8_t fp[LMZ_QA_FP_BYTES]) {
    uint8_t sha[32];
    lmz_model_fingerprint(m, sha);
    memcpy(fp, sha, LMZ_QA_FP_BYTES);
}

/* "SmolLM2-135M-Instruct (sha256 b179c9523d0e6a0f...)" or "a model lmz does not know by name (...)". */
static void describe(const uint8_t fp[LMZ_QA_FP_BYTES], char *out, size_t cap) {
    char hex[2 * LMZ_QA_FP_BYTES + 1];
    for (int i = 0; i < LMZ_QA_FP_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", fp[i]);
    const lmz_known_model *k = lmz_archive_known_model(fp);
    if (k) snprintf(out, cap, "%s (sha256 %s...; `python3 tools/fetch_models.py %s` fetches it)", k->name, hex, k->fetch_name);
    else snprintf(out, cap, "a model lmz does not know by name (sha256 %s...)", hex);
}

/* ---------------- encoder ---------------- */

typedef struct {
    int problem;
    uint8_t bit;
    uint32_t f;
} qa_logged;

typedef struct {
    qa_channel base;
    lmz_qa_oracle *o;
    qa_logged *log;
    size_t n_log, cap_log;
} qa_encoder;

static int encoder_decide(qa_channel *ch, qa_run *runs, const int *idx, int m, int nq, const char *const *qs, bool judge,
                          const double *p, uint8_t *bits) {
    qa_encoder *e = (qa_encoder *)ch;
    const char **problems = lmz_malloc((size_t)m * sizeof *problems), **refs = lmz_malloc((size_t)m * sizeof *refs),
               **attempts = lmz_malloc((size_t)m * sizeof *attempts);
    int rc = problems && refs && attempts ? 0 : -1;
    for (int k = 0; k < m && !rc; k++) {
        problems[k] = runs[idx[k]].problem;
        refs[k] = runs[idx[k]].reference;
        attempts[k] = runs[idx[k]].answer;
    }
    if (!rc) {
        memset(bits, 0, (size_t)m * nq);
        rc = judge ? e->o->judge(e->o, problems, refs, attempts, m, bits)
                   : e->o->answer(e->o, problems, refs, attempts, qs, m, nq, bits);
    }
    if (!rc && e->n_log + (size_t)m * nq > e->cap_log) {
        size_t cap = (e->n_log + (size_t)m * nq) * 2;
        qa_logged *l = lmz_realloc(e->log, cap * sizeof *l);
        if (!l) rc = -1;
        else e->log = l, e->cap_log = cap;
    }
    for (int k = 0; k < m && !rc; k++)
        for (int j = 0; j < nq; j++) {
            bits[k * nq + j] = bits[k * nq + j] ? 1 : 0;
            e->log[e->n_log++] = (qa_logged){idx[k], bits[k * nq + j], p ? lmz_qa_prob_freq(p[k * nq + j]) : 0};
        }
    free(problems);
    free(refs);
    free(attempts);
    return rc;
}

/* Fills RESULTS from RUNS, taking over what they own (and REFS[i], the references, when
 * REFS is not NULL); MODE[i] (coded streams): 1 when problem i's decisions are coded. */
static void fill_results(qa_run *runs, int n, const lmz_qa_params *P, const int *mode, char **refs,
                         lmz_qa_result *results) {
    for (int i = 0; i < n; i++) {
        qa_run *r = &runs[i];
        lmz_qa_result *o = &results[i];
        memset(o, 0, sizeof *o);
        o->first_answer = r->first;
        o->answer = r->answer;
        r->first = r->answer = NULL;
        o->n_questions = r->nq;
        o->questions = r->qs;
        o->question_bits = r->qbits;
        r->qs = NULL;
        r->qbits = NULL;
        r->nq = 0;
        o->n_judgements = r->nj;
        o->judge_bits = r->jbits;
        r->jbits = NULL;
        o->n_bits = r->nbits;
        o->bits = r->bits;
        r->bits = NULL;
        if (P->coded) {
            o->p_yes = r->p;
            r->p = NULL;
            double ideal = 0;
            for (int k = 0; k < o->n_bits; k++) ideal += lmz_qa_code_bits(r->f[k], o->bits[k]);
            o->ideal_bits = ideal;
            o->stored_raw = !mode[i];
            o->coded_bits = 1 + (mode[i] ? ideal : o->n_bits);
        } else {
            o->ideal_bits = o->coded_bits = o->n_bits;
        }
        if (refs) {
            o->reference = refs[i];
            refs[i] = NULL;
        }
    }
}

int lmz_qa_encode(const lmz_qa_models *m, const lmz_qa_params *p, lmz_qa_oracle *o, const char *const *problems,
                  int n, lmz_qa_result *results, lmz_bytebuf *stream) {
    if (check_params(p) || check_models(m)) return -1;
    if (n < 1 || n > LMZ_QA_MAX_PROBLEMS) return lmz_fail("QA takes 1 to %d problems, not %d", LMZ_QA_MAX_PROBLEMS, n);
    if (!o) return lmz_fail("QA encoding needs an oracle");
    lmz_qa_params P = *p;
    if (P.variant == LMZ_QA_ONESHOT) P.rounds = 1;
    P.coded = P.coded ? 1 : 0;
    qa_env env = {m, &P, m->qm ? m->qm : m->slm, m->qm ? m->qm_tok : m->slm_tok};
    qa_run *runs = lmz_calloc((size_t)n, sizeof *runs);
    char **refs = lmz_calloc((size_t)n, sizeof *refs);
    int *mode = lmz_calloc((size_t)n, sizeof *mode);
    qa_encoder enc = {{encoder_decide}, o, NULL, 0, 0};
    lmz_qa_stream s = {0};
    lmz_bytebuf body = {0};
    int rc = runs && refs && mode ? 0 : -1;
    for (int i = 0; i < n && !rc; i++)
        if (!problems[i]) rc = lmz_fail("problem %d is missing", i);
    if (!rc) rc = o->solve(o, problems, n, refs);
    for (int i = 0; i < n && !rc; i++) {
        runs[i].problem = problems[i];
        runs[i].reference = refs[i];
    }
    if (!rc) rc = run_protocol(&env, &enc.base, runs, n);
    /* each problem's decisions are coded only where that is cheaper than raw bits */
    for (int i = 0; i < n && !rc && P.coded; i++) {
        double cost = 0;
        for (int k = 0; k < runs[i].nbits; k++) cost += lmz_qa_code_bits(runs[i].f[k], runs[i].bits[k]);
        mode[i] = cost < runs[i].nbits;
    }
    if (!rc && stream) {
        s.variant = P.variant;
        s.task = P.task;
        s.coded = P.coded;
        s.questions = P.questions;
        s.rounds = P.rounds;
        s.answer_tokens = P.answer_tokens;
        fp8(m->slm, s.slm_fp);
        fp8(env.qm, s.qm_fp);
        s.n_problems = (uint32_t)n;
        s.problem_crc = lmz_malloc((size_t)n * sizeof *s.problem_crc);
        s.n_bits = lmz_malloc((size_t)n * sizeof *s.n_bits);
        if (!s.problem_crc || !s.n_bits) rc = -1;
        for (int i = 0; i < n && !rc; i++) {
            s.problem_crc[i] = lmz_crc32(problems[i], strlen(problems[i]));
            s.n_bits[i] = (uint32_t)runs[i].nbits;
        }
        lmz_qa_bitwriter w;
        lmz_qa_bitwriter_init(&w, P.coded, &body);
        uint8_t *seen = rc ? NULL : lmz_calloc((size_t)n, 1);
        if (!seen) rc = -1;
        for (size_t k = 0; k < enc.n_log && !rc; k++) {
            const qa_logged *d = &enc.log[k];
            /* a problem's first decision is preceded by its mode bit */
            if (P.coded && !seen[d->problem]) rc = lmz_qa_bitwriter_mode(&w, mode[d->problem]);
            seen[d->problem] = 1;
            if (!rc) rc = lmz_qa_bitwriter_put(&w, d->bit, mode[d->problem], d->f);
        }
        free(seen);
        if (!rc) rc = lmz_qa_bitwriter_finish(&w);
        s.body = body.data;
        s.body_len = body.len;
        if (!rc) rc = lmz_qa_stream_write(&s, stream);
    }
    if (!rc) fill_results(runs, n, &P, mode, refs, results);
    for (int i = 0; i < n && runs; i++) run_free(&runs[i]);
    for (int i = 0; i < n && refs; i++) free(refs[i]);
    free(runs);
    free(refs);
    free(mode);
    free(enc.log);
    lmz_qa_stream_free(&s);
    lmz_bytebuf_free(&body);
    return rc;
}

/* ---------------- decoder ---------------- */

typedef struct {
    qa_channel base;
    lmz_qa_bitreader rd;
    const lmz_qa_stream *s;
    int *mode; /* coded streams: -1 until the problem's mode bit is read */
} qa_decoder;

static int decoder_decide(qa_channel *ch, qa_run *runs, const int *idx, int m, int nq, const char *const *qs, bool judge,
                          const double *p, uint8_t *bits) {
    (void)qs;
    (void)judge;
    qa_decoder *d = (qa_decoder *)ch;
    for (int k = 0; k < m; k++) {
        int i = idx[k];
        for (int j = 0; j < nq; j++) {
            if ((uint64_t)runs[i].nbits + (uint64_t)j + 1 > d->s->n_bits[i])
                return lmz_fail("the QA stream is corrupted (problem %d has %u decision bits; the protocol needs more)", i,
                                d->s->n_bits[i]);
            if (d->s->coded && d->mode[i] < 0 && (d->mode[i] = lmz_qa_bitreader_mode(&d->rd)) < 0) return -1;
            int b = lmz_qa_bitreader_get(&d->rd, d->s->coded ? d->mode[i] : 0, p ? lmz_qa_prob_freq(p[k * nq + j]) : 0);
            if (b < 0) return -1;
            bits[k * nq + j] = (uint8_t)b;
        }
    }
    return 0;
}

int lmz_qa_decode(const lmz_qa_models *m, const uint8_t *stream, size_t len, const char *const *problems, int n,
                  lmz_qa_result *results) {
    if (check_models(m)) return -1;
    lmz_qa_stream s;
    if (lmz_qa_stream_parse(&s, stream, len)) return -1;
    char need[300], have[300];
    uint8_t fp[LMZ_QA_FP_BYTES], qfp[LMZ_QA_FP_BYTES];
    int rc = -1;
    qa_run *runs = NULL;
    int *mode = NULL;
    fp8(m->slm, fp);
    if (m->qm) fp8(m->qm, qfp);
    else memcpy(qfp, fp, sizeof fp);
    if (memcmp(fp, s.slm_fp, sizeof fp)) {
        describe(s.slm_fp, need, sizeof need);
        describe(fp, have, sizeof have);
        lmz_fail("this QA stream needs the small model %s; the given one is %s", need, have);
        goto done;
    }
    bool qm_is_slm = !memcmp(s.qm_fp, s.slm_fp, sizeof fp);
    if (qm_is_slm && m->qm && memcmp(qfp, fp, sizeof fp)) {
        lmz_fail("this QA stream's questions were written by the small model itself; drop the question model");
        goto done;
    }
    if (!qm_is_slm && memcmp(qfp, s.qm_fp, sizeof fp)) {
        describe(s.qm_fp, need, sizeof need);
        if (!m->qm) lmz_fail("this QA stream needs the question model %s (--question-model)", need);
        else {
            describe(qfp, have, sizeof have);
            lmz_fail("this QA stream needs the question model %s; the given one is %s", need, have);
        }
        goto done;
    }
    if ((uint32_t)n != s.n_problems) {
        lmz_fail("this QA stream was made for %u problem%s; %d %s given", s.n_problems, s.n_problems == 1 ? "" : "s", n,
                 n == 1 ? "was" : "were");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (!problems[i] || lmz_crc32(problems[i], strlen(problems[i])) != s.problem_crc[i]) {
            lmz_fail("problem %d is not the one this QA stream was made for (its checksum differs)", i);
            goto done;
        }
    lmz_qa_params P = {(enum lmz_qa_variant)s.variant, (enum lmz_qa_task)s.task, s.questions, s.rounds,
                       s.answer_tokens, s.coded};
    qa_env env = {m, &P, m->qm && !qm_is_slm ? m->qm : m->slm, m->qm && !qm_is_slm ? m->qm_tok : m->slm_tok};
    runs = lmz_calloc((size_t)n, sizeof *runs);
    mode = lmz_malloc((size_t)n * sizeof *mode);
    if (!runs || !mode) goto done;
    for (int i = 0; i < n; i++) {
        runs[i].problem = problems[i];
        mode[i] = -1;
    }
    qa_decoder dec = {{decoder_decide}, {0}, &s, mode};
    lmz_qa_bitreader_init(&dec.rd, s.coded, s.body, s.body_len);
    if (run_protocol(&env, &dec.base, runs, n)) goto done;
    for (int i = 0; i < n; i++)
        if ((uint32_t)runs[i].nbits != s.n_bits[i]) {
            lmz_fail("the QA stream is corrupted (problem %d has %u decision bits; the protocol used %d)", i, s.n_bits[i],
                     runs[i].nbits);
            goto done;
        }
    if (lmz_qa_bitreader_finish(&dec.rd)) goto done;
    fill_results(runs, n, &P, mode, NULL, results);
    rc = 0;
done:
    for (int i = 0; i < n && runs; i++) run_free(&runs[i]);
    free(runs);
    free(mode);
    lmz_qa_stream_free(&s);
    return rc;
}
