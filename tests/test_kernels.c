/* test_kernels.c — the kernel contract: every ISA gives the scalar reference's bits, the
 * reference agrees with exact dequantization, and lmz's own math functions and fp16
 * conversion are correct and machine-independent (golden hashes of their outputs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/kernels/attention.h"
#include "../src/kernels/quant.h"
#include "../src/kernels/vecf.h"
#include "../src/util/fp16.h"
#include "../src/util/mathfn.h"
#include "../src/util/sha256.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_float(float scale) { return ((float)(rnd() % 2000001) / 1000000.0f - 1.0f) * scale; }

static void put_fp16(uint8_t *p, float v) {
    uint16_t h = lmz_f32_to_fp16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Random weight rows of TYPE with sane fp16 scales. */
static void fill_weights(uint32_t type, uint8_t *w, size_t row_bytes, int rows, int64_t k) {
    for (size_t i = 0; i < row_bytes * rows; i++) w[i] = (uint8_t)rnd();
    uint32_t be, bb;
    lmz_type_geometry(type, &be, &bb);
    for (int r = 0; r < rows; r++) {
        uint8_t *row = w + r * row_bytes;
        for (int64_t b = 0; b < k / be; b++) {
            uint8_t *blk = row + b * bb;
            switch (type) {
            case LMZ_Q4_0: case LMZ_Q5_0: case LMZ_Q8_0: put_fp16(blk, rnd_float(0.05f)); break;
            case LMZ_Q4_1: case LMZ_Q5_1: case LMZ_Q4_K: case LMZ_Q5_K:
                put_fp16(blk, rnd_float(0.05f));
                put_fp16(blk + 2, rnd_float(0.05f));
                break;
            case LMZ_Q6_K: put_fp16(blk + 208, rnd_float(0.05f)); break;
            case LMZ_F16: put_fp16(blk, rnd_float(2.0f)); break;
            case LMZ_BF16: {
                uint32_t bits = lmz_f32_to_bits(rnd_float(2.0f));
                blk[0] = (uint8_t)(bits >> 16);
                blk[1] = (uint8_t)(bits >> 24);
                break;
            }
            case LMZ_F32: {
                float v = rnd_float(2.0f);
                memcpy(blk, &v, 4);
                break;
            }
            }
        }
    }
}

static const uint32_t all_types[] = {LMZ_F32, LMZ_F16, LMZ_BF16, LMZ_Q4_0, LMZ_Q4_1, LMZ_Q5_0,
                                     LMZ_Q5_1, LMZ_Q8_0, LMZ_Q4_K, LMZ_Q5_K, LMZ_Q6_K};

