/* forward.c — the transformer forward pass over a batch of tokens, with a KV cache.
 *
 * Reading order: lmz_decode() -> forward_ubatch() -> one layer = attention block + FFN
 * block -> output head. Every reduction has one fixed order (quant.h, vecf.h), every
 * per-token computation reads only that token's row, and the cache holds K after RoPE
 * and V as fp16; so a token's logits depend only on its own prefix, never on how the
 * tokens were batched or how many threads ran.
 *
 * A LoRA adapter (src/lora/lora.h), when the context has one, is applied unmerged: matmul()
 * adds scale * B (A x) of the unquantized input to the finished W x (lmz_lora_apply), before
 * any bias; token_embd's adapter adds its term to the looked-up embedding before Gemma's
 * embedding scale. Without an adapter none of this runs, so the logits are unchanged bit
 * for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../kernels/attention.h"
#include "../kernels/quant.h"
#include "../kernels/vecf.h"
#include "../lora/lora.h"
#include "../runtime/threadpool.h"
#include "../util/error.h"
#include "../util/fp16.h"
#include "../util/mathfn.h"
#include "model.h"

#define MAX_UBATCH 512  /* tokens per internal batch (bounds the scratch buffers) */
#define TOKEN_TILE 64   /* tokens per matmul pass: their quantized activations stay in L2 */
#define ROW_GRAIN 16    /* weight rows per work unit */

struct lmz_ctx {
    const lmz_model *m;
    int n_ctx, n_seq, kv_dim;
    lmz_pool *pool;
    uint16_t *k_cache, *v_cache;   /* [layer][seq][kv head][pos][head_dim] fp16, mapped anonymously */
    size_t cache_bytes;            /* of each */
    int *seq_len;
    /* scratch for one internal batch */
    float *x, *xn, *q, *k, *v, *attn, *tmp, *gate, *up, *logit_rows;
    uint8_t *act;                  /* quantized activations */
    const float *act_src;          /* what act currently holds: source, type, width, tokens */
    uint32_t act_type;
    int64_t act_k;
    int act_n;
    float *scores;                 /* per thread: n_ctx attention weights of each head in a group */
    float *rope_cos, *rope_sin;    /* [token][n_rot/2] */
    float rope_base, rope_scale;   /* what the rope tables hold */
    const int32_t *rope_pos;
    const lmz_lora *lora;          /* NULL: no adapter */
    float *lora_z;                 /* A x for one internal batch: [token][lora_z_rank] */
    int lora_z_rank;               /* the rank lora_z has room for */
};

/* ---------------- context ---------------- */

static size_t max_act_bytes(const lmz_model *m) {
    size_t mx = lmz_act_row_bytes(m->output.type, m->output.k);
    for (int i = 0; i < m->n_layer; i++) {
        const lmz_layer *l = &m->layers[i];
        const lmz_weight *ws[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t j = 0; j < sizeof ws / sizeof ws[0]; j++) {
            size_t b = lmz_act_row_bytes(ws[j]->type, ws[j]->k);
            if (b > mx) mx = b;
        }
    }
    return mx;
}

/* The caches are mapped, not allocated, so that lmz_ctx_release_kv can hand their pages back:
 * untouched pages cost no memory, and the resident set follows the positions in use. */
