/* attention_passes.h — what the AVX2 and AVX-512 attention kernels share, independent of
 * their vector width: turning 8 positions' canonical lanes into scores, finishing a head's
 * scores (the positions after the last 8-position pass, and the maximum), and the passes
 * over the query heads that share a K/V head, with the softmax between scores and values.
 * Included by attention_avx2.c and attention_avx512.c only (x86-64, AVX2 enabled). */
#ifndef LMZ_ATTENTION_PASSES_H
#define LMZ_ATTENTION_PASSES_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "simd_avx2.h"
#include "vecf.h"

#define ATTN_MAX_HEADS_PER_PASS 4

/* Scores of 8 positions of one head from their 8-lane accumulators (LANES[p] for position
 * p): lanes combined in the canonical order, scaled by SC, stored at W; MXV keeps the
 * lane-wise maximum. */
static inline __attribute__((always_inline)) void attn_store_scores8(__m256 lanes[8], __m256 sc, float *w,
                                                                     __m256 *mxv) {
    lmz_transpose8(lanes);
    const __m256 s = _mm256_mul_ps(lmz_lanes_combine8(lanes), sc);
    _mm256_storeu_ps(w, s);
    *mxv = _mm256_max_ps(s, *mxv); /* keeps mxv where s is NaN, like `s > mx` */
}

/* The rest of one head's scores after its 8-position passes: positions U..P1 one at a
 * time into W. Returns the maximum of all its scores (MXV holds the passes' lanes). */
static inline float attn_finish_scores(__m256 mxv, const float *q, const uint16_t *k, size_t stride, int u, int p1,
                                       int d, float scale, float *w) {
    float lane[8], mx = -INFINITY;
    _mm256_storeu_ps(lane, mxv);
    for (int i = 0; i < 8; i++)
        if (lane[i] > mx) mx = lane[i];
    for (int t = u; t <= p1; t++) {
        const float s = lmz_vec_dot_f16_avx2(q, k + (size_t)t * stride, d) * scale;
        w[t] = s;
        if (s > mx) mx = s;
    }
    return mx;
}

/* NH heads' scores for positions P0..P1 into W[h] (maxima into MX[h]), and their outputs
 * from the normalized weights. */
typedef void attn_scores_fn(int nh, const float *q, const uint16_t *k, size_t stride, int p0, int p1, int d,
                            float scale, float *const w[], float mx[]);
typedef void attn_values_fn(int nh, const uint16_t *v, size_t stride, int p0, int p1, int d, float *const w[],
                            float *out);

/* lmz_attend_heads in passes of at most PER_PASS (<= ATTN_MAX_HEADS_PER_PASS) heads. */
static inline void attn_in_passes(int per_pass, attn_scores_fn *scores, attn_values_fn *values, int n_heads,
                                  const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0,
                                  int p1, int d, float scale, float *w, float *out) {
    for (int h0 = 0; h0 < n_heads; h0 += per_pass) {
        const int nh = n_heads - h0 < per_pass ? n_heads - h0 : per_pass;
        float *wh[ATTN_MAX_HEADS_PER_PASS], mx[ATTN_MAX_HEADS_PER_PASS];
        for (int h = 0; h < nh; h++) wh[h] = w + (size_t)(h0 + h) * (size_t)(p1 + 1);
        scores(nh, q + (size_t)h0 * d, k, row_stride, p0, p1, d, scale, wh, mx);
        for (int h = 0; h < nh; h++) {
            const float inv = 1.0f / lmz_vec_exp_sum_avx2(wh[h] + p0, p1 - p0 + 1, mx[h]);
            for (int u = p0; u <= p1; u++) wh[h][u] = wh[h][u] * inv;
        }
        values(nh, v, row_stride, p0, p1, d, wh, out + (size_t)h0 * d);
    }
}

#endif
