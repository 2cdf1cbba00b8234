/* trainer.c — the training loop (train.h): configuration, the fresh adapter, the data
 * order, optimizer steps (accumulation, clipping, schedule, AdamW) and checkpoints.
 *
 * Checkpoint file (little-endian):
 *   "LMZTRAIN" magic, u32 version (1)
 *   the model file's SHA-256 (32 bytes), the data's (lmz_train_data_sha256, 32 bytes)
 *   the configuration: u32 rank, f32 alpha, u32 targets, f32 lr, beta1, beta2, eps,
 *     weight_decay, clip, u64 steps, u32 warmup, seq, batch, accum, u64 seed
 *   the state: u64 steps done, u64 rng, u64 rng at the start of the epoch, u64 epoch,
 *     u64 sequences of the epoch done
 *   u64 size, then the adapter as a GGUF file (F32, lmz_lora_serialize)
 *   u64 n, then the first and second AdamW moments (n f32 each, graph.h's layout)
 *   the SHA-256 of everything before it (32 bytes)
 * The epoch's order is not stored: it is drawn again from the RNG state the epoch began
 * with, which gives the same permutation. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../coder/bytebuf.h"
#include "../gguf/tensor_types.h"
#include "../util/error.h"
#include "../util/fp16.h"
#include "../util/mathfn.h"
#include "../util/sha256.h"
#include "graph.h"
#include "train.h"

#define CHECKPOINT_MAGIC "LMZTRAIN"
#define CHECKPOINT_VERSION 1

static const char *const target_short[LMZ_LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *const target_tensor[LMZ_LORA_N_TARGETS] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                              "ffn_gate", "ffn_up", "ffn_down"};

/* ---------------- configuration ---------------- */

void lmz_train_config_default(lmz_train_config *c) {
    memset(c, 0, sizeof *c);
    c->rank = 16;
    c->alpha = 32.0f;
    c->targets = (1u << LMZ_LORA_N_TARGETS) - 1;
    c->lr = 2e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.0f;
    c->clip = 1.0f;
    c->steps = 100;
    c->warmup = 0;
    c->seq = 256;
    c->batch = 1;
    c->accum = 1;
    c->seed = 0;
}

int lmz_train_config_check(const lmz_train_config *c) {
    if (c->rank < 1 || c->rank > 4096) return lmz_fail("rank %d is out of range (1..4096)", c->rank);
    if (!(c->alpha > 0) || !isfinite(c->alpha)) return lmz_fail("alpha must be positive, not %g", (double)c->alpha);
    if (!c->targets || c->targets >> LMZ_LORA_N_TARGETS) return lmz_fail("no valid projection to adapt");
    if (!(c->lr > 0) || !isfinite(c->lr)) return lmz_fail("the learning rate must be positive, not %g", (double)c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return lmz_fail("AdamW's betas must be in [0, 1) (%g, %g)", (double)c->beta1, (double)c->beta2);
    if (!(c->eps > 0)) return lmz_fail("AdamW's epsilon must be positive, not %g", (double)c->eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return lmz_fail("weight decay must be 0 or more, not %g", (double)c->weight_decay);
    if (!(c->clip >= 0) || !isfinite(c->clip))
        return lmz_fail("the clipping norm must be 0 or more, not %g", (double)c->clip);
    if (c->steps < 1 || c->steps > (1ll << 40)) return lmz_fail("the run needs at least one step");
    if (c->warmup < 0) return lmz_fail("warm-up steps cannot be negative");
    if (c->seq < 1 || c->seq > 65535) return lmz_fail("sequence length %d is out of range (1..65535)", c->seq);
    if (c->batch < 1 || c->accum < 1 || (int64_t)c->batch * c->accum > (1 << 20))
        return lmz_fail("batch and accumulation must be 1 or more (%d, %d)", c->batch, c->accum);
    return 0;
}

int lmz_train_parse_targets(const char *list, unsigned *targets) {
    *targets = 0;
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int t = 0; t < LMZ_LORA_N_TARGETS; t++)
            if (strlen(target_short[t]) == n && !strncmp(p, target_short[t], n)) found = t;
        if (found < 0)
            return lmz_fail("unknown projection '%.*s' (choose from q,k,v,o,gate,up,down)", (int)(n > 40 ? 40 : n), p);
        *targets |= 1u << found;
        if (!p[n]) return 0;
        p += n + 1;
    }
}

void lmz_train_format_targets(unsigned targets, char *out, size_t size) {
    size_t n = 0;
    out[0] = 0;
    for (int t = 0; t < LMZ_LORA_N_TARGETS; t++)
        if (targets >> t & 1 && n < size)
            n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "," : "", target_short[t]);
}

