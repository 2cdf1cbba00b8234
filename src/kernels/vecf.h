/* vecf.h — float vector primitives with a canonical reduction order.
 *
 * A long float sum is defined as 8 lanes: element i goes to lane i mod 8, each lane adds
 * its elements in increasing i, and the lanes combine as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
 * That order is what an 8-wide SIMD register does naturally, so the scalar reference and
 * the AVX2 kernels give the same bits; wider ISAs must keep 8 lanes per sum. */
#ifndef LMZ_VECF_H
#define LMZ_VECF_H

#include <stdint.h>

static inline float lmz_lanes_combine(const float l[8]) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static inline float lmz_dot_canon_scalar(const float *a, const float *b, int64_t n) {
    float lane[8] = {0};
    for (int64_t i = 0; i < n; i++) lane[i & 7] += a[i] * b[i];
    return lmz_lanes_combine(lane);
}

/* Dispatched on lmz_isa_current(). The exp-based ones compute lmz_expf's exact bits. */
/* w[i] = expf(w[i] - mx) for i < n; returns their canonical sum. */
float lmz_vec_exp_sum(float *w, int64_t n, float mx);
/* g[i] = silu(g[i]) * u[i] (SwiGLU). */
void lmz_vec_swiglu(float *g, const float *u, int64_t n);
float lmz_vec_dot(const float *a, const float *b, int64_t n);            /* canonical a.b */
float lmz_vec_dot_f16(const float *a, const uint16_t *b16, int64_t n);   /* canonical a.fp16(b) */
void lmz_vec_axpy_f16(float *y, float alpha, const uint16_t *x16, int64_t n); /* y += alpha * x */

float lmz_vec_dot_f16_scalar(const float *a, const uint16_t *b16, int64_t n);
float lmz_vec_dot_f16_avx2(const float *a, const uint16_t *b16, int64_t n);
float lmz_vec_dot_avx2(const float *a, const float *b, int64_t n);
void lmz_vec_axpy_f16_avx2(float *y, float alpha, const uint16_t *x16, int64_t n);
float lmz_vec_exp_sum_avx2(float *w, int64_t n, float mx);
void lmz_vec_swiglu_avx2(float *g, const float *u, int64_t n);

#endif
