/* dot_neon.c — arm64 NEON versions of the single-token dot products and of the canonical
 * float primitives (plain ARMv8.0 Advanced SIMD: no dotprod, no fp16 arithmetic).
 * Integer block sums use widening multiplies (vmull_s8: int8 x int8 fits int16 exactly,
 * |product| <= 128 * 128) folded pairwise into int32 lanes (vpadalq_s16); the order of an
 * integer sum does not matter. The float part of each block is quant.h's shared
 * expression, accumulated block by block, so results equal dot_scalar.c bit for bit.
 * Float sums keep vecf.h's 8 lanes as two float32x4 registers (lanes 0..3 and 4..7) and
 * use separate vmulq/vaddq (never vfma/vmla, which may fuse; the build has
 * -ffp-contract=off). On other architectures this file compiles to nothing. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "../util/fp16.h"
#include "quant.h"
#include "vecf.h"

static inline float h2f(const uint8_t *p) { return lmz_fp16_to_f32(lmz_read_u16le(p)); }

/* acc += pairwise sums of a[i] * b[i] for 16 int8 pairs (exact). */
static inline int32x4_t madd16(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

/* Exact integer sum of 16 int8 products. */
static inline int32_t dot16_i8(int8x16_t a, int8x16_t b) { return vaddvq_s32(madd16(vdupq_n_s32(0), a, b)); }

/* Bits 0..15 of MASK16 -> byte j = 0x10 if bit j is set, else 0. */
static inline uint8x16_t fifth_bits16(uint32_t mask16) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t bytes = vcombine_u8(vdup_n_u8((uint8_t)(mask16 & 0xff)), vdup_n_u8((uint8_t)((mask16 >> 8) & 0xff)));
    return vandq_u8(vtstq_u8(bytes, vld1q_u8(bit)), vdupq_n_u8(0x10));
}

/* 32-element blocks: weights as two int8x16 (elements 0..15, 16..31), dotted with q[32]. */
static inline int32_t block32_sum(int8x16_t w0, int8x16_t w1, const int8_t *q) {
    int32x4_t acc = madd16(vdupq_n_s32(0), w0, vld1q_s8(q));
    return vaddvq_s32(madd16(acc, w1, vld1q_s8(q + 16)));
}

/* Element j is the low nibble of qs[j], element j+16 the high nibble. */
static inline void nibbles(const uint8_t *qs, uint8x16_t *lo, uint8x16_t *hi) {
    uint8x16_t b = vld1q_u8(qs);
    *lo = vandq_u8(b, vdupq_n_u8(0x0f));
    *hi = vshrq_n_u8(b, 4);
}

float lmz_dot_q4_0_neon(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    const int8x16_t eight = vdupq_n_s8(8);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 18) {
        uint8x16_t lo, hi;
        nibbles(p + 2, &lo, &hi);
        int32_t sumi = block32_sum(vsubq_s8(vreinterpretq_s8_u8(lo), eight), vsubq_s8(vreinterpretq_s8_u8(hi), eight), a[b].q);
        acc += lmz_block_sym(h2f(p), a[b].d, sumi);
    }
    return acc;
}

float lmz_dot_q4_1_neon(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 20) {
        uint8x16_t lo, hi;
        nibbles(p + 4, &lo, &hi);
        int32_t sumi = block32_sum(vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi), a[b].q);
        acc += lmz_block_affine(h2f(p), h2f(p + 2), &a[b], sumi);
    }
    return acc;
}

float lmz_dot_q5_0_neon(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    const int8x16_t sixteen = vdupq_n_s8(16);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 22) {
        uint32_t qh = lmz_read_u32le(p + 2);
        uint8x16_t lo, hi;
        nibbles(p + 6, &lo, &hi);
        lo = vorrq_u8(lo, fifth_bits16(qh & 0xffff));
        hi = vorrq_u8(hi, fifth_bits16(qh >> 16));
        int32_t sumi = block32_sum(vsubq_s8(vreinterpretq_s8_u8(lo), sixteen), vsubq_s8(vreinterpretq_s8_u8(hi), sixteen), a[b].q);
        acc += lmz_block_sym(h2f(p), a[b].d, sumi);
    }
    return acc;
}

float lmz_dot_q8_0_neon(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 34) {
        const int8_t *qw = (const int8_t *)(p + 2);
        int32_t sumi = block32_sum(vld1q_s8(qw), vld1q_s8(qw + 16), a[b].q);
        acc += lmz_block_sym(h2f(p), a[b].d, sumi);
    }
    return acc;
}

