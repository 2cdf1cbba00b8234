/* test_train.c — LoRA training (src/train/).
 *
 * The f32 kernel against the canonical dot product; the gradient check (analytic dA/dB
 * against central finite differences, every parameter of a small model, for each
 * architecture); the training forward against the inference engine's cross-entropy, with
 * and without an adapter; JSONL and text data; training runs on the tiny model: the loss
 * falls and the saved adapter helps inference, the same adapter bytes for any thread count,
 * checkpoint/resume equal to an uninterrupted run, refusals; and `lmz train` (./lmz, built
 * by `make` before `make test`, as in test_lora.c). */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/codec/symbols.h"
#include "../src/kernels/quant.h"
#include "../src/kernels/vecf.h"
#include "../src/lora/lora.h"
#include "../src/probs/probs.h"
#include "../src/runtime/threadpool.h"
#include "../src/train/graph.h"
#include "../src/train/tkernels.h"
#include "../src/train/train.h"
#include "../src/util/error.h"
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

static char tmp_dir[TEST_PATH_MAX];

/* PATH = the run's temporary directory (created once, removed at exit) / NAME; NULL after a
 * failure. */
static const char *tmp_path(const char *name, char path[4200]) {
    if (!tmp_dir[0] && !test_make_dir("train", tmp_dir)) return NULL;
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

/* ---------------- data ---------------- */

/* JSONL lines: string values joined by newlines (keys, numbers, literals left out), escapes
 * and surrogate pairs decoded; malformed lines refused with the position. */
TEST(train_json_text) {
    static const char line[] =
        "{\"q\": \"two\\nlines\", \"n\": [1, -2.5e3, true, null, \"x\\\"y\\\\\"], \"o\": {\"k\": \"\\u00e9\\ud83d\\ude00\\t\"}}";
    char *text;
    size_t len;
    CHECKF(lmz_train_json_text(line, strlen(line), &text, &len) == 0, "%s", lmz_last_error());
    static const char want[] = "two\nlines\nx\"y\\\n\xc3\xa9\xf0\x9f\x98\x80\t";
    bool same = len == strlen(want) && !memcmp(text, want, len);
    free(text);
    CHECK(same);
    static const char *const bad[] = {"{\"a\": \"open", "{\"a\" 1}", "[1, 2", "\"x\" y", "{\"a\": \"\\q\"}", "nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(lmz_train_json_text(bad[i], strlen(bad[i]), &text, &len) != 0, "accepted %s", bad[i]);
        CHECK(strstr(lmz_last_error(), "at byte"));
    }
}

/* Text is cut into sequences of at most SEQ tokens, each after the start token; a JSONL file
 * gives one document per non-blank line; an error names the file and line. */
TEST(train_data_files) {
    lmz_tokenizer *tok = tiny_tokenizer();
    if (!tok) return;
    char txt[4200], jsonl[4200], bad[4200];
    CHECK(tmp_path("data.txt", txt) && tmp_path("data.jsonl", jsonl) && tmp_path("bad.jsonl", bad));
    FILE *f = fopen(txt, "wb");
    CHECK(f && fputs(sample_text, f) >= 0 && fclose(f) == 0);
    f = fopen(jsonl, "wb");
    CHECK(f && fputs("{\"text\": \"one\"}\n\n  \n{\"a\": \"two\", \"b\": \"three\"}\n", f) >= 0 && fclose(f) == 0);
    f = fopen(bad, "wb");
    CHECK(f && fputs("{\"text\": \"one\"}\n{\"text\": oops}\n", f) >= 0 && fclose(f) == 0);

    lmz_train_data d;
    CHECK(lmz_train_data_init(&d, tok, 8) == 0);
    int32_t *ids;
    size_t n;
    CHECK(lmz_tokenize(tok, sample_text, strlen(sample_text), false, false, &ids, &n) == 0);
    bool ok = lmz_train_data_add_file(&d, tok, txt) == 0 && d.n_seqs == (n + 7) / 8 && d.n_docs == 1;
    for (size_t i = 0; ok && i < d.n_seqs; i++) {
        size_t len = d.off[i + 1] - d.off[i] - 1;
        ok = d.tokens[d.off[i]] == lmz_start_token(tok) && len == (i + 1 < d.n_seqs ? 8 : n - 8 * i) &&
             !memcmp(d.tokens + d.off[i] + 1, ids + 8 * i, len * sizeof(int32_t));
    }
    free(ids);
    size_t before = d.n_seqs;
    ok = ok && lmz_train_data_add_file(&d, tok, jsonl) == 0 && d.n_docs == 3 && d.n_seqs == before + 2;
    bool refused = lmz_train_data_add_file(&d, tok, bad) != 0;
    lmz_train_data_free(&d);
    CHECK(ok);
    CHECK(refused);
    printf("    %s\n", lmz_last_error());
    CHECK(strstr(lmz_last_error(), "bad.jsonl:2:"));
}

/* ---------------- training runs ---------------- */

static const char repeated_unit[] = "The cat sat on the mat, and the dog lay by the door. ";

/* The tiny model's tokens of REPEATED_UNIT x 24 as one document, cut into sequences of SEQ. */
static bool repeated_data(lmz_train_data *d, int seq) {
    lmz_tokenizer *tok = tiny_tokenizer();
    if (!tok) return false;
    char text[24 * sizeof repeated_unit];
    text[0] = 0;
    for (int i = 0; i < 24; i++) strcat(text, repeated_unit);
    if (lmz_train_data_init(d, tok, seq) == 0 && lmz_train_data_add_text(d, tok, text, strlen(text)) == 0) return true;
    test_fail(__FILE__, __LINE__, "training data: %s", lmz_last_error());
    return false;
}

/* Small runs on the tiny model: rank 8, sequences of 32 tokens, 2 per step. */
static void small_config(lmz_train_config *c, int64_t steps) {
    lmz_train_config_default(c);
    c->rank = 8;
    c->alpha = 16;
    c->lr = 1e-2f;
    c->steps = steps;
    c->warmup = 3;
    c->seq = 32;
    c->batch = 2;
    c->seed = 1234;
}

/* The adapter of T as F32 GGUF bytes (malloc'd), or NULL. */
static uint8_t *adapter_bytes(lmz_trainer *t, size_t *len) {
    uint8_t *data;
    return lmz_lora_serialize(lmz_trainer_adapter(t), LMZ_F32, &data, len) == 0 ? data : NULL;
}

/* Runs T to the end; the last step's loss in *LAST (and the first's in *FIRST) when given. */
static bool run_to_end(lmz_trainer *t, double *first, double *last, bool print) {
    lmz_train_stats st;
    while (lmz_trainer_steps_done(t) < lmz_trainer_config(t)->steps) {
        if (lmz_trainer_step(t, &st)) {
            test_fail(__FILE__, __LINE__, "training step: %s", lmz_last_error());
            return false;
        }
        if (first && st.step == 1) *first = st.loss;
        if (print && (st.step % 5 == 0 || st.step == 1))
            printf("    step %3lld  loss %.4f  lr %.2e  |g| %.3f\n", (long long)st.step, st.loss, (double)st.lr,
                   st.grad_norm);
    }
    if (last) *last = st.loss;
    return true;
}

/* Training on a short repeated text lowers the loss substantially within a few dozen steps
 * (by a third: the tiny model's small random embeddings bound how peaked its predictions
 * can get),
 * and the saved adapter, loaded as any adapter, lowers the inference engine's code length of
 * that text; the training forward agrees with inference on the trained adapter too. */
TEST(train_reduces_loss_and_adapter_helps_inference) {
    lmz_model *m = tiny_model();
    lmz_train_data d;
    if (!m || !repeated_data(&d, 32)) return;
    lmz_train_config c;
    small_config(&c, 40);
    lmz_trainer *t = lmz_trainer_create(m, &c, &d, 2);
    double first = 0, last = 0;
    char path[4200];
    bool ok = t && run_to_end(t, &first, &last, true) && tmp_path("trained.gguf", path) &&
              lmz_lora_save(lmz_trainer_adapter(t), path, LMZ_F32) == 0;
    lmz_trainer_free(t);
    lmz_lora *l = ok ? lmz_lora_load(path, m) : NULL;
    const int32_t *seq = d.tokens + d.off[1];
    const int n = (int)(d.off[2] - d.off[1] - 1);
    double base = l ? inference_loss(m, NULL, seq, n) : NAN, adapted = l ? inference_loss(m, l, seq, n) : NAN;
    printf("    loss %.3f -> %.3f nats/token in 40 steps; inference on a training sequence: %.3f bits/token without "
           "the adapter, %.3f with\n", first, last, base / log(2.0), adapted / log(2.0));
    lmz_pool *pool = l ? lmz_pool_create(2) : NULL;
    lmz_train_graph *g = pool ? lmz_train_graph_create(m, l, n, pool) : NULL;
    double train_loss = NAN;
    if (g && lmz_train_graph_run(g, seq, n, 0, NULL, &train_loss) == 0) train_loss /= n;
    lmz_train_graph_free(g);
    lmz_pool_free(pool);
    lmz_lora_free(l);
    lmz_train_data_free(&d);
    CHECKF(ok && l, "%s", lmz_last_error());
    CHECKF(last < 0.75 * first, "loss %.3f -> %.3f", first, last);
    CHECKF(adapted < 0.75 * base, "inference: %.3f -> %.3f nats/token", base, adapted);
    CHECKF(fabs(train_loss - adapted) < 0.01 * adapted, "training forward %.5f vs inference %.5f", train_loss, adapted);
}

/* Same seed, same data: the same adapter bytes, on 1, 2 or 3 threads, and at the scalar ISA
 * level as at the best one. */
TEST(train_deterministic) {
    lmz_model *m = tiny_model();
    lmz_train_data d;
    if (!m || !repeated_data(&d, 32)) return;
    lmz_train_config c;
    small_config(&c, 3);
    c.accum = 2;
    c.weight_decay = 0.01f;
    uint8_t *bytes[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0};
    const enum lmz_isa best = lmz_isa_current();
    for (int run = 0; run < 4; run++) {
        if (run == 3) lmz_isa_set(LMZ_ISA_SCALAR);
        lmz_trainer *t = lmz_trainer_create(m, &c, &d, run < 3 ? run + 1 : 2);
        if (t && run_to_end(t, NULL, NULL, false)) bytes[run] = adapter_bytes(t, &len[run]);
        lmz_trainer_free(t);
    }
    lmz_isa_set(best);
    bool same = bytes[0] != NULL;
    for (int run = 1; run < 4; run++)
        same = same && bytes[run] && len[run] == len[0] && !memcmp(bytes[run], bytes[0], len[0]);
    /* A different seed gives a different adapter. */
    c.seed++;
    lmz_trainer *t = lmz_trainer_create(m, &c, &d, 2);
    size_t other_len = 0;
    uint8_t *other = t && run_to_end(t, NULL, NULL, false) ? adapter_bytes(t, &other_len) : NULL;
    bool differs = other && bytes[0] && (other_len != len[0] || memcmp(other, bytes[0], len[0]));
    lmz_trainer_free(t);
    for (int i = 0; i < 4; i++) free(bytes[i]);
    free(other);
    lmz_train_data_free(&d);
    CHECK(same);
    CHECK(differs);
}

/* Stopping after 4 steps, saving a checkpoint and resuming from it (on another thread
 * count) ends with the same adapter and the same checkpoint bytes as 9 steps in one go, the
 * data order crossing epochs on the way; resuming with other data, or from a damaged or
 * foreign file, is refused. */
TEST(train_checkpoint_resume) {
    lmz_model *m = tiny_model();
    lmz_train_data d, other;
    if (!m || !repeated_data(&d, 32)) return;
    if (lmz_train_data_init(&other, tiny_tokenizer(), 32) ||
        lmz_train_data_add_text(&other, tiny_tokenizer(), sample_text, strlen(sample_text))) {
        lmz_train_data_free(&d);
        lmz_train_data_free(&other);
        CHECKF(0, "%s", lmz_last_error());
    }
    lmz_train_config c;
    small_config(&c, 9);
    c.batch = 3; /* 27 sequences over 24 in the data: a second epoch */
    char whole[4200], part[4200], resumed[4200], damaged[4200];
    bool ok = tmp_path("whole.ckpt", whole) && tmp_path("part.ckpt", part) && tmp_path("resumed.ckpt", resumed) &&
              tmp_path("damaged.ckpt", damaged);
    lmz_trainer *a = ok ? lmz_trainer_create(m, &c, &d, 2) : NULL;
    ok = a && run_to_end(a, NULL, NULL, false) && lmz_trainer_save_checkpoint(a, whole) == 0;
    lmz_trainer *b = ok ? lmz_trainer_create(m, &c, &d, 1) : NULL;
    for (int i = 0; b && ok && i < 4; i++) ok = lmz_trainer_step(b, NULL) == 0;
    ok = ok && b && lmz_trainer_save_checkpoint(b, part) == 0;
    lmz_trainer_free(b);
    lmz_trainer *r = ok ? lmz_trainer_resume(m, part, &d, 3) : NULL;
    ok = ok && r && lmz_trainer_steps_done(r) == 4 && run_to_end(r, NULL, NULL, false) &&
         lmz_trainer_save_checkpoint(r, resumed) == 0;
    size_t la = 0, lr = 0, lw = 0, lz = 0;
    uint8_t *ba = a ? adapter_bytes(a, &la) : NULL, *br = r ? adapter_bytes(r, &lr) : NULL;
    char *cw = ok ? test_read_file(whole, &lw) : NULL, *cz = ok ? test_read_file(resumed, &lz) : NULL;
    bool same_adapter = ba && br && la == lr && !memcmp(ba, br, la);
    bool same_checkpoint = cw && cz && lw == lz && !memcmp(cw, cz, lw);
    lmz_trainer_free(a);
    lmz_trainer_free(r);
    free(ba);
    free(br);
    if (ok) printf("    checkpoint of %zu bytes after 9 steps\n", lw);

    /* refusals */
    lmz_trainer *x = ok ? lmz_trainer_resume(m, part, &other, 2) : NULL;
    bool refused_data = ok && !x && strstr(lmz_last_error(), "other training data");
    if (refused_data) printf("    %s\n", lmz_last_error());
    lmz_trainer_free(x);
    FILE *f = cw ? fopen(damaged, "wb") : NULL;
    if (f) {
        cw[lw / 2] ^= 1;
        fwrite(cw, 1, lw, f);
        fclose(f);
    }
    x = f ? lmz_trainer_resume(m, damaged, &d, 2) : NULL;
    bool refused_damage = f && !x && strstr(lmz_last_error(), "damaged");
    if (refused_damage) printf("    %s\n", lmz_last_error());
    lmz_trainer_free(x);
    x = ok ? lmz_trainer_resume(m, tiny_model_path(), &d, 2) : NULL;
    bool refused_foreign = ok && !x && strstr(lmz_last_error(), "not an lmz training checkpoint");
    lmz_trainer_free(x);
    free(cw);
    free(cz);
    lmz_train_data_free(&d);
    lmz_train_data_free(&other);
    CHECKF(ok, "%s", lmz_last_error());
    CHECK(same_adapter);
    CHECK(same_checkpoint);
    CHECK(refused_data);
    CHECK(refused_damage);
    CHECK(refused_foreign);
}

/* The schedule: linear warm-up to the peak, cosine to 0 at the end. */
TEST(train_lr_schedule) {
    lmz_train_config c;
    lmz_train_config_default(&c);
    c.lr = 1e-3f;
    c.steps = 110;
    c.warmup = 10;
    CHECK(fabsf(lmz_train_lr(&c, 0) - 1e-4f) < 1e-9f);
    CHECK(fabsf(lmz_train_lr(&c, 9) - 1e-3f) < 1e-9f);
    CHECK(fabsf(lmz_train_lr(&c, 10) - 1e-3f) < 1e-9f);
    CHECK(fabsf(lmz_train_lr(&c, 60) - 5e-4f) < 1e-8f);
    CHECK(lmz_train_lr(&c, 109) > 0 && lmz_train_lr(&c, 109) < 1e-6f);
    unsigned targets;
    char list[64];
    CHECK(lmz_train_parse_targets("v,q,down", &targets) == 0);
    lmz_train_format_targets(targets, list, sizeof list);
    CHECK(!strcmp(list, "q,v,down"));
    CHECK(lmz_train_parse_targets("q,,k", &targets) != 0 && lmz_train_parse_targets("gate,mlp", &targets) != 0);
    CHECK(strstr(lmz_last_error(), "'mlp'"));
}

/* ---------------- the command line ---------------- */

static char cli_err[16384];

/* Runs `./lmz ARGS` (printf-style), standard error into cli_err. The exit status, or -1. */
static int run_lmz(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_lmz(const char *fmt, ...) {
    char args[8192], scratch[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (!tmp_path("", scratch)) return -1;
    return test_run_lmz("", args, tmp_dir, cli_err, sizeof cli_err);
}

/* lmz train: progress lines, the adapter independent of -T, --resume from a checkpoint made
 * midway by the library continuing to the uninterrupted run's bytes, refusals. */
TEST(train_cli) {
    if (!test_have_lmz()) return;
    lmz_model *m = tiny_model();
    lmz_tokenizer *tok = tiny_tokenizer();
    char in[4200], a1[4200], a3[4200], ar[4200], ck[4200], bad[4200];
    CHECK(m && tok && tmp_path("cli.txt", in) && tmp_path("a1.gguf", a1) && tmp_path("a3.gguf", a3) &&
          tmp_path("ar.gguf", ar) && tmp_path("cli.ckpt", ck) && tmp_path("cli-bad.jsonl", bad));
    FILE *f = fopen(in, "wb");
    for (int i = 0; f && i < 6; i++) fputs(repeated_unit, f);
    CHECK(f && fputs(sample_text, f) >= 0 && fclose(f) == 0);
    f = fopen(bad, "wb");
    CHECK(f && fputs("{\"a\": \"fine\"}\n[1, 2\n", f) >= 0 && fclose(f) == 0);
    const char *model = tiny_model_path();
    const char *opts = "--steps 6 --seq 16 --batch 2 --rank 4 --alpha 8 --lr 1e-2 --warmup 2 --seed 9";

    int rc = run_lmz("train -m %s --data %s -o %s %s -T 1", model, in, a1, opts);
    CHECKF(rc == 0, "exit %d: %s", rc, cli_err);
    printf("%s", strstr(cli_err, "step 6/6") ? strstr(cli_err, "step 6/6") : cli_err);
    CHECK(strstr(cli_err, "step 1/6  loss ") && strstr(cli_err, "bits/token") && strstr(cli_err, "tokens/s") &&
          strstr(cli_err, "wrote"));
    rc = run_lmz("train -m %s --data %s -o %s %s -T 3 -q", model, in, a3, opts);
    CHECKF(rc == 0, "exit %d: %s", rc, cli_err);
    CHECK(test_same_file(a1, a3));
    lmz_lora *l = lmz_lora_load(a1, m);
    CHECKF(l && l->n_weights == 7 * m->n_layer && l->max_rank == 4 && l->alpha == 8.0f, "%s", lmz_last_error());
    lmz_lora_free(l);

    /* 3 steps by the library (as the command line sets the run up), then the rest by --resume */
    lmz_train_config c;
    lmz_train_config_default(&c);
    c.steps = 6, c.seq = 16, c.batch = 2, c.rank = 4, c.alpha = 8, c.lr = 1e-2f, c.warmup = 2, c.seed = 9;
    lmz_train_data d;
    CHECK(lmz_train_data_init(&d, tok, 16) == 0);
    lmz_trainer *t = lmz_train_data_add_file(&d, tok, in) == 0 ? lmz_trainer_create(m, &c, &d, 2) : NULL;
    bool ok = t;
    for (int i = 0; ok && i < 3; i++) ok = lmz_trainer_step(t, NULL) == 0;
    ok = ok && lmz_trainer_save_checkpoint(t, ck) == 0;
    lmz_trainer_free(t);
    lmz_train_data_free(&d);
    CHECKF(ok, "%s", lmz_last_error());
    rc = run_lmz("train -m %s --data %s -o %s --resume %s -T 2", model, in, ar, ck);
    CHECKF(rc == 0 && strstr(cli_err, "resumed    at step 3 of 6") && !strstr(cli_err, "step 3/6"), "exit %d: %s",
           rc, cli_err);
    CHECK(test_same_file(a1, ar));

    rc = run_lmz("train -m %s --data %s -o %s --resume %s --lr 1e-3", model, in, ar, ck);
    printf("    exit %d: %s", rc, cli_err);
    CHECK(rc == 1 && strstr(cli_err, "--lr cannot change"));
    rc = run_lmz("train -m %s --data %s -o %s", model, bad, ar);
    printf("    exit %d: %s", rc, cli_err);
    CHECK(rc == 1 && strstr(cli_err, "cli-bad.jsonl:2:"));
    rc = run_lmz("train -m %s -o %s", model, ar);
    CHECK(rc == 2 && strstr(cli_err, "needs --data FILE"));
    rc = run_lmz("train -m %s --data %s -o %s --targets q,x", model, in, ar);
    CHECK(rc == 2 && strstr(cli_err, "unknown projection 'x'"));
}
