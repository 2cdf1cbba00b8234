/* tiny_model.c — writes the tiny test model (tiny_model.h) as a GGUF v3 file
 * (../shared/docs/gguf-spec.md §1): the 24-byte header, the metadata records, the tensor
 * infos, zero padding to the 32-byte default alignment, then each tensor at an aligned
 * offset in info order (the contiguous layout llama.cpp insists on), all little-endian.
 *
 * Tensor types: F16 token embeddings (tied to the output head), Q4_1 matrices as in the
 * real SmolLM2 file, one Q8_0 matrix per layer (ffn_down) so that kernel runs too, F32
 * norms. The embeddings are F16, not the real file's Q8_0, because the output head
 * (64 x 49,152) is what a token costs here, and with 64-element rows Q8_0 took twice as
 * long per token as F16 on this project's machine.
 *
 * Weights are small, so the logits stay within a few units of each other: predictions are
 * close to uniform (~15.6 bits per token), which keeps most text chunks model-coded (a
 * peaked random model would make them bigger than the input, and they would all be stored
 * raw, leaving the coder untested). */
#include "tiny_model.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/gguf/gguf.h"
#include "../src/gguf/tensor_types.h"
#include "../src/util/error.h"
#include "../src/util/fp16.h"
#include "../src/util/sha256.h"
#include "test.h"

#define N_EMBD 64
#define N_LAYER 2
#define N_HEAD 2
#define N_HEAD_KV 1
#define HEAD_DIM (N_EMBD / N_HEAD)
#define N_FF 128
#define N_CTX 4096
#define ALIGNMENT 32        /* GGUF's default (no general.alignment key) */
#define EMBD_SCALE 0.0008f  /* embeddings: integers -127..127 times this, within +-0.1 */
#define LAYER_SCALE 0.01f   /* Q4_1 step (matrix entries within +-0.075); Q8_0 step / 10 */

/* ---------------- little-endian output buffer ---------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool failed; /* out of memory, or a value this writer cannot copy */
} buf;

static void put(buf *b, const void *data, size_t len) {
    if (b->failed) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + len) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void put_u16(buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put_u32(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(buf *b, const char *s, uint64_t len) {
    put_u64(b, len);
    put(b, s, (size_t)len);
}

static void pad_to(buf *b, size_t alignment) {
    static const uint8_t zeros[ALIGNMENT];
    put(b, zeros, (alignment - b->n % alignment) % alignment);
}

/* One scalar of type T: integers from I (two's complement for the signed ones), floats
 * from D. */
static void put_scalar(buf *b, enum gguf_value_type t, int64_t i, double d) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: {
        uint8_t x = (uint8_t)i;
        put(b, &x, 1);
        break;
    }
    case GGUF_UINT16: case GGUF_INT16: put_u16(b, (uint16_t)i); break;
    case GGUF_UINT32: case GGUF_INT32: put_u32(b, (uint32_t)i); break;
    case GGUF_UINT64: case GGUF_INT64: put_u64(b, (uint64_t)i); break;
    case GGUF_FLOAT32: put_u32(b, lmz_f32_to_bits((float)d)); break;
    case GGUF_FLOAT64: {
        uint64_t u;
        memcpy(&u, &d, 8);
        put_u64(b, u);
        break;
    }
    default: b->failed = true;
    }
}

/* ---------------- metadata ---------------- */

static void kv_str(buf *b, const char *key, const char *value) {
    put_str(b, key, strlen(key));
    put_u32(b, GGUF_STRING);
    put_str(b, value, strlen(value));
}

static void kv_u32(buf *b, const char *key, uint32_t value) {
    put_str(b, key, strlen(key));
    put_u32(b, GGUF_UINT32);
    put_u32(b, value);
}

static void kv_f32(buf *b, const char *key, float value) {
    put_str(b, key, strlen(key));
    put_u32(b, GGUF_FLOAT32);
    put_u32(b, lmz_f32_to_bits(value));
}

