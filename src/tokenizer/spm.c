/* spm.c — the SPM score table, byte fallback, and the tokenizing of one fragment:
 * escaping, splitting into words where no token can span, and bigram merging through a
 * per-call word cache (see spm.h). Behaviour follows llama.cpp's
 * llm_tokenizer_spm_session (gguf-spec.md §5.3). */
#include "spm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

#define NONE UINT32_MAX
#define SCORES_KEY "tokenizer.ggml.scores"
/* More (token, offset) pairs than this would make checking split points cost more than
 * it saves; such vocabularies are merged a fragment at a time. */
#define MAX_SPANNING 64
/* Longer words are merged every time rather than cached: they rarely repeat. */
#define MAX_CACHED_WORD 256

/* "▁", which stands for a space inside SentencePiece tokens. */
static const uint8_t ESCAPED_SPACE[3] = {0xE2, 0x96, 0x81};

struct lmz_spm_symbol {
    uint32_t start, len; /* into the escaped text; len 0: merged into its left neighbour */
    uint32_t prev, next; /* the live symbols, linked */
};

struct lmz_spm_span {
    uint32_t off, n; /* into cache_ids */
};

struct lmz_spm_bigram {
    float score;        /* of the token the two symbols would form */
    uint32_t left, right;
    uint32_t len;       /* their combined length when queued: stale if it changed */
};

/* The tokens that could span a split point (see spm.h). */
static int find_spanning(lmz_spm *m) {
    m->spanning = lmz_malloc(MAX_SPANNING * sizeof *m->spanning);
    if (!m->spanning) return -1;
    m->split_at_spaces = true;
    for (size_t i = 0; i < m->vocab->capacity && m->split_at_spaces; i++) {
        const lmz_strmap_entry *e = &m->vocab->entries[i];
        if (e->key_len == UINT32_MAX) continue;
        const char *text = lmz_strmap_key(m->vocab, e);
        for (uint32_t k = 1; k + 3 <= e->key_len; k++) {
            if (memcmp(text + k, ESCAPED_SPACE, 3)) continue;
            if (m->n_spanning == MAX_SPANNING) {
                m->split_at_spaces = false;
                break;
            }
            m->spanning[m->n_spanning++] = (lmz_spm_spanning){text, e->key_len, k};
        }
    }
    return 0;
}

int lmz_spm_init(lmz_spm *m, const gguf_file *f, const lmz_strmap *vocab, int32_t n_vocab) {
    memset(m, 0, sizeof *m);
    m->vocab = vocab;
    m->score = lmz_calloc((size_t)n_vocab, sizeof *m->score);
    if (!m->score) return -1;
    if (gguf_find_key(f, SCORES_KEY) >= 0) {
        enum gguf_value_type type;
        uint64_t n;
        if (!gguf_get_array(f, SCORES_KEY, &type, &n) || (type != GGUF_FLOAT32 && type != GGUF_INT32)) {
            lmz_spm_free(m);
            return lmz_fail("tokenizer: %s must be an array of float32 or int32", SCORES_KEY);
        }
        if (n < (uint64_t)n_vocab) {
            lmz_spm_free(m);
            return lmz_fail("tokenizer: %s has %llu entries for %d tokens", SCORES_KEY, (unsigned long long)n, n_vocab);
        }
        /* float32 round-trips through double exactly; int32 becomes the nearest float,
         * as llama.cpp's static_cast gives */
        for (int32_t i = 0; i < n_vocab; i++) m->score[i] = (float)gguf_array_num(f, SCORES_KEY, (uint64_t)i);
    }
    for (int byte = 0; byte < 256; byte++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", byte);
        int32_t id = lmz_strmap_get(vocab, hex, 6);
        /* llama.cpp builds the single-byte text as a C string, so byte 0 looks up "" */
        if (id < 0) id = lmz_strmap_get(vocab, &(char){(char)byte}, byte ? 1 : 0);
        m->byte_token[byte] = id;
    }
    return find_spanning(m);
}

void lmz_spm_free(lmz_spm *m) {
    free(m->score);
    free(m->spanning);
    memset(m, 0, sizeof *m);
}

void lmz_spm_scratch_free(lmz_spm_scratch *s) {
    free(s->text);
    free(s->symbols);
    free(s->heap);
    lmz_strmap_free(&s->cache);
    free(s->cache_spans);
    free(s->cache_ids.ids);
    memset(s, 0, sizeof *s);
}

