/* test_determinism.c — the determinism contract (docs/determinism.md), end to end.
 *
 * The SHA-256 of all logits (float32 bits) of a fixed 512-token sequence must be the same
 * for 1, 2 and 8 threads, for the whole sequence in one batch, token by token, and in
 * chunks of 7 and of 64, at the best SIMD level; and it must equal the golden value below,
 * computed once and committed: any machine that computes different bits fails here.
 *
 * The scalar reference and every lower SIMD level are held to a second golden value, the
 * hash of the logits of the sequence's first PREFIX tokens (which the best level's runs
 * check too), at two corners of the matrix: 1 thread in one batch, and 8 threads in chunks
 * of 7. The prefix spans two matmul token tiles and every kernel the model uses, at a
 * quarter of the cost: the scalar reference is the slowest part of the suite, and the
 * suite must stay short in CI. LMZ_TEST_FULL=1 runs the whole 512-token matrix at every
 * level instead. Each model's best level and lower levels are separate tests, so they run
 * side by side under `lmz_tests -j`. */
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

#define SEQUENCE 512
#define PREFIX 128

/* Hashes of the logits of IDS[0..N) evaluated in pieces of CHUNK tokens on THREADS threads:
 * of all N rows into FULL, and of the first PREFIX rows into PREFIX_HEX. */
static int logits_hash(lmz_model *m, const int32_t *ids, int n, int chunk, int threads, char full[65],
                       char prefix_hex[65]) {
    lmz_ctx *c = lmz_ctx_create(m, n, 1, threads);
    const size_t row = (size_t)m->n_vocab * sizeof(float);
    float *logits = malloc((size_t)chunk * row);
    if (!c || !logits) return -1;
    lmz_sha256 h, hp;
    lmz_sha256_init(&h);
    lmz_sha256_init(&hp);
    for (int i = 0; i < n; i += chunk) {
        int k = n - i < chunk ? n - i : chunk;
        if (lmz_eval(c, 0, ids + i, k, i, logits)) return -1;
        lmz_sha256_update(&h, logits, (size_t)k * row);
        if (i < PREFIX) lmz_sha256_update(&hp, logits, (size_t)(PREFIX - i < k ? PREFIX - i : k) * row);
    }
    uint8_t d[32];
    lmz_sha256_final(&h, d);
    lmz_sha256_hex(d, full);
    lmz_sha256_final(&hp, d);
    lmz_sha256_hex(d, prefix_hex);
    lmz_ctx_free(c);
    free(logits);
    return 0;
}

struct golden_hashes {
    const char *model;
    const char *full;   /* all SEQUENCE tokens */
    const char *prefix; /* the first PREFIX tokens */
    bool optional;      /* skipped, not failed, when the model is not fetched */
};

static const struct golden_hashes smollm2 = {
    "smollm2", "032b48310e3ca9756881f1d9cc00637f2a680d78cd1b3fefc74dfd739ea287c4",
    "af6ff492dec587a5a8367ab8942ef148f1517d2230a1be47e2c134216b8320bb", false};
static const struct golden_hashes gemma3 = {
    "gemma3", "c172f6b134e5e12b273e830c635c5085bf2ec9ae73fbb3d1e7e88c2d7a0228ed",
    "fcf1730c06f58c466b3a3b6b7e4e4f7d56f178b5ac88d5e030e60533182814c5", false};
static const struct golden_hashes qwen25coder = {
    "qwen25coder", "e70911257212104474c657018301a81bc954ef6b3078f94ed10095e88558c8d0",
    "62547e3c61e73f8843ca0501c68085aa2a2ad4f30f6019b2f7f5cffc87c710c9", true};

static bool full_requested(void) {
    const char *env = getenv("LMZ_TEST_FULL");
    return env && *env && strcmp(env, "0");
}

/* The matrix at ISA levels [FIRST, LAST]: every cell when FULL, else the two corners over
 * the prefix alone. */
static void golden(const struct golden_hashes *g, enum lmz_isa first, enum lmz_isa last, bool full) {
    lmz_model *m = g->optional ? test_model_optional(g->model) : test_model(g->model);
    if (!m) return;
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/determinism_%s.ids", g->model);
    int32_t ids[SEQUENCE];
    int n = read_ids(path, ids, SEQUENCE);
    CHECKF(n == SEQUENCE, "%s: expected %d token ids, read %d", path, SEQUENCE, n);
    const int threads[] = {1, 2, 8}, chunks[] = {SEQUENCE, 1, 7, 64};
    const enum lmz_isa best = lmz_isa_detect();
    for (int level = (int)first; level <= (int)last; level++) {
        const enum lmz_isa isa = (enum lmz_isa)level;
        for (int ti = 0; ti < 3; ti++) {
            for (int ci = 0; ci < 4; ci++) {
                const bool corner = (ti == 0 && ci == 0) || (ti == 2 && ci == 2);
                if (!full && !corner) continue;
                const int len = full ? SEQUENCE : PREFIX, chunk = chunks[ci] < len ? chunks[ci] : len;
                char hex[65], prefix_hex[65];
                lmz_isa_set(isa);
                int rc = logits_hash(m, ids, len, chunk, threads[ti], hex, prefix_hex);
                lmz_isa_set(best);
                CHECKF(!rc, "evaluation failed: %s", lmz_last_error());
                printf("    %-6s threads %d chunk %3d  %3d tokens %s  first %d %s\n", lmz_isa_name(isa), threads[ti], chunk,
                       len, full ? hex : "(prefix only)", PREFIX, prefix_hex);
                fflush(stdout);
                CHECKF(!strcmp(prefix_hex, g->prefix), "hash of the first %d tokens' logits differs from the golden value %s",
                       PREFIX, g->prefix);
                if (full) CHECKF(!strcmp(hex, g->full), "logits hash differs from the golden value %s", g->full);
            }
        }
    }
}

/* The best level over the whole matrix. */
static void golden_best(const struct golden_hashes *g) {
    const enum lmz_isa best = lmz_isa_detect();
    golden(g, best, best, true);
}

/* Every level below the best, the scalar reference first. */
static void golden_lower(const struct golden_hashes *g) {
    const enum lmz_isa best = lmz_isa_detect();
    if (best == LMZ_ISA_SCALAR) {
        test_skip("this CPU has no SIMD level above the scalar reference (the best-level test ran it)");
        return;
    }
    golden(g, LMZ_ISA_SCALAR, (enum lmz_isa)(best - 1), full_requested());
}

TEST_SLOW(determinism_golden_logits_smollm2) { golden_best(&smollm2); }
TEST_SLOW(determinism_golden_logits_smollm2_lower_isas) { golden_lower(&smollm2); }
TEST_SLOW(determinism_golden_logits_gemma3) { golden_best(&gemma3); }
TEST_SLOW(determinism_golden_logits_gemma3_lower_isas) { golden_lower(&gemma3); }
TEST_SLOW(determinism_golden_logits_qwen25coder) { golden_best(&qwen25coder); }
TEST_SLOW(determinism_golden_logits_qwen25coder_lower_isas) { golden_lower(&qwen25coder); }
