/* lora_parity.c — lmz's side of the LoRA parity check with llama.cpp (tools/ref/lora_parity.sh).
 * Tooling only, linked against liblmz.a.
 *
 *   lora_parity adapter MODEL OUT.gguf [RANK ALPHA MAG SEED]
 *       writes a random adapter (lmz's writer, F32) on every attention and feed-forward
 *       projection of every layer; A and B entries uniform in +-MAG (default rank 8, alpha 16,
 *       MAG 0.06, seed 1). No token_embd adapter: llama.cpp cannot apply one to a model with
 *       a tied output head (it finds the head under the same name).
 *   lora_parity ids MODEL TEXT N
 *       prints, on one line, the start token and the first N - 1 token ids of the file TEXT
 *   lora_parity compare MODEL ADAPTER BASE.bin ADAPTED.bin [BASE2.bin ADAPTED2.bin]
 *       evaluates the prompts of ref_logits' outputs (TOPK 0: every logit) with lmz, without
 *       and with ADAPTER, and reports argmax agreement, max and mean |delta logit| and KL
 *       against llama.cpp's runs without and with the adapter; then how well lmz reproduces
 *       the adapter's effect (adapted - base logits) that llama.cpp computes. BASE2/ADAPTED2
 *       (llama.cpp without flash attention) give llama.cpp's own run-to-run deviation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/codec/symbols.h"
#include "../../src/gguf/tensor_types.h"
#include "../../src/lora/lora.h"
#include "../../src/tokenizer/tokenizer.h"
#include "../../src/util/error.h"

static int die(const char *what) {
    fprintf(stderr, "lora_parity: %s: %s\n", what, lmz_last_error());
    return 1;
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(uint64_t *s, float mag) { return mag * ((float)(rng_next(s) >> 40) / (float)(1 << 23) - 1.0f); }

static int make_adapter(const lmz_model *m, const char *out, int rank, float alpha, float mag, uint64_t seed) {
    static const char *const projection[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                             "ffn_gate", "ffn_up", "ffn_down"};
    lmz_lora *l = lmz_lora_new(m, alpha);
    if (!l) return die("adapter");
    for (int layer = 0; layer < m->n_layer; layer++)
        for (int p = 0; p < 7; p++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", layer, projection[p]);
            lmz_lora_weight *w = lmz_lora_add(l, name, rank);
            if (!w) return die(name);
            for (int64_t i = 0; i < w->rank * w->n_in; i++) w->a[i] = uniform(&seed, mag);
            for (int64_t i = 0; i < w->rank * w->n_out; i++) w->b[i] = uniform(&seed, mag);
        }
    if (lmz_lora_save(l, out, LMZ_F32)) return die(out);
    fprintf(stderr, "%s: %d weights, rank %d, alpha %g (scale %g), entries within +-%g\n", out, l->n_weights, rank,
            alpha, l->weights[0]->scale, mag);
    lmz_lora_free(l);
    return 0;
}

static int print_ids(const lmz_model *m, const char *path, int n) {
    lmz_tokenizer *tok = lmz_tokenizer_load(m->file);
    FILE *f = fopen(path, "rb");
    if (!tok || !f) return die(path);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    int32_t *ids;
    size_t count;
    if (lmz_tokenize(tok, text, len, false, false, &ids, &count)) return die("tokenize");
    if (count + 1 < (size_t)n) return fprintf(stderr, "lora_parity: %s has only %zu tokens\n", path, count), 1;
    printf("%d", lmz_start_token(tok));
    for (int i = 0; i < n - 1; i++) printf(" %d", ids[i]);
    printf("\n");
    free(ids);
    lmz_tokenizer_free(tok);
    return 0;
}

/* One prompt of a ref_logits output with every logit, by token id. */
typedef struct {
    int n, n_vocab;
    int32_t *ids;
    float *logits; /* [n][n_vocab] */
} ref_run;

