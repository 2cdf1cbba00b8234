/* test_train.c — LoRA training (src/train/).
 *
 * The f32 kernel against the canonical dot product; the gradient check (analytic dA/dB
 * against central finite differences, every parameter of a small model, for each
 * architecture); gradients independent of the thread count; the training forward against
 * the inference engine's cross-entropy on real models, with and without an adapter. */
#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/codec/symbols.h"
#include "../src/kernels/quant.h"
#include "../src/kernels/vecf.h"
#include "../src/lora/lora.h"
#include "../src/probs/probs.h"
#include "../src/runtime/threadpool.h"
#include "../src/train/graph.h"
#include "../src/train/tkernels.h"
#include "../src/util/error.h"
#include "model_fixture.h"
#include "test.h"
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

static char tmp_dir[4096];

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void remove_tmp_dir(void) {
    if (tmp_dir[0]) nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* PATH = the run's temporary directory (created once, removed at exit) / NAME; NULL after a
 * failure. */
static const char *tmp_path(const char *name, char path[4200]) {
    if (!tmp_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/lmz-train-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            test_fail(__FILE__, __LINE__, "cannot create a temporary directory");
            tmp_dir[0] = 0;
            return NULL;
        }
        atexit(remove_tmp_dir);
    }
    snprintf(path, 4200, "%s/%s", tmp_dir, name);
    return path;
}

/* A small model of architecture ARCH with a bare vocabulary (no tokenizer needed), written
 * to the temporary directory and loaded; NULL after a failure. Weights are larger than the
 * default tiny model's so that attention is far from uniform and every gradient matters. */
static lmz_model *small_model(const char *arch, bool f16) {
    tiny_model_config c;
    tiny_model_config_default(&c);
    c.arch = arch;
    c.n_embd = 64;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.head_dim = !strcmp(arch, "gemma3") ? 32 : 16;
    c.n_ff = 96;
    c.n_vocab = 300;
    c.layer_scale = 0.03f;
    c.n_swa = 3;
    c.logit_softcap = !strcmp(arch, "gemma3") ? 3.0f : 0.0f;
    c.f16_matrices = f16;
    char name[64], path[4200];
    snprintf(name, sizeof name, "small-%s%s.gguf", arch, f16 ? "-f16" : "");
    if (!tmp_path(name, path)) return NULL;
    if (tiny_model_write_config(path, &c)) {
        test_fail(__FILE__, __LINE__, "writing %s: %s", name, lmz_last_error());
        return NULL;
    }
    lmz_model *m = lmz_model_load(path);
    if (!m) test_fail(__FILE__, __LINE__, "loading %s: %s", name, lmz_last_error());
    return m;
}

static const char *const projection[LMZ_LORA_N_TARGETS] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                           "ffn_gate", "ffn_up", "ffn_down"};

/* An adapter of RANK on every projection of every layer, entries uniform in +-MAG (B too,
 * unlike a fresh adapter, so that every gradient is nonzero). NULL after a failure. */
static lmz_lora *random_adapter(const lmz_model *m, uint64_t seed, int rank, float alpha, float mag) {
    lmz_lora *l = lmz_lora_new(m, alpha);
    uint64_t rng = seed;
    for (int i = 0; l && i < m->n_layer * LMZ_LORA_N_TARGETS; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s.weight", i / LMZ_LORA_N_TARGETS, projection[i % LMZ_LORA_N_TARGETS]);
        lmz_lora_weight *w = lmz_lora_add(l, name, rank);
        if (!w) {
            test_fail(__FILE__, __LINE__, "adding %s: %s", name, lmz_last_error());
            lmz_lora_free(l);
            return NULL;
        }
        for (int64_t j = 0; j < rank * w->n_in; j++) w->a[j] = rng_uniform(&rng, mag);
        for (int64_t j = 0; j < rank * w->n_out; j++) w->b[j] = rng_uniform(&rng, mag);
    }
    return l;
}

/* ---------------- the kernel ---------------- */

