/* data.c — training data (train.h): text and JSONL files tokenized into sequences that
 * start with the model's start token (JSONL lines read with src/util/json.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/symbols.h"
#include "../coder/bytebuf.h"
#include "../util/error.h"
#include "../util/json.h"
#include "../util/sha256.h"
#include "train.h"

int lmz_train_data_init(lmz_train_data *d, const lmz_tokenizer *tok, int seq) {
    memset(d, 0, sizeof *d);
    if (seq < 1) return lmz_fail("sequences must hold at least one token, not %d", seq);
    d->seq = seq;
    d->start = lmz_start_token(tok);
    d->off = lmz_calloc(1, sizeof *d->off);
    return d->off ? 0 : -1;
}

void lmz_train_data_free(lmz_train_data *d) {
    free(d->tokens);
    free(d->off);
    memset(d, 0, sizeof *d);
}

static int push_token(lmz_train_data *d, int32_t t) {
    if (d->n_tokens == d->cap_tokens) {
        size_t cap = d->cap_tokens ? 2 * d->cap_tokens : 4096;
        int32_t *p = lmz_realloc(d->tokens, cap * sizeof *p);
        if (!p) return -1;
        d->tokens = p;
        d->cap_tokens = cap;
    }
    d->tokens[d->n_tokens++] = t;
    return 0;
}

/* Ends the sequence being written (its tokens are those after off[n_seqs]). */
static int close_seq(lmz_train_data *d) {
    if (d->n_seqs == d->cap_seqs) { /* off has cap_seqs + 1 entries */
        size_t cap = d->cap_seqs ? 2 * d->cap_seqs : 256;
        size_t *p = lmz_realloc(d->off, (cap + 1) * sizeof *p);
        if (!p) return -1;
        d->off = p;
        d->cap_seqs = cap;
    }
    d->off[++d->n_seqs] = d->n_tokens;
    return 0;
}

int lmz_train_data_add_text(lmz_train_data *d, const lmz_tokenizer *tok, const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    if (lmz_tokenize(tok, text, len, false, false, &ids, &n)) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += (size_t)d->seq) {
        size_t k = n - i < (size_t)d->seq ? n - i : (size_t)d->seq;
        rc = push_token(d, d->start);
        for (size_t j = 0; j < k && !rc; j++) rc = push_token(d, ids[i + j]);
        if (!rc) rc = close_seq(d);
    }
    free(ids);
    if (!rc && n) {
        d->n_docs++;
        d->n_bytes += len;
    }
    return rc;
}

/* ---------------- JSON ---------------- */

/* Appends the string values under V (not object keys), in document order, to *OUT. */
static int collect_strings(const lmz_json *v, lmz_bytebuf *out, bool *any) {
    if (v->type == LMZ_JSON_STRING) {
        if ((*any && lmz_bytebuf_push(out, '\n')) || lmz_bytebuf_append(out, v->str, v->len)) return -1;
        *any = true;
    }
    for (const lmz_json *e = v->child; e; e = e->next)
        if (collect_strings(e, out, any)) return -1;
    return 0;
}

int lmz_train_json_text(const char *line, size_t len, char **out, size_t *out_len) {
    lmz_json *v = lmz_json_parse(line, len);
    if (!v) return -1;
    lmz_bytebuf text = {0};
    bool any = false;
    int rc = collect_strings(v, &text, &any);
    if (rc == 0) rc = lmz_bytebuf_push(&text, 0);
    lmz_json_free(v);
    if (rc) {
        lmz_bytebuf_free(&text);
        return -1;
    }
    *out = (char *)text.data;
    *out_len = text.len - 1;
    return 0;
}

/* ---------------- files ---------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lmz_fail("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n < cap) continue;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    bool failed = !buf || ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        lmz_fail("cannot read %s", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static bool is_jsonl(const char *path) {
    size_t n = strlen(path);
    return n >= 6 && !strcmp(path + n - 6, ".jsonl");
}

int lmz_train_data_add_file(lmz_train_data *d, const lmz_tokenizer *tok, const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    int rc = 0;
    if (!is_jsonl(path)) {
        rc = lmz_train_data_add_text(d, tok, text, len);
        free(text);
        return rc;
    }
    size_t line_no = 0;
    for (char *p = text, *end = text + len; p < end && !rc; line_no++) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *line_end = nl ? nl : end;
        const char *q = p;
        while (q < line_end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < line_end) {
            char *doc;
            size_t doc_len;
            rc = lmz_train_json_text(p, (size_t)(line_end - p), &doc, &doc_len);
            if (rc) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", lmz_last_error());
                lmz_fail("%s:%zu: not a JSON line: %s", path, line_no + 1, msg);
            } else {
                rc = lmz_train_data_add_text(d, tok, doc, doc_len);
                free(doc);
            }
        }
        p = line_end + 1;
    }
    free(text);
    return rc;
}

void lmz_train_data_sha256(const lmz_train_data *d, uint8_t sha[32]) {
    lmz_sha256 h;
    lmz_sha256_init(&h);
    for (size_t i = 0; i < d->n_seqs; i++) {
        uint8_t len[4];
        uint32_t n = (uint32_t)(d->off[i + 1] - d->off[i]);
        for (int b = 0; b < 4; b++) len[b] = (uint8_t)(n >> 8 * b);
        lmz_sha256_update(&h, len, 4);
        for (size_t t = d->off[i]; t < d->off[i + 1]; t++) {
            uint8_t v[4];
            for (int b = 0; b < 4; b++) v[b] = (uint8_t)((uint32_t)d->tokens[t] >> 8 * b);
            lmz_sha256_update(&h, v, 4);
        }
    }
    lmz_sha256_final(&h, sha);
}
