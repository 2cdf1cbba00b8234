/* qa_format.c — the .lmzq byte layout: writing, validating, and the decision-bit writer
 * and reader (qa_format.h; docs/qa.md §5). */
#include "qa_format.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../util/crc32.h"
#include "../util/error.h"
#include "../util/mathfn.h"

int lmz_qa_max_bits(int variant, int questions, int rounds) {
    return variant == 0 ? questions : rounds * (1 + questions);
}

/* ---------------- writing ---------------- */

static int put_varint(lmz_bytebuf *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    return lmz_bytebuf_append(b, tmp, (size_t)n);
}

static int put_u32(lmz_bytebuf *b, uint32_t v) {
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return lmz_bytebuf_append(b, t, 4);
}

int lmz_qa_stream_write(const lmz_qa_stream *s, lmz_bytebuf *out) {
    size_t start = out->len;
    uint8_t head[8] = {'L', 'M', 'Z', 'Q', LMZ_QA_VERSION, (uint8_t)s->variant, (uint8_t)s->task,
                       (uint8_t)(s->coded ? 1 : 0)};
    if (lmz_bytebuf_append(out, head, sizeof head) || put_varint(out, (uint64_t)s->questions) ||
        put_varint(out, (uint64_t)s->rounds) || put_varint(out, (uint64_t)s->answer_tokens) ||
        lmz_bytebuf_append(out, s->slm_fp, LMZ_QA_FP_BYTES) || lmz_bytebuf_append(out, s->qm_fp, LMZ_QA_FP_BYTES) ||
        put_varint(out, s->n_problems))
        return -1;
    for (uint32_t i = 0; i < s->n_problems; i++)
        if (put_u32(out, s->problem_crc[i]) || put_varint(out, s->n_bits[i])) return -1;
    if (put_varint(out, s->body_len) || lmz_bytebuf_append(out, s->body, s->body_len)) return -1;
    return put_u32(out, lmz_crc32(out->data + start, out->len - start));
}

void lmz_qa_stream_free(lmz_qa_stream *s) {
    free(s->problem_crc);
    free(s->n_bits);
    s->problem_crc = NULL;
    s->n_bits = NULL;
}

/* ---------------- reading ---------------- */

typedef struct {
    const uint8_t *p, *end;
} cursor;

/* A minimal LEB128 varint of at most 35 bits. 0, 1 (ran out: truncated) or 2 (malformed). */
static int get_varint(cursor *c, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (c->p >= c->end) return 1;
        uint8_t b = *c->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0) return 2; /* not minimal */
            *v = x;
            return 0;
        }
    }
    return 2;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int truncated(void) { return lmz_fail("the QA stream is truncated"); }

