/* data.c — training data (train.h): text and JSONL files tokenized into sequences that
 * start with the model's start token, and the minimal JSON reader JSONL needs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../codec/symbols.h"
#include "../util/error.h"
#include "../util/sha256.h"
#include "train.h"

#define JSON_MAX_DEPTH 64

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

typedef struct {
    const char *p, *end;
    char *out;
    size_t n, cap;
    bool any;        /* a string value has been collected */
    const char *err; /* the first error */
} json;

static void json_put(json *j, const char *s, size_t len) {
    if (j->err) return;
    if (j->n + len + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->n + len + 1) cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p) {
            j->err = "out of memory";
            return;
        }
        j->out = p;
        j->cap = cap;
    }
    memcpy(j->out + j->n, s, len);
    j->n += len;
}

static void json_utf8(json *j, uint32_t c) {
    char b[4];
    size_t n;
    if (c < 0x80) b[0] = (char)c, n = 1;
    else if (c < 0x800) b[0] = (char)(0xc0 | c >> 6), b[1] = (char)(0x80 | (c & 0x3f)), n = 2;
    else if (c < 0x10000)
        b[0] = (char)(0xe0 | c >> 12), b[1] = (char)(0x80 | (c >> 6 & 0x3f)), b[2] = (char)(0x80 | (c & 0x3f)), n = 3;
    else
        b[0] = (char)(0xf0 | c >> 18), b[1] = (char)(0x80 | (c >> 12 & 0x3f)), b[2] = (char)(0x80 | (c >> 6 & 0x3f)),
        b[3] = (char)(0x80 | (c & 0x3f)), n = 4;
    json_put(j, b, n);
}

static void json_space(json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n')) j->p++;
}

static bool json_hex4(json *j, uint32_t *v) {
    if (j->end - j->p < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return false;
        *v = *v << 4 | (uint32_t)d;
    }
    return true;
}

/* A string at j->p (on its opening quote); appended to the text when COLLECT. */
static void json_string(json *j, bool collect) {
    j->p++;
    if (collect && j->any) json_put(j, "\n", 1);
    if (collect) j->any = true;
    while (!j->err) {
        const char *s = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\' && (unsigned char)*j->p >= 0x20) j->p++;
        if (collect) json_put(j, s, (size_t)(j->p - s));
        if (j->p == j->end || (unsigned char)*j->p < 0x20) {
            j->err = "unterminated string";
            return;
        }
        if (*j->p++ == '"') return;
        if (j->p == j->end) break;
        static const char escapes[] = "\"\\/bfnrt", values[] = "\"\\/\b\f\n\r\t";
        const char e = *j->p++, *map = e ? strchr(escapes, e) : NULL;
        if (map) {
            if (collect) json_put(j, &values[map - escapes], 1);
            continue;
        }
        uint32_t c;
        if (e != 'u' || !json_hex4(j, &c)) break;
        if (c >= 0xd800 && c < 0xe000) { /* a surrogate pair; an unpaired half reads as U+FFFD */
            const char *after = j->p;
            uint32_t lo = 0;
            bool pair = c < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u';
            if (pair) {
                j->p += 2;
                pair = json_hex4(j, &lo) && lo >= 0xdc00 && lo < 0xe000;
            }
            if (pair) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            } else {
                j->p = after;
                c = 0xfffd;
            }
        }
        if (collect) json_utf8(j, c);
    }
    if (!j->err) j->err = "invalid escape in a string";
}

static void json_value(json *j, int depth);

static void json_container(json *j, int depth, char close) {
    j->p++;
    json_space(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return;
    }
    while (!j->err) {
        json_space(j);
        if (close == '}') {
            if (j->p == j->end || *j->p != '"') {
                j->err = "expected a key";
                return;
            }
            json_string(j, false);
            json_space(j);
            if (j->p == j->end || *j->p++ != ':') {
                j->err = "expected ':'";
                return;
            }
        }
        json_value(j, depth + 1);
        json_space(j);
        if (j->err) return;
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return;
        }
        j->err = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
    }
}

static void json_value(json *j, int depth) {
    json_space(j);
    if (depth > JSON_MAX_DEPTH) {
        j->err = "nested too deeply";
        return;
    }
    if (j->p == j->end) {
        j->err = "unexpected end";
        return;
    }
    char c = *j->p;
    if (c == '"') {
        json_string(j, true);
        return;
    }
    if (c == '{' || c == '[') {
        json_container(j, depth, c == '{' ? '}' : ']');
        return;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, words[i], n)) {
            j->p += n;
            return;
        }
    }
    const char *s = j->p;
    while (j->p < j->end && strchr("+-0123456789.eE", *j->p)) j->p++;
    if (j->p == s) j->err = "unexpected character";
}

int lmz_train_json_text(const char *line, size_t len, char **out, size_t *out_len) {
    json j = {line, line + len, NULL, 0, 0, false, NULL};
    json_value(&j, 0);
    json_space(&j);
    if (!j.err && j.p != j.end) j.err = "text after the value";
    json_put(&j, "", 0);
    if (j.err) {
        free(j.out);
        return lmz_fail("%s at byte %zu", j.err, (size_t)(j.p - line) + 1);
    }
    j.out[j.n] = 0;
    *out = j.out;
    *out_len = j.n;
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