/* Copies key IDX of SRC with its stored type. The reader's accessors give array numbers
 * as doubles, exact for every type a tokenizer uses (32-bit integers, F32, bool); nested
 * arrays and negative integer scalars do not occur in tokenizer metadata and are refused. */
static int copy_key(buf *b, const gguf_file *src, int idx) {
    gguf_str name = gguf_key_name(src, idx);
    char key[256];
    if (name.len >= sizeof key) return lmz_fail("tiny model: key too long to copy");
    memcpy(key, name.ptr, name.len);
    key[name.len] = 0;
    enum gguf_value_type t = gguf_key_type(src, idx);
    put_str(b, key, name.len);
    put_u32(b, t);
    if (t == GGUF_STRING) {
        gguf_str s;
        gguf_get_str(src, key, &s);
        put_str(b, s.ptr, s.len);
    } else if (t == GGUF_ARRAY) {
        enum gguf_value_type et;
        uint64_t count;
        gguf_get_array(src, key, &et, &count);
        if (et == GGUF_ARRAY) return lmz_fail("tiny model: %s is a nested array", key);
        put_u32(b, et);
        put_u64(b, count);
        for (uint64_t i = 0; i < count; i++) {
            if (et == GGUF_STRING) {
                gguf_str s = gguf_array_str(src, key, i);
                put_str(b, s.ptr, s.len);
            } else {
                double d = gguf_array_num(src, key, i);
                put_scalar(b, et, (int64_t)d, d);
            }
        }
    } else if (t == GGUF_BOOL) {
        bool v = false;
        gguf_get_bool(src, key, &v);
        put_scalar(b, t, v, 0);
    } else if (t == GGUF_FLOAT32 || t == GGUF_FLOAT64) {
        float v = 0;
        gguf_get_f32(src, key, &v);
        put_scalar(b, t, 0, v);
    } else {
        uint64_t v;
        if (!gguf_get_u64(src, key, &v)) return lmz_fail("tiny model: %s is a negative integer", key);
        put_scalar(b, t, (int64_t)v, 0);
    }
    return 0;
}

/* ---------------- tensors ---------------- */

typedef struct {
    char name[64];
    uint32_t type;
    uint64_t ne0, ne1; /* ne1 = 0: a vector */
    uint64_t nbytes;
    float f32_lo;      /* F32 vectors: values uniform in [f32_lo, f32_lo + 0.5) */
    float layer_scale; /* Q4_1 step (Q8_0: a tenth of it) */
} tensor_spec;

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The tensor's data: random values or blocks with fixed scales, norm weights near 1 or
 * biases around 0. */
static void put_tensor_data(buf *b, const tensor_spec *t, uint64_t *rng) {
    if (t->type == LMZ_F16) {
        for (uint64_t i = 0; i < t->ne0 * t->ne1; i++)
            put_u16(b, lmz_f32_to_fp16((float)((int)(rng_next(rng) % 255) - 127) * EMBD_SCALE));
        return;
    }
    if (t->type == LMZ_F32) {
        for (uint64_t i = 0; i < t->ne0; i++) {
            float u = (float)(rng_next(rng) >> 40) / (float)(1 << 24); /* [0, 1) */
            put_u32(b, lmz_f32_to_bits(t->f32_lo + 0.5f * u));
        }
        return;
    }
    uint64_t blocks = t->ne0 / 32 * t->ne1;
    for (uint64_t k = 0; k < blocks; k++) {
        uint8_t q[32];
        for (int i = 0; i < 32; i += 8) {
            uint64_t r = rng_next(rng);
            memcpy(q + i, &r, 8);
        }
        if (t->type == LMZ_Q8_0) {
            put_u16(b, lmz_f32_to_fp16(t->layer_scale / 10));
            put(b, q, 32);
        } else { /* Q4_1: x = d * q + m with q in 0..15, centred on 0 */
            put_u16(b, lmz_f32_to_fp16(t->layer_scale));
            put_u16(b, lmz_f32_to_fp16(-7.5f * t->layer_scale));
            put(b, q, 16);
        }
    }
}

