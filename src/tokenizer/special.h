/* special.h — special-token partitioning: cutting the CONTROL, USER_DEFINED and UNKNOWN
 * tokens' texts out of the input before BPE or SPM sees it, with the same result as
 * llama.cpp's tokenizer_st_partition.
 *
 * llama.cpp takes the candidates longest first and, for each, splits every remaining
 * text fragment at all its leftmost non-overlapping occurrences: one scan of the text
 * per candidate, which is slow with Gemma's ~6400 of them. Here one pass over the text
 * with a trie finds every occurrence, and a heap keyed by (candidate rank, position)
 * replays llama.cpp's decisions in its order (see special.c for why that is exact). */
#ifndef LMZ_SPECIAL_H
#define LMZ_SPECIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t id;
    const char *text;
    uint32_t len;             /* >= 1 */
    bool needs_parse_special; /* CONTROL and UNKNOWN: matched only with parse_special */
} lmz_special_token;

typedef struct {
    size_t off, len;
    int32_t token; /* -1: raw text still to tokenize */
} lmz_fragment;

typedef struct {
    lmz_fragment *items;
    size_t n, cap;
} lmz_fragment_list;

typedef struct {
    uint64_t key;   /* (node << 8) | byte; UINT64_MAX when free */
    uint32_t child;
} lmz_trie_edge;

typedef struct {
    /* Candidates by rank (the order llama.cpp tries them: longest text first; equal
     * lengths by id, where llama.cpp's std::sort leaves the order unspecified). */
    uint32_t n;
    int32_t *token;
    uint32_t *len;
    uint8_t *needs_parse_special;
    uint32_t *shorter;     /* rank of the longest candidate that is a proper prefix, or UINT32_MAX */
    /* The trie of candidate texts: node 0 is the root. */
    uint32_t root_child[256]; /* UINT32_MAX: no candidate starts with this byte */
    uint32_t *node_rank;      /* candidate whose text ends at the node, or UINT32_MAX */
    lmz_trie_edge *edges;     /* open addressing on key */
    size_t edges_mask;
} lmz_specials;

/* Builds the index over TOKENS[0..n). -1 + lmz_fail on allocation failure. */
int lmz_specials_init(lmz_specials *s, const lmz_special_token *tokens, size_t n);
void lmz_specials_free(lmz_specials *s);

/* Splits TEXT[0..len) (len < 4 GiB) into raw-text fragments and special tokens, in text
 * order, into OUT (its previous contents are discarded). -1 + lmz_fail on allocation
 * failure. */
int lmz_specials_partition(const lmz_specials *s, const uint8_t *text, size_t len, bool parse_special,
                           lmz_fragment_list *out);

#endif
