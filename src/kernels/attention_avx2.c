/* attention_avx2.c — lmz_attend_head with AVX2, bit-identical to attention.c.
 * Scores: 8 positions per pass, each position's 8 canonical lanes accumulated as in
 * lmz_vec_dot_f16, then an 8x8 transpose so that the canonical lane combine
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) runs once for 8 positions. Values: the output is
 * accumulated 32 elements at a time in registers, positions in increasing order. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "attention.h"
#include "vecf.h"

static inline __m256 load_f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/* r[j] becomes lane j of every input: out[j][p] = in[p][j]. */
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

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
            for (int c = 0; c < nc; c++) a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(q + 8 * c), load_f16x8(kr + 8 * c)));
            acc[p] = a;
        }
        transpose8(acc);
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])),
                                 _mm256_add_ps(_mm256_add_ps(acc[4], acc[5]), _mm256_add_ps(acc[6], acc[7])));
        s = _mm256_mul_ps(s, sc);
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
            for (int c = 0; c < n4; c++) o[c] = _mm256_add_ps(o[c], _mm256_mul_ps(a, load_f16x8(vr + 8 * c)));
        }
        for (int c = 0; c < n4; c++) _mm256_storeu_ps(out + 8 * (c0 + c), o[c]);
    }
}
#endif