static int add_tensor(tensor_spec *specs, int *n, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1,
                      float layer_scale) {
    tensor_spec *t = &specs[(*n)++];
    uint32_t block_elems, block_bytes;
    if (!lmz_type_geometry(type, &block_elems, &block_bytes)) return lmz_fail("tiny model: unknown tensor type");
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->ne0 = ne0;
    t->ne1 = ne1;
    t->f32_lo = strstr(name, ".bias") ? -0.25f : 0.75f;
    t->layer_scale = layer_scale;
    t->nbytes = ne0 / block_elems * block_bytes * (ne1 ? ne1 : 1);
    return 0;
}

/* ---------------- the file ---------------- */

void tiny_model_config_default(tiny_model_config *c) {
    memset(c, 0, sizeof *c);
    c->arch = "llama";
    c->n_embd = N_EMBD;
    c->n_layer = N_LAYER;
    c->n_head = N_HEAD;
    c->n_head_kv = N_HEAD_KV;
    c->head_dim = HEAD_DIM;
    c->n_ff = N_FF;
    c->layer_scale = LAYER_SCALE;
    c->seed = TINY_MODEL_SEED;
}

/* An architecture key: "ARCH.SUFFIX". */
static const char *arch_key(const tiny_model_config *c, const char *suffix) {
    static char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    return key;
}

int tiny_model_write(const char *path, uint64_t seed) {
    tiny_model_config c;
    tiny_model_config_default(&c);
    c.seed = seed;
    return tiny_model_write_config(path, &c);
}

