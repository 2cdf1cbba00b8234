/* dot_avx512.c — AVX-512 VNNI kernels: 16 weight rows against a tile of tokens.
 *
 * Lane r of every vector belongs to weight row r, so no horizontal sum is ever needed:
 * the 16 rows' bytes of one block are transposed into 8 vectors (vector g holds elements
 * 4g..4g+3 of each row), and each token's activations are broadcast 4 bytes at a time
 * into VPDPBUSD (unsigned weight byte x signed activation byte, summed into int32).
 * Weights that are signed in their format are offset to unsigned (Q4_0: +8, Q5_0: +16,
 * Q8_0: +128, Q6_K: +32 as stored) and the offset is taken back exactly with the
 * activation sums (act32.qsum, act256.bsums). The integer block sums are therefore the
 * exact integers of dot_scalar.c, and the float part is quant.h's expression evaluated
 * lane-wise with the same operations in the same order: the results are the scalar
 * reference's bits. Each block's weights are unpacked once per tile of up to 64 tokens.
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../util/fp16.h"
#include "quant.h"

#define TOKEN_TILE 64

/* The 16 bytes at P + r * ROW_BYTES for rows r = 0..15, transposed: lane r of out[j] is
 * dword j of row r. Contiguous loads and in-lane shuffles: gathers are far slower here. */
static inline void load_rows(const uint8_t *p, size_t row_bytes, __m512i out[4]) {
    __m512i z[4];
    for (int i = 0; i < 4; i++) { /* 128-bit lane L of z[i] holds row 4L + i */
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + (size_t)i * row_bytes)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + (size_t)(4 + i) * row_bytes)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + (size_t)(8 + i) * row_bytes)), 2);
        z[i] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + (size_t)(12 + i) * row_bytes)), 3);
    }
    /* a 4x4 dword transpose inside each 128-bit lane */
    __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* fp16 in the low / high half of each lane -> f32 (exact, like lmz_fp16_to_f32). */
static inline __m512 fp16_low(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
static inline __m512 fp16_high(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

static inline int32_t load_i32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Sum over 16 elements (4 weight vectors): two independent chains of VPDPBUSD, so that
 * consecutive products do not wait for each other's latency (integer sums: exact in any
 * order). Written out so that the weights stay in registers. */
static inline __m512i dot16(const __m512i wq[4], const int8_t *q) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i s0 = _mm512_dpbusd_epi32(zero, wq[0], _mm512_set1_epi32(load_i32(q)));
    __m512i s1 = _mm512_dpbusd_epi32(zero, wq[1], _mm512_set1_epi32(load_i32(q + 4)));
    s0 = _mm512_dpbusd_epi32(s0, wq[2], _mm512_set1_epi32(load_i32(q + 8)));
    s1 = _mm512_dpbusd_epi32(s1, wq[3], _mm512_set1_epi32(load_i32(q + 12)));
    return _mm512_add_epi32(s0, s1);
}

/* Sum over 32 elements: the 8 weight vectors against one token's 32 activation bytes. */
static inline __m512i dot32(const __m512i wq[8], const int8_t *q) {
    return _mm512_add_epi32(dot16(wq, q), dot16(wq + 4, q + 16));
}

/* Reading 16 rows block by block is 16 interleaved streams, more than the hardware
 * prefetcher follows; so while one group is computed, the next group's bytes (contiguous)
 * are prefetched a few lines per block. Prefetches past the tensor's end are harmless. */

/* Cache lines of the next 16-row group to prefetch per step, so that the whole group is
 * requested over the NB steps of the current one (its blocks; in the small-batch kernels,
 * each row of each block). */
static inline size_t prefetch_lines_per_block(size_t row_bytes, int64_t nb) {
    const size_t group_lines = (16 * row_bytes + 63) / 64;
    return (group_lines + (size_t)nb - 1) / (size_t)nb;
}

/* While step B of the group at W is computed, its share of the next group's lines. The
 * tiled kernels prefetch during their first token tile only: later tiles re-read the same
 * group, and the next group's lines are already on their way (prefetching them again for
 * each of pp512's 8 tiles filled the line-fill buffers for nothing: 9 % of Q6_K's time).
 * Always inlined: GCC 12 left out the prefetches of the small-batch kernels' calls
 * (checked in the object code) when it was merely inline. */
static inline __attribute__((always_inline)) void prefetch_next_group(const uint8_t *w, size_t row_bytes, int64_t b,
                                                                      size_t lines) {
    const uint8_t *next = w + 16 * row_bytes;
    for (size_t i = 0; i < lines; i++) _mm_prefetch((const char *)(next + 64 * ((size_t)b * lines + i)), _MM_HINT_T0);
}

static inline void store_tile(const __m512 *acc, int nt, float *out, size_t os) {
    for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + (size_t)t * os, acc[t]);
}

/* ---- 32-element blocks: Q4_0, Q4_1, Q5_0, Q8_0 ---- */

enum block32 { BLOCK_Q4_0, BLOCK_Q4_1, BLOCK_Q5_0, BLOCK_Q8_0 };

static inline size_t block32_bytes(enum block32 kind) {
    return kind == BLOCK_Q4_0 ? 18 : kind == BLOCK_Q4_1 ? 20 : kind == BLOCK_Q5_0 ? 22 : 34;
}

/* What was added to make the weights unsigned. */
static inline int32_t block32_offset(enum block32 kind) {
    return kind == BLOCK_Q4_0 ? 8 : kind == BLOCK_Q5_0 ? 16 : kind == BLOCK_Q8_0 ? 128 : 0;
}

