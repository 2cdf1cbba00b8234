/* attention_avx2.c — lmz_attend_head with AVX2, bit-identical to attention.c.
 * Scores: 8 positions per pass, each position's 8 canonical lanes accumulated as in
 * lmz_vec_dot_f16, then an 8x8 transpose so that the canonical lane combine
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) runs once for 8 positions. Values: the output is
 * accumulated 32 elements at a time in registers, positions in increasing order. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "attention.h"
#include "simd_avx2.h"
#include "vecf.h"

void lmz_attend_head_avx2(const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0, int p1,
                          int d, float scale, float *w, float *out) {
    const int nc = d / 8;
    const __m256 sc = _mm256_set1_ps(scale);
    __m256 mxv = _mm256_set1_ps(-INFINITY);
    int u = p0;
    for (; u + 8 <= p1 + 1; u += 8) {
        __m256 acc[8];
        for (int p = 0; p < 8; p++) {
            const uint16_t *kr = k + (size_t)(u + p) * row_stride;
            __m256 a = _mm256_setzero_ps();
            for (int c = 0; c < nc; c++) a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(q + 8 * c), lmz_load_f16x8(kr + 8 * c)));
            acc[p] = a;
        }
        lmz_transpose8(acc);
        __m256 s = _mm256_mul_ps(lmz_lanes_combine8(acc), sc);
        _mm256_storeu_ps(w + u, s);
        mxv = _mm256_max_ps(s, mxv); /* keeps mxv where s is NaN, like `s > mx` */
    }
    float lane[8], mx = -INFINITY;
    _mm256_storeu_ps(lane, mxv);
    for (int i = 0; i < 8; i++)
        if (lane[i] > mx) mx = lane[i];
    for (; u <= p1; u++) {
        float s = lmz_vec_dot_f16_avx2(q, k + (size_t)u * row_stride, d) * scale;
        w[u] = s;
        if (s > mx) mx = s;
    }
    const float inv = 1.0f / lmz_vec_exp_sum_avx2(w + p0, p1 - p0 + 1, mx);
    for (u = p0; u <= p1; u++) w[u] = w[u] * inv;
    for (int c0 = 0; c0 < nc; c0 += 4) {
        const int n4 = nc - c0 < 4 ? nc - c0 : 4;
        __m256 o[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (u = p0; u <= p1; u++) {
            const __m256 a = _mm256_set1_ps(w[u]);
            const uint16_t *vr = v + (size_t)u * row_stride + 8 * c0;
            for (int c = 0; c < n4; c++) o[c] = _mm256_add_ps(o[c], _mm256_mul_ps(a, lmz_load_f16x8(vr + 8 * c)));
        }
        for (int c = 0; c < n4; c++) _mm256_storeu_ps(out + 8 * (c0 + c), o[c]);
    }
}
#endif
