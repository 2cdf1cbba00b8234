/* bpe.h — byte-level BPE merging of one pre-tokenized word, with llama.cpp's exact merge
 * order (lowest merge rank first, ties to the leftmost pair).
 *
 * Merges are stored by *piece*: every string that can be a symbol during merging (the
 * 256 byte-encoded single bytes and every merge result) is interned once at load, so a
 * merge lookup is a hash of two piece ids instead of two string concatenations. A symbol
 * is always one of these pieces, which makes this equivalent to llama.cpp's
 * string-keyed table. Words are given as raw bytes: each raw byte is exactly one
 * byte-encoded character, so no byte-encoded copy of the text is ever built. */
#ifndef LMZ_BPE_H
#define LMZ_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h"
#include "strmap.h"
#include "token_list.h"

typedef struct {
    uint64_t key;    /* (left piece << 32) | right piece; UINT64_MAX when free */
    uint32_t rank;   /* index in tokenizer.ggml.merges: lower merges first */
    uint32_t result; /* piece of left + right */
} lmz_bpe_merge;

typedef struct {
    int32_t *piece_token;         /* piece id -> token id, -1 when its text is no token */
    uint32_t byte_piece[256];     /* raw byte -> its single-character piece */
    /* When a final symbol is no token, llama.cpp emits, for each byte of its
     * byte-encoded text, the token whose text is that single byte (if any). Per raw
     * byte that is at most two tokens (its character is 1 or 2 UTF-8 bytes). */
    int32_t byte_fallback[256][2]; /* -1 = nothing */
    lmz_bpe_merge *merges;        /* open addressing on key */
    size_t merges_mask;           /* capacity - 1 (capacity a power of two) */
} lmz_bpe;

/* Builds the merge table from tokenizer.ggml.merges; VOCAB maps token text -> id.
 * -1 + lmz_fail on malformed merges or allocation failure. */
int lmz_bpe_init(lmz_bpe *b, const gguf_file *f, const lmz_strmap *vocab);
void lmz_bpe_free(lmz_bpe *b);

/* Reusable scratch space for merging words (one per tokenize call; zero-initialize). */
typedef struct {
    uint32_t *piece, *prev, *next; /* per symbol; prev/next link the live symbols */
    struct lmz_bpe_candidate *heap;
    size_t heap_len, cap;
} lmz_bpe_scratch;

void lmz_bpe_scratch_free(lmz_bpe_scratch *s);

/* Merges WORD[0..len) (raw bytes, len >= 1) and appends its token ids to OUT.
 * -1 + lmz_fail on allocation failure. */
int lmz_bpe_word(const lmz_bpe *b, lmz_bpe_scratch *s, const uint8_t *word, size_t len, lmz_token_list *out);

#endif