static int read_ref(const char *path, ref_run *r) {
    FILE *f = fopen(path, "rb");
    char magic[8];
    uint32_t hdr[3], n;
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, "LMZLOGIT", 8) || fread(hdr, 4, 3, f) != 3 ||
        hdr[0] != 1 || hdr[1] != hdr[2] || fread(&n, 4, 1, f) != 1)
        return fprintf(stderr, "lora_parity: %s: not a one-prompt ref_logits output with every logit\n", path), -1;
    r->n = (int)n;
    r->n_vocab = (int)hdr[2];
    r->ids = malloc(n * sizeof *r->ids);
    r->logits = malloc((size_t)n * r->n_vocab * sizeof(float));
    int32_t *order = malloc((size_t)r->n_vocab * sizeof *order);
    float *values = malloc((size_t)r->n_vocab * sizeof *values);
    if (!r->ids || !r->logits || !order || !values || fread(r->ids, 4, n, f) != n) return -1;
    for (uint32_t p = 0; p < n; p++) {
        float lse;
        if (fread(&lse, 4, 1, f) != 1 || fread(order, 4, (size_t)r->n_vocab, f) != (size_t)r->n_vocab ||
            fread(values, 4, (size_t)r->n_vocab, f) != (size_t)r->n_vocab)
            return fprintf(stderr, "lora_parity: %s is truncated\n", path), -1;
        for (int k = 0; k < r->n_vocab; k++) r->logits[(size_t)p * r->n_vocab + order[k]] = values[k];
    }
    free(order);
    free(values);
    fclose(f);
    return 0;
}

