/* dot_avx2.c — AVX2 versions of the dot products and canonical float primitives.
 * Integer block sums are computed with maddubs/madd (exact: no int16 saturation is
 * possible for the value ranges involved); the float part uses quant.h's shared
 * expressions, so results equal dot_scalar.c bit for bit. Compiled with -mavx2. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../util/fp16.h"
#include "../util/mathfn.h"
#include "quant.h"
#include "simd_avx2.h"
#include "vecf.h"

static inline int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
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

/* fp16 -> f32 with F16C: exact, so equal to lmz_fp16_to_f32. */
static inline float h2f(const uint8_t *p) { return _cvtsh_ss(lmz_read_u16le(p)); }

/* ---- multi-token kernels for 32-element blocks ----
 * Each weight block is unpacked once and multiplied with up to 4 tokens; the 4 integer
 * sums are reduced together, and the float part runs in 4 lanes, one per token, with
 * the same operations as the scalar expression (lane-wise, so the same bits). */
enum block32 { BLOCK_Q4_0, BLOCK_Q4_1, BLOCK_Q5_0, BLOCK_Q8_0 };

static inline size_t block32_bytes(enum block32 kind) {
    return kind == BLOCK_Q4_0 ? 18 : kind == BLOCK_Q4_1 ? 20 : kind == BLOCK_Q5_0 ? 22 : 34;
}

/* The block's 32 weights as int8 (signed kinds) or uint8 0..15 (Q4_1). */
static inline __m256i block32_weights(enum block32 kind, const uint8_t *p) {
    switch (kind) {
    case BLOCK_Q4_0: return _mm256_sub_epi8(unpack_nibbles(p + 2), _mm256_set1_epi8(8));
    case BLOCK_Q4_1: return unpack_nibbles(p + 4);
    case BLOCK_Q5_0:
        return _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles(p + 6), fifth_bits(lmz_read_u32le(p + 2))),
                               _mm256_set1_epi8(16));
    default: return _mm256_loadu_si256((const __m256i *)(p + 2));
    }
}

/* Integer sum of one weight block with one token's activations. */
static inline __m256i block32_madd(enum block32 kind, __m256i wv, __m256i wabs, const int8_t *q) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (kind == BLOCK_Q4_1) return _mm256_madd_epi16(_mm256_maddubs_epi16(wv, load_q(q)), ones);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(load_q(q), wv)), ones);
}

/* Four tokens at a time. */
static inline void dotn4_block32(enum block32 kind, int64_t k, const uint8_t *w, const lmz_act32 *const a[4],
                                 float lanes[4]) {
    const size_t bb = block32_bytes(kind);
    __m128 acc = _mm_setzero_ps();
    const uint8_t *p = w;
    for (int64_t b = 0; b < k / 32; b++, p += bb) {
        __m256i wv = block32_weights(kind, p), wabs = _mm256_sign_epi8(wv, wv);
        __m256i s0 = block32_madd(kind, wv, wabs, a[0][b].q), s1 = block32_madd(kind, wv, wabs, a[1][b].q);
        __m256i s2 = block32_madd(kind, wv, wabs, a[2][b].q), s3 = block32_madd(kind, wv, wabs, a[3][b].q);
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
        __m128 sumi = _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
        __m128 dx = _mm_setr_ps(a[0][b].d, a[1][b].d, a[2][b].d, a[3][b].d);
        __m128 c = _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(h2f(p)), dx), sumi);
        if (kind == BLOCK_Q4_1) {
            __m128 sx = _mm_setr_ps(a[0][b].s, a[1][b].s, a[2][b].s, a[3][b].s);
            c = _mm_add_ps(c, _mm_mul_ps(_mm_set1_ps(h2f(p + 2)), sx));
        }
        acc = _mm_add_ps(acc, c);
    }
    _mm_storeu_ps(lanes, acc);
}

/* One token: the scalar float expressions of quant.h. */
static inline float dot1_block32(enum block32 kind, int64_t k, const uint8_t *w, const lmz_act32 *a) {
    const size_t bb = block32_bytes(kind);
    float acc = 0.0f;
    const uint8_t *p = w;
    for (int64_t b = 0; b < k / 32; b++, p += bb) {
        __m256i wv = block32_weights(kind, p);
        int32_t sumi = hsum_i32(block32_madd(kind, wv, _mm256_sign_epi8(wv, wv), a[b].q));
        acc += kind == BLOCK_Q4_1 ? lmz_block_affine(h2f(p), h2f(p + 2), &a[b], sumi) : lmz_block_sym(h2f(p), a[b].d, sumi);
    }
    return acc;
}

