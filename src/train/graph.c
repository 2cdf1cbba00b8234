/* graph.c — the training forward and backward pass (graph.h).
 *
 * Reading order: lmz_train_graph_run() -> embed -> per layer attention_fwd() + ffn_fwd()
 * (keeping their inputs and intermediate results in layer_saved) -> head() (logits, loss
 * and, when training, the gradient of the final hidden state) -> per layer, last first,
 * ffn_bwd() + attention_bwd(). The forward mirrors src/model/forward.c step by step (same
 * RMSNorm, RoPE tables, attention softmax and SwiGLU expressions, LoRA term added by
 * lmz_lora_apply before any bias), except that projections multiply f32 activations by
 * exactly dequantized weights instead of 8-bit activations by quantized blocks.
 *
 * Backward of each piece (dy: the gradient of the output, u = dy * w):
 *   RMSNorm y = x r w, r = (mean x^2 + eps)^-1/2:   dx = r u - x r^3 (u . x) / n
 *   RoPE (a rotation):                               the transposed rotation
 *   softmax attention, s_p = c q.k_p, P = softmax s: dP_p = do.v_p, dS_p = P_p (dP_p - P.dP),
 *                                                    dq = c sum dS_p k_p, dk_p = c sum dS_p q,
 *                                                    dv_p = sum P_p do
 *   SwiGLU h = silu(g) u:  du = dh silu(g), dg = dh u silu'(g), silu' = s (1 + g (1 - s))
 *   LoRA y += s B z, z = A x:  dB += s dy z^T, dz = s B^T dy, dA += dz x^T, dx += A^T dz
 * Attention runs one query head at a time as products of T x T and T x head_dim matrices
 * (lmz_tk_nt on transposed operands), the positions a query does not see given probability
 * 0, so every output has one writer and one order. Layer 0's input gradient is not
 * computed: nothing below it is trained. */
#include "graph.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/quant.h"
#include "../kernels/vecf.h"
#include "../util/error.h"
#include "../util/mathfn.h"
#include "tkernels.h"

/* Bytes of logits kept at once. The output head is dequantized twice (forward, backward) for
 * each group of positions whose logits fit: with 64 MB, a 256-token Gemma 3 sequence took 4
 * groups and training ran 17% slower. */
#define LOGITS_BUDGET ((size_t)256 << 20)
#define HEAD_TILE_ROWS 4096              /* output-head rows dequantized at once, at least */
#define ROW_BLOCK 16                     /* weight rows per dequantization work item */

typedef struct {
    float base, scale;
    float *cos, *sin; /* [position][n_rot / 2] */
} rope_table;

/* What the forward pass keeps of one layer (T rows each). */
typedef struct {
    float *x_in, *x_mid;      /* the residual stream entering the layer and after attention */
    float *q, *k, *v;         /* after bias, QK-norm, RoPE (and q's scale): what attention used */
    float *q_raw, *k_raw;     /* before QK-norm (gemma3), else NULL */
    float *o;                 /* attention output, the input of attn_output */
    float *attn_out, *down;   /* before the post-attention / post-FFN norm (gemma3), else NULL */
    float *gate, *up;         /* the FFN projections before the activation */
    float *zt[LMZ_LORA_N_TARGETS]; /* A x of each adapted projection (rank x T), else NULL */
    const rope_table *rope;
} layer_saved;

struct lmz_train_graph {
    const lmz_model *m;
    const lmz_lora *l;
    lmz_pool *pool;
    int max_t, n_threads;
    int E, H, Hk, D, QD, KD, F, V, max_k, max_rank;
    int *widx;                /* [layer * N_TARGETS + target]: the adapter weight's index, -1 none */
    layer_saved *ls;
    rope_table ropes[4];
    int n_ropes;
    float *arena;             /* everything layer_saved points to, and x_final */
    float *x_final;           /* the residual stream after the last layer */
    /* scratch */
    float *wbuf;              /* one dequantized matrix, or a tile of the output head */
    long head_rows;           /* output-head rows per tile */
    float *thr;               /* per thread: ROW_BLOCK rows of max_k floats */
    float *x, *xn, *dx, *dxn, *dt, *h, *dh, *du, *dq, *dk, *dv, *d_o, *logits;
    float *P, *dS, *at_tt;    /* one head's attention probabilities, their gradient, a transpose: T x T */
    float *at_d1, *at_d2;     /* transposed K, V, q or do of one head: head_dim x T */
    float *dz, *dzt;          /* the adapter's dz (T x rank) and its transpose */
    float *lt_x, *lt_w, *lt_y; /* the adapter's transposed operands: max_k x T, max_k x rank twice */
    int logit_rows;           /* positions whose logits are kept at once */
    double *tok_loss;         /* per position */
    const int32_t *tokens;
    float weight;
    lmz_train_vec *grads;
};

/* ---------------- parameter vectors ---------------- */

int lmz_train_vec_init(lmz_train_vec *v, const lmz_lora *l) {
    memset(v, 0, sizeof *v);
    v->n_weights = l->n_weights;
    v->a_off = lmz_calloc((size_t)l->n_weights + 1, sizeof(size_t));
    v->b_off = lmz_calloc((size_t)l->n_weights + 1, sizeof(size_t));
    if (!v->a_off || !v->b_off) {
        lmz_train_vec_free(v);
        return -1;
    }
    size_t n = 0;
    for (int i = 0; i < l->n_weights; i++) {
        const lmz_lora_weight *w = l->weights[i];
        size_t na = (size_t)w->rank * (size_t)(w->embedding ? w->n_out : w->n_in);
        size_t nb = (size_t)w->rank * (size_t)(w->embedding ? w->n_in : w->n_out);
        v->a_off[i] = n;
        v->b_off[i] = n + na;
        n += na + nb;
    }
    v->n = n;
    v->data = lmz_calloc(n ? n : 1, sizeof(float));
    if (!v->data) {
        lmz_train_vec_free(v);
        return -1;
    }
    return 0;
}