float lmz_train_lr(const lmz_train_config *c, int64_t step) {
    if (step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
    int64_t span = c->steps - c->warmup;
    double progress = span > 0 ? (double)(step - c->warmup) / (double)span : 0.0;
    if (progress > 1) progress = 1;
    return (float)((double)c->lr * 0.5 * (1.0 + lmz_cos(3.14159265358979323846 * progress)));
}

/* ---------------- the trainer ---------------- */

struct lmz_trainer {
    const lmz_model *m;
    const lmz_train_data *data;
    lmz_train_config cfg;
    lmz_lora *lora;
    lmz_pool *pool;
    lmz_train_graph *graph;
    lmz_train_vec grad, m1, m2;   /* gradient, AdamW moments */
    int64_t step;                 /* steps done */
    uint64_t rng, rng_epoch;      /* the RNG now, and as it was before the epoch's shuffle */
    int64_t epoch, pos;           /* the epoch, and how many of its sequences were used */
    size_t *order;                /* the epoch's permutation of the sequences */
    uint8_t model_sha[32], data_sha[32];
};

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 24 bits. */
static float rng_unit(uint64_t *s) { return (float)(rng_next(s) >> 40) / (float)(1 << 24); }

/* Draws the current epoch's order (Fisher-Yates) from the RNG, remembering its state. */
static void shuffle(lmz_trainer *t) {
    const size_t n = t->data->n_seqs;
    t->rng_epoch = t->rng;
    for (size_t i = 0; i < n; i++) t->order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&t->rng) % (uint64_t)(i + 1)), x = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = x;
    }
}

static void model_sha256(const lmz_model *m, uint8_t sha[32]) {
    size_t size;
    const void *base = gguf_base(m->file, &size);
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, base, size);
    lmz_sha256_final(&h, sha);
}

void lmz_trainer_free(lmz_trainer *t) {
    if (!t) return;
    lmz_train_graph_free(t->graph);
    lmz_pool_free(t->pool);
    lmz_train_vec_free(&t->grad);
    lmz_train_vec_free(&t->m1);
    lmz_train_vec_free(&t->m2);
    lmz_lora_free(t->lora);
    free(t->order);
    free(t);
}

/* Everything but the adapter, the moments' values and the data position. */
static lmz_trainer *trainer_new(const lmz_model *m, const lmz_train_config *cfg, const lmz_train_data *data) {
    if (lmz_train_config_check(cfg)) return NULL;
    if (data->seq != cfg->seq) {
        lmz_fail("the data was cut into sequences of %d tokens, the run wants %d", data->seq, cfg->seq);
        return NULL;
    }
    if (!data->n_seqs) {
        lmz_fail("no training data (the files hold no text)");
        return NULL;
    }
    lmz_trainer *t = lmz_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->m = m;
    t->data = data;
    t->cfg = *cfg;
    t->order = lmz_malloc(data->n_seqs * sizeof *t->order);
    if (!t->order) {
        free(t);
        return NULL;
    }
    model_sha256(m, t->model_sha);
    lmz_train_data_sha256(data, t->data_sha);
    return t;
}

/* The pool, graph, gradient and moments for t->lora. */
static int trainer_attach(lmz_trainer *t, int n_threads) {
    t->pool = lmz_pool_create(n_threads);
    if (!t->pool) return -1;
    t->graph = lmz_train_graph_create(t->m, t->lora, t->cfg.seq, t->pool);
    if (!t->graph) return -1;
    if (lmz_train_vec_init(&t->grad, t->lora) || lmz_train_vec_init(&t->m1, t->lora) ||
        lmz_train_vec_init(&t->m2, t->lora))
        return -1;
    return 0;
}

lmz_trainer *lmz_trainer_create(const lmz_model *m, const lmz_train_config *cfg, const lmz_train_data *data,
                                int n_threads) {
    lmz_trainer *t = trainer_new(m, cfg, data);
    if (!t) return NULL;
    t->rng = cfg->seed;
    t->lora = lmz_lora_new(m, cfg->alpha);
    if (!t->lora) goto fail;
    /* Layer by layer, in target order; A kaiming-uniform as PEFT (a = sqrt(5): bound
     * 1/sqrt(fan_in)), B zero, so the adapter starts as the identity. */
    for (int il = 0; il < m->n_layer; il++)
        for (int tg = 0; tg < LMZ_LORA_N_TARGETS; tg++) {
            if (!(cfg->targets >> tg & 1)) continue;
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, target_tensor[tg]);
            lmz_lora_weight *w = lmz_lora_add(t->lora, name, cfg->rank);
            if (!w) goto fail;
            const float bound = 1.0f / sqrtf((float)w->n_in);
            for (int64_t i = 0; i < (int64_t)w->rank * w->n_in; i++)
                w->a[i] = bound * (2.0f * rng_unit(&t->rng) - 1.0f);
        }
    if (trainer_attach(t, n_threads)) goto fail;
    shuffle(t);
    return t;
