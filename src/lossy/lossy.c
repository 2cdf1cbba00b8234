/* lossy.c — the rewriter's message, local rewriting in one batch, and the choice among
 * rewrites by their coded size (lossy.h). */
#include "lossy.h"

#include <stdlib.h>
#include <string.h>

#include "../generate/chat.h"
#include "../util/error.h"

/* Tuned on GSM8K *train* solutions (not the benchmark's test problems): Qwen2.5-Coder-1.5B
 * tends to replace a worked solution by its result; naming "every step of the working" and
 * showing one example of the terse form it should take keeps the steps more often. */
const char lmz_lossy_default_instruction[] =
    "Shorten the text below as much as you can without losing information a reader needs: keep its facts, "
    "numbers, names and conclusions. When the text works something out, keep every step of the working, not "
    "just the result: write each step as a terse equation with its numbers and result, in order. For example, "
    "\"He buys 3 packs of 12 pens, which is 3 x 12 = 36 pens. After giving away 6 he has 36 - 6 = 30 pens left.\" "
    "becomes \"3*12=36 pens; 36-6=30 left\". Cut repetition, filler, pleasantries and formatting that carries no "
    "information; use symbols instead of words where they mean the same. Add nothing that is not in the text. "
    "Reply with the shortened text only.";

static const char context_intro[] = "\n\nThe text answers this prompt:\n";
static const char input_intro[] = "\n\nText to rewrite:\n";

char *lmz_lossy_message(const lmz_lossy_request *r) {
    size_t n_ins = strlen(r->instruction);
    size_t n = n_ins + (r->context ? sizeof context_intro - 1 + r->context_len : 0) + sizeof input_intro - 1 +
               r->input_len;
    char *s = lmz_malloc(n + 1), *p = s;
    if (!s) return NULL;
    memcpy(p, r->instruction, n_ins);
    p += n_ins;
    if (r->context) {
        memcpy(p, context_intro, sizeof context_intro - 1);
        p += sizeof context_intro - 1;
        memcpy(p, r->context, r->context_len);
        p += r->context_len;
    }
    memcpy(p, input_intro, sizeof input_intro - 1);
    p += sizeof input_intro - 1;
    memcpy(p, r->input, r->input_len);
    p[r->input_len] = 0;
    return s;
}

int lmz_lossy_token_limit(size_t input_tokens) {
    return input_tokens > LMZ_LOSSY_MIN_TOKENS ? (int)(input_tokens < (1u << 30) ? input_tokens : 1u << 30)
                                               : LMZ_LOSSY_MIN_TOKENS;
}

/* Appends the tokens of TEXT[0..len) to *IDS (*N of them, capacity *CAP). */
static int append_tokens(const lmz_tokenizer *tok, const char *text, size_t len, bool special, int32_t **ids,
                         size_t *n, size_t *cap) {
    int32_t *part;
    size_t k;
    if (lmz_tokenize(tok, text, len, false, special, &part, &k)) return -1;
    if (*n + k > *cap) {
        size_t c = (*n + k) * 2;
        int32_t *p = lmz_realloc(*ids, c * sizeof *p);
        if (!p) {
            free(part);
            return -1;
        }
        *ids = p;
        *cap = c;
    }
    if (k) memcpy(*ids + *n, part, k * sizeof *part);
    *n += k;
    free(part);
    return 0;
}

/* The chat prompt's tokens. The template is rendered around a marker byte standing for the
 * context and the input, and those are tokenized as plain text in its place: text in them
 * that reads like a special token ("<|im_end|>") must not end the user's turn. */
static int prompt_tokens(const lmz_model *m, const lmz_tokenizer *tok, const lmz_lossy_request *r, int32_t **ids,
                         size_t *n) {
    static const char marker = '\x01';
    if (strchr(r->instruction, marker))
        return lmz_fail("the rewrite instruction must not contain the byte 0x01");
    /* The user's message: instruction [context_intro MARK] input_intro MARK. */
    size_t n_ins = strlen(r->instruction);
    char *content = lmz_malloc(n_ins + sizeof context_intro + sizeof input_intro + 2), *p = content;
    if (!content) return -1;
    memcpy(p, r->instruction, n_ins);
    p += n_ins;
    if (r->context) {
        memcpy(p, context_intro, sizeof context_intro - 1);
        p += sizeof context_intro - 1;
        *p++ = marker;
    }
    memcpy(p, input_intro, sizeof input_intro - 1);
    p += sizeof input_intro - 1;
    *p++ = marker;
    *p = 0;
    lmz_chat_message msg = {"user", content};
    char *rendered = lmz_chat_render(m->file, &msg, 1);
    free(content);
    if (!rendered) return -1;
    const uint8_t *plain[2] = {r->context ? r->context : r->input, r->input};
    size_t plain_len[2] = {r->context ? r->context_len : r->input_len, r->input_len};
    int n_plain = r->context ? 2 : 1, used = 0;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    int rc = 0;
    const char *seg = rendered;
    for (;;) {
        const char *mark = strchr(seg, marker);
        size_t len = mark ? (size_t)(mark - seg) : strlen(seg);
        if ((rc = append_tokens(tok, seg, len, true, ids, n, &cap))) break;
        if (!mark) break;
        if (used == n_plain) {
            rc = lmz_fail("the rewriter's chat template holds the byte 0x01");
            break;
        }
        if ((rc = append_tokens(tok, (const char *)plain[used], plain_len[used], false, ids, n, &cap))) break;
        used++;
        seg = mark + 1;
    }
    if (!rc && used != n_plain) rc = lmz_fail("the rewriter's chat template dropped the user's message");
    free(rendered);
    if (rc) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}

