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

/* ---- 8 rows at a time, one row per 32-bit lane ----
 * Like the AVX-512 16-row kernels: each lane holds 4 bytes of its own row (an 8 x 4 dword
 * transpose of the rows' nibble bytes), each token's activations are broadcast 4 bytes at
 * a time, and there is no horizontal sum; the float part is quant.h's expression,
 * lane-wise, so the bits equal the scalar reference. Without VNNI a lane's 4 products take
 * VPMADDUBSW (pairs to int16) and a block's pairs are summed in int16 before VPMADDWD: 8
 * pairs of 4-bit weights are at most 8 * 2 * 15 * 128 = 30,720, below 32,767, so the sums
 * are exact. The per-row kernels above spent most of their time gathering the tokens'
 * scales and reducing sums, not multiplying. quant.c's dot16_for picks these for every
 * token count of the 32-element types (Q8_0 at one token: dot8_q8_0_one), Q4_K from 2
 * tokens and Q6_K from 4; below that the per-row Q4_K and Q6_K kernels further down are
 * faster (one weight stream each, not 8). */
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

/* Q5_0's fifth bits, ORed into WQ (elements 4j..4j+3 of each lane's row in WQ[j]): bit e
 * of each lane's QH -> bit 4 of element e's byte. Byte j/2 of QH holds elements 4j..4j+3
 * in its low (j even) or high (j odd) nibble: one in-lane shuffle spreads that byte over
 * the lane's 4 bytes, and a per-byte mask test picks each element's bit. */
static inline void or_fifth_bits8(__m256i qh, __m256i wq[8]) {
    const __m256i low_bits = _mm256_set1_epi32(0x08040201), high_bits = _mm256_set1_epi32((int)0x80402010u);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    for (int h = 0; h < 4; h++) {
        const int b = 0x01010101 * h;
        const __m256i spread = _mm256_shuffle_epi8(qh, _mm256_setr_epi32(b, b + 0x04040404, b + 0x08080808, b + 0x0c0c0c0c,
                                                                         b, b + 0x04040404, b + 0x08080808, b + 0x0c0c0c0c));
        const __m256i lo = _mm256_cmpeq_epi8(_mm256_and_si256(spread, low_bits), low_bits);
        const __m256i hi = _mm256_cmpeq_epi8(_mm256_and_si256(spread, high_bits), high_bits);
        wq[2 * h] = _mm256_or_si256(wq[2 * h], _mm256_and_si256(lo, bit4));
        wq[2 * h + 1] = _mm256_or_si256(wq[2 * h + 1], _mm256_and_si256(hi, bit4));
    }
}

/* Dword 0 of the 8 rows' bytes at P (ROW_BYTES apart), one per lane. */
static inline __attribute__((always_inline)) __m256i dword_rows8(const uint8_t *p, size_t row_bytes) {
    return _mm256_setr_epi32((int)lmz_read_u32le(p), (int)lmz_read_u32le(p + row_bytes),
                             (int)lmz_read_u32le(p + 2 * row_bytes), (int)lmz_read_u32le(p + 3 * row_bytes),
                             (int)lmz_read_u32le(p + 4 * row_bytes), (int)lmz_read_u32le(p + 5 * row_bytes),
                             (int)lmz_read_u32le(p + 6 * row_bytes), (int)lmz_read_u32le(p + 7 * row_bytes));
}

/* The fp16 values in the low and (when HI) high halves of each lane -> f32, exact (as
 * lmz_fp16_to_f32). The scalar gathers these replace (h2f per row into a float array, read
 * back as a vector) had cost more than the block's products at one token. */
static inline void fp16_halves8(__m256i v, __m256 *lo, __m256 *hi) {
    __m256i packed = _mm256_packus_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_srli_epi32(v, 16));
    packed = _mm256_permute4x64_epi64(packed, 0xd8); /* lows of lanes 0..7, then highs */
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
    if (hi) *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(packed, 1));
}

/* 16 transposed bytes of nibble pairs per lane (V, as load_rows8 leaves them) -> elements
 * 0..15 (low nibbles) in WQ[0..3] and 16..31 (high nibbles) in WQ[4..7]. */
static inline void split_nibbles8(const __m256i v[4], __m256i wq[8]) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
        wq[j] = _mm256_and_si256(v[j], low4);
        wq[4 + j] = _mm256_and_si256(_mm256_srli_epi16(v[j], 4), low4);
    }
}