void lmz_train_vec_free(lmz_train_vec *v) {
    free(v->data);
    free(v->a_off);
    free(v->b_off);
    memset(v, 0, sizeof *v);
}

int lmz_train_check(const lmz_model *m, const lmz_lora *l) {
    if (m->arch != LMZ_ARCH_LLAMA && m->arch != LMZ_ARCH_QWEN2 && m->arch != LMZ_ARCH_GEMMA3)
        return lmz_fail("training supports llama, qwen2 and gemma3 models, not '%s'", m->arch_name);
    if (l->model != m) return lmz_fail("the adapter was made for another model (%s)", l->model->path);
    if (l->token_embd || l->output)
        return lmz_fail("training adapts the attention and feed-forward projections only; this adapter also has "
                        "%s", l->token_embd ? "token_embd.weight" : "output.weight");
    return 0;
}

/* ---------------- creation ---------------- */

static const lmz_weight *target_weight(const lmz_layer *L, int t) {
    const lmz_weight *ws[LMZ_LORA_N_TARGETS] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return ws[t];
}

static const rope_table *rope_for(lmz_train_graph *g, float base, float scale) {
    for (int i = 0; i < g->n_ropes; i++)
        if (g->ropes[i].base == base && g->ropes[i].scale == scale) return &g->ropes[i];
    if (g->n_ropes == (int)(sizeof g->ropes / sizeof g->ropes[0])) {
        lmz_fail("training: more than %d RoPE settings in one model", g->n_ropes);
        return NULL;
    }
    rope_table *r = &g->ropes[g->n_ropes];
    const int half = g->m->n_rot / 2;
    r->cos = lmz_malloc((size_t)g->max_t * half * sizeof(float));
    r->sin = lmz_malloc((size_t)g->max_t * half * sizeof(float));
    if (!r->cos || !r->sin) {
        free(r->cos);
        free(r->sin);
        return NULL;
    }
    g->n_ropes++;
    r->base = base;
    r->scale = scale;
    /* forward.c's rope_tables, so that positions rotate by the same bits */
    const float theta_scale = (float)lmz_pow((double)base, -2.0 / (double)g->m->n_rot);
    for (int t = 0; t < g->max_t; t++) {
        float theta = (float)t;
        for (int i = 0; i < half; i++) {
            float th = scale * theta;
            r->cos[t * half + i] = (float)lmz_cos((double)th);
            r->sin[t * half + i] = (float)lmz_sin((double)th);
            theta *= theta_scale;
        }
    }
    return r;
}

void lmz_train_graph_free(lmz_train_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_ropes; i++) {
        free(g->ropes[i].cos);
        free(g->ropes[i].sin);
    }
    void *bufs[] = {g->widx, g->ls,   g->arena, g->wbuf, g->thr,   g->x,     g->xn,    g->dx,     g->dxn,
                    g->dt,   g->h,    g->dh,    g->du,   g->dq,    g->dk,    g->dv,    g->d_o,    g->dz,
                    g->dzt,  g->lt_x, g->lt_w,  g->lt_y, g->P,     g->dS,    g->at_tt, g->at_d1,  g->at_d2,
                    g->logits, g->tok_loss};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(g);
}

static float *scratch(size_t n) { return lmz_malloc((n ? n : 1) * sizeof(float)); }

