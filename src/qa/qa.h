/* qa.h — Question-Asking compression (lmz qa): a small model answers, asks a large model
 * yes/no questions about its answer and refines it; only the answers travel.
 *
 * Roles. The SLM answers and refines; the question model (QM, by default the SLM) writes
 * the questions; both run on both ends, greedily, through lmz's engine, so the receiver
 * rebuilds every question and every answer from the bits alone. The LLM (the *oracle*)
 * exists only on the sender's side: a local GGUF or an OpenAI-compatible endpoint.
 *
 * The protocol is written once, as a loop that asks a *channel* for each decision bit:
 * the encoder's channel asks the oracle and records (or arithmetic-codes) the bit; the
 * decoder's channel reads it back from the bitstring. Both ends compute the same P(yes)
 * from the SLM when bits are coded, so an answer the SLM predicts well costs under a bit.
 *
 * Variants (docs/qa.md has the prompts and defaults):
 *   one-shot:  attempt → K questions → K answer bits → one refinement (K bits in all);
 *   iterative: up to R rounds of [judge bit: the oracle accepts or rejects the current
 *              answer; on reject, Q questions → Q bits → refinement] (the judge bits count).
 *
 * Problems are processed as a batch: every generation step of every problem in the batch
 * is one lmz_generate call, and since lmz's logits do not depend on batching or threads,
 * a problem's questions, bits and answers depend only on that problem and the parameters. */
#ifndef LMZ_QA_H
#define LMZ_QA_H

#include <stddef.h>
#include <stdint.h>

#include "../coder/bytebuf.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

enum lmz_qa_variant { LMZ_QA_ONESHOT = 0, LMZ_QA_ITERATIVE = 1 };
/* Selects the prompts (math: solve and end with the final answer; code: a Python function
 * in one fenced block; general: a plain answer). */
enum lmz_qa_task { LMZ_QA_MATH = 0, LMZ_QA_CODE = 1, LMZ_QA_GENERAL = 2 };

typedef struct {
    enum lmz_qa_variant variant;
    enum lmz_qa_task task;
    int questions;      /* one-shot: K (default 10); iterative: per round (default 5) */
    int rounds;         /* iterative only (default 2) */
    int answer_tokens;  /* SLM's limit per attempt (default 512) */
    int coded;          /* 1: bits arithmetic-coded under the SLM's own P(yes); 0: raw bits */
} lmz_qa_params;

void lmz_qa_params_default(lmz_qa_params *p, enum lmz_qa_variant v, enum lmz_qa_task t);

/* The receiver's side (and half of the sender's): the SLM and the question model. */
typedef struct {
    const lmz_model *slm;
    const lmz_tokenizer *slm_tok;
    const lmz_model *qm;        /* NULL: the SLM asks */
    const lmz_tokenizer *qm_tok;
    int threads;
} lmz_qa_models;

/* The LLM's side, on the sender only. Calls receive a batch of N problems. */
typedef struct lmz_qa_oracle {
    /* The oracle's own solution to each problem (its reference; also the "LLM alone"
     * baseline). OUT[i]: malloc'd. 0, or -1 + lmz_fail. */
    int (*solve)(struct lmz_qa_oracle *o, const char *const *problems, int n, char **out);
    /* Yes (1) / no (0) to each question about ATTEMPTS[i], with the reference REFS[i] in
     * view: BITS[i * nq + j] answers QUESTIONS[i * nq + j]. 0, or -1 + lmz_fail. */
    int (*answer)(struct lmz_qa_oracle *o, const char *const *problems, const char *const *refs,
                  const char *const *attempts, const char *const *questions, int n, int nq, uint8_t *bits);
    /* Accept (1) / reject (0) ATTEMPTS[i] (iterative variant). 0, or -1 + lmz_fail. */
    int (*judge)(struct lmz_qa_oracle *o, const char *const *problems, const char *const *refs,
                 const char *const *attempts, int n, uint8_t *accept);
    void (*free)(struct lmz_qa_oracle *o);
    void *self;
    int max_tokens; /* solve()'s token limit for a reference solution (default 512; callers may change it) */
} lmz_qa_oracle;

/* An oracle running the local instruct model M (greedy; a yes/no is the larger of the
 * next-token logits of "Yes" and "No" — each the larger of the tokens starting "Yes"/" Yes",
 * "No"/" No"; a model without a chat template gets plain prompts). NULL + lmz_fail. */
lmz_qa_oracle *lmz_qa_oracle_local(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task,
                                   int threads);
/* An oracle behind an OpenAI-compatible /v1/chat/completions URL (temperature 0; a reply
 * is yes when its first word is "yes", case-insensitively, else no). */
lmz_qa_oracle *lmz_qa_oracle_endpoint(const char *url, const char *model, const char *api_key,
                                      enum lmz_qa_task task, double timeout_s);
/* The SLM answering its own questions (the self-refinement baseline: no LLM, no bits
 * needed by a receiver that has the SLM). */
lmz_qa_oracle *lmz_qa_oracle_self(const lmz_qa_models *m, enum lmz_qa_task task);

/* One problem's run. */
typedef struct {
    char *first_answer;    /* the SLM's attempt before any bit */
    char *answer;          /* the final answer (what decode reproduces) */
    char *reference;       /* the oracle's solution (encode only; NULL on decode) */
    int n_questions;
    char **questions;      /* every question asked, in order */
    uint8_t *question_bits;
    int n_judgements;      /* iterative: judge bits read/written */
    uint8_t *judge_bits;
    int n_bits;            /* decision bits in protocol order (judge + question bits) */
    uint8_t *bits;         /* the n_bits decisions in protocol order (1: yes / accept) */
    double *p_yes;         /* coded: the SLM's P(yes) before each decision (NULL when not coded) */
    int stored_raw;        /* coded: 1 when the problem's decisions cost less stored as raw bits */
    double coded_bits;     /* bits the problem's decisions take in the body: raw, n_bits; coded, its mode
                            * bit + min(n_bits, ideal_bits) (so <= n_bits + 1); the body adds the range
                            * coder's final bytes once per stream */
    double ideal_bits;     /* Σ −log2 P(decision) under P(yes) as the coder quantizes it
                            * (lmz_qa_prob_freq); n_bits when not coded */
} lmz_qa_result;

void lmz_qa_result_free(lmz_qa_result *r);

/* Sender: runs the protocol for PROBLEMS[0..n) with oracle O; RESULTS[i] receives each run
 * and STREAM (when not NULL) the compressed form (qa_format.h) of the whole batch.
 * 0, or -1 + lmz_fail. */
int lmz_qa_encode(const lmz_qa_models *m, const lmz_qa_params *p, lmz_qa_oracle *o, const char *const *problems,
                  int n, lmz_qa_result *results, lmz_bytebuf *stream);

/* Receiver: rebuilds RESULTS[0..n) (answers byte-identical to the sender's) from STREAM and
 * the problems. The models must be the ones the stream names (checked by fingerprint), and
 * the problems the ones it was made for (checked by checksum). 0, or -1 + lmz_fail with a
 * clear message for a truncated, corrupted or mismatched stream. */
int lmz_qa_decode(const lmz_qa_models *m, const uint8_t *stream, size_t len, const char *const *problems, int n,
                  lmz_qa_result *results);

#endif