/* Q8_0's signed weights against one token: VPMADDUBSW of |w| and the activations carrying
 * w's sign. A pair is at most 2 * 128 * 127 = 32,512, so each goes to int32 at once. */
static inline __m256i signed_dot32(const __m256i w[8], const __m256i wabs[8], const int8_t *q) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[0], _mm256_sign_epi8(bcast4(q), w[0])), ones);
    __m256i s1 = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[1], _mm256_sign_epi8(bcast4(q + 4), w[1])), ones);
    for (int j = 2; j < 8; j += 2) {
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[j], _mm256_sign_epi8(bcast4(q + 4 * j), w[j])), ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[j + 1], _mm256_sign_epi8(bcast4(q + 4 * j + 4), w[j + 1])), ones));
    }
    return _mm256_add_epi32(s0, s1);
}

/* A block of 8 rows: its weights (unsigned: Q4_0 + 8, Q5_0 + 16; Q8_0 signed, with their
 * magnitudes in WABS) and scales (Q4_1: and mins in MW), from contiguous loads and in-lane
 * shuffles. */
static inline void block32_weights8(enum block32 kind, const uint8_t *p, size_t row_bytes, __m256i wq[8],
                                    __m256i wabs[8], __m256 *dw, __m256 *mw) {
    __m256i v[4];
    if (kind == BLOCK_Q5_0) { /* bytes 0..15: fp16 d, then qh in bytes 2..5 */
        load_rows8(p, row_bytes, v);
        fp16_halves8(v[0], dw, NULL);
        const __m256i qh = _mm256_or_si256(_mm256_srli_epi32(v[0], 16), _mm256_slli_epi32(v[1], 16));
        load_rows8(p + 6, row_bytes, v);
        split_nibbles8(v, wq);
        or_fifth_bits8(qh, wq);
        return;
    }
    fp16_halves8(dword_rows8(p, row_bytes), dw, kind == BLOCK_Q4_1 ? mw : NULL);
    switch (kind) {
    case BLOCK_Q8_0:
        load_rows8(p + 2, row_bytes, wq);
        load_rows8(p + 18, row_bytes, wq + 4);
        for (int j = 0; j < 8; j++) wabs[j] = _mm256_sign_epi8(wq[j], wq[j]);
        break;
    default: /* Q4_0, and Q4_1's blocks after the last 4 that q4_1_blocks_by_4 takes */
        load_rows8(p + (kind == BLOCK_Q4_1 ? 4 : 2), row_bytes, v);
        split_nibbles8(v, wq);
        break;
    }
}

/* One block's contribution for each token of the tile: ACC[t] += quant.h's float part,
 * lane-wise, of the block's exact integer sum against token T0 + t. */
static inline __attribute__((always_inline)) void block32_tokens8(enum block32 kind, const __m256i wq[8],
                                                                  const __m256i wabs[8], __m256 dw, __m256 mw,
                                                                  const uint8_t *acts, size_t stride, int64_t b,
                                                                  int t0, int nt, __m256 *acc) {
    const int32_t offset = kind == BLOCK_Q4_0 ? 8 : kind == BLOCK_Q5_0 ? 16 : 0;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = 0; t < nt; t++) {
        const lmz_act32 *a = (const lmz_act32 *)(acts + (size_t)(t0 + t) * stride) + b;
        __m256i s;
        if (kind == BLOCK_Q8_0) {
            s = signed_dot32(wq, wabs, a->q);
        } else {
            __m256i s0, s1;
            maddubs32(wq, a->q, &s0, &s1);
            s = kind == BLOCK_Q5_0 ? _mm256_add_epi32(_mm256_madd_epi16(s0, ones), _mm256_madd_epi16(s1, ones))
                                   : _mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones);
        }
        if (offset) s = _mm256_sub_epi32(s, _mm256_set1_epi32(offset * a->qsum));
        __m256 c = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a->d)), _mm256_cvtepi32_ps(s));
        if (kind == BLOCK_Q4_1) c = _mm256_add_ps(c, _mm256_mul_ps(mw, _mm256_set1_ps(a->s)));
        acc[t] = _mm256_add_ps(acc[t], c);
    }
}