/* 16 transposed bytes of nibble pairs per row (V, as load_rows leaves them) -> elements
 * 0..15 (low nibbles) in wq[0..3] and 16..31 (high nibbles) in wq[4..7]. */
static inline void split_nibbles(const __m512i v[4], __m512i wq[8]) {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int j = 0; j < 4; j++) {
        wq[j] = _mm512_and_si512(v[j], low4);
        wq[j + 4] = _mm512_and_si512(_mm512_srli_epi32(v[j], 4), low4);
    }
}

/* The 16 bytes of nibble pairs at QS in each row, loaded and split. */
static inline void unpack_nibble_rows(const uint8_t *qs, size_t row_bytes, __m512i wq[8]) {
    __m512i v[4];
    load_rows(qs, row_bytes, v);
    split_nibbles(v, wq);
}

/* Q5_0's fifth bits: bits 4g..4g+3 of QH -> bit 4 of bytes 0..3. */
static inline __m512i fifth_bits4(__m512i qh, int g) {
    __m512i t = _mm512_srli_epi32(qh, (unsigned)(4 * g));
    __m512i b0 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(1)), 4);
    __m512i b1 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(2)), 11);
    __m512i b2 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(4)), 18);
    __m512i b3 = _mm512_slli_epi32(_mm512_and_si512(t, _mm512_set1_epi32(8)), 25);
    return _mm512_or_si512(_mm512_or_si512(b0, b1), _mm512_or_si512(b2, b3));
}

/* The block's header dword (fp16 d, and fp16 m for Q4_1) and its 32 unsigned weights. */
static inline __m512i block32_weights(enum block32 kind, const uint8_t *blk, size_t row_bytes, __m512i wq[8]) {
    __m512i head[4];
    load_rows(blk, row_bytes, head);
    switch (kind) {
    case BLOCK_Q4_0: unpack_nibble_rows(blk + 2, row_bytes, wq); break;
    case BLOCK_Q4_1: unpack_nibble_rows(blk + 4, row_bytes, wq); break;
    case BLOCK_Q5_0: {
        unpack_nibble_rows(blk + 6, row_bytes, wq);
        __m512i qh = _mm512_or_si512(_mm512_srli_epi32(head[0], 16), _mm512_slli_epi32(head[1], 16)); /* bytes 2..5 */
        for (int g = 0; g < 8; g++) wq[g] = _mm512_or_si512(wq[g], fifth_bits4(qh, g));
        break;
    }
    default: {
        __m512i v[8];
        load_rows(blk + 2, row_bytes, v);
        load_rows(blk + 18, row_bytes, v + 4);
        for (int g = 0; g < 8; g++) wq[g] = _mm512_xor_si512(v[g], _mm512_set1_epi8((char)0x80));
        break;
    }
    }
    return head[0];
}

/* One block's contribution for each token of the tile: ACC[t] += the block's float part
 * (quant.h's expression, lane-wise) of its exact integer sum against token T0 + t. */
static inline __attribute__((always_inline)) void block32_tokens(enum block32 kind, const __m512i wq[8], __m512i head,
                                                                 const uint8_t *acts, size_t stride, int64_t b, int t0,
                                                                 int nt, __m512 *acc) {
    const int32_t offset = block32_offset(kind);
    const __m512 dw = fp16_low(head);
    const __m512 mw = kind == BLOCK_Q4_1 ? fp16_high(head) : _mm512_setzero_ps();
    for (int t = 0; t < nt; t++) {
        const lmz_act32 *a = (const lmz_act32 *)(acts + (size_t)(t0 + t) * stride) + b;
        __m512i s = dot32(wq, a->q);
        if (offset) s = _mm512_sub_epi32(s, _mm512_set1_epi32(offset * a->qsum));
        __m512 c = _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a->d)), _mm512_cvtepi32_ps(s));
        if (kind == BLOCK_Q4_1) c = _mm512_add_ps(c, _mm512_mul_ps(mw, _mm512_set1_ps(a->s)));
        acc[t] = _mm512_add_ps(acc[t], c);
    }
}

/* Q4_1 blocks are 20 bytes, 5 dwords, so 4 consecutive blocks of a row are 80 bytes that
 * 5 transposed 16-byte loads cover exactly: block q's header is dword 5q and its nibbles
 * dwords 5q + 1..5q + 4. That is 5 transposes for 4 blocks instead of 8 (a header and a
 * nibble load per block), and the transposes' shuffles are what a block costs at small
 * token counts (measured: 4 tokens 5.9 -> 5.3 ns per block of 16 rows). Returns the
 * number of blocks done (a multiple of 4); the caller does the rest one by one. */
static inline __attribute__((always_inline)) int64_t q4_1_blocks_by_4(const uint8_t *w, size_t row_bytes, int64_t nb,
                                                                      size_t lines_per_block, const uint8_t *acts,
                                                                      size_t stride, int t0, int nt, __m512 *acc) {
    const size_t bb = block32_bytes(BLOCK_Q4_1);
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        __m512i d[20];
        for (int j = 0; j < 5; j++) load_rows(w + b * bb + 16 * j, row_bytes, d + 4 * j);
        for (int q = 0; q < 4; q++) {
            prefetch_next_group(w, row_bytes, b + q, lines_per_block);
            __m512i wq[8];
            split_nibbles(d + 5 * q + 1, wq);
            block32_tokens(BLOCK_Q4_1, wq, d[5 * q], acts, stride, b + q, t0, nt, acc);
        }
    }
    return b;
}

