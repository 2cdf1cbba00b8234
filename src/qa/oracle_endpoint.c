/* oracle_endpoint.c — the oracle behind an OpenAI-compatible /v1/chat/completions URL
 * (src/net/chat_client.h): its reference solution is one greedy chat completion (temperature 0) of
 * the same solve prompt the SLM gets; each yes/no is one completion of the checker prompt
 * (problem, reference, attempt, question), read as yes when the reply's first word is
 * "yes" (case-insensitively; leading spaces and punctuation skipped), else no. An endpoint
 * that cannot be reached, times out, answers with an HTTP error or a reply that is not a
 * chat completion fails the call with a message naming the URL. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../net/chat_client.h"
#include "../net/http.h"
#include "../util/error.h"
#include "../util/json.h"
#include "qa_internal.h"

#define QA_ENDPOINT_MAX_REPLY ((size_t)8 << 20)
#define QA_ENDPOINT_DEFAULT_TOKENS 512
#define QA_ENDPOINT_ANSWER_TOKENS 4

typedef struct {
    char *url, *model, *key;
    enum lmz_qa_task task;
    double timeout_s;
} endpoint;

static char *dup(const char *s) {
    if (!s) return NULL;
    char *d = lmz_malloc(strlen(s) + 1);
    if (d) strcpy(d, s);
    return d;
}

/* One chat completion: *OUT gets the reply's first choice's text (malloc'd). 0, or -1 +
 * lmz_fail. */
static int complete(const endpoint *e, const char *system, const char *user, int max_tokens, char **out) {
    *out = NULL;
    const lmz_chat_target t = {"the LLM endpoint", e->url, e->key, e->timeout_s, QA_ENDPOINT_MAX_REPLY};
    lmz_bytebuf body = {0};
    lmz_chat_reply reply = {0};
    char params[96];
    int rc = -1;
    snprintf(params, sizeof params, "\"n\": 1, \"max_tokens\": %d, \"temperature\": 0", max_tokens);
    if (lmz_chat_request_body(&body, e->model, system, user, params) ||
        lmz_chat_post(&t, (const char *)body.data, body.len, &reply))
        goto done;
    const lmz_json *content = lmz_chat_choice_content(reply.choices->child);
    if (!content) {
        lmz_fail("the LLM endpoint %s: the reply's first choice has no message content", e->url);
        goto done;
    }
    if (!(*out = lmz_malloc(content->len + 1))) goto done;
    memcpy(*out, content->str, content->len + 1);
    rc = 0;
done:
    lmz_chat_reply_free(&reply);
    lmz_bytebuf_free(&body);
    return rc;
}

/* 1 when TEXT's first word is "yes" (any case; leading spaces and punctuation skipped). */
static int first_word_yes(const char *text) {
    const char *p = text;
    while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) p++;
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z')) n++;
    return n == 3 && !strncasecmp(p, "yes", 3);
}

static int ep_solve(lmz_qa_oracle *o, const char *const *problems, int n, char **out) {
    endpoint *e = o->self;
    if (o->max_tokens < 1) return lmz_fail("the oracle's token limit must be positive, not %d", o->max_tokens);
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n; i++)
        if (complete(e, qa_system_solve(e->task), problems[i], o->max_tokens, &out[i])) {
            for (int k = 0; k < i; k++) free(out[k]), out[k] = NULL;
            return -1;
        }
    return 0;
}

static int ep_answer(lmz_qa_oracle *o, const char *const *problems, const char *const *refs,
                     const char *const *attempts, const char *const *questions, int n, int nq, uint8_t *bits) {
    endpoint *e = o->self;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nq; j++) {
            char *msg = qa_checker_message(problems[i], refs && refs[i] ? refs[i] : "", attempts[i], questions[i * nq + j]);
            char *reply = NULL;
            int rc = msg ? complete(e, qa_system_checker(), msg, QA_ENDPOINT_ANSWER_TOKENS, &reply) : -1;
            free(msg);
            if (rc) return -1;
            bits[i * nq + j] = (uint8_t)first_word_yes(reply);
            free(reply);
        }
    return 0;
}

static int ep_judge(lmz_qa_oracle *o, const char *const *problems, const char *const *refs,
                    const char *const *attempts, int n, uint8_t *accept) {
    const endpoint *e = o->self;
    return qa_judge_by_answer(o, e->task, problems, refs, attempts, n, accept);
}

static void ep_free(lmz_qa_oracle *o) {
    if (!o) return;
    endpoint *e = o->self;
    if (e) {
        free(e->url);
        free(e->model);
        if (e->key) memset(e->key, 0, strlen(e->key));
        free(e->key);
        free(e);
    }
    free(o);
}

lmz_qa_oracle *lmz_qa_oracle_endpoint(const char *url, const char *model, const char *api_key, enum lmz_qa_task task,
                                      double timeout_s) {
    lmz_http_url u;
    if (!url || lmz_http_parse_url(url, &u)) {
        if (!url) lmz_fail("the LLM endpoint needs a URL");
        return NULL;
    }
    if (task < LMZ_QA_MATH || task > LMZ_QA_GENERAL) {
        lmz_fail("unknown QA task %d", task);
        return NULL;
    }
    if (!(timeout_s > 0)) {
        lmz_fail("the LLM endpoint's time limit must be positive");
        return NULL;
    }
    lmz_qa_oracle *o = lmz_calloc(1, sizeof *o);
    endpoint *e = lmz_calloc(1, sizeof *e);
    if (!o || !e) goto fail;
    o->self = e;
    e->task = task;
    e->timeout_s = timeout_s;
    if (!(e->url = dup(url)) || (model && !(e->model = dup(model))) || (api_key && !(e->key = dup(api_key)))) goto fail;
    o->solve = ep_solve;
    o->answer = ep_answer;
    o->judge = ep_judge;
    o->free = ep_free;
    o->max_tokens = QA_ENDPOINT_DEFAULT_TOKENS;
    return o;
fail:
    if (o) ep_free(o);
    else free(e);
    return NULL;
}
