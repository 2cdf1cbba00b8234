/* fuzz_lora.c — libFuzzer target for the LoRA adapter loader (built and run by fuzz/run.sh,
 * seeded from tests/fixtures/lora/). The base is a tiny llama model with a bare vocabulary
 * (tests/tiny_model.c, nothing downloaded; query width 128 and key/value width 32 differ
 * from n_embd 64 and n_ff 256, so every target has its own shape, and ffn_down's lora_a
 * rows are long enough for the K-quants), written at start-up into a private temporary
 * directory that is removed once the model is loaded.
 *
 * Any input must be rejected with a message that starts with the label, or load into
 * weights that each adapt a tensor of the base with exactly its shape, sit in the lookup
 * slot of that tensor, and hold finite values. Each weight is then applied (lmz_lora_apply
 * to two tokens, and for token_embd the lookup of the first and the last token) on buffers
 * of exactly the sizes its shapes give, so ASan sees any access beyond them; and the
 * adapter written as F32 must load back into the same weights, bit for bit, and write
 * the same bytes again. ASan/UBSan/LeakSanitizer report the rest; abort() marks a broken
 * invariant.
 *
 * The seeds in tests/fixtures/lora/ (F32 and F16 adapters on each kind of weight the base has, and two
 * with tensors retyped to BF16, Q8_0 and the K-quants) are written by this target itself:
 *   LMZ_FUZZ_LORA_SEEDS=tests/fixtures/lora build-fuzz/fuzz_lora   (after fuzz/run.sh lora) */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/gguf/tensor_types.h"
#include "../src/lora/lora.h"
#include "../src/util/error.h"
#include "../src/util/sha256.h"

/* The tiny model writer, built into this target; these stand in for the test harness. */
#include "../tests/tiny_model.c"