/* Reading 8 rows block by block is 8 interleaved streams, and at one token (decode) the
 * hardware prefetcher alone left a large matrix (Gemma 3's 168 MB output layer) at 6.8
 * GB/s; so, as in the AVX-512 kernels, each block step requests its share of the next
 * 8-row group's (contiguous) lines, during the first token tile only. Prefetches past the
 * tensor's end are harmless. */
static inline size_t prefetch_lines_per_step8(size_t row_bytes, int64_t steps) {
    return (8 * row_bytes / 64 + 1 + (size_t)steps - 1) / (size_t)steps;
}

static inline __attribute__((always_inline)) void prefetch_next_group8(const uint8_t *w, size_t row_bytes, int64_t step,
                                                                       size_t lines) {
    const uint8_t *next = w + 8 * row_bytes;
    for (size_t i = 0; i < lines; i++) _mm_prefetch((const char *)(next + 64 * ((size_t)step * lines + i)), _MM_HINT_T0);
}

/* Q4_1 blocks are 20 bytes, 5 dwords, so 4 consecutive blocks of a row are 80 bytes that
 * 5 transposed 16-byte loads cover exactly: block q's header (fp16 d and m) is dword 5q,
 * its nibbles dwords 5q + 1..5q + 4, so block q needs transposes q and q + 1 only. Returns
 * the number of blocks done (a multiple of 4); the caller does the rest one by one. */
static inline __attribute__((always_inline)) int64_t q4_1_blocks_by_4(const uint8_t *w, size_t row_bytes, int64_t nb,
                                                                      size_t prefetch_lines, const uint8_t *acts,
                                                                      size_t stride, int t0, int nt, __m256 *acc) {
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + (size_t)b * 20;
        __m256i d[20];
        load_rows8(p, row_bytes, d);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            prefetch_next_group8(w, row_bytes, b + q, prefetch_lines);
            load_rows8(p + 16 * (q + 1), row_bytes, d + 4 * (q + 1));
            __m256i wq[8];
            __m256 dw, mw;
            split_nibbles8(d + 5 * q + 1, wq);
            fp16_halves8(d[5 * q], &dw, &mw);
            block32_tokens8(BLOCK_Q4_1, wq, NULL, dw, mw, acts, stride, b + q, t0, nt, acc);
        }
    }
    return b;
}

/* Weights are taken unsigned (Q4_0 + 8, Q5_0 + 16) and the offset times the token's qsum
 * subtracted, exactly, as in the AVX-512 kernels. A Q5_0 pair is at most 2 * 31 * 128 =
 * 7,936, so its int16 sums go to int32 four pairs at a time. Any token count: at one token
 * (decode) the 8 rows' blocks cost a few shuffles more than per-row kernels, and save
 * their horizontal sums and the serial chain of one accumulator. */
static void dot8_block32(enum block32 kind, int64_t k, const uint8_t *w, size_t row_bytes, const uint8_t *acts,
                         size_t stride, int n, float *out, size_t os) {
    const size_t bb = block32_bytes(kind);
    const int64_t nb = k / 32;
    const size_t lines_per_block = prefetch_lines_per_step8(row_bytes, nb);
    __m256 acc[TOKEN_TILE8];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE8) {
        const int nt = n - t0 < TOKEN_TILE8 ? n - t0 : TOKEN_TILE8;
        const size_t prefetch_lines = t0 == 0 ? lines_per_block : 0;
        for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
        int64_t b = kind == BLOCK_Q4_1 ? q4_1_blocks_by_4(w, row_bytes, nb, prefetch_lines, acts, stride, t0, nt, acc)
                                       : 0;
        for (; b < nb; b++) {
            const uint8_t *p = w + (size_t)b * bb;
            prefetch_next_group8(w, row_bytes, b, prefetch_lines);
            __m256i wq[8], wabs[8];
            __m256 dw, mw = _mm256_setzero_ps();
            block32_weights8(kind, p, row_bytes, wq, wabs, &dw, &mw);
            block32_tokens8(kind, wq, wabs, dw, mw, acts, stride, b, t0, nt, acc);
        }
        for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * os, acc[t]);
    }
}