fail:
    lmz_trainer_free(t);
    return NULL;
}

int64_t lmz_trainer_steps_done(const lmz_trainer *t) { return t->step; }
const lmz_train_config *lmz_trainer_config(const lmz_trainer *t) { return &t->cfg; }
lmz_lora *lmz_trainer_adapter(lmz_trainer *t) { return t->lora; }

/* The next sequence in the data order, starting a new epoch when one is used up. */
static size_t next_sequence(lmz_trainer *t) {
    if ((size_t)t->pos == t->data->n_seqs) {
        t->epoch++;
        t->pos = 0;
        shuffle(t);
    }
    return t->order[t->pos++];
}

/* p = p - lr * wd * p, then p = p - lr * m^ / (sqrt(v^) + eps) with the bias-corrected
 * moments m^ = m / BC1, v^ = v / BC2 (PyTorch's AdamW). */
static void adamw(const lmz_train_config *c, float lr, float bc1, float bc2, float *p, const float *g, float *m,
                  float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        m[i] = c->beta1 * m[i] + (1.0f - c->beta1) * g[i];
        v[i] = c->beta2 * v[i] + (1.0f - c->beta2) * (g[i] * g[i]);
        if (c->weight_decay > 0) p[i] = p[i] - lr * c->weight_decay * p[i];
        p[i] = p[i] - lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + c->eps);
    }
}

int lmz_trainer_step(lmz_trainer *t, lmz_train_stats *st) {
    const lmz_train_config *c = &t->cfg;
    const lmz_train_data *d = t->data;
    const int n_seq = c->batch * c->accum;
    size_t *picked = lmz_malloc((size_t)n_seq * sizeof *picked);
    if (!picked) return -1;
    /* The step's sequences first: the loss is a mean over all their predictions. */
    int64_t tokens = 0;
    for (int i = 0; i < n_seq; i++) {
        picked[i] = next_sequence(t);
        tokens += (int64_t)(d->off[picked[i] + 1] - d->off[picked[i]] - 1);
    }
    memset(t->grad.data, 0, t->grad.n * sizeof(float));
    double loss = 0;
    for (int i = 0; i < n_seq; i++) {
        const size_t s = picked[i];
        double l;
        if (lmz_train_graph_run(t->graph, d->tokens + d->off[s], (int)(d->off[s + 1] - d->off[s] - 1),
                                1.0f / (float)tokens, &t->grad, &l)) {
            free(picked);
            return -1;
        }
        loss += l;
    }
    free(picked);

    double norm2 = 0;
    for (size_t i = 0; i < t->grad.n; i++) norm2 += (double)t->grad.data[i] * t->grad.data[i];
    const double norm = sqrt(norm2);
    if (c->clip > 0 && norm > c->clip) {
        const float scale = (float)(c->clip / norm);
        for (size_t i = 0; i < t->grad.n; i++) t->grad.data[i] *= scale;
    }
    const float lr = lmz_train_lr(c, t->step);
    t->step++;
    const float bc1 = (float)(1.0 - lmz_pow(c->beta1, (double)t->step));
    const float bc2 = (float)(1.0 - lmz_pow(c->beta2, (double)t->step));
    for (int i = 0; i < t->lora->n_weights; i++) {
        lmz_lora_weight *w = t->lora->weights[i];
        const size_t na = (size_t)w->rank * (size_t)w->n_in, nb = (size_t)w->rank * (size_t)w->n_out;
        const size_t a = t->grad.a_off[i], b = t->grad.b_off[i];
        adamw(c, lr, bc1, bc2, w->a, t->grad.data + a, t->m1.data + a, t->m2.data + a, na);
        adamw(c, lr, bc1, bc2, w->b, t->grad.data + b, t->m1.data + b, t->m2.data + b, nb);
    }
    if (st) {
        st->step = t->step;
        st->loss = loss / (double)tokens;
        st->tokens = tokens;
        st->lr = lr;
        st->grad_norm = norm;
        st->epoch = (size_t)t->pos == d->n_seqs ? t->epoch + 1 : t->epoch;
    }
    return 0;
}