static inline void dotn_block32(enum block32 kind, int64_t k, const uint8_t *w, const uint8_t *acts, size_t stride,
                                int n, float *out, size_t os) {
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        const lmz_act32 *a[4];
        float lanes[4];
        for (int i = 0; i < 4; i++) a[i] = (const lmz_act32 *)(acts + (size_t)(t + i) * stride);
        dotn4_block32(kind, k, w, a, lanes);
        for (int i = 0; i < 4; i++) out[(size_t)(t + i) * os] = lanes[i];
    }
    for (; t < n; t++) out[(size_t)t * os] = dot1_block32(kind, k, w, (const lmz_act32 *)(acts + (size_t)t * stride));
}

/* ---- 4 tokens and more: 8 rows at a time, one row per 32-bit lane ----
 * Like the AVX-512 16-row kernels: each lane holds 4 bytes of its own row (an 8 x 4 dword
 * transpose of the rows' nibble bytes), each token's activations are broadcast 4 bytes at
 * a time, and there is no horizontal sum; the float part is quant.h's expression,
 * lane-wise, so the bits equal the scalar reference. Without VNNI a lane's 4 products take
 * VPMADDUBSW (pairs to int16) and a block's pairs are summed in int16 before VPMADDWD: 8
 * pairs of 4-bit weights are at most 8 * 2 * 15 * 128 = 30,720, below 32,767, so the sums
 * are exact. The per-row kernels above spent most of their time gathering the tokens'
 * scales and reducing sums, not multiplying; they remain for 1-3 tokens and Q8_0. */
#define TOKEN_TILE8 32

/* Bytes 0..15 at P of 8 rows ROW_BYTES apart -> V[j] lane r = dword j of row r. */
static inline void load_rows8(const uint8_t *p, size_t row_bytes, __m256i v[4]) {
    __m256i r04 = _mm256_loadu2_m128i((const __m128i *)(p + 4 * row_bytes), (const __m128i *)p);
    __m256i r15 = _mm256_loadu2_m128i((const __m128i *)(p + 5 * row_bytes), (const __m128i *)(p + row_bytes));
    __m256i r26 = _mm256_loadu2_m128i((const __m128i *)(p + 6 * row_bytes), (const __m128i *)(p + 2 * row_bytes));
    __m256i r37 = _mm256_loadu2_m128i((const __m128i *)(p + 7 * row_bytes), (const __m128i *)(p + 3 * row_bytes));
    __m256i t0 = _mm256_unpacklo_epi32(r04, r15), t1 = _mm256_unpackhi_epi32(r04, r15);
    __m256i t2 = _mm256_unpacklo_epi32(r26, r37), t3 = _mm256_unpackhi_epi32(r26, r37);
    v[0] = _mm256_unpacklo_epi64(t0, t2);
    v[1] = _mm256_unpackhi_epi64(t0, t2);
    v[2] = _mm256_unpacklo_epi64(t1, t3);
    v[3] = _mm256_unpackhi_epi64(t1, t3);
}

static inline __m256i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm256_set1_epi32(v);
}

/* A block's 32 products per lane: W[j] holds elements 4j..4j+3 and W[4 + j] elements
 * 16+4j..16+4j+3 of each lane's row, against the token's activations Q. The int16 pair
 * sums of elements 0..15 go to *LO and of 16..31 to *HI (two independent chains). */
static inline void maddubs32(const __m256i w[8], const int8_t *q, __m256i *lo, __m256i *hi) {
    __m256i s0 = _mm256_maddubs_epi16(w[0], bcast4(q));
    __m256i s1 = _mm256_maddubs_epi16(w[4], bcast4(q + 16));
    for (int j = 1; j < 4; j++) {
        s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(w[j], bcast4(q + 4 * j)));
        s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(w[4 + j], bcast4(q + 16 + 4 * j)));
    }
    *lo = s0;
    *hi = s1;
}

/* Q5_0's fifth bits for 4 elements per lane: bits 4g..4g+3 of each lane's QH -> bit 4 of
 * its bytes 0..3. */
