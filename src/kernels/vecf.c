/* vecf.c — scalar reference of the canonical float primitives and their dispatch. */
#include "vecf.h"

#include <math.h>
#include <string.h>

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
#elif defined(__aarch64__)
    if (lmz_isa_current() >= LMZ_ISA_NEON) return lmz_vec_dot_neon(a, b, n);
#endif
    return lmz_dot_canon_scalar(a, b, n);
}

void lmz_vec_dot_rows(const float *rows, int64_t n_rows, int64_t len, const float *x, float *out) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        lmz_vec_dot_rows_avx2(rows, n_rows, len, x, out);
        return;
    }
#endif
    for (int64_t j = 0; j < n_rows; j++) out[j] = lmz_vec_dot(rows + j * len, x, len);
}

float lmz_vec_dot_f16(const float *a, const uint16_t *b16, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_dot_f16_avx2(a, b16, n);
#elif defined(__aarch64__)
    if (lmz_isa_current() >= LMZ_ISA_NEON) return lmz_vec_dot_f16_neon(a, b16, n);
#endif
    return lmz_vec_dot_f16_scalar(a, b16, n);
}

void lmz_vec_axpy_f16(float *y, float alpha, const uint16_t *x16, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        lmz_vec_axpy_f16_avx2(y, alpha, x16, n);
        return;
    }
#elif defined(__aarch64__)
    if (lmz_isa_current() >= LMZ_ISA_NEON) {
        lmz_vec_axpy_f16_neon(y, alpha, x16, n);
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

static float max_scalar(const float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i]; /* NaN never compares greater */
    return mx + 0.0f; /* -0 + 0 = +0, so which zero came first does not show; nothing else changes */
}

float lmz_vec_max(const float *x, int64_t n) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_max_avx2(x, n);
#endif
    return max_scalar(x, n);
}

static double exp_weights_scalar(const float *x, int64_t n, float mx, uint32_t *w) {
    double lane[8] = {0};
    for (int64_t i = 0; i < n; i++) {
        float e = lmz_exp_weight(x[i], mx);
        memcpy(&w[i], &e, sizeof e);
        lane[i & 7] += (double)e;
    }
    return lmz_lanes_combine_f64(lane);
}

double lmz_vec_exp_weights(const float *x, int64_t n, float mx, uint32_t *w) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_exp_weights_avx2(x, n, mx, w);
#endif
    return exp_weights_scalar(x, n, mx, w);
}

static uint32_t freq_scale_scalar(uint32_t *f, int64_t n, double scale, int64_t *best) {
    uint32_t sum = 0, top = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        float w;
        memcpy(&w, &f[i], sizeof w);
        f[i] = 1 + (uint32_t)((double)w * scale);
        sum += f[i];
        if (f[i] > top) { /* strictly greater: the lowest index wins ties */
            top = f[i];
            at = i;
        }
    }
    *best = at;
    return sum;
}

uint32_t lmz_vec_freq_scale(uint32_t *f, int64_t n, double scale, int64_t *best) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) return lmz_vec_freq_scale_avx2(f, n, scale, best);
#endif
    return freq_scale_scalar(f, n, scale, best);
}
