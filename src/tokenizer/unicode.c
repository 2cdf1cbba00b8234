/* unicode.c — lax UTF-8 decoding, UTF-8 encoding, class lookup and the GPT-2 byte map
 * (see unicode.h for the llama.cpp behaviours these reproduce). */
#include "unicode.h"

#define MAX_CODEPOINT 0x10FFFFu

static int is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

uint32_t lmz_utf8_decode(const uint8_t *s, size_t len, size_t *consumed) {
    const uint8_t b0 = s[0];
    *consumed = 1;
    if (!(b0 & 0x80)) return b0;
    if (!(b0 & 0x40)) return LMZ_REPLACEMENT_CHAR; /* stray continuation byte */
    if (!(b0 & 0x20)) {
        if (len < 2 || !is_continuation(s[1])) return LMZ_REPLACEMENT_CHAR;
        *consumed = 2;
        return ((uint32_t)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if (!(b0 & 0x10)) {
        if (len < 3 || !is_continuation(s[1]) || !is_continuation(s[2])) return LMZ_REPLACEMENT_CHAR;
        *consumed = 3;
        return ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if (!(b0 & 0x08)) {
        if (len < 4 || !is_continuation(s[1]) || !is_continuation(s[2]) || !is_continuation(s[3]))
            return LMZ_REPLACEMENT_CHAR;
        uint32_t cpt = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                       ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (cpt > MAX_CODEPOINT) return LMZ_REPLACEMENT_CHAR;
        *consumed = 4;
        return cpt;
    }
    return LMZ_REPLACEMENT_CHAR;
}

size_t lmz_utf8_encode(uint32_t cpt, uint8_t out[4]) {
    if (cpt <= 0x7F) {
        out[0] = (uint8_t)cpt;
        return 1;
    }
    if (cpt <= 0x7FF) {
        out[0] = (uint8_t)(0xC0 | (cpt >> 6));
        out[1] = (uint8_t)(0x80 | (cpt & 0x3F));
        return 2;
    }
    if (cpt <= 0xFFFF) {
        out[0] = (uint8_t)(0xE0 | (cpt >> 12));
        out[1] = (uint8_t)(0x80 | ((cpt >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cpt & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | ((cpt >> 18) & 0x07));
    out[1] = (uint8_t)(0x80 | ((cpt >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cpt >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cpt & 0x3F));
    return 4;
}

unsigned lmz_unicode_flags(uint32_t cpt) {
    if (cpt < 128) return lmz_unicode_ascii_flags[cpt];
    if (cpt > MAX_CODEPOINT) return LMZ_UC_UNDEFINED;
    /* Last range whose start is <= cpt; ranges[0].start == 0. */
    size_t lo = 0, hi = lmz_unicode_n_ranges;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (lmz_unicode_ranges[mid].start <= cpt) lo = mid;
        else hi = mid;
    }
    return lmz_unicode_ranges[lo].flags;
}

/* Bytes GPT-2 keeps as their own code point: printable ASCII and printable Latin-1
 * except the soft hyphen 0xAD. The other 68 bytes are numbered from U+0100 in byte
 * order: 0x00..0x20 (33 bytes), then 0x7F..0xA0 (34 bytes), then 0xAD. */
static int byte_maps_to_itself(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t lmz_byte_to_cpt(uint8_t byte) {
    if (byte_maps_to_itself(byte)) return byte;
    if (byte <= 0x20) return 0x100u + byte;
    if (byte <= 0xA0) return 0x100u + 33 + (byte - 0x7Fu);
    return 0x100u + 67; /* 0xAD */
}

int lmz_cpt_to_byte(uint32_t cpt) {
    if (cpt <= 0xFF) return byte_maps_to_itself(cpt) ? (int)cpt : -1;
    if (cpt <= 0x100 + 32) return (int)(cpt - 0x100);
    if (cpt <= 0x100 + 66) return (int)(0x7F + (cpt - 0x100 - 33));
    if (cpt == 0x100 + 67) return 0xAD;
    return -1;
}