lmz_train_graph *lmz_train_graph_create(const lmz_model *m, const lmz_lora *l, int max_tokens, lmz_pool *pool) {
    if (lmz_train_check(m, l)) return NULL;
    if (max_tokens < 1 || max_tokens > (1 << 16)) {
        lmz_fail("training sequences must have 1 to 65536 positions, not %d", max_tokens);
        return NULL;
    }
    lmz_train_graph *g = lmz_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->m = m;
    g->l = l;
    g->pool = pool;
    g->max_t = max_tokens;
    g->n_threads = lmz_pool_size(pool);
    g->E = m->n_embd, g->H = m->n_head, g->Hk = m->n_head_kv, g->D = m->head_dim, g->F = m->n_ff;
    g->QD = g->H * g->D, g->KD = g->Hk * g->D, g->V = m->n_vocab;
    g->max_k = g->E > g->QD ? g->E : g->QD;
    if (g->F > g->max_k) g->max_k = g->F;
    const size_t T = (size_t)max_tokens, E = g->E, QD = g->QD, KD = g->KD, F = g->F;
    const bool qk_norm = m->layers[0].q_norm.data != NULL, post_norm = m->layers[0].post_attn_norm.data != NULL;

    g->widx = lmz_malloc((size_t)m->n_layer * LMZ_LORA_N_TARGETS * sizeof(int));
    g->ls = lmz_calloc((size_t)m->n_layer, sizeof *g->ls);
    if (!g->widx || !g->ls) goto fail;
    size_t per_layer = 2 * E + 2 * QD + 2 * KD + 2 * F + (qk_norm ? QD + KD : 0) + (post_norm ? 2 * E : 0);
    size_t total = T * E, wmax = 0;
    for (int il = 0; il < m->n_layer; il++) {
        total += T * per_layer;
        for (int t = 0; t < LMZ_LORA_N_TARGETS; t++) {
            const lmz_lora_weight *w = lmz_lora_layer_weight(l, il, (enum lmz_lora_target)t);
            g->widx[il * LMZ_LORA_N_TARGETS + t] = -1;
            for (int i = 0; w && i < l->n_weights; i++)
                if (l->weights[i] == w) g->widx[il * LMZ_LORA_N_TARGETS + t] = i;
            if (w) total += T * (size_t)w->rank;
            if (w && w->rank > g->max_rank) g->max_rank = w->rank;
            const lmz_weight *bw = target_weight(&m->layers[il], t);
            if ((size_t)(bw->n * bw->k) > wmax) wmax = (size_t)(bw->n * bw->k);
        }
    }
    g->arena = scratch(total);
    if (!g->arena) goto fail;
    float *p = g->arena;
#define TAKE(n) (p += (n), p - (n))
    for (int il = 0; il < m->n_layer; il++) {
        layer_saved *s = &g->ls[il];
        s->x_in = TAKE(T * E), s->x_mid = TAKE(T * E);
        s->q = TAKE(T * QD), s->o = TAKE(T * QD), s->k = TAKE(T * KD), s->v = TAKE(T * KD);
        s->gate = TAKE(T * F), s->up = TAKE(T * F);
        if (qk_norm) s->q_raw = TAKE(T * QD), s->k_raw = TAKE(T * KD);
        if (post_norm) s->attn_out = TAKE(T * E), s->down = TAKE(T * E);
        for (int t = 0; t < LMZ_LORA_N_TARGETS; t++) {
            const lmz_lora_weight *w = lmz_lora_layer_weight(l, il, (enum lmz_lora_target)t);
            if (w) s->zt[t] = TAKE(T * (size_t)w->rank);
        }
        s->rope = rope_for(g, m->layers[il].rope_base, m->layers[il].rope_scale);
        if (!s->rope) goto fail;
    }
    g->x_final = TAKE(T * E);
#undef TAKE

    g->head_rows = (long)(wmax / E) > HEAD_TILE_ROWS ? (long)(wmax / E) : HEAD_TILE_ROWS;
    if (g->head_rows > g->V) g->head_rows = g->V;
    if ((size_t)g->head_rows * E > wmax) wmax = (size_t)g->head_rows * E;
    size_t rows = LOGITS_BUDGET / ((size_t)g->V * sizeof(float));
    g->logit_rows = rows < 1 ? 1 : rows > T ? (int)T : (int)rows;
    const size_t R = (size_t)(g->max_rank ? g->max_rank : 1), maxq = QD > E ? QD : E;
    g->wbuf = scratch(wmax);
    g->thr = scratch((size_t)g->n_threads * ROW_BLOCK * g->max_k);
    g->x = scratch(T * E), g->xn = scratch(T * maxq), g->dx = scratch(T * E), g->dxn = scratch(T * E);
    g->dt = scratch(T * E), g->h = scratch(T * F), g->dh = scratch(T * F), g->du = scratch(T * F);
    g->dq = scratch(T * QD), g->dk = scratch(T * KD), g->dv = scratch(T * KD), g->d_o = scratch(T * QD);
    g->dz = scratch(T * R), g->dzt = scratch(T * R), g->lt_x = scratch(T * g->max_k);
    g->lt_w = scratch(R * g->max_k), g->lt_y = scratch(R * g->max_k);
    g->P = scratch(T * T), g->dS = scratch(T * T), g->at_tt = scratch(T * T);
    g->at_d1 = scratch(T * g->D), g->at_d2 = scratch(T * g->D);
    g->logits = scratch((size_t)g->logit_rows * g->V);
    g->tok_loss = lmz_malloc(T * sizeof(double));
    if (!g->wbuf || !g->thr || !g->x || !g->xn || !g->dx || !g->dxn || !g->dt || !g->h || !g->dh || !g->du ||
        !g->dq || !g->dk || !g->dv || !g->d_o || !g->dz || !g->dzt || !g->lt_x || !g->lt_w || !g->lt_y || !g->P ||
        !g->dS || !g->at_tt || !g->at_d1 || !g->at_d2 || !g->logits || !g->tok_loss)
        goto fail;
    return g;
fail:
    lmz_train_graph_free(g);
    lmz_fail("out of memory for a training graph of %d positions (%s)", max_tokens, m->path);
    return NULL;
}

/* ---------------- matrix products on dequantized weights ---------------- */

typedef struct {
    lmz_train_graph *g;
    const lmz_weight *w;
    long j0, n;
    bool transposed;
} deq_task;

/* Rows j0 + [b, e) * ROW_BLOCK of W into wbuf: as rows (n x k) or transposed (k x n). */
static void deq_worker(void *p, long b, long e, int ith) {
    deq_task *t = p;
    const lmz_weight *w = t->w;
    const int64_t k = w->k;
    float *tmp = t->g->thr + (size_t)ith * ROW_BLOCK * t->g->max_k;
    for (long blk = b; blk < e; blk++) {
        long r0 = blk * ROW_BLOCK, r1 = r0 + ROW_BLOCK < t->n ? r0 + ROW_BLOCK : t->n;
        for (long j = r0; j < r1; j++) {
            const uint8_t *row = (const uint8_t *)w->data + (size_t)(t->j0 + j) * w->row_bytes;
            lmz_dequantize_row(w->type, row, k, t->transposed ? tmp + (j - r0) * k : t->g->wbuf + j * k);
        }
        if (!t->transposed) continue;
        for (int64_t i = 0; i < k; i++)
            for (long j = r0; j < r1; j++) t->g->wbuf[i * t->n + j] = tmp[(j - r0) * k + i];
    }
}

/* Dequantizes rows [j0, j0 + n) of W into wbuf. */
static void dequant(lmz_train_graph *g, const lmz_weight *w, long j0, long n, bool transposed) {
    deq_task t = {g, w, j0, n, transposed};
    lmz_pool_for(g->pool, (n + ROW_BLOCK - 1) / ROW_BLOCK, 1, deq_worker, &t);
}

typedef struct {
    const float *x, *w;
    size_t ldx, ldw, ldy;
    int n_tok;
    int64_t k;
    float *y;
    bool acc;
} mm_task;

static void mm_worker(void *p, long b, long e, int ith) {
    (void)ith;
    mm_task *t = p;
    lmz_tk_nt(t->k, t->x, t->ldx, t->n_tok, t->w + (size_t)b * t->ldw, t->ldw, e - b, t->y + b, t->ldy, t->acc);
}

/* Y[t][j] (+)= X[t] . W[j] for N_ROWS rows W of K floats LDW apart (lmz_tk_nt), split by
 * rows. */
