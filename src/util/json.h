/* json.h — a small JSON reader (into a tree) and string writer: what lmz needs for JSONL
 * training data (src/train/data.c) and for OpenAI-compatible chat replies (src/lossy/).
 *
 * The reader validates as it goes and reports the first error with its byte position;
 * strings are decoded (escapes, surrogate pairs; an unpaired surrogate becomes U+FFFD);
 * numbers are kept as their text; nesting is bounded so hostile input cannot exhaust the
 * stack. */
#ifndef LMZ_JSON_H
#define LMZ_JSON_H

#include <stddef.h>

#include "../coder/bytebuf.h"

enum lmz_json_type { LMZ_JSON_NULL, LMZ_JSON_FALSE, LMZ_JSON_TRUE, LMZ_JSON_NUMBER, LMZ_JSON_STRING, LMZ_JSON_ARRAY, LMZ_JSON_OBJECT };

typedef struct lmz_json lmz_json;
struct lmz_json {
    enum lmz_json_type type;
    char *str;      /* STRING: the decoded value; NUMBER: its text (NUL-terminated; NULL otherwise) */
    size_t len;
    char *key;      /* a member of an object: its decoded key (NUL-terminated), else NULL */
    size_t key_len;
    lmz_json *child; /* ARRAY, OBJECT: the first element or member */
    lmz_json *next;  /* the next element or member of the enclosing array or object */
};

#define LMZ_JSON_MAX_DEPTH 64

/* Parses exactly one JSON value (surrounding whitespace allowed) from TEXT[0..len). The
 * tree (free with lmz_json_free), or NULL + lmz_fail("<what> at byte <N>"). */
lmz_json *lmz_json_parse(const char *text, size_t len);
void lmz_json_free(lmz_json *v);

/* The member KEY of object V (the first one, should there be several), or NULL when V is not
 * an object or has none. */
const lmz_json *lmz_json_get(const lmz_json *v, const char *key);
/* The number of elements or members of an array or object (0 for other values). */
size_t lmz_json_count(const lmz_json *v);

/* Appends S[0..len) as a JSON string literal (quotes, escapes for '"', '\\' and control
 * characters; other bytes as they are). 0, or -1 + lmz_fail. */
int lmz_json_write_string(lmz_bytebuf *out, const char *s, size_t len);

#endif
