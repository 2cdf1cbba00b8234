/* test_determinism.c — the determinism contract (docs/determinism.md), end to end.
 *
 * The SHA-256 of all logits (float32 bits) of a fixed 512-token sequence must be the same
 * for 1, 2 and 8 threads, for the whole sequence in one batch, token by token, and in
 * chunks of 7 and of 64, and for the scalar reference kernels and the best SIMD level;
 * and it must equal the golden value below, computed once and committed: any machine that
 * computes different bits fails here.
 *
 * The best SIMD level runs the whole 3 x 4 matrix; the scalar reference and any lower SIMD
 * level run its two corners (1 thread in one batch; 8 threads in chunks of 7), except that
 * LMZ_TEST_FULL=1 runs the whole matrix on the scalar reference for the default model (it
 * is slow, and the suite must stay short in CI). Threading and batching sit above the
 * kernels, so every dimension value is still checked against the same golden hash. */
#include <stdlib.h>
#include <string.h>

#include "../src/kernels/quant.h"
#include "../src/util/error.h"
#include "../src/util/sha256.h"
#include "model_fixture.h"
#include "test.h"

static int read_ids(const char *path, int32_t *ids, int max) {
    size_t len;
    char *text = test_read_file(path, &len);
    if (!text) return -1;
    int n = 0;
    char *p = text, *end;
    while (n < max) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ids[n++] = (int32_t)v;
        p = end;
    }
    free(text);
    return n;
}

/* Hash of the logits of IDS evaluated in pieces of CHUNK tokens on THREADS threads. */
static int logits_hash(lmz_model *m, const int32_t *ids, int n, int chunk, int threads, char hex[65]) {
    lmz_ctx *c = lmz_ctx_create(m, n, 1, threads);
    float *logits = malloc((size_t)chunk * m->n_vocab * sizeof(float));
    if (!c || !logits) return -1;
    lmz_sha256 h;
    lmz_sha256_init(&h);
    for (int i = 0; i < n; i += chunk) {
        int k = n - i < chunk ? n - i : chunk;
        if (lmz_eval(c, 0, ids + i, k, i, logits)) return -1;
        lmz_sha256_update(&h, logits, (size_t)k * m->n_vocab * sizeof(float));
    }
    uint8_t d[32];
    lmz_sha256_final(&h, d);
    lmz_sha256_hex(d, hex);
    lmz_ctx_free(c);
    free(logits);
    return 0;
}

static void golden(const char *model_name, const char *expected, bool full_scalar, bool optional) {
    lmz_model *m = optional ? test_model_optional(model_name) : test_model(model_name);
    if (!m) return;
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/determinism_%s.ids", model_name);
    int32_t ids[512];
    int n = read_ids(path, ids, 512);
    CHECKF(n == 512, "%s: expected 512 token ids, read %d", path, n);
    const int threads[] = {1, 2, 8}, chunks[] = {512, 1, 7, 64};
    /* Every ISA level this CPU has: the best one over the whole matrix, the others at two
     * corners; the scalar reference over the whole matrix too when FULL_SCALAR and
     * LMZ_TEST_FULL=1 (it is the slowest part of the suite). */
    const char *full_env = getenv("LMZ_TEST_FULL");
    full_scalar = full_scalar && full_env && *full_env && strcmp(full_env, "0");
    enum lmz_isa best = lmz_isa_detect();
    for (int level = LMZ_ISA_SCALAR; level <= (int)best; level++) {
        const enum lmz_isa isa = (enum lmz_isa)level;
        for (int ti = 0; ti < 3; ti++) {
            for (int ci = 0; ci < 4; ci++) {
                bool corner = (ti == 0 && ci == 0) || (ti == 2 && ci == 2);
                bool full = isa == best || (isa == LMZ_ISA_SCALAR && full_scalar);
                if (!full && !corner) continue;
                char hex[65];
                lmz_isa_set(isa);
                int rc = logits_hash(m, ids, n, chunks[ci], threads[ti], hex);
                lmz_isa_set(best);
                CHECKF(!rc, "evaluation failed: %s", lmz_last_error());
                printf("    %-6s threads %d chunk %3d  %s\n", lmz_isa_name(isa), threads[ti], chunks[ci], hex);
                fflush(stdout);
                CHECKF(!strcmp(hex, expected), "logits hash differs from the golden value %s", expected);
            }
        }
    }
}

TEST_SLOW(determinism_golden_logits_smollm2) {
    golden("smollm2", "032b48310e3ca9756881f1d9cc00637f2a680d78cd1b3fefc74dfd739ea287c4", true, false);
}

TEST_SLOW(determinism_golden_logits_gemma3) { golden("gemma3", "c172f6b134e5e12b273e830c635c5085bf2ec9ae73fbb3d1e7e88c2d7a0228ed", false, false); }

TEST_SLOW(determinism_golden_logits_qwen25coder) { golden("qwen25coder", "e70911257212104474c657018301a81bc954ef6b3078f94ed10095e88558c8d0", false, true); }