static void mm_ld(lmz_train_graph *g, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, int64_t k,
                  long n_rows, float *y, size_t ldy, bool acc) {
    mm_task t = {x, w, ldx, ldw, ldy, n_tok, k, y, acc};
    long grain = n_rows / (4L * g->n_threads) / 16 * 16;
    lmz_pool_for(g->pool, n_rows, grain < 16 ? 16 : grain, mm_worker, &t);
}

/* The same with W's rows contiguous. */
static void mm(lmz_train_graph *g, const float *x, size_t ldx, int n_tok, const float *w, int64_t k, long n_rows,
               float *y, size_t ldy, bool acc) {
    mm_ld(g, x, ldx, n_tok, w, (size_t)k, k, n_rows, y, ldy, acc);
}

/* ---------------- LoRA ---------------- */

static const lmz_lora_weight *adapter_of(const lmz_train_graph *g, int il, int target) {
    int i = g->widx[il * LMZ_LORA_N_TARGETS + target];
    return i < 0 ? NULL : g->l->weights[i];
}

typedef struct {
    const float *src;
    size_t ld;
    long rows;
    float *dst;
} transpose_task;

static void transpose_worker(void *p, long b, long e, int ith) {
    (void)ith;
    const transpose_task *t = p;
    for (long c = b; c < e; c++)
        for (long r = 0; r < t->rows; r++) t->dst[c * t->rows + r] = t->src[r * t->ld + c];
}

/* DST (COLS rows of ROWS) = the transpose of SRC (ROWS rows of COLS, LD apart). */
static void transpose(lmz_train_graph *g, const float *src, long rows, long cols, size_t ld, float *dst) {
    transpose_task t = {src, ld, rows, dst};
    lmz_pool_for(g->pool, cols, 16, transpose_worker, &t);
}

/* y = y + scale * B (A x) for the N_TOK rows of X, keeping A x as ZT (rank x n_tok): the
 * bits of lmz_lora_apply (each term a canonical dot product; a product's factors commute),
 * with the products done by lmz_tk_nt. */
static void lora_fwd(lmz_train_graph *g, const lmz_lora_weight *w, const float *x, int n_tok, float *y, float *zt) {
    const int R = w->rank;
    const int64_t k = w->n_in, n = w->n_out;
    mm(g, w->a, (size_t)k, R, x, k, n_tok, zt, (size_t)n_tok, false);
    transpose(g, zt, R, n_tok, (size_t)n_tok, g->dz);
    mm(g, g->dz, (size_t)R, n_tok, w->b, R, (long)n, g->lt_x, (size_t)n, false);
    for (size_t i = 0; i < (size_t)n_tok * n; i++) y[i] = y[i] + w->scale * g->lt_x[i];
}

/* The adapter's gradients given DY for the forward input X (n_tok x n_in) and ZT, adding
 * to GA and GB; with DX, also dx = dx + A^T dz. As products of transposed operands:
 *   dz^T = scale * B^T dy^T   dB += scale * (z^T dy)^T   dA += dz^T x   dx += dz A */
static void lora_bwd(lmz_train_graph *g, const lmz_lora_weight *w, const float *x, const float *zt, const float *dy,
                     int n_tok, float *ga, float *gb, float *dx) {
    const int R = w->rank;
    const int64_t k = w->n_in, n = w->n_out;
    const size_t T = (size_t)n_tok;
    transpose(g, w->b, (long)n, R, (size_t)R, g->lt_w);
    mm(g, g->lt_w, (size_t)n, R, dy, n, n_tok, g->dzt, T, false);
    for (size_t i = 0; i < (size_t)R * T; i++) g->dzt[i] *= w->scale;
    transpose(g, dy, n_tok, (long)n, (size_t)n, g->lt_x);
    mm(g, zt, T, R, g->lt_x, n_tok, (long)n, g->lt_y, (size_t)n, false);
    for (int64_t j = 0; j < n; j++)
        for (int r = 0; r < R; r++) gb[j * R + r] += w->scale * g->lt_y[r * n + j];
    transpose(g, x, n_tok, (long)k, (size_t)k, g->lt_x);
    mm(g, g->dzt, T, R, g->lt_x, n_tok, (long)k, g->lt_y, (size_t)k, false);
    for (size_t i = 0; i < (size_t)R * k; i++) ga[i] += g->lt_y[i];
    if (!dx) return;
    transpose(g, w->a, R, (long)k, (size_t)k, g->lt_w);
    transpose(g, g->dzt, R, n_tok, T, g->dz);
    mm(g, g->dz, (size_t)R, n_tok, g->lt_w, R, (long)k, dx, (size_t)k, true);
}

/* ---------------- projections ---------------- */

/* y = W x (+ the adapter's term, keeping A x in ZT) for the N_TOK rows of X. */
static void proj_fwd(lmz_train_graph *g, const lmz_weight *w, const lmz_lora_weight *lw, const float *x, int n_tok,
                     float *y, float *zt) {
    dequant(g, w, 0, w->n, false);
    mm(g, x, (size_t)w->k, n_tok, g->wbuf, w->k, w->n, y, (size_t)w->n, false);
    if (lw) lora_fwd(g, lw, x, n_tok, y, zt);
}

/* Backward of proj_fwd given DY: the adapter's gradients (X is the forward input, ZT its
 * A x) and, when DX is not NULL, dx (+)= W^T dy + A^T dz. */
static void proj_bwd(lmz_train_graph *g, int il, int target, const float *x, const float *zt, const float *dy,
                     int n_tok, float *dx, bool acc) {
    const lmz_weight *w = target_weight(&g->m->layers[il], target);
    if (dx) {
        dequant(g, w, 0, w->n, true);
        mm(g, dy, (size_t)w->n, n_tok, g->wbuf, w->n, w->k, dx, (size_t)w->k, acc);
    }
    const lmz_lora_weight *lw = adapter_of(g, il, target);
    if (!lw) return;
    const int wi = g->widx[il * LMZ_LORA_N_TARGETS + target];
    lora_bwd(g, lw, x, zt, dy, n_tok, g->grads->data + g->grads->a_off[wi], g->grads->data + g->grads->b_off[wi], dx);
}