int tiny_model_write_config(const char *path, const tiny_model_config *c) {
    const bool qwen2 = !strcmp(c->arch, "qwen2"), gemma3 = !strcmp(c->arch, "gemma3");
    gguf_file *src = NULL;
    uint64_t n_vocab = (uint64_t)c->n_vocab;
    if (!n_vocab) {
        const char *src_path = test_model_path("smollm2");
        if (!src_path)
            return lmz_fail("the SmolLM2 model is not downloaded (run `make`); the tiny model takes its tokenizer");
        src = gguf_open(src_path);
        if (!src) return -1;
        enum gguf_value_type et;
        if (!gguf_get_array(src, "tokenizer.ggml.tokens", &et, &n_vocab)) {
            gguf_close(src);
            return lmz_fail("%s has no tokenizer.ggml.tokens", src_path);
        }
    }

    buf kv = {0}, info = {0}, file = {0};
    uint64_t n_kv = 0;
    int rc = -1;
    const int E = c->n_embd, QD = c->n_head * c->head_dim, KD = c->n_head_kv * c->head_dim;
    kv_str(&kv, "general.architecture", c->arch);
    kv_str(&kv, "general.type", "model");
    kv_str(&kv, "general.name", TINY_MODEL_NAME);
    kv_u32(&kv, "general.file_type", 3); /* "mostly Q4_1", as the real file */
    kv_u32(&kv, "general.quantization_version", 2);
    kv_u32(&kv, arch_key(c, "block_count"), (uint32_t)c->n_layer);
    kv_u32(&kv, arch_key(c, "context_length"), N_CTX);
    kv_u32(&kv, arch_key(c, "embedding_length"), (uint32_t)E);
    kv_u32(&kv, arch_key(c, "feed_forward_length"), (uint32_t)c->n_ff);
    kv_u32(&kv, arch_key(c, "attention.head_count"), (uint32_t)c->n_head);
    kv_u32(&kv, arch_key(c, "attention.head_count_kv"), (uint32_t)c->n_head_kv);
    kv_f32(&kv, arch_key(c, "rope.freq_base"), 100000.0f);
    kv_f32(&kv, arch_key(c, "attention.layer_norm_rms_epsilon"), 1e-5f);
    kv_u32(&kv, arch_key(c, "vocab_size"), (uint32_t)n_vocab);
    kv_u32(&kv, arch_key(c, "rope.dimension_count"), (uint32_t)c->head_dim);
    n_kv = 15;
    if (c->head_dim * c->n_head != E) {
        kv_u32(&kv, arch_key(c, "attention.key_length"), (uint32_t)c->head_dim);
        kv_u32(&kv, arch_key(c, "attention.value_length"), (uint32_t)c->head_dim);
        n_kv += 2;
    }
    if (gemma3) { /* every other layer local, from layer 0, with its own RoPE base */
        kv_u32(&kv, arch_key(c, "attention.sliding_window"), (uint32_t)c->n_swa);
        kv_u32(&kv, arch_key(c, "attention.sliding_window_pattern"), 2);
        kv_f32(&kv, arch_key(c, "rope.freq_base_swa"), 10000.0f);
        n_kv += 3;
    }
    if (c->logit_softcap > 0) {
        kv_f32(&kv, arch_key(c, "final_logit_softcapping"), c->logit_softcap);
        n_kv++;
    }
    if (src) {
        for (int i = 0; i < gguf_n_keys(src); i++) {
            gguf_str name = gguf_key_name(src, i);
            if (name.len < 10 || memcmp(name.ptr, "tokenizer.", 10)) continue;
            if (copy_key(&kv, src, i)) goto done;
            n_kv++;
        }
    } else { /* a bare vocabulary: enough for the model, no tokenizer */
        static const char key[] = "tokenizer.ggml.tokens";
        put_str(&kv, key, strlen(key));
        put_u32(&kv, GGUF_ARRAY);
        put_u32(&kv, GGUF_STRING);
        put_u64(&kv, n_vocab);
        for (uint64_t i = 0; i < n_vocab; i++) {
            char tok[32];
            snprintf(tok, sizeof tok, "t%llu", (unsigned long long)i);
            put_str(&kv, tok, strlen(tok));
        }
        n_kv++;
    }

    enum { PER_LAYER = 16, MAX_LAYERS = 16 };
    if (c->n_layer > MAX_LAYERS) {
        lmz_fail("tiny model: at most %d layers", MAX_LAYERS);
        goto done;
    }
    tensor_spec specs[2 + PER_LAYER * MAX_LAYERS];
    int n = 0;
    const float ls = c->layer_scale;
    const uint32_t q4 = c->f16_matrices ? LMZ_F16 : LMZ_Q4_1, q8 = c->f16_matrices ? LMZ_F16 : LMZ_Q8_0;
    if (add_tensor(specs, &n, "token_embd.weight", LMZ_F16, (uint64_t)E, n_vocab, ls)) goto done;
    for (int l = 0; l < c->n_layer; l++) {
        const struct {
            const char *suffix;
            uint32_t type;
            uint64_t ne0, ne1;
            bool add;
        } layer[] = {
            {"attn_norm.weight", LMZ_F32, E, 0, true},
            {"attn_q.weight", q4, E, QD, true},
            {"attn_k.weight", q4, E, KD, true},
            {"attn_v.weight", q4, E, KD, true},
            {"attn_output.weight", q4, QD, E, true},
            {"ffn_norm.weight", LMZ_F32, E, 0, true},
            {"ffn_gate.weight", q4, E, c->n_ff, true},
            {"ffn_up.weight", q4, E, c->n_ff, true},
            {"ffn_down.weight", q8, c->n_ff, E, true},
            {"attn_q.bias", LMZ_F32, QD, 0, qwen2},
            {"attn_k.bias", LMZ_F32, KD, 0, qwen2},
            {"attn_v.bias", LMZ_F32, KD, 0, qwen2},
            {"attn_q_norm.weight", LMZ_F32, c->head_dim, 0, gemma3},
            {"attn_k_norm.weight", LMZ_F32, c->head_dim, 0, gemma3},
            {"post_attention_norm.weight", LMZ_F32, E, 0, gemma3},
            {"post_ffw_norm.weight", LMZ_F32, E, 0, gemma3},
        };
        for (size_t j = 0; j < sizeof layer / sizeof layer[0]; j++) {
            if (!layer[j].add) continue;
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, layer[j].suffix);
            if (add_tensor(specs, &n, name, layer[j].type, layer[j].ne0, layer[j].ne1, ls)) goto done;
        }
    }
    if (add_tensor(specs, &n, "output_norm.weight", LMZ_F32, (uint64_t)E, 0, ls)) goto done;

    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        put_str(&info, specs[i].name, strlen(specs[i].name));
        put_u32(&info, specs[i].ne1 ? 2 : 1);
        put_u64(&info, specs[i].ne0);
        if (specs[i].ne1) put_u64(&info, specs[i].ne1);
        put_u32(&info, specs[i].type);
        put_u64(&info, offset);
        offset += (specs[i].nbytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    put(&file, "GGUF", 4);
    put_u32(&file, 3);
    put_u64(&file, (uint64_t)n);
    put_u64(&file, n_kv);
    put(&file, kv.p, kv.n);
    put(&file, info.p, info.n);
    pad_to(&file, ALIGNMENT);
    uint64_t rng = c->seed;
    for (int i = 0; i < n; i++) {
        put_tensor_data(&file, &specs[i], &rng);
        pad_to(&file, ALIGNMENT);
    }
    if (kv.failed || info.failed || file.failed) {
        lmz_fail("tiny model: out of memory, or a tokenizer key of a type it cannot copy");
        goto done;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        lmz_fail("cannot create %s", path);
        goto done;
    }
    bool ok = fwrite(file.p, 1, file.n, f) == file.n;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        remove(path);
        lmz_fail("cannot write %s", path);
        goto done;
    }
    rc = 0;
