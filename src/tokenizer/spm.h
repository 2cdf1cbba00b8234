/* spm.h — SentencePiece-style tokenization (tokenizer.ggml.model = "llama": Llama 2,
 * Gemma) of one raw-text fragment, with the ids of llama.cpp's llm_tokenizer_spm_session:
 *   - every space becomes "▁" (U+2581), and one is prepended when asked (add_space_prefix);
 *   - the bytes are cut into symbols by the length their lead byte announces (no UTF-8
 *     validation: an invalid lead byte may swallow the bytes after it);
 *   - adjacent symbols whose concatenation is a token merge, highest token score first,
 *     ties to the leftmost pair;
 *   - a final symbol that is no token is emitted byte by byte ("<0xHH>" tokens).
 *
 * Speed: merging never joins symbols across a point that no token can span, so the
 * text before each "▁" symbol can be merged on its own — and, as words repeat, looked
 * up in a per-call cache. A token spans such a point only if it has "▁" after its first
 * byte (Gemma 3 has one: ">▁</"); those are checked at every candidate point, and a
 * vocabulary with too many of them is merged one fragment at a time. */
#ifndef LMZ_SPM_H
#define LMZ_SPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h"
#include "strmap.h"
#include "token_list.h"

/* A token with "▁" at byte OFFSET > 0: it would span a split point at that "▁". */
typedef struct {
    const char *text;   /* in the vocabulary's key arena */
    uint32_t len, offset;
} lmz_spm_spanning;

typedef struct {
    const lmz_strmap *vocab; /* token text -> id (the tokenizer's; not owned) */
    float *score;            /* per token id: the merge priority */
    lmz_spm_spanning *spanning;
    size_t n_spanning;
    bool split_at_spaces;    /* false when there are too many spanning tokens to check */
    /* Byte fallback: the token "<0xHH>", else the token whose text is that one byte
     * (llama_vocab::byte_to_token); -1 when neither exists. */
    int32_t byte_token[256];
} lmz_spm;

/* Reads tokenizer.ggml.scores (float32 or int32; absent: all 0) for N_VOCAB tokens and
 * finds the byte-fallback and spanning tokens in VOCAB (which must not change
 * afterwards). -1 + lmz_fail on a malformed key or allocation failure. */
int lmz_spm_init(lmz_spm *m, const gguf_file *f, const lmz_strmap *vocab, int32_t n_vocab);
void lmz_spm_free(lmz_spm *m);

/* Reusable buffers and the word cache for tokenizing fragments (one per tokenize call,
 * so that a shared tokenizer stays thread-safe; zero-initialize). */
typedef struct {
    uint8_t *text; /* the fragment with spaces escaped */
    size_t text_cap;
    struct lmz_spm_symbol *symbols;
    size_t symbols_cap;
    struct lmz_spm_bigram *heap;
    size_t heap_len, heap_cap;
    lmz_strmap cache;      /* escaped word -> index into cache_spans */
    struct lmz_spm_span *cache_spans;
    size_t n_spans, cap_spans;
    lmz_token_list cache_ids;
} lmz_spm_scratch;

void lmz_spm_scratch_free(lmz_spm_scratch *s);

/* Appends the tokens of TEXT[0..len) (len >= 1 or space_prefix) to OUT; SPACE_PREFIX
 * prepends a space first. -1 + lmz_fail on allocation failure or a byte that has no
 * fallback token (llama.cpp throws there). */
int lmz_spm_fragment(const lmz_spm *m, lmz_spm_scratch *s, const uint8_t *text, size_t len, bool space_prefix,
                     lmz_token_list *out);

#endif