/* lmz_tk_nt equals the canonical dot product (vecf.h) bit for bit at every ISA level, for
 * odd sizes (tails of the 8 lanes, of the 4 x 4 blocks and of the 64-row blocks) and with
 * accumulation. */
TEST(train_kernel_matches_canonical_dot) {
    enum { K = 37, NT = 7, NR = 70, LD = 41 };
    static float x[NT * LD], w[NR * LD], y0[NT * NR], y[NT * NR];
    uint64_t rng = 5;
    for (int i = 0; i < NT * LD; i++) x[i] = rng_uniform(&rng, 1.0f);
    for (int i = 0; i < NR * LD; i++) w[i] = rng_uniform(&rng, 1.0f);
    for (int i = 0; i < NT * NR; i++) y0[i] = rng_uniform(&rng, 1.0f);
    const enum lmz_isa saved = lmz_isa_current();
    for (int level = 0; level <= (int)lmz_isa_detect(); level++) {
        lmz_isa_set((enum lmz_isa)level);
        for (int acc = 0; acc < 2; acc++) {
            memcpy(y, y0, sizeof y);
            lmz_tk_nt(K, x, LD, NT, w, LD, NR, y, NR, acc);
            for (int t = 0; t < NT; t++)
                for (int j = 0; j < NR; j++) {
                    float d = lmz_dot_canon_scalar(x + t * LD, w + j * LD, K), want = acc ? y0[t * NR + j] + d : d;
                    if (memcmp(&want, &y[t * NR + j], sizeof want)) {
                        lmz_isa_set(saved);
                        CHECKF(0, "%s, acc %d: token %d row %d: %.9g != %.9g", lmz_isa_name((enum lmz_isa)level), acc,
                               t, j, y[t * NR + j], want);
                    }
                }
        }
    }
    lmz_isa_set(saved);
}

/* ---------------- gradients ---------------- */

typedef struct {
    double max_abs_err, max_rel_err, cos_min, max_grad;
    long checked, failed;
} grad_stats;

/* Mean loss of TOKENS under graph G. */
static double mean_loss(lmz_train_graph *g, const int32_t *tokens, int n) {
    double loss = NAN;
    if (lmz_train_graph_run(g, tokens, n, 0, NULL, &loss)) return NAN;
    return loss / n;
}

/* Every A and B entry of adapter L on model M: the analytic gradient of the mean loss of
 * TOKENS against (L(p + h) - L(p - h)) / 2h. An entry fails when the two differ by more
 * than 2% of the larger plus 0.5% of the largest gradient of its tensor (the f32 forward's
 * rounding makes small gradients' differences noisy); each tensor's analytic and numeric
 * gradients must also have cosine similarity above 0.999. */
