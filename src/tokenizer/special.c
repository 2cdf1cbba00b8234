/* special.c — the special-token trie and the one-pass partition (see special.h).
 *
 * Why the replay is exact. llama.cpp decides candidate by candidate, in rank order; for
 * candidate c of length L it takes, inside each raw fragment, the leftmost occurrence,
 * then the leftmost one after it, and so on. Seen over the whole text that is: visit
 * c's occurrences by position and accept one iff none of its bytes is taken, by an
 * earlier candidate's token or by c's own previous one. Every taken interval is at
 * least L long (longest first), so one that overlaps [p, p+L) contains p or p+L-1: two
 * bit tests decide. The heap holds, per text position, only its longest undecided
 * allowed candidate, keyed (rank << 32 | position), so pops come in llama.cpp's order.
 * When p itself is taken, every shorter candidate at p fails too, and the position is
 * dropped; when only the end is, the next shorter candidate (a later rank) is queued. */
#include "special.h"

#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

#define NONE UINT32_MAX
#define FREE_KEY UINT64_MAX

static uint64_t edge_key(uint32_t node, uint8_t byte) { return ((uint64_t)node << 8) | byte; }

static size_t edge_slot(const lmz_specials *s, uint64_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & s->edges_mask;
    while (s->edges[i].key != FREE_KEY && s->edges[i].key != key) i = (i + 1) & s->edges_mask;
    return i;
}

static uint32_t child_of(const lmz_specials *s, uint32_t node, uint8_t byte) {
    if (node == 0) return s->root_child[byte];
    const lmz_trie_edge *e = &s->edges[edge_slot(s, edge_key(node, byte))];
    return e->key == FREE_KEY ? NONE : e->child;
}

typedef struct {
    uint32_t len, index;
    int32_t id;
} rank_key;

static int by_rank(const void *a, const void *b) {
    const rank_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The candidates' order: index into TOKENS by rank. */
static uint32_t *rank_order(const lmz_special_token *tokens, size_t n) {
    rank_key *keys = lmz_malloc((n ? n : 1) * sizeof *keys);
    uint32_t *order = lmz_malloc((n ? n : 1) * sizeof *order);
    if (!keys || !order) {
        free(keys);
        free(order);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) keys[i] = (rank_key){tokens[i].len, (uint32_t)i, tokens[i].id};
    qsort(keys, n, sizeof *keys, by_rank);
    for (size_t i = 0; i < n; i++) order[i] = keys[i].index;
    free(keys);
    return order;
}

int lmz_specials_init(lmz_specials *s, const lmz_special_token *tokens, size_t n) {
    memset(s, 0, sizeof *s);
    for (int b = 0; b < 256; b++) s->root_child[b] = NONE;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += tokens[i].len;
    if (n >= NONE || total >= NONE) return lmz_fail("tokenizer: special-token texts exceed 4 GiB");
    size_t cap = 16;
    while (cap < 2 * total) cap *= 2;
    s->n = (uint32_t)n;
    s->token = lmz_malloc((n ? n : 1) * sizeof *s->token);
    s->len = lmz_malloc((n ? n : 1) * sizeof *s->len);
    s->needs_parse_special = lmz_malloc(n ? n : 1);
    s->shorter = lmz_malloc((n ? n : 1) * sizeof *s->shorter);
    s->node_rank = lmz_malloc((total + 1) * sizeof *s->node_rank);
    s->edges = lmz_malloc(cap * sizeof *s->edges);
    uint32_t *order = rank_order(tokens, n);
    if (!s->token || !s->len || !s->needs_parse_special || !s->shorter || !s->node_rank || !s->edges || !order) {
        free(order);
        lmz_specials_free(s);
        return -1;
    }
    s->edges_mask = cap - 1;
    for (size_t i = 0; i < cap; i++) s->edges[i].key = FREE_KEY;

    uint32_t n_nodes = 1;
    s->node_rank[0] = NONE;
    for (uint32_t r = 0; r < n; r++) {
        const lmz_special_token *tok = &tokens[order[r]];
        s->token[r] = tok->id;
        s->len[r] = tok->len;
        s->needs_parse_special[r] = tok->needs_parse_special;
        uint32_t node = 0;
        for (uint32_t k = 0; k < tok->len; k++) {
            uint8_t byte = (uint8_t)tok->text[k];
            uint32_t child = child_of(s, node, byte);
            if (child == NONE) {
                child = n_nodes++;
                s->node_rank[child] = NONE;
                if (node == 0)
                    s->root_child[byte] = child;
                else {
                    lmz_trie_edge *e = &s->edges[edge_slot(s, edge_key(node, byte))];
                    e->key = edge_key(node, byte);
                    e->child = child;
                }
            }
            node = child;
        }
        /* A repeated text keeps its first rank: the later copy would find every
         * occurrence already taken. */
        if (s->node_rank[node] == NONE) s->node_rank[node] = r;
    }
    for (uint32_t r = 0; r < n; r++) {
        s->shorter[r] = NONE;
        const lmz_special_token *tok = &tokens[order[r]];
        uint32_t node = 0;
        for (uint32_t k = 0; k + 1 < tok->len; k++) {
            node = child_of(s, node, (uint8_t)tok->text[k]);
            if (s->node_rank[node] != NONE) s->shorter[r] = s->node_rank[node];
        }
    }
    free(order);
    return 0;
}

void lmz_specials_free(lmz_specials *s) {
    free(s->token);
    free(s->len);
    free(s->needs_parse_special);
    free(s->shorter);
    free(s->node_rank);
    free(s->edges);
    memset(s, 0, sizeof *s);
}

/* ---- partitioning ---- */

typedef struct {
    uint64_t *keys;
    size_t n, cap;
} key_list;

static int key_push(key_list *l, uint64_t key) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        uint64_t *keys = lmz_realloc(l->keys, cap * sizeof *keys);
        if (!keys) return -1;
        l->keys = keys;
        l->cap = cap;
    }
    l->keys[l->n++] = key;
    return 0;
}