static inline void dot16_block32(enum block32 kind, int64_t k, const uint8_t *w, size_t row_bytes, const uint8_t *acts,
                                 size_t stride, int n, float *out, size_t os) {
    const size_t bb = block32_bytes(kind);
    const int64_t nb = k / 32;
    const size_t lines_per_block = prefetch_lines_per_block(row_bytes, nb);
    __m512 acc[TOKEN_TILE];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE) {
        const int nt = n - t0 < TOKEN_TILE ? n - t0 : TOKEN_TILE;
        const size_t prefetch_lines = t0 == 0 ? lines_per_block : 0;
        for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
        int64_t b = 0;
        if (kind == BLOCK_Q4_1) b = q4_1_blocks_by_4(w, row_bytes, nb, prefetch_lines, acts, stride, t0, nt, acc);
        for (; b < nb; b++) {
            prefetch_next_group(w, row_bytes, b, prefetch_lines);
            __m512i wq[8], head = block32_weights(kind, w + b * bb, row_bytes, wq);
            block32_tokens(kind, wq, head, acts, stride, b, t0, nt, acc);
        }
        store_tile(acc, nt, out + (size_t)t0 * os, os);
    }
}

void lmz_dot16_q4_0_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                           float *out, size_t os) {
    dot16_block32(BLOCK_Q4_0, k, w, row_bytes, acts, stride, n, out, os);
}
void lmz_dot16_q4_1_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                           float *out, size_t os) {
    dot16_block32(BLOCK_Q4_1, k, w, row_bytes, acts, stride, n, out, os);
}
void lmz_dot16_q5_0_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                           float *out, size_t os) {
    dot16_block32(BLOCK_Q5_0, k, w, row_bytes, acts, stride, n, out, os);
}
void lmz_dot16_q8_0_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                           float *out, size_t os) {
    dot16_block32(BLOCK_Q8_0, k, w, row_bytes, acts, stride, n, out, os);
}

/* ---- 256-element K-quant blocks ---- */

/* lmz_kquant_scale_min lane-wise, from the transposed first 16 bytes of a Q4_K block
 * (HDR[1..3] = scale bytes 0..11): SC[j] = scale of sub-block j, MPAIR[j] = its min in
 * both 16-bit halves (for VPDPWSSD against a pair of activation block sums). */
static inline void kquant_scales16(const __m512i hdr[4], __m512i sc[8], __m512i mpair[8]) {
    const __m512i six = _mm512_set1_epi32(63), four = _mm512_set1_epi32(15), two = _mm512_set1_epi32(3);
    const __m512i s0 = hdr[1], s1 = hdr[2], s2 = hdr[3];
    for (int j = 0; j < 4; j++) {
        __m512i m_lo = _mm512_and_si512(_mm512_srli_epi32(s1, (unsigned)(8 * j)), six);
        sc[j] = _mm512_and_si512(_mm512_srli_epi32(s0, (unsigned)(8 * j)), six);
        sc[j + 4] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi32(s2, (unsigned)(8 * j)), four),
            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, (unsigned)(8 * j + 6)), two), 4));
        __m512i m_hi = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi32(s2, (unsigned)(8 * j + 4)), four),
            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, (unsigned)(8 * j + 6)), two), 4));
        mpair[j] = _mm512_or_si512(m_lo, _mm512_slli_epi32(m_lo, 16));
        mpair[j + 4] = _mm512_or_si512(m_hi, _mm512_slli_epi32(m_hi, 16));
    }
}

/* Q4_K: d, dmin (fp16), 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; sub-block
 * j (32 elements) is the low (j even) or high (j odd) nibbles of bytes 32*(j/2)... */
void lmz_dot16_q4_k_avx512(int64_t k, const void *wp, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                           float *out, size_t os) {
    const uint8_t *w = wp;
    const int64_t nb = k / 256;
    const size_t lines_per_block = prefetch_lines_per_block(row_bytes, nb);
    __m512 acc[TOKEN_TILE];
    __m512i isum[TOKEN_TILE];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE) {
        const int nt = n - t0 < TOKEN_TILE ? n - t0 : TOKEN_TILE;
        const size_t prefetch_lines = t0 == 0 ? lines_per_block : 0;
        for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            prefetch_next_group(w, row_bytes, b, prefetch_lines);
            const uint8_t *blk = w + b * 144;
            __m512i hdr[4];
            load_rows(blk, row_bytes, hdr);
            const __m512 d = fp16_low(hdr[0]), dmin = fp16_high(hdr[0]);
            __m512i sc[8], mpair[8];
            kquant_scales16(hdr, sc, mpair);
            for (int t = 0; t < nt; t++) isum[t] = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++) {
                __m512i wq[16];
                unpack_nibble_rows(blk + 16 + 32 * c, row_bytes, wq);           /* bytes 0..15 */
                unpack_nibble_rows(blk + 16 + 32 * c + 16, row_bytes, wq + 8);  /* bytes 16..31 */
                /* sub-block 2c: low nibbles of bytes 0..31 (wq[0..3], wq[8..11]); 2c+1: high
                 * nibbles (wq[4..7], wq[12..15]) */
                for (int t = 0; t < nt; t++) {
                    const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                    const int8_t *q = a->q + 64 * c;
                    __m512i s_lo = _mm512_add_epi32(dot16(wq, q), dot16(wq + 8, q + 16));
                    __m512i s_hi = _mm512_add_epi32(dot16(wq + 4, q + 32), dot16(wq + 12, q + 48));
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(s_lo, sc[2 * c]),
                                                                         _mm512_mullo_epi32(s_hi, sc[2 * c + 1])));
                }
            }
            for (int t = 0; t < nt; t++) {
                const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                /* summ = sum_j m_j * (bsums[2j] + bsums[2j+1]) */
                __m512i summ = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    summ = _mm512_dpwssd_epi32(summ, mpair[j], _mm512_set1_epi32(load_i32(&a->bsums[2 * j])));
                __m512 dx = _mm512_set1_ps(a->d);
                __m512 c = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[t])),
                                         _mm512_mul_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(summ)));
                acc[t] = _mm512_add_ps(acc[t], c);
            }
        }
        store_tile(acc, nt, out + (size_t)t0 * os, os);
    }
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d (fp16); element 128h + 32g + l is
 * (ql[64h + 32(g&1) + l] nibble g>>1) | (bits 2g..2g+1 of qh[32h + l]) << 4, minus 32;
 * one scale per 16 elements. */