/* ---------------- elementwise pieces ---------------- */

static float rms_scale(const float *x, int n, float eps) {
    float ms = lmz_vec_dot(x, x, n) / (float)n;
    return 1.0f / sqrtf(ms + eps);
}

/* y = x / rms(x) * w (forward.c's rms_norm; y may alias x). */
static void rms_norm(const float *x, const float *w, int n, float eps, float *y) {
    float scale = rms_scale(x, n, eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

/* dx (+)= the gradient through y = rms_norm(x, w) given DY (DX may alias DY). */
static void rms_norm_bw(const float *x, const float *w, int n, float eps, const float *dy, float *dx, bool acc) {
    const float r = rms_scale(x, n, eps);
    double ux = 0;
    for (int i = 0; i < n; i++) ux += (double)(dy[i] * w[i]) * x[i];
    const float c = (float)(ux * r * r * r / n);
    for (int i = 0; i < n; i++) {
        float v = r * (dy[i] * w[i]) - c * x[i];
        dx[i] = acc ? dx[i] + v : v;
    }
}

static void rope_pair(const lmz_model *m, int i, int *ia, int *ib) {
    const int half = m->n_rot / 2;
    *ia = m->rope_kind == LMZ_ROPE_NEOX ? i : 2 * i;
    *ib = m->rope_kind == LMZ_ROPE_NEOX ? i + half : 2 * i + 1;
}

static void rope_fwd(const lmz_model *m, const rope_table *rt, float *head, int t) {
    const int half = m->n_rot / 2;
    const float *cs = rt->cos + t * half, *sn = rt->sin + t * half;
    for (int i = 0; i < half; i++) {
        int ia, ib;
        rope_pair(m, i, &ia, &ib);
        float a = head[ia], b = head[ib];
        head[ia] = a * cs[i] - b * sn[i];
        head[ib] = a * sn[i] + b * cs[i];
    }
}

static void rope_bwd(const lmz_model *m, const rope_table *rt, float *dhead, int t) {
    const int half = m->n_rot / 2;
    const float *cs = rt->cos + t * half, *sn = rt->sin + t * half;
    for (int i = 0; i < half; i++) {
        int ia, ib;
        rope_pair(m, i, &ia, &ib);
        float da = dhead[ia], db = dhead[ib];
        dhead[ia] = da * cs[i] + db * sn[i];
        dhead[ib] = db * cs[i] - da * sn[i];
    }
}

static void add_bias(float *y, const float *bias, int n_tok, int n) {
    if (!bias) return;
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += bias[i];
}

/* The FFN activation h = act(gate) * up, as forward.c computes it. */
static void ffn_act(const lmz_model *m, const float *gate, const float *up, size_t n, float *h) {
    if (m->gelu) {
        for (size_t i = 0; i < n; i++) h[i] = lmz_geluf(gate[i]) * up[i];
        return;
    }
    memcpy(h, gate, n * sizeof(float));
    lmz_vec_swiglu(h, up, (int64_t)n);
}

/* act(x) and act'(x). */
static void act_grad(const lmz_model *m, float x, float *a, float *da) {
    if (m->gelu) {
        const float c = 0.79788456080286535587989211986876f, k = 0.044715f;
        float t = lmz_tanhf(c * (x + k * x * x * x));
        *a = lmz_geluf(x);
        *da = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * k * x * x);
        return;
    }
    float s = 1.0f / (1.0f + lmz_expf(-x));
    *a = lmz_siluf(x);
    *da = s * (1.0f + x * (1.0f - s));
}

/* ---------------- attention ---------------- */

/* One query head at a time as matrix products over all T x T (query, key) pairs, the keys a
 * query does not see (causal mask, sliding window) given probability 0. */

typedef struct {
    lmz_train_graph *g;
    float *P;
    const float *dP;
    bool swa;
    int n_tok;
} attn_task;

/* First position the query at T sees. */
static int window_start(const lmz_model *m, bool swa, int t) {
    return swa && t - m->n_swa + 1 > 0 ? t - m->n_swa + 1 : 0;
}

/* Rows [b, e) of P: the dot products q . k become the softmax of kq_scale times them over
 * the positions the query sees (attention.h's expression), 0 elsewhere. */
static void softmax_worker(void *p, long b, long e, int ith) {
    (void)ith;
    const attn_task *a = p;
    const int T = a->n_tok;
    for (long t = b; t < e; t++) {
        float *row = a->P + t * T, mx = -INFINITY;
        const int p0 = window_start(a->g->m, a->swa, (int)t);
        for (int q = p0; q <= t; q++) {
            row[q] = row[q] * a->g->m->kq_scale;
            if (row[q] > mx) mx = row[q];
        }
        const float inv = 1.0f / lmz_vec_exp_sum(row + p0, t - p0 + 1, mx);
        for (int q = 0; q < T; q++) row[q] = q >= p0 && q <= t ? row[q] * inv : 0.0f;
    }
}

/* Rows [b, e) of dS = P (dP - sum_p P dP) from P and dP (dS may alias dP). */
static void softmax_grad_worker(void *p, long b, long e, int ith) {
    (void)ith;
    const attn_task *a = p;
    const int T = a->n_tok;
    for (long t = b; t < e; t++) {
        const float *P = a->P + t * T, *dP = a->dP + t * T;
        float *dS = a->g->dS + t * T, dot = 0;
        const int p0 = window_start(a->g->m, a->swa, (int)t);
        for (int q = p0; q <= t; q++) dot += P[q] * dP[q];
        for (int q = 0; q < T; q++) dS[q] = q >= p0 && q <= t ? P[q] * (dP[q] - dot) : 0.0f;
    }
}

/* g->P = the attention probabilities of query head H (T x T). */
static void attn_probs(lmz_train_graph *g, const layer_saved *s, bool swa, int T, int h) {
    const int D = g->D, gk = h / (g->H / g->Hk);
    mm_ld(g, s->q + h * D, (size_t)g->QD, T, s->k + gk * D, (size_t)g->KD, D, T, g->P, (size_t)T, false);
    attn_task a = {g, g->P, NULL, swa, T};
    lmz_pool_for(g->pool, T, 4, softmax_worker, &a);
}

/* o = P v for every query head. */
static void attention(lmz_train_graph *g, const layer_saved *s, bool swa, int T) {
    const int D = g->D, group = g->H / g->Hk;
    for (int h = 0; h < g->H; h++) {
        if (h % group == 0) transpose(g, s->v + h / group * D, T, D, (size_t)g->KD, g->at_d1);
        attn_probs(g, s, swa, T, h);
        mm(g, g->P, (size_t)T, T, g->at_d1, T, D, s->o + h * D, (size_t)g->QD, false);
    }
}

/* From d_o: dq for every query head, dk and dv for every K/V head (summed over the heads of
 * its group in order). With c = kq_scale: dP = do v^T, dS = P (dP - rowsum(P dP)),
 * dq = c dS k, dk = c sum_h dS^T q, dv = sum_h P^T do. */
static void attention_grad(lmz_train_graph *g, const layer_saved *s, bool swa, int T) {
    const int D = g->D, group = g->H / g->Hk, QD = g->QD, KD = g->KD;
    const float c = g->m->kq_scale;
    for (int gk = 0; gk < g->Hk; gk++) {
        transpose(g, s->k + gk * D, T, D, (size_t)KD, g->at_d1);
        for (int h = gk * group; h < (gk + 1) * group; h++) {
            attn_probs(g, s, swa, T, h);
            mm_ld(g, g->d_o + h * D, (size_t)QD, T, s->v + gk * D, (size_t)KD, D, T, g->dS, (size_t)T, false);
            attn_task a = {g, g->P, g->dS, swa, T};
            lmz_pool_for(g->pool, T, 4, softmax_grad_worker, &a);
            float *dq = g->dq + h * D;
            mm(g, g->dS, (size_t)T, T, g->at_d1, T, D, dq, (size_t)QD, false);
            for (int t = 0; t < T; t++)
                for (int i = 0; i < D; i++) dq[(size_t)t * QD + i] *= c;
            const bool acc = h > gk * group;
            transpose(g, g->dS, T, T, (size_t)T, g->at_tt);
            transpose(g, s->q + h * D, T, D, (size_t)QD, g->at_d2);
            mm(g, g->at_tt, (size_t)T, T, g->at_d2, T, D, g->dk + gk * D, (size_t)KD, acc);
            transpose(g, g->P, T, T, (size_t)T, g->at_tt);
            transpose(g, g->d_o + h * D, T, D, (size_t)QD, g->at_d2);
            mm(g, g->at_tt, (size_t)T, T, g->at_d2, T, D, g->dv + gk * D, (size_t)KD, acc);
        }
        for (int t = 0; t < T; t++)
            for (int i = 0; i < D; i++) g->dk[(size_t)t * KD + gk * D + i] *= c;
    }
}

/* ---------------- one layer, forward ---------------- */

static void attention_fwd(lmz_train_graph *g, int il, int T) {
    const lmz_model *m = g->m;
    const lmz_layer *L = &m->layers[il];
    layer_saved *s = &g->ls[il];
    const int E = g->E, H = g->H, Hk = g->Hk, D = g->D, QD = g->QD, KD = g->KD;
    memcpy(s->x_in, g->x, (size_t)T * E * sizeof(float));
    for (int t = 0; t < T; t++) rms_norm(g->x + (size_t)t * E, L->attn_norm.data, E, m->rms_eps, g->xn + (size_t)t * E);
    float *q = s->q_raw ? s->q_raw : s->q, *k = s->k_raw ? s->k_raw : s->k;
    proj_fwd(g, &L->wq, adapter_of(g, il, LMZ_LORA_ATTN_Q), g->xn, T, q, s->zt[LMZ_LORA_ATTN_Q]);
    proj_fwd(g, &L->wk, adapter_of(g, il, LMZ_LORA_ATTN_K), g->xn, T, k, s->zt[LMZ_LORA_ATTN_K]);
    proj_fwd(g, &L->wv, adapter_of(g, il, LMZ_LORA_ATTN_V), g->xn, T, s->v, s->zt[LMZ_LORA_ATTN_V]);
    add_bias(q, L->bq, T, QD);
    add_bias(k, L->bk, T, KD);
    add_bias(s->v, L->bv, T, KD);
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
            float *qh = s->q + ((size_t)t * H + h) * D;
            if (s->q_raw) rms_norm(s->q_raw + ((size_t)t * H + h) * D, L->q_norm.data, D, m->rms_eps, qh);
            rope_fwd(m, s->rope, qh, t);
            if (m->q_scale != 1.0f)
                for (int i = 0; i < D; i++) qh[i] *= m->q_scale;
        }
        for (int h = 0; h < Hk; h++) {
            float *kh = s->k + ((size_t)t * Hk + h) * D;
            if (s->k_raw) rms_norm(s->k_raw + ((size_t)t * Hk + h) * D, L->k_norm.data, D, m->rms_eps, kh);
            rope_fwd(m, s->rope, kh, t);
        }
    }
    attention(g, s, L->is_swa, T);
    float *out = s->attn_out ? s->attn_out : g->dt;
    proj_fwd(g, &L->wo, adapter_of(g, il, LMZ_LORA_ATTN_OUT), s->o, T, out, s->zt[LMZ_LORA_ATTN_OUT]);
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * E, *x = g->x + (size_t)t * E, *normed = g->xn + (size_t)t * E;
        if (s->attn_out) {
            rms_norm(o, L->post_attn_norm.data, E, m->rms_eps, normed);
            o = normed;
        }
        for (int i = 0; i < E; i++) x[i] += o[i];
    }
    memcpy(s->x_mid, g->x, (size_t)T * E * sizeof(float));
}

