/* quant.c — activation quantization, exact weight dequantization and ISA dispatch.
 * Block layouts: gguf-spec.md §2. */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <string.h>

#include "../util/fp16.h"

bool lmz_type_supported(uint32_t type) {
    switch (type) {
    case LMZ_F32: case LMZ_F16: case LMZ_BF16: case LMZ_Q4_0: case LMZ_Q4_1: case LMZ_Q5_0:
    case LMZ_Q5_1: case LMZ_Q8_0: case LMZ_Q4_K: case LMZ_Q5_K: case LMZ_Q6_K:
        return true;
    default:
        return false;
    }
}

enum lmz_act_kind lmz_act_kind_for(uint32_t weight_type) {
    switch (weight_type) {
    case LMZ_Q4_0: case LMZ_Q4_1: case LMZ_Q5_0: case LMZ_Q5_1: case LMZ_Q8_0: return LMZ_ACT_32;
    case LMZ_Q4_K: case LMZ_Q5_K: case LMZ_Q6_K: return LMZ_ACT_256;
    default: return LMZ_ACT_F32;
    }
}

size_t lmz_act_row_bytes(uint32_t weight_type, int64_t k) {
    switch (lmz_act_kind_for(weight_type)) {
    case LMZ_ACT_32: return (size_t)(k / 32) * sizeof(lmz_act32);
    case LMZ_ACT_256: return (size_t)(k / 256) * sizeof(lmz_act256);
    default: return (size_t)k * sizeof(float);
    }
}

/* Round half to even for |v| < 2^22, by the shifter trick: the same bits on every ISA. */
static inline int32_t round_even(float v) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    return (int32_t)((v + shifter) - shifter);
}

/* The activation formats follow llama.cpp's x86 quantizers closely (an fp16-rounded
 * scale for 32-blocks, a signed-max scale for 256-blocks): lmz computes its own bits,
 * but staying near the reference keeps the logit-parity test meaningful. */
static void quantize_act32(const float *x, lmz_act32 *a) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) {
        float v = x[i] < 0 ? -x[i] : x[i];
        if (v > amax) amax = v;
    }
    float d = amax / 127.0f;
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    /* A block of subnormals overflows the inverse scale: its values quantize to 0 (what
     * x86's conversion of the infinite products gave; converting them in C is undefined,
     * and arm64 would have saturated them instead). */
    if (isinf(id)) id = 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < 32; i++) {
        a->q[i] = (int8_t)round_even(x[i] * id);
        sum += a->q[i];
    }
    a->qsum = sum;
    a->d = lmz_fp16_to_f32(lmz_f32_to_fp16(d));
    a->s = lmz_fp16_to_f32(lmz_f32_to_fp16(d * (float)sum));
}

static void quantize_act256(const float *x, lmz_act256 *a) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 256; i++) {
        float v = x[i] < 0 ? -x[i] : x[i];
        if (v > amax) {
            amax = v;
            max = x[i];
        }
    }
    memset(a->q, 0, sizeof a->q);
    a->d = 0.0f;
    if (amax != 0.0f) {
        float iscale = -127.0f / max;
        if (!isinf(iscale)) /* else subnormals: all 0, as for the 32-element blocks */
            for (int i = 0; i < 256; i++) {
                int32_t v = round_even(iscale * x[i]);
                a->q[i] = (int8_t)(v > 127 ? 127 : v);
            }
        a->d = 1.0f / iscale;
    }
    for (int g = 0; g < 16; g++) {
        int32_t sum = 0;
        for (int i = 0; i < 16; i++) sum += a->q[g * 16 + i];
        a->bsums[g] = (int16_t)sum;
    }
}

void lmz_quantize_act_row(uint32_t weight_type, const float *x, int64_t k, void *out) {
    switch (lmz_act_kind_for(weight_type)) {
    case LMZ_ACT_32:
#if defined(__x86_64__)
        if (lmz_isa_current() >= LMZ_ISA_AVX512) {
            lmz_quantize_act32_avx512(x, k / 32, out);
            break;
        }
#endif
        for (int64_t b = 0; b < k / 32; b++) quantize_act32(x + b * 32, (lmz_act32 *)out + b);
        break;
    case LMZ_ACT_256:
#if defined(__x86_64__)
        if (lmz_isa_current() >= LMZ_ISA_AVX512) {
            lmz_quantize_act256_avx512(x, k / 256, out);
            break;
        }
#endif
        for (int64_t b = 0; b < k / 256; b++) quantize_act256(x + b * 256, (lmz_act256 *)out + b);
        break;
    default:
        memcpy(out, x, (size_t)k * sizeof(float));
        break;
    }
}