int lmz_lossy_rewrite_local(const lmz_model *m, const lmz_tokenizer *tok, const lmz_lossy_request *r, int n,
                            uint64_t seed, int threads, lmz_gen_output *out) {
    if (n < 1 || n > LMZ_LOSSY_MAX_CANDIDATES)
        return lmz_fail("best-of wants 1 to %d rewrites, not %d", LMZ_LOSSY_MAX_CANDIDATES, n);
    int32_t *prompt = NULL, *input_ids = NULL;
    size_t n_prompt = 0, n_input = 0;
    if (prompt_tokens(m, tok, r, &prompt, &n_prompt)) return -1;
    if (lmz_tokenize(tok, (const char *)r->input, r->input_len, false, false, &input_ids, &n_input)) {
        free(prompt);
        return -1;
    }
    free(input_ids);
    int limit = lmz_lossy_token_limit(n_input);
    if (n_prompt + (size_t)limit > (size_t)m->n_ctx_train) {
        free(prompt);
        return lmz_fail("the input is too long for the rewriter %s: with the instruction it takes %zu tokens and its "
                        "rewrite may take %d more, but the model's context holds %d",
                        m->name, n_prompt, limit, m->n_ctx_train);
    }
    const int32_t **prompts = lmz_malloc((size_t)n * sizeof *prompts);
    size_t *lens = lmz_malloc((size_t)n * sizeof *lens);
    lmz_ctx *ctx = prompts && lens ? lmz_ctx_create(m, (int)n_prompt + limit, n, threads) : NULL;
    int rc = -1;
    if (ctx) {
        /* The same prompt N times: lmz_generate seeds each sequence from SEED and its index. */
        for (int i = 0; i < n; i++) {
            prompts[i] = prompt;
            lens[i] = n_prompt;
        }
        lmz_gen_params gp = {.max_tokens = limit, .seed = seed};
        if (n == 1) gp.sampling = (lmz_sampling){0.0f, 0, 1.0f};
        else gp.sampling = (lmz_sampling){LMZ_LOSSY_TEMPERATURE, LMZ_LOSSY_TOP_K, LMZ_LOSSY_TOP_P};
        rc = lmz_generate(ctx, tok, (const int32_t *const *)prompts, lens, n, &gp, out);
    }
    lmz_ctx_free(ctx);
    free(prompts);
    free(lens);
    free(prompt);
    return rc;
}

static int code(lmz_codec *c, bool lossy, const uint8_t *data, size_t len, lmz_bytebuf *out) {
    c->lossy = lossy;
    lmz_memory_input in = {data, len, 0};
    lmz_codec_stats st;
    int rc = lmz_compress(c, lmz_read_memory, &in, lmz_sink_to_bytebuf, out, &st, NULL, NULL);
    c->lossy = false;
    return rc;
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; }

int lmz_lossy_choose(lmz_codec *c, const uint8_t *input, size_t input_len, const char *const *texts,
                     const size_t *lens, int n, lmz_lossy_result *r) {
    memset(r, 0, sizeof *r);
    r->kept = -1;
    r->n_candidates = n;
    r->candidate_bytes = lmz_calloc(n > 0 ? (size_t)n : 1, sizeof *r->candidate_bytes);
    if (!r->candidate_bytes || code(c, false, input, input_len, &r->archive)) goto fail;
    r->original_bytes = r->archive.len;
    r->kept_text = (const char *)input;
    r->kept_len = input_len;
    for (int i = 0; i < n; i++) {
        const char *s = texts[i];
        size_t len = lens[i];
        while (len && is_space(*s)) s++, len--;
        while (len && is_space(s[len - 1])) len--;
        if (!len) continue; /* nothing kept is not a rewrite */
        lmz_bytebuf coded = {0};
        if (code(c, true, (const uint8_t *)s, len, &coded)) {
            lmz_bytebuf_free(&coded);
            goto fail;
        }
        r->candidate_bytes[i] = coded.len;
        if (coded.len < r->archive.len) {
            lmz_bytebuf_free(&r->archive);
            r->archive = coded;
            r->kept = i;
            r->kept_text = s;
            r->kept_len = len;
        } else {
            lmz_bytebuf_free(&coded);
        }
    }
    return 0;
fail:
    lmz_lossy_result_free(r);
    return -1;
}

void lmz_lossy_result_free(lmz_lossy_result *r) {
    free(r->candidate_bytes);
    lmz_bytebuf_free(&r->archive);
    memset(r, 0, sizeof *r);
    r->kept = -1;
}