static void ffn_fwd(lmz_train_graph *g, int il, int T) {
    const lmz_model *m = g->m;
    const lmz_layer *L = &m->layers[il];
    layer_saved *s = &g->ls[il];
    const int E = g->E, F = g->F;
    for (int t = 0; t < T; t++) rms_norm(g->x + (size_t)t * E, L->ffn_norm.data, E, m->rms_eps, g->xn + (size_t)t * E);
    proj_fwd(g, &L->w_gate, adapter_of(g, il, LMZ_LORA_FFN_GATE), g->xn, T, s->gate, s->zt[LMZ_LORA_FFN_GATE]);
    proj_fwd(g, &L->w_up, adapter_of(g, il, LMZ_LORA_FFN_UP), g->xn, T, s->up, s->zt[LMZ_LORA_FFN_UP]);
    ffn_act(m, s->gate, s->up, (size_t)T * F, g->h);
    float *out = s->down ? s->down : g->dt;
    proj_fwd(g, &L->w_down, adapter_of(g, il, LMZ_LORA_FFN_DOWN), g->h, T, out, s->zt[LMZ_LORA_FFN_DOWN]);
    for (int t = 0; t < T; t++) {
        float *o = out + (size_t)t * E, *x = g->x + (size_t)t * E, *normed = g->xn + (size_t)t * E;
        if (s->down) {
            rms_norm(o, L->post_ffn_norm.data, E, m->rms_eps, normed);
            o = normed;
        }
        for (int i = 0; i < E; i++) x[i] += o[i];
    }
}

