/* test_lora.c — LoRA adapters (src/lora/, applied in src/model/forward.c).
 *
 * The adapter term y = W x + scale * B (A x) against a double-precision reference and its
 * invariance to threads and token grouping; the scale rule; llama.cpp's GGUF adapter format
 * written and read back (F32 exactly, F16 with the adapter rounded to what the file holds);
 * every refusal of the loader, naming the tensor at fault; logits that change with an
 * adapter and do not with B = 0; the determinism contract with an adapter (threads x
 * batchings x ISA, as test_determinism.c); every architecture lmz runs; and the compressor:
 * round trip with an adapter and refusal without it or with another one, in the library and
 * through ./lmz (built by `make` before `make test`, as in test_corruption.c); and the
 * automatic choice among a folder's adapters (--lora-dir), which must pick the candidate
 * that codes the input's beginning smallest, record it, and find it again to decompress.
 *
 * Adapters are random: the tests check that lmz computes an adapter's term exactly and
 * deterministically, not that it helps. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../src/codec/adapter_choice.h"
#include "../src/codec/codec.h"
#include "../src/coder/bytebuf.h"
#include "../src/kernels/quant.h"
#include "../src/kernels/vecf.h"
#include "../src/lora/lora.h"
#include "../src/runtime/threadpool.h"
#include "../src/util/error.h"
#include "../src/util/sha256.h"
#include "model_fixture.h"
#include "test.h"
#include "test_files.h"
#include "tiny_model.h"

/* ---------------- helpers ---------------- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-mag, mag). */
static float rng_uniform(uint64_t *s, float mag) { return mag * ((float)(rng_next(s) >> 40) / (float)(1 << 23) - 1.0f); }

static size_t a_elems(const lmz_lora_weight *w) { return (size_t)w->rank * (size_t)(w->embedding ? w->n_out : w->n_in); }
static size_t b_elems(const lmz_lora_weight *w) { return (size_t)w->rank * (size_t)(w->embedding ? w->n_in : w->n_out); }

static void fill_random(lmz_lora_weight *w, uint64_t *rng, float mag) {
    for (size_t i = 0; i < a_elems(w); i++) w->a[i] = rng_uniform(rng, mag);
    for (size_t i = 0; i < b_elems(w); i++) w->b[i] = rng_uniform(rng, mag);
}

static const char *const projection[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                         "ffn_gate", "ffn_up", "ffn_down"};

/* A random adapter of RANK on every projection of every layer of M, on token_embd.weight,
 * and on output.weight where M has one; entries uniform in +-MAG. NULL after a failure. */
static lmz_lora *random_adapter(const lmz_model *m, uint64_t seed, int rank, float alpha, float mag) {
    lmz_lora *l = lmz_lora_new(m, alpha);
    uint64_t rng = seed;
    char name[64];
    for (int i = 0; l && i < m->n_layer * 7 + 2; i++) {
        if (i < m->n_layer * 7) snprintf(name, sizeof name, "blk.%d.%s.weight", i / 7, projection[i % 7]);
        else if (i == m->n_layer * 7) snprintf(name, sizeof name, "token_embd.weight");
        else if (gguf_find_tensor(m->file, "output.weight")) snprintf(name, sizeof name, "output.weight");
        else break;
        lmz_lora_weight *w = lmz_lora_add(l, name, rank);
        if (!w) {
            test_fail(__FILE__, __LINE__, "adding %s: %s", name, lmz_last_error());
            lmz_lora_free(l);
            return NULL;
        }
        fill_random(w, &rng, mag);
    }
    return l;
}

static char tmp_dir[TEST_PATH_MAX];

/* The test run's temporary directory (created once, removed at exit), or NULL. */
static const char *tmp(void) {
    return tmp_dir[0] || test_make_dir("lora", tmp_dir) ? tmp_dir : NULL;
}

/* PATH = the temporary directory / NAME. */
static const char *tmp_path(const char *name, char path[4200]) {
    if (!tmp()) return NULL;
    snprintf(path, 4200, "%s/%s", tmp_dir, name);
    return path;
}

/* Saves L as NAME in the temporary directory; the path, or NULL after a failure. */
static const char *save_tmp(lmz_lora *l, const char *name, uint32_t type, char path[4200]) {
    if (!tmp_path(name, path)) return NULL;
    if (lmz_lora_save(l, path, type) == 0) return path;
    test_fail(__FILE__, __LINE__, "saving %s: %s", name, lmz_last_error());
    return NULL;
}

static bool contains_nocase(const char *hay, const char *needle) {
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, strlen(needle))) return true;
    return false;
}