TEST(kernels_simd_equals_scalar_bit_for_bit) {
    /* 37 rows: two groups for the 16-row kernels plus a remainder; 70 tokens: more than
     * one 64-token tile; 1..8 tokens: the small-batch kernels; one token of tiny values and
     * one all-zero block. Rows of 3 super-blocks (24 blocks), and of 33 blocks for the
     * 32-element types (the one-token Q5_0/Q8_0 kernel takes blocks in pairs). */
    enum { ROWS = 37, N_TOK = 70, K_MAX = 1056 };
    static const int64_t ks[] = {768, K_MAX};
    enum lmz_isa best = lmz_isa_detect();
    if (best == LMZ_ISA_SCALAR) printf("    (this CPU has no SIMD level: only the scalar path is exercised)\n");
    float *ref = malloc(sizeof(float) * ROWS * N_TOK), *got = malloc(sizeof(float) * ROWS * N_TOK);
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
            const int64_t k = ks[ki];
            uint32_t type = all_types[ti], be, bb;
            lmz_type_geometry(type, &be, &bb);
            if (k % be) continue;
            size_t row_bytes = (size_t)(k / be) * bb, act_bytes = lmz_act_row_bytes(type, k);
            uint8_t *w = malloc(row_bytes * ROWS), *acts = malloc(act_bytes * N_TOK);
            float *x = malloc(sizeof(float) * k * N_TOK);
            fill_weights(type, w, row_bytes, ROWS, k);
            for (int t = 0; t < N_TOK; t++) {
                for (int64_t i = 0; i < k; i++) x[t * k + i] = rnd_float(t == 3 ? 1e-3f : 3.0f);
                if (t == 5) memset(x + t * k, 0, sizeof(float) * 32); /* an all-zero block */
                lmz_quantize_act_row(type, x + t * k, k, acts + t * act_bytes);
            }
            /* ref[t][r], as a matmul lays it out */
            lmz_isa_set(LMZ_ISA_SCALAR);
            for (int r = 0; r < ROWS; r++) lmz_dotn(type, k, w + r * row_bytes, acts, act_bytes, N_TOK, ref + r, ROWS);
            /* the reference agrees with exact dequantization within quantization noise */
            for (int r = 0; r < 5; r++) {
                float deq[K_MAX];
                lmz_dequantize_row(type, w + r * row_bytes, k, deq);
                for (int t = 0; t < 9; t++) {
                    double exact = 0, mag = 0;
                    for (int64_t i = 0; i < k; i++) {
                        exact += (double)deq[i] * x[t * k + i];
                        mag += fabs((double)deq[i] * x[t * k + i]);
                    }
                    CHECKF(fabs(ref[t * ROWS + r] - exact) <= 0.02 * mag + 1e-6,
                           "%s row %d token %d: dot %g vs exact %g (mag %g)", lmz_type_name(type), r, t,
                           ref[t * ROWS + r], exact, mag);
                }
            }
            static const int tokens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 64, 70};
            for (int isa = LMZ_ISA_SCALAR; isa <= (int)best; isa++) {
                lmz_isa_set((enum lmz_isa)isa);
                for (size_t ni = 0; ni < sizeof tokens / sizeof tokens[0]; ni++) {
                    int n = tokens[ni];
                    /* per row (lmz_dotn) and as a matmul (lmz_matmul_rows, 16-row kernels) */
                    for (int path = 0; path < 2; path++) {
                        memset(got, 0xff, sizeof(float) * ROWS * N_TOK);
                        if (path == 0)
                            for (int r = 0; r < ROWS; r++)
                                lmz_dotn(type, k, w + r * row_bytes, acts, act_bytes, n, got + r, ROWS);
                        else
                            lmz_matmul_rows(type, k, w, row_bytes, ROWS, acts, act_bytes, n, got, ROWS);
                        for (int t = 0; t < n; t++)
                            for (int r = 0; r < ROWS; r++)
                                CHECKF(lmz_f32_to_bits(got[t * ROWS + r]) == lmz_f32_to_bits(ref[t * ROWS + r]),
                                       "%s %s %s k=%lld row %d token %d of %d: %a != scalar %a",
                                       lmz_isa_name((enum lmz_isa)isa), lmz_type_name(type), path ? "matmul" : "dotn",
                                       (long long)k, r, t, n, got[t * ROWS + r], ref[t * ROWS + r]);
                    }
                }
            }
            free(w);
            free(acts);
            free(x);
        }
    }
    free(ref);
    free(got);
    lmz_isa_set(best);
}