/* ---------------- one layer, backward ---------------- */

/* On entry g->dx holds the gradient of the layer's output; on return, of x_mid. */
static void ffn_bwd(lmz_train_graph *g, int il, int T) {
    const lmz_model *m = g->m;
    const lmz_layer *L = &m->layers[il];
    const layer_saved *s = &g->ls[il];
    const int E = g->E, F = g->F;
    for (int t = 0; t < T; t++)
        rms_norm(s->x_mid + (size_t)t * E, L->ffn_norm.data, E, m->rms_eps, g->xn + (size_t)t * E);
    ffn_act(m, s->gate, s->up, (size_t)T * F, g->h);
    const float *d_down = g->dx;
    if (s->down) {
        for (int t = 0; t < T; t++)
            rms_norm_bw(s->down + (size_t)t * E, L->post_ffn_norm.data, E, m->rms_eps, g->dx + (size_t)t * E,
                        g->dt + (size_t)t * E, false);
        d_down = g->dt;
    }
    proj_bwd(g, il, LMZ_LORA_FFN_DOWN, g->h, s->zt[LMZ_LORA_FFN_DOWN], d_down, T, g->dh, false);
    for (size_t i = 0; i < (size_t)T * F; i++) {
        float a, da;
        act_grad(m, s->gate[i], &a, &da);
        g->du[i] = g->dh[i] * a;
        g->dh[i] = g->dh[i] * s->up[i] * da;
    }
    proj_bwd(g, il, LMZ_LORA_FFN_GATE, g->xn, s->zt[LMZ_LORA_FFN_GATE], g->dh, T, g->dxn, false);
    proj_bwd(g, il, LMZ_LORA_FFN_UP, g->xn, s->zt[LMZ_LORA_FFN_UP], g->du, T, g->dxn, true);
    for (int t = 0; t < T; t++)
        rms_norm_bw(s->x_mid + (size_t)t * E, L->ffn_norm.data, E, m->rms_eps, g->dxn + (size_t)t * E,
                    g->dx + (size_t)t * E, true);
}

/* On entry g->dx holds the gradient of x_mid; on return, of the layer's input (not for
 * layer 0, whose input gradient nothing needs). */
static void attention_bwd(lmz_train_graph *g, int il, int T) {
    const lmz_model *m = g->m;
    const lmz_layer *L = &m->layers[il];
    const layer_saved *s = &g->ls[il];
    const int E = g->E, H = g->H, Hk = g->Hk, D = g->D;
    const float *d_ao = g->dx;
    if (s->attn_out) {
        for (int t = 0; t < T; t++)
            rms_norm_bw(s->attn_out + (size_t)t * E, L->post_attn_norm.data, E, m->rms_eps, g->dx + (size_t)t * E,
                        g->dt + (size_t)t * E, false);
        d_ao = g->dt;
    }
    proj_bwd(g, il, LMZ_LORA_ATTN_OUT, s->o, s->zt[LMZ_LORA_ATTN_OUT], d_ao, T, g->d_o, false);
    attention_grad(g, s, L->is_swa, T);
    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
            float *dq = g->dq + ((size_t)t * H + h) * D;
            if (m->q_scale != 1.0f)
                for (int i = 0; i < D; i++) dq[i] *= m->q_scale;
            rope_bwd(m, s->rope, dq, t);
            if (s->q_raw) rms_norm_bw(s->q_raw + ((size_t)t * H + h) * D, L->q_norm.data, D, m->rms_eps, dq, dq, false);
        }
        for (int h = 0; h < Hk; h++) {
            float *dk = g->dk + ((size_t)t * Hk + h) * D;
            rope_bwd(m, s->rope, dk, t);
            if (s->k_raw)
                rms_norm_bw(s->k_raw + ((size_t)t * Hk + h) * D, L->k_norm.data, D, m->rms_eps, dk, dk, false);
        }
    }
    for (int t = 0; t < T; t++)
        rms_norm(s->x_in + (size_t)t * E, L->attn_norm.data, E, m->rms_eps, g->xn + (size_t)t * E);
    float *dxn = il > 0 ? g->dxn : NULL;
    proj_bwd(g, il, LMZ_LORA_ATTN_Q, g->xn, s->zt[LMZ_LORA_ATTN_Q], g->dq, T, dxn, false);
    proj_bwd(g, il, LMZ_LORA_ATTN_K, g->xn, s->zt[LMZ_LORA_ATTN_K], g->dk, T, dxn, true);
    proj_bwd(g, il, LMZ_LORA_ATTN_V, g->xn, s->zt[LMZ_LORA_ATTN_V], g->dv, T, dxn, true);
    if (!dxn) return;
    for (int t = 0; t < T; t++)
        rms_norm_bw(s->x_in + (size_t)t * E, L->attn_norm.data, E, m->rms_eps, g->dxn + (size_t)t * E,
                    g->dx + (size_t)t * E, true);
}

