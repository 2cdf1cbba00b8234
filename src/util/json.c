/* json.c — the JSON reader and string writer of json.h. */
#include "json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct {
    const char *p, *end;
    const char *err; /* the first error */
} parser;

void lmz_json_free(lmz_json *v) {
    while (v) {
        lmz_json *next = v->next;
        lmz_json_free(v->child);
        free(v->str);
        free(v->key);
        free(v);
        v = next;
    }
}

/* A growing string for decoded text. */
typedef struct {
    char *s;
    size_t n, cap;
} text;

static bool put(parser *ps, text *t, const char *s, size_t len) {
    if (t->n + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->n + len + 1) cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            ps->err = "out of memory";
            return false;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->n, s, len);
    t->n += len;
    t->s[t->n] = 0;
    return true;
}

static void put_utf8(parser *ps, text *t, uint32_t c) {
    char b[4];
    size_t n;
    if (c < 0x80) b[0] = (char)c, n = 1;
    else if (c < 0x800) b[0] = (char)(0xc0 | c >> 6), b[1] = (char)(0x80 | (c & 0x3f)), n = 2;
    else if (c < 0x10000)
        b[0] = (char)(0xe0 | c >> 12), b[1] = (char)(0x80 | (c >> 6 & 0x3f)), b[2] = (char)(0x80 | (c & 0x3f)), n = 3;
    else
        b[0] = (char)(0xf0 | c >> 18), b[1] = (char)(0x80 | (c >> 12 & 0x3f)), b[2] = (char)(0x80 | (c >> 6 & 0x3f)),
        b[3] = (char)(0x80 | (c & 0x3f)), n = 4;
    put(ps, t, b, n);
}

static void space(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')) ps->p++;
}

static bool hex4(parser *ps, uint32_t *v) {
    if (ps->end - ps->p < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return false;
        *v = *v << 4 | (uint32_t)d;
    }
    return true;
}

/* The string at ps->p (on its opening quote), decoded into T (always NUL-terminated after
 * success, even when empty). */
static void string(parser *ps, text *t) {
    ps->p++;
    if (!put(ps, t, "", 0)) return;
    while (!ps->err) {
        const char *s = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char)*ps->p >= 0x20) ps->p++;
        if (!put(ps, t, s, (size_t)(ps->p - s))) return;
        if (ps->p == ps->end || (unsigned char)*ps->p < 0x20) {
            ps->err = "unterminated string";
            return;
        }
        if (*ps->p++ == '"') return;
        if (ps->p == ps->end) break;
        static const char escapes[] = "\"\\/bfnrt", values[] = "\"\\/\b\f\n\r\t";
        const char e = *ps->p++, *map = e ? strchr(escapes, e) : NULL;
        if (map) {
            put(ps, t, &values[map - escapes], 1);
            continue;
        }
        uint32_t c;
        if (e != 'u' || !hex4(ps, &c)) break;
        if (c >= 0xd800 && c < 0xe000) { /* a surrogate pair; an unpaired half reads as U+FFFD */
            const char *after = ps->p;
            uint32_t lo = 0;
            bool pair = c < 0xdc00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u';
            if (pair) {
                ps->p += 2;
                pair = hex4(ps, &lo) && lo >= 0xdc00 && lo < 0xe000;
            }
            if (pair) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            } else {
                ps->p = after;
                c = 0xfffd;
            }
        }
        put_utf8(ps, t, c);
    }
    if (!ps->err) ps->err = "invalid escape in a string";
}

static lmz_json *value(parser *ps, int depth);

static lmz_json *new_node(parser *ps, enum lmz_json_type type) {
    lmz_json *v = calloc(1, sizeof *v);
    if (!v) ps->err = "out of memory";
    else v->type = type;
    return v;
}