void lmz_dequantize_row(uint32_t type, const void *row, int64_t k, float *out) {
    const uint8_t *p = row;
    switch (type) {
    case LMZ_F32:
        memcpy(out, row, (size_t)k * 4);
        return;
    case LMZ_F16:
        for (int64_t i = 0; i < k; i++) out[i] = lmz_fp16_to_f32(lmz_read_u16le(p + 2 * i));
        return;
    case LMZ_BF16:
        for (int64_t i = 0; i < k; i++) out[i] = lmz_bits_to_f32((uint32_t)lmz_read_u16le(p + 2 * i) << 16);
        return;
    case LMZ_Q4_0:
        for (int64_t b = 0; b < k / 32; b++, p += 18, out += 32) {
            float d = lmz_fp16_to_f32(lmz_read_u16le(p));
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)((p[2 + j] & 0x0f) - 8);
                out[j + 16] = d * (float)((p[2 + j] >> 4) - 8);
            }
        }
        return;
    case LMZ_Q4_1:
        for (int64_t b = 0; b < k / 32; b++, p += 20, out += 32) {
            float d = lmz_fp16_to_f32(lmz_read_u16le(p)), m = lmz_fp16_to_f32(lmz_read_u16le(p + 2));
            for (int j = 0; j < 16; j++) {
                out[j] = d * (float)(p[4 + j] & 0x0f) + m;
                out[j + 16] = d * (float)(p[4 + j] >> 4) + m;
            }
        }
        return;
    case LMZ_Q5_0:
        for (int64_t b = 0; b < k / 32; b++, p += 22, out += 32) {
            float d = lmz_fp16_to_f32(lmz_read_u16le(p));
            uint32_t qh = lmz_read_u32le(p + 2);
            for (int j = 0; j < 16; j++) {
                int lo = (p[6 + j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
                int hi = (p[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                out[j] = d * (float)(lo - 16);
                out[j + 16] = d * (float)(hi - 16);
            }
        }
        return;
    case LMZ_Q5_1:
        for (int64_t b = 0; b < k / 32; b++, p += 24, out += 32) {
            float d = lmz_fp16_to_f32(lmz_read_u16le(p)), m = lmz_fp16_to_f32(lmz_read_u16le(p + 2));
            uint32_t qh = lmz_read_u32le(p + 4);
            for (int j = 0; j < 16; j++) {
                int lo = (p[8 + j] & 0x0f) | (int)(((qh >> j) & 1) << 4);
                int hi = (p[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                out[j] = d * (float)lo + m;
                out[j + 16] = d * (float)hi + m;
            }
        }
        return;
    case LMZ_Q8_0:
        for (int64_t b = 0; b < k / 32; b++, p += 34, out += 32) {
            float d = lmz_fp16_to_f32(lmz_read_u16le(p));
            for (int j = 0; j < 32; j++) out[j] = d * (float)(int8_t)p[2 + j];
        }
        return;
    case LMZ_Q4_K:
    case LMZ_Q5_K: {
        const bool five = type == LMZ_Q5_K;
        for (int64_t b = 0; b < k / 256; b++, p += five ? 176 : 144, out += 256) {
            float d = lmz_fp16_to_f32(lmz_read_u16le(p)), dmin = lmz_fp16_to_f32(lmz_read_u16le(p + 2));
            const uint8_t *scales = p + 4, *qh = p + 16, *qs = p + (five ? 48 : 16);
            for (int e = 0; e < 256; e++) {
                int j = e / 32, c = e / 64, l = e % 32;
                uint8_t sc, m;
                lmz_kquant_scale_min(j, scales, &sc, &m);
                int q = (j & 1) ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0x0f;
                if (five) q += ((qh[l] >> j) & 1) << 4;
                out[e] = (d * (float)sc) * (float)q - dmin * (float)m;
            }
        }
        return;
    }
    case LMZ_Q6_K:
        for (int64_t b = 0; b < k / 256; b++, p += 210, out += 256) {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *sc = (const int8_t *)(p + 192);
            float d = lmz_fp16_to_f32(lmz_read_u16le(p + 208));
            for (int e = 0; e < 256; e++) {
                int h = e / 128, pp = e % 128, g = pp / 32, l = pp % 32;
                int lo = (g & 1) ? ql[64 * h + 32 + l] : ql[64 * h + l];
                lo = g < 2 ? lo & 0x0f : lo >> 4;
                int hi = (qh[32 * h + l] >> (2 * g)) & 3;
                out[e] = d * (float)sc[e / 16] * (float)((lo | (hi << 4)) - 32);
            }
        }
        return;
    default:
        abort(); /* callers check lmz_type_supported() when the model is loaded */
    }
}

/* ---- ISA dispatch ---- */

static enum lmz_isa current_isa = LMZ_ISA_SCALAR;
static bool isa_initialized;

static enum lmz_isa cpu_isa(void) {
#if defined(__x86_64__)
    /* F16C is CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know it). */
    unsigned eax, ebx, ecx, edx;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    __builtin_cpu_init();
    if (!f16c || !__builtin_cpu_supports("avx2")) return LMZ_ISA_SCALAR;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        return LMZ_ISA_AVX512;
    return LMZ_ISA_AVX2;
#elif defined(__aarch64__)
    return LMZ_ISA_NEON; /* Advanced SIMD is part of every ARMv8-A CPU */
#else
    return LMZ_ISA_SCALAR;
#endif
}

enum lmz_isa lmz_isa_detect(void) {
    enum lmz_isa isa = cpu_isa();
    const char *env = getenv("LMZ_ISA");
    if (env && !strcmp(env, "scalar")) isa = LMZ_ISA_SCALAR;
    else if (env && !strcmp(env, "avx2") && isa > LMZ_ISA_AVX2) isa = LMZ_ISA_AVX2;
    return isa;
}

bool lmz_isa_parse(const char *name, enum lmz_isa *isa) {
    if (!strcmp(name, "scalar")) *isa = LMZ_ISA_SCALAR;
#if defined(__x86_64__)
    else if (!strcmp(name, "avx2")) *isa = LMZ_ISA_AVX2;
    else if (!strcmp(name, "avx512")) *isa = LMZ_ISA_AVX512;
#elif defined(__aarch64__)
    else if (!strcmp(name, "neon")) *isa = LMZ_ISA_NEON;
#endif
    else return false;
    return true;
}

enum lmz_isa lmz_isa_current(void) {
    if (!isa_initialized) {
        current_isa = lmz_isa_detect();
        isa_initialized = true;
    }
    return current_isa;
}

void lmz_isa_set(enum lmz_isa isa) {
    enum lmz_isa max = cpu_isa();
    current_isa = isa > max ? max : isa;
    isa_initialized = true;
}

const char *lmz_isa_name(enum lmz_isa isa) {
#if defined(__aarch64__)
    if (isa == LMZ_ISA_NEON) return "neon";
#endif
    return isa == LMZ_ISA_AVX512 ? "avx512" : isa == LMZ_ISA_AVX2 ? "avx2" : "scalar";
}

lmz_dot_fn lmz_dot_for(uint32_t weight_type) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        switch (weight_type) {
        case LMZ_F32: return lmz_dot_f32_avx2;
        case LMZ_F16: return lmz_dot_f16_avx2;
        case LMZ_Q4_0: return lmz_dot_q4_0_avx2;
        case LMZ_Q4_1: return lmz_dot_q4_1_avx2;
        case LMZ_Q5_0: return lmz_dot_q5_0_avx2;
        case LMZ_Q8_0: return lmz_dot_q8_0_avx2;
        case LMZ_Q4_K: return lmz_dot_q4_k_avx2;
        case LMZ_Q6_K: return lmz_dot_q6_k_avx2;
        default: break;
        }
    }
#elif defined(__aarch64__)
    if (lmz_isa_current() >= LMZ_ISA_NEON) {
        switch (weight_type) {
        case LMZ_F32: return lmz_dot_f32_neon;
        case LMZ_F16: return lmz_dot_f16_neon;
        case LMZ_Q4_0: return lmz_dot_q4_0_neon;
        case LMZ_Q4_1: return lmz_dot_q4_1_neon;
        case LMZ_Q5_0: return lmz_dot_q5_0_neon;
        case LMZ_Q8_0: return lmz_dot_q8_0_neon;
        case LMZ_Q4_K: return lmz_dot_q4_k_neon;
        case LMZ_Q6_K: return lmz_dot_q6_k_neon;
        default: break;
        }
    }
#endif
    switch (weight_type) {
    case LMZ_F32: return lmz_dot_f32_scalar;
    case LMZ_F16: return lmz_dot_f16_scalar;
    case LMZ_BF16: return lmz_dot_bf16_scalar;
    case LMZ_Q4_0: return lmz_dot_q4_0_scalar;
    case LMZ_Q4_1: return lmz_dot_q4_1_scalar;
    case LMZ_Q5_0: return lmz_dot_q5_0_scalar;
    case LMZ_Q5_1: return lmz_dot_q5_1_scalar;
    case LMZ_Q8_0: return lmz_dot_q8_0_scalar;
    case LMZ_Q4_K: return lmz_dot_q4_k_scalar;
    case LMZ_Q5_K: return lmz_dot_q5_k_scalar;
    case LMZ_Q6_K: return lmz_dot_q6_k_scalar;
    default: return NULL;
    }
}

void lmz_dotn(uint32_t weight_type, int64_t k, const void *w_row, const uint8_t *acts, size_t act_stride, int n_tok,
              float *out, size_t out_stride) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        lmz_dotn_fn fn = NULL;
        switch (weight_type) {
        case LMZ_Q4_0: fn = lmz_dotn_q4_0_avx2; break;
        case LMZ_Q4_1: fn = lmz_dotn_q4_1_avx2; break;
        case LMZ_Q5_0: fn = lmz_dotn_q5_0_avx2; break;
        case LMZ_Q8_0: fn = lmz_dotn_q8_0_avx2; break;
        default: break;
        }
        if (fn) {
            fn(k, w_row, acts, act_stride, n_tok, out, out_stride);
            return;
        }
    }
#endif
    lmz_dot_fn dot = lmz_dot_for(weight_type);
    for (int t = 0; t < n_tok; t++) out[(size_t)t * out_stride] = dot(k, w_row, acts + (size_t)t * act_stride);
}

