/* qa_internal.h — what the QA protocol (qa.c) and the oracles (oracle_*.c) share inside
 * src/qa/: prompt construction and question parsing (prompts.c) and the engine calls —
 * batched greedy generation and yes/no scoring — (engine.c). Not a public interface. */
#ifndef LMZ_QA_INTERNAL_H
#define LMZ_QA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "qa.h"

/* Engine calls take at most this many sequences at once; a step with more prompts makes
 * several calls (results do not depend on this: lmz's logits do not depend on batching). */
#define QA_MAX_SEQS 16

typedef struct {
    int32_t *ids;
    size_t n;
} qa_toks;

void qa_toks_free(qa_toks *t);

/* ---------------- prompts.c ---------------- */

/* The judge's question for TASK (asked of the oracle, and of the SLM for P(accept)). */
const char *qa_judge_question(enum lmz_qa_task task);
/* An oracle's judge() as its answer() to TASK's judge question, one per problem (the
 * oracles judge this way: ACCEPT[i] is the yes/no about ATTEMPTS[i]). 0, or -1 + lmz_fail. */
int qa_judge_by_answer(lmz_qa_oracle *o, enum lmz_qa_task task, const char *const *problems,
                       const char *const *refs, const char *const *attempts, int n, uint8_t *accept);
/* The token limit of a question list of K questions. */
int qa_question_tokens(int k);

/* The start of the question model's reply, written into its prompt (qa_prompt_questions
 * ends with it): the generated text continues it. */
extern const char qa_question_prefill[];

/* The SLM's first attempt (also the local and endpoint oracles' reference solution). */
int qa_prompt_attempt(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, const char *problem,
                      qa_toks *out);
/* The question model's request for K questions about ATTEMPT; PRIOR_Q/PRIOR_BITS[0..n_prior)
 * are the questions already answered (iterative variant; shown as facts, not to repeat). */
int qa_prompt_questions(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, const char *problem,
                        const char *attempt, char *const *prior_q, const uint8_t *prior_bits, int n_prior, int k,
                        qa_toks *out);
/* The SLM's refinement of ATTEMPT given every answered question. */
int qa_prompt_refine(const lmz_model *m, const lmz_tokenizer *tok, enum lmz_qa_task task, const char *problem,
                     const char *attempt, char *const *qs, const uint8_t *bits, int nq, qa_toks *out);
/* Yes/no prompts, in two parts: PREFIX (everything before the question) and TAIL (after
 * it); a question's prompt is PREFIX + the question as plain text + TAIL. The belief
 * prompt is the SLM's (problem and attempt); the checker prompt the oracle's (problem, its
 * reference, the attempt). */
int qa_prompt_belief(const lmz_model *m, const lmz_tokenizer *tok, const char *problem, const char *attempt,
                     qa_toks *prefix, qa_toks *tail);
int qa_prompt_checker(const lmz_model *m, const lmz_tokenizer *tok, const char *problem, const char *reference,
                      const char *attempt, qa_toks *prefix, qa_toks *tail);
/* The system prompt and user message (problem as is) of the reference solution, for an
 * endpoint; and the checker's messages for QUESTION, for an endpoint. Malloc'd. */
const char *qa_system_solve(enum lmz_qa_task task);
const char *qa_system_checker(void);
char *qa_checker_message(const char *problem, const char *reference, const char *attempt, const char *question);

/* Parses the numbered list in TEXT into exactly K questions (*OUT: K malloc'd strings):
 * the first K distinct numbered lines (or, when no line is numbered, lines ending in '?'),
 * each cut to 300 bytes, then the task's fixed fallback questions not already in the list
 * or in PRIOR[0..n_prior), in order (repeating when all are used). 0, or -1 + lmz_fail. */
int qa_parse_questions(const char *text, int k, enum lmz_qa_task task, char *const *prior, int n_prior, char ***out);

/* ---------------- engine.c ---------------- */

/* Greedy generation for PROMPTS[0..n) with model M, ending at an end-of-generation token,
 * MAX_TOKENS, or before STOP (NULL: none): OUT[i] receives the malloc'd text. 0, or -1 +
 * lmz_fail (a prompt with its token limit that does not fit the model's context). */
int qa_generate(const lmz_model *m, const lmz_tokenizer *tok, int threads, const qa_toks *prompts, int n,
                int max_tokens, const char *stop, char **out);
/* For each of N groups (a prompt PREFIX[i] shared by NQ questions), and each question
 * QUESTIONS[i * nq + j]: the next-token logits after PREFIX[i] + question + TAIL, reduced to
 * a "Yes" logit (the larger of the tokens starting "Yes" and " Yes") and a "No" logit (same
 * for "No", " No"), then to P(yes) = their two-way softmax (lmz_exp: the same bits on every
 * machine) into P_YES (may be NULL) and "Yes" beats "No" (strictly larger) into YES (may be
 * NULL). One prefill per prefix; the questions reuse it by rewinding the sequence. */
int qa_yesno(const lmz_model *m, const lmz_tokenizer *tok, int threads, const qa_toks *prefix, const qa_toks *tail,
             const char *const *questions, int n, int nq, double *p_yes, uint8_t *yes);
/* qa_yesno for N prompts each built as PREFIX[i] + TAILS[i] (qa_prompt_belief,
 * qa_prompt_checker), whose tails must all be the same: -1 + lmz_fail("internal: WHAT
 * prompts with different tails") when they are not. */
int qa_yesno_split(const lmz_model *m, const lmz_tokenizer *tok, int threads, const qa_toks *prefix,
                   const qa_toks *tails, const char *what, const char *const *questions, int n, int nq, double *p_yes,
                   uint8_t *yes);
/* Frees PREFIX[0..n) and TAILS[0..n) and the two arrays (either may be NULL). */
void qa_toks_free_split(qa_toks *prefix, qa_toks *tails, int n);

#endif