static inline __m256i fifth_bits8(__m256i qh, int g) {
    const __m256i t = _mm256_srli_epi32(qh, 4 * g);
    const __m256i b0 = _mm256_slli_epi32(_mm256_and_si256(t, _mm256_set1_epi32(1)), 4);
    const __m256i b1 = _mm256_slli_epi32(_mm256_and_si256(t, _mm256_set1_epi32(2)), 11);
    const __m256i b2 = _mm256_slli_epi32(_mm256_and_si256(t, _mm256_set1_epi32(4)), 18);
    const __m256i b3 = _mm256_slli_epi32(_mm256_and_si256(t, _mm256_set1_epi32(8)), 25);
    return _mm256_or_si256(_mm256_or_si256(b0, b1), _mm256_or_si256(b2, b3));
}

/* Q4_0, Q4_1 and Q5_0 (not Q8_0: its unsigned bytes would saturate VPMADDUBSW's pairs).
 * Weights are taken unsigned (Q4_0 + 8, Q5_0 + 16) and the offset times the token's qsum
 * subtracted, exactly, as in the AVX-512 kernels. A Q5_0 pair is at most 2 * 31 * 128 =
 * 7,936, so its int16 sums go to int32 four pairs at a time. */
static void dot8_block32(enum block32 kind, int64_t k, const uint8_t *w, size_t row_bytes, const uint8_t *acts,
                         size_t stride, int n, float *out, size_t os) {
    const size_t bb = block32_bytes(kind);
    const int32_t offset = kind == BLOCK_Q4_0 ? 8 : kind == BLOCK_Q5_0 ? 16 : 0;
    const size_t nibbles_at = kind == BLOCK_Q4_0 ? 2 : kind == BLOCK_Q4_1 ? 4 : 6;
    const __m256i low4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 acc[TOKEN_TILE8];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE8) {
        const int nt = n - t0 < TOKEN_TILE8 ? n - t0 : TOKEN_TILE8;
        for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 32; b++) {
            const uint8_t *p = w + (size_t)b * bb;
            float dws[8], mws[8];
            int32_t qhs[8];
            for (int r = 0; r < 8; r++) {
                dws[r] = h2f(p + (size_t)r * row_bytes);
                mws[r] = kind == BLOCK_Q4_1 ? h2f(p + (size_t)r * row_bytes + 2) : 0.0f;
                qhs[r] = kind == BLOCK_Q5_0 ? (int32_t)lmz_read_u32le(p + (size_t)r * row_bytes + 2) : 0;
            }
            const __m256 dw = _mm256_loadu_ps(dws), mw = _mm256_loadu_ps(mws);
            const __m256i qh = _mm256_loadu_si256((const __m256i *)qhs);
            __m256i v[4], wq[8];
            load_rows8(p + nibbles_at, row_bytes, v);
            for (int j = 0; j < 4; j++) {
                wq[j] = _mm256_and_si256(v[j], low4);                            /* elements 4j..4j+3 */
                wq[4 + j] = _mm256_and_si256(_mm256_srli_epi16(v[j], 4), low4);  /* elements 16+4j.. */
                if (kind == BLOCK_Q5_0) {
                    wq[j] = _mm256_or_si256(wq[j], fifth_bits8(qh, j));
                    wq[4 + j] = _mm256_or_si256(wq[4 + j], fifth_bits8(qh, 4 + j));
                }
            }
            for (int t = 0; t < nt; t++) {
                const lmz_act32 *a = (const lmz_act32 *)(acts + (size_t)(t0 + t) * stride) + b;
                __m256i s0, s1;
                maddubs32(wq, a->q, &s0, &s1);
                __m256i s = kind == BLOCK_Q5_0
                                ? _mm256_add_epi32(_mm256_madd_epi16(s0, ones), _mm256_madd_epi16(s1, ones))
                                : _mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones);
                if (offset) s = _mm256_sub_epi32(s, _mm256_set1_epi32(offset * a->qsum));
                __m256 c = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d)), _mm256_cvtepi32_ps(s));
                if (kind == BLOCK_Q4_1) c = _mm256_add_ps(c, _mm256_mul_ps(mw, _mm256_set1_ps(a->s)));
                acc[t] = _mm256_add_ps(acc[t], c);
            }
        }
        for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * os, acc[t]);
    }
}

static inline void dot16_block32(enum block32 kind, int64_t k, const void *w, size_t row_bytes, const uint8_t *acts,
                                 size_t stride, int n, float *out, size_t os) {
    dot8_block32(kind, k, w, row_bytes, acts, stride, n, out, os);
    dot8_block32(kind, k, (const uint8_t *)w + 8 * row_bytes, row_bytes, acts, stride, n, out + 8, os);
}

