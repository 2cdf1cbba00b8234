/* symbols.c — segmentation of bytes into round-trip-safe token runs and escaped bytes.
 * Common case: the whole input is valid UTF-8 and tokenizes back exactly (one tokenizer
 * call). Otherwise the input is split into valid UTF-8 runs and invalid bytes; a run that
 * does not round-trip is split at the characters that do not, and those are escaped. */
#include "symbols.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

typedef struct {
    int32_t *v;
    size_t n, cap;
} symbol_list;

static int push(symbol_list *l, int32_t s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int32_t *nv = lmz_realloc(l->v, cap * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

int32_t lmz_start_token(const lmz_tokenizer *tok) {
    int32_t id = lmz_tokenizer_find(tok, "<|endoftext|>");
    if (id < 0) id = lmz_tokenizer_bos(tok);
    if (id < 0) id = lmz_tokenizer_eos(tok);
    return id < 0 ? 0 : id;
}

int32_t lmz_escape_token(const lmz_tokenizer *tok, int32_t start) {
    int32_t bos = lmz_tokenizer_bos(tok), eos = lmz_tokenizer_eos(tok);
    for (int32_t id = 0; id < lmz_tokenizer_n_vocab(tok); id++)
        if (lmz_tokenizer_token_type(tok, id) == LMZ_TOKEN_CONTROL && id != start && id != bos && id != eos) return id;
    return eos >= 0 ? eos : 0;
}

size_t lmz_symbol_bytes(const lmz_tokenizer *tok, int32_t sym, uint8_t *buf, size_t cap) {
    if (lmz_is_escape(sym)) {
        if (cap) buf[0] = lmz_escaped_byte(sym);
        return 1;
    }
    return lmz_token_bytes(tok, sym, false, (char *)buf, cap);
}

/* Length of the strictly valid UTF-8 sequence at P (1..4), or 0 if P starts an invalid one
 * (bad lead byte, bad continuation, overlong form, surrogate, above U+10FFFF, truncated). */
static size_t utf8_len(const uint8_t *p, size_t avail) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Tokenizes TEXT and appends the tokens if they give TEXT back exactly; *ok says whether. */
static int append_if_exact(const lmz_tokenizer *tok, const uint8_t *text, size_t len, symbol_list *out, bool *ok) {
    int32_t *ids;
    size_t n;
    *ok = false;
    if (lmz_tokenize(tok, (const char *)text, len, false, false, &ids, &n)) return -1;
    size_t pos = 0;
    bool same = true;
    char piece[512];
    for (size_t i = 0; i < n && same; i++) {
        size_t k = lmz_token_bytes(tok, ids[i], false, piece, sizeof piece);
        same = k <= sizeof piece && pos + k <= len && memcmp(text + pos, piece, k) == 0;
        pos += k;
    }
    if (same && pos == len) {
        for (size_t i = 0; i < n; i++)
            if (push(out, ids[i])) {
                free(ids);
                return -1;
            }
        *ok = true;
    }
    free(ids);
    return 0;
}

static int escape_bytes(const uint8_t *p, size_t n, symbol_list *out) {
    for (size_t i = 0; i < n; i++)
        if (push(out, lmz_escaped(p[i]))) return -1;
    return 0;
}

/* A stretch of characters that each round-trip alone: one tokenization if that is exact,
 * else one character at a time. */
static int append_stretch(const lmz_tokenizer *tok, const uint8_t *s, size_t len, symbol_list *out) {
    bool ok;
    if (!len) return 0;
    if (append_if_exact(tok, s, len, out, &ok)) return -1;
    for (size_t j = 0; !ok && j < len;) {
        size_t cn = utf8_len(s + j, len - j);
        bool char_ok;
        if (append_if_exact(tok, s + j, cn, out, &char_ok)) return -1;
        if (!char_ok) return lmz_fail("internal error: a character stopped round-tripping");
        j += cn;
    }
    return 0;
}

/* A valid UTF-8 run that did not round-trip as a whole: escape the characters that do not
 * round-trip alone, tokenize the stretches between them. */
static int append_run_carefully(const lmz_tokenizer *tok, const uint8_t *run, size_t len, symbol_list *out) {
    size_t i = 0, stretch = 0;
    symbol_list probe = {0};
    while (i < len) {
        size_t n = utf8_len(run + i, len - i);
        bool ok;
        probe.n = 0;
        if (append_if_exact(tok, run + i, n, &probe, &ok)) goto fail;
        if (!ok) {
            if (append_stretch(tok, run + stretch, i - stretch, out) || escape_bytes(run + i, n, out)) goto fail;
            stretch = i + n;
        }
        i += n;
    }
    free(probe.v);
    return append_stretch(tok, run + stretch, len - stretch, out);
fail:
    free(probe.v);
    return -1;
}

int lmz_bytes_to_symbols(const lmz_tokenizer *tok, const uint8_t *bytes, size_t len, int32_t **syms, size_t *n) {
    symbol_list out = {0};
    bool ok = false;
    /* fast path: everything valid and exact */
    size_t valid = 0;
    while (valid < len) {
        size_t k = utf8_len(bytes + valid, len - valid);
        if (!k) break;
        valid += k;
    }
    if (valid == len && len > 0 && append_if_exact(tok, bytes, len, &out, &ok)) goto fail;
    if (!ok) {
        out.n = 0;
        size_t i = 0;
        while (i < len) {
            size_t start = i;
            size_t k;
            while (i < len && (k = utf8_len(bytes + i, len - i)) > 0) i += k;
            if (i > start) {
                if (append_if_exact(tok, bytes + start, i - start, &out, &ok)) goto fail;
                if (!ok && append_run_carefully(tok, bytes + start, i - start, &out)) goto fail;
            }
            if (i < len) {
                if (push(&out, lmz_escaped(bytes[i]))) goto fail;
                i++;
            }
        }
    }
    *syms = out.v;
    *n = out.n;
    return 0;
fail:
    free(out.v);
    return -1;
}
