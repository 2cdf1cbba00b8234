/* bytebuf.h — a growable byte buffer: where the range encoder writes its output and where
 * the pipeline assembles chunk payloads. The caller owns it; zero-initialize, then free. */
#ifndef LMZ_BYTEBUF_H
#define LMZ_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} lmz_bytebuf;

/* Makes room for EXTRA more bytes beyond len. 0, or -1 (out of memory, via lmz_fail). */
int lmz_bytebuf_reserve(lmz_bytebuf *b, size_t extra);
/* Appends LEN bytes. 0 or -1. */
int lmz_bytebuf_append(lmz_bytebuf *b, const void *data, size_t len);
/* Appends one byte; the common case (room left) stays inline for the coder's inner loop. */
static inline int lmz_bytebuf_push(lmz_bytebuf *b, uint8_t byte) {
    if (b->len == b->cap && lmz_bytebuf_reserve(b, 1) != 0) return -1;
    b->data[b->len++] = byte;
    return 0;
}
/* Releases the memory and leaves an empty buffer. */
void lmz_bytebuf_free(lmz_bytebuf *b);

#endif
