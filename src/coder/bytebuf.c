/* bytebuf.c — growth policy of lmz_bytebuf: capacity doubles, so appends are amortized O(1). */
#include "bytebuf.h"

#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

int lmz_bytebuf_reserve(lmz_bytebuf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) return lmz_fail("byte buffer: size overflow");
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = lmz_realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int lmz_bytebuf_append(lmz_bytebuf *b, const void *data, size_t len) {
    if (len == 0) return 0;
    if (lmz_bytebuf_reserve(b, len) != 0) return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void lmz_bytebuf_free(lmz_bytebuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