void lmz_dot16_q6_k_avx512(int64_t k, const void *wp, size_t row_bytes, const uint8_t *acts, size_t stride, int n,
                           float *out, size_t os) {
    const uint8_t *w = wp;
    const int64_t nb = k / 256;
    const size_t lines_per_block = prefetch_lines_per_block(row_bytes, nb);
    const __m512i low4 = _mm512_set1_epi8(0x0f), two = _mm512_set1_epi8(3);
    __m512 acc[TOKEN_TILE];
    __m512i isum[TOKEN_TILE];
    for (int t0 = 0; t0 < n; t0 += TOKEN_TILE) {
        const int nt = n - t0 < TOKEN_TILE ? n - t0 : TOKEN_TILE;
        const size_t prefetch_lines = t0 == 0 ? lines_per_block : 0;
        for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
            prefetch_next_group(w, row_bytes, b, prefetch_lines);
            const uint8_t *blk = w + b * 210;
            __m512i v[4], sc[16], scpair[8];
            load_rows(blk + 194, row_bytes, v);
            const __m512 d = fp16_high(v[3]); /* d is the last 2 bytes of the block */
            load_rows(blk + 192, row_bytes, v);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) /* sign-extend byte j */
                    sc[4 * i + j] = _mm512_srai_epi32(_mm512_slli_epi32(v[i], (unsigned)(24 - 8 * j)), 24);
            for (int j = 0; j < 8; j++)
                scpair[j] = _mm512_or_si512(_mm512_and_si512(sc[2 * j], _mm512_set1_epi32(0xffff)),
                                            _mm512_slli_epi32(sc[2 * j + 1], 16));
            for (int t = 0; t < nt; t++) isum[t] = _mm512_setzero_si512();
            for (int h = 0; h < 2; h++) {
                for (int gp = 0; gp < 2; gp++) { /* groups gp and gp + 2 share their ql bytes */
                    __m512i wa[8], wb[8], ql8[8], qh8[8];
                    load_rows(blk + 64 * h + 32 * gp, row_bytes, ql8);
                    load_rows(blk + 64 * h + 32 * gp + 16, row_bytes, ql8 + 4);
                    load_rows(blk + 128 + 32 * h, row_bytes, qh8);
                    load_rows(blk + 128 + 32 * h + 16, row_bytes, qh8 + 4);
                    for (int i = 0; i < 8; i++) {
                        __m512i ql = ql8[i], qh = qh8[i];
                        __m512i ha = _mm512_and_si512(_mm512_srli_epi32(qh, (unsigned)(2 * gp)), two);
                        __m512i hb = _mm512_and_si512(_mm512_srli_epi32(qh, (unsigned)(2 * gp + 4)), two);
                        wa[i] = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_slli_epi32(ha, 4));
                        wb[i] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(ql, 4), low4),
                                                _mm512_slli_epi32(hb, 4));
                    }
                    const int ga = gp, gb = gp + 2;
                    const int ia = 8 * h + 2 * ga, ib = 8 * h + 2 * gb; /* scale index of each first 16 */
                    for (int t = 0; t < nt; t++) {
                        const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                        const int8_t *qa = a->q + 128 * h + 32 * ga, *qb = a->q + 128 * h + 32 * gb;
                        __m512i s = _mm512_mullo_epi32(dot16(wa, qa), sc[ia]);
                        s = _mm512_add_epi32(s, _mm512_mullo_epi32(dot16(wa + 4, qa + 16), sc[ia + 1]));
                        s = _mm512_add_epi32(s, _mm512_mullo_epi32(dot16(wb, qb), sc[ib]));
                        s = _mm512_add_epi32(s, _mm512_mullo_epi32(dot16(wb + 4, qb + 16), sc[ib + 1]));
                        isum[t] = _mm512_add_epi32(isum[t], s);
                    }
                }
            }
            for (int t = 0; t < nt; t++) {
                const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)(t0 + t) * stride) + b;
                /* the stored weights are w + 32: take back 32 * sum_i sc_i * bsums[i] */
                __m512i corr = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++)
                    corr = _mm512_dpwssd_epi32(corr, scpair[j], _mm512_set1_epi32(load_i32(&a->bsums[2 * j])));
                __m512i sumi = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(corr, 5));
                __m512 c = _mm512_mul_ps(_mm512_mul_ps(d, _mm512_set1_ps(a->d)), _mm512_cvtepi32_ps(sumi));
                acc[t] = _mm512_add_ps(acc[t], c);
            }
        }
        store_tile(acc, nt, out + (size_t)t0 * os, os);
    }
}