int lmz_qa_stream_parse(lmz_qa_stream *s, const uint8_t *data, size_t len) {
    memset(s, 0, sizeof *s);
    if (len < 4 || memcmp(data, LMZ_QA_MAGIC, 4)) return lmz_fail("not an lmz QA stream (no LMZQ magic)");
    if (len < 8) return truncated();
    if (data[4] != LMZ_QA_VERSION)
        return lmz_fail("this QA stream has format version %u; this lmz reads version %d", data[4], LMZ_QA_VERSION);
    s->version = data[4];
    s->variant = data[5];
    s->task = data[6];
    if (s->variant > 1) return lmz_fail("the QA stream is corrupted (variant %d)", s->variant);
    if (s->task > 2) return lmz_fail("the QA stream is corrupted (task %d)", s->task);
    if (data[7] > 1) return lmz_fail("the QA stream is corrupted (reserved flag bits set: 0x%02x)", data[7]);
    s->coded = data[7];
    cursor c = {data + 8, data + len};
    uint64_t v[3];
    for (int k = 0; k < 3; k++) {
        int rc = get_varint(&c, &v[k]);
        if (rc == 1) return truncated();
        if (rc) return lmz_fail("the QA stream is corrupted (a malformed number in its header)");
    }
    if (v[0] < 1 || v[0] > LMZ_QA_MAX_QUESTIONS || v[1] < 1 || v[1] > LMZ_QA_MAX_ROUNDS || v[2] < 1 ||
        v[2] > LMZ_QA_MAX_ANSWER_TOKENS || (s->variant == 0 && v[1] != 1))
        return lmz_fail("the QA stream is corrupted (questions %llu, rounds %llu, answer tokens %llu)",
                        (unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2]);
    s->questions = (int)v[0];
    s->rounds = (int)v[1];
    s->answer_tokens = (int)v[2];
    if ((size_t)(c.end - c.p) < 2 * LMZ_QA_FP_BYTES) return truncated();
    memcpy(s->slm_fp, c.p, LMZ_QA_FP_BYTES);
    memcpy(s->qm_fp, c.p + LMZ_QA_FP_BYTES, LMZ_QA_FP_BYTES);
    c.p += 2 * LMZ_QA_FP_BYTES;
    uint64_t n;
    int rc = get_varint(&c, &n);
    if (rc == 1) return truncated();
    if (rc || n < 1 || n > LMZ_QA_MAX_PROBLEMS)
        return lmz_fail("the QA stream is corrupted (its problem count is not 1 to %d)", LMZ_QA_MAX_PROBLEMS);
    /* each problem takes at least 5 bytes: no allocation beyond what the input can hold */
    if ((uint64_t)(c.end - c.p) < n * 5) return truncated();
    s->n_problems = (uint32_t)n;
    s->problem_crc = lmz_malloc(n * sizeof *s->problem_crc);
    s->n_bits = lmz_malloc(n * sizeof *s->n_bits);
    if (!s->problem_crc || !s->n_bits) goto fail;
    const int max_bits = lmz_qa_max_bits(s->variant, s->questions, s->rounds);
    uint64_t total_bits = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (c.end - c.p < 4) {
            truncated();
            goto fail;
        }
        s->problem_crc[i] = get_u32(c.p);
        c.p += 4;
        uint64_t nb;
        if ((rc = get_varint(&c, &nb))) {
            if (rc == 1) truncated();
            else lmz_fail("the QA stream is corrupted (a malformed bit count)");
            goto fail;
        }
        /* one-shot runs take exactly K bits; iterative ones a whole number of rounds, the
         * last of which may end at its judge bit (accepted) */
        bool ok = nb >= 1 && nb <= (uint64_t)max_bits;
        if (s->variant == 0) ok = nb == (uint64_t)s->questions;
        else if (ok) {
            uint64_t rest = nb % (uint64_t)(1 + s->questions);
            ok = rest == 0 || rest == 1;
        }
        if (!ok) {
            lmz_fail("the QA stream is corrupted (problem %llu has %llu decision bits, which these parameters cannot give)",
                     (unsigned long long)i, (unsigned long long)nb);
            goto fail;
        }
        s->n_bits[i] = (uint32_t)nb;
        total_bits += nb;
    }
    uint64_t body_len;
    if ((rc = get_varint(&c, &body_len))) {
        if (rc == 1) truncated();
        else lmz_fail("the QA stream is corrupted (a malformed body length)");
        goto fail;
    }
    if ((uint64_t)(c.end - c.p) < body_len + 4) {
        truncated();
        goto fail;
    }
    s->body = c.p;
    s->body_len = (size_t)body_len;
    c.p += body_len;
    if (c.end - c.p != 4) {
        lmz_fail("the QA stream has %zu bytes of trailing garbage", (size_t)(c.end - c.p) - 4);
        goto fail;
    }
    if (get_u32(c.p) != lmz_crc32(data, len - 4)) {
        lmz_fail("the QA stream is corrupted (its CRC-32 does not match)");
        goto fail;
    }
    if (!s->coded) {
        if (body_len != (total_bits + 7) / 8) {
            lmz_fail("the QA stream is corrupted (its body holds %llu bytes, its problems %llu bits)",
                     (unsigned long long)body_len, (unsigned long long)total_bits);
            goto fail;
        }
        if (total_bits % 8 && (s->body[body_len - 1] & (0xffu >> (total_bits % 8)))) {
            lmz_fail("the QA stream is corrupted (non-zero padding bits)");
            goto fail;
        }
    } else if (body_len > total_bits + 16) {
        /* n coded decisions never take more than n + 1 mode bit per problem plus the coder's
         * flush; a bound that keeps the reader's work proportional to the header */
        lmz_fail("the QA stream is corrupted (a coded body of %llu bytes for %llu decisions)",
                 (unsigned long long)body_len, (unsigned long long)total_bits);
        goto fail;
    }
    return 0;
fail:
    lmz_qa_stream_free(s);
    return -1;
}

/* ---------------- probabilities ---------------- */

uint32_t lmz_qa_prob_freq(double p) {
    if (!(p == p)) p = 0.5;
    double f = p * (double)LMZ_QA_PROB_TOTAL;
    if (!(f >= 1.0)) return 1;
    if (f >= (double)(LMZ_QA_PROB_TOTAL - 1)) return LMZ_QA_PROB_TOTAL - 1;
    return (uint32_t)f;
}

double lmz_qa_code_bits(uint32_t f_yes, int bit) {
    uint32_t f = bit ? f_yes : LMZ_QA_PROB_TOTAL - f_yes;
    return (double)LMZ_QA_PROB_BITS - lmz_log((double)f) / 0.69314718055994530942;
}