static void fp_hex(const uint8_t *sha, char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* Logits of TOKENS on M with adapter L (NULL: none), THREADS threads, fed in pieces of CHUNK
 * tokens; n * n_vocab floats (malloc'd), or NULL after a failure. */
static float *logits_of(const lmz_model *m, const lmz_lora *l, const int32_t *tokens, int n, int threads, int chunk) {
    lmz_ctx *c = lmz_ctx_create(m, n, 1, threads);
    float *out = malloc((size_t)n * m->n_vocab * sizeof(float));
    bool ok = c && out && lmz_ctx_set_lora(c, l) == 0;
    for (int i = 0; ok && i < n; i += chunk)
        ok = lmz_eval(c, 0, tokens + i, n - i < chunk ? n - i : chunk, i, out + (size_t)i * m->n_vocab) == 0;
    lmz_ctx_free(c);
    if (ok) return out;
    test_fail(__FILE__, __LINE__, "evaluation: %s", lmz_last_error());
    free(out);
    return NULL;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++)
        if (fabsf(a[i] - b[i]) > d) d = fabsf(a[i] - b[i]);
    return d;
}

/* Token ids of TEXT (without special tokens) on TOK, at most MAX; the count. */
static int tokens_of(const lmz_tokenizer *tok, const char *text, int32_t *ids, int max) {
    int32_t *all;
    size_t n;
    if (lmz_tokenize(tok, text, strlen(text), false, false, &all, &n)) return -1;
    if (n > (size_t)max) n = (size_t)max;
    memcpy(ids, all, n * sizeof *ids);
    free(all);
    return (int)n;
}

static const char sample_text[] =
    "A LoRA adapter adds a low-rank update to the weights of a model: the projection W x becomes W x plus a "
    "scaled B times A x, where A maps the input to a handful of dimensions and B maps them back. Training only "
    "A and B adapts a model to a domain at a small cost, and the compressor must compute the very same term "
    "when it decodes as when it encoded, or the archive would decode to garbage.";

/* ---------------- the adapter term ---------------- */

/* lmz_vec_dot_rows (B's many short rows, several at a time) gives each row the canonical dot
 * product's bits at every ISA level, for every length tail and row count, with zeros of both
 * signs, infinities and NaNs among the values. */
TEST(lora_dot_rows_are_canonical_dots) {
    enum lmz_isa best = lmz_isa_current();
    uint64_t rng = 99;
    float rows[19 * 37], x[37], out[19];
    int bad = 0;
    for (int len = 1; len <= 37 && !bad; len++) {
        for (int n_rows = 1; n_rows <= 19 && !bad; n_rows++) {
            for (int i = 0; i < n_rows * len; i++) rows[i] = rng_uniform(&rng, 4.0f);
            for (int i = 0; i < len; i++) x[i] = rng_uniform(&rng, 4.0f);
            if (len % 5 == 0) rows[len - 1] = -0.0f, x[0] = -0.0f;
            if (len % 7 == 0 && n_rows > 3) rows[2 * len + len / 2] = INFINITY, rows[3 * len] = NAN;
            for (int level = LMZ_ISA_SCALAR; level <= (int)best; level++) {
                lmz_isa_set((enum lmz_isa)level);
                lmz_vec_dot_rows(rows, n_rows, len, x, out);
                for (int j = 0; j < n_rows; j++) {
                    float want = lmz_dot_canon_scalar(rows + j * len, x, len);
                    if (memcmp(&want, &out[j], sizeof want)) {
                        test_fail(__FILE__, __LINE__, "%s: len %d, %d rows: row %d %a, canonical %a",
                                  lmz_isa_name((enum lmz_isa)level), len, n_rows, j, out[j], want);
                        bad = 1;
                    }
                }
            }
            lmz_isa_set(best);
        }
    }
}

/* lmz_lora_apply against a double-precision evaluation of y0 + scale * B (A x), and the same
 * bits for 1, 2 and 8 threads and for the tokens given together or one at a time. Odd sizes
 * exercise the 8-lane tails of the canonical dot product. */
TEST(lora_apply_matches_double_reference) {
    enum { N_IN = 75, N_OUT = 133, RANK = 5, N_TOK = 9, LDY = N_OUT + 3 };
    static float a[RANK * N_IN], b[N_OUT * RANK], x[N_TOK * N_IN], y0[N_TOK * LDY], y[N_TOK * LDY],
        first[N_TOK * LDY], z[N_TOK * RANK];
    uint64_t rng = 42;
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) a[i] = rng_uniform(&rng, 0.5f);
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) b[i] = rng_uniform(&rng, 0.5f);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = rng_uniform(&rng, 2.0f);
    for (size_t i = 0; i < sizeof y0 / sizeof y0[0]; i++) y0[i] = rng_uniform(&rng, 3.0f);
    lmz_lora_weight w = {.name = "test", .rank = RANK, .n_in = N_IN, .n_out = N_OUT, .a = a, .b = b, .scale = 0.37f};

    double worst = 0;
    static const int threads[] = {1, 2, 8};
    for (int ti = 0; ti < 3; ti++) {
        lmz_pool *pool = lmz_pool_create(threads[ti]);
        CHECK(pool);
        memcpy(y, y0, sizeof y);
        lmz_lora_apply(&w, x, N_TOK, y, LDY, z, pool);
        lmz_pool_free(pool);
        if (ti == 0) memcpy(first, y, sizeof y);
        CHECKF(!memcmp(first, y, sizeof y), "%d threads give other bits than 1", threads[ti]);
    }
    for (int t = 0; t < N_TOK; t++) {
        for (int j = N_OUT; j < LDY; j++) CHECKF(y[t * LDY + j] == y0[t * LDY + j], "column %d beyond n_out written", j);
        double zr[RANK], zabs[RANK];
        for (int r = 0; r < RANK; r++) {
            zr[r] = zabs[r] = 0;
            for (int i = 0; i < N_IN; i++) {
                zr[r] += (double)a[r * N_IN + i] * x[t * N_IN + i];
                zabs[r] += fabs((double)a[r * N_IN + i] * x[t * N_IN + i]);
            }
        }
        for (int j = 0; j < N_OUT; j++) {
            double d = 0, bound = 0;
            for (int r = 0; r < RANK; r++) {
                d += (double)b[j * RANK + r] * zr[r];
                bound += fabs((double)b[j * RANK + r]) * zabs[r];
            }
            double ref = (double)y0[t * LDY + j] + (double)w.scale * d;
            /* f32 sums of n terms err by at most ~n eps of the sum of magnitudes */
            double tol = 1e-7 * (N_IN + RANK + 4) * (fabs(y0[t * LDY + j]) + w.scale * bound);
            double err = fabs((double)y[t * LDY + j] - ref);
            if (err / tol > worst) worst = err / tol;
            CHECKF(err <= tol, "token %d output %d: %.9g, reference %.9g (tolerance %.3g)", t, j, y[t * LDY + j], ref,
                   tol);
        }
    }
    printf("    largest error %.3f of the tolerance\n", worst);

    /* One token at a time: the same bits (the batch invariance the codec relies on). */
    memcpy(y, y0, sizeof y);
    for (int t = 0; t < N_TOK; t++) lmz_lora_apply(&w, x + t * N_IN, 1, y + t * LDY, LDY, z, NULL);
    CHECK(!memcmp(first, y, sizeof y));

    /* The embedding form: x += scale * B a[token]. */
    enum { E = 21, V = 11 };
    static float ea[V * RANK], eb[E * RANK], ex[E], ex0[E];
    for (size_t i = 0; i < sizeof ea / sizeof ea[0]; i++) ea[i] = rng_uniform(&rng, 1.0f);
    for (size_t i = 0; i < sizeof eb / sizeof eb[0]; i++) eb[i] = rng_uniform(&rng, 1.0f);
    for (size_t i = 0; i < E; i++) ex[i] = ex0[i] = rng_uniform(&rng, 1.0f);
    lmz_lora_weight ew = {.name = "token_embd.weight", .embedding = true, .rank = RANK, .n_in = E, .n_out = V,
                          .a = ea, .b = eb, .scale = 2.5f};
    lmz_lora_apply_embedding(&ew, 7, ex);
    for (int i = 0; i < E; i++) {
        double d = 0, bound = 0;
        for (int r = 0; r < RANK; r++) {
            d += (double)eb[i * RANK + r] * ea[7 * RANK + r];
            bound += fabs((double)eb[i * RANK + r] * ea[7 * RANK + r]);
        }
        double ref = ex0[i] + 2.5 * d, tol = 1e-7 * (RANK + 4) * (fabs(ex0[i]) + 2.5 * bound);
        CHECKF(fabs(ex[i] - ref) <= tol, "embedding element %d: %.9g, reference %.9g", i, ex[i], ref);
    }
}