/* ---- small batches (1..LMZ_SMALL_BATCH tokens): rows read in their own byte order ----
 * For a few tokens, transposing 16 rows per block costs more than the arithmetic. These
 * kernels read each row's block contiguously (one 64-byte vector holds 128 nibbles) and
 * multiply it against the token's activations rearranged once per block to match the
 * row's byte order; each row gives 16 dword partial sums of the block's exact integer
 * sum, and hsum16 adds the 16 rows' partials into one vector with lane r = row r. From
 * there the float part is the lane-wise expression of the 16-row kernels above (same
 * operations, same order). The next group is prefetched as above, a few lines per row. */

/* Lane r of HALF[0] = the sum of dwords 0..7 of V[r], of HALF[1] the sum of dwords 8..15
 * (integers: exact in any order). A transpose-and-add tree: dword pairs, then quadwords,
 * then 128-bit lanes. */
static inline void hsum16_halves(const __m512i v[16], __m512i half[2]) {
    __m512i a[8], b[4];
    for (int i = 0; i < 8; i++) /* dwords 0, 2 of each 128-bit lane: row 2i; 1, 3: row 2i + 1 */
        a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) /* dword j of each 128-bit lane: row 4i + j */
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
    /* 128-bit lanes: rows 0-3 of half 0, of half 1, rows 4-7 of half 0, of half 1 */
    __m512i c0 = _mm512_add_epi32(_mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_i32x4(b[0], b[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512i c1 = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2], b[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_i32x4(b[2], b[3], _MM_SHUFFLE(3, 1, 3, 1)));
    half[0] = _mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(2, 0, 2, 0));
    half[1] = _mm512_shuffle_i32x4(c0, c1, _MM_SHUFFLE(3, 1, 3, 1));
}

/* Lane r = the sum of the 16 dwords of V[r]. */
static inline __m512i hsum16(const __m512i v[16]) {
    __m512i half[2];
    hsum16_halves(v, half);
    return _mm512_add_epi32(half[0], half[1]);
}

/* Byte offsets of rows 0..15, for gathering one dword per row. */
static inline __m512i gather_row_offsets(size_t row_bytes) {
    return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32((int)row_bytes));
}

/* Two 32-byte pieces as one vector. */
static inline __m512i load_2x256(const void *lo, const void *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

/* Q4_K, NT tokens. A row's 128 nibble bytes are two vectors; the low nibbles of bytes
 * 0..63 are sub-blocks 0 and 2, the high ones 1 and 3 (4..7 likewise in bytes 64..127),
 * so the activations are arranged as q[0..31]|q[64..95], q[32..63]|q[96..127], ...
 * VPMADDUBSW gives 16-bit pair sums (at most 2 * 15 * 128, exact) and VPDPWSSD multiplies
 * them by the sub-block scale, which each row's scales are shuffled into from the
 * lane-wise decoded ones (kquant_scales16). */
static inline __attribute__((always_inline)) void dot16_q4_k_small(int64_t k, const uint8_t *w, size_t row_bytes,
                                                                   const uint8_t *acts, size_t stride, const int nt,
                                                                   float *out, size_t os) {
    const int64_t nb = k / 256;
    const size_t lines_per_row = prefetch_lines_per_block(row_bytes, 16 * nb);
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    /* VPSHUFB controls: words 0..15 <- scale word A, 16..31 <- word B of a row's 8 scale
     * words, for the (A, B) sub-block pairs of the four weight vectors */
    static const int pairs[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    __m512i sel[4];
    for (int x = 0; x < 4; x++) {
        const int a = 2 * pairs[x][0], b = 2 * pairs[x][1];
        sel[x] = _mm512_inserti64x4(_mm512_set1_epi16((short)(a | (a + 1) << 8)),
                                    _mm256_set1_epi16((short)(b | (b + 1) << 8)), 1);
    }
    __m512 acc[LMZ_SMALL_BATCH];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * 144;
        __m512i hdr[4], sc[8], mpair[8];
        load_rows(blk, row_bytes, hdr);
        const __m512 d = fp16_low(hdr[0]), dmin = fp16_high(hdr[0]);
        kquant_scales16(hdr, sc, mpair);
        /* each row's scales as 8 words: lane L of z[i] holds those of row 4L + i; kept in
         * memory, from where each row's 16 bytes are broadcast by a load */
        __m512i z[4];
        {
            const __m512i p01 = _mm512_or_si512(sc[0], _mm512_slli_epi32(sc[1], 16));
            const __m512i p23 = _mm512_or_si512(sc[2], _mm512_slli_epi32(sc[3], 16));
            const __m512i p45 = _mm512_or_si512(sc[4], _mm512_slli_epi32(sc[5], 16));
            const __m512i p67 = _mm512_or_si512(sc[6], _mm512_slli_epi32(sc[7], 16));
            const __m512i t0 = _mm512_unpacklo_epi32(p01, p23), t1 = _mm512_unpackhi_epi32(p01, p23);
            const __m512i t2 = _mm512_unpacklo_epi32(p45, p67), t3 = _mm512_unpackhi_epi32(p45, p67);
            z[0] = _mm512_unpacklo_epi64(t0, t2);
            z[1] = _mm512_unpackhi_epi64(t0, t2);
            z[2] = _mm512_unpacklo_epi64(t1, t3);
            z[3] = _mm512_unpackhi_epi64(t1, t3);
        }
        __m512i xa[LMZ_SMALL_BATCH][4];
        for (int t = 0; t < nt; t++) {
            const int8_t *q = ((const lmz_act256 *)(acts + (size_t)t * stride) + b)->q;
#pragma GCC unroll 4
            for (int x = 0; x < 4; x++) {
                const int8_t *lo = q + 128 * (x / 2) + 32 * (x % 2);
                xa[t][x] = load_2x256(lo, lo + 64);
            }
        }
        __m512i part[LMZ_SMALL_BATCH][16];
        for (int r = 0; r < 16; r++) {
            prefetch_next_group(w, row_bytes, 16 * b + r, lines_per_row);
            const uint8_t *qs = blk + (size_t)r * row_bytes + 16;
            const __m512i v0 = _mm512_loadu_si512(qs), v1 = _mm512_loadu_si512(qs + 64);
            const __m512i wq[4] = {_mm512_and_si512(v0, low4), _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4),
                                   _mm512_and_si512(v1, low4), _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4)};
            const uint8_t *zrow = (const uint8_t *)z + 64 * (r & 3) + 16 * (r >> 2);
            const __m512i zr = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)zrow));
            __m512i s[4];
