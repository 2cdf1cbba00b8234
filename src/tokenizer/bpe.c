/* bpe.c — the BPE merge table (built from tokenizer.ggml.merges) and per-word merging.
 * See bpe.h for why merges are keyed by interned pieces. */
#include "bpe.h"

#include <stdlib.h>
#include <string.h>

#include "../util/error.h"
#include "unicode.h"

#define NONE UINT32_MAX
#define MERGED_AWAY UINT32_MAX
#define FREE_KEY UINT64_MAX
#define MERGES_KEY "tokenizer.ggml.merges"

struct lmz_bpe_candidate {
    uint32_t rank;
    uint32_t left, right;             /* symbol indices */
    uint32_t left_piece, right_piece; /* what they held when queued: stale otherwise */
    uint32_t result;                  /* the merged piece */
};

static uint64_t pair_key(uint32_t left, uint32_t right) { return ((uint64_t)left << 32) | right; }

static size_t pair_slot(const lmz_bpe *b, uint64_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & b->merges_mask;
    while (b->merges[i].key != FREE_KEY && b->merges[i].key != key) i = (i + 1) & b->merges_mask;
    return i;
}

/* Interns TEXT as a piece (ids are dense, in order of first appearance); -1 on failure. */
static int64_t intern(lmz_strmap *pieces, const char *text, size_t len) {
    bool inserted;
    lmz_strmap_entry *e = lmz_strmap_insert(pieces, text, len, &inserted);
    if (!e) return -1;
    if (inserted) e->value = (int32_t)(pieces->count - 1);
    return e->value;
}

static int build_merges(lmz_bpe *b, const gguf_file *f, uint64_t n_merges, lmz_strmap *pieces) {
    for (int byte = 0; byte < 256; byte++) {
        uint8_t utf8[4];
        size_t n = lmz_utf8_encode(lmz_byte_to_cpt((uint8_t)byte), utf8);
        int64_t id = intern(pieces, (const char *)utf8, n);
        if (id < 0) return -1;
        b->byte_piece[byte] = (uint32_t)id;
    }
    size_t cap = 1024;
    while (cap < n_merges * 2) cap *= 2; /* load factor <= 1/2 */
    b->merges = lmz_malloc(cap * sizeof *b->merges);
    if (!b->merges) return -1;
    b->merges_mask = cap - 1;
    for (size_t i = 0; i < cap; i++) b->merges[i].key = FREE_KEY;

    char *joined = NULL;
    size_t joined_cap = 0;
    int rc = 0;
    for (uint64_t rank = 0; rank < n_merges; rank++) {
        gguf_str m = gguf_array_str(f, MERGES_KEY, rank);
        /* llama.cpp splits at the first space at index >= 1; a merge without one becomes
         * ("", ""), which no symbol ever matches, so it is skipped here. */
        const char *space = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
        if (!space) continue;
        size_t left_len = (size_t)(space - m.ptr), right_len = m.len - left_len - 1;
        if (left_len + right_len > joined_cap) {
            joined_cap = (left_len + right_len) * 2;
            char *p = lmz_realloc(joined, joined_cap);
            if (!p) { rc = -1; break; }
            joined = p;
        }
        memcpy(joined, m.ptr, left_len);
        memcpy(joined + left_len, space + 1, right_len);
        int64_t left = intern(pieces, m.ptr, left_len);
        int64_t right = left < 0 ? -1 : intern(pieces, space + 1, right_len);
        int64_t result = right < 0 ? -1 : intern(pieces, joined, left_len + right_len);
        if (result < 0) { rc = -1; break; }
        uint64_t key = pair_key((uint32_t)left, (uint32_t)right);
        lmz_bpe_merge *slot = &b->merges[pair_slot(b, key)];
        if (slot->key == FREE_KEY) { /* a repeated pair keeps its first (lowest) rank */
            slot->key = key;
            slot->rank = (uint32_t)rank;
            slot->result = (uint32_t)result;
        }
    }
    free(joined);
    return rc;
}

int lmz_bpe_init(lmz_bpe *b, const gguf_file *f, const lmz_strmap *vocab) {
    memset(b, 0, sizeof *b);
    enum gguf_value_type type;
    uint64_t n_merges;
    if (gguf_find_key(f, MERGES_KEY) < 0)
        return lmz_fail("tokenizer: %s is missing (a gpt2/BPE tokenizer needs its merge list)", MERGES_KEY);
    if (!gguf_get_array(f, MERGES_KEY, &type, &n_merges) || type != GGUF_STRING)
        return lmz_fail("tokenizer: %s must be an array of strings", MERGES_KEY);
    if (n_merges >= UINT32_MAX / 4) return lmz_fail("tokenizer: %s has too many entries", MERGES_KEY);

    lmz_strmap pieces;
    if (lmz_strmap_init(&pieces, 256 + 2 * n_merges) < 0) return -1;
    int rc = build_merges(b, f, n_merges, &pieces);
    if (rc == 0) {
        b->piece_token = lmz_malloc((pieces.count ? pieces.count : 1) * sizeof *b->piece_token);
        if (!b->piece_token) rc = -1;
    }
    if (rc == 0) {
        for (size_t i = 0; i < pieces.capacity; i++) {
            const lmz_strmap_entry *e = &pieces.entries[i];
            if (e->key_len == UINT32_MAX) continue;
            b->piece_token[e->value] = lmz_strmap_get(vocab, lmz_strmap_key(&pieces, e), e->key_len);
        }
        for (int byte = 0; byte < 256; byte++) {
            uint8_t utf8[4];
            size_t n = lmz_utf8_encode(lmz_byte_to_cpt((uint8_t)byte), utf8);
            for (size_t k = 0; k < 2; k++)
                b->byte_fallback[byte][k] = k < n ? lmz_strmap_get(vocab, &utf8[k], 1) : -1;
        }
    }
    lmz_strmap_free(&pieces);
    if (rc < 0) lmz_bpe_free(b);
    return rc;
}