/* ---------------- the file format ---------------- */

/* Replaces the first FROM_LEN bytes equal to FROM in DATA by TO (as long); false if absent. */
static bool patch(uint8_t *data, size_t len, const void *from, size_t from_len, const void *to) {
    for (size_t i = 0; i + from_len <= len; i++)
        if (!memcmp(data + i, from, from_len)) {
            memcpy(data + i, to, from_len);
            return true;
        }
    return false;
}

/* A GGUF string value as the file stores it: u64 length, then the bytes. */
static size_t gguf_string(const char *s, uint8_t out[72]) {
    uint64_t n = strlen(s);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(n >> (8 * i));
    memcpy(out + 8, s, n);
    return 8 + n;
}

/* Patches the stored string FROM into TO (same length). */
static bool patch_string(uint8_t *data, size_t len, const char *from, const char *to) {
    uint8_t f[72], t[72];
    size_t n = gguf_string(from, f);
    gguf_string(to, t);
    return patch(data, len, f, n, t);
}

/* Loads DATA against M and expects a failure whose message contains every NEEDLE. */
static bool load_fails(const uint8_t *data, size_t len, const lmz_model *m, const char *what, const char *needle,
                       const char *needle2) {
    lmz_clear_error();
    lmz_lora *l = lmz_lora_load_buffer(data, len, "adapter.gguf", m);
    const char *msg = lmz_last_error();
    printf("    %-34s %s\n", what, l ? "(accepted)" : msg);
    bool ok = !l && contains_nocase(msg, needle) && (!needle2 || contains_nocase(msg, needle2));
    if (!ok) test_fail(__FILE__, __LINE__, "%s: %s (should mention '%s'%s%s)", what, l ? "accepted" : msg, needle,
                       needle2 ? " and " : "", needle2 ? needle2 : "");
    lmz_lora_free(l);
    return ok;
}

/* Serializes L (F32) into *DATA; false after a failure. */
static bool serialized(const lmz_lora *l, uint8_t **data, size_t *len) {
    if (lmz_lora_serialize(l, LMZ_F32, data, len) == 0) return true;
    test_fail(__FILE__, __LINE__, "serializing: %s", lmz_last_error());
    return false;
}

/* Every way an adapter file can be wrong is refused with a message that says what and,
 * for tensors, which one. */
TEST(lora_load_errors) {
    lmz_model *m = tiny_model();
    if (!m) return;
    lmz_lora *l = random_adapter(m, 1, 4, 8.0f, 0.05f);
    CHECK(l);
    uint8_t *good, *bad;
    size_t len;
    CHECK(serialized(l, &good, &len));
    bad = malloc(len);
    CHECK(bad);
    lmz_lora *ok = lmz_lora_load_buffer(good, len, "adapter.gguf", m);
    CHECKF(ok, "the unpatched adapter: %s", lmz_last_error());
    lmz_lora_free(ok);

    /* Not an adapter: a model file, a general.type that is neither, no GGUF at all. */
    size_t model_len;
    const void *model_bytes = gguf_base(m->file, &model_len);
    if (!load_fails(model_bytes, model_len, m, "a model file", "not a LoRA adapter", "-m")) goto done;
    memcpy(bad, good, len);
    CHECK(patch_string(bad, len, "adapter", "vocoder"));
    if (!load_fails(bad, len, m, "general.type vocoder", "general.type is 'vocoder'", NULL)) goto done;
    if (!load_fails((const uint8_t *)"not a gguf file at all", 22, m, "not GGUF", "not a GGUF file", NULL)) goto done;
    /* Another adapter type; an activated LoRA. */
    memcpy(bad, good, len);
    CHECK(patch_string(bad, len, "lora", "lokr"));
    if (!load_fails(bad, len, m, "adapter.type lokr", "adapter.type is 'lokr'", NULL)) goto done;
    /* A tensor without its pair; a tensor that is neither half of a pair. */
    memcpy(bad, good, len);
    CHECK(patch_string(bad, len, "blk.0.attn_q.weight.lora_b", "blk.0.attn_x.weight.lora_b"));
    if (!load_fails(bad, len, m, "lora_b renamed away", "blk.0.attn_q.weight.lora_b", "incomplete")) goto done;
    memcpy(bad, good, len);
    CHECK(patch_string(bad, len, "blk.1.ffn_up.weight.lora_a", "blk.1.ffn_up.weight.lora_c"));
    if (!load_fails(bad, len, m, "a .lora_c tensor", "unexpected tensor blk.1.ffn_up.weight.lora_c", NULL)) goto done;
    /* Truncated anywhere. */
    static const size_t cuts[] = {10, 100, 2000};
    for (size_t i = 0; i < 4; i++) {
        size_t cut = i < 3 ? cuts[i] : len / 2;
        char what[64];
        snprintf(what, sizeof what, "cut to %zu of %zu bytes", cut, len);
        if (!load_fails(good, cut, m, what, "truncated", NULL)) goto done;
    }
    /* The alpha key absent: alpha 0 and scale 1, as llama.cpp. */
    memcpy(bad, good, len);
    CHECK(patch_string(bad, len, "adapter.lora.alpha", "adapter.lora.alphx"));
    lmz_lora *no_alpha = lmz_lora_load_buffer(bad, len, "adapter.gguf", m);
    CHECKF(no_alpha, "%s", lmz_last_error());
    bool scale_one = no_alpha->alpha == 0.0f && no_alpha->weights[0]->scale == 1.0f;
    lmz_lora_free(no_alpha);
    CHECK(scale_one);
    free(good);

    /* Written from a struct that does not fit the model: another architecture, a base
     * tensor the model lacks, one lmz does not adapt, shapes that do not match. */
    snprintf(l->arch, sizeof l->arch, "gemma3");
    CHECK(serialized(l, &good, &len));
    if (!load_fails(good, len, m, "architecture gemma3", "architecture 'gemma3'", "'llama'")) goto done;
    free(good);
    snprintf(l->arch, sizeof l->arch, "llama");
    lmz_lora_weight *w = l->weights[3]; /* blk.0.attn_output.weight */
    snprintf(w->name, sizeof w->name, "blk.7.attn_output.weight");
    CHECK(serialized(l, &good, &len));
    if (!load_fails(good, len, m, "a layer the model lacks", "blk.7.attn_output.weight", "does not exist")) goto done;
    free(good);
    snprintf(w->name, sizeof w->name, "blk.0.attn_norm.weight");
    CHECK(serialized(l, &good, &len));
    if (!load_fails(good, len, m, "a norm adapted", "not to blk.0.attn_norm.weight", NULL)) goto done;
    free(good);
    snprintf(w->name, sizeof w->name, "blk.0.attn_output.weight");
    w->n_in = 32; /* lora_a [32, 4] where blk.0.attn_output.weight needs [64, 4] */
    CHECK(serialized(l, &good, &len));
    if (!load_fails(good, len, m, "lora_a too narrow", "blk.0.attn_output.weight.lora_a has shape [32, 4", "[64, 4]"))
        goto done;
    free(good);
    w->n_in = 64;
    w->n_out = 48;
    CHECK(serialized(l, &good, &len));
    if (!load_fails(good, len, m, "lora_b too short", "blk.0.attn_output.weight.lora_b has shape [4, 48", "[4, 64]"))
        goto done;
    free(good);
    w->n_out = 64;
    lmz_lora *empty = lmz_lora_new(m, 1.0f);
    CHECK(empty && serialized(empty, &good, &len));
    lmz_lora_free(empty);
    if (!load_fails(good, len, m, "no tensors", "no NAME.lora_a", NULL)) goto done;

    /* Files: a missing one. */
    lmz_clear_error();
    CHECK(!lmz_lora_load("/nonexistent/adapter.gguf", m));
    CHECK(contains_nocase(lmz_last_error(), "cannot open the adapter /nonexistent/adapter.gguf"));
done:
    free(good);
    free(bad);
    lmz_lora_free(l);
}

