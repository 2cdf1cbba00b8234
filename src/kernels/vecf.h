/* vecf.h — float vector primitives with a canonical reduction order.
 *
 * A long float sum is defined as 8 lanes: element i goes to lane i mod 8, each lane adds
 * its elements in increasing i, and the lanes combine as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
 * That order is what an 8-wide SIMD register does naturally, so the scalar reference and
 * the AVX2 kernels give the same bits; wider ISAs must keep 8 lanes per sum. */
#ifndef LMZ_VECF_H
#define LMZ_VECF_H

#include <stdint.h>

#include "../util/mathfn.h"

static inline float lmz_lanes_combine(const float l[8]) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static inline double lmz_lanes_combine_f64(const double l[8]) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* Unnormalized probability of a logit X when the largest logit is MX. lmz_expf(x - mx) in
 * the ordinary case; x - mx is NaN only for a NaN logit or an infinite maximum (inf - inf),
 * where tokens equal to that maximum share the mass and the rest get none. */
static inline float lmz_exp_weight(float x, float mx) {
    float d = x - mx;
    if (d != d) return x == mx ? 1.0f : 0.0f;
    return lmz_expf(d);
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
/* out[j] = canonical rows_j . x for the N_ROWS rows of LEN floats stored back to back. */
void lmz_vec_dot_rows(const float *rows, int64_t n_rows, int64_t len, const float *x, float *out);
float lmz_vec_dot_f16(const float *a, const uint16_t *b16, int64_t n);   /* canonical a.fp16(b) */
void lmz_vec_axpy_f16(float *y, float alpha, const uint16_t *x16, int64_t n); /* y += alpha * x */

/* The max scan and the two passes of lmz_freq_build (src/probs/freq.c). Weights travel as
 * float bits in a uint32_t array because they are computed into the frequency array itself.
 *
 * The largest of x[0..n), NaNs ignored; -inf if there is none. A zero maximum is returned
 * as +0 whichever zeros x holds, so the result does not depend on the scan order. */
float lmz_vec_max(const float *x, int64_t n);
/* w[i] = the float bits of lmz_exp_weight(x[i], mx); returns the sum of the weights in
 * double over the canonical 8 lanes (each weight converted to double, then added). */
double lmz_vec_exp_weights(const float *x, int64_t n, float mx, uint32_t *w);
/* On entry f[i] holds the float bits of a weight w with 0 <= w * scale < 2^31; on return
 * f[i] = 1 + (uint32_t)((double)w * scale). Returns the sum of the new f[i] (mod 2^32) and
 * sets *best to the lowest index of the largest one. n < 2^31. */
uint32_t lmz_vec_freq_scale(uint32_t *f, int64_t n, double scale, int64_t *best);

float lmz_vec_dot_f16_scalar(const float *a, const uint16_t *b16, int64_t n);
float lmz_vec_dot_f16_avx2(const float *a, const uint16_t *b16, int64_t n);
float lmz_vec_dot_avx2(const float *a, const float *b, int64_t n);
void lmz_vec_dot_rows_avx2(const float *rows, int64_t n_rows, int64_t len, const float *x, float *out);
void lmz_vec_axpy_f16_avx2(float *y, float alpha, const uint16_t *x16, int64_t n);
float lmz_vec_exp_sum_avx2(float *w, int64_t n, float mx);
void lmz_vec_swiglu_avx2(float *g, const float *u, int64_t n);
float lmz_vec_max_avx2(const float *x, int64_t n);
double lmz_vec_exp_weights_avx2(const float *x, int64_t n, float mx, uint32_t *w);
uint32_t lmz_vec_freq_scale_avx2(uint32_t *f, int64_t n, double scale, int64_t *best);

#endif