static void gradient_check(const char *arch) {
    lmz_model *m = small_model(arch, false);
    if (!m) return;
    lmz_lora *l = random_adapter(m, 77, 2, 3.0f, 0.3f);
    lmz_pool *pool = lmz_pool_create(1);
    enum { N = 8 };
    int32_t tokens[N + 1];
    uint64_t rng = 99;
    for (int i = 0; i <= N; i++) tokens[i] = (int32_t)(rng_next(&rng) % (uint64_t)m->n_vocab);
    lmz_train_graph *g = l && pool ? lmz_train_graph_create(m, l, N, pool) : NULL;
    lmz_train_vec grads = {0};
    bool ok = g && lmz_train_vec_init(&grads, l) == 0;
    double loss = 0;
    ok = ok && lmz_train_graph_run(g, tokens, N, 1.0f / N, &grads, &loss) == 0;
    grad_stats st = {0, 0, 1, 0, 0, 0};
    const float h = 1e-2f;
    for (int wi = 0; ok && wi < l->n_weights; wi++) {
        lmz_lora_weight *w = l->weights[wi];
        for (int which = 0; which < 2; which++) {
            float *p = which ? w->b : w->a;
            const float *ga = grads.data + (which ? grads.b_off[wi] : grads.a_off[wi]);
            const size_t n = (size_t)w->rank * (size_t)(which ? w->n_out : w->n_in);
            double *fd = malloc(n * sizeof(double)), gmax = 0, dot = 0, na = 0, nf = 0;
            if (!fd) {
                ok = false;
                break;
            }
            for (size_t i = 0; i < n; i++) {
                const float keep = p[i];
                p[i] = keep + h;
                double up = mean_loss(g, tokens, N);
                p[i] = keep - h;
                double down = mean_loss(g, tokens, N);
                p[i] = keep;
                fd[i] = (up - down) / (2.0 * h);
                if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
                dot += fd[i] * ga[i], na += (double)ga[i] * ga[i], nf += fd[i] * fd[i];
            }
            double cosine = dot / sqrt(na * nf + 1e-300);
            if (cosine < st.cos_min) st.cos_min = cosine;
            if (gmax > st.max_grad) st.max_grad = gmax;
            for (size_t i = 0; i < n; i++) {
                double err = fabs(ga[i] - fd[i]), big = fabs(fd[i]) > fabs(ga[i]) ? fabs(fd[i]) : fabs(ga[i]);
                st.checked++;
                if (err > st.max_abs_err) st.max_abs_err = err;
                if (big > 0.05 * gmax && err / big > st.max_rel_err) st.max_rel_err = err / big;
                if (err > 0.02 * big + 0.005 * gmax) {
                    if (st.failed++ < 5)
                        printf("    %s.%s[%zu]: analytic %.6g, numeric %.6g\n", w->name, which ? "lora_b" : "lora_a",
                               i, ga[i], fd[i]);
                }
            }
            if (cosine < 0.999)
                printf("    %s.%s: cosine %.6f between analytic and numeric gradients\n", w->name,
                       which ? "lora_b" : "lora_a", cosine);
            free(fd);
        }
    }
    printf("    %s: loss %.4f nats/token; %ld parameters: max |analytic - numeric| %.2e (largest gradient %.3g), max "
           "relative error %.2e where |g| > 5%% of its tensor's largest, min cosine %.6f\n",
           arch, loss / N, st.checked, st.max_abs_err, st.max_grad, st.max_rel_err, st.cos_min);
    lmz_train_vec_free(&grads);
    lmz_train_graph_free(g);
    lmz_pool_free(pool);
    lmz_lora_free(l);
    lmz_model_free(m);
    CHECKF(ok, "%s", lmz_last_error());
    CHECKF(st.failed == 0, "%ld of %ld gradient entries differ from finite differences", st.failed, st.checked);
    CHECK(st.cos_min > 0.999);
}

TEST(train_gradient_check_llama) { gradient_check("llama"); }
TEST(train_gradient_check_qwen2) { gradient_check("qwen2"); }
TEST(train_gradient_check_gemma3) { gradient_check("gemma3"); }

/* ---------------- agreement with the inference engine ---------------- */

static const char sample_text[] =
    "The quick brown fox jumps over the lazy dog. A language model predicts each token from the ones before it, "
    "and an arithmetic coder spends only the bits the prediction missed.";

/* Mean cross-entropy (nats per token) of TOKENS[1..n] given their prefixes, by the inference
 * engine with adapter L (NULL: none); NAN after a failure. */
static double inference_loss(const lmz_model *m, const lmz_lora *l, const int32_t *tokens, int n) {
    lmz_ctx *c = lmz_ctx_create(m, n, 1, 2);
    float *logits = malloc((size_t)n * m->n_vocab * sizeof(float));
    double bits = NAN;
    if (c && logits && lmz_ctx_set_lora(c, l) == 0 && lmz_eval(c, 0, tokens, n, 0, logits) == 0) {
        bits = 0;
        for (int t = 0; t < n; t++) bits += lmz_token_bits(logits + (size_t)t * m->n_vocab, m->n_vocab, tokens[t + 1]);
    }
    lmz_ctx_free(c);
    free(logits);
    return bits * log(2.0) / n;
}