/* The adapter from an adapter file built for the tiny model, given to real models: named
 * as the wrong base, by tensor and shape or by architecture. */
TEST(lora_wrong_base_model) {
    lmz_model *tiny = tiny_model();
    if (!tiny) return;
    lmz_lora *l = random_adapter(tiny, 3, 4, 4.0f, 0.05f);
    CHECK(l);
    char path[4200];
    if (!save_tmp(l, "tiny-adapter.gguf", LMZ_F32, path)) {
        lmz_lora_free(l);
        return;
    }
    lmz_lora_free(l);
    lmz_model *smol = test_model("smollm2"), *gemma = test_model("gemma3");
    if (!smol || !gemma) return;
    lmz_clear_error();
    CHECK(!lmz_lora_load(path, smol));
    printf("    SmolLM2: %s\n", lmz_last_error());
    CHECK(strstr(lmz_last_error(), "blk.0.attn_q.weight.lora_a has shape [64, 4, 1, 1], expected [576, 4]") &&
          strstr(lmz_last_error(), "another base model"));
    lmz_clear_error();
    CHECK(!lmz_lora_load(path, gemma));
    printf("    Gemma 3: %s\n", lmz_last_error());
    CHECK(strstr(lmz_last_error(), "for architecture 'llama'") && strstr(lmz_last_error(), "'gemma3'"));
}

/* alpha / rank, or 1 when alpha is 0, in f32 as llama.cpp's get_scale. */
TEST(lora_scale_rule) {
    lmz_model *m = tiny_model();
    if (!m) return;
    static const struct { float alpha; int rank; float scale; } cases[] = {
        {16.0f, 8, 2.0f}, {0.0f, 8, 1.0f}, {3.0f, 7, 3.0f / 7.0f}, {-4.0f, 2, -2.0f}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lmz_lora *l = lmz_lora_new(m, cases[i].alpha);
        CHECK(l && lmz_lora_add(l, "blk.1.ffn_down.weight", cases[i].rank));
        uint8_t *data;
        size_t len;
        bool ok = serialized(l, &data, &len);
        lmz_lora_free(l);
        CHECK(ok);
        l = lmz_lora_load_buffer(data, len, "adapter.gguf", m);
        free(data);
        CHECKF(l, "%s", lmz_last_error());
        float scale = l->weights[0]->scale;
        lmz_lora_free(l);
        CHECKF(scale == cases[i].scale, "alpha %g rank %d: scale %.9g, expected %.9g", cases[i].alpha, cases[i].rank,
               scale, cases[i].scale);
    }
}

/* Written and read back: F32 bit for bit; F16 rounds the adapter in memory to exactly what
 * the file holds; the fingerprint is the file's SHA-256 either way. */
TEST(lora_save_and_load) {
    lmz_model *m = tiny_model();
    if (!m) return;
    for (int f16 = 0; f16 < 2; f16++) {
        lmz_lora *l = random_adapter(m, 5, 3, 6.0f, 0.3f);
        CHECK(l);
        char path[4200];
        uint32_t type = f16 ? LMZ_F16 : LMZ_F32;
        bool saved = save_tmp(l, f16 ? "f16.gguf" : "f32.gguf", type, path) != NULL;
        lmz_lora *r = saved ? lmz_lora_load(path, m) : NULL;
        size_t len = 0;
        char *file = saved ? test_read_file(path, &len) : NULL;
        uint8_t sha[32];
        lmz_sha256 h;
        lmz_sha256_init(&h);
        if (file) lmz_sha256_update(&h, file, len);
        lmz_sha256_final(&h, sha);
        bool same = r && r->n_weights == l->n_weights && r->alpha == l->alpha && !strcmp(r->arch, "llama") &&
                    !memcmp(r->sha256, sha, 32) && !memcmp(l->sha256, sha, 32);
        for (int i = 0; same && i < l->n_weights; i++) {
            const lmz_lora_weight *a = l->weights[i], *b = r->weights[i];
            same = !strcmp(a->name, b->name) && a->rank == b->rank && a->embedding == b->embedding &&
                   a->scale == b->scale && !memcmp(a->a, b->a, a_elems(a) * sizeof(float)) &&
                   !memcmp(a->b, b->b, b_elems(a) * sizeof(float));
        }
        printf("    %s: %zu bytes, %d weights\n", f16 ? "F16" : "F32", len, l->n_weights);
        free(file);
        lmz_lora_free(l);
        lmz_lora_free(r);
        CHECKF(same, "%s adapter does not read back as written: %s", f16 ? "F16" : "F32", lmz_last_error());
    }
}

/* ---------------- logits ---------------- */

/* An adapter changes the logits; with B = 0 they are bit-identical to the model's alone,
 * and removing the adapter gives those back too. */