static uint16_t *map_cache(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap_cache(uint16_t *cache, size_t bytes) {
    if (cache) munmap(cache, bytes);
}

size_t lmz_kv_bytes_per_position(const lmz_model *m) {
    return 2 * (size_t)m->n_layer * (size_t)m->n_head_kv * (size_t)m->head_dim * sizeof(uint16_t);
}

lmz_ctx *lmz_ctx_create(const lmz_model *m, int n_ctx, int n_seq, int n_threads) {
    if (n_ctx < 1 || n_seq < 1) {
        lmz_fail("context size and sequence count must be positive");
        return NULL;
    }
    lmz_ctx *c = lmz_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_seq = n_seq;
    c->kv_dim = m->n_head_kv * m->head_dim;
    c->pool = lmz_pool_create(n_threads);
    c->cache_bytes = (size_t)m->n_layer * n_seq * n_ctx * c->kv_dim * sizeof(uint16_t);
    const int E = m->n_embd, QD = m->n_head * m->head_dim, F = m->n_ff, B = MAX_UBATCH;
    c->k_cache = map_cache(c->cache_bytes);
    c->v_cache = map_cache(c->cache_bytes);
    c->seq_len = lmz_calloc((size_t)n_seq, sizeof(int));
    c->x = lmz_malloc((size_t)B * E * sizeof(float));
    c->xn = lmz_malloc((size_t)B * (E > QD ? E : QD) * sizeof(float));
    c->q = lmz_malloc((size_t)B * QD * sizeof(float));
    c->k = lmz_malloc((size_t)B * c->kv_dim * sizeof(float));
    c->v = lmz_malloc((size_t)B * c->kv_dim * sizeof(float));
    c->attn = lmz_malloc((size_t)B * QD * sizeof(float));
    c->tmp = lmz_malloc((size_t)B * E * sizeof(float));
    c->gate = lmz_malloc((size_t)B * F * sizeof(float));
    c->up = lmz_malloc((size_t)B * F * sizeof(float));
    c->logit_rows = lmz_malloc((size_t)B * E * sizeof(float));
    c->act = lmz_malloc((size_t)B * max_act_bytes(m));
    c->scores = lmz_malloc((size_t)lmz_pool_size(c->pool) * (m->n_head / m->n_head_kv) * n_ctx * sizeof(float));
    c->rope_cos = lmz_malloc((size_t)B * (m->n_rot / 2) * sizeof(float));
    c->rope_sin = lmz_malloc((size_t)B * (m->n_rot / 2) * sizeof(float));
    if (!c->pool || !c->k_cache || !c->v_cache || !c->seq_len || !c->x || !c->xn || !c->q || !c->k || !c->v ||
        !c->attn || !c->tmp || !c->gate || !c->up || !c->logit_rows || !c->act || !c->scores || !c->rope_cos ||
        !c->rope_sin) {
        lmz_ctx_free(c);
        lmz_fail("out of memory creating a context of %d positions x %d sequences", n_ctx, n_seq);
        return NULL;
    }
    return c;
}

void lmz_ctx_free(lmz_ctx *c) {
    if (!c) return;
    lmz_pool_free(c->pool);
    unmap_cache(c->k_cache, c->cache_bytes);
    unmap_cache(c->v_cache, c->cache_bytes);
    void *bufs[] = {c->seq_len, c->x, c->xn, c->q, c->k, c->v, c->attn, c->tmp,
                    c->gate, c->up, c->logit_rows, c->act, c->scores, c->rope_cos, c->rope_sin, c->lora_z};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(c);
}

int lmz_ctx_n_ctx(const lmz_ctx *c) { return c->n_ctx; }
const lmz_model *lmz_ctx_model(const lmz_ctx *c) { return c->m; }
lmz_pool *lmz_ctx_pool(lmz_ctx *c) { return c->pool; }
void lmz_ctx_reset_seq(lmz_ctx *c, int seq) { c->seq_len[seq] = 0; }

void lmz_ctx_release_kv(lmz_ctx *c) {
    memset(c->seq_len, 0, (size_t)c->n_seq * sizeof(int));
    /* MADV_DONTNEED drops the pages; the next write maps zeroed ones. Advice only: if it
     * fails, the memory simply stays resident. */
    madvise(c->k_cache, c->cache_bytes, MADV_DONTNEED);
    madvise(c->v_cache, c->cache_bytes, MADV_DONTNEED);
}
int lmz_ctx_seq_len(const lmz_ctx *c, int seq) { return c->seq_len[seq]; }

int lmz_ctx_set_lora(lmz_ctx *c, const lmz_lora *lora) {
    if (lora && lora->model != c->m)
        return lmz_fail("the adapter was loaded for another model (%s) than this context's (%s)", lora->model->path,
                        c->m->path);
    c->lora = lora;
    memset(c->seq_len, 0, (size_t)c->n_seq * sizeof(int));
    return 0;
}

/* Room in lora_z for the adapter's largest rank (which training may have raised). */
static int reserve_lora_scratch(lmz_ctx *c) {
    if (!c->lora || c->lora->max_rank <= c->lora_z_rank) return 0;
    float *z = lmz_realloc(c->lora_z, (size_t)MAX_UBATCH * c->lora->max_rank * sizeof(float));
    if (!z) return -1;
    c->lora_z = z;
    c->lora_z_rank = c->lora->max_rank;
    return 0;
}

/* Position 0 of one K/V head's rows. Each head's positions are contiguous, so decode-time
 * attention, which reads a sequence's whole cache for every token, streams through memory
 * in order instead of taking a slice of each position's row. */
static uint16_t *cache_head(const lmz_ctx *c, uint16_t *cache, int layer, int seq, int head) {
    const int D = c->m->head_dim;
    return cache + ((((size_t)layer * c->n_seq + seq) * c->m->n_head_kv + head) * c->n_ctx) * D;
}

/* ---------------- matmul ---------------- */

typedef struct {
    lmz_ctx *c;
    const lmz_weight *w;
    const float *x;
    int n_tok;
    float *y;
    int64_t ldy;
} matmul_task;

static void quantize_worker(void *p, long b, long e, int ith) {
    (void)ith;
    matmul_task *t = p;
    size_t stride = lmz_act_row_bytes(t->w->type, t->w->k);
    for (long i = b; i < e; i++)
        lmz_quantize_act_row(t->w->type, t->x + i * t->w->k, t->w->k, t->c->act + i * stride);
}

static void matmul_worker(void *p, long r0, long r1, int ith) {
    (void)ith;
    matmul_task *t = p;
    const lmz_weight *w = t->w;
    size_t stride = lmz_act_row_bytes(w->type, w->k);
    for (int t0 = 0; t0 < t->n_tok; t0 += TOKEN_TILE) {
        int nt = t->n_tok - t0 < TOKEN_TILE ? t->n_tok - t0 : TOKEN_TILE;
        lmz_matmul_rows(w->type, w->k, (const uint8_t *)w->data + r0 * w->row_bytes, w->row_bytes, r1 - r0,
                        t->c->act + t0 * stride, stride, nt, t->y + (size_t)t0 * t->ldy + r0, (size_t)t->ldy);
    }
}

/* Rows per chunk handed to a thread: a multiple of 16 (the SIMD row group), small enough
 * that a delayed thread leaves little behind, large enough to amortize taking a chunk. */
static long row_grain(const lmz_ctx *c, const lmz_weight *w) {
    long per_thread = w->n / (8L * lmz_pool_size(c->pool));
    long g = per_thread / ROW_GRAIN * ROW_GRAIN;
    return g < ROW_GRAIN ? ROW_GRAIN : g;
}

/* y[tok][0..w->n) = W x[tok] for N_TOK rows of x (each w->k wide); rows of y are LDY apart.
 * LW, when not NULL, is the adapter of W, whose term is added (see the top of the file). */
static void matmul(lmz_ctx *c, const lmz_weight *w, const lmz_lora_weight *lw, const float *x, int n_tok, float *y,
                   int64_t ldy) {
    matmul_task t = {c, w, x, n_tok, y, ldy};
    /* Projections that share an input and a weight type (q/k/v, gate/up) quantize it once. */
    if (!(c->act_src == x && c->act_type == w->type && c->act_k == w->k && c->act_n == n_tok)) {
        lmz_pool_for(c->pool, n_tok, 4, quantize_worker, &t);
        c->act_src = x;
        c->act_type = w->type;
        c->act_k = w->k;
        c->act_n = n_tok;
    }
    lmz_pool_for(c->pool, w->n, row_grain(c, w), matmul_worker, &t);
    if (lw) lmz_lora_apply(lw, x, n_tok, y, ldy, c->lora_z, c->pool);
}

static void invalidate_act(lmz_ctx *c) { c->act_src = NULL; }

/* The adapter of a layer's weight; NULL when there is none. */
static const lmz_lora_weight *lora_for(const lmz_ctx *c, int layer, enum lmz_lora_target target) {
    return lmz_lora_layer_weight(c->lora, layer, target);
}

/* ---------------- elementwise pieces ---------------- */

/* y = x / rms(x) * w over N values (y may alias x). */
static void rms_norm(const float *x, const float *w, int n, float eps, float *y) {
    float ms = lmz_vec_dot(x, x, n) / (float)n;
    float scale = 1.0f / sqrtf(ms + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

static void rope_tables(lmz_ctx *c, const int32_t *pos, int n_tok, float base, float scale) {
    if (c->rope_pos == pos && c->rope_base == base && c->rope_scale == scale) return;
    const int half = c->m->n_rot / 2;
    const float theta_scale = (float)lmz_pow((double)base, -2.0 / (double)c->m->n_rot);
    for (int t = 0; t < n_tok; t++) {
        float theta = (float)pos[t];
        for (int i = 0; i < half; i++) {
            float th = scale * theta;
            c->rope_cos[t * half + i] = (float)lmz_cos((double)th);
            c->rope_sin[t * half + i] = (float)lmz_sin((double)th);
            theta *= theta_scale;
        }
    }
    c->rope_pos = pos;
    c->rope_base = base;
    c->rope_scale = scale;
}

static void rope_apply(const lmz_ctx *c, float *head, int t) {
    const int half = c->m->n_rot / 2;
    const float *cs = c->rope_cos + t * half, *sn = c->rope_sin + t * half;
    for (int i = 0; i < half; i++) {
        int ia = c->m->rope_kind == LMZ_ROPE_NEOX ? i : 2 * i;
        int ib = c->m->rope_kind == LMZ_ROPE_NEOX ? i + half : 2 * i + 1;
        float a = head[ia], b = head[ib];
        head[ia] = a * cs[i] - b * sn[i];
        head[ib] = a * sn[i] + b * cs[i];
    }
}

/* ---------------- attention ---------------- */

typedef struct {
    lmz_ctx *c;
    int layer, n_tok;
    const int32_t *pos, *seq;
    int heads_per_item;
} attn_task;

/* An item is one token and a run of query heads that share a K/V head (all of the group's
 * heads when there are enough items to keep the threads busy, else one head each). */
static void attention_worker(void *p, long b, long e, int ith) {
    attn_task *t = p;
    lmz_ctx *c = t->c;
    const lmz_model *m = c->m;
    const int H = m->n_head, D = m->head_dim, group = m->n_head / m->n_head_kv, per_item = t->heads_per_item;
    const int items_per_tok = H / per_item;
    const bool swa = m->layers[t->layer].is_swa;
    float *w = c->scores + (size_t)ith * group * c->n_ctx;
    for (long item = b; item < e; item++) {
        int tok = (int)(item / items_per_tok), h = (int)(item % items_per_tok) * per_item, g = h / group;
        int p_end = t->pos[tok], p_begin = 0;
        if (swa && p_end - m->n_swa + 1 > 0) p_begin = p_end - m->n_swa + 1;
        const uint16_t *k0 = cache_head(c, c->k_cache, t->layer, t->seq[tok], g);
        const uint16_t *v0 = cache_head(c, c->v_cache, t->layer, t->seq[tok], g);
        lmz_attend_heads(per_item, c->q + ((size_t)tok * H + h) * D, k0, v0, (size_t)D, p_begin, p_end, D,
                         m->kq_scale, w, c->attn + ((size_t)tok * H + h) * D);
    }
}

/* ---------------- one layer ---------------- */

static void add_bias(float *y, const float *bias, int n_tok, int n) {
    if (!bias) return;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += bias[i];
}

static void attention_block(lmz_ctx *c, int il, int n_tok, const int32_t *pos, const int32_t *seq) {
    const lmz_model *m = c->m;
    const lmz_layer *L = &m->layers[il];
    const int E = m->n_embd, H = m->n_head, Hk = m->n_head_kv, D = m->head_dim, QD = H * D, KD = c->kv_dim;

    for (int t = 0; t < n_tok; t++) rms_norm(c->x + (size_t)t * E, L->attn_norm.data, E, m->rms_eps, c->xn + (size_t)t * E);
    invalidate_act(c);
    matmul(c, &L->wq, lora_for(c, il, LMZ_LORA_ATTN_Q), c->xn, n_tok, c->q, QD);
    matmul(c, &L->wk, lora_for(c, il, LMZ_LORA_ATTN_K), c->xn, n_tok, c->k, KD);
    matmul(c, &L->wv, lora_for(c, il, LMZ_LORA_ATTN_V), c->xn, n_tok, c->v, KD);
    add_bias(c->q, L->bq, n_tok, QD);
    add_bias(c->k, L->bk, n_tok, KD);
    add_bias(c->v, L->bv, n_tok, KD);

    rope_tables(c, pos, n_tok, L->rope_base, L->rope_scale);
    for (int t = 0; t < n_tok; t++) {
        for (int h = 0; h < H; h++) {
            float *qh = c->q + ((size_t)t * H + h) * D;
            if (L->q_norm.data) rms_norm(qh, L->q_norm.data, D, m->rms_eps, qh);
            rope_apply(c, qh, t);
            if (m->q_scale != 1.0f)
                for (int i = 0; i < D; i++) qh[i] *= m->q_scale;
        }
        for (int h = 0; h < Hk; h++) {
            float *kh = c->k + ((size_t)t * Hk + h) * D;
            if (L->k_norm.data) rms_norm(kh, L->k_norm.data, D, m->rms_eps, kh);
            rope_apply(c, kh, t);
        }
        for (int h = 0; h < Hk; h++) {
            uint16_t *kc = cache_head(c, c->k_cache, il, seq[t], h) + (size_t)pos[t] * D;
            uint16_t *vc = cache_head(c, c->v_cache, il, seq[t], h) + (size_t)pos[t] * D;
            const float *kt = c->k + ((size_t)t * Hk + h) * D, *vt = c->v + ((size_t)t * Hk + h) * D;
            for (int i = 0; i < D; i++) {
                kc[i] = lmz_f32_to_fp16(kt[i]);
                vc[i] = lmz_f32_to_fp16(vt[i]);
            }
        }
    }

    attn_task at = {c, il, n_tok, pos, seq, 1};
    const int group = H / Hk;
    at.heads_per_item = (long)n_tok * Hk >= 4L * lmz_pool_size(c->pool) ? group : 1;
    lmz_pool_for(c->pool, (long)n_tok * (H / at.heads_per_item), 1, attention_worker, &at);

    invalidate_act(c);
    matmul(c, &L->wo, lora_for(c, il, LMZ_LORA_ATTN_OUT), c->attn, n_tok, c->tmp, E);
    for (int t = 0; t < n_tok; t++) {
        float *o = c->tmp + (size_t)t * E, *x = c->x + (size_t)t * E;
        if (L->post_attn_norm.data) rms_norm(o, L->post_attn_norm.data, E, m->rms_eps, o);
        for (int i = 0; i < E; i++) x[i] += o[i];
    }
}

static void ffn_block(lmz_ctx *c, int il, int n_tok) {
    const lmz_model *m = c->m;
    const lmz_layer *L = &m->layers[il];
    const int E = m->n_embd, F = m->n_ff;
    for (int t = 0; t < n_tok; t++) rms_norm(c->x + (size_t)t * E, L->ffn_norm.data, E, m->rms_eps, c->xn + (size_t)t * E);
    invalidate_act(c);
    matmul(c, &L->w_gate, lora_for(c, il, LMZ_LORA_FFN_GATE), c->xn, n_tok, c->gate, F);
    matmul(c, &L->w_up, lora_for(c, il, LMZ_LORA_FFN_UP), c->xn, n_tok, c->up, F);
    if (m->gelu)
        for (size_t i = 0; i < (size_t)n_tok * F; i++) c->gate[i] = lmz_geluf(c->gate[i]) * c->up[i];
    else
        lmz_vec_swiglu(c->gate, c->up, (int64_t)n_tok * F);
    invalidate_act(c);
    matmul(c, &L->w_down, lora_for(c, il, LMZ_LORA_FFN_DOWN), c->gate, n_tok, c->tmp, E);
    for (int t = 0; t < n_tok; t++) {
        float *o = c->tmp + (size_t)t * E, *x = c->x + (size_t)t * E;
        if (L->post_ffn_norm.data) rms_norm(o, L->post_ffn_norm.data, E, m->rms_eps, o);
        for (int i = 0; i < E; i++) x[i] += o[i];
    }
}

/* ---------------- batch ---------------- */

/* Evaluates up to MAX_UBATCH tokens; LOGITS receives the requested rows in order. */
static int forward_ubatch(lmz_ctx *c, const int32_t *tok, const int32_t *pos, const int32_t *seq,
                          const uint8_t *want, int n_tok, float *logits) {
    const lmz_model *m = c->m;
    const int E = m->n_embd;
    for (int t = 0; t < n_tok; t++) {
        float *x = c->x + (size_t)t * E;
        lmz_dequantize_row(m->token_embd.type, (const uint8_t *)m->token_embd.data + (size_t)tok[t] * m->token_embd.row_bytes,
                           E, x);
        if (c->lora && c->lora->token_embd) lmz_lora_apply_embedding(c->lora->token_embd, tok[t], x);
        if (m->embd_scale != 1.0f)
            for (int i = 0; i < E; i++) x[i] *= m->embd_scale;
    }
    c->rope_pos = NULL;
    for (int il = 0; il < m->n_layer; il++) {
        attention_block(c, il, n_tok, pos, seq);
        ffn_block(c, il, n_tok);
    }
    int n_out = 0;
    for (int t = 0; t < n_tok; t++) {
        if (want && !want[t]) continue;
        rms_norm(c->x + (size_t)t * E, m->output_norm.data, E, m->rms_eps, c->logit_rows + (size_t)n_out * E);
        n_out++;
    }
    if (n_out && logits) {
        invalidate_act(c);
        matmul(c, &m->output, c->lora ? c->lora->output : NULL, c->logit_rows, n_out, logits, m->n_vocab);
        for (int t = 0; t < n_out; t++) {
            float *l = logits + (size_t)t * m->n_vocab;
            if (m->output_bias)
                for (int i = 0; i < m->n_vocab; i++) l[i] += m->output_bias[i];
            if (m->logit_softcap > 0)
                for (int i = 0; i < m->n_vocab; i++) l[i] = m->logit_softcap * lmz_tanhf(l[i] / m->logit_softcap);
        }
    }
    return n_out;
}

/* Checks every token of B and computes the sequence lengths after it into LEN. */
static int validate_batch(const lmz_ctx *c, const lmz_batch *b, int *len) {
    for (int i = 0; i < b->n_tokens; i++) {
        int s = b->seq[i], p = b->pos[i], t = b->token[i];
        if (t < 0 || t >= c->m->n_vocab)
            return lmz_fail("token id %d out of range (vocabulary has %d tokens)", t, c->m->n_vocab);
        if (s < 0 || s >= c->n_seq) return lmz_fail("sequence %d out of range (context has %d)", s, c->n_seq);
        if (p < 0 || p >= c->n_ctx || p > len[s])
            return lmz_fail("position %d of sequence %d is invalid (length %d, context %d)", p, s, len[s], c->n_ctx);
        len[s] = p + 1;
    }
    return 0;
}

int lmz_decode(lmz_ctx *c, const lmz_batch *b, float *logits) {
    const lmz_model *m = c->m;
    /* Validate the whole batch before touching the cache. */
    int *len = lmz_malloc((size_t)c->n_seq * sizeof(int));
    if (!len) return -1;
    memcpy(len, c->seq_len, (size_t)c->n_seq * sizeof(int));
    if (validate_batch(c, b, len) || reserve_lora_scratch(c)) {
        free(len);
        return -1;
    }
    for (int i = 0; i < b->n_tokens; i += MAX_UBATCH) {
        int n = b->n_tokens - i < MAX_UBATCH ? b->n_tokens - i : MAX_UBATCH;
        int n_out = forward_ubatch(c, b->token + i, b->pos + i, b->seq + i, b->want_logits ? b->want_logits + i : NULL,
                                   n, logits);
        if (logits) logits += (size_t)n_out * m->n_vocab;
    }
    memcpy(c->seq_len, len, (size_t)c->n_seq * sizeof(int));
    free(len);
    return 0;
}

int lmz_eval(lmz_ctx *c, int seq, const int32_t *tokens, int n, int start, float *logits) {
    int32_t pos[MAX_UBATCH], seqs[MAX_UBATCH];
    for (int i = 0; i < n; i += MAX_UBATCH) {
        int k = n - i < MAX_UBATCH ? n - i : MAX_UBATCH;
        for (int j = 0; j < k; j++) {
            pos[j] = start + i + j;
            seqs[j] = seq;
        }
        lmz_batch b = {k, tokens + i, pos, seqs, NULL};
        if (lmz_decode(c, &b, logits ? logits + (size_t)i * c->m->n_vocab : NULL)) return -1;
    }
    return 0;
}
