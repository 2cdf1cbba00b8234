/* rangecoder.c — range encoder and decoder (see rangecoder.h for the scheme and its bounds). */
#include "rangecoder.h"

#include "../util/error.h"

#define WINDOW_TOP (1ull << 56) /* the code window is 56 bits: 7 bytes */
#define RANGE_BOT (1ull << 48)  /* renormalize (shift a byte) when range falls below this */
#define WINDOW_BYTES 7
#define BITS_PIECE 16 /* raw bits are coded 16 at a time, as symbols of total 2^16 */

static bool symbol_ok(uint32_t cum, uint32_t freq, uint32_t total) {
    return total >= 1 && total <= LMZ_RC_MAX_TOTAL && freq >= 1 && (uint64_t)cum + freq <= total;
}

void lmz_renc_init(lmz_renc *e, lmz_bytebuf *out) {
    e->out = out;
    e->low = 0;
    e->range = WINDOW_TOP - 1;
    e->pending = 0;
    e->cache = 0;
    e->has_cache = false;
}

/* Moves the window's top byte out. It cannot be written yet if it is 0xFF (a later carry
 * would ripple through it), so runs of 0xFF are counted and resolved when the next non-0xFF
 * byte arrives; low + range < 2^57 always holds, so a carry is at most 1. Until the first
 * byte leaves, the held-back byte is an implicit 0 (the code value is below 1, so no carry
 * can reach it), which is never written. */
static int shift_low(lmz_renc *e) {
    uint64_t top = e->low >> 48; /* the byte, with the carry in bit 8 */
    if (top != 0xFF) {
        uint8_t carry = (uint8_t)(top >> 8);
        if (e->has_cache && lmz_bytebuf_push(e->out, (uint8_t)(e->cache + carry)) != 0) return -1;
        for (; e->pending > 0; e->pending--)
            if (lmz_bytebuf_push(e->out, (uint8_t)(0xFF + carry)) != 0) return -1;
        e->cache = (uint8_t)top;
        e->has_cache = true;
    } else {
        e->pending++;
    }
    e->low = (e->low << 8) & (WINDOW_TOP - 1);
    return 0;
}

int lmz_renc_encode(lmz_renc *e, uint32_t cum, uint32_t freq, uint32_t total) {
    if (!symbol_ok(cum, freq, total))
        return lmz_fail("range coder: invalid symbol (cum %u, freq %u, total %u)", cum, freq, total);
    uint64_t r = e->range / total;
    e->low += r * cum;
    e->range = r * freq;
    while (e->range < RANGE_BOT) {
        e->range <<= 8;
        if (shift_low(e) != 0) return -1;
    }
    return 0;
}

int lmz_renc_bits(lmz_renc *e, uint64_t value, int nbits) {
    if (nbits < 0 || nbits > 64 || (nbits < 64 && (value >> nbits) != 0))
        return lmz_fail("range coder: value does not fit in %d raw bits", nbits);
    for (int left = nbits; left > 0;) {
        int k = left < BITS_PIECE ? left : BITS_PIECE;
        left -= k;
        uint32_t piece = (uint32_t)(value >> left) & ((1u << k) - 1);
        if (lmz_renc_encode(e, piece, 1, 1u << k) != 0) return -1;
    }
    return 0;
}

int lmz_renc_finish(lmz_renc *e) {
    /* Any value in [low, low + range) identifies the stream; the decoder pads with zeros, so
     * pick the one with the most trailing zero bytes. If a multiple of 2^56 fits, no window
     * byte is needed; otherwise a multiple of 2^48 always fits (range >= 2^48): one byte. */
    uint64_t v = (e->low + (WINDOW_TOP - 1)) & ~(WINDOW_TOP - 1);
    int nbytes = 0;
    if (v >= e->low + e->range) {
        v = (e->low + (RANGE_BOT - 1)) & ~(RANGE_BOT - 1);
        nbytes = 1;
    }
    e->low = v;
    /* One extra shift pushes out the held-back bytes; the zero it leaves in cache is implied. */
    for (int i = 0; i <= nbytes; i++)
        if (shift_low(e) != 0) return -1;
    return 0;
}