static float *lmz_logits(const lmz_model *m, const lmz_lora *l, const ref_run *r) {
    lmz_ctx *c = lmz_ctx_create(m, r->n, 1, 2);
    float *out = malloc((size_t)r->n * m->n_vocab * sizeof(float));
    if (!c || !out || lmz_ctx_set_lora(c, l) || lmz_eval(c, 0, r->ids, r->n, 0, out)) return NULL;
    lmz_ctx_free(c);
    return out;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static double lse(const float *x, int n) {
    double mx = x[argmax(x, n)], s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + log(s);
}

/* Compares logits A (the reference) and B over N positions: argmax agreement, max and mean
 * |delta|, mean KL(A || B) in bits. */
static void compare(const char *what, const float *a, const float *b, int n, int v) {
    int agree = 0;
    double max_d = 0, sum_d = 0, kl = 0;
    for (int p = 0; p < n; p++) {
        const float *x = a + (size_t)p * v, *y = b + (size_t)p * v;
        agree += argmax(x, v) == argmax(y, v);
        double lx = lse(x, v), ly = lse(y, v), k = 0;
        for (int i = 0; i < v; i++) {
            double d = fabs((double)x[i] - y[i]);
            if (d > max_d) max_d = d;
            sum_d += d;
            double px = exp((double)x[i] - lx);
            k += px * (((double)x[i] - lx) - ((double)y[i] - ly));
        }
        kl += k / log(2.0);
    }
    printf("  %-44s argmax %3d/%d (%5.1f%%)  max|dlogit| %.4f  mean|dlogit| %.4f  KL %.5f bits\n", what, agree, n,
           100.0 * agree / n, max_d, sum_d / ((double)n * v), kl / n);
}

/* How well EFFECT_B (adapted - base, one engine) reproduces EFFECT_A (the other's). */
static void compare_effect(const char *what, const float *base_a, const float *lora_a, const float *base_b,
                           const float *lora_b, int n, int v) {
    double max_e = 0, max_d = 0, sum_e2 = 0, sum_d2 = 0, dot = 0, sum_b2 = 0;
    int changed = 0, changed_agree = 0;
    for (size_t i = 0; i < (size_t)n * v; i++) {
        double ea = (double)lora_a[i] - base_a[i], eb = (double)lora_b[i] - base_b[i], d = eb - ea;
        if (fabs(ea) > max_e) max_e = fabs(ea);
        if (fabs(d) > max_d) max_d = fabs(d);
        sum_e2 += ea * ea;
        sum_d2 += d * d;
        sum_b2 += eb * eb;
        dot += ea * eb;
    }
    for (int p = 0; p < n; p++) {
        int before = argmax(base_a + (size_t)p * v, v), after = argmax(lora_a + (size_t)p * v, v);
        if (before == after) continue;
        changed++;
        changed_agree += argmax(lora_b + (size_t)p * v, v) == after;
    }
    printf("  %-44s effect max %.4f rms %.4f; deviation max %.4f rms %.4f (%.2f%% of the effect); correlation "
           "%.6f\n  %-44s the adapter moves the argmax at %d positions, reproduced at %d\n",
           what, max_e, sqrt(sum_e2 / ((double)n * v)), max_d, sqrt(sum_d2 / ((double)n * v)),
           100.0 * sqrt(sum_d2 / sum_e2), dot / sqrt(sum_e2 * sum_b2), "", changed, changed_agree);
}

static int run_compare(const lmz_model *m, const char *adapter, char **refs, int n_refs) {
    lmz_lora *l = lmz_lora_load(adapter, m);
    if (!l) return die(adapter);
    ref_run r[4];
    for (int i = 0; i < n_refs; i++)
        if (read_ref(refs[i], &r[i])) return 1;
    const int n = r[0].n, v = r[0].n_vocab;
    for (int i = 1; i < n_refs; i++)
        if (r[i].n != n || r[i].n_vocab != v || memcmp(r[i].ids, r[0].ids, (size_t)n * sizeof(int32_t)))
            return fprintf(stderr, "lora_parity: the ref_logits outputs hold different prompts\n"), 1;
    if (v != m->n_vocab) return fprintf(stderr, "lora_parity: vocabulary %d, the model has %d\n", v, m->n_vocab), 1;
    float *base = lmz_logits(m, NULL, &r[0]), *adapted = lmz_logits(m, l, &r[0]);
    if (!base || !adapted) return die("evaluation");
    printf("%d positions, vocabulary %d, adapter %s (%d weights, rank %d)\n", n, v, adapter, l->n_weights,
           l->max_rank);
    compare("lmz vs llama.cpp, no adapter", r[0].logits, base, n, v);
    compare("lmz vs llama.cpp, with the adapter", r[1].logits, adapted, n, v);
    compare("lmz: with the adapter vs without", base, adapted, n, v);
    compare("llama.cpp: with the adapter vs without", r[0].logits, r[1].logits, n, v);
    if (n_refs == 4) {
        compare("llama.cpp flash attention on vs off, no adapter", r[0].logits, r[2].logits, n, v);
        compare("llama.cpp flash attention on vs off, adapter", r[1].logits, r[3].logits, n, v);
    }
    compare_effect("adapter effect, lmz vs llama.cpp:", r[0].logits, r[1].logits, base, adapted, n, v);
    if (n_refs == 4)
        compare_effect("adapter effect, llama.cpp FA off vs on:", r[0].logits, r[1].logits, r[2].logits, r[3].logits,
                       n, v);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: lora_parity adapter|ids|compare MODEL ... (see tools/ref/lora_parity.c)\n");
        return 2;
    }
    lmz_model *m = lmz_model_load(argv[2]);
    if (!m) return die(argv[2]);
    if (!strcmp(argv[1], "adapter") && (argc == 4 || argc == 8))
        return make_adapter(m, argv[3], argc == 8 ? atoi(argv[4]) : 8, argc == 8 ? (float)atof(argv[5]) : 16.0f,
                            argc == 8 ? (float)atof(argv[6]) : 0.06f, argc == 8 ? strtoull(argv[7], NULL, 0) : 1);
    if (!strcmp(argv[1], "ids") && argc == 5) return print_ids(m, argv[3], atoi(argv[4]));
    if (!strcmp(argv[1], "compare") && (argc == 6 || argc == 8)) return run_compare(m, argv[3], argv + 4, argc - 4);
    fprintf(stderr, "lora_parity: bad arguments (see tools/ref/lora_parity.c)\n");
    return 2;
}