void test_fail(const char *file, int line, const char *fmt, ...) {
    fprintf(stderr, "fuzz_lora: %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

const char *test_model_path(const char *name) {
    (void)name;
    return NULL; /* the base has a bare vocabulary: no tokenizer to take from a real model */
}

static void require(int cond) {
    if (!cond) abort();
}

static lmz_model *base;

static void free_base(void) { lmz_model_free(base); }

_Noreturn static void fail_setup(const char *what) {
    fprintf(stderr, "fuzz_lora: %s: %s\n", what, lmz_last_error());
    exit(2);
}

/* ---------------- seeds ---------------- */

static uint64_t seed_rng = 0x6c6f7261ull; /* "lora" */

/* Fills W's matrices with small nonzero values (what training leaves), so F16 rounds them. */
static void fill(lmz_lora_weight *w) {
    size_t na = (size_t)w->rank * (size_t)(w->embedding ? w->n_out : w->n_in);
    size_t nb = (size_t)w->rank * (size_t)(w->embedding ? w->n_in : w->n_out);
    for (size_t i = 0; i < na + nb; i++) {
        float u = (float)(rng_next(&seed_rng) >> 40) / (float)(1 << 24) - 0.5f; /* [-0.5, 0.5) */
        (i < na ? w->a : w->b)[i < na ? i : i - na] = 0.02f * u;
    }
}

/* One adapted weight of a seed; a_type/b_type other than the file's retype that tensor. */
typedef struct {
    const char *name;
    int rank;
    uint32_t a_type, b_type;
} seed_weight;

/* Sets the type of tensor NAME in the serialized FILE, leaving its data as they are: F16
 * data read as BF16 or as blocks of Q8_0 and the K-quants (scales taken from F16 values)
 * are finite, and these types take no more bytes than F16 for the same extents. */
static void retype(uint8_t *file, size_t size, const char *name, uint32_t type) {
    size_t n = strlen(name);
    uint8_t *p = memmem(file, size, name, n);
    if (!p) fail_setup(name);
    p += n + 4 + 16; /* after the name: n_dims (2) and ne[0..1], then the type */
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(type >> (8 * i));
}

static void write_seed(const char *dir, const char *file, float alpha, uint32_t type, const seed_weight *ws, int n) {
    lmz_lora *l = lmz_lora_new(base, alpha);
    if (!l) fail_setup("seed");
    for (int i = 0; i < n; i++) {
        lmz_lora_weight *w = lmz_lora_add(l, ws[i].name, ws[i].rank);
        if (!w) fail_setup(ws[i].name);
        fill(w);
    }
    uint8_t *data;
    size_t size;
    if (lmz_lora_serialize(l, type, &data, &size)) fail_setup(file);
    for (int i = 0; i < n; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s.lora_a", ws[i].name);
        if (ws[i].a_type != type) retype(data, size, name, ws[i].a_type);
        snprintf(name, sizeof name, "%s.lora_b", ws[i].name);
        if (ws[i].b_type != type) retype(data, size, name, ws[i].b_type);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) {
        fprintf(stderr, "fuzz_lora: cannot write %s\n", path);
        exit(2);
    }
    free(data);
    lmz_lora_free(l);
    printf("wrote %s\n", path);
}

static void write_seeds(const char *dir) {
    enum { F32 = LMZ_F32, F16 = LMZ_F16 };
    const seed_weight q_down[] = {{"blk.0.attn_q.weight", 2, F32, F32}, {"blk.1.ffn_down.weight", 2, F32, F32}};
    const seed_weight kvo[] = {{"blk.0.attn_k.weight", 1, F16, F16},
                               {"blk.0.attn_v.weight", 1, F16, F16},
                               {"blk.1.attn_output.weight", 2, F16, F16}};
    const seed_weight embd_gate[] = {{"token_embd.weight", 2, F32, F32}, {"blk.0.ffn_gate.weight", 1, F32, F32}};
    const seed_weight up_q[] = {{"blk.1.ffn_up.weight", 3, F16, F16}, {"blk.1.attn_q.weight", 1, F16, F16}};
    const seed_weight quant_a[] = {{"blk.0.attn_q.weight", 2, LMZ_Q8_0, LMZ_BF16},
                                   {"blk.1.ffn_down.weight", 1, LMZ_Q4_K, F16}};
    const seed_weight quant_b[] = {{"blk.0.ffn_down.weight", 1, LMZ_Q5_K, LMZ_BF16},
                                   {"blk.1.ffn_down.weight", 2, LMZ_Q6_K, F16}};
    write_seed(dir, "q_down_f32.gguf", 4.0f, F32, q_down, 2);
    write_seed(dir, "kvo_f16.gguf", 0.0f, F16, kvo, 3);
    write_seed(dir, "embd_gate_f32.gguf", 8.0f, F32, embd_gate, 2);
    write_seed(dir, "up_q_f16.gguf", 16.0f, F16, up_q, 2);
    write_seed(dir, "q8_bf16_q4k.gguf", 2.0f, F16, quant_a, 2);
    write_seed(dir, "q5k_q6k.gguf", 1.0f, F16, quant_b, 2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tiny_model_config c;
    tiny_model_config_default(&c);
    c.n_embd = 64;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_head_kv = 1;
    c.head_dim = 32;
    c.n_ff = 256; /* a multiple of 256: ffn_down's lora_a can be a K-quant */
    c.n_vocab = 300;
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/lmz-fuzz-lora-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "fuzz_lora: cannot create a temporary directory %s\n", dir);
        exit(2);
    }
    snprintf(path, sizeof path, "%s/base.gguf", dir);
    if (tiny_model_write_config(path, &c) == 0) base = lmz_model_load(path); /* mapped: stays after removal */
    remove(path);
    rmdir(dir);
    if (!base) fail_setup("the tiny base model");
    atexit(free_base);
    const char *seeds = getenv("LMZ_FUZZ_LORA_SEEDS");
    if (seeds && *seeds) {
        write_seeds(seeds);
        exit(0);
    }
    return 0;
}

/* ---------------- the invariants ---------------- */

static size_t a_elems(const lmz_lora_weight *w) { return (size_t)w->rank * (size_t)(w->embedding ? w->n_out : w->n_in); }
static size_t b_elems(const lmz_lora_weight *w) { return (size_t)w->rank * (size_t)(w->embedding ? w->n_in : w->n_out); }

static void check_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) require(isfinite(v[i]));
}

/* W adapts a tensor of the base with its shape, and is where the forward pass looks. */
static void check_weight(const lmz_lora *l, const lmz_lora_weight *w) {
    require(memchr(w->name, 0, sizeof w->name) != NULL);
    const gguf_tensor *t = gguf_find_tensor(base->file, w->name);
    require(t != NULL && t->n_dims == 2);
    require(w->rank >= 1 && w->rank <= l->max_rank && w->a != NULL && w->b != NULL);
    require(w->n_in == (int64_t)t->ne[0] && w->n_out == (int64_t)t->ne[1]);
    require(w->scale == (l->alpha != 0.0f ? l->alpha / (float)w->rank : 1.0f));
    require(w->embedding == !strcmp(w->name, "token_embd.weight"));
    if (w->embedding) {
        require(l->token_embd == w && w->n_in == base->n_embd && w->n_out == base->n_vocab);
    } else if (!strcmp(w->name, "output.weight")) {
        require(l->output == w);
    } else {
        int layer, end = 0;
        require(sscanf(w->name, "blk.%d.%n", &layer, &end) == 1 && end > 0 && layer >= 0 && layer < base->n_layer);
        int target = 0;
        static const char *const suffix[LMZ_LORA_N_TARGETS] = {
            "attn_q.weight",   "attn_k.weight", "attn_v.weight",  "attn_output.weight",
            "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
        };
        while (target < LMZ_LORA_N_TARGETS && strcmp(w->name + end, suffix[target])) target++;
        require(target < LMZ_LORA_N_TARGETS);
        require(lmz_lora_layer_weight(l, layer, (enum lmz_lora_target)target) == w);
    }
    check_finite(w->a, a_elems(w));
    check_finite(w->b, b_elems(w));
}

