/* codec.c — chunking, group coding and lockstep decoding (see codec.h).
 *
 * Model positions of a chunk: 0 = start token, 1..n_context = context, then the symbols'
 * tokens. The logits at position p predict the symbol at p + 1, so a chunk of n symbols
 * needs logits at positions n_context .. n_context + n - 1. */
#include "codec.h"

#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../coder/bytebuf.h"
#include "../coder/rangecoder.h"
#include "../probs/freq.h"
#include "../runtime/threadpool.h"
#include "../util/crc32.h"
#include "../util/error.h"
#include "../util/mathfn.h"
#include "../util/sha256.h"
#include "symbols.h"

#define LOGITS_BUDGET_BYTES (24u << 20) /* logits of one batch, at most (peak RSS target) */
/* Chunks per batch, at most: threads share out each batch's rows, so the group is not
 * scaled with -T. Each chunk of a group holds a KV cache for its positions (~23 KB a
 * position for SmolLM2, and a 4 KiB chunk has 900-1,536), so a group also ends before its
 * positions would take more than a KV budget (always at least one chunk). The budgets keep
 * the peak RSS within the target of model file + 150 MiB on any text: measured with
 * SmolLM2, everything but the KV cache takes ~157 MiB compressing (the logits budget
 * included) and ~130 MiB decompressing, so 84 and 108 MiB of cache fit (before, 4 chunks
 * of token-dense escaped JSON took 254 MiB). Decoding gets the larger budget because its
 * lockstep width is its speed; a compression batch is LOGITS_BUDGET_BYTES of rows however
 * many chunks share it. */
#define DEFAULT_GROUP 4
#define KV_BUDGET_BYTES (84u << 20)
#define DECODE_KV_BUDGET_BYTES (108u << 20)
#define RAW_ESCAPE_SHARE 0.25           /* more escaped bytes than this: store without coding */
#define RAW_BYTE_ENTROPY 7.2            /* order-0 bits/byte above which a chunk is stored uncoded */

int lmz_codec_init(lmz_codec *c, const lmz_model *model, const lmz_tokenizer *tok, const uint8_t model_sha256[32],
                   const uint8_t *context, size_t context_len, int threads, int chunk_bytes, int chunk_tokens,
                   int group) {
    memset(c, 0, sizeof *c);
    c->model = model;
    c->tok = tok;
    memcpy(c->model_sha256, model_sha256, 32);
    c->start = lmz_start_token(tok);
    c->escape = lmz_escape_token(tok, c->start);
    c->threads = threads > 0 ? threads : 1;
    c->chunk_bytes = chunk_bytes > 0 ? chunk_bytes : LMZ_DEFAULT_CHUNK_BYTES;
    c->chunk_tokens = chunk_tokens > 0 ? chunk_tokens : LMZ_DEFAULT_CHUNK_TOKENS;
    c->group = group > 0 ? group : DEFAULT_GROUP;
    c->kv_budget_bytes = KV_BUDGET_BYTES;
    c->decode_kv_budget_bytes = DECODE_KV_BUDGET_BYTES;
    if (context && context_len) {
        size_t n;
        if (lmz_tokenize(tok, (const char *)context, context_len, false, false, &c->context, &n)) return -1;
        c->n_context = n;
        c->has_context = true;
        lmz_sha256 h;
        lmz_sha256_init(&h);
        lmz_sha256_update(&h, context, context_len);
        lmz_sha256_final(&h, c->context_sha256);
        if (c->n_context + 1 + (size_t)c->chunk_tokens > (size_t)model->n_ctx_train)
            return lmz_fail("the context is %zu tokens; with %d-token chunks that exceeds the model's context of %d",
                            c->n_context, c->chunk_tokens, model->n_ctx_train);
    }
    return 0;
}

void lmz_codec_free(lmz_codec *c) {
    free(c->context);
    c->context = NULL;
}

