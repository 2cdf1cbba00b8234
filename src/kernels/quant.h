/* quant.h — weight block formats, activation quantization and per-row dot products.
 *
 * The determinism contract (docs/determinism.md) lives here. For y = W·x, every output
 * element is one dot product of a weight row with a quantized activation row, computed as:
 *   for each weight block b, in order:  c_b = block_contribution(exact integer sum, scales)
 *                                       acc = acc + c_b            (f32, sequential)
 * The integer part of a block is exact, so SIMD may compute it any way it likes; the float
 * part (a fixed expression per type, no FMA) and the sequential block order are shared by
 * every implementation, which makes scalar, AVX2 and AVX-512 results bit-identical, and
 * nothing depends on how many tokens or threads share the work.
 *
 * Activation formats are lmz's own (not ggml's): f32 scales instead of fp16.
 *   act32:  32 elements: d, s = d * sum(q) (both fp16-valued, kept as f32), sum(q), q[32]
 *           int8 with q = round-half-even(x * 127 / amax)                     — for 32-blocks
 *   act256: 256 elements: d (f32), bsums[16] (sum of each 16 q), q[256] int8, with
 *           q = round-half-even(-127 x / max), max the signed extreme          — for K-quants
 * Rounding uses the 1.5 * 2^23 shifter, never the FPU rounding mode or libm. */
#ifndef LMZ_QUANT_H
#define LMZ_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gguf/tensor_types.h"

typedef struct {
    float d, s;
    int32_t qsum; /* sum(q): lets unsigned-weight kernels (VNNI) correct a weight offset exactly */
    int8_t q[32];
} lmz_act32;

typedef struct {
    float d;
    int16_t bsums[16];
    int8_t q[256];
} lmz_act256;

/* How a weight type's activations are quantized. */
enum lmz_act_kind { LMZ_ACT_F32, LMZ_ACT_32, LMZ_ACT_256 };

/* True when lmz can compute with weights of this type. */
bool lmz_type_supported(uint32_t type);
enum lmz_act_kind lmz_act_kind_for(uint32_t weight_type);
/* Bytes of one quantized activation row of K elements for a weight type. */
size_t lmz_act_row_bytes(uint32_t weight_type, int64_t k);
/* Quantizes one activation row (K elements) for a weight type. */
void lmz_quantize_act_row(uint32_t weight_type, const float *x, int64_t k, void *out);
/* Dequantizes one weight row exactly (used for embedding lookups and tests). */
void lmz_dequantize_row(uint32_t type, const void *row, int64_t k, float *out);

/* One dot product: weight row (K elements, stored type) · quantized activation row. */
typedef float (*lmz_dot_fn)(int64_t k, const void *w_row, const void *act_row);
/* One weight row against N_TOK activation rows (ACT_STRIDE bytes apart):
 * out[t * out_stride] = dot(w_row, acts + t * act_stride). Same bits as N_TOK calls of the
 * single dot; SIMD versions unpack each weight block once for several tokens. */
typedef void (*lmz_dotn_fn)(int64_t k, const void *w_row, const uint8_t *acts, size_t act_stride, int n_tok,
                            float *out, size_t out_stride);

/* Weight rows 0..15 (ROW_BYTES apart) against N_TOK activation rows:
 * out[t * out_stride + r] = dot(row r, token t). Same bits as the single dot. */
typedef void (*lmz_dot16_fn)(int64_t k, const void *w, size_t row_bytes, const uint8_t *acts, size_t act_stride,
                             int n_tok, float *out, size_t out_stride);

/* Instruction-set levels; every level gives bit-identical results. Levels are ranks within
 * one architecture (0 scalar, then increasingly wide SIMD), so loops from the first SIMD
 * level (1) to lmz_isa_detect() cover every level of the machine: NEON, the arm64 level,
 * shares the number 1 with AVX2 (a build has only one of them; lmz_isa_name knows which). */
enum lmz_isa { LMZ_ISA_SCALAR = 0, LMZ_ISA_AVX2 = 1, LMZ_ISA_AVX512 = 2, LMZ_ISA_NEON = 1 };
/* The best level this CPU supports, optionally capped by $LMZ_ISA (scalar|avx2|avx512|neon). */
enum lmz_isa lmz_isa_detect(void);
/* Parses a level name into *ISA: "scalar", and this build's architecture's levels
 * ("avx2", "avx512" on x86-64; "neon" on arm64). False for any other name. */
bool lmz_isa_parse(const char *name, enum lmz_isa *isa);
enum lmz_isa lmz_isa_current(void);
void lmz_isa_set(enum lmz_isa isa);   /* clamped to what the CPU supports */
const char *lmz_isa_name(enum lmz_isa isa);
lmz_dot_fn lmz_dot_for(uint32_t weight_type);
/* The multi-token kernel for this type and ISA (a loop over lmz_dot_for() where no
 * specialized kernel exists). */
void lmz_dotn(uint32_t weight_type, int64_t k, const void *w_row, const uint8_t *acts, size_t act_stride, int n_tok,
              float *out, size_t out_stride);