/* Q8_0 at one token (decode; Gemma 3's 262,144-row output layer is most of its step): the
 * lane layout's two transposes of 32 weight bytes per row kept the shuffle port busier
 * than the multiplies. Here each row's block is one contiguous load multiplied against the
 * token's 32 bytes, and the 8 rows' int32 partial sums are reduced together (a horizontal
 * add tree, integer and exact), leaving one row per lane for the float part as before. */
static void dot8_q8_0_one(int64_t k, const uint8_t *w, size_t row_bytes, const lmz_act32 *a, float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = k / 32;
    const size_t lines_per_block = prefetch_lines_per_step8(row_bytes, nb);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = w + (size_t)b * 34;
        prefetch_next_group8(w, row_bytes, b, lines_per_block);
        const __m256i x = load_q(a[b].q);
        __m256i s[8];
        for (int r = 0; r < 8; r++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(p + (size_t)r * row_bytes + 2));
            s[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(x, wv)), ones);
        }
        const __m256i u = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        const __m256i v = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
        const __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(u, v, 0x20), _mm256_permute2x128_si256(u, v, 0x31));
        __m256 dw;
        fp16_halves8(dword_rows8(p, row_bytes), &dw, NULL);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(a[b].d)), _mm256_cvtepi32_ps(sum)));
    }
    _mm256_storeu_ps(out, acc);
}

static inline void dot16_block32(enum block32 kind, int64_t k, const void *w, size_t row_bytes, const uint8_t *acts,
                                 size_t stride, int n, float *out, size_t os) {
    if (kind == BLOCK_Q8_0 && n == 1) {
        dot8_q8_0_one(k, w, row_bytes, (const lmz_act32 *)acts, out);
        dot8_q8_0_one(k, (const uint8_t *)w + 8 * row_bytes, row_bytes, (const lmz_act32 *)acts, out + 8);
        return;
    }
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
void lmz_dot16_q8_0_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os) {
    dot16_block32(BLOCK_Q8_0, k, w, rb, acts, st, n, o, os);
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

/* One row (one token: decode, where the 8-row kernel below waited on its 8 interleaved
 * streams of weights; one row's bytes are one stream, prefetched ahead). The 6-bit scales
 * and mins of a super-block come out of its 12 bytes in one vector (as kquant_scales8 does
 * for 8 rows); each sub-block's 32 pair sums (at most 2 * 15 * 127 each) go through
 * VPMADDWD against its scale, exactly; the mins pair with the activations' 32-element sums. */
float lmz_dot_q4_k_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m128i low_mask = _mm_setr_epi32(0x3f3f3f3f, 0x3f3f3f3f, 0x0f0f0f0f, 0x0f0f0f0f);
    const __m128i high_mask = _mm_setr_epi32(0, 0, 0x30303030, 0x30303030);
    const __m128i scales_first = _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 144) {
        for (int i = 0; i < 3; i++) _mm_prefetch((const char *)(p + 2048 + 64 * i), _MM_HINT_T0);
        /* dwords S0, S1, S2 of the scale bytes -> bytes: scales 0..7, then mins 0..7 */
        const __m128i s = _mm_loadu_si128((const __m128i *)(p + 4));
        const __m128i low = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(s, 0xa4), _mm_setr_epi32(0, 0, 0, 4)), low_mask);
        const __m128i high = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(s, 0x40), 2), high_mask);
        const __m128i sm = _mm_shuffle_epi8(_mm_or_si128(low, high), scales_first);
        const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
        /* the mins against the activations' sums over each 32-element sub-block */
        const __m256i pair_sums = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[b].bsums), _mm256_set1_epi16(1));
        const __m128i sums16 = _mm_packs_epi32(_mm256_castsi256_si128(pair_sums), _mm256_extracti128_si256(pair_sums, 1));
        const __m128i mv = _mm_madd_epi16(m16, sums16);
        __m128i ms = _mm_add_epi32(mv, _mm_shuffle_epi32(mv, 0x4e));
        ms = _mm_add_epi32(ms, _mm_shuffle_epi32(ms, 0xb1));
        __m256i sumv = _mm256_setzero_si256();
