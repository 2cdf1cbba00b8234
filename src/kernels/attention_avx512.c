/* attention_avx512.c — lmz_attend_heads with AVX-512, bit-identical to attention.c.
 * The query heads that share one K/V head (grouped-query attention) are done together,
 * so each cached fp16 row is loaded and converted once per pass instead of once per head.
 * Scores: a zmm holds the 8 canonical lanes of two positions (lanes 0-7 and 8-15), each
 * lane accumulated as in lmz_vec_dot_f16; the lanes of 8 positions are then transposed and
 * combined in the canonical order. Values: 64 output floats per head in registers,
 * positions in increasing order. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "attention.h"
#include "attention_passes.h"

#define HEADS_PER_PASS 4
_Static_assert(HEADS_PER_PASS <= ATTN_MAX_HEADS_PER_PASS, "attn_in_passes holds a pass's heads");

/* Two positions' 8 fp16 values at column C: lanes 0-7 from row A, 8-15 from row B. */
static inline __m512 load_f16_pair(const uint16_t *a, const uint16_t *b) {
    __m256i h = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)b), _mm_loadu_si128((const __m128i *)a));
    return _mm512_cvtph_ps(h);
}

/* Scores of NH (<= HEADS_PER_PASS) heads for positions P0..P1 into W[h], maxima into MX[h].
 * Always inlined with NH a constant (see scores): with the head count known, the
 * accumulators live in registers; with it a variable, GCC kept them on the stack and the
 * loop spent its time storing and reloading them. */
static inline __attribute__((always_inline)) void scores_n(const int nh, const float *q, const uint16_t *k,
                                                           size_t stride, int p0, int p1, int d, float scale,
                                                           float *const w[], float mx[]) {
    const int nc = d / 8;
    const __m256 sc = _mm256_set1_ps(scale);
    __m256 mxv[HEADS_PER_PASS];
#pragma GCC unroll 4
    for (int h = 0; h < nh; h++) mxv[h] = _mm256_set1_ps(-INFINITY);
    int u = p0;
    for (; u + 8 <= p1 + 1; u += 8) {
        __m512 acc[HEADS_PER_PASS][4];
#pragma GCC unroll 4
        for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) acc[h][i] = _mm512_setzero_ps();
        const uint16_t *kr = k + (size_t)u * stride;
        for (int c = 0; c < nc; c++) {
            __m512 kv[4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) kv[i] = load_f16_pair(kr + (size_t)(2 * i) * stride + 8 * c, kr + (size_t)(2 * i + 1) * stride + 8 * c);
#pragma GCC unroll 4
            for (int h = 0; h < nh; h++) {
                const __m512 qv = _mm512_broadcast_f32x8(_mm256_loadu_ps(q + (size_t)h * d + 8 * c));
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) acc[h][i] = _mm512_add_ps(acc[h][i], _mm512_mul_ps(qv, kv[i]));
            }
        }
#pragma GCC unroll 4
        for (int h = 0; h < nh; h++) {
            __m256 r[8];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                r[2 * i] = _mm512_castps512_ps256(acc[h][i]);
                r[2 * i + 1] = _mm512_extractf32x8_ps(acc[h][i], 1);
            }
            attn_store_scores8(r, sc, w[h] + u, &mxv[h]);
        }
    }
    for (int h = 0; h < nh; h++)
        mx[h] = attn_finish_scores(mxv[h], q + (size_t)h * d, k, stride, u, p1, d, scale, w[h]);
}

static void scores(int nh, const float *q, const uint16_t *k, size_t stride, int p0, int p1, int d, float scale,
                   float *const w[], float mx[]) {
    switch (nh) {
    case 1: scores_n(1, q, k, stride, p0, p1, d, scale, w, mx); break;
    case 2: scores_n(2, q, k, stride, p0, p1, d, scale, w, mx); break;
    case 3: scores_n(3, q, k, stride, p0, p1, d, scale, w, mx); break;
    default: scores_n(HEADS_PER_PASS, q, k, stride, p0, p1, d, scale, w, mx); break;
    }
}

/* out[h] = sum over u of w[h][u] * V_u for the N4 * 16 columns at C0 (N4 <= 4). Always
 * inlined with NH and N4 constants, for the reason given at scores_n. */
static inline __attribute__((always_inline)) void values_cols(const int nh, const int n4, const uint16_t *v,
                                                              size_t stride, int p0, int p1, int c0,
                                                              float *const w[], float *out, int d) {
    __m512 o[HEADS_PER_PASS][4];
#pragma GCC unroll 4
    for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) o[h][i] = _mm512_setzero_ps();
    for (int u = p0; u <= p1; u++) {
        const uint16_t *vr = v + (size_t)u * stride + c0;
        __m512 vv[4];
#pragma GCC unroll 4
        for (int i = 0; i < n4; i++) vv[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vr + 16 * i)));
#pragma GCC unroll 4
        for (int h = 0; h < nh; h++) {
            const __m512 a = _mm512_set1_ps(w[h][u]);
#pragma GCC unroll 4
            for (int i = 0; i < n4; i++) o[h][i] = _mm512_add_ps(o[h][i], _mm512_mul_ps(a, vv[i]));
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
        for (int i = 0; i < n4; i++) _mm512_storeu_ps(out + (size_t)h * d + c0 + 16 * i, o[h][i]);
}

/* out[h] = sum over u of w[h][u] * V_u, 64 columns at a time (the last group may be
 * narrower: the general case, taken by no supported model's head size). */
static void values(int nh, const uint16_t *v, size_t stride, int p0, int p1, int d, float *const w[], float *out) {
    for (int c0 = 0; c0 < d; c0 += 64) {
        const int n4 = (d - c0) / 16 < 4 ? (d - c0) / 16 : 4;
        if (n4 == 4 && nh == 1) values_cols(1, 4, v, stride, p0, p1, c0, w, out, d);
        else if (n4 == 4 && nh == 2) values_cols(2, 4, v, stride, p0, p1, c0, w, out, d);
        else if (n4 == 4 && nh == 3) values_cols(3, 4, v, stride, p0, p1, c0, w, out, d);
        else if (n4 == 4) values_cols(HEADS_PER_PASS, 4, v, stride, p0, p1, c0, w, out, d);
        else
            for (int h = 0; h < nh; h++) values_cols(1, n4, v, stride, p0, p1, c0, w + h, out + (size_t)h * d, d);
    }
}

void lmz_attend_heads_avx512(int n_heads, const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride,
                             int p0, int p1, int d, float scale, float *w, float *out) {
    attn_in_passes(HEADS_PER_PASS, scores, values, n_heads, q, k, v, row_stride, p0, p1, d, scale, w, out);
}
#endif