#pragma GCC unroll 4
            for (int x = 0; x < 4; x++) s[x] = _mm512_shuffle_epi8(zr, sel[x]);
            for (int t = 0; t < nt; t++) {
                /* two independent chains */
                __m512i p0 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(wq[0], xa[t][0]), s[0]);
                __m512i p1 = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(wq[1], xa[t][1]), s[1]);
                p0 = _mm512_dpwssd_epi32(p0, _mm512_maddubs_epi16(wq[2], xa[t][2]), s[2]);
                p1 = _mm512_dpwssd_epi32(p1, _mm512_maddubs_epi16(wq[3], xa[t][3]), s[3]);
                part[t][r] = _mm512_add_epi32(p0, p1);
            }
        }
        for (int t = 0; t < nt; t++) {
            const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)t * stride) + b;
            __m512i summ = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++)
                summ = _mm512_dpwssd_epi32(summ, mpair[j], _mm512_set1_epi32(load_i32(&a->bsums[2 * j])));
            __m512 dx = _mm512_set1_ps(a->d);
            __m512 c = _mm512_sub_ps(_mm512_mul_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(hsum16(part[t]))),
                                     _mm512_mul_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(summ)));
            acc[t] = _mm512_add_ps(acc[t], c);
        }
    }
    store_tile(acc, nt, out, os);
}

void lmz_dot16_q4_k_small_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride,
                                 int n, float *out, size_t os) {
    /* a constant token count per call, so that the per-token arrays stay in registers */
    switch (n) {
    case 1: dot16_q4_k_small(k, w, row_bytes, acts, stride, 1, out, os); break;
    case 2: dot16_q4_k_small(k, w, row_bytes, acts, stride, 2, out, os); break;
    case 3: dot16_q4_k_small(k, w, row_bytes, acts, stride, 3, out, os); break;
    case 4: dot16_q4_k_small(k, w, row_bytes, acts, stride, 4, out, os); break;
    case 5: dot16_q4_k_small(k, w, row_bytes, acts, stride, 5, out, os); break;
    case 6: dot16_q4_k_small(k, w, row_bytes, acts, stride, 6, out, os); break;
    case 7: dot16_q4_k_small(k, w, row_bytes, acts, stride, 7, out, os); break;
    default: dot16_q4_k_small(k, w, row_bytes, acts, stride, 8, out, os); break;
    }
}

/* Q6_K, NT tokens. Bytes 0..63 of ql hold elements 0..127 (low nibbles: groups 0 and 1,
 * high nibbles: 2 and 3), bytes 64..127 elements 128..255, so with qh[32h..32h+31] in both
 * 256-bit halves each weight vector takes its two high bits from one shift per half, and
 * the activations are used in their own order. Each 128-bit lane of a weight vector is
 * one 16-element scale group: VPMADDUBSW pair sums (at most 2 * 63 * 128) times the
 * lane's scale with VPDPWSSD. The stored weights are w + 32: the row's correction
 * 32 * sum_i sc_i * bsums[i] is taken back from its partial sums before the reduction. */
static inline __attribute__((always_inline)) void dot16_q6_k_small(int64_t k, const uint8_t *w, size_t row_bytes,
                                                                   const uint8_t *acts, size_t stride, const int nt,
                                                                   float *out, size_t os) {
    const int64_t nb = k / 256;
    const size_t lines_per_row = prefetch_lines_per_block(row_bytes, 16 * nb);
    const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    /* high bits of groups 0 | 1 (shift left 4 | 2) and 2 | 3 (right 0 | 2), per half */
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    /* VPERMW indices: lane i of the scale vector of weight vector v is scale 4v + i */
    __m512i sel[4];
    for (int v = 0; v < 4; v++)
        sel[v] = _mm512_add_epi16(_mm512_set1_epi16((short)(4 * v)),
                                  _mm512_set_epi64(0x0003000300030003, 0x0003000300030003, 0x0002000200020002,
                                                   0x0002000200020002, 0x0001000100010001, 0x0001000100010001, 0, 0));
    const __m512i row_offsets = gather_row_offsets(row_bytes);
    __m512 acc[LMZ_SMALL_BATCH];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * 210;
        /* d is the last 2 bytes of the block: the high half of the dword at 206 */
        const __m512 d = fp16_high(_mm512_i32gather_epi32(row_offsets, blk + 206, 1));
        __m512i part[LMZ_SMALL_BATCH][16];
        for (int r = 0; r < 16; r++) {
            prefetch_next_group(w, row_bytes, 16 * b + r, lines_per_row);
            const uint8_t *row = blk + (size_t)r * row_bytes;
            const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(row + 192)));
            __m512i wq[4], s[4];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const __m512i ql = _mm512_loadu_si512(row + 64 * h);
                const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(row + 128 + 32 * h)));
                /* 0xf8: a | (b & c) */
                wq[2 * h] = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, low4), _mm512_sllv_epi16(qh, shl), bits45,
                                                      0xf8);
                wq[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                                          _mm512_srlv_epi16(qh, shr), bits45, 0xf8);
            }
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) s[v] = _mm512_permutexvar_epi16(sel[v], _mm512_castsi256_si512(sc16));
            for (int t = 0; t < nt; t++) {
                const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)t * stride) + b;
                __m512i p[2]; /* two independent chains */
