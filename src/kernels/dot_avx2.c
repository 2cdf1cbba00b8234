/* dot_avx2.c — AVX2 versions of the dot products and canonical float primitives.
 * Integer block sums are computed with maddubs/madd (exact: no int16 saturation is
 * possible for the value ranges involved); the float part uses quant.h's shared
 * expressions, so results equal dot_scalar.c bit for bit. Compiled with -mavx2. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../util/fp16.h"
#include "quant.h"
#include "vecf.h"

static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* Sum over 32 int8 products w*x, w signed in [-128, 127] and x in [-127, 127]. */
static inline __m256i madd_s8(__m256i w, __m256i x) {
    __m256i prod16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(prod16, _mm256_set1_epi16(1));
}

/* Sum over 32 products w*x with w unsigned in [0, 127]. */
static inline __m256i madd_u8(__m256i w, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15) then high nibbles (16..31). */
static inline __m256i unpack_nibbles(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
    return _mm256_set_m128i(hi, lo);
}

/* Bit j of a 32-bit mask -> byte j = 0x10 if set, else 0. */
static inline __m256i fifth_bits(uint32_t qh) {
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000ll, 0x0101010101010101ll,
                                            0x0202020202020202ll, 0x0303030303030303ll);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

static inline __m256i load_q(const int8_t *q) { return _mm256_loadu_si256((const __m256i *)q); }

float lmz_dot_q4_0_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 18) {
        __m256i q = _mm256_sub_epi8(unpack_nibbles(p + 2), _mm256_set1_epi8(8));
        acc += lmz_block_sym(lmz_fp16_to_f32(lmz_read_u16le(p)), a[b].d, hsum_i32(madd_s8(q, load_q(a[b].q))));
    }
    return acc;
}

float lmz_dot_q4_1_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 20) {
        int32_t s = hsum_i32(madd_u8(unpack_nibbles(p + 4), load_q(a[b].q)));
        acc += lmz_block_affine(lmz_fp16_to_f32(lmz_read_u16le(p)), lmz_fp16_to_f32(lmz_read_u16le(p + 2)), &a[b], s);
    }
    return acc;
}

float lmz_dot_q5_0_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 22) {
        __m256i q = _mm256_or_si256(unpack_nibbles(p + 6), fifth_bits(lmz_read_u32le(p + 2)));
        q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        acc += lmz_block_sym(lmz_fp16_to_f32(lmz_read_u16le(p)), a[b].d, hsum_i32(madd_s8(q, load_q(a[b].q))));
    }
    return acc;
}

float lmz_dot_q8_0_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 34) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(p + 2));
        acc += lmz_block_sym(lmz_fp16_to_f32(lmz_read_u16le(p)), a[b].d, hsum_i32(madd_s8(q, load_q(a[b].q))));
    }
    return acc;
}

float lmz_dot_q4_k_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 144) {
        const uint8_t *scales = p + 4, *qs = p + 16;
        __m256i sumv = _mm256_setzero_si256();
        int32_t summ = 0;
        for (int c = 0; c < 4; c++) {
            __m256i bytes = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(bytes, low4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
            uint8_t sc0, m0, sc1, m1;
            lmz_kquant_scale_min(2 * c, scales, &sc0, &m0);
            lmz_kquant_scale_min(2 * c + 1, scales, &sc1, &m1);
            __m256i s0 = madd_u8(lo, load_q(a[b].q + 64 * c));
            __m256i s1 = madd_u8(hi, load_q(a[b].q + 64 * c + 32));
            sumv = _mm256_add_epi32(sumv, _mm256_mullo_epi32(s0, _mm256_set1_epi32(sc0)));
            sumv = _mm256_add_epi32(sumv, _mm256_mullo_epi32(s1, _mm256_set1_epi32(sc1)));
            summ += m0 * (a[b].bsums[4 * c] + a[b].bsums[4 * c + 1]) + m1 * (a[b].bsums[4 * c + 2] + a[b].bsums[4 * c + 3]);
        }
        acc += lmz_block_kquant(lmz_fp16_to_f32(lmz_read_u16le(p)), lmz_fp16_to_f32(lmz_read_u16le(p + 2)), a[b].d,
                                hsum_i32(sumv), summ);
    }
    return acc;
}

float lmz_dot_q6_k_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f), two = _mm256_set1_epi8(3), bias = _mm256_set1_epi8(32);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 210) {
        const int8_t *sc = (const int8_t *)(p + 192);
        __m256i sumv = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(p + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4));
            for (int g = 0; g < 4; g++) {
                int e = 128 * h + 32 * g;
                __m256i qs = _mm256_sub_epi8(q[g], bias);
                __m256i xv = load_q(a[b].q + e);
                __m256i prod16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qs, qs), _mm256_sign_epi8(xv, qs));
                __m256i scales = _mm256_set_m128i(_mm_set1_epi16(sc[e / 16 + 1]), _mm_set1_epi16(sc[e / 16]));
                sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(prod16, scales));
            }
        }
        acc += lmz_block_sym(lmz_fp16_to_f32(lmz_read_u16le(p + 208)), a[b].d, hsum_i32(sumv));
    }
    return acc;
}

/* ---- canonical 8-lane float primitives ---- */

static inline float finish_lanes(__m256 acc, const float *a, const float *b, int64_t i, int64_t n) {
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    for (; i < n; i++) lane[i & 7] += a[i] * b[i];
    return lmz_lanes_combine(lane);
}

float lmz_vec_dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    return finish_lanes(acc, a, b, i, n);
}

float lmz_dot_f32_avx2(int64_t k, const void *w, const void *x) { return lmz_vec_dot_avx2(w, x, k); }

float lmz_vec_dot_f16_avx2(const float *a, const uint16_t *b16, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 bv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b16 + i)));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), bv));
    }
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    for (; i < n; i++) lane[i & 7] += a[i] * lmz_fp16_to_f32(b16[i]);
    return lmz_lanes_combine(lane);
}

float lmz_dot_f16_avx2(int64_t k, const void *w, const void *x) { return lmz_vec_dot_f16_avx2(x, w, k); }

void lmz_vec_axpy_f16_avx2(float *y, float alpha, const uint16_t *x16, int64_t n) {
    __m256 av = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x16 + i)));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, xv)));
    }
    for (; i < n; i++) y[i] += alpha * lmz_fp16_to_f32(x16[i]);
}
#endif