/* The matmul inner kernel: out[t * out_stride + r] = dot(row r, token t) for N_ROWS weight
 * rows (ROW_BYTES apart) and N_TOK activation rows. Uses 16-row kernels where this ISA
 * has them for the type (faster from one token up, measured), else lmz_dotn per row;
 * every path gives the same bits. */
void lmz_matmul_rows(uint32_t weight_type, int64_t k, const void *w, size_t row_bytes, long n_rows,
                     const uint8_t *acts, size_t act_stride, int n_tok, float *out, size_t out_stride);

/* Scalar reference dot products (kernels/dot_scalar.c). */
float lmz_dot_f32_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_f16_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_bf16_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q4_0_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q4_1_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q5_0_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q5_1_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q8_0_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q4_k_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q5_k_scalar(int64_t k, const void *w, const void *x);
float lmz_dot_q6_k_scalar(int64_t k, const void *w, const void *x);

/* AVX2 multi-token kernels for the 32-element block types (kernels/dot_avx2.c). */
void lmz_dotn_q4_0_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os);
void lmz_dotn_q4_1_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os);
void lmz_dotn_q5_0_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os);
void lmz_dotn_q8_0_avx2(int64_t k, const void *w, const uint8_t *acts, size_t stride, int n, float *out, size_t os);

/* AVX2 kernels for 16 rows (two groups of 8, one row per lane), the same bits. */
void lmz_dot16_q4_0_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q5_0_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q8_0_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q4_1_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q4_k_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q6_k_avx2(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);

/* AVX2 single-token dot products (kernels/dot_avx2.c). */
float lmz_dot_f32_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_f16_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_q4_0_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_q4_1_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_q5_0_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_q8_0_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_q4_k_avx2(int64_t k, const void *w, const void *x);
float lmz_dot_q6_k_avx2(int64_t k, const void *w, const void *x);

/* AVX-512 VNNI 16-row kernels (kernels/dot_avx512.c). */
void lmz_dot16_q4_0_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q4_1_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q5_0_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q8_0_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q4_k_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
void lmz_dot16_q6_k_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o, size_t os);
/* The same for 1..LMZ_SMALL_BATCH tokens (Q4_K, Q6_K) or one token (Q5_0, Q8_0), reading
 * each row in its own byte order: faster for a few tokens, where the transposes of the
 * kernels above cost more than the products (measured). */
#define LMZ_SMALL_BATCH 8
void lmz_dot16_q4_k_small_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o,
                                 size_t os);
void lmz_dot16_q6_k_small_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o,
                                 size_t os);
void lmz_dot16_q5_0_one_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o,
                               size_t os);
void lmz_dot16_q8_0_one_avx512(int64_t k, const void *w, size_t rb, const uint8_t *acts, size_t st, int n, float *o,
                               size_t os);

/* AVX-512 activation quantizers: quantize_act32/act256 of quant.c, bit for bit. */
void lmz_quantize_act32_avx512(const float *x, int64_t n_blocks, lmz_act32 *out);
void lmz_quantize_act256_avx512(const float *x, int64_t n_blocks, lmz_act256 *out);

/* arm64 NEON single-token dot products (kernels/dot_neon.c). */
float lmz_dot_f32_neon(int64_t k, const void *w, const void *x);
float lmz_dot_f16_neon(int64_t k, const void *w, const void *x);
float lmz_dot_q4_0_neon(int64_t k, const void *w, const void *x);
float lmz_dot_q4_1_neon(int64_t k, const void *w, const void *x);
float lmz_dot_q5_0_neon(int64_t k, const void *w, const void *x);
float lmz_dot_q8_0_neon(int64_t k, const void *w, const void *x);
float lmz_dot_q4_k_neon(int64_t k, const void *w, const void *x);
float lmz_dot_q6_k_neon(int64_t k, const void *w, const void *x);
/* NEON versions of vecf.h's canonical float primitives (declared here, dispatched in vecf.c). */
float lmz_vec_dot_neon(const float *a, const float *b, int64_t n);
float lmz_vec_dot_f16_neon(const float *a, const uint16_t *b16, int64_t n);
void lmz_vec_axpy_f16_neon(float *y, float alpha, const uint16_t *x16, int64_t n);

/* The shared float part of each block contribution. Every implementation must use these. */
static inline float lmz_block_sym(float dw, float dx, int32_t sumi) { return (dw * dx) * (float)sumi; }
static inline float lmz_block_affine(float dw, float mw, const lmz_act32 *x, int32_t sumi) {
    return (dw * x->d) * (float)sumi + mw * x->s;
}
static inline float lmz_block_kquant(float d, float dmin, float dx, int32_t sumi, int32_t summ) {
    return (d * dx) * (float)sumi - (dmin * dx) * (float)summ;
}

/* Q4_K/Q5_K 6-bit scale and min of sub-block j (gguf-spec.md §2.8). */
static inline void lmz_kquant_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

#endif
