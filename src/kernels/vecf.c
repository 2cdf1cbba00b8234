/* vecf.c — scalar reference of the canonical float primitives and their dispatch. */
#include "vecf.h"

#include "../util/fp16.h"
#include "../util/mathfn.h"
#include "quant.h"

float lmz_vec_dot_f16_scalar(const float *a, const uint16_t *b16, int64_t n) {
    float lane[8] = {0};
    for (int64_t i = 0; i < n; i++) lane[i & 7] += a[i] * lmz_fp16_to_f32(b16[i]);
    return lmz_lanes_combine(lane);
}

static void axpy_f16_scalar(float *y, float alpha, const uint16_t *x16, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * lmz_fp16_to_f32(x16[i]);
}

float lmz_vec_dot(const float *a, const float *b, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_dot_avx2(a, b, n);
#endif
    return lmz_dot_canon_scalar(a, b, n);
}

float lmz_vec_dot_f16(const float *a, const uint16_t *b16, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_dot_f16_avx2(a, b16, n);
#endif
    return lmz_vec_dot_f16_scalar(a, b16, n);
}

void lmz_vec_axpy_f16(float *y, float alpha, const uint16_t *x16, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        lmz_vec_axpy_f16_avx2(y, alpha, x16, n);
        return;
    }
#endif
    axpy_f16_scalar(y, alpha, x16, n);
}

static float exp_sum_scalar(float *w, int64_t n, float mx) {
    float lane[8] = {0};
    for (int64_t i = 0; i < n; i++) {
        w[i] = lmz_expf(w[i] - mx);
        lane[i & 7] += w[i];
    }
    return lmz_lanes_combine(lane);
}

float lmz_vec_exp_sum(float *w, int64_t n, float mx) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_exp_sum_avx2(w, n, mx);
#endif
    return exp_sum_scalar(w, n, mx);
}

void lmz_vec_swiglu(float *g, const float *u, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        lmz_vec_swiglu_avx2(g, u, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) g[i] = lmz_siluf(g[i]) * u[i];
}
