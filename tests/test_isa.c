/* test_isa.c — the ISA levels the kernel tests loop over (SCALAR .. lmz_isa_detect()), by
 * name, and a check that each SIMD level really dispatches to its own kernels (so that
 * "SIMD equals scalar" is not scalar compared with itself). On arm64 (make test-arm64,
 * under qemu) this is where the NEON level shows up. */
#include <stdlib.h>
#include <string.h>

#include "../src/kernels/quant.h"
#include "test.h"

TEST(kernels_isa_levels_and_dispatch) {
    enum lmz_isa best = lmz_isa_detect();
    printf("    isa levels tested:");
    for (int isa = LMZ_ISA_SCALAR; isa <= (int)best; isa++) printf(" %s", lmz_isa_name((enum lmz_isa)isa));
    printf("\n");

    enum lmz_isa parsed;
    CHECK(lmz_isa_parse("scalar", &parsed) && parsed == LMZ_ISA_SCALAR);
    CHECK(!lmz_isa_parse("sse9", &parsed));
    lmz_isa_set(LMZ_ISA_SCALAR);
    CHECK(lmz_dot_for(LMZ_Q4_0) == lmz_dot_q4_0_scalar);
#if defined(__aarch64__)
    const char *env = getenv("LMZ_ISA");
    if (!env || strcmp(env, "scalar")) CHECKF(best == LMZ_ISA_NEON, "arm64 without the NEON level (%s)", lmz_isa_name(best));
    CHECK(lmz_isa_parse("neon", &parsed) && parsed == LMZ_ISA_NEON);
    CHECK(!strcmp(lmz_isa_name(LMZ_ISA_NEON), "neon"));
    lmz_isa_set(LMZ_ISA_NEON);
    CHECK(lmz_dot_for(LMZ_F32) == lmz_dot_f32_neon && lmz_dot_for(LMZ_F16) == lmz_dot_f16_neon);
    CHECK(lmz_dot_for(LMZ_Q4_0) == lmz_dot_q4_0_neon && lmz_dot_for(LMZ_Q4_1) == lmz_dot_q4_1_neon);
    CHECK(lmz_dot_for(LMZ_Q5_0) == lmz_dot_q5_0_neon && lmz_dot_for(LMZ_Q8_0) == lmz_dot_q8_0_neon);
    CHECK(lmz_dot_for(LMZ_Q4_K) == lmz_dot_q4_k_neon && lmz_dot_for(LMZ_Q6_K) == lmz_dot_q6_k_neon);
#elif defined(__x86_64__)
    CHECK(lmz_isa_parse("avx2", &parsed) && parsed == LMZ_ISA_AVX2);
    CHECK(lmz_isa_parse("avx512", &parsed) && parsed == LMZ_ISA_AVX512);
    CHECK(!strcmp(lmz_isa_name(LMZ_ISA_AVX2), "avx2"));
    if (best >= LMZ_ISA_AVX2) {
        lmz_isa_set(LMZ_ISA_AVX2);
        CHECK(lmz_dot_for(LMZ_Q4_0) == lmz_dot_q4_0_avx2 && lmz_dot_for(LMZ_Q6_K) == lmz_dot_q6_k_avx2);
    }
#endif
    lmz_isa_set(best);
}
