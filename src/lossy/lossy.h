/* lossy.h — lossy compression by succinct rewrite (lmz --lossy).
 *
 * An instruction model (the *rewriter*) is asked to rewrite the input as succinctly as it
 * can while keeping what a reader needs; N rewrites (best-of-N) are made as one batch, each
 * is coded losslessly by the archive's model (the *coder*, with the same context as the
 * input would have), and the one that codes smallest is kept, in an ordinary archive marked
 * LMZ_ARCHIVE_LOSSY (docs/format.md §10). When no rewrite codes smaller than the input
 * itself, the input's own lossless archive is kept instead: lossy mode never makes an
 * archive larger, or less faithful, than it has to be.
 *
 * Determinism: a local rewriter decodes greedily for N = 1 and samples with per-candidate
 * seeds from a base seed for N > 1; logits do not depend on threads or batching, so the
 * same input and options give the same archive on any thread count. A remote rewriter
 * (remote.h) is as deterministic as its server. */
#ifndef LMZ_LOSSY_H
#define LMZ_LOSSY_H

#include <stddef.h>
#include <stdint.h>

#include "../codec/codec.h"
#include "../coder/bytebuf.h"
#include "../generate/generate.h"

/* Best-of-N sampling (N > 1): lmz_generate seeds candidate i from a base seed (lmz --seed,
 * default 0) and i. */
#define LMZ_LOSSY_TEMPERATURE 0.7f
#define LMZ_LOSSY_TOP_K 40
#define LMZ_LOSSY_TOP_P 0.95f
/* A rewrite may be as long as the input (in the rewriter's tokens, or the coder's for a
 * remote rewriter), and at least this many tokens: a rewrite that needs more than the input
 * cannot code smaller than it, and a very short input still needs room to be restated. */
#define LMZ_LOSSY_MIN_TOKENS 64
#define LMZ_LOSSY_MAX_CANDIDATES 64

/* The default instruction (lmz --help prints it; --rewrite-prompt FILE replaces it). */
extern const char lmz_lossy_default_instruction[];

/* The rewriter's user message, as parts: INSTRUCTION; with a context, "\n\nThe text
 * answers this prompt:\n" and the context; then "\n\nText to rewrite:\n" and the input. */
typedef struct {
    const char *instruction;
    const uint8_t *context; /* NULL: none */
    size_t context_len;
    const uint8_t *input;
    size_t input_len;
} lmz_lossy_request;

/* The message as one malloc'd NUL-terminated string (what a remote rewriter is sent), or
 * NULL + lmz_fail. */
char *lmz_lossy_message(const lmz_lossy_request *r);

/* The generation limit for an input of INPUT_TOKENS tokens: max(LMZ_LOSSY_MIN_TOKENS, it). */
int lmz_lossy_token_limit(size_t input_tokens);

/* N rewrites (1 <= N <= LMZ_LOSSY_MAX_CANDIDATES) by the local instruct model M (its chat
 * template renders the message as the user's turn), generated as one batch on THREADS
 * threads: greedy for N = 1, else sampled (LMZ_LOSSY_TEMPERATURE, _TOP_K, _TOP_P) from
 * SEED. The context and the input are tokenized as plain text (text in them that looks
 * like a special token stays text). OUT[0..N) receives the texts (lmz_gen_output_free).
 * 0, or -1 + lmz_fail (e.g. the model has no chat template, the input does not fit its
 * context). */
int lmz_lossy_rewrite_local(const lmz_model *m, const lmz_tokenizer *tok, const lmz_lossy_request *r, int n,
                            uint64_t seed, int threads, lmz_gen_output *out);

/* A remote rewriter: an OpenAI-compatible chat completions endpoint over plain HTTP. */
typedef struct {
    const char *url;       /* http://HOST:PORT/v1/chat/completions */
    const char *model;     /* the request's "model", or NULL to send none */
    const char *api_key;   /* sent as "Authorization: Bearer KEY", or NULL */
    double timeout_s;      /* for the whole exchange */
} lmz_lossy_endpoint;

#define LMZ_LOSSY_DEFAULT_TIMEOUT_S 300.0
#define LMZ_LOSSY_MAX_REPLY (8u << 20)

/* N rewrites from endpoint E in one request: the message (lmz_lossy_message) as the user's
 * turn, "n": N, "max_tokens": MAX_TOKENS, "temperature" 0 for N = 1 and
 * LMZ_LOSSY_TEMPERATURE with "top_p" LMZ_LOSSY_TOP_P and "seed" SEED otherwise. The texts
 * are the choices' message contents in reply order; OUT[0..*N_GOT) receives them (free
 * with lmz_gen_output_free; n_tokens and reason are not known and left 0 / LMZ_STOP_EOG).
 * A server may return fewer choices than asked (some ignore "n"); more are refused. 0, or
 * -1 + lmz_fail: the connection or the time limit, an HTTP error status (with the server's
 * message when it sends one), a reply that is not JSON, has no choices, or a choice without
 * a string content. */
int lmz_lossy_rewrite_remote(const lmz_lossy_endpoint *e, const char *message, int n, int max_tokens, uint64_t seed,
                             lmz_gen_output *out, int *n_got);

/* The outcome of choosing among rewrites. */
typedef struct {
    size_t original_bytes;   /* the input's lossless archive */
    size_t *candidate_bytes; /* per candidate: its lossy archive, 0 when it was empty (not a rewrite) */
    int n_candidates;
    int kept;                /* the kept candidate (the smallest; ties: the lowest index), or -1 when
                                no rewrite codes smaller than the input and its lossless archive is kept */
    const char *kept_text;   /* the kept bytes (inside a candidate's text, or the input) */
    size_t kept_len;
    lmz_bytebuf archive;     /* the archive to write */
} lmz_lossy_result;

/* Surrounding whitespace is not part of a rewrite: candidate i's rewrite is TEXTS[i][0..LENS[i])
 * without it. Codes the input and every rewrite with C (whose lossy flag it sets for the
 * rewrites and clears again), and fills R. 0, or -1 + lmz_fail. */
int lmz_lossy_choose(lmz_codec *c, const uint8_t *input, size_t input_len, const char *const *texts,
                     const size_t *lens, int n, lmz_lossy_result *r);
void lmz_lossy_result_free(lmz_lossy_result *r);

#endif