/* Applies W to finite inputs in buffers of exactly the sizes its shapes give. */
static void apply_weight(const lmz_lora_weight *w) {
    if (w->embedding) {
        float *x = malloc((size_t)w->n_in * sizeof *x);
        require(x != NULL);
        const int32_t tokens[2] = {0, (int32_t)(w->n_out - 1)};
        for (int k = 0; k < 2; k++) {
            for (int64_t i = 0; i < w->n_in; i++) x[i] = 0.01f * (float)(i % 7);
            lmz_lora_apply_embedding(w, tokens[k], x);
        }
        free(x);
        return;
    }
    enum { N_TOK = 2 };
    float *x = malloc((size_t)N_TOK * (size_t)w->n_in * sizeof *x);
    float *y = malloc((size_t)N_TOK * (size_t)w->n_out * sizeof *y);
    float *z = malloc((size_t)N_TOK * (size_t)w->rank * sizeof *z);
    require(x && y && z);
    for (size_t i = 0; i < (size_t)N_TOK * (size_t)w->n_in; i++) x[i] = 0.01f * (float)(i % 11) - 0.05f;
    for (size_t i = 0; i < (size_t)N_TOK * (size_t)w->n_out; i++) y[i] = 0.5f;
    lmz_lora_apply(w, x, N_TOK, y, w->n_out, z, NULL);
    /* One token at a time gives the same bits (the lmz_lora_apply contract). */
    float *y1 = malloc((size_t)w->n_out * sizeof *y1);
    require(y1 != NULL);
    for (int t = 0; t < N_TOK; t++) {
        for (int64_t j = 0; j < w->n_out; j++) y1[j] = 0.5f;
        lmz_lora_apply(w, x + t * w->n_in, 1, y1, w->n_out, z, NULL);
        require(memcmp(y1, y + t * w->n_out, (size_t)w->n_out * sizeof *y1) == 0);
    }
    free(y1);
    free(x);
    free(y);
    free(z);
}

static void same_weights(const lmz_lora *l, const lmz_lora *m) {
    require(m->n_weights == l->n_weights && m->max_rank == l->max_rank && m->model == base);
    require(!strcmp(m->arch, l->arch) && memcmp(&m->alpha, &l->alpha, sizeof m->alpha) == 0);
    for (int i = 0; i < l->n_weights; i++) {
        const lmz_lora_weight *w = l->weights[i], *v = m->weights[i];
        require(!strcmp(v->name, w->name) && v->embedding == w->embedding && v->rank == w->rank);
        require(v->n_in == w->n_in && v->n_out == w->n_out && memcmp(&v->scale, &w->scale, sizeof v->scale) == 0);
        require(memcmp(v->a, w->a, a_elems(w) * sizeof(float)) == 0);
        require(memcmp(v->b, w->b, b_elems(w) * sizeof(float)) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lmz_clear_error();
    lmz_lora *l = lmz_lora_load_buffer(data, size, "fuzz", base);
    if (!l) {
        require(strncmp(lmz_last_error(), "fuzz: ", 6) == 0);
        return 0;
    }
    require(l->model == base && l->n_weights >= 1 && l->weights != NULL && isfinite(l->alpha));
    require(!strcmp(l->arch, base->arch_name));
    uint8_t sha[32];
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, data, size);
    lmz_sha256_final(&h, sha);
    require(memcmp(sha, l->sha256, 32) == 0);

    int max_rank = 0, slots = 0;
    for (int i = 0; i < l->n_weights; i++)
        if (l->weights[i]->rank > max_rank) max_rank = l->weights[i]->rank;
    require(l->max_rank == max_rank);
    for (int i = 0; i < base->n_layer * LMZ_LORA_N_TARGETS; i++) slots += l->layer[i] != NULL;
    slots += (l->token_embd != NULL) + (l->output != NULL);
    require(slots == l->n_weights); /* and each weight is in its own slot: */
    for (int i = 0; i < l->n_weights; i++) {
        check_weight(l, l->weights[i]);
        apply_weight(l->weights[i]);
    }

    /* Written as F32 and read back: the same adapter, and the same bytes once more. */
    uint8_t *out = NULL, *again = NULL;
    size_t out_size = 0, again_size = 0;
    require(lmz_lora_serialize(l, LMZ_F32, &out, &out_size) == 0);
    lmz_lora *m = lmz_lora_load_buffer(out, out_size, "fuzz round trip", base);
    require(m != NULL);
    same_weights(l, m);
    require(lmz_lora_serialize(m, LMZ_F32, &again, &again_size) == 0);
    require(again_size == out_size && memcmp(again, out, out_size) == 0);
    free(again);
    free(out);
    lmz_lora_free(m);
    lmz_lora_free(l);
    return 0;
}