TEST(kernels_activation_quantization_same_on_every_isa) {
    /* Random rows plus the cases that decide a scale: an all-zero block, +m and -m tied for
     * the largest magnitude (the first one wins), a single spike, subnormals, -0.0. */
    enum { K = 1024 };
    static float x[8][K];
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < K; i++) x[r][i] = rnd_float(r == 1 ? 1e-3f : 5.0f);
    memset(x[2], 0, sizeof x[2]);
    x[3][7] = -9.0f, x[3][40] = 9.0f, x[3][300] = 9.0f, x[3][290] = -9.0f; /* ties, in both orders */
    for (int i = 0; i < K; i++) x[4][i] = i % 97 == 0 ? 1e6f : 0.0f;
    for (int i = 0; i < K; i++) x[5][i] = (i & 1 ? -1.0f : 1.0f) * 1e-40f * (float)(i % 13);
    for (int i = 0; i < K; i++) x[6][i] = i % 3 ? -0.0f : 0.0f;
    x[7][0] = -5.0f;
    enum lmz_isa best = lmz_isa_detect();
    static const uint32_t types[] = {LMZ_Q4_1, LMZ_Q6_K};
    for (size_t ti = 0; ti < 2; ti++) {
        size_t bytes = lmz_act_row_bytes(types[ti], K);
        uint8_t *ref = malloc(bytes), *got = malloc(bytes);
        for (int r = 0; r < 8; r++) {
            lmz_isa_set(LMZ_ISA_SCALAR);
            lmz_quantize_act_row(types[ti], x[r], K, ref);
            if (r == 5) { /* subnormals overflow the inverse scale: every value quantizes to 0 */
                bool zero = true;
                for (int b = 0; b < (types[ti] == LMZ_Q4_1 ? K / 32 : K / 256); b++) {
                    const int8_t *q = types[ti] == LMZ_Q4_1 ? ((const lmz_act32 *)ref)[b].q : ((const lmz_act256 *)ref)[b].q;
                    for (int i = 0; i < (types[ti] == LMZ_Q4_1 ? 32 : 256); i++) zero = zero && q[i] == 0;
                }
                CHECKF(zero, "%s activations of subnormals are not all 0", lmz_type_name(types[ti]));
            }
            for (int isa = LMZ_ISA_AVX2; isa <= (int)best; isa++) {
                lmz_isa_set((enum lmz_isa)isa);
                memset(got, 0x5a, bytes);
                lmz_quantize_act_row(types[ti], x[r], K, got);
                CHECKF(memcmp(ref, got, bytes) == 0, "%s activations of %s, row %d differ from scalar",
                       lmz_isa_name((enum lmz_isa)isa), lmz_type_name(types[ti]), r);
            }
        }
        free(ref);
        free(got);
    }
    lmz_isa_set(best);
}

TEST(kernels_attention_same_on_every_isa) {
    /* Head sizes of the three architectures, ranges shorter and longer than one 8-position
     * pass and not multiples of 8, a window that does not start at 0, and scores that make
     * exp underflow for most positions. */
    enum { POS = 300, STRIDE = 3 * 256, HEADS = 5 };
    uint16_t *k = malloc(sizeof(uint16_t) * POS * STRIDE), *v = malloc(sizeof(uint16_t) * POS * STRIDE);
    static float q[HEADS * 256], qg[HEADS * 256], w[HEADS * POS], ref[HEADS * 256], got[HEADS * 256];
    static const int dims[] = {64, 128, 256, 40, 80};
    static const int ranges[][2] = {{0, 0}, {0, 6}, {0, 7}, {0, 8}, {3, 77}, {0, POS - 1}, {171, POS - 1}};
    enum lmz_isa best = lmz_isa_detect();
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const int d = dims[di];
        for (int sharp = 0; sharp < 2; sharp++) {
            for (size_t i = 0; i < (size_t)POS * STRIDE; i++) {
                k[i] = lmz_f32_to_fp16(rnd_float(sharp ? 8.0f : 1.0f));
                v[i] = lmz_f32_to_fp16(rnd_float(1.0f));
            }
            for (int i = 0; i < HEADS * 256; i++) q[i] = rnd_float(sharp ? 8.0f : 1.0f);
            for (size_t ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++) {
                const int p0 = ranges[ri][0], p1 = ranges[ri][1];
                for (int h = 0; h < HEADS; h++)
                    lmz_attend_head_scalar(q + h * 256, k + 256, v + 256, STRIDE, p0, p1, d, 0.125f, w, ref + h * d);
                for (int isa = LMZ_ISA_AVX2; isa <= (int)best; isa++) {
                    lmz_isa_set((enum lmz_isa)isa);
                    /* one head, and runs of 2 to 5 heads sharing K/V (grouped-query attention:
                     * each count the AVX-512 kernel has a variant for, and 4 + 1) */
                    for (int nh = 1; nh <= HEADS; nh++) {
                        memset(got, 0xff, sizeof got);
                        if (nh == 1) lmz_attend_head(q, k + 256, v + 256, STRIDE, p0, p1, d, 0.125f, w, got);
                        else {
                            for (int h = 0; h < nh; h++) memcpy(qg + h * d, q + h * 256, sizeof(float) * d);
                            lmz_attend_heads(nh, qg, k + 256, v + 256, STRIDE, p0, p1, d, 0.125f, w, got);
                        }
                        for (int i = 0; i < nh * d; i++)
                            CHECKF(lmz_f32_to_bits(got[i]) == lmz_f32_to_bits(ref[i]),
                                   "%s attention %d head(s) d=%d positions %d..%d element %d: %a != scalar %a",
                                   lmz_isa_name((enum lmz_isa)isa), nh, d, p0, p1, i, got[i], ref[i]);
                    }
                }
                lmz_isa_set(best);
            }
        }
    }
    free(k);
    free(v);
}