/* ---------------- checkpoints ---------------- */

static void put_u32(lmz_bytebuf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    lmz_bytebuf_append(b, x, 4);
}

static void put_u64(lmz_bytebuf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(lmz_bytebuf *b, float v) { put_u32(b, lmz_f32_to_bits(v)); }

static void put_config(lmz_bytebuf *b, const lmz_train_config *c) {
    put_u32(b, (uint32_t)c->rank);
    put_f32(b, c->alpha);
    put_u32(b, c->targets);
    put_f32(b, c->lr);
    put_f32(b, c->beta1);
    put_f32(b, c->beta2);
    put_f32(b, c->eps);
    put_f32(b, c->weight_decay);
    put_f32(b, c->clip);
    put_u64(b, (uint64_t)c->steps);
    put_u32(b, (uint32_t)c->warmup);
    put_u32(b, (uint32_t)c->seq);
    put_u32(b, (uint32_t)c->batch);
    put_u32(b, (uint32_t)c->accum);
    put_u64(b, c->seed);
}

static int write_file(const char *path, const uint8_t *data, size_t size) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int err = errno;
        if (fd >= 0) close(fd), remove(tmp);
        return lmz_fail("cannot create a file beside %s: %s", path, strerror(err));
    }
    fchmod(fd, 0644);
    bool ok = fwrite(data, 1, size, f) == size;
    ok = fflush(f) == 0 && ok;
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        err = errno;
        ok = false;
    }
    if (ok) return 0;
    remove(tmp);
    return lmz_fail("cannot write the checkpoint %s: %s", path, strerror(err));
}

int lmz_trainer_save_checkpoint(lmz_trainer *t, const char *path) {
    uint8_t *adapter;
    size_t adapter_size;
    if (lmz_lora_serialize(t->lora, LMZ_F32, &adapter, &adapter_size)) return -1;
    lmz_bytebuf b = {0};
    lmz_bytebuf_append(&b, CHECKPOINT_MAGIC, 8);
    put_u32(&b, CHECKPOINT_VERSION);
    lmz_bytebuf_append(&b, t->model_sha, 32);
    lmz_bytebuf_append(&b, t->data_sha, 32);
    put_config(&b, &t->cfg);
    put_u64(&b, (uint64_t)t->step);
    put_u64(&b, t->rng);
    put_u64(&b, t->rng_epoch);
    put_u64(&b, (uint64_t)t->epoch);
    put_u64(&b, (uint64_t)t->pos);
    put_u64(&b, adapter_size);
    lmz_bytebuf_append(&b, adapter, adapter_size);
    free(adapter);
    put_u64(&b, t->m1.n);
    for (size_t i = 0; i < t->m1.n; i++) put_f32(&b, t->m1.data[i]);
    for (size_t i = 0; i < t->m2.n; i++) put_f32(&b, t->m2.data[i]);
    uint8_t sha[32];
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, b.data, b.len);
    lmz_sha256_final(&h, sha);
    int rc = lmz_bytebuf_append(&b, sha, 32);
    if (!rc) rc = write_file(path, b.data, b.len);
    lmz_bytebuf_free(&b);
    return rc;
}

/* A bounds-checked reader over a checkpoint in memory. */
typedef struct {
    const uint8_t *p;
    size_t left;
    bool short_read;
} reader;

