/* fp16.h — exact IEEE binary16 <-> binary32 conversion in portable integer code.
 * Decoding is exact; encoding rounds to nearest, ties to even, overflowing to inf,
 * the same on every machine (no F16C dependence, so no ISA difference). */
#ifndef LMZ_FP16_H
#define LMZ_FP16_H

#include <stdint.h>
#include <string.h>

static inline float lmz_bits_to_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t lmz_f32_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float lmz_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return lmz_bits_to_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return lmz_bits_to_f32(sign);
        /* subnormal: value = man * 2^-24, exactly representable in f32 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return lmz_bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t lmz_f32_to_fp16(float f) {
    uint32_t x = lmz_f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((absx >> 13) & 0x3ff)); /* nan stays nan */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                  /* result is subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;         /* < 2^-25: rounds to zero */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                              /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t q = absx - 0x38000000u;                           /* rebias exponent 127 -> 15 */
    uint32_t rem = q & 0x1fff;
    q >>= 13;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

static inline uint16_t lmz_read_u16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t lmz_read_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t lmz_read_u64le(const uint8_t *p) {
    return (uint64_t)lmz_read_u32le(p) | ((uint64_t)lmz_read_u32le(p + 4) << 32);
}

#endif