void lmz_bpe_free(lmz_bpe *b) {
    free(b->piece_token);
    free(b->merges);
    memset(b, 0, sizeof *b);
}

void lmz_bpe_scratch_free(lmz_bpe_scratch *s) {
    free(s->piece);
    free(s->prev);
    free(s->next);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

static int reserve_scratch(lmz_bpe_scratch *s, size_t n) {
    if (n <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n) cap *= 2;
    uint32_t *piece = lmz_realloc(s->piece, cap * sizeof *piece);
    if (!piece) return -1;
    s->piece = piece;
    uint32_t *prev = lmz_realloc(s->prev, cap * sizeof *prev);
    if (!prev) return -1;
    s->prev = prev;
    uint32_t *next = lmz_realloc(s->next, cap * sizeof *next);
    if (!next) return -1;
    s->next = next;
    /* Each merge queues at most two candidates and there are n-1 initial ones. */
    struct lmz_bpe_candidate *heap = lmz_realloc(s->heap, 3 * cap * sizeof *heap);
    if (!heap) return -1;
    s->heap = heap;
    s->cap = cap;
    return 0;
}

/* Min-heap order: lower rank first; on equal rank the leftmost pair (llama.cpp's
 * comparator on (rank, left)). */
static int before(const struct lmz_bpe_candidate *a, const struct lmz_bpe_candidate *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(lmz_bpe_scratch *s, struct lmz_bpe_candidate c) {
    size_t i = s->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&c, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = c;
}

static struct lmz_bpe_candidate heap_pop(lmz_bpe_scratch *s) {
    struct lmz_bpe_candidate top = s->heap[0], last = s->heap[--s->heap_len];
    size_t i = 0, n = s->heap_len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && before(&s->heap[child + 1], &s->heap[child])) child++;
        if (!before(&s->heap[child], &last)) break;
        s->heap[i] = s->heap[child];
        i = child;
    }
    if (n) s->heap[i] = last;
    return top;
}

static void queue_pair(const lmz_bpe *b, lmz_bpe_scratch *s, uint32_t left, uint32_t right) {
    if (left == NONE || right == NONE) return;
    uint64_t key = pair_key(s->piece[left], s->piece[right]);
    const lmz_bpe_merge *m = &b->merges[pair_slot(b, key)];
    if (m->key == FREE_KEY) return;
    heap_push(s, (struct lmz_bpe_candidate){m->rank, left, right, s->piece[left], s->piece[right], m->result});
}

static int emit_symbol(const lmz_bpe *b, uint32_t piece, const uint8_t *bytes, size_t len, lmz_token_list *out) {
    int32_t token = b->piece_token[piece];
    if (token >= 0) return lmz_token_list_push(out, token);
    for (size_t i = 0; i < len; i++)
        for (int k = 0; k < 2; k++)
            if (b->byte_fallback[bytes[i]][k] >= 0 && lmz_token_list_push(out, b->byte_fallback[bytes[i]][k]) < 0)
                return -1;
    return 0;
}

int lmz_bpe_word(const lmz_bpe *b, lmz_bpe_scratch *s, const uint8_t *word, size_t len, lmz_token_list *out) {
    if (len == 1) return emit_symbol(b, b->byte_piece[word[0]], word, 1, out);
    if (reserve_scratch(s, len) < 0) return -1;
    for (size_t i = 0; i < len; i++) {
        s->piece[i] = b->byte_piece[word[i]];
        s->prev[i] = i ? (uint32_t)(i - 1) : NONE;
        s->next[i] = i + 1 < len ? (uint32_t)(i + 1) : NONE;
    }
    s->heap_len = 0;
    for (size_t i = 1; i < len; i++) queue_pair(b, s, (uint32_t)(i - 1), (uint32_t)i);

    while (s->heap_len) {
        struct lmz_bpe_candidate c = heap_pop(s);
        /* Symbols only grow, and a piece fixes its text, so a candidate whose two
         * symbols still hold the queued pieces is exactly llama.cpp's "left + right
         * still equals the queued text" test. */
        if (s->piece[c.left] != c.left_piece || s->piece[c.right] != c.right_piece) continue;
        s->piece[c.left] = c.result;
        s->piece[c.right] = MERGED_AWAY;
        uint32_t after = s->next[c.right];
        s->next[c.left] = after;
        if (after != NONE) s->prev[after] = c.left;
        queue_pair(b, s, s->prev[c.left], c.left);
        queue_pair(b, s, c.left, after);
    }

    for (uint32_t i = 0; i != NONE; i = s->next[i]) {
        size_t end = s->next[i] != NONE ? s->next[i] : len;
        if (emit_symbol(b, s->piece[i], word + i, end - i, out) < 0) return -1;
    }
    return 0;
}