void lmz_dot16_q4_0_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os) {
    dot16_block32(BLOCK_Q4_0, k, w, rb, acts, st, n, o, os);
}
void lmz_dot16_q4_1_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os) {
    dot16_block32(BLOCK_Q4_1, k, w, rb, acts, st, n, o, os);
}
void lmz_dot16_q5_0_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os) {
    dot16_block32(BLOCK_Q5_0, k, w, rb, acts, st, n, o, os);
}

void lmz_dotn_q4_0_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os) {
    dotn_block32(BLOCK_Q4_0, k, w, acts, stride, n, out, os);
}
void lmz_dotn_q4_1_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os) {
    dotn_block32(BLOCK_Q4_1, k, w, acts, stride, n, out, os);
}
void lmz_dotn_q5_0_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os) {
    dotn_block32(BLOCK_Q5_0, k, w, acts, stride, n, out, os);
}
void lmz_dotn_q8_0_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os) {
    dotn_block32(BLOCK_Q8_0, k, w, acts, stride, n, out, os);
}

float lmz_dot_q4_0_avx2(int64_t k, const void *w, const void *x) { return dot1_block32(BLOCK_Q4_0, k, w, x); }

float lmz_dot_q4_1_avx2(int64_t k, const void *w, const void *x) { return dot1_block32(BLOCK_Q4_1, k, w, x); }

float lmz_dot_q5_0_avx2(int64_t k, const void *w, const void *x) { return dot1_block32(BLOCK_Q5_0, k, w, x); }

float lmz_dot_q8_0_avx2(int64_t k, const void *w, const void *x) { return dot1_block32(BLOCK_Q8_0, k, w, x); }

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
        acc += lmz_block_kquant(h2f(p), h2f(p + 2), a[b].d,
                                hsum_i32(sumv), summ);
    }
    return acc;
}

/* Q4_K, 8 rows at a time, one row per lane, as dot8_block32: a sub-block's 8 int16 pair sums
 * are exact (at most 8 * 3,840), and one VPMADDWD against the lane's 6-bit scale in both
 * halves gives the scaled int32 sum (lmz_kquant_scale_min's value, exact); the mins pair
 * with the token's block sums the same way. The float part is lmz_block_kquant lane-wise. */
static void dot8_q4_k(int64_t k, const uint8_t *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                      float *out, size_t os) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[TOKEN_TILE8];
    __m256i isum[TOKEN_TILE8];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE8) {
        const int nt = n - t0 < TOKEN_TILE8 ? n - t0 : TOKEN_TILE8;
        for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 256; b++) {
            const uint8_t *p = w + (size_t)b * 144;
            float ds[8], dmins[8];
            int32_t scpair[8][8], mpair[8][8]; /* [sub-block][row]: the value in both 16-bit halves */
            for (int r = 0; r < 8; r++) {
                const uint8_t *row = p + (size_t)r * row_bytes;
                ds[r] = h2f(row);
                dmins[r] = h2f(row + 2);
                for (int j = 0; j < 8; j++) {
                    uint8_t sc, m;
                    lmz_kquant_scale_min(j, row + 4, &sc, &m);
                    scpair[j][r] = (int32_t)sc * 0x10001;
                    mpair[j][r] = (int32_t)m * 0x10001;
                }
            }
            for (int t = 0; t < nt; t++) isum[t] = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i v[8];
                load_rows8(p + 16 + 32 * c, row_bytes, v);      /* bytes 0..15 of the chunk */
                load_rows8(p + 16 + 32 * c + 16, row_bytes, v + 4); /* bytes 16..31 */
                for (int half = 0; half < 2; half++) { /* sub-block 2c: low nibbles; 2c + 1: high */
                    __m256i wq[8];
                    for (int i = 0; i < 8; i++)
                        wq[i] = _mm256_and_si256(half ? _mm256_srli_epi16(v[i], 4) : v[i], low4);
                    const __m256i sc = _mm256_loadu_si256((const __m256i *)scpair[2 * c + half]);
                    for (int t = 0; t < nt; t++) {
                        const int8_t *q = ((const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b)->q + 64 * c + 32 * half;
                        __m256i s0, s1;
                        maddubs32(wq, q, &s0, &s1);
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_add_epi16(s0, s1), sc));
                    }
                }
            }
            const __m256 d = _mm256_loadu_ps(ds), dmin = _mm256_loadu_ps(dmins);
            for (int t = 0; t < nt; t++) {
                const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                __m256i summ = _mm256_setzero_si256();
                for (int j = 0; j < 8; j++) /* m_j * (bsums[2j] + bsums[2j + 1]) */
                    summ = _mm256_add_epi32(summ, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)mpair[j]),
                                                                      bcast4((const int8_t *)&a->bsums[2 * j])));
                const __m256 dx = _mm256_set1_ps(a->d);
                __m256 contrib = _mm256_sub_ps(_mm256_mul_ps(_mm256_mul_ps(d, dx), _mm256_cvtepi32_ps(isum[t])),
                                               _mm256_mul_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(summ)));
                acc[t] = _mm256_add_ps(acc[t], contrib);
            }
        }
        for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * os, acc[t]);
    }
}