/* Room for merging a word of N bytes (at most N symbols). */
static int reserve_merge(lmz_spm_scratch *s, size_t n) {
    if (n > s->symbols_cap) {
        struct lmz_spm_symbol *symbols = lmz_realloc(s->symbols, n * sizeof *symbols);
        if (!symbols) return -1;
        s->symbols = symbols;
        s->symbols_cap = n;
    }
    /* n-1 initial pairs and at most two per merge */
    if (3 * n > s->heap_cap) {
        struct lmz_spm_bigram *heap = lmz_realloc(s->heap, 3 * n * sizeof *heap);
        if (!heap) return -1;
        s->heap = heap;
        s->heap_cap = 3 * n;
    }
    return 0;
}

/* Max-heap order: higher score first; on equal scores the leftmost pair (llama.cpp's
 * comparator). Two live bigrams never share a left symbol, so this order is total on
 * the ones that get merged. */
static bool before(const struct lmz_spm_bigram *a, const struct lmz_spm_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(lmz_spm_scratch *s, struct lmz_spm_bigram b) {
    size_t i = s->heap_len++;
    while (i > 0 && before(&b, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = b;
}

static struct lmz_spm_bigram heap_pop(lmz_spm_scratch *s) {
    struct lmz_spm_bigram top = s->heap[0], last = s->heap[--s->heap_len];
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

static void queue_bigram(const lmz_spm *m, lmz_spm_scratch *s, uint32_t left, uint32_t right) {
    if (left == NONE || right == NONE) return;
    const struct lmz_spm_symbol *l = &s->symbols[left], *r = &s->symbols[right];
    int32_t id = lmz_strmap_get(m->vocab, s->text + l->start, l->len + r->len);
    if (id < 0) return;
    heap_push(s, (struct lmz_spm_bigram){m->score[id], left, right, l->len + r->len});
}

/* The byte length a lead byte announces (llama.cpp's unicode_len_utf8): continuation
 * bytes count as 1, F8..FF as 4. */
static uint32_t announced_len(uint8_t lead) {
    static const uint8_t by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_high_nibble[lead >> 4];
}

/* A final symbol: its token, or one fallback token per byte. llama.cpp would next look
 * the text up in its rev_merge map, but a symbol made by merging is always a token
 * (a pair is queued only when its concatenation is one), so only unmerged symbols get
 * here, and rev_merge never holds a text that is no token. */
static int emit_symbol(const lmz_spm *m, const uint8_t *text, uint32_t len, lmz_token_list *out) {
    int32_t id = lmz_strmap_get(m->vocab, text, len);
    if (id >= 0) return lmz_token_list_push(out, id);
    for (uint32_t i = 0; i < len; i++) {
        if (m->byte_token[text[i]] < 0)
            return lmz_fail("tokenize: the vocabulary has no token for byte 0x%02X (neither <0x%02X> nor the byte "
                            "itself); llama.cpp fails here too", text[i], text[i]);
        if (lmz_token_list_push(out, m->byte_token[text[i]]) < 0) return -1;
    }
    return 0;
}

/* Merges the escaped text s->text[from..to) and appends its tokens. */
static int merge(const lmz_spm *m, lmz_spm_scratch *s, size_t from, size_t to, lmz_token_list *out) {
    if (reserve_merge(s, to - from) < 0) return -1;
    uint32_t n_symbols = 0;
    for (size_t off = from; off < to; n_symbols++) {
        uint32_t sym_len = announced_len(s->text[off]);
        if (sym_len > to - off) sym_len = (uint32_t)(to - off);
        s->symbols[n_symbols] = (struct lmz_spm_symbol){(uint32_t)off, sym_len, n_symbols ? n_symbols - 1 : NONE,
                                                        off + sym_len < to ? n_symbols + 1 : NONE};
        off += sym_len;
    }
    s->heap_len = 0;
    for (uint32_t i = 1; i < n_symbols; i++) queue_bigram(m, s, i - 1, i);

    while (s->heap_len) {
        struct lmz_spm_bigram b = heap_pop(s);
        struct lmz_spm_symbol *left = &s->symbols[b.left], *right = &s->symbols[b.right];
        /* Stale: a side was merged away, or the right side grew since it was queued (the
         * left symbol's start never moves, so its length settles the text). */
        if (left->len == 0 || right->len == 0 || left->len + right->len != b.len) continue;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (right->next != NONE) s->symbols[right->next].prev = b.left;
        queue_bigram(m, s, left->prev, b.left);
        queue_bigram(m, s, b.left, left->next);
    }

    /* symbol 0 is never merged away: merging keeps the left symbol */
    for (uint32_t i = 0; i != NONE; i = s->symbols[i].next)
        if (emit_symbol(m, s->text + s->symbols[i].start, s->symbols[i].len, out) < 0) return -1;
    return 0;
}

/* Merges the word s->text[from..to) through the cache. */
static int merge_word(const lmz_spm *m, lmz_spm_scratch *s, size_t from, size_t to, lmz_token_list *out) {
    if (to - from > MAX_CACHED_WORD) return merge(m, s, from, to, out);
    if (!s->cache.entries && lmz_strmap_init(&s->cache, 1024) < 0) return -1;
    bool inserted;
    lmz_strmap_entry *e = lmz_strmap_insert(&s->cache, s->text + from, to - from, &inserted);
    if (!e) return -1;
    if (!inserted) {
        const struct lmz_spm_span *span = &s->cache_spans[e->value];
        for (uint32_t k = 0; k < span->n; k++)
            if (lmz_token_list_push(out, s->cache_ids.ids[span->off + k]) < 0) return -1;
        return 0;
    }
    size_t first = out->n;
    if (merge(m, s, from, to, out) < 0) return -1;
    if (s->n_spans == s->cap_spans) {
        size_t cap = s->cap_spans ? s->cap_spans * 2 : 1024;
        struct lmz_spm_span *spans = lmz_realloc(s->cache_spans, cap * sizeof *spans);
        if (!spans) return -1;
        s->cache_spans = spans;
        s->cap_spans = cap;
    }
    e->value = (int32_t)s->n_spans;
    s->cache_spans[s->n_spans++] = (struct lmz_spm_span){(uint32_t)s->cache_ids.n, (uint32_t)(out->n - first)};
    for (size_t k = first; k < out->n; k++)
        if (lmz_token_list_push(&s->cache_ids, out->ids[k]) < 0) return -1;
    return 0;
}

/* Whether a token could span the "▁" symbol at AT in s->text[0..n): then no split there. */
static bool spanned(const lmz_spm *m, const lmz_spm_scratch *s, size_t at, size_t n) {
    for (size_t i = 0; i < m->n_spanning; i++) {
        const lmz_spm_spanning *sp = &m->spanning[i];
        if (at >= sp->offset && at - sp->offset + sp->len <= n && !memcmp(s->text + at - sp->offset, sp->text, sp->len))
            return true;
    }
    return false;
}

int lmz_spm_fragment(const lmz_spm *m, lmz_spm_scratch *s, const uint8_t *text, size_t len, bool space_prefix,
                     lmz_token_list *out) {
    if (3 * (len + 1) > s->text_cap) {
        uint8_t *escaped = lmz_realloc(s->text, 3 * (len + 1));
        if (!escaped) return -1;
        s->text = escaped;
        s->text_cap = 3 * (len + 1);
    }
    size_t n_text = 0;
    if (space_prefix) {
        memcpy(s->text, ESCAPED_SPACE, 3);
        n_text = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->text + n_text, ESCAPED_SPACE, 3);
            n_text += 3;
        } else
            s->text[n_text++] = text[i];
    }
    if (!m->split_at_spaces) return n_text ? merge(m, s, 0, n_text, out) : 0;

    /* Split before each "▁" that starts a symbol of the fragment's own symbol split and
     * that no token spans; the pieces merge exactly as within the whole fragment. */
    size_t word = 0;
    for (size_t off = 0; off < n_text;) {
        uint32_t sym_len = announced_len(s->text[off]);
        if (off > word && sym_len == 3 && off + 3 <= n_text && !memcmp(s->text + off, ESCAPED_SPACE, 3) &&
            !spanned(m, s, off, n_text)) {
            if (merge_word(m, s, word, off, out) < 0) return -1;
            word = off;
        }
        off += sym_len;
    }
    return word < n_text ? merge_word(m, s, word, n_text, out) : 0;
}