done:
    free(kv.p);
    free(info.p);
    free(file.p);
    if (src) gguf_close(src);
    return rc;
}

/* ---------------- the default instance ---------------- */

static struct {
    bool tried;
    char dir[4096], path[4200];
    lmz_model *model;
    lmz_tokenizer *tok;
    uint8_t sha[32];
} tiny;

static void remove_tiny(void) {
    lmz_tokenizer_free(tiny.tok);
    lmz_model_free(tiny.model);
    remove(tiny.path);
    rmdir(tiny.dir);
}

static bool ensure_tiny(void) {
    if (tiny.model) return true;
    if (tiny.tried) {
        test_fail(__FILE__, __LINE__, "the tiny model could not be built (see the first failure)");
        return false;
    }
    tiny.tried = true;
    const char *tmp = getenv("TMPDIR");
    snprintf(tiny.dir, sizeof tiny.dir, "%s/lmz-tiny-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tiny.dir)) {
        test_fail(__FILE__, __LINE__, "cannot create a temporary directory %s", tiny.dir);
        return false;
    }
    snprintf(tiny.path, sizeof tiny.path, "%s/tiny.gguf", tiny.dir);
    atexit(remove_tiny);
    if (tiny_model_write(tiny.path, TINY_MODEL_SEED)) {
        test_fail(__FILE__, __LINE__, "building the tiny model: %s", lmz_last_error());
        return false;
    }
    lmz_model *m = lmz_model_load(tiny.path);
    if (!m) {
        test_fail(__FILE__, __LINE__, "loading the tiny model: %s", lmz_last_error());
        return false;
    }
    tiny.tok = lmz_tokenizer_load(m->file);
    if (!tiny.tok) {
        test_fail(__FILE__, __LINE__, "loading the tiny model's tokenizer: %s", lmz_last_error());
        lmz_model_free(m);
        return false;
    }
    size_t size;
    const void *base = gguf_base(m->file, &size);
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, base, size);
    lmz_sha256_final(&h, tiny.sha);
    tiny.model = m;
    return true;
}

const char *tiny_model_path(void) { return ensure_tiny() ? tiny.path : NULL; }
lmz_model *tiny_model(void) { return ensure_tiny() ? tiny.model : NULL; }
lmz_tokenizer *tiny_tokenizer(void) { return ensure_tiny() ? tiny.tok : NULL; }
const uint8_t *tiny_model_sha256(void) { return ensure_tiny() ? tiny.sha : NULL; }