int lmz_codec_set_lora(lmz_codec *c, const lmz_lora *lora) {
    static const uint8_t unsaved[32];
    if (lora && lora->model != c->model)
        return lmz_fail("the adapter was loaded for another model (%s) than the codec's (%s)", lora->model->path,
                        c->model->path);
    if (lora && !memcmp(lora->sha256, unsaved, sizeof unsaved))
        return lmz_fail("the adapter has never been saved, so an archive could not name it: save it first");
    c->lora = lora;
    return 0;
}

long lmz_read_memory(void *ctx, uint8_t *buf, size_t len) {
    lmz_memory_input *in = ctx;
    size_t n = in->len - in->pos < len ? in->len - in->pos : len;
    memcpy(buf, in->data + in->pos, n);
    in->pos += n;
    return (long)n;
}

int lmz_sink_to_bytebuf(void *ctx, const void *data, size_t len) { return lmz_bytebuf_append(ctx, data, len); }
int lmz_write_to_bytebuf(void *ctx, const uint8_t *data, size_t len) { return lmz_bytebuf_append(ctx, data, len); }

static int n_ctx_for(const lmz_codec *c, int max_symbols) { return 1 + (int)c->n_context + max_symbols; }

/* Model positions a chunk of N_SYMS coded symbols holds in the KV cache (a stored chunk, 0). */
static size_t chunk_positions(const lmz_codec *c, size_t n_syms) { return n_syms ? 1 + c->n_context + n_syms : 0; }

/* Whether a chunk of NEED positions joins a group that has N chunks holding USED: the first
 * always does, the others while the group's cache stays within BUDGET bytes. */
static bool joins_group(const lmz_codec *c, int n, size_t used, size_t need, size_t budget) {
    if (n == 0) return true;
    if (n >= c->group) return false;
    return (used + need) * lmz_kv_bytes_per_position(c->model) <= budget;
}