void lmz_dot16_q4_k_avx2(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                         float *out, size_t os) {
    dot8_q4_k(k, w, row_bytes, acts, stride, n, out, os);
    dot8_q4_k(k, (const uint8_t *)w + 8 * row_bytes, row_bytes, acts, stride, n, out + 8, os);
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
        acc += lmz_block_sym(h2f(p + 208), a[b].d, hsum_i32(sumv));
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

/* Eight rows at a time: each row's 8 canonical lanes in one vector, the last partial group
 * of 8 through masked loads (the missing elements add 0 * 0 = +0, which leaves a lane's
 * value, never -0, unchanged), then a transpose so the canonical combine runs across the 8
 * rows at once. Short rows (LoRA's B has rank-long rows) make this far cheaper than one
 * horizontal combine per row. */
void lmz_vec_dot_rows_avx2(const float *rows, int64_t n_rows, int64_t len, const float *x, float *out) {
    int64_t full = len & ~(int64_t)7, rest = len - full, j = 0;
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 x_tail = rest ? _mm256_maskload_ps(x + full, tail) : _mm256_setzero_ps();
    for (; j + 8 <= n_rows; j += 8) {
        __m256 acc[8];
        for (int r = 0; r < 8; r++) {
            const float *a = rows + (j + r) * len;
            __m256 sum = _mm256_setzero_ps();
            for (int64_t i = 0; i < full; i += 8)
                sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + i)));
            if (rest) sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_maskload_ps(a + full, tail), x_tail));
            acc[r] = sum;
        }
        lmz_transpose8(acc);
        _mm256_storeu_ps(out + j, lmz_lanes_combine8(acc));
    }
    for (; j < n_rows; j++) out[j] = lmz_vec_dot_avx2(rows + j * len, x, len);
}

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

/* lmz_expf, lane by lane: the same operations in the same order (mathfn.c), so the same
 * bits; the out-of-range cases are blended in afterwards. */
static inline __m256 expf8(__m256 x) {
    const __m256 shifter = _mm256_set1_ps(12582912.0f);
    __m256 n = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), shifter), shifter);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    __m256i k = _mm256_slli_epi32(_mm256_cvttps_epi32(n), 23);
    __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), k));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-86.5f), _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

float lmz_vec_exp_sum_avx2(float *w, int64_t n, float mx) {
    __m256 acc = _mm256_setzero_ps(), m = _mm256_set1_ps(mx);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = expf8(_mm256_sub_ps(_mm256_loadu_ps(w + i), m));
        _mm256_storeu_ps(w + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    for (; i < n; i++) {
        w[i] = lmz_expf(w[i] - mx);
        lane[i & 7] += w[i];
    }
    return lmz_lanes_combine(lane);
}

void lmz_vec_swiglu_avx2(float *g, const float *u, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 silu = _mm256_div_ps(x, _mm256_add_ps(one, expf8(_mm256_xor_ps(x, sign))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = lmz_siluf(g[i]) * u[i];
}

void lmz_vec_axpy_f16_avx2(float *y, float alpha, const uint16_t *x16, int64_t n) {
    __m256 av = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x16 + i)));
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, xv)));
    }
    for (; i < n; i++) y[i] += alpha * lmz_fp16_to_f32(x16[i]);
}

/* ---- lmz_freq_build's passes (vecf.h) ---- */