TEST(kernels_canonical_float_reductions_match_across_isas) {
    float a[203], b[203];
    uint16_t h[203];
    for (int i = 0; i < 203; i++) {
        a[i] = rnd_float(10.0f);
        b[i] = rnd_float(10.0f);
        h[i] = lmz_f32_to_fp16(rnd_float(10.0f));
    }
    enum lmz_isa best = lmz_isa_detect();
    for (int n = 0; n <= 203; n += 29) {
        lmz_isa_set(LMZ_ISA_SCALAR);
        float d = lmz_vec_dot(a, b, n), dh = lmz_vec_dot_f16(a, h, n);
        float y_ref[203];
        memcpy(y_ref, b, sizeof b);
        lmz_vec_axpy_f16(y_ref, 0.37f, h, n);
        for (int isa = LMZ_ISA_AVX2; isa <= (int)best; isa++) {
            lmz_isa_set((enum lmz_isa)isa);
            CHECK(lmz_f32_to_bits(lmz_vec_dot(a, b, n)) == lmz_f32_to_bits(d));
            CHECK(lmz_f32_to_bits(lmz_vec_dot_f16(a, h, n)) == lmz_f32_to_bits(dh));
            float y[203];
            memcpy(y, b, sizeof b);
            lmz_vec_axpy_f16(y, 0.37f, h, n);
            CHECK(!memcmp(y, y_ref, sizeof y));
        }
    }
    /* exp-based kernels, over a range that crosses both saturation limits */
    float e_ref[203], e[203], g_ref[203], g[203], up[203];
    for (int i = 0; i < 203; i++) {
        e_ref[i] = (float)(i - 101) * 1.7f;
        g_ref[i] = (float)(i - 101) * 0.97f;
        up[i] = rnd_float(3.0f);
    }
    memcpy(e, e_ref, sizeof e);
    memcpy(g, g_ref, sizeof g);
    lmz_isa_set(LMZ_ISA_SCALAR);
    float sum_ref = lmz_vec_exp_sum(e_ref, 203, 2.5f);
    lmz_vec_swiglu(g_ref, up, 203);
    for (int i = 0; i < 203; i++) CHECK(lmz_f32_to_bits(e_ref[i]) == lmz_f32_to_bits(lmz_expf((float)(i - 101) * 1.7f - 2.5f)));
    for (int isa = LMZ_ISA_AVX2; isa <= (int)best; isa++) {
        float e2[203], g2[203];
        memcpy(e2, e, sizeof e);
        memcpy(g2, g, sizeof g);
        lmz_isa_set((enum lmz_isa)isa);
        CHECK(lmz_f32_to_bits(lmz_vec_exp_sum(e2, 203, 2.5f)) == lmz_f32_to_bits(sum_ref));
        CHECK(!memcmp(e2, e_ref, sizeof e2));
        lmz_vec_swiglu(g2, up, 203);
        CHECK(!memcmp(g2, g_ref, sizeof g2));
    }
    lmz_isa_set(best);
}

