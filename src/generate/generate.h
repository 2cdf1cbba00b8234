/* generate.h — text generation: several prompts advanced together as one batch.
 *
 * Each prompt is a sequence of the context; prompts are prefilled in one batch, then every
 * step decodes one token for every unfinished sequence in one batch. Because logits do not
 * depend on batching or threads, and sampling is seeded per prompt, the text for prompt i
 * depends only on prompt i, its index, the seed and the parameters. */
#ifndef LMZ_GENERATE_H
#define LMZ_GENERATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../model/model.h"
#include "../tokenizer/tokenizer.h"
#include "sampler.h"

typedef struct {
    int max_tokens;
    lmz_sampling sampling;
    uint64_t seed;
    const char *const *stop; /* stop strings: generation ends before the first occurrence */
    int n_stop;
} lmz_gen_params;

enum lmz_stop_reason { LMZ_STOP_EOG, LMZ_STOP_STRING, LMZ_STOP_LENGTH, LMZ_STOP_CONTEXT, LMZ_STOP_CANCELLED };

typedef struct {
    char *text;             /* malloc'd, NUL-terminated; the stop string is not included */
    size_t len;
    int n_tokens;
    enum lmz_stop_reason reason;
} lmz_gen_output;

/* Generates for prompts[i][0..lens[i]) in sequence i of C (which needs n_seq >= N; a
 * sequence that reaches the context size stops with LMZ_STOP_CONTEXT). OUT[i] receives
 * the result (free with lmz_gen_output_free). 0, or -1 + lmz_fail. */
int lmz_generate(lmz_ctx *c, const lmz_tokenizer *tok, const int32_t *const *prompts, const size_t *lens, int n,
                 const lmz_gen_params *p, lmz_gen_output *out);

/* lmz_generate for prompts with different parameters, e.g. the requests a server batches
 * together: prompt i is generated with PARAMS[i] and draws its random numbers as prompt
 * STREAM[i] of an lmz_generate call does (from PARAMS[i]->seed and STREAM[i]). So its text
 * is the one lmz_generate gives it at index STREAM[i] with the same parameters, whatever
 * else is in the batch. CANCEL, when not NULL, holds for each prompt NULL or a flag another
 * thread may set (e.g. when a server's client has gone): the prompt then stops before its
 * next token, with LMZ_STOP_CANCELLED. */
int lmz_generate_each(lmz_ctx *c, const lmz_tokenizer *tok, const int32_t *const *prompts, const size_t *lens, int n,
                      const lmz_gen_params *const *params, const int *stream, const atomic_int *const *cancel,
                      lmz_gen_output *out);
void lmz_gen_output_free(lmz_gen_output *o);
const char *lmz_stop_reason_name(enum lmz_stop_reason r);

#endif