/* Q4_K: sumi = sum_j sc_j * (sum of q*x over sub-block j); summ from the bsums. */
float lmz_dot_q4_k_neon(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 144) {
        const uint8_t *scales = p + 4, *qs = p + 16;
        const int8_t *q = a[b].q;
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8x16_t b0 = vld1q_u8(qs + 32 * c), b1 = vld1q_u8(qs + 32 * c + 16);
            int32x4_t slo = madd16(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(b0, low4)), vld1q_s8(q + 64 * c));
            slo = madd16(slo, vreinterpretq_s8_u8(vandq_u8(b1, low4)), vld1q_s8(q + 64 * c + 16));
            int32x4_t shi = madd16(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), vld1q_s8(q + 64 * c + 32));
            shi = madd16(shi, vreinterpretq_s8_u8(vshrq_n_u8(b1, 4)), vld1q_s8(q + 64 * c + 48));
            uint8_t sc0, m0, sc1, m1;
            lmz_kquant_scale_min(2 * c, scales, &sc0, &m0);
            lmz_kquant_scale_min(2 * c + 1, scales, &sc1, &m1);
            sumi += sc0 * vaddvq_s32(slo) + sc1 * vaddvq_s32(shi);
            summ += m0 * (a[b].bsums[4 * c] + a[b].bsums[4 * c + 1]) + m1 * (a[b].bsums[4 * c + 2] + a[b].bsums[4 * c + 3]);
        }
        acc += lmz_block_kquant(h2f(p), h2f(p + 2), a[b].d, sumi, summ);
    }
    return acc;
}

/* Q6_K: element 128h + 32g + l (l < 32) has its low 4 bits in ql[64h + 32(g&1) + l]
 * (low nibble for g < 2, high for g >= 2) and its high 2 bits in qh[32h + l] >> 2g;
 * each 16 elements share one int8 scale. */
float lmz_dot_q6_k_neon(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    const uint8x16_t low4 = vdupq_n_u8(0x0f), three = vdupq_n_u8(3);
    const int8x16_t bias = vdupq_n_s8(32);
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 210) {
        const int8_t *sc = (const int8_t *)(p + 192);
        int32_t sumi = 0;
        for (int h = 0; h < 2; h++) {
            for (int half = 0; half < 2; half++) { /* l in 16*half .. 16*half+15 */
                const int o = 16 * half;
                uint8x16_t ql0 = vld1q_u8(p + 64 * h + o), ql1 = vld1q_u8(p + 64 * h + 32 + o);
                uint8x16_t qh = vld1q_u8(p + 128 + 32 * h + o);
                uint8x16_t v[4];
                v[0] = vorrq_u8(vandq_u8(ql0, low4), vshlq_n_u8(vandq_u8(qh, three), 4));
                v[1] = vorrq_u8(vandq_u8(ql1, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), three), 4));
                v[2] = vorrq_u8(vshrq_n_u8(ql0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), three), 4));
                v[3] = vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4));
                for (int g = 0; g < 4; g++) {
                    int e = 128 * h + 32 * g + o;
                    int32_t s = dot16_i8(vsubq_s8(vreinterpretq_s8_u8(v[g]), bias), vld1q_s8(a[b].q + e));
                    sumi += sc[e / 16] * s;
                }
            }
        }
        acc += lmz_block_sym(h2f(p + 208), a[b].d, sumi);
    }
    return acc;
}

/* ---- canonical 8-lane float primitives ---- */

/* Lanes 0..3 and 4..7 of the canonical sum, then the scalar tail, then the fixed combine. */
static inline void store_lanes(float lane[8], float32x4_t acc0, float32x4_t acc1) {
    vst1q_f32(lane, acc0);
    vst1q_f32(lane + 4, acc1);
}

float lmz_vec_dot_neon(const float *a, const float *b, int64_t n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vaddq_f32(acc0, vmulq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
        acc1 = vaddq_f32(acc1, vmulq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4)));
    }
    float lane[8];
    store_lanes(lane, acc0, acc1);
    for (; i < n; i++) lane[i & 7] += a[i] * b[i];
    return lmz_lanes_combine(lane);
}

float lmz_dot_f32_neon(int64_t k, const void *w, const void *x) { return lmz_vec_dot_neon(w, x, k); }

/* 8 fp16 values (any alignment) -> two float32x4, exactly (FCVT widening is exact). */
static inline void load_f16x8(const uint16_t *p, float32x4_t *lo, float32x4_t *hi) {
    uint16x8_t h = vreinterpretq_u16_u8(vld1q_u8((const uint8_t *)p));
    *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
    *hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h)));
}

float lmz_vec_dot_f16_neon(const float *a, const uint16_t *b16, int64_t n) {
    float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t b0, b1;
        load_f16x8(b16 + i, &b0, &b1);
        acc0 = vaddq_f32(acc0, vmulq_f32(vld1q_f32(a + i), b0));
        acc1 = vaddq_f32(acc1, vmulq_f32(vld1q_f32(a + i + 4), b1));
    }
    float lane[8];
    store_lanes(lane, acc0, acc1);
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, b16 + i, 2);
        lane[i & 7] += a[i] * lmz_fp16_to_f32(h);
    }
    return lmz_lanes_combine(lane);
}

/* The F16 weight type: fp16(w[i]) * x[i] == x[i] * fp16(w[i]) (IEEE products commute). */
float lmz_dot_f16_neon(int64_t k, const void *w, const void *x) { return lmz_vec_dot_f16_neon(x, w, k); }

void lmz_vec_axpy_f16_neon(float *y, float alpha, const uint16_t *x16, int64_t n) {
    const float32x4_t av = vdupq_n_f32(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t x0, x1;
        load_f16x8(x16 + i, &x0, &x1);
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(av, x0)));
        vst1q_f32(y + i + 4, vaddq_f32(vld1q_f32(y + i + 4), vmulq_f32(av, x1)));
    }
    for (; i < n; i++) y[i] += alpha * lmz_fp16_to_f32(x16[i]);
}
#endif