TEST(lora_logits_change_and_zero_b_is_identity) {
    lmz_model *m = tiny_model();
    if (!m) return;
    int32_t ids[96];
    int n = tokens_of(tiny_tokenizer(), sample_text, ids, 96);
    CHECK(n > 40);
    lmz_lora *l = random_adapter(m, 7, 4, 8.0f, 0.1f);
    CHECK(l);
    const size_t count = (size_t)n * m->n_vocab;
    float *base = logits_of(m, NULL, ids, n, 2, n), *adapted = logits_of(m, l, ids, n, 2, n);
    for (int i = 0; i < l->n_weights; i++) memset(l->weights[i]->b, 0, b_elems(l->weights[i]) * sizeof(float));
    float *zero_b = logits_of(m, l, ids, n, 2, n);
    bool ok = base && adapted && zero_b;
    float d = ok ? max_abs_diff(base, adapted, count) : 0;
    if (ok) printf("    %d tokens: the adapter moves logits by up to %.4f\n", n, d);
    bool identical = ok && !memcmp(base, zero_b, count * sizeof(float));
    free(base);
    free(adapted);
    free(zero_b);
    lmz_lora_free(l);
    CHECK(ok);
    CHECKF(d > 0.01f, "the adapter barely changes the logits (%.6f)", d);
    CHECK(identical);
}

/* The determinism contract with an adapter: the same SHA-256 of all logits for 1, 2 and 8
 * threads, in one batch, token by token, in chunks of 7 and 64, with the best ISA level;
 * the other levels at two corners (1 thread in one batch; 8 threads in chunks of 7). */
TEST(lora_logits_deterministic) {
    lmz_model *m = tiny_model();
    if (!m) return;
    int32_t ids[160];
    int n = tokens_of(tiny_tokenizer(), sample_text, ids, 160);
    CHECK(n > 64);
    lmz_lora *l = random_adapter(m, 11, 8, 16.0f, 0.1f);
    CHECK(l);
    char first[65] = "";
    static const int threads[] = {1, 2, 8}, chunks[] = {0, 1, 7, 64};
    enum lmz_isa best = lmz_isa_detect();
    bool failed = false;
    for (int level = LMZ_ISA_SCALAR; level <= (int)best && !failed; level++) {
        for (int run = 0; run < 12 && !failed; run++) {
            /* Levels below the best run the two corners, as in test_determinism.c. */
            if (level != (int)best && run != 0 && run != 10) continue;
            int th = threads[run / 4], chunk = chunks[run % 4] ? chunks[run % 4] : n;
            lmz_isa_set((enum lmz_isa)level);
            float *lg = logits_of(m, l, ids, n, th, chunk);
            lmz_isa_set(best);
            if (!lg) {
                failed = true;
                break;
            }
            uint8_t d[32];
            char hex[65];
            lmz_sha256 h;
            lmz_sha256_init(&h);
            lmz_sha256_update(&h, lg, (size_t)n * m->n_vocab * sizeof(float));
            lmz_sha256_final(&h, d);
            lmz_sha256_hex(d, hex);
            free(lg);
            if (!first[0]) {
                memcpy(first, hex, sizeof hex);
                printf("    %d tokens: %s\n", n, first);
            }
            if (strcmp(hex, first)) {
                test_fail(__FILE__, __LINE__, "%s, %d threads, chunks of %d: %s differs from %s",
                          lmz_isa_name((enum lmz_isa)level), th, chunk, hex, first);
                failed = true;
            }
        }
    }
    lmz_lora_free(l);
}

/* Each architecture lmz runs (llama, gemma3, and qwen2 when downloaded) with an adapter on
 * every projection, the embeddings and a separate output head where there is one: it
 * changes the logits; one batch on 1 thread equals token by token on 3 threads; and the
 * adapter read back from its file gives the same bits. */
static void every_architecture(const char *name, bool optional) {
    lmz_model *m = optional ? test_model_optional(name) : test_model(name);
    if (!m) return;
    int32_t ids[12];
    int n = tokens_of(test_tokenizer(name), sample_text, ids, 12);
    CHECK(n == 12);
    lmz_lora *l = random_adapter(m, 13, 4, 8.0f, 0.02f);
    CHECK(l);
    char file[64], path[4200];
    snprintf(file, sizeof file, "%s.gguf", name);
    lmz_lora *r = save_tmp(l, file, LMZ_F32, path) ? lmz_lora_load(path, m) : NULL;
    const size_t count = (size_t)n * m->n_vocab;
    float *base = logits_of(m, NULL, ids, n, 2, n), *batch = logits_of(m, l, ids, n, 1, n),
          *single = logits_of(m, l, ids, n, 3, 1), *reread = r ? logits_of(m, r, ids, n, 2, 5) : NULL;
    bool ok = base && batch && single && reread;
    float d = ok ? max_abs_diff(base, batch, count) : 0;
    if (ok) printf("    %s (%s, %d adapted weights): logits move by up to %.3f\n", name, m->arch_name, l->n_weights, d);
    bool same = ok && !memcmp(batch, single, count * sizeof(float)) && !memcmp(batch, reread, count * sizeof(float));
    free(base);
    free(batch);
    free(single);
    free(reread);
    lmz_lora_free(l);
    lmz_lora_free(r);
    CHECKF(r, "reading the adapter back: %s", lmz_last_error());
    CHECK(ok);
    CHECKF(d > 0.01f, "the adapter barely changes the logits (%.6f)", d);
    CHECK(same);
}

TEST(lora_every_architecture_llama) { every_architecture("smollm2", false); }
TEST(lora_every_architecture_gemma3) { every_architecture("gemma3", false); }
TEST(lora_every_architecture_qwen2) { every_architecture("qwen25coder", true); }

/* ---------------- the compressor ---------------- */

/* A tiny-model codec (small chunks) with adapter L; false after a failure. */
static bool tiny_codec(lmz_codec *c, const lmz_lora *l) {
    if (lmz_codec_init(c, tiny_model(), tiny_tokenizer(), tiny_model_sha256(), NULL, 0, 2, 160, 0, 0) == 0 &&
        lmz_codec_set_lora(c, l) == 0)
        return true;
    test_fail(__FILE__, __LINE__, "codec setup: %s", lmz_last_error());
    lmz_codec_free(c);
    return false;
}

static bool compress_with(const lmz_lora *l, const char *text, lmz_bytebuf *archive) {
    lmz_codec c;
    if (!tiny_codec(&c, l)) return false;
    lmz_memory_input r = {(const uint8_t *)text, strlen(text), 0};
    lmz_codec_stats st;
    archive->len = 0;
    int rc = lmz_compress(&c, lmz_read_memory, &r, lmz_sink_to_bytebuf, archive, &st, NULL, NULL);
    lmz_codec_free(&c);
    if (rc == 0) return true;
    test_fail(__FILE__, __LINE__, "compressing: %s", lmz_last_error());
    return false;
}