static lmz_dot16_fn dot16_for(uint32_t weight_type, int n_tok) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX512 && n_tok <= LMZ_SMALL_BATCH) {
        switch (weight_type) {
        case LMZ_Q4_K: return lmz_dot16_q4_k_small_avx512;
        case LMZ_Q6_K: return lmz_dot16_q6_k_small_avx512;
        case LMZ_Q5_0: if (n_tok == 1) return lmz_dot16_q5_0_one_avx512; break;
        case LMZ_Q8_0: if (n_tok == 1) return lmz_dot16_q8_0_one_avx512; break;
        default: break;
        }
    }
    if (lmz_isa_current() >= LMZ_ISA_AVX512) {
        switch (weight_type) {
        case LMZ_Q4_0: return lmz_dot16_q4_0_avx512;
        case LMZ_Q4_1: return lmz_dot16_q4_1_avx512;
        case LMZ_Q5_0: return lmz_dot16_q5_0_avx512;
        case LMZ_Q8_0: return lmz_dot16_q8_0_avx512;
        case LMZ_Q4_K: return lmz_dot16_q4_k_avx512;
        case LMZ_Q6_K: return lmz_dot16_q6_k_avx512;
        default: break;
        }
    }
    /* AVX2 (dot_avx2.c): one row per lane for any batch of the 32-element types; Q4_K from
     * 2 tokens and Q6_K from 4, where the 8 rows' transposes pay for themselves */
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        switch (weight_type) {
        case LMZ_Q4_0: return lmz_dot16_q4_0_avx2;
        case LMZ_Q4_1: return lmz_dot16_q4_1_avx2;
        case LMZ_Q5_0: return lmz_dot16_q5_0_avx2;
        case LMZ_Q8_0: return lmz_dot16_q8_0_avx2;
        case LMZ_Q4_K: return n_tok >= 2 ? lmz_dot16_q4_k_avx2 : NULL;
        case LMZ_Q6_K: return n_tok >= 4 ? lmz_dot16_q6_k_avx2 : NULL;
        default: break;
        }
    }
#endif
    (void)weight_type;
    (void)n_tok;
    return NULL;
}

void lmz_matmul_rows(uint32_t weight_type, int64_t k, const void *w, size_t row_bytes, long n_rows,
                     const uint8_t *acts, size_t act_stride, int n_tok, float *out, size_t out_stride) {
    long r = 0;
    lmz_dot16_fn dot16 = dot16_for(weight_type, n_tok);
    if (dot16)
        for (; r + 16 <= n_rows; r += 16)
            dot16(k, (const uint8_t *)w + r * row_bytes, row_bytes, acts, act_stride, n_tok, out + r, out_stride);
    for (; r < n_rows; r++)
        lmz_dotn(weight_type, k, (const uint8_t *)w + r * row_bytes, acts, act_stride, n_tok, out + r, out_stride);
}