#pragma GCC unroll 2
                for (int v = 0; v < 2; v++) {
                    const __m512i x0 = _mm512_loadu_si512(a->q + 64 * v), x1 = _mm512_loadu_si512(a->q + 128 + 64 * v);
                    p[v] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(wq[v], x0), s[v]);
                    p[v] = _mm512_dpwssd_epi32(p[v], _mm512_maddubs_epi16(wq[v + 2], x1), s[v + 2]);
                }
                const __m256i corr =
                    _mm256_dpwssd_epi32(_mm256_setzero_si256(), sc16, _mm256_loadu_si256((const __m256i *)a->bsums));
                part[t][r] = _mm512_sub_epi32(_mm512_add_epi32(p[0], p[1]),
                                              _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
            }
        }
        for (int t = 0; t < nt; t++) {
            const lmz_act256 *a = (const lmz_act256 *)(acts + (size_t)t * stride) + b;
            __m512 c = _mm512_mul_ps(_mm512_mul_ps(d, _mm512_set1_ps(a->d)), _mm512_cvtepi32_ps(hsum16(part[t])));
            acc[t] = _mm512_add_ps(acc[t], c);
        }
    }
    store_tile(acc, nt, out, os);
}

void lmz_dot16_q6_k_small_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride,
                                 int n, float *out, size_t os) {
    switch (n) {
    case 1: dot16_q6_k_small(k, w, row_bytes, acts, stride, 1, out, os); break;
    case 2: dot16_q6_k_small(k, w, row_bytes, acts, stride, 2, out, os); break;
    case 3: dot16_q6_k_small(k, w, row_bytes, acts, stride, 3, out, os); break;
    case 4: dot16_q6_k_small(k, w, row_bytes, acts, stride, 4, out, os); break;
    case 5: dot16_q6_k_small(k, w, row_bytes, acts, stride, 5, out, os); break;
    case 6: dot16_q6_k_small(k, w, row_bytes, acts, stride, 6, out, os); break;
    case 7: dot16_q6_k_small(k, w, row_bytes, acts, stride, 7, out, os); break;
    default: dot16_q6_k_small(k, w, row_bytes, acts, stride, 8, out, os); break;
    }
}

/* Blocks B and B + 1 (when TWO) of one row of a 32-element type, as unsigned weights in
 * the two 256-bit halves, elements in order. Q5_0: the 16 nibble bytes of a block in two
 * 128-bit lanes (low nibbles, then high: elements 0..15, 16..31), and bit i of the fifth
 * bits (both blocks' as one 64-bit mask) added to byte i. */
static inline __m512i block32_pair_weights(enum block32 kind, const uint8_t *blk, int two) {
    if (kind == BLOCK_Q8_0) {
        const uint8_t *q = blk + 2;
        const __m512i v = two ? load_2x256(q, q + 34) : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)q));
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    }
    const __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 6)));
    const __m256i hi =
        two ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 28))) : _mm256_setzero_si256();
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    const __m512i nib = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4), _mm512_set1_epi8(0x0f));
    const uint64_t qh = (uint32_t)load_i32(blk + 2) | (two ? (uint64_t)(uint32_t)load_i32(blk + 24) << 32 : 0);
    return _mm512_or_si512(nib, _mm512_maskz_mov_epi8(qh, _mm512_set1_epi8(0x10)));
}

/* Block pairs per pass of the one-token Q5_0/Q8_0 kernel (partial sums kept: 32 KiB),
 * and how far ahead of its reads it prefetches. */
#define PAIR_CHUNK 32
#define PREFETCH_AHEAD 8192

/* Q5_0 and Q8_0, one token: two blocks per vector, one per 256-bit half (the last one
 * alone when the count is odd). The weights are offset to unsigned for VPDPBUSD and the
 * offset taken back with the activation sum after the reduction. Each pass reads up to
 * PAIR_CHUNK pairs of each row, row after row: a row's blocks are contiguous, so for rows
 * of up to 2 * PAIR_CHUNK blocks (all of Gemma 3's) the weights are read as one sequential
 * stream, prefetched a fixed distance ahead (one prefetch per pair costs less than the
 * next-group scheme's loop, at a few instructions per pair). Then the blocks' sums are
 * reduced and accumulated in block order; the 16 rows' scales are gathered (two bytes per
 * row, where a transpose would move sixteen). With more tokens the 16-row kernels above
 * are as fast or faster (measured). */