/* ---------------- bits ---------------- */

void lmz_qa_bitwriter_init(lmz_qa_bitwriter *w, int coded, lmz_bytebuf *out) {
    memset(w, 0, sizeof *w);
    w->coded = coded;
    w->out = out;
    if (coded) lmz_renc_init(&w->enc, out);
}

int lmz_qa_bitwriter_mode(lmz_qa_bitwriter *w, int coded_mode) {
    if (!w->coded) return lmz_fail("internal: a mode bit in a raw QA stream");
    return lmz_renc_bits(&w->enc, coded_mode ? 1 : 0, 1);
}

int lmz_qa_bitwriter_put(lmz_qa_bitwriter *w, int bit, int coded_mode, uint32_t f_yes) {
    bit = bit ? 1 : 0;
    if (!w->coded) {
        w->acc = (uint8_t)(w->acc | bit << (7 - w->n_acc));
        if (++w->n_acc == 8) {
            if (lmz_bytebuf_push(w->out, w->acc)) return -1;
            w->acc = 0;
            w->n_acc = 0;
        }
        return 0;
    }
    if (!coded_mode) return lmz_renc_bits(&w->enc, (uint64_t)bit, 1);
    if (f_yes < 1 || f_yes >= LMZ_QA_PROB_TOTAL) return lmz_fail("internal: P(yes) frequency %u out of range", f_yes);
    return bit ? lmz_renc_encode(&w->enc, 0, f_yes, LMZ_QA_PROB_TOTAL)
               : lmz_renc_encode(&w->enc, f_yes, LMZ_QA_PROB_TOTAL - f_yes, LMZ_QA_PROB_TOTAL);
}

int lmz_qa_bitwriter_finish(lmz_qa_bitwriter *w) {
    if (w->coded) return lmz_renc_finish(&w->enc);
    if (w->n_acc && lmz_bytebuf_push(w->out, w->acc)) return -1;
    w->n_acc = 0;
    return 0;
}

void lmz_qa_bitreader_init(lmz_qa_bitreader *r, int coded, const uint8_t *data, size_t len) {
    memset(r, 0, sizeof *r);
    r->coded = coded;
    r->data = data;
    r->len = len;
    if (coded) lmz_rdec_init(&r->dec, data, len);
}

static int ran_out(void) { return lmz_fail("the QA stream is corrupted (its body ends before the protocol does)"); }

int lmz_qa_bitreader_mode(lmz_qa_bitreader *r) {
    if (!r->coded) return lmz_fail("internal: a mode bit in a raw QA stream");
    int b = (int)lmz_rdec_bits(&r->dec, 1);
    if (r->dec.past_end || r->dec.invalid) return ran_out();
    return b;
}

int lmz_qa_bitreader_get(lmz_qa_bitreader *r, int coded_mode, uint32_t f_yes) {
    if (!r->coded) {
        if (r->bit_pos >= r->len * 8) return ran_out();
        int b = r->data[r->bit_pos / 8] >> (7 - r->bit_pos % 8) & 1;
        r->bit_pos++;
        return b;
    }
    int b;
    if (!coded_mode) b = (int)lmz_rdec_bits(&r->dec, 1);
    else {
        if (f_yes < 1 || f_yes >= LMZ_QA_PROB_TOTAL) return lmz_fail("internal: P(yes) frequency %u out of range", f_yes);
        uint32_t t = lmz_rdec_target(&r->dec, LMZ_QA_PROB_TOTAL);
        b = t < f_yes;
        if (b) lmz_rdec_consume(&r->dec, 0, f_yes, LMZ_QA_PROB_TOTAL);
        else lmz_rdec_consume(&r->dec, f_yes, LMZ_QA_PROB_TOTAL - f_yes, LMZ_QA_PROB_TOTAL);
    }
    if (r->dec.past_end || r->dec.invalid) return ran_out();
    return b;
}

int lmz_qa_bitreader_finish(const lmz_qa_bitreader *r) {
    if (r->coded) {
        if (lmz_rdec_finish(&r->dec)) return lmz_fail("the QA stream is corrupted (%s)", lmz_last_error());
        return 0;
    }
    if ((r->bit_pos + 7) / 8 != r->len)
        return lmz_fail("the QA stream is corrupted (its body holds more bits than the protocol used)");
    if (r->bit_pos % 8 && (r->data[r->len - 1] & (0xffu >> (r->bit_pos % 8))))
        return lmz_fail("the QA stream is corrupted (non-zero padding bits)");
    return 0;
}
