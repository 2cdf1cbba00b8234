/* attention.c — the scalar reference of lmz_attend_head (attention.h) and its dispatch. */
#include "attention.h"

#include <math.h>
#include <string.h>

#include "../util/fp16.h"
#include "quant.h"
#include "vecf.h"

void lmz_attend_head_scalar(const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0, int p1,
                            int d, float scale, float *w, float *out) {
    float mx = -INFINITY;
    for (int u = p0; u <= p1; u++) {
        float s = lmz_vec_dot_f16_scalar(q, k + (size_t)u * row_stride, d) * scale;
        w[u] = s;
        if (s > mx) mx = s;
    }
    float inv = 1.0f / lmz_vec_exp_sum(w + p0, p1 - p0 + 1, mx);
    memset(out, 0, (size_t)d * sizeof(float));
    for (int u = p0; u <= p1; u++) {
        const float a = w[u] * inv;
        const uint16_t *vr = v + (size_t)u * row_stride;
        for (int i = 0; i < d; i++) out[i] += a * lmz_fp16_to_f32(vr[i]);
    }
}

void lmz_attend_head(const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0, int p1, int d,
                     float scale, float *w, float *out) {
    lmz_attend_heads(1, q, k, v, row_stride, p0, p1, d, scale, w, out);
}

void lmz_attend_heads(int n_heads, const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0,
                      int p1, int d, float scale, float *w, float *out) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX512 && d % 16 == 0) {
        lmz_attend_heads_avx512(n_heads, q, k, v, row_stride, p0, p1, d, scale, w, out);
        return;
    }
    if (lmz_isa_current() >= LMZ_ISA_AVX2 && d % 8 == 0 && d <= 256) {
        lmz_attend_heads_avx2(n_heads, q, k, v, row_stride, p0, p1, d, scale, w, out);
        return;
    }
#endif
    for (int h = 0; h < n_heads; h++)
        lmz_attend_head_scalar(q + (size_t)h * d, k, v, row_stride, p0, p1, d, scale, w, out + (size_t)h * d);
}
