/* rangecoder.h — the arithmetic coder: a byte-oriented range coder with 64-bit state.
 *
 * A symbol is coded as the slice [cum, cum + freq) of an integer total (1 <= total <= 2^31,
 * freq >= 1). The coder keeps a 56-bit window of the code value: the interval width
 * `range` stays in [2^48, 2^56) between symbols, so range / total >= 2^17 and truncating it
 * costs under 2^-17 of a symbol's probability (~1e-5 bits per symbol at total = 2^31).
 * Carries out of the window are propagated exactly (a held-back byte plus a count of 0xFF
 * bytes behind it), so no coding space is given up to avoid them, as carry-less coders do.
 *
 * The encoder's final flush writes at most one byte beyond what the symbols consumed, and
 * the decoder reads bytes past the end as zeros: for a valid stream of L bytes it pulls
 * L + 6 or L + 7 (its window is 7 bytes wide). Needing more sets past_end, and
 * lmz_rdec_finish() also checks how the stream ends, so each symbol sequence has exactly
 * one accepted encoding and truncated, extended or corrupted data is reported (bit layout:
 * docs/format.md §7). The decoder never reads outside its input and does a bounded amount
 * of work per call, whatever the bytes. */
#ifndef LMZ_RANGECODER_H
#define LMZ_RANGECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"

#define LMZ_RC_MAX_TOTAL (1u << 31)

typedef struct {
    lmz_bytebuf *out; /* bytes are appended after whatever the buffer already holds */
    uint64_t low;     /* bottom of the interval: the 56-bit window, plus a carry in bit 56 */
    uint64_t range;   /* width of the interval */
    uint64_t pending; /* 0xFF bytes held back behind `cache`: a carry turns them into 0x00 */
    uint8_t cache;    /* the last byte shifted out of the window; a carry may still bump it */
    bool has_cache;   /* false until the first byte leaves the window */
} lmz_renc;

/* Starts an encoder that appends to OUT. */
void lmz_renc_init(lmz_renc *e, lmz_bytebuf *out);
/* Codes the symbol [cum, cum + freq) of TOTAL. 0, or -1 (invalid arguments or out of
 * memory, via lmz_fail; the encoder is then unusable). */
int lmz_renc_encode(lmz_renc *e, uint32_t cum, uint32_t freq, uint32_t total);
/* Codes the low NBITS (0..64) bits of VALUE as raw, equiprobable bits (for escapes).
 * VALUE must fit in NBITS. 0 or -1. */
int lmz_renc_bits(lmz_renc *e, uint64_t value, int nbits);
/* Writes the final bytes. The encoder must not be used afterwards. 0 or -1. */
int lmz_renc_finish(lmz_renc *e);

typedef struct {
    const uint8_t *data;
    size_t len;
    uint64_t pos;   /* bytes pulled so far, counting the zeros read past the end */
    uint64_t range; /* width of the interval, as in the encoder */
    uint64_t code;  /* code value minus the interval's bottom; kept < range */
    bool past_end;  /* needed bytes beyond the end that no valid stream leaves out */
    bool invalid;   /* met a state no valid stream produces (or was called with bad arguments) */
} lmz_rdec;

/* Starts decoding LEN bytes at DATA (not copied: they must outlive the decoder). */
void lmz_rdec_init(lmz_rdec *d, const uint8_t *data, size_t len);
/* The next symbol's position within TOTAL, in [0, total): the caller finds the symbol whose
 * [cum, cum + freq) contains it and passes that to lmz_rdec_consume() with the same TOTAL. */
uint32_t lmz_rdec_target(lmz_rdec *d, uint32_t total);
void lmz_rdec_consume(lmz_rdec *d, uint32_t cum, uint32_t freq, uint32_t total);
/* Decodes NBITS (0..64) raw bits written by lmz_renc_bits(). */
uint64_t lmz_rdec_bits(lmz_rdec *d, int nbits);
/* After the last symbol: 0 if the input was exactly one well-formed stream, else -1 with a
 * message (corrupt, truncated, or trailing bytes). */
int lmz_rdec_finish(const lmz_rdec *d);

#endif