TEST(kernels_fp16_conversion_exact) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lmz_fp16_to_f32((uint16_t)h);
        bool is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (is_nan) CHECK(f != f);
        else CHECKF(lmz_f32_to_fp16(f) == h, "fp16 %04x -> %a -> %04x", h, f, lmz_f32_to_fp16(f));
    }
    /* round to nearest even at the midpoints, overflow to inf, underflow to zero */
    CHECK_EQ_INT(lmz_f32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);              /* tie -> even (down) */
    CHECK_EQ_INT(lmz_f32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);              /* tie -> even (up) */
    CHECK_EQ_INT(lmz_f32_to_fp16(65520.0f), 0x7c00);
    CHECK_EQ_INT(lmz_f32_to_fp16(65519.0f), 0x7bff);
    CHECK_EQ_INT(lmz_f32_to_fp16(-1e-8f), 0x8000);
    CHECK_EQ_INT(lmz_f32_to_fp16(5.9604645e-08f), 0x0001);                  /* smallest subnormal */
}

TEST(kernels_math_functions_accurate) {
    double worst_exp = 0, worst_trig = 0, worst_tanh = 0;
    for (double x = -86.0; x < 88.0; x += 0.0137) {
        double e = fabs((double)lmz_expf((float)x) - exp((double)(float)x)) / exp((double)(float)x);
        if (e > worst_exp) worst_exp = e;
    }
    for (double x = -70000.0; x < 70000.0; x += 0.731) {
        double e = fmax(fabs(lmz_sin(x) - sin(x)), fabs(lmz_cos(x) - cos(x)));
        if (e > worst_trig) worst_trig = e;
    }
    for (double x = -12; x < 12; x += 0.001) {
        double e = fabs((double)lmz_tanhf((float)x) - tanh((double)(float)x));
        if (e > worst_tanh) worst_tanh = e;
    }
    CHECKF(worst_exp < 4e-7, "expf relative error %g", worst_exp);
    CHECKF(worst_trig < 1e-14, "sin/cos error %g", worst_trig);
    CHECKF(worst_tanh < 3e-7, "tanh error %g", worst_tanh);
    CHECK(lmz_expf(-100.0f) == 0.0f && isinf(lmz_expf(100.0f)) && lmz_expf(0.0f) == 1.0f);
    CHECK(fabs(lmz_log(10.0) - log(10.0)) < 1e-15 && fabs(lmz_pow(1e6, -2.0 / 64) - pow(1e6, -2.0 / 64)) < 1e-15);
}

/* The bits of lmz's math functions over a grid, hashed: identical on every machine, compiler
 * and ISA (this is why they exist). A change here changes every archive: bump the format. */
TEST(kernels_math_functions_golden_bits) {
    lmz_sha256 h;
    lmz_sha256_init(&h);
    for (int i = -40000; i <= 40000; i++) {
        float x = (float)i * 0.00271f;
        float v[4] = {lmz_expf(x), lmz_tanhf(x), lmz_siluf(x), lmz_geluf(x)};
        double d[2] = {lmz_sin((double)i * 0.37), lmz_cos((double)i * 0.37)};
        lmz_sha256_update(&h, v, sizeof v);
        lmz_sha256_update(&h, d, sizeof d);
    }
    uint8_t digest[32];
    char hex[65];
    lmz_sha256_final(&h, digest);
    lmz_sha256_hex(digest, hex);
    printf("    math golden %s\n", hex);
    CHECKF(!strcmp(hex, "4f4f494373a1003eed0ea1659ce381c1330b1030961165ac3b7eeb618170f7d0"), "math function bits changed: %s", hex);
}

TEST(kernels_sha256_known_answers) {
    const char *vectors[][2] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < 3; i++) {
        lmz_sha256 h;
        uint8_t d[32];
        char hex[65];
        lmz_sha256_init(&h);
        /* feed byte by byte to exercise the block buffering */
        for (const char *p = vectors[i][0]; *p; p++) lmz_sha256_update(&h, p, 1);
        lmz_sha256_final(&h, d);
        lmz_sha256_hex(d, hex);
        CHECKF(!strcmp(hex, vectors[i][1]), "sha256(\"%s\") = %s", vectors[i][0], hex);
    }
}