/* A context for G chunks of up to MAX_SYMBOLS symbols each, with the codec's adapter. */
static lmz_ctx *codec_ctx(const lmz_codec *c, int max_symbols, int g) {
    lmz_ctx *ctx = lmz_ctx_create(c->model, n_ctx_for(c, max_symbols), g, c->threads);
    if (ctx && lmz_ctx_set_lora(ctx, c->lora)) {
        lmz_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

static int32_t model_token(const lmz_codec *c, int32_t sym) { return lmz_is_escape(sym) ? c->escape : sym; }

/* Positions per chunk in one batch so that logits stay within the budget. */
static int positions_per_step(const lmz_codec *c, int n_chunks) {
    long rows = (long)(LOGITS_BUDGET_BYTES / ((size_t)c->model->n_vocab * sizeof(float)));
    long p = rows / (n_chunks > 0 ? n_chunks : 1);
    return (int)(p < 1 ? 1 : p > 256 ? 256 : p);
}

/* ---------------- shared group state ---------------- */

typedef struct {
    const lmz_codec *c;
    int n;                   /* chunks in the group */
    int32_t **syms;          /* per chunk: symbols (known when coding, filled when decoding) */
    size_t *n_syms;          /* per chunk: symbol count */
    size_t *done;            /* per chunk: symbols coded / decoded so far */
    lmz_bytebuf *out;        /* coding: per chunk payload */
    lmz_renc *enc;
    lmz_rdec *dec;
    double *ideal_bits;      /* per chunk */
    uint32_t *freq;          /* per thread: n_vocab frequencies */
    const float *logits;     /* this step's rows */
    int *row_of;             /* per chunk: first logits row of this step, or -1 */
    int *rows;               /* per chunk: rows this step */
    atomic_int failed;       /* set by any worker */
} group;

static int group_alloc(group *g, const lmz_codec *c, int n, int threads) {
    memset(g, 0, sizeof *g);
    g->c = c;
    g->n = n;
    g->syms = lmz_calloc((size_t)n, sizeof *g->syms);
    g->n_syms = lmz_calloc((size_t)n, sizeof *g->n_syms);
    g->done = lmz_calloc((size_t)n, sizeof *g->done);
    g->ideal_bits = lmz_calloc((size_t)n, sizeof *g->ideal_bits);
    g->row_of = lmz_calloc((size_t)n, sizeof *g->row_of);
    g->rows = lmz_calloc((size_t)n, sizeof *g->rows);
    g->freq = lmz_malloc((size_t)threads * c->model->n_vocab * sizeof(uint32_t));
    if (!g->syms || !g->n_syms || !g->done || !g->ideal_bits || !g->row_of || !g->rows || !g->freq) return -1;
    return 0;
}

static void group_free(group *g) {
    free(g->syms);
    free(g->n_syms);
    free(g->done);
    free(g->ideal_bits);
    free(g->row_of);
    free(g->rows);
    free(g->freq);
    free(g->enc);
    free(g->dec);
    free(g->out);
}

/* ---------------- coding ---------------- */

/* Codes, for every chunk this worker owns, the symbols predicted by this step's rows. */
static void encode_worker(void *p, long begin, long end, int ith) {
    group *g = p;
    const int V = g->c->model->n_vocab;
    uint32_t *freq = g->freq + (size_t)ith * V;
    for (long k = begin; k < end; k++) {
        for (int r = 0; r < g->rows[k]; r++) {
            const float *logits = g->logits + (size_t)(g->row_of[k] + r) * V;
            int32_t sym = g->syms[k][g->done[k]];
            int32_t tok = model_token(g->c, sym);
            if (lmz_freq_build(logits, V, freq) || lmz_renc_encode(&g->enc[k], lmz_freq_cum(freq, tok), freq[tok], LMZ_FREQ_TOTAL) ||
                (lmz_is_escape(sym) && lmz_renc_bits(&g->enc[k], lmz_escaped_byte(sym), 8))) {
                g->failed = 1;
                return;
            }
            g->ideal_bits[k] += lmz_freq_bits(freq[tok]) + (lmz_is_escape(sym) ? 8.0 : 0.0);
            g->done[k]++;
        }
    }
}

/* Builds one batch: for each chunk, its prefix (first step) and then up to STEP positions
 * whose logits predict the next symbols. */
typedef struct {
    int32_t *tok, *pos, *seq;
    uint8_t *want;
    int n;
} batch_buf;

static int batch_alloc(batch_buf *b, size_t cap) {
    b->tok = lmz_malloc(cap * sizeof(int32_t));
    b->pos = lmz_malloc(cap * sizeof(int32_t));
    b->seq = lmz_malloc(cap * sizeof(int32_t));
    b->want = lmz_malloc(cap);
    b->n = 0;
    return b->tok && b->pos && b->seq && b->want ? 0 : -1;
}

static void batch_free(batch_buf *b) {
    free(b->tok);
    free(b->pos);
    free(b->seq);
    free(b->want);
}

static void batch_add(batch_buf *b, int32_t tok, int pos, int seq, bool want) {
    b->tok[b->n] = tok;
    b->pos[b->n] = pos;
    b->seq[b->n] = seq;
    b->want[b->n] = want;
    b->n++;
}

/* The token at model position POS of chunk K (start, context, symbols). */
static int32_t token_at(const group *g, int k, size_t pos) {
    if (pos == 0) return g->c->start;
    if (pos <= g->c->n_context) return g->c->context[pos - 1];
    return model_token(g->c, g->syms[k][pos - 1 - g->c->n_context]);
}

/* Codes the N chunks' symbols into payloads OUT[0..n) on CTX. */
static int code_group(const lmz_codec *c, lmz_ctx *ctx, int32_t **syms, const size_t *n_syms, int n,
                      lmz_bytebuf *out, double *ideal_bits) {
    group g;
    const int V = c->model->n_vocab, threads = c->threads;
    const int step = positions_per_step(c, n);
    batch_buf b = {0};
    float *logits = NULL;
    int rc = -1;
    size_t prefix = 1 + c->n_context;
    if (group_alloc(&g, c, n, threads)) goto done;
    g.enc = lmz_calloc((size_t)n, sizeof *g.enc);
    logits = lmz_malloc((size_t)n * step * V * sizeof(float));
    if (!g.enc || !logits || batch_alloc(&b, (size_t)n * (prefix + (size_t)step))) goto done;
    for (int k = 0; k < n; k++) {
        g.syms[k] = syms[k];
        g.n_syms[k] = n_syms[k];
        lmz_renc_init(&g.enc[k], &out[k]);
    }
    lmz_ctx_release_kv(ctx);
    /* next[k]: the next model position of chunk k to evaluate */
    size_t *next = lmz_calloc((size_t)n, sizeof *next);
    if (!next) goto done;
    for (;;) {
        b.n = 0;
        int row = 0;
        for (int k = 0; k < n; k++) {
            g.rows[k] = 0;
            g.row_of[k] = row;
            /* positions predicting symbols: prefix-1 .. prefix-1+n_syms-1; the last symbol is never fed */
            size_t end = prefix - 1 + g.n_syms[k];
            size_t limit = (next[k] > prefix - 1 ? next[k] : prefix - 1) + (size_t)step;
            if (limit > end) limit = end;
            for (size_t p = next[k]; p < limit; p++) {
                bool want = p + 1 >= prefix;
                batch_add(&b, token_at(&g, k, p), (int)p, k, want);
                if (want) g.rows[k]++, row++;
            }
            next[k] = limit > next[k] ? limit : next[k];
        }
        if (b.n == 0) break;
        lmz_batch batch = {b.n, b.tok, b.pos, b.seq, b.want};
        if (lmz_decode(ctx, &batch, logits)) {
            free(next);
            goto done;
        }
        g.logits = logits;
        lmz_pool_for(lmz_ctx_pool(ctx), n, 1, encode_worker, &g);
        if (g.failed) {
            free(next);
            goto done;
        }
    }
    free(next);
    for (int k = 0; k < n; k++) {
        if (g.done[k] != g.n_syms[k]) {
            lmz_fail("internal error: chunk coded %zu of %zu symbols", g.done[k], g.n_syms[k]);
            goto done;
        }
        if (lmz_renc_finish(&g.enc[k])) goto done;
        ideal_bits[k] = g.ideal_bits[k];
    }
    rc = 0;
done:
    group_free(&g);
    batch_free(&b);
    free(logits);
    return rc;
}

/* ---------------- decoding ---------------- */

/* Decodes one symbol for every chunk this worker owns that has a row this step. */
static void decode_worker(void *p, long begin, long end, int ith) {
    group *g = p;
    const int V = g->c->model->n_vocab;
    uint32_t *freq = g->freq + (size_t)ith * V;
    for (long k = begin; k < end; k++) {
        if (!g->rows[k]) continue;
        const float *logits = g->logits + (size_t)g->row_of[k] * V;
        if (lmz_freq_build(logits, V, freq)) {
            g->failed = 1;
            return;
        }
        uint32_t cum;
        int32_t tok = lmz_freq_find(freq, V, lmz_rdec_target(&g->dec[k], LMZ_FREQ_TOTAL), &cum);
        lmz_rdec_consume(&g->dec[k], cum, freq[tok], LMZ_FREQ_TOTAL);
        int32_t sym = tok == g->c->escape ? lmz_escaped((uint8_t)lmz_rdec_bits(&g->dec[k], 8)) : tok;
        g->ideal_bits[k] += lmz_freq_bits(freq[tok]) + (lmz_is_escape(sym) ? 8.0 : 0.0);
        g->syms[k][g->done[k]++] = sym;
    }
}

/* Decodes N coded chunks in lockstep: SYMS[k] receives N_SYMS[k] symbols. */
static int decode_group(const lmz_codec *c, lmz_ctx *ctx, const lmz_archive_chunk *const *chunks, int n,
                        int32_t **syms) {
    group g;
    const int V = c->model->n_vocab;
    const size_t prefix = 1 + c->n_context;
    batch_buf b = {0};
    float *logits = NULL;
    int rc = -1;
    if (group_alloc(&g, c, n, c->threads)) goto done;
    lmz_ctx_release_kv(ctx);
    g.dec = lmz_calloc((size_t)n, sizeof *g.dec);
    logits = lmz_malloc((size_t)n * V * sizeof(float));
    if (!g.dec || !logits || batch_alloc(&b, (size_t)n * prefix)) goto done;
    for (int k = 0; k < n; k++) {
        g.syms[k] = syms[k];
        g.n_syms[k] = chunks[k]->meta.token_count;
        lmz_rdec_init(&g.dec[k], chunks[k]->payload, chunks[k]->meta.payload_bytes);
        for (size_t p = 0; p < prefix; p++) batch_add(&b, token_at(&g, k, p), (int)p, k, p + 1 == prefix);
        g.rows[k] = 1;
        g.row_of[k] = k;
    }
    for (;;) {
        lmz_batch batch = {b.n, b.tok, b.pos, b.seq, b.want};
        if (lmz_decode(ctx, &batch, logits)) goto done;
        g.logits = logits;
        lmz_pool_for(lmz_ctx_pool(ctx), n, 1, decode_worker, &g);
        if (g.failed) goto done;
        b.n = 0;
        for (int k = 0; k < n; k++) {
            g.rows[k] = g.done[k] < g.n_syms[k];
            if (!g.rows[k]) continue;
            g.row_of[k] = b.n;
            batch_add(&b, model_token(c, syms[k][g.done[k] - 1]), (int)(prefix + g.done[k] - 1), k, true);
        }
        if (b.n == 0) break;
    }
    for (int k = 0; k < n; k++)
        if (lmz_rdec_finish(&g.dec[k])) goto done;
    rc = 0;
done:
    group_free(&g);
    batch_free(&b);
    free(logits);
    return rc;
}

/* ---------------- whole streams ---------------- */

/* Order-0 entropy of the bytes in bits/byte: compressed or random data sits near 8, text
 * well below 6. A chunk above RAW_BYTE_ENTROPY would not shrink under the model either, and
 * coding it first would cost a model pass per byte for nothing. An encoder-only choice: the
 * decoder just sees a stored chunk. */
static double byte_entropy(const uint8_t *p, size_t n) {
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++) count[p[i]]++;
    double h = 0;
    for (int b = 0; b < 256; b++)
        if (count[b]) {
            double q = (double)count[b] / (double)n;
            h -= q * lmz_log(q) / 0.69314718055994530942;
        }
    return h;
}

static long read_full(lmz_read_fn read, void *rctx, uint8_t *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        long r = read(rctx, buf + got, len - got);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

static void fill_params(const lmz_codec *c, lmz_archive_params *p) {
    memset(p, 0, sizeof *p);
    p->flags = (c->has_context ? LMZ_ARCHIVE_HAS_CONTEXT : 0) | (c->lora ? LMZ_ARCHIVE_HAS_ADAPTER : 0) |
               (c->lossy ? LMZ_ARCHIVE_LOSSY : 0);
    p->engine_version = LMZ_ENGINE_VERSION;
    p->coder_version = LMZ_CODER_VERSION;
    p->freq_total_bits = LMZ_FREQ_TOTAL_BITS;
    p->vocab_size = (uint32_t)c->model->n_vocab;
    p->start_token = (uint32_t)c->start;
    p->context_tokens = (uint32_t)n_ctx_for(c, c->chunk_tokens);
    p->chunk_bytes = (uint32_t)c->chunk_bytes;
    memcpy(p->model_fp, c->model_sha256, LMZ_ARCHIVE_FP_BYTES);
    if (c->has_context) memcpy(p->context_fp, c->context_sha256, LMZ_ARCHIVE_FP_BYTES);
    if (c->lora) memcpy(p->adapter_fp, c->lora->sha256, LMZ_ARCHIVE_FP_BYTES);
}

typedef struct {
    uint8_t *bytes;     /* chunk input */
    size_t len;
    int32_t *syms;
    size_t n_syms;
    bool raw;
    lmz_bytebuf payload;
    double ideal_bits;
} pending_chunk;

int lmz_compress(lmz_codec *c, lmz_read_fn read, void *rctx, lmz_archive_sink sink, void *sctx,
                 lmz_codec_stats *st, lmz_progress_fn progress, void *pctx) {
    memset(st, 0, sizeof *st);
    lmz_archive_params params;
    fill_params(c, &params);
    const int G = c->group;
    lmz_archive_writer *w = lmz_archive_writer_new(&params, sink, sctx);
    lmz_ctx *ctx = w ? codec_ctx(c, c->chunk_tokens, G) : NULL;
    pending_chunk *ch = lmz_calloc((size_t)G, sizeof *ch);
    uint8_t *carry = lmz_malloc((size_t)c->chunk_bytes);
    int32_t **coded_syms = lmz_calloc((size_t)G, sizeof *coded_syms);
    size_t *coded_n = lmz_calloc((size_t)G, sizeof *coded_n);
    lmz_bytebuf *coded_out = lmz_calloc((size_t)G, sizeof *coded_out);
    double *coded_bits = lmz_calloc((size_t)G, sizeof *coded_bits);
    int rc = -1;
    size_t carry_len = 0;
    bool eof = false;
    if (!w || !ctx || !ch || !carry || !coded_syms || !coded_n || !coded_out || !coded_bits) goto done;
    for (int k = 0; k < G; k++)
        if (!(ch[k].bytes = lmz_malloc((size_t)c->chunk_bytes))) goto done;

    int held = 0; /* > 0: ch[held] is a chunk that did not fit the last group and opens the next */
    while (!eof || carry_len || held) {
        int n = 0;
        size_t used = 0; /* the group's KV positions */
        if (held) {
            pending_chunk t = ch[0];
            ch[0] = ch[held];
            ch[held] = t;
            used = chunk_positions(c, ch[0].raw ? 0 : ch[0].n_syms);
            n = 1;
            held = 0;
        }
        /* gather up to G chunks, within the KV budget */
        while (n < G && (!eof || carry_len)) {
            pending_chunk *pc = &ch[n];
            memcpy(pc->bytes, carry, carry_len);
            long got = eof ? 0 : read_full(read, rctx, pc->bytes + carry_len, (size_t)c->chunk_bytes - carry_len);
            if (got < 0) goto done;
            if ((size_t)got < (size_t)c->chunk_bytes - carry_len) eof = true;
            pc->len = carry_len + (size_t)got;
            carry_len = 0;
            if (pc->len == 0) break;
            free(pc->syms);
            pc->syms = NULL;
            pc->n_syms = 0;
            /* high-entropy bytes are stored whole, without tokenizing */
            pc->raw = pc->len >= 256 && byte_entropy(pc->bytes, pc->len) > RAW_BYTE_ENTROPY;
            size_t escapes = 0;
            if (!pc->raw) {
                if (lmz_bytes_to_symbols(c->tok, pc->bytes, pc->len, &pc->syms, &pc->n_syms)) goto done;
                if (pc->n_syms > (size_t)c->chunk_tokens) {
                    size_t covered = 0;
                    uint8_t piece[512];
                    for (int i = 0; i < c->chunk_tokens; i++)
                        covered += lmz_symbol_bytes(c->tok, pc->syms[i], piece, sizeof piece);
                    carry_len = pc->len - covered;
                    memcpy(carry, pc->bytes + covered, carry_len);
                    pc->len = covered;
                    pc->n_syms = (size_t)c->chunk_tokens;
                }
                for (size_t i = 0; i < pc->n_syms; i++) escapes += lmz_is_escape(pc->syms[i]);
                pc->raw = (double)escapes > RAW_ESCAPE_SHARE * (double)pc->n_syms;
            }
            st->escapes += escapes;
            size_t need = chunk_positions(c, pc->raw ? 0 : pc->n_syms);
            if (!joins_group(c, n, used, need, c->kv_budget_bytes)) {
                held = n;
                break;
            }
            used += need;
            n++;
        }
        if (n == 0) break;
        if (used > st->peak_group_positions) st->peak_group_positions = used;
        int m = 0;
        for (int k = 0; k < n; k++) {
            ch[k].payload.len = 0;
            if (ch[k].raw) continue;
            coded_syms[m] = ch[k].syms;
            coded_n[m] = ch[k].n_syms;
            coded_out[m].len = 0;
            m++;
        }
        if (m && code_group(c, ctx, coded_syms, coded_n, m, coded_out, coded_bits)) goto done;
        m = 0;
        for (int k = 0; k < n; k++) {
            pending_chunk *pc = &ch[k];
            lmz_chunk_meta meta = {(uint32_t)pc->len, 0, (uint32_t)pc->len, lmz_crc32(pc->bytes, pc->len)};
            const void *payload = pc->bytes;
            if (!pc->raw) {
                lmz_bytebuf *out = &coded_out[m];
                if (out->len < pc->len) {
                    meta.token_count = (uint32_t)pc->n_syms;
                    meta.payload_bytes = (uint32_t)out->len;
                    payload = out->data;
                    st->symbols += pc->n_syms;
                    st->ideal_bits += coded_bits[m];
                    st->coded_bits += 8.0 * (double)out->len;
                }
                m++;
            }
            if (meta.token_count == 0) st->raw_chunks++;
            if (lmz_archive_writer_add(w, &meta, payload)) goto done;
            st->chunks++;
            st->input_bytes += pc->len;
            st->output_bytes += meta.payload_bytes;
        }
        if (progress) progress(pctx, st->input_bytes, st);
    }
    if (lmz_archive_writer_finish(w)) goto done;
    st->output_bytes = lmz_archive_writer_size(w);
    rc = 0;
done:
    lmz_archive_writer_free(w);
    lmz_ctx_free(ctx);
    for (int k = 0; ch && k < G; k++) {
        free(ch[k].bytes);
        free(ch[k].syms);
    }
    for (int k = 0; coded_out && k < G; k++) lmz_bytebuf_free(&coded_out[k]);
    free(ch);
    free(carry);
    free(coded_syms);
    free(coded_n);
    free(coded_out);
    free(coded_bits);
    return rc;
}

static void hex16(const uint8_t *sha, char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* Everything in the header that must match this codec before decoding makes sense. */
static int check_params(const lmz_codec *c, const lmz_archive_params *p) {
    if (lmz_archive_check_model(p, c->model->name, c->model_sha256, c->lora ? c->lora->sha256 : NULL)) return -1;
    if (p->engine_version != LMZ_ENGINE_VERSION || p->coder_version != LMZ_CODER_VERSION)
        return lmz_fail("this archive was made by another lmz version (engine %u, coder %u; this lmz reads %u, %u)",
                        p->engine_version, p->coder_version, LMZ_ENGINE_VERSION, LMZ_CODER_VERSION);
    if (p->freq_total_bits != LMZ_FREQ_TOTAL_BITS || p->vocab_size != (uint32_t)c->model->n_vocab ||
        p->start_token != (uint32_t)c->start)
        return lmz_fail("archive coding parameters do not match this lmz and model (frequency bits %u, vocabulary %u, "
                        "start token %u)", p->freq_total_bits, p->vocab_size, p->start_token);
    bool needs_context = p->flags & LMZ_ARCHIVE_HAS_CONTEXT;
    char want[17], have[17];
    hex16(p->context_fp, want);
    hex16(c->context_sha256, have);
    if (needs_context && !c->has_context)
        return lmz_fail("this archive was compressed with a context (sha256 %s...): give the same text with --context "
                        "FILE or --prompt TEXT", want);
    if (!needs_context && c->has_context)
        return lmz_fail("this archive was compressed without a context: drop --context/--prompt");
    if (needs_context && memcmp(p->context_fp, c->context_sha256, LMZ_ARCHIVE_FP_BYTES))
        return lmz_fail("the context you gave (sha256 %s...) is not the one this archive was compressed with "
                        "(sha256 %s...)", have, want);
    return 0;
}

int lmz_decompress(lmz_codec *c, const lmz_archive *a, lmz_write_fn write, void *wctx, lmz_codec_stats *st,
                   lmz_progress_fn progress, void *pctx) {
    memset(st, 0, sizeof *st);
    if (check_params(c, &a->params)) return -1;
    uint32_t max_tokens = 0, max_bytes = 0;
    for (uint64_t i = 0; i < a->n_chunks; i++) {
        if (a->chunks[i].meta.token_count > max_tokens) max_tokens = a->chunks[i].meta.token_count;
        if (a->chunks[i].meta.input_bytes > max_bytes) max_bytes = a->chunks[i].meta.input_bytes;
    }
    if ((size_t)n_ctx_for(c, (int)max_tokens) > a->params.context_tokens || a->params.context_tokens > (1u << 20))
        return lmz_fail("corrupt archive: chunk token counts exceed the context size recorded in the header");
    const int G = c->group;
    /* Memory follows what the chunks need, not the header's limits, which a damaged or crafted
     * archive may set far beyond them (the logits do not depend on the cache's size). */
    lmz_ctx *ctx = max_tokens ? codec_ctx(c, (int)max_tokens, G) : NULL;
    int32_t **syms = lmz_calloc((size_t)G, sizeof *syms);
    const lmz_archive_chunk **coded = lmz_calloc((size_t)G, sizeof *coded);
    uint8_t *bytes = lmz_malloc(max_bytes);
    int rc = -1;
    if ((max_tokens && !ctx) || !syms || !coded || !bytes) goto done;
    for (int k = 0; k < G; k++)
        if (!(syms[k] = lmz_malloc((size_t)(max_tokens ? max_tokens : 1) * sizeof(int32_t)))) goto done;
    int n;
    for (uint64_t first = 0; first < a->n_chunks; first += (uint64_t)n) {
        /* the next chunks, up to G within the KV budget (as lmz_compress groups them) */
        size_t used = 0;
        for (n = 0; first + (uint64_t)n < a->n_chunks; n++) {
            size_t need = chunk_positions(c, a->chunks[first + (uint64_t)n].meta.token_count);
            if (!joins_group(c, n, used, need, c->decode_kv_budget_bytes)) break;
            used += need;
        }
        if (used > st->peak_group_positions) st->peak_group_positions = used;
        int m = 0;
        for (int k = 0; k < n; k++)
            if (a->chunks[first + k].meta.token_count) coded[m++] = &a->chunks[first + k];
        if (m && decode_group(c, ctx, coded, m, syms)) {
            lmz_fail("chunk %llu..%llu: %s", (unsigned long long)first, (unsigned long long)(first + n - 1), lmz_last_error());
            goto done;
        }
        m = 0;
        for (int k = 0; k < n; k++) {
            const lmz_archive_chunk *chunk = &a->chunks[first + k];
            const uint8_t *out = chunk->payload;
            size_t len = chunk->meta.input_bytes;
            if (chunk->meta.token_count) {
                size_t pos = 0;
                for (uint32_t i = 0; i < chunk->meta.token_count; i++) {
                    /* written in place; a token that does not fit means a corrupt chunk */
                    size_t k2 = lmz_symbol_bytes(c->tok, syms[m][i], bytes + pos, len - pos);
                    if (k2 > len - pos) {
                        lmz_fail("corrupt archive: chunk %llu decodes to more than its %zu bytes",
                                 (unsigned long long)(first + k), len);
                        goto done;
                    }
                    pos += k2;
                }
                if (pos != len) {
                    lmz_fail("corrupt archive: chunk %llu decodes to %zu bytes, not %zu", (unsigned long long)(first + k),
                             pos, len);
                    goto done;
                }
                st->symbols += chunk->meta.token_count;
                m++;
                out = bytes;
            } else {
                st->raw_chunks++;
            }
            if (lmz_crc32(out, len) != chunk->meta.crc32) {
                lmz_fail("corrupt archive: chunk %llu fails its checksum", (unsigned long long)(first + k));
                goto done;
            }
            if (write && write(wctx, out, len)) goto done;
            st->output_bytes += len;
            st->chunks++;
        }
        if (progress) progress(pctx, st->output_bytes, st);
    }
    st->input_bytes = st->output_bytes;
    rc = 0;
done:
    lmz_ctx_free(ctx);
    for (int k = 0; syms && k < G; k++) free(syms[k]);
    free(syms);
    free(coded);
    free(bytes);
    return rc;
}