/* ---------------- output head and loss ---------------- */

typedef struct {
    lmz_train_graph *g;
    int t0;
    bool grad;
} head_task;

/* For positions t0 + [b, e): bias and softcap on the logits, the loss, and with GRAD the
 * logits replaced by weight * d(loss)/d(logit before the softcap). */
static void head_worker(void *p, long b, long e, int ith) {
    (void)ith;
    const head_task *h = p;
    lmz_train_graph *g = h->g;
    const lmz_model *m = g->m;
    const int V = g->V;
    const float cap = m->logit_softcap;
    for (long u = b; u < e; u++) {
        float *l = g->logits + (size_t)u * V;
        const int32_t target = g->tokens[h->t0 + u + 1];
        if (m->output_bias)
            for (int j = 0; j < V; j++) l[j] += m->output_bias[j];
        if (cap > 0)
            for (int j = 0; j < V; j++) l[j] = cap * lmz_tanhf(l[j] / cap);
        float mx = l[0];
        for (int j = 1; j < V; j++)
            if (l[j] > mx) mx = l[j];
        double sum = 0;
        for (int j = 0; j < V; j++) sum += (double)lmz_expf(l[j] - mx);
        g->tok_loss[h->t0 + u] = (double)mx + lmz_log(sum) - (double)l[target];
        if (!h->grad) continue;
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < V; j++) {
            float d = lmz_expf(l[j] - mx) * inv - (j == target ? 1.0f : 0.0f);
            if (cap > 0) d *= 1.0f - (l[j] / cap) * (l[j] / cap);
            l[j] = g->weight * d;
        }
    }
}

/* Logits of x_final, the loss per position, and with GRAD the gradient of x_final in dx. */
static void head(lmz_train_graph *g, int T, bool grad) {
    const lmz_model *m = g->m;
    const int E = g->E, V = g->V;
    for (int t = 0; t < T; t++)
        rms_norm(g->x_final + (size_t)t * E, m->output_norm.data, E, m->rms_eps, g->xn + (size_t)t * E);
    for (int t0 = 0; t0 < T; t0 += g->logit_rows) {
        const int nt = T - t0 < g->logit_rows ? T - t0 : g->logit_rows;
        for (long v0 = 0; v0 < V; v0 += g->head_rows) {
            const long nv = V - v0 < g->head_rows ? V - v0 : g->head_rows;
            dequant(g, &m->output, v0, nv, false);
            mm(g, g->xn + (size_t)t0 * E, (size_t)E, nt, g->wbuf, E, nv, g->logits + v0, (size_t)V, false);
        }
        head_task ht = {g, t0, grad};
        lmz_pool_for(g->pool, nt, 1, head_worker, &ht);
        if (!grad) continue;
        for (long v0 = 0; v0 < V; v0 += g->head_rows) {
            const long nv = V - v0 < g->head_rows ? V - v0 : g->head_rows;
            dequant(g, &m->output, v0, nv, true);
            mm(g, g->logits + v0, (size_t)V, nt, g->wbuf, nv, E, g->dxn + (size_t)t0 * E, (size_t)E, v0 > 0);
        }
    }
    if (!grad) return;
    for (int t = 0; t < T; t++)
        rms_norm_bw(g->x_final + (size_t)t * E, m->output_norm.data, E, m->rms_eps, g->dxn + (size_t)t * E,
                    g->dx + (size_t)t * E, false);
}

/* ---------------- the pass ---------------- */

int lmz_train_graph_run(lmz_train_graph *g, const int32_t *tokens, int n, float weight, lmz_train_vec *grads,
                        double *loss) {
    const lmz_model *m = g->m;
    const int E = g->E;
    if (n < 1 || n > g->max_t) return lmz_fail("a training sequence has 1 to %d positions, not %d", g->max_t, n);
    for (int t = 0; t <= n; t++)
        if (tokens[t] < 0 || tokens[t] >= g->V)
            return lmz_fail("token id %d out of range (vocabulary has %d tokens)", tokens[t], g->V);
    if (grads && grads->n_weights != g->l->n_weights)
        return lmz_fail("the gradient vector does not match the adapter being trained");
    g->tokens = tokens;
    g->weight = weight;
    g->grads = grads;
    for (int t = 0; t < n; t++) {
        float *x = g->x + (size_t)t * E;
        const uint8_t *row = (const uint8_t *)m->token_embd.data + (size_t)tokens[t] * m->token_embd.row_bytes;
        lmz_dequantize_row(m->token_embd.type, row, E, x);
        if (m->embd_scale != 1.0f)
            for (int i = 0; i < E; i++) x[i] *= m->embd_scale;
    }
    for (int il = 0; il < m->n_layer; il++) {
        attention_fwd(g, il, n);
        ffn_fwd(g, il, n);
    }
    memcpy(g->x_final, g->x, (size_t)n * E * sizeof(float));
    head(g, n, grads != NULL);
    double sum = 0;
    for (int t = 0; t < n; t++) sum += g->tok_loss[t];
    *loss = sum;
    if (!grads) return 0;
    for (int il = m->n_layer - 1; il >= 0; il--) {
        ffn_bwd(g, il, n);
        attention_bwd(g, il, n);
    }
    return 0;
}