/* The training forward's loss on TOKENS[0..n] equals the inference engine's cross-entropy
 * within TOLERANCE (relative), without and with a random adapter of entries within +-MAG. */
static void forward_agrees(const char *name, lmz_model *m, const int32_t *tokens, int n, float mag, double tolerance) {
    lmz_lora *l = random_adapter(m, 3, 4, 8.0f, mag), *none = lmz_lora_new(m, 8.0f);
    lmz_pool *pool = lmz_pool_create(2);
    lmz_train_graph *g0 = none && pool ? lmz_train_graph_create(m, none, n, pool) : NULL;
    lmz_train_graph *g1 = l && pool ? lmz_train_graph_create(m, l, n, pool) : NULL;
    double t0 = NAN, t1 = NAN;
    bool ok = g0 && g1 && lmz_train_graph_run(g0, tokens, n, 0, NULL, &t0) == 0 &&
              lmz_train_graph_run(g1, tokens, n, 0, NULL, &t1) == 0;
    double i0 = ok ? inference_loss(m, NULL, tokens, n) : NAN, i1 = ok ? inference_loss(m, l, tokens, n) : NAN;
    t0 /= n, t1 /= n;
    printf("    %s: nats/token without adapter: training %.6f, inference %.6f; with: %.6f, %.6f\n", name, t0, i0, t1,
           i1);
    lmz_train_graph_free(g0);
    lmz_train_graph_free(g1);
    lmz_pool_free(pool);
    lmz_lora_free(l);
    lmz_lora_free(none);
    CHECKF(ok, "%s", lmz_last_error());
    CHECKF(fabs(t0 - i0) < tolerance * i0 && fabs(t1 - i1) < tolerance * i1, "beyond %.2g%%", 100 * tolerance);
    CHECKF(fabs(t1 - t0) > 0.01, "the adapter barely changes the loss (%.5f -> %.5f)", t0, t1);
}

/* Small models with F16 matrices, which inference multiplies without quantizing the
 * activations: the two passes then differ only by the fp16 K/V cache and the order of a
 * few sums, so they must agree to 1e-4 on every architecture. */
static void forward_agrees_exactly(const char *arch) {
    lmz_model *m = small_model(arch, true);
    if (!m) return;
    enum { N = 24 };
    int32_t tokens[N + 1];
    uint64_t rng = 7;
    for (int i = 0; i <= N; i++) tokens[i] = (int32_t)(rng_next(&rng) % (uint64_t)m->n_vocab);
    forward_agrees(arch, m, tokens, N, 0.3f, 1e-4);
    lmz_model_free(m);
}

TEST(train_forward_matches_inference_small_llama) { forward_agrees_exactly("llama"); }
TEST(train_forward_matches_inference_small_qwen2) { forward_agrees_exactly("qwen2"); }
TEST(train_forward_matches_inference_small_gemma3) { forward_agrees_exactly("gemma3"); }

/* The real models (quantized): 32 tokens of text from the start token, within 1%. */
static void forward_agrees_real(const char *name) {
    lmz_model *m = test_model(name);
    lmz_tokenizer *tok = test_tokenizer(name);
    if (!m || !tok) return;
    enum { N = 32 };
    int32_t tokens[N + 1], *ids;
    size_t n_ids;
    CHECK(lmz_tokenize(tok, sample_text, strlen(sample_text), false, false, &ids, &n_ids) == 0);
    bool long_enough = n_ids >= N;
    tokens[0] = lmz_start_token(tok);
    if (long_enough) memcpy(tokens + 1, ids, N * sizeof(int32_t));
    free(ids);
    CHECK(long_enough);
    forward_agrees(name, m, tokens, N, 0.03f, 0.01);
}

TEST(train_forward_matches_inference_smollm2) { forward_agrees_real("smollm2"); }
TEST(train_forward_matches_inference_gemma3) { forward_agrees_real("gemma3"); }