/* Decompresses ARCHIVE with adapter L: 0 with the output in OUT, or -1 with the message. */
static int decompress_with(const lmz_lora *l, const lmz_bytebuf *archive, lmz_bytebuf *out) {
    lmz_codec c;
    if (!tiny_codec(&c, l)) return -1;
    lmz_archive a;
    out->len = 0;
    lmz_clear_error();
    int rc = lmz_archive_open(&a, archive->data, archive->len);
    lmz_codec_stats st;
    if (rc == 0) rc = lmz_decompress(&c, &a, lmz_write_to_bytebuf, out, &st, NULL, NULL);
    lmz_archive_close(&a);
    lmz_codec_free(&c);
    return rc;
}

/* An archive made with an adapter records its fingerprint and decodes with it only; one
 * made without refuses an adapter. */
TEST(lora_codec_round_trip_and_refusals) {
    lmz_model *m = tiny_model();
    if (!m) return;
    lmz_lora *made = random_adapter(m, 17, 4, 8.0f, 0.1f), *other = random_adapter(m, 19, 4, 8.0f, 0.1f);
    lmz_lora *unsaved = random_adapter(m, 23, 4, 8.0f, 0.1f);
    char path[4200];
    bool ok = made && other && unsaved && save_tmp(made, "made.gguf", LMZ_F32, path) &&
              save_tmp(other, "other.gguf", LMZ_F32, path);
    lmz_bytebuf with = {0}, without = {0}, out = {0};
    lmz_archive_params p;
    lmz_codec c;
    char want[17];
    if (!ok || !compress_with(made, sample_text, &with) || !compress_with(NULL, sample_text, &without)) goto done;
    fp_hex(made->sha256, want);
    CHECK(lmz_archive_read_header(&p, with.data, with.len) == 0);
    CHECK((p.flags & LMZ_ARCHIVE_HAS_ADAPTER) && !memcmp(p.adapter_fp, made->sha256, LMZ_ARCHIVE_FP_BYTES));
    printf("    %zu bytes of text: %zu with the adapter, %zu without\n", strlen(sample_text), with.len, without.len);

    CHECKF(decompress_with(made, &with, &out) == 0 && out.len == strlen(sample_text) &&
               !memcmp(out.data, sample_text, out.len), "the adapter's own archive: %s", lmz_last_error());
    CHECK(decompress_with(NULL, &with, &out) != 0);
    printf("    no adapter given: %s\n", lmz_last_error());
    CHECK(strstr(lmz_last_error(), "needs an adapter") && strstr(lmz_last_error(), want) &&
          strstr(lmz_last_error(), "--lora"));
    CHECK(decompress_with(other, &with, &out) != 0);
    printf("    another adapter:  %s\n", lmz_last_error());
    CHECK(strstr(lmz_last_error(), "needs adapter sha256") && strstr(lmz_last_error(), want));
    CHECK(decompress_with(made, &without, &out) != 0);
    printf("    adapter for none: %s\n", lmz_last_error());
    CHECK(strstr(lmz_last_error(), "made without an adapter"));
    CHECK(decompress_with(NULL, &without, &out) == 0 && out.len == strlen(sample_text));

    /* An adapter never saved has no fingerprint to record. */
    CHECK(lmz_codec_init(&c, m, tiny_tokenizer(), tiny_model_sha256(), NULL, 0, 1, 0, 0, 0) == 0);
    CHECK(lmz_codec_set_lora(&c, unsaved) != 0 && strstr(lmz_last_error(), "never been saved"));
    lmz_codec_free(&c);
done:
    lmz_bytebuf_free(&with);
    lmz_bytebuf_free(&without);
    lmz_bytebuf_free(&out);
    lmz_lora_free(made);
    lmz_lora_free(other);
    lmz_lora_free(unsaved);
}

/* ---------------- the command line ---------------- */

static char cli_err[8192];

/* Runs `./lmz ARGS` (printf-style) with standard input /dev/null unless ARGS redirects it,
 * standard error into cli_err, fingerprints cached in the temporary directory. The exit
 * status, or -1. */