static void sift_down(uint64_t *heap, size_t n, size_t i) {
    uint64_t v = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap[child + 1] < heap[child]) child++;
        if (heap[child] >= v) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = v;
}

static int heap_push(key_list *h, uint64_t key) {
    if (key_push(h, key) < 0) return -1;
    size_t i = h->n - 1;
    while (i > 0 && h->keys[(i - 1) / 2] > key) {
        h->keys[i] = h->keys[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->keys[i] = key;
    return 0;
}

static uint64_t heap_pop(key_list *h) {
    uint64_t top = h->keys[0];
    h->keys[0] = h->keys[--h->n];
    if (h->n) sift_down(h->keys, h->n, 0);
    return top;
}

static bool allowed(const lmz_specials *s, uint32_t rank, bool parse_special) {
    return parse_special || !s->needs_parse_special[rank];
}

/* The longest allowed candidate matching TEXT at P, or NONE. */
static uint32_t longest_match(const lmz_specials *s, const uint8_t *text, size_t len, size_t p, bool parse_special) {
    uint32_t best = NONE;
    uint32_t node = s->root_child[text[p]];
    for (size_t q = p; node != NONE;) {
        uint32_t r = s->node_rank[node];
        if (r != NONE && allowed(s, r, parse_special)) best = r; /* deeper is longer: a better rank */
        if (++q == len) break;
        node = child_of(s, node, text[q]);
    }
    return best;
}

static bool bit(const uint64_t *bits, size_t i) { return bits[i >> 6] >> (i & 63) & 1; }

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int fragment_push(lmz_fragment_list *l, size_t off, size_t len, int32_t token) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        lmz_fragment *items = lmz_realloc(l->items, cap * sizeof *items);
        if (!items) return -1;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = (lmz_fragment){off, len, token};
    return 0;
}

/* Decides every queued occurrence (see the file comment); ACCEPTED receives
 * (position << 32 | rank) of each special token cut out. */
static int replay(const lmz_specials *s, key_list *heap, uint64_t *taken, bool parse_special, key_list *accepted) {
    while (heap->n) {
        uint64_t key = heap_pop(heap);
        uint32_t r = (uint32_t)(key >> 32), p = (uint32_t)key, len = s->len[r];
        if (bit(taken, p)) continue;
        if (!bit(taken, p + len - 1)) {
            for (size_t i = p; i < (size_t)p + len; i++) taken[i >> 6] |= (uint64_t)1 << (i & 63);
            if (key_push(accepted, (uint64_t)p << 32 | r) < 0) return -1;
            continue;
        }
        uint32_t next = s->shorter[r];
        while (next != NONE && !allowed(s, next, parse_special)) next = s->shorter[next];
        if (next != NONE && heap_push(heap, (uint64_t)next << 32 | p) < 0) return -1;
    }
    return 0;
}

int lmz_specials_partition(const lmz_specials *s, const uint8_t *text, size_t len, bool parse_special,
                           lmz_fragment_list *out) {
    out->n = 0;
    key_list heap = {0}, accepted = {0};
    uint64_t *taken = NULL;
    int rc = 0;
    for (size_t p = 0; p < len && rc == 0; p++) {
        if (s->root_child[text[p]] == NONE) continue;
        uint32_t r = longest_match(s, text, len, p, parse_special);
        if (r != NONE) rc = key_push(&heap, (uint64_t)r << 32 | p);
    }
    if (rc == 0 && heap.n) {
        for (size_t i = heap.n / 2; i-- > 0;) sift_down(heap.keys, heap.n, i);
        taken = lmz_calloc((len + 63) / 64, sizeof *taken);
        rc = taken ? replay(s, &heap, taken, parse_special, &accepted) : -1;
    }
    if (rc == 0 && accepted.n) qsort(accepted.keys, accepted.n, sizeof *accepted.keys, compare_u64);
    size_t pos = 0;
    for (size_t i = 0; rc == 0 && i < accepted.n; i++) {
        size_t at = (size_t)(accepted.keys[i] >> 32);
        uint32_t r = (uint32_t)accepted.keys[i];
        if (at > pos) rc = fragment_push(out, pos, at - pos, -1);
        if (rc == 0) rc = fragment_push(out, at, s->len[r], s->token[r]);
        pos = at + s->len[r];
    }
    if (rc == 0 && pos < len) rc = fragment_push(out, pos, len - pos, -1);
    free(heap.keys);
    free(accepted.keys);
    free(taken);
    return rc;
}
