/* remote.c — rewrites from an OpenAI-compatible /v1/chat/completions endpoint (lossy.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/http.h"
#include "../util/error.h"
#include "../util/json.h"
#include "lossy.h"

static int request_body(const lmz_lossy_endpoint *e, const char *message, int n, int max_tokens, uint64_t seed,
                        lmz_bytebuf *b) {
    char num[160];
    if (lmz_bytebuf_append(b, "{", 1)) return -1;
    if (e->model && (lmz_bytebuf_append(b, "\"model\": ", 9) || lmz_json_write_string(b, e->model, strlen(e->model)) ||
                     lmz_bytebuf_append(b, ", ", 2)))
        return -1;
    if (lmz_bytebuf_append(b, "\"messages\": [{\"role\": \"user\", \"content\": ", 41) ||
        lmz_json_write_string(b, message, strlen(message)))
        return -1;
    if (n == 1) snprintf(num, sizeof num, "}], \"n\": 1, \"max_tokens\": %d, \"temperature\": 0}", max_tokens);
    else
        snprintf(num, sizeof num, "}], \"n\": %d, \"max_tokens\": %d, \"temperature\": %.2f, \"top_p\": %.2f, \"seed\": %" PRIu64 "}",
                 n, max_tokens, (double)LMZ_LOSSY_TEMPERATURE, (double)LMZ_LOSSY_TOP_P, seed);
    return lmz_bytebuf_append(b, num, strlen(num));
}

/* A short, printable excerpt of BODY for messages. */
static void excerpt(const char *body, size_t len, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < cap; i++) out[k++] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : ' ';
    if (len && k + 4 >= cap) memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
}

int lmz_lossy_rewrite_remote(const lmz_lossy_endpoint *e, const char *message, int n, int max_tokens, uint64_t seed,
                             lmz_gen_output *out, int *n_got) {
    *n_got = 0;
    if (n < 1 || n > LMZ_LOSSY_MAX_CANDIDATES)
        return lmz_fail("best-of wants 1 to %d rewrites, not %d", LMZ_LOSSY_MAX_CANDIDATES, n);
    lmz_bytebuf body = {0};
    lmz_http_reply reply = {0};
    lmz_json *j = NULL;
    char ex[200];
    int rc = -1;
    if (request_body(e, message, n, max_tokens, seed, &body)) goto done;
    if (lmz_http_post_json(e->url, e->api_key, (const char *)body.data, body.len, e->timeout_s, LMZ_LOSSY_MAX_REPLY,
                           &reply)) {
        lmz_fail("rewriter %s: %s", e->url, lmz_last_error());
        goto done;
    }
    j = lmz_json_parse(reply.body, reply.len);
    if (reply.status != 200) {
        const lmz_json *msg = lmz_json_get(lmz_json_get(j, "error"), "message");
        if (msg && msg->type == LMZ_JSON_STRING) excerpt(msg->str, msg->len, ex, sizeof ex);
        else excerpt(reply.body, reply.len, ex, sizeof ex);
        lmz_fail("rewriter %s answered HTTP %d%s%s", e->url, reply.status, ex[0] ? ": " : "", ex);
        goto done;
    }
    if (!j) {
        char why[200];
        snprintf(why, sizeof why, "%s", lmz_last_error());
        excerpt(reply.body, reply.len, ex, sizeof ex);
        lmz_fail("rewriter %s: the reply is not JSON (%s): %s", e->url, why, ex);
        goto done;
    }
    const lmz_json *choices = lmz_json_get(j, "choices");
    size_t k = lmz_json_count(choices);
    if (!choices || choices->type != LMZ_JSON_ARRAY || k == 0) {
        lmz_fail("rewriter %s: the reply has no choices", e->url);
        goto done;
    }
    if (k > (size_t)n) {
        lmz_fail("rewriter %s: the reply has %zu choices where %d were asked for", e->url, k, n);
        goto done;
    }
    int i = 0;
    for (const lmz_json *c = choices->child; c; c = c->next, i++) {
        const lmz_json *content = lmz_json_get(lmz_json_get(c, "message"), "content");
        if (!content || content->type != LMZ_JSON_STRING) {
            lmz_fail("rewriter %s: choice %d of the reply has no message content", e->url, i);
            goto done;
        }
        if (!(out[i].text = lmz_malloc(content->len + 1))) goto done;
        memcpy(out[i].text, content->str, content->len + 1);
        out[i].len = content->len;
        out[i].reason = LMZ_STOP_EOG;
        *n_got = i + 1;
    }
    rc = 0;
done:
    if (rc) {
        for (int i = 0; i < *n_got; i++) lmz_gen_output_free(&out[i]);
        *n_got = 0;
    }
    lmz_json_free(j);
    lmz_http_reply_free(&reply);
    lmz_bytebuf_free(&body);
    return rc;
}