float lmz_vec_max_avx2(const float *x, int64_t n) {
    /* max_ps(a, b) returns b when either is NaN: with the running maximum as b, NaN logits
     * are passed over and the maximum never becomes NaN. The maximum's value is exact in any
     * order, so four accumulators may hide max_ps's latency; only which zero wins could
     * depend on the order, and the final + 0 makes it +0 as in the scalar reference. */
    const __m256 none = _mm256_set1_ps(-__builtin_inff());
    __m256 m0 = none, m1 = none, m2 = none, m3 = none;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    float lane[8];
    _mm256_storeu_ps(lane, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
    float mx = -__builtin_inff();
    for (int k = 0; k < 8; k++)
        if (lane[k] > mx) mx = lane[k];
    for (; i < n; i++)
        if (x[i] > mx) mx = x[i];
    return mx + 0.0f;
}

/* lmz_exp_weight, lane by lane: expf8 where x - mx is a number, else 1 where x == mx. */
static inline __m256 exp_weight8(__m256 x, __m256 m) {
    __m256 d = _mm256_sub_ps(x, m);
    __m256 at_max = _mm256_and_ps(_mm256_cmp_ps(x, m, _CMP_EQ_OQ), _mm256_set1_ps(1.0f));
    return _mm256_blendv_ps(expf8(d), at_max, _mm256_cmp_ps(d, d, _CMP_UNORD_Q));
}

double lmz_vec_exp_weights_avx2(const float *x, int64_t n, float mx, uint32_t *w) {
    /* Lanes 0-3 and 4-7 of the canonical sum are two 4-double registers; cvtps_pd is the
     * exact float -> double conversion of the scalar reference. */
    const __m256 m = _mm256_set1_ps(mx);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_weight8(_mm256_loadu_ps(x + i), m);
        _mm256_storeu_si256((__m256i *)(w + i), _mm256_castps_si256(e));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lane[8];
    _mm256_storeu_pd(lane, lo);
    _mm256_storeu_pd(lane + 4, hi);
    for (; i < n; i++) {
        float e = lmz_exp_weight(x[i], mx);
        memcpy(&w[i], &e, sizeof e);
        lane[i & 7] += (double)e;
    }
    return lmz_lanes_combine_f64(lane);
}

uint32_t lmz_vec_freq_scale_avx2(uint32_t *f, int64_t n, double scale, int64_t *best) {
    /* The products are below 2^31, where cvttpd's signed truncation equals the uint32_t cast
     * and frequencies compare correctly as signed. Each lane keeps its sum, its largest
     * frequency and the first index holding it (only a strictly greater one replaces it);
     * the lanes are merged at the end, the lowest index winning among equal maxima. */
    const __m256d s = _mm256_set1_pd(scale);
    const __m256i one = _mm256_set1_epi32(1), step = _mm256_set1_epi32(8);
    __m256i sum = _mm256_setzero_si256(), top = _mm256_setzero_si256(), top_at = _mm256_setzero_si256();
    __m256i at = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 w = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(f + i)));
        __m128i lo = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(w)), s));
        __m128i hi = _mm256_cvttpd_epi32(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)), s));
        __m256i fv = _mm256_add_epi32(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1), one);
        _mm256_storeu_si256((__m256i *)(f + i), fv);
        sum = _mm256_add_epi32(sum, fv);
        __m256i gt = _mm256_cmpgt_epi32(fv, top);
        top = _mm256_max_epi32(top, fv);
        top_at = _mm256_blendv_epi8(top_at, at, gt);
        at = _mm256_add_epi32(at, step);
    }
    uint32_t lane_sum[8], lane_top[8];
    int32_t lane_at[8];
    _mm256_storeu_si256((__m256i *)lane_sum, sum);
    _mm256_storeu_si256((__m256i *)lane_top, top);
    _mm256_storeu_si256((__m256i *)lane_at, top_at);
    uint32_t total = 0, top_f = 0;
    int64_t top_i = 0;
    for (int k = 0; k < 8; k++) {
        total += lane_sum[k];
        if (lane_top[k] > top_f || (lane_top[k] == top_f && lane_at[k] < top_i)) {
            top_f = lane_top[k];
            top_i = lane_at[k];
        }
    }
    for (; i < n; i++) { /* the tail's indices are above every lane's: strictly greater wins */
        float w;
        memcpy(&w, &f[i], sizeof w);
        f[i] = 1 + (uint32_t)((double)w * scale);
        total += f[i];
        if (f[i] > top_f) {
            top_f = f[i];
            top_i = i;
        }
    }
    *best = top_i;
    return total;
}
#endif