#pragma GCC unroll 4 /* the scale shuffles' indices become constants */
        for (int c = 0; c < 4; c++) {
            const __m256i bytes = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
            const __m256i lo = _mm256_and_si256(bytes, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
            const __m256i pick_lo = _mm256_set1_epi16((short)(0x0100 * (4 * c + 1) + 4 * c));
            const __m256i pick_hi = _mm256_set1_epi16((short)(0x0100 * (4 * c + 3) + 4 * c + 2));
            const __m256i p0 = _mm256_maddubs_epi16(lo, load_q(a[b].q + 64 * c));
            const __m256i p1 = _mm256_maddubs_epi16(hi, load_q(a[b].q + 64 * c + 32));
            sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(p0, _mm256_shuffle_epi8(sc16, pick_lo)));
            sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sc16, pick_hi)));
        }
        acc += lmz_block_kquant(h2f(p), h2f(p + 2), a[b].d, hsum_i32(sumv), _mm_cvtsi128_si32(ms));
    }
    return acc;
}

/* The 6-bit scales and mins of Q4_K sub-blocks 0..7 (lmz_kquant_scale_min), one row per
 * lane, from the 12 scale bytes as load_rows8 transposes them (S: dwords 0..2): byte j of
 * SC[0] / MINS[0] is sub-block j's, byte j of SC[1] / MINS[1] sub-block 4 + j's. The upper
 * two bits of bytes 0..7 are the fifth and sixth bits of sub-blocks 4..7. (Extracting them
 * row by row in scalar code had been most of a block's time at one token.) */
static inline void kquant_scales8(const __m256i s[3], __m256i sc[2], __m256i mins[2]) {
    const __m256i low6 = _mm256_set1_epi8(63), low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
    sc[0] = _mm256_and_si256(s[0], low6);
    mins[0] = _mm256_and_si256(s[1], low6);
    sc[1] = _mm256_or_si256(_mm256_and_si256(s[2], low4), _mm256_and_si256(_mm256_srli_epi32(s[0], 2), bits45));
    mins[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s[2], 4), low4),
                              _mm256_and_si256(_mm256_srli_epi32(s[1], 2), bits45));
}

/* Byte j % 4 of each lane of V[j / 4], zero-extended into both 16-bit halves of the lane
 * (a VPMADDWD multiplier). */
static inline __m256i byte_pair16(const __m256i v[2], int j) {
    const int b = j % 4;
    const __m256i pick = _mm256_setr_epi8(b, -1, b, -1, 4 + b, -1, 4 + b, -1, 8 + b, -1, 8 + b, -1, 12 + b, -1, 12 + b, -1,
                                          b, -1, b, -1, 4 + b, -1, 4 + b, -1, 8 + b, -1, 8 + b, -1, 12 + b, -1, 12 + b, -1);
    return _mm256_shuffle_epi8(v[j / 4], pick);
}

/* Q4_K, 8 rows at a time, one row per lane, as dot8_block32: a sub-block's 8 int16 pair sums
 * are exact (at most 8 * 3,840), and one VPMADDWD against the lane's 6-bit scale in both
 * halves gives the scaled int32 sum (lmz_kquant_scale_min's value, exact); the mins pair
 * with the token's block sums the same way. The float part is lmz_block_kquant lane-wise. */
static void dot8_q4_k(int64_t k, const uint8_t *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                      float *out, size_t os) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const size_t lines_per_block = prefetch_lines_per_step8(row_bytes, k / 256);
    __m256 acc[TOKEN_TILE8];
    __m256i isum[TOKEN_TILE8];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE8) {
        const int nt = n - t0 < TOKEN_TILE8 ? n - t0 : TOKEN_TILE8;
        const size_t prefetch_lines = t0 == 0 ? lines_per_block : 0;
        for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 256; b++) {
            const uint8_t *p = w + (size_t)b * 144;
            prefetch_next_group8(w, row_bytes, b, prefetch_lines);
            __m256i head[4], sc[2], mins[2];
            load_rows8(p, row_bytes, head); /* d and dmin, then the 12 bytes of 6-bit scales */
            kquant_scales8(head + 1, sc, mins);
            for (int t = 0; t < nt; t++) isum[t] = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i v[8];
                load_rows8(p + 16 + 32 * c, row_bytes, v);      /* bytes 0..15 of the chunk */
                load_rows8(p + 16 + 32 * c + 16, row_bytes, v + 4); /* bytes 16..31 */
                for (int half = 0; half < 2; half++) { /* sub-block 2c: low nibbles; 2c + 1: high */
                    __m256i wq[8];
                    for (int i = 0; i < 8; i++)
                        wq[i] = _mm256_and_si256(half ? _mm256_srli_epi16(v[i], 4) : v[i], low4);
                    const __m256i scale = byte_pair16(sc, 2 * c + half);
                    for (int t = 0; t < nt; t++) {
                        const int8_t *q = ((const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b)->q + 64 * c + 32 * half;
                        __m256i s0, s1;
                        maddubs32(wq, q, &s0, &s1);
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_add_epi16(s0, s1), scale));
                    }
                }
            }
            __m256 d, dmin;
            fp16_halves8(head[0], &d, &dmin);
            __m256i mpair[8];
            for (int j = 0; j < 8; j++) mpair[j] = byte_pair16(mins, j);
            for (int t = 0; t < nt; t++) {
                const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                __m256i summ = _mm256_setzero_si256();
                for (int j = 0; j < 8; j++) /* m_j * (bsums[2j] + bsums[2j + 1]) */
                    summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mpair[j], bcast4((const int8_t *)&a->bsums[2 * j])));
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