static int run_lmz(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_lmz(const char *fmt, ...) {
    char args[8192], env[TEST_PATH_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(env, sizeof env, "LMZ_CACHE=%s/cache", tmp_dir);
    return test_run_lmz(env, args, tmp_dir, cli_err, sizeof cli_err);
}

#define CHECK_LMZ_FAILS(needle, ...)                                                                              \
    do {                                                                                                          \
        int _rc = run_lmz(__VA_ARGS__);                                                                           \
        printf("    exit %d: %.*s", _rc, (int)strcspn(cli_err, "\n") + 1, cli_err);                               \
        CHECKF(_rc > 0 && contains_nocase(cli_err, needle), "exit status %d, stderr should mention '%s': %s", _rc, \
               needle, cli_err);                                                                                  \
    } while (0)

#define CHECK_LMZ_OK(...)                                                                                         \
    do {                                                                                                          \
        int _rc = run_lmz(__VA_ARGS__);                                                                           \
        CHECKF(_rc == 0, "exit status %d: %s", _rc, cli_err);                                                     \
    } while (0)

/* lmz --lora FILE: compress, -l shows the adapter, -d and -t need the same adapter file. */
TEST(lora_cli) {
    lmz_model *m = tiny_model();
    if (!test_have_lmz() || !m || !tmp()) return;
    const char *model = tiny_model_path(), *d = tmp_dir;
    lmz_lora *a = random_adapter(m, 29, 4, 8.0f, 0.1f), *b = random_adapter(m, 31, 4, 8.0f, 0.1f);
    char pa[4200], pb[4200], in[4200];
    bool ok = a && b && save_tmp(a, "a.gguf", LMZ_F16, pa) && save_tmp(b, "b.gguf", LMZ_F32, pb) && tmp_path("in.txt", in);
    char want[17];
    if (ok) fp_hex(a->sha256, want);
    lmz_lora_free(a);
    lmz_lora_free(b);
    CHECK(ok);
    FILE *f = fopen(in, "wb");
    CHECK(f && fputs(sample_text, f) >= 0 && fclose(f) == 0);

    CHECK_LMZ_OK("-q -m %s --lora %s %s", model, pa, in);
    CHECK_LMZ_OK("-q -m %s --lora %s -T 3 -c %s > %s/threads3.lmz", model, pa, in, d);
    char archive[4300], copy[4300];
    snprintf(archive, sizeof archive, "%s.lmz", in);
    snprintf(copy, sizeof copy, "%s/threads3.lmz", d);
    CHECK(test_same_file(archive, copy)); /* the archive does not depend on the thread count */
    CHECK_LMZ_OK("-l %s > %s/list.txt", archive, d);
    char list_path[4300];
    snprintf(list_path, sizeof list_path, "%s/list.txt", d);
    size_t len;
    char *list = test_read_file(list_path, &len);
    CHECK(list);
    printf("%s", list);
    bool listed = strstr(list, "adapter       sha256 ") && strstr(list, want);
    free(list);
    CHECKF(listed, "lmz -l does not show the adapter sha256 %s...", want);

    CHECK_LMZ_OK("-q -d -c -m %s --lora %s %s > %s/out.txt", model, pa, archive, d);
    char out[4300];
    snprintf(out, sizeof out, "%s/out.txt", d);
    CHECK(test_same_file(in, out));
    CHECK_LMZ_OK("-q -t -m %s --lora %s %s", model, pa, archive);
    CHECK_LMZ_FAILS("--lora FILE", "-q -t -m %s %s", model, archive);
    CHECK_LMZ_FAILS(want, "-q -t -m %s --lora %s %s", model, pb, archive);
    CHECK_LMZ_OK("-q -m %s -c %s > %s/plain.lmz", model, in, d);
    CHECK_LMZ_FAILS("without an adapter", "-q -t -m %s --lora %s %s/plain.lmz", model, pa, d);
    CHECK_LMZ_FAILS("cannot open the adapter", "-q -m %s --lora %s/none.gguf -c %s", model, d, in);
    CHECK_LMZ_FAILS("not a LoRA adapter", "-q -m %s --lora %s -c %s", model, model, in);
    CHECK_LMZ_FAILS("needs a value", "-q -m %s %s --lora", model, in);

    /* lmz perplexity / logits --lora: the adapter changes the code length and the logits */
    char plain[4300], adapted[4300];
    snprintf(plain, sizeof plain, "%s/ppl_plain.txt", d);
    snprintf(adapted, sizeof adapted, "%s/ppl_adapted.txt", d);
    CHECK_LMZ_OK("perplexity -m %s %s > %s", model, in, plain);
    CHECK_LMZ_OK("perplexity -m %s --lora %s %s > %s", model, pa, in, adapted);
    char *x = test_read_file(plain, &len), *y = test_read_file(adapted, &len);
    const char *bx = x ? strstr(x, "\nbits ") : NULL, *by = y ? strstr(y, "\nbits ") : NULL;
    CHECKF(bx && by && strstr(y, "adapter ") && strcspn(bx + 1, "\n") > 0 &&
               strncmp(bx, by, strcspn(bx + 1, "\n") + 1) != 0,
           "perplexity with and without the adapter:\n%s---\n%s", x ? x : "", y ? y : "");
    free(x);
    free(y);
    CHECK_LMZ_OK("logits -m %s %s > %s", model, in, plain);
    CHECK_LMZ_OK("logits -m %s --lora %s %s > %s", model, pa, in, adapted);
    CHECK(!test_same_file(plain, adapted));
    CHECK_LMZ_FAILS("cannot open the adapter", "perplexity -m %s --lora %s/none.gguf %s", model, d, in);
    CHECK_LMZ_FAILS("unknown option --lora", "speed -m %s --lora %s", model, pa);
}

/* ---------------- --lora-dir: the automatic choice ---------------- */

static void count_skipped(void *ctx, const char *path, const char *why) {
    printf("    skipped %s: %s\n", strrchr(path, '/') + 1, why);
    ++*(int *)ctx;
}

/* The candidates are the folder's adapters for the model (other files skipped, in name
 * order); the choice is the candidate with the fewest ideal bits on the sample, each score
 * exactly what compressing the sample with that candidate gives; the codec is left with
 * the winner; the lookup by fingerprint loads the one file that has it. */
TEST(lora_dir_choice_is_the_smallest_candidate) {
    lmz_model *m = tiny_model();
    if (!m || !tmp()) return;
    char dir[4200], path[4200], bogus[4300];
    CHECK(tmp_path("choice", dir) && mkdir(dir, 0700) == 0);
    lmz_lora *a = random_adapter(m, 41, 4, 8.0f, 0.1f), *b = random_adapter(m, 43, 4, 8.0f, 0.4f);
    bool ok = a && b && save_tmp(a, "choice/b_small.gguf", LMZ_F32, path) &&
              save_tmp(b, "choice/a_large.gguf", LMZ_F32, path);
    snprintf(bogus, sizeof bogus, "%s/c_not_an_adapter.gguf", dir);
    ok = ok && test_write_file(bogus, "GGUF but not really", 19);
    snprintf(bogus, sizeof bogus, "%s/notes.txt", dir);
    ok = ok && test_write_file(bogus, "not a .gguf: not even looked at", 31);
    CHECK(ok);
    lmz_adapter_set s;
    int skipped = 0;
    CHECKF(lmz_adapter_set_load(&s, dir, m, NULL, count_skipped, &skipped) == 0, "%s", lmz_last_error());
    CHECK(s.n == 2 && skipped == 1);
    if (s.n != 2) goto done;
    CHECK(strstr(s.paths[0], "a_large.gguf") && strstr(s.paths[1], "b_small.gguf"));
    CHECK(!memcmp(s.adapters[0]->sha256, b->sha256, 32) && !memcmp(s.adapters[1]->sha256, a->sha256, 32));

    lmz_codec c;
    if (!tiny_codec(&c, NULL)) goto done;
    const uint8_t *sample = (const uint8_t *)sample_text;
    size_t len = strlen(sample_text);
    double bits[3], own[3];
    int chosen = -2;
    CHECKF(lmz_adapter_choose(&c, &s, sample, len, &chosen, bits) == 0, "%s", lmz_last_error());
    int argmin = 0;
    for (int i = 0; i < 3; i++) {
        lmz_codec_stats st;
        lmz_memory_input r = {sample, len, 0};
        lmz_bytebuf sink = {0};
        CHECK(lmz_codec_set_lora(&c, i ? s.adapters[i - 1] : NULL) == 0 &&
              lmz_compress(&c, lmz_read_memory, &r, lmz_sink_to_bytebuf, &sink, &st, NULL, NULL) == 0);
        lmz_bytebuf_free(&sink);
        own[i] = st.ideal_bits + (i ? 8.0 * LMZ_ARCHIVE_FP_BYTES : 0.0); /* an adapter's fingerprint too */
        if (own[i] < own[argmin]) argmin = i;
        printf("    candidate %d: %.2f bits (choice's score %.2f)\n", i - 1, own[i], bits[i]);
        CHECK(own[i] == bits[i]);
    }
    CHECK(own[0] != own[1] && own[0] != own[2] && own[1] != own[2]); /* a choice that means something */
    CHECKF(chosen == argmin - 1, "chose %d, the smallest is %d", chosen, argmin - 1);
    lmz_codec_free(&c);
    /* the codec keeps the winner */
    if (!tiny_codec(&c, NULL)) goto done;
    CHECK(lmz_adapter_choose(&c, &s, sample, len, &chosen, NULL) == 0 &&
          c.lora == (chosen < 0 ? NULL : s.adapters[chosen]));
    lmz_codec_free(&c);
    lmz_adapter_set_free(&s);

    /* lookup by an archive's fingerprint */
    CHECK(lmz_adapter_set_load(&s, dir, m, a->sha256, NULL, NULL) == 0 && s.n == 1 &&
          !memcmp(s.adapters[0]->sha256, a->sha256, 32));
    lmz_adapter_set_free(&s);
    uint8_t unknown[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(lmz_adapter_set_load(&s, dir, m, unknown, NULL, NULL) != 0 &&
          strstr(lmz_last_error(), "needs adapter sha256 0102030405060708"));
    printf("    unknown fingerprint: %s\n", lmz_last_error());
    CHECK(lmz_adapter_set_load(&s, "/nonexistent/lmz-adapters", m, NULL, NULL, NULL) != 0 &&
          strstr(lmz_last_error(), "cannot read the adapter folder"));
    CHECK(tmp_path("empty", path) && mkdir(path, 0700) == 0);
    CHECK(lmz_adapter_set_load(&s, path, m, NULL, NULL, NULL) != 0 && strstr(lmz_last_error(), "no LoRA adapter"));
done:
    lmz_lora_free(a);
    lmz_lora_free(b);
}

/* Through ./lmz: an adapter trained on the text (by `lmz train`) beside a random one is
 * chosen, recorded, independent of -T, found again by -d and -t in the folder, and refused
 * where the folder lacks it; an archive made without an adapter needs none. */
TEST(lora_dir_cli) {
    lmz_model *m = tiny_model();
    if (!test_have_lmz() || !m || !tmp()) return;
    const char *model = tiny_model_path(), *d = tmp_dir;
    char text[8 * sizeof sample_text], in[4200], dir[4200], other[4200], trained[4300], path[4200];
    text[0] = 0;
    for (int i = 0; i < 8; i++) strcat(text, sample_text);
    lmz_lora *r = random_adapter(m, 47, 4, 8.0f, 0.1f);
    bool ok = r && tmp_path("cli_in.txt", in) && test_write_file(in, text, strlen(text)) && tmp_path("cli_dir", dir) &&
              mkdir(dir, 0700) == 0 && tmp_path("cli_other", other) && mkdir(other, 0700) == 0 &&
              save_tmp(r, "cli_dir/random.gguf", LMZ_F32, path) && save_tmp(r, "cli_other/random.gguf", LMZ_F32, path);
    lmz_lora_free(r);
    CHECK(ok);
    if (!ok) return;
    snprintf(trained, sizeof trained, "%s/trained.gguf", dir);
    CHECK_LMZ_OK("train -q -m %s --data %s -o %s --steps 30 --rank 8 --alpha 16 --lr 1e-2 --seq 32 --batch 2", model, in,
                 trained);
    size_t len;
    uint8_t digest[32];
    char *bytes = test_read_file(trained, &len), want[17];
    CHECK(bytes);
    if (!bytes) return;
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, bytes, len);
    lmz_sha256_final(&h, digest);
    free(bytes);
    fp_hex(digest, want);

    CHECK_LMZ_OK("-v -m %s --lora-dir %s -c %s > %s/auto.lmz", model, dir, in, d);
    printf("    %s", cli_err);
    CHECKF(strstr(cli_err, "adapter ") && strstr(cli_err, "trained.gguf, scored on the first 2048 bytes"),
           "the trained adapter should be chosen: %s", cli_err);
    char archive[4300], copy[4300], out[4300];
    snprintf(archive, sizeof archive, "%s/auto.lmz", d);
    bytes = test_read_file(archive, &len);
    lmz_archive_params p;
    CHECK(bytes && lmz_archive_read_header(&p, (const uint8_t *)bytes, len) == 0 &&
          (p.flags & LMZ_ARCHIVE_HAS_ADAPTER) && !memcmp(p.adapter_fp, digest, LMZ_ARCHIVE_FP_BYTES));
    free(bytes);
    CHECK_LMZ_OK("-q -T 3 -m %s --lora-dir %s -c %s > %s/auto3.lmz", model, dir, in, d);
    snprintf(copy, sizeof copy, "%s/auto3.lmz", d);
    CHECK(test_same_file(archive, copy));
    CHECK_LMZ_OK("-q -m %s --lora %s -c %s > %s/explicit.lmz", model, trained, in, d);
    snprintf(copy, sizeof copy, "%s/explicit.lmz", d);
    CHECK(test_same_file(archive, copy)); /* the choice codes exactly as --lora with the chosen file */

    CHECK_LMZ_OK("-q -d -m %s --lora-dir %s -c %s > %s/auto.out", model, dir, archive, d);
    snprintf(out, sizeof out, "%s/auto.out", d);
    CHECK(test_same_file(in, out));
    CHECK_LMZ_OK("-q -t -m %s --lora %s %s", model, trained, archive);
    CHECK_LMZ_FAILS(want, "-q -t -m %s --lora-dir %s %s", model, other, archive);
    CHECK_LMZ_FAILS("--lora FILE", "-q -t -m %s %s", model, archive);
    CHECK_LMZ_OK("-q -m %s -c %s > %s/plain.lmz", model, in, d);
    CHECK_LMZ_OK("-q -t -m %s --lora-dir %s %s/plain.lmz", model, other, d);
    CHECK_LMZ_FAILS("not both", "-q -m %s --lora %s --lora-dir %s -c %s", model, trained, dir, in);
    CHECK_LMZ_FAILS("cannot read the adapter folder", "-q -m %s --lora-dir %s/none -c %s", model, d, in);
    CHECK_LMZ_FAILS("needs a value", "-q -m %s %s --lora-dir", model, in);
}
