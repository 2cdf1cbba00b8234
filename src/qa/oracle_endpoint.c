/* oracle_endpoint.c — the oracle behind an OpenAI-compatible /v1/chat/completions URL
 * (src/net/http.h): its reference solution is one greedy chat completion (temperature 0) of
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

static int request_body(const endpoint *e, const char *system, const char *user, int max_tokens, lmz_bytebuf *b) {
    char tail[96];
    if (lmz_bytebuf_append(b, "{", 1)) return -1;
    if (e->model && (lmz_bytebuf_append(b, "\"model\": ", 9) || lmz_json_write_string(b, e->model, strlen(e->model)) ||
                     lmz_bytebuf_append(b, ", ", 2)))
        return -1;
    static const char sys_open[] = "\"messages\": [{\"role\": \"system\", \"content\": ";
    static const char user_open[] = "}, {\"role\": \"user\", \"content\": ";
    if (lmz_bytebuf_append(b, sys_open, sizeof sys_open - 1) || lmz_json_write_string(b, system, strlen(system)) ||
        lmz_bytebuf_append(b, user_open, sizeof user_open - 1) || lmz_json_write_string(b, user, strlen(user)))
        return -1;
    snprintf(tail, sizeof tail, "}], \"n\": 1, \"max_tokens\": %d, \"temperature\": 0}", max_tokens);
    return lmz_bytebuf_append(b, tail, strlen(tail));
}

/* A short, printable excerpt of TEXT for messages. */
static void excerpt(const char *text, size_t len, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < cap; i++) out[k++] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : ' ';
    if (len && k + 4 >= cap) memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
}

/* One chat completion: *OUT gets the reply's text (malloc'd). 0, or -1 + lmz_fail. */
static int complete(const endpoint *e, const char *system, const char *user, int max_tokens, char **out) {
    *out = NULL;
    lmz_bytebuf body = {0};
    lmz_http_reply reply = {0};
    lmz_json *j = NULL;
    char ex[200];
    int rc = -1;
    if (request_body(e, system, user, max_tokens, &body)) goto done;
    if (lmz_http_post_json(e->url, e->key, (const char *)body.data, body.len, e->timeout_s, QA_ENDPOINT_MAX_REPLY,
                           &reply)) {
        lmz_fail("the LLM endpoint %s: %s", e->url, lmz_last_error());
        goto done;
    }
    j = lmz_json_parse(reply.body, reply.len);
    if (reply.status != 200) {
        const lmz_json *msg = lmz_json_get(lmz_json_get(j, "error"), "message");
        if (msg && msg->type == LMZ_JSON_STRING) excerpt(msg->str, msg->len, ex, sizeof ex);
        else excerpt(reply.body, reply.len, ex, sizeof ex);
        lmz_fail("the LLM endpoint %s answered HTTP %d%s%s", e->url, reply.status, ex[0] ? ": " : "", ex);
        goto done;
    }
    if (!j) {
        char why[200];
        snprintf(why, sizeof why, "%s", lmz_last_error());
        excerpt(reply.body, reply.len, ex, sizeof ex);
        lmz_fail("the LLM endpoint %s: the reply is not JSON (%s): %s", e->url, why, ex);
        goto done;
    }
    const lmz_json *choices = lmz_json_get(j, "choices");
    if (!choices || choices->type != LMZ_JSON_ARRAY || !choices->child) {
        lmz_fail("the LLM endpoint %s: the reply has no choices", e->url);
        goto done;
    }
    const lmz_json *content = lmz_json_get(lmz_json_get(choices->child, "message"), "content");
    if (!content || content->type != LMZ_JSON_STRING) {
        lmz_fail("the LLM endpoint %s: the reply's first choice has no message content", e->url);
        goto done;
    }
    if (!(*out = lmz_malloc(content->len + 1))) goto done;
    memcpy(*out, content->str, content->len + 1);
    rc = 0;
done:
    lmz_json_free(j);
    lmz_http_reply_free(&reply);
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
    endpoint *e = o->self;
    const char **qs = lmz_malloc((size_t)n * sizeof *qs);
    if (!qs) return -1;
    for (int i = 0; i < n; i++) qs[i] = qa_judge_question(e->task);
    int rc = ep_answer(o, problems, refs, attempts, qs, n, 1, accept);
    free(qs);
    return rc;
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