/* Q6_K's unsigned 6-bit values of group GRP (0..3) from the matching bytes of ql (QL: the
 * first 32 ql bytes of the half for even GRP, the next 32 for odd) and of qh (QH): the low
 * nibbles for GRP < 2, the high ones after, and bits 2grp..2grp+1 of qh as bits 4..5. The
 * same whether a vector holds one row's bytes or 4 bytes of 8 rows. */
static inline __m256i q6_values(__m256i ql, __m256i qh, int grp) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), two_bits = _mm256_set1_epi8(3);
    const __m256i nib = _mm256_and_si256(grp < 2 ? ql : _mm256_srli_epi16(ql, 4), low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * grp), two_bits);
    return _mm256_or_si256(nib, _mm256_slli_epi16(hi, 4));
}

/* Q6_K, 8 rows at a time, one row per lane (4+ tokens: the transposes of a super-block's
 * 192 bytes of bits per row cost more than one token's products). Elements are made
 * signed (q - 32, in [-32, 31]) so VPMADDUBSW takes |w| against the activations carrying
 * w's sign: a pair is at most 2 * 32 * 127 = 8,128, and a 16-element sub-block's 4 pairs
 * per lane sum exactly in int16 before VPMADDWD against the sub-block's int8 scale (in
 * both 16-bit halves of the lane). Element layout as in the scalar reference: element
 * 128h + 32grp + l takes ql[64h + 32(grp & 1) + l] (low nibble for grp < 2, else high)
 * and bits 2grp..2grp+1 of qh[32h + l]. The float part is lmz_block_sym, lane-wise. */
