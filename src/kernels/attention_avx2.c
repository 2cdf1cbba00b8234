/* attention_avx2.c — lmz_attend_heads with AVX2, bit-identical to attention.c.
 * The query heads that share one K/V head (grouped-query attention) are done together, up
 * to HEADS_PER_PASS at a time, so each cached fp16 value is converted once per pass
 * instead of once per head. Scores: per position, each head's 8 canonical lanes
 * accumulated as in lmz_vec_dot_f16; the lanes of 8 positions are then transposed and
 * combined in the canonical order. Values: 32 output floats per head in registers,
 * positions in increasing order. The head count is a compile-time constant in the inlined
 * bodies (see scores), so that the accumulators stay in registers. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "attention.h"
#include "attention_passes.h"

/* 3 heads x 4 column vectors of values accumulators, plus a V vector and a weight: 14 of
 * the 16 ymm registers. */
#define HEADS_PER_PASS 3
_Static_assert(HEADS_PER_PASS <= ATTN_MAX_HEADS_PER_PASS, "attn_in_passes holds a pass's heads");

/* Scores of NH heads for positions P0..P1 into W[h], maxima into MX[h]. Two positions at
 * a time, so that each head has two independent accumulator chains. */
static inline __attribute__((always_inline)) void scores_n(const int nh, const float *q, const uint16_t *k,
                                                           size_t stride, int p0, int p1, int d, float scale,
                                                           float *const w[], float mx[]) {
    const int nc = d / 8;
    const __m256 sc = _mm256_set1_ps(scale);
    __m256 mxv[HEADS_PER_PASS];
#pragma GCC unroll 3
    for (int h = 0; h < nh; h++) mxv[h] = _mm256_set1_ps(-INFINITY);
    int u = p0;
    for (; u + 8 <= p1 + 1; u += 8) {
        __m256 lanes[HEADS_PER_PASS][8];
        for (int p = 0; p < 8; p += 2) {
            const uint16_t *ka = k + (size_t)(u + p) * stride, *kb = ka + stride;
            __m256 acc[HEADS_PER_PASS][2];
#pragma GCC unroll 3
            for (int h = 0; h < nh; h++) acc[h][0] = acc[h][1] = _mm256_setzero_ps();
            for (int c = 0; c < nc; c++) {
                const __m256 va = lmz_load_f16x8(ka + 8 * c), vb = lmz_load_f16x8(kb + 8 * c);
#pragma GCC unroll 3
                for (int h = 0; h < nh; h++) {
                    const __m256 qv = _mm256_loadu_ps(q + (size_t)h * d + 8 * c);
                    acc[h][0] = _mm256_add_ps(acc[h][0], _mm256_mul_ps(qv, va));
                    acc[h][1] = _mm256_add_ps(acc[h][1], _mm256_mul_ps(qv, vb));
                }
            }
#pragma GCC unroll 3
            for (int h = 0; h < nh; h++) {
                lanes[h][p] = acc[h][0];
                lanes[h][p + 1] = acc[h][1];
            }
        }
#pragma GCC unroll 3
        for (int h = 0; h < nh; h++) attn_store_scores8(lanes[h], sc, w[h] + u, &mxv[h]);
    }
    for (int h = 0; h < nh; h++)
        mx[h] = attn_finish_scores(mxv[h], q + (size_t)h * d, k, stride, u, p1, d, scale, w[h]);
}

/* With the head count a variable, GCC keeps the accumulators on the stack. */
static void scores(int nh, const float *q, const uint16_t *k, size_t stride, int p0, int p1, int d, float scale,
                   float *const w[], float mx[]) {
    switch (nh) {
    case 1: scores_n(1, q, k, stride, p0, p1, d, scale, w, mx); break;
    case 2: scores_n(2, q, k, stride, p0, p1, d, scale, w, mx); break;
    default: scores_n(HEADS_PER_PASS, q, k, stride, p0, p1, d, scale, w, mx); break;
    }
}

/* out[h] = sum over u of w[h][u] * V_u for the N4 * 8 columns at C0 (N4 <= 4). */
static inline __attribute__((always_inline)) void values_cols(const int nh, const int n4, const uint16_t *v,
                                                              size_t stride, int p0, int p1, int c0,
                                                              float *const w[], float *out, int d) {
    __m256 o[HEADS_PER_PASS][4];
#pragma GCC unroll 3
    for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) o[h][i] = _mm256_setzero_ps();
    for (int u = p0; u <= p1; u++) {
        const uint16_t *vr = v + (size_t)u * stride + c0;
#pragma GCC unroll 4
        for (int i = 0; i < n4; i++) {
            const __m256 vv = lmz_load_f16x8(vr + 8 * i);
#pragma GCC unroll 3
            for (int h = 0; h < nh; h++) o[h][i] = _mm256_add_ps(o[h][i], _mm256_mul_ps(_mm256_set1_ps(w[h][u]), vv));
        }
    }
#pragma GCC unroll 3
    for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
        for (int i = 0; i < n4; i++) _mm256_storeu_ps(out + (size_t)h * d + c0 + 8 * i, o[h][i]);
}

/* out[h] = sum over u of w[h][u] * V_u, 32 columns at a time (the last group may be
 * narrower: the general case, taken by no supported model's head size). */
static void values(int nh, const uint16_t *v, size_t stride, int p0, int p1, int d, float *const w[], float *out) {
    for (int c0 = 0; c0 < d; c0 += 32) {
        const int n4 = (d - c0) / 8 < 4 ? (d - c0) / 8 : 4;
        if (n4 == 4 && nh == 1) values_cols(1, 4, v, stride, p0, p1, c0, w, out, d);
        else if (n4 == 4 && nh == 2) values_cols(2, 4, v, stride, p0, p1, c0, w, out, d);
        else if (n4 == 4) values_cols(HEADS_PER_PASS, 4, v, stride, p0, p1, c0, w, out, d);
        else
            for (int h = 0; h < nh; h++) values_cols(1, n4, v, stride, p0, p1, c0, w + h, out + (size_t)h * d, d);
    }
}

void lmz_attend_heads_avx2(int n_heads, const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride,
                           int p0, int p1, int d, float scale, float *w, float *out) {
    attn_in_passes(HEADS_PER_PASS, scores, values, n_heads, q, k, v, row_stride, p0, p1, d, scale, w, out);
}
#endif