static inline __attribute__((always_inline)) void dot1_block32_small(enum block32 kind, int64_t k, const uint8_t *w,
                                                                     size_t row_bytes, const uint8_t *acts,
                                                                     float *out) {
    const size_t bb = block32_bytes(kind);
    const int32_t offset = block32_offset(kind);
    const int64_t nb = k / 32;
    const lmz_act32 *a = (const lmz_act32 *)acts;
    const __m512i row_offsets = gather_row_offsets(row_bytes);
    __m512 acc = _mm512_setzero_ps();
    __m512i part[PAIR_CHUNK][16], xq[PAIR_CHUNK];
    for (int64_t b0 = 0; b0 < nb; b0 += 2 * PAIR_CHUNK) {
        const int nbc = (int)(nb - b0 < 2 * PAIR_CHUNK ? nb - b0 : 2 * PAIR_CHUNK), pairs = nbc / 2;
        const int np = (nbc + 1) / 2; /* with a lone last block */
        /* the token's activations as pair vectors, once for the 16 rows */
        for (int p = 0; p < pairs; p++) xq[p] = load_2x256(a[b0 + 2 * p].q, a[b0 + 2 * p + 1].q);
        if (nbc & 1) xq[pairs] = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)a[b0 + nbc - 1].q));
        for (int r = 0; r < 16; r++) {
            const uint8_t *row = w + (size_t)r * row_bytes + b0 * bb;
            for (int p = 0; p < pairs; p++) {
                _mm_prefetch((const char *)(row + 2 * p * bb + PREFETCH_AHEAD), _MM_HINT_T0);
                part[p][r] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), block32_pair_weights(kind, row + 2 * p * bb, 1),
                                                 xq[p]);
            }
            if (nbc & 1)
                part[pairs][r] =
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), block32_pair_weights(kind, row + 2 * pairs * bb, 0),
                                        xq[pairs]);
        }
        for (int p = 0; p < np; p++) {
            __m512i sums[2];
            hsum16_halves(part[p], sums);
            for (int64_t b = b0 + 2 * p; b < b0 + 2 * p + 2 && b < nb; b++) {
                const __m512 dw = fp16_low(_mm512_i32gather_epi32(row_offsets, w + b * bb, 1));
                const __m512i s = _mm512_sub_epi32(sums[b & 1], _mm512_set1_epi32(offset * a[b].qsum));
                const __m512 c = _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(a[b].d)), _mm512_cvtepi32_ps(s));
                acc = _mm512_add_ps(acc, c);
            }
        }
    }
    _mm512_storeu_ps(out, acc);
}

void lmz_dot16_q5_0_one_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride,
                               int n, float *out, size_t os) {
    (void)stride, (void)n, (void)os;
    dot1_block32_small(BLOCK_Q5_0, k, w, row_bytes, acts, out);
}

void lmz_dot16_q8_0_one_avx512(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t stride,
                               int n, float *out, size_t os) {
    (void)stride, (void)n, (void)os;
    dot1_block32_small(BLOCK_Q8_0, k, w, row_bytes, acts, out);
}

/* ---- activation quantization: quant.c's quantize_act32/act256, 16 lanes at a time ----
 * The same operations per element (|x|, max, x * id, the shifter rounding); max is exact in
 * any order, and MAX(v, acc) keeps acc when v is NaN, as the scalar `v > amax` does. */

static inline __m512 abs16(__m512 v) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff))); }

static inline __m512i round_even16(__m512 v) {
    const __m512 shifter = _mm512_set1_ps(12582912.0f);
    return _mm512_cvttps_epi32(_mm512_sub_ps(_mm512_add_ps(v, shifter), shifter));
}

void lmz_quantize_act32_avx512(const float *x, int64_t n_blocks, lmz_act32 *out) {
    for (int64_t b = 0; b < n_blocks; b++, x += 32, out++) {
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        __m512 m = _mm512_max_ps(abs16(x1), _mm512_max_ps(abs16(x0), _mm512_setzero_ps()));
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m512 idv = _mm512_set1_ps(id);
        __m512i q0 = round_even16(_mm512_mul_ps(x0, idv)), q1 = round_even16(_mm512_mul_ps(x1, idv));
        _mm_storeu_si128((__m128i *)out->q, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(out->q + 16), _mm512_cvtepi32_epi8(q1));
        int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        out->qsum = sum;
        out->d = lmz_fp16_to_f32(lmz_f32_to_fp16(d));
        out->s = lmz_fp16_to_f32(lmz_f32_to_fp16(d * (float)sum));
    }
}

void lmz_quantize_act256_avx512(const float *x, int64_t n_blocks, lmz_act256 *out) {
    for (int64_t b = 0; b < n_blocks; b++, x += 256, out++) {
        __m512 m = _mm512_setzero_ps();
        for (int i = 0; i < 256; i += 16) m = _mm512_max_ps(abs16(_mm512_loadu_ps(x + i)), m);
        float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            memset(out, 0, sizeof *out);
            continue;
        }
        /* the signed value of the first element of largest magnitude, as the scalar scan keeps */
        float max = 0.0f;
        for (int i = 0; i < 256; i += 16) {
            __mmask16 hit = _mm512_cmp_ps_mask(abs16(_mm512_loadu_ps(x + i)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (hit) {
                max = x[i + __builtin_ctz(hit)];
                break;
            }
        }
        float iscale = -127.0f / max;
        __m512 is = _mm512_set1_ps(iscale);
        for (int i = 0; i < 256; i += 16) {
            __m512i q = _mm512_min_epi32(round_even16(_mm512_mul_ps(is, _mm512_loadu_ps(x + i))), _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(out->q + i), _mm512_cvtepi32_epi8(q));
            out->bsums[i / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        out->d = 1.0f / iscale;
    }
}
#endif
