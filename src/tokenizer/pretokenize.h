/* pretokenize.h — splitting text (as code points) into the words that byte-level BPE
 * merges independently. Each splitter reproduces one of llama.cpp's hand-written regex
 * matchers (unicode_regex_split_custom_gpt2/_llama3/_qwen2), including their quirks, so
 * that word boundaries — and so token ids — match llama.cpp exactly. */
#ifndef LMZ_PRETOKENIZE_H
#define LMZ_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

enum lmz_pretokenizer {
    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    LMZ_PRETOK_GPT2,
    /* \p{N} first (every number code point is a word of its own), then GPT2 on the
     * rest: smollm, starcoder, refact, command-r, ... */
    LMZ_PRETOK_DIGITS_THEN_GPT2,
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
     * | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    LMZ_PRETOK_LLAMA3,
    /* As LLAMA3 with \p{N} (single digits) instead of \p{N}{1,3}. */
    LMZ_PRETOK_QWEN2,
};

/* Splits cpts[0..n) into words; word_ends[k] receives the end index of word k (so word
 * k is [word_ends[k-1], word_ends[k]), word -1 ending at 0). word_ends needs room for
 * n entries (words are never empty). Returns the number of words. */
size_t lmz_pretokenize(enum lmz_pretokenizer kind, const uint32_t *cpts, size_t n, uint32_t *word_ends);

#endif
