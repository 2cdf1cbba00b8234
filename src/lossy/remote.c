/* remote.c — rewrites from an OpenAI-compatible /v1/chat/completions endpoint (lossy.h), by way of
 * src/net/chat_client.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/chat_client.h"
#include "../util/error.h"
#include "../util/json.h"
#include "lossy.h"

/* The request's members after "messages": greedy for one rewrite, sampled for several. */
static void request_params(int n, int max_tokens, uint64_t seed, char *out, size_t cap) {
    if (n == 1) snprintf(out, cap, "\"n\": 1, \"max_tokens\": %d, \"temperature\": 0", max_tokens);
    else
        snprintf(out, cap, "\"n\": %d, \"max_tokens\": %d, \"temperature\": %.2f, \"top_p\": %.2f, \"seed\": %" PRIu64,
                 n, max_tokens, (double)LMZ_LOSSY_TEMPERATURE, (double)LMZ_LOSSY_TOP_P, seed);
}

int lmz_lossy_rewrite_remote(const lmz_lossy_endpoint *e, const char *message, int n, int max_tokens, uint64_t seed,
                             lmz_gen_output *out, int *n_got) {
    *n_got = 0;
    if (n < 1 || n > LMZ_LOSSY_MAX_CANDIDATES)
        return lmz_fail("best-of wants 1 to %d rewrites, not %d", LMZ_LOSSY_MAX_CANDIDATES, n);
    const lmz_chat_target t = {"rewriter", e->url, e->api_key, e->timeout_s, LMZ_LOSSY_MAX_REPLY};
    lmz_bytebuf body = {0};
    lmz_chat_reply reply = {0};
    char params[160];
    int rc = -1;
    request_params(n, max_tokens, seed, params, sizeof params);
    if (lmz_chat_request_body(&body, e->model, NULL, message, params) ||
        lmz_chat_post(&t, (const char *)body.data, body.len, &reply))
        goto done;
    if (reply.n_choices > (size_t)n) {
        lmz_fail("rewriter %s: the reply has %zu choices where %d were asked for", e->url, reply.n_choices, n);
        goto done;
    }
    int i = 0;
    for (const lmz_json *c = reply.choices->child; c; c = c->next, i++) {
        const lmz_json *content = lmz_chat_choice_content(c);
        if (!content) {
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
    lmz_chat_reply_free(&reply);
    lmz_bytebuf_free(&body);
    return rc;
}
