/* dot_scalar.c — the reference dot products. These define the results; every SIMD
 * kernel must reproduce them bit for bit (tests/test_kernels.c checks it on random data).
 * Quantized types: exact integer sums per block, then the shared float expressions of
 * quant.h accumulated block by block. Float types: the canonical 8-lane order (vecf.h). */
#include "quant.h"
#include "vecf.h"

#include "../util/fp16.h"

float lmz_dot_f32_scalar(int64_t k, const void *w, const void *x) {
    return lmz_dot_canon_scalar((const float *)w, (const float *)x, k);
}

float lmz_dot_f16_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const float *xf = x;
    float lane[8] = {0};
    for (int64_t i = 0; i < k; i++) lane[i & 7] += lmz_fp16_to_f32(lmz_read_u16le(p + 2 * i)) * xf[i];
    return lmz_lanes_combine(lane);
}

float lmz_dot_bf16_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const float *xf = x;
    float lane[8] = {0};
    for (int64_t i = 0; i < k; i++) lane[i & 7] += lmz_bits_to_f32((uint32_t)lmz_read_u16le(p + 2 * i) << 16) * xf[i];
    return lmz_lanes_combine(lane);
}

/* Integer sum of a 32-element nibble block with activations: element j is the low nibble
 * of byte j, element j+16 the high nibble; BIAS is subtracted from every weight. */
static int32_t nibble_dot(const uint8_t *qs, int bias, const int8_t *x) {
    int32_t s = 0;
    for (int j = 0; j < 16; j++) s += ((qs[j] & 0x0f) - bias) * x[j] + ((qs[j] >> 4) - bias) * x[j + 16];
    return s;
}

/* The same with a fifth bit per element from QH (bit j for element j). */
static int32_t nibble5_dot(const uint8_t *qs, uint32_t qh, int bias, const int8_t *x) {
    int32_t s = 0;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        s += (lo - bias) * x[j] + (hi - bias) * x[j + 16];
    }
    return s;
}

static float fp16_at(const uint8_t *p) { return lmz_fp16_to_f32(lmz_read_u16le(p)); }

float lmz_dot_q4_0_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 18) acc += lmz_block_sym(fp16_at(p), a[b].d, nibble_dot(p + 2, 8, a[b].q));
    return acc;
}

float lmz_dot_q4_1_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 20)
        acc += lmz_block_affine(fp16_at(p), fp16_at(p + 2), &a[b], nibble_dot(p + 4, 0, a[b].q));
    return acc;
}

float lmz_dot_q5_0_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 22)
        acc += lmz_block_sym(fp16_at(p), a[b].d, nibble5_dot(p + 6, lmz_read_u32le(p + 2), 16, a[b].q));
    return acc;
}

float lmz_dot_q5_1_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 24)
        acc += lmz_block_affine(fp16_at(p), fp16_at(p + 2), &a[b], nibble5_dot(p + 8, lmz_read_u32le(p + 4), 0, a[b].q));
    return acc;
}

float lmz_dot_q8_0_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act32 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 32; b++, p += 34) {
        int32_t s = 0;
        for (int j = 0; j < 32; j++) s += (int8_t)p[2 + j] * a[b].q[j];
        acc += lmz_block_sym(fp16_at(p), a[b].d, s);
    }
    return acc;
}

/* Q4_K and Q5_K: sumi = sum_j sc_j * sum_{e in j} q_e x_e; summ = sum_j m_j * (sum of x in j). */
static float dot_q45_k(int64_t k, const uint8_t *p, const lmz_act256 *a, bool five) {
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += five ? 176 : 144) {
        const uint8_t *scales = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            lmz_kquant_scale_min(j, scales, &sc, &m);
            int32_t s = 0;
            for (int l = 0; l < 32; l++) {
                int q = (j & 1) ? qs[32 * (j / 2) + l] >> 4 : qs[32 * (j / 2) + l] & 0x0f;
                if (five) q |= ((qh[l] >> j) & 1) << 4;
                s += q * a[b].q[32 * j + l];
            }
            sumi += sc * s;
            summ += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        acc += lmz_block_kquant(fp16_at(p), fp16_at(p + 2), a[b].d,
                                sumi, summ);
    }
    return acc;
}

float lmz_dot_q4_k_scalar(int64_t k, const void *w, const void *x) { return dot_q45_k(k, w, x, false); }
float lmz_dot_q5_k_scalar(int64_t k, const void *w, const void *x) { return dot_q45_k(k, w, x, true); }

float lmz_dot_q6_k_scalar(int64_t k, const void *w, const void *x) {
    const uint8_t *p = w;
    const lmz_act256 *a = x;
    float acc = 0.0f;
    for (int64_t b = 0; b < k / 256; b++, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        int32_t sumi = 0;
        for (int g = 0; g < 16; g++) {
            int32_t s = 0;
            for (int i = 0; i < 16; i++) {
                int e = 16 * g + i, h = e / 128, pp = e % 128, grp = pp / 32, l = pp % 32;
                int lo = (grp & 1) ? ql[64 * h + 32 + l] : ql[64 * h + l];
                lo = grp < 2 ? lo & 0x0f : lo >> 4;
                int hi = (qh[32 * h + l] >> (2 * grp)) & 3;
                s += ((lo | (hi << 4)) - 32) * a[b].q[e];
            }
            sumi += sc[g] * s;
        }
        acc += lmz_block_sym(fp16_at(p + 208), a[b].d, sumi);
    }
    return acc;
}