static inline __m256i scale_pair16(const __m256i sc4[4], int g) {
    const __m256i s = _mm256_srai_epi32(_mm256_slli_epi32(sc4[g / 4], 24 - 8 * (g % 4)), 24);
    return _mm256_or_si256(_mm256_and_si256(s, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(s, 16));
}

static void dot8_q6_k(int64_t k, const uint8_t *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                      float *out, size_t os) {
    const __m256i bias = _mm256_set1_epi8(32);
    const int64_t nb = k / 256;
    const size_t lines_per_block = prefetch_lines_per_step8(row_bytes, nb);
    __m256 acc[TOKEN_TILE8];
    __m256i isum[TOKEN_TILE8];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE8) {
        const int nt = n - t0 < TOKEN_TILE8 ? n - t0 : TOKEN_TILE8;
        const size_t prefetch_lines = t0 == 0 ? lines_per_block : 0;
        for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *p = w + (size_t)b * 210;
            prefetch_next_group8(w, row_bytes, b, prefetch_lines);
            __m256i sc4[4];
            load_rows8(p + 192, row_bytes, sc4);
            for (int t = 0; t < nt; t++) isum[t] = _mm256_setzero_si256();
            for (int h = 0; h < 2; h++) {
                __m256i ql[16], qh[8];
                load_rows8(p + 64 * h, row_bytes, ql);
                load_rows8(p + 64 * h + 16, row_bytes, ql + 4);
                load_rows8(p + 64 * h + 32, row_bytes, ql + 8);
                load_rows8(p + 64 * h + 48, row_bytes, ql + 12);
                load_rows8(p + 128 + 32 * h, row_bytes, qh);
                load_rows8(p + 128 + 32 * h + 16, row_bytes, qh + 4);
                for (int grp = 0; grp < 4; grp++) {
                    __m256i wq[8], wabs[8];
                    for (int j = 0; j < 8; j++) {
                        wq[j] = _mm256_sub_epi8(q6_values(ql[8 * (grp & 1) + j], qh[j], grp), bias);
                        wabs[j] = _mm256_sign_epi8(wq[j], wq[j]);
                    }
                    const int g0 = 8 * h + 2 * grp; /* sub-blocks g0 (l = 0..15) and g0 + 1 */
                    const __m256i sc0 = scale_pair16(sc4, g0), sc1 = scale_pair16(sc4, g0 + 1);
                    for (int t = 0; t < nt; t++) {
                        const int8_t *q = ((const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b)->q + 128 * h + 32 * grp;
                        __m256i s0 = _mm256_maddubs_epi16(wabs[0], _mm256_sign_epi8(bcast4(q), wq[0]));
                        __m256i s1 = _mm256_maddubs_epi16(wabs[4], _mm256_sign_epi8(bcast4(q + 16), wq[4]));
                        for (int j = 1; j < 4; j++) {
                            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(wabs[j], _mm256_sign_epi8(bcast4(q + 4 * j), wq[j])));
                            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(wabs[4 + j],
                                                                           _mm256_sign_epi8(bcast4(q + 16 + 4 * j), wq[4 + j])));
                        }
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(s0, sc0),
                                                                             _mm256_madd_epi16(s1, sc1)));
                    }
                }
            }
            __m256 d, unused;
            fp16_halves8(dword_rows8(p + 206, row_bytes), &unused, &d); /* bytes 208..209: the high half */
            for (int t = 0; t < nt; t++) {
                const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(_mm256_mul_ps(d, _mm256_set1_ps(a->d)),
                                                             _mm256_cvtepi32_ps(isum[t])));
            }
        }
        for (int t = 0; t < nt; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * os, acc[t]);
    }
}

void lmz_dot16_q6_k_avx2(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                         float *out, size_t os) {
    dot8_q6_k(k, w, row_bytes, acts, stride, n, out, os);
    dot8_q6_k(k, (const uint8_t *)w + 8 * row_bytes, row_bytes, acts, stride, n, out + 8, os);
}

/* One row: the 6-bit values taken unsigned (0..63; a VPMADDUBSW pair is at most 2 * 63 *
 * 127 = 16,002) against each sub-block's scale, and the -32 of every element subtracted
 * once per super-block as 32 * sum(scale * block sum of the activations), exactly. Group
 * g's 32 elements are sub-blocks 2g (first 16) and 2g + 1, so its VPMADDWD multiplier is
 * their scales, one per 128-bit half, picked out of all 16 scales widened once. */
float lmz_dot_q6_k_avx2(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 210) {
        for (int i = 0; i < 4; i++) _mm_prefetch((const char *)(p + 2048 + 64 * i), _MM_HINT_T0);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
        /* the bias: 32 * sum over sub-blocks of scale * block sum */
        __m256i sumv = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)a[b].bsums)), 5);
        sumv = _mm256_sub_epi32(_mm256_setzero_si256(), sumv);
        const __m256i lo_scales = _mm256_permute4x64_epi64(sc16, 0x44), hi_scales = _mm256_permute4x64_epi64(sc16, 0xee);
#pragma GCC unroll 2 /* the scale shuffles' indices become constants */
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(p + 64 * h));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
            const __m256i scales8 = h ? hi_scales : lo_scales; /* sub-blocks 8h..8h + 7, in both halves */
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                /* int16 2g in the low half, 2g + 1 in the high half, each in every position */
                const __m256i pick = _mm256_setr_epi8(4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1,
                                                      4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1, 4 * g, 4 * g + 1,
                                                      4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3,
                                                      4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3,
                                                      4 * g + 2, 4 * g + 3, 4 * g + 2, 4 * g + 3);
                const __m256i prod16 =
                    _mm256_maddubs_epi16(q6_values(g & 1 ? ql1 : ql0, qh, g), load_q(a[b].q + 128 * h + 32 * g));
                sumv = _mm256_add_epi32(sumv, _mm256_madd_epi16(prod16, _mm256_shuffle_epi8(scales8, pick)));
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