/* An array or object at ps->p (on its opening bracket) into V's children. */
static void container(parser *ps, lmz_json *v, int depth, char close) {
    ps->p++;
    space(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return;
    }
    lmz_json **tail = &v->child;
    while (!ps->err) {
        space(ps);
        text key = {0};
        if (close == '}') {
            if (ps->p == ps->end || *ps->p != '"') {
                ps->err = "expected a key";
                return;
            }
            string(ps, &key);
            space(ps);
            if (!ps->err && (ps->p == ps->end || *ps->p++ != ':')) ps->err = "expected ':'";
            if (ps->err) {
                free(key.s);
                return;
            }
        }
        lmz_json *e = value(ps, depth + 1);
        if (!e) {
            free(key.s);
            return;
        }
        e->key = key.s;
        e->key_len = key.n;
        *tail = e;
        tail = &e->next;
        space(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return;
        }
        ps->err = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
    }
}

/* A value at ps->p, or NULL with ps->err set. */
static lmz_json *value(parser *ps, int depth) {
    space(ps);
    if (depth > LMZ_JSON_MAX_DEPTH) {
        ps->err = "nested too deeply";
        return NULL;
    }
    if (ps->p == ps->end) {
        ps->err = "unexpected end";
        return NULL;
    }
    char c = *ps->p;
    lmz_json *v = NULL;
    if (c == '"') {
        text t = {0};
        string(ps, &t);
        if (!ps->err && (v = new_node(ps, LMZ_JSON_STRING))) {
            v->str = t.s;
            v->len = t.n;
        } else {
            free(t.s);
        }
        return v;
    }
    if (c == '{' || c == '[') {
        if ((v = new_node(ps, c == '{' ? LMZ_JSON_OBJECT : LMZ_JSON_ARRAY))) container(ps, v, depth, c == '{' ? '}' : ']');
        if (ps->err) {
            lmz_json_free(v);
            return NULL;
        }
        return v;
    }
    static const char *const words[] = {"null", "false", "true"};
    static const enum lmz_json_type types[] = {LMZ_JSON_NULL, LMZ_JSON_FALSE, LMZ_JSON_TRUE};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, words[i], n)) {
            ps->p += n;
            return new_node(ps, types[i]);
        }
    }
    const char *s = ps->p;
    while (ps->p < ps->end && strchr("+-0123456789.eE", *ps->p)) ps->p++;
    if (ps->p == s) {
        ps->err = "unexpected character";
        return NULL;
    }
    text t = {0};
    if (put(ps, &t, s, (size_t)(ps->p - s)) && (v = new_node(ps, LMZ_JSON_NUMBER))) {
        v->str = t.s;
        v->len = t.n;
    } else {
        free(t.s);
    }
    return v;
}

lmz_json *lmz_json_parse(const char *data, size_t len) {
    parser ps = {data, data + len, NULL};
    lmz_json *v = value(&ps, 0);
    space(&ps);
    if (!ps.err && ps.p != ps.end) ps.err = "text after the value";
    if (ps.err) {
        lmz_json_free(v);
        lmz_fail("%s at byte %zu", ps.err, (size_t)(ps.p - data) + 1);
        return NULL;
    }
    return v;
}

const lmz_json *lmz_json_get(const lmz_json *v, const char *key) {
    if (!v || v->type != LMZ_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (const lmz_json *m = v->child; m; m = m->next)
        if (m->key_len == n && !memcmp(m->key, key, n)) return m;
    return NULL;
}

size_t lmz_json_count(const lmz_json *v) {
    size_t n = 0;
    if (v && (v->type == LMZ_JSON_ARRAY || v->type == LMZ_JSON_OBJECT))
        for (const lmz_json *e = v->child; e; e = e->next) n++;
    return n;
}

int lmz_json_write_string(lmz_bytebuf *out, const char *s, size_t len) {
    if (lmz_bytebuf_push(out, '"')) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *rep = NULL;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rep = esc;
        }
        if (rep ? lmz_bytebuf_append(out, rep, strlen(rep)) : lmz_bytebuf_push(out, c)) return -1;
    }
    return lmz_bytebuf_push(out, '"');
}