/* Bytes past the end read as zeros. A valid stream leaves out at most its last 7 window bytes
 * (all zeros), so needing an 8th is a sign of truncation. */
static inline uint64_t next_byte(lmz_rdec *d) {
    uint64_t i = d->pos++;
    if (i < d->len) return d->data[i];
    if (i - d->len >= WINDOW_BYTES) d->past_end = true;
    return 0;
}

void lmz_rdec_init(lmz_rdec *d, const uint8_t *data, size_t len) {
    d->data = data;
    d->len = len;
    d->pos = 0;
    d->range = WINDOW_TOP - 1;
    d->code = 0;
    d->past_end = false;
    d->invalid = false;
    for (int i = 0; i < WINDOW_BYTES; i++) d->code = (d->code << 8) | next_byte(d);
    if (d->code >= d->range) { /* only 0xFF x 7: no encoder starts there */
        d->invalid = true;
        d->code = d->range - 1;
    }
}

uint32_t lmz_rdec_target(lmz_rdec *d, uint32_t total) {
    if (total == 0 || total > LMZ_RC_MAX_TOTAL) {
        d->invalid = true;
        return 0;
    }
    uint64_t t = d->code / (d->range / total);
    /* [r * total, range) is never chosen by the encoder: clamp so the caller always finds a
     * symbol, and remember that the stream is bad. */
    if (t >= total) {
        d->invalid = true;
        t = total - 1;
    }
    return (uint32_t)t;
}

void lmz_rdec_consume(lmz_rdec *d, uint32_t cum, uint32_t freq, uint32_t total) {
    if (!symbol_ok(cum, freq, total)) {
        d->invalid = true;
        return;
    }
    uint64_t r = d->range / total;
    uint64_t lo = r * cum;
    d->range = r * freq;
    /* Keeping code < range is what bounds every later shift below 2^64: a caller that passes
     * a symbol not containing the target (or a damaged stream) is clamped, not trusted. */
    if (d->code < lo) {
        d->invalid = true;
        d->code = 0;
    } else {
        d->code -= lo;
        if (d->code >= d->range) {
            d->invalid = true;
            d->code = d->range - 1;
        }
    }
    while (d->range < RANGE_BOT) {
        d->range <<= 8;
        d->code = (d->code << 8) | next_byte(d);
    }
}

uint64_t lmz_rdec_bits(lmz_rdec *d, int nbits) {
    if (nbits < 0 || nbits > 64) {
        d->invalid = true;
        return 0;
    }
    uint64_t value = 0;
    for (int left = nbits; left > 0;) {
        int k = left < BITS_PIECE ? left : BITS_PIECE;
        left -= k;
        uint32_t piece = lmz_rdec_target(d, 1u << k);
        lmz_rdec_consume(d, piece, 1, 1u << k);
        value = (value << k) | piece;
    }
    return value;
}

int lmz_rdec_finish(const lmz_rdec *d) {
    if (d->invalid) return lmz_fail("coded data is corrupt (it decodes to an impossible state)");
    /* The symbols consumed N bytes (the decoder has pulled N + 7); the encoder wrote N or N + 1. */
    uint64_t need = d->pos - WINDOW_BYTES;
    if (d->past_end || d->len < need)
        return lmz_fail("coded data is truncated (%zu bytes; the symbols need at least %llu)", d->len,
                        (unsigned long long)need);
    if (d->len > need + 1)
        return lmz_fail("coded data has %llu bytes after the end of the stream",
                        (unsigned long long)(d->len - need - 1));
    if (d->len == need + 1) {
        /* The encoder writes that byte only when no multiple of 2^56 lies in [low, low + range),
         * and it is then the top byte of the multiple of 2^48 just above low: nonzero, with
         * code = value - low < 2^48. Checking this makes the accepted encoding unique, so an
         * extra or altered last byte is caught here, not only by the caller's checksum. */
        uint64_t w = (uint64_t)d->data[need] << 48;
        if (w == 0 || d->code >= RANGE_BOT || d->code + WINDOW_TOP - w < d->range)
            return lmz_fail("coded data does not end the way the encoder ends a stream (corrupt or extended)");
    }
    return 0;
}