static const uint8_t *take(reader *r, size_t n) {
    if (r->short_read || r->left < n) {
        r->short_read = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t get_u32(reader *r) {
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}

static uint64_t get_u64(reader *r) {
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static float get_f32(reader *r) { return lmz_bits_to_f32(get_u32(r)); }

static void get_config(reader *r, lmz_train_config *c) {
    c->rank = (int)get_u32(r);
    c->alpha = get_f32(r);
    c->targets = get_u32(r);
    c->lr = get_f32(r);
    c->beta1 = get_f32(r);
    c->beta2 = get_f32(r);
    c->eps = get_f32(r);
    c->weight_decay = get_f32(r);
    c->clip = get_f32(r);
    c->steps = (int64_t)get_u64(r);
    c->warmup = (int)get_u32(r);
    c->seq = (int)get_u32(r);
    c->batch = (int)get_u32(r);
    c->accum = (int)get_u32(r);
    c->seed = get_u64(r);
}

static uint8_t *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lmz_fail("cannot open the checkpoint %s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *data = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0) data = lmz_malloc(len ? (size_t)len : 1);
    bool ok = data && fread(data, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    if (!ok) {
        free(data);
        lmz_fail("cannot read the checkpoint %s", path);
        return NULL;
    }
    *size = (size_t)len;
    return data;
}

/* Reads checkpoint PATH, checks its magic, checksum and version, and reads it up to and
 * including the configuration: the file (malloc'd) and a reader at what follows. */
static uint8_t *open_checkpoint(const char *path, reader *r, const uint8_t **model_sha, const uint8_t **data_sha,
                                lmz_train_config *cfg) {
    size_t size;
    uint8_t *file = read_whole(path, &size);
    if (!file) return NULL;
    uint8_t sha[32];
    if (size < 8 + 4 + 32 || memcmp(file, CHECKPOINT_MAGIC, 8)) {
        lmz_fail("%s is not an lmz training checkpoint", path);
        goto fail;
    }
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, file, size - 32);
    lmz_sha256_final(&h, sha);
    if (memcmp(sha, file + size - 32, 32)) {
        lmz_fail("the checkpoint %s is damaged (checksum mismatch)", path);
        goto fail;
    }
    *r = (reader){file + 8, size - 8 - 32, false};
    uint32_t version = get_u32(r);
    if (version != CHECKPOINT_VERSION) {
        lmz_fail("the checkpoint %s has version %u; this lmz reads version %d", path, version, CHECKPOINT_VERSION);
        goto fail;
    }
    *model_sha = take(r, 32);
    *data_sha = take(r, 32);
    get_config(r, cfg);
    if (!r->short_read) return file;
    lmz_fail("the checkpoint %s is truncated", path);
fail:
    free(file);
    return NULL;
}

int lmz_train_checkpoint_config(const char *path, lmz_train_config *cfg) {
    reader r;
    const uint8_t *model_sha, *data_sha;
    uint8_t *file = open_checkpoint(path, &r, &model_sha, &data_sha, cfg);
    free(file);
    return file ? 0 : -1;
}

lmz_trainer *lmz_trainer_resume(const lmz_model *m, const char *path, const lmz_train_data *data, int n_threads) {
    reader r;
    const uint8_t *model_sha, *data_sha;
    lmz_train_config cfg;
    uint8_t *file = open_checkpoint(path, &r, &model_sha, &data_sha, &cfg);
    if (!file) return NULL;
    lmz_trainer *t = trainer_new(m, &cfg, data);
    if (!t) goto fail;
    if (memcmp(t->model_sha, model_sha, 32)) {
        lmz_fail("the checkpoint %s was made with another model than %s", path, m->path);
        goto fail;
    }
    if (memcmp(t->data_sha, data_sha, 32)) {
        lmz_fail("the checkpoint %s was made with other training data (give the same --data files, in the same "
                 "order)", path);
        goto fail;
    }
    t->step = (int64_t)get_u64(&r);
    t->rng = get_u64(&r);
    t->rng_epoch = get_u64(&r);
    t->epoch = (int64_t)get_u64(&r);
    t->pos = (int64_t)get_u64(&r);
    size_t adapter_size = (size_t)get_u64(&r);
    const uint8_t *adapter = take(&r, adapter_size);
    if (r.short_read || t->pos < 0 || (size_t)t->pos > data->n_seqs || t->step < 0) {
        lmz_fail("the checkpoint %s is inconsistent", path);
        goto fail;
    }
    t->lora = lmz_lora_load_buffer(adapter, adapter_size, path, m);
    if (!t->lora) goto fail;
    int per_layer = 0;
    for (int i = 0; i < LMZ_LORA_N_TARGETS; i++) per_layer += cfg.targets >> i & 1;
    bool match = t->lora->n_weights == per_layer * m->n_layer;
    for (int i = 0; match && i < t->lora->n_weights; i++) match = t->lora->weights[i]->rank == cfg.rank;
    if (!match) {
        lmz_fail("the checkpoint %s holds an adapter that does not match its configuration", path);
        goto fail;
    }
    if (trainer_attach(t, n_threads)) goto fail;
    uint64_t n = get_u64(&r);
    if (n != t->m1.n || r.left != 8 * n) {
        lmz_fail("the checkpoint %s holds optimizer moments that do not match its adapter", path);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) t->m1.data[i] = get_f32(&r);
    for (size_t i = 0; i < n; i++) t->m2.data[i] = get_f32(&r);
    /* Draw the epoch's order again from the state it was drawn with. */
    const uint64_t rng = t->rng;
    t->rng = t->rng_epoch;
    shuffle(t);
    if (t->rng != rng) {
        lmz_fail("the checkpoint %s is inconsistent (RNG state)", path);
        goto fail;
    }
    free(file);
    return t;
fail:
    free(file);
    lmz_trainer_free(t);
    return NULL;
}
