/* chat_client.c — one exchange with an OpenAI-compatible chat completions endpoint
 * (chat_client.h): request body, POST, and the reply's checks and error messages. */
#include "chat_client.h"

#include <stdio.h>
#include <string.h>

#include "../util/error.h"

int lmz_chat_request_body(lmz_bytebuf *b, const char *model, const char *system, const char *user,
                          const char *params) {
    static const char model_open[] = "\"model\": ", messages_open[] = "\"messages\": [",
                      system_open[] = "{\"role\": \"system\", \"content\": ", user_open[] = "{\"role\": \"user\", \"content\": ";
    if (lmz_bytebuf_append(b, "{", 1)) return -1;
    if (model && (lmz_bytebuf_append(b, model_open, sizeof model_open - 1) ||
                  lmz_json_write_string(b, model, strlen(model)) || lmz_bytebuf_append(b, ", ", 2)))
        return -1;
    if (lmz_bytebuf_append(b, messages_open, sizeof messages_open - 1)) return -1;
    if (system && (lmz_bytebuf_append(b, system_open, sizeof system_open - 1) ||
                   lmz_json_write_string(b, system, strlen(system)) || lmz_bytebuf_append(b, "}, ", 3)))
        return -1;
    if (lmz_bytebuf_append(b, user_open, sizeof user_open - 1) || lmz_json_write_string(b, user, strlen(user)) ||
        lmz_bytebuf_append(b, "}], ", 4) || lmz_bytebuf_append(b, params, strlen(params)))
        return -1;
    return lmz_bytebuf_append(b, "}", 1);
}

/* A short, printable excerpt of TEXT for messages. */
static void excerpt(const char *text, size_t len, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < cap; i++) out[k++] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : ' ';
    if (len && k + 4 >= cap) memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
}

int lmz_chat_post(const lmz_chat_target *t, const char *body, size_t len, lmz_chat_reply *r) {
    char ex[200];
    memset(r, 0, sizeof *r);
    if (lmz_http_post_json(t->url, t->api_key, body, len, t->timeout_s, t->max_reply, &r->http))
        return lmz_fail("%s %s: %s", t->name, t->url, lmz_last_error());
    r->json = lmz_json_parse(r->http.body, r->http.len);
    if (r->http.status != 200) {
        const lmz_json *msg = lmz_json_get(lmz_json_get(r->json, "error"), "message");
        if (msg && msg->type == LMZ_JSON_STRING) excerpt(msg->str, msg->len, ex, sizeof ex);
        else excerpt(r->http.body, r->http.len, ex, sizeof ex);
        return lmz_fail("%s %s answered HTTP %d%s%s", t->name, t->url, r->http.status, ex[0] ? ": " : "", ex);
    }
    if (!r->json) {
        char why[200];
        snprintf(why, sizeof why, "%s", lmz_last_error());
        excerpt(r->http.body, r->http.len, ex, sizeof ex);
        return lmz_fail("%s %s: the reply is not JSON (%s): %s", t->name, t->url, why, ex);
    }
    const lmz_json *choices = lmz_json_get(r->json, "choices");
    if (!choices || choices->type != LMZ_JSON_ARRAY || !choices->child)
        return lmz_fail("%s %s: the reply has no choices", t->name, t->url);
    r->choices = choices;
    r->n_choices = lmz_json_count(choices);
    return 0;
}

void lmz_chat_reply_free(lmz_chat_reply *r) {
    lmz_json_free(r->json);
    lmz_http_reply_free(&r->http);
    memset(r, 0, sizeof *r);
}

const lmz_json *lmz_chat_choice_content(const lmz_json *choice) {
    const lmz_json *content = lmz_json_get(lmz_json_get(choice, "message"), "content");
    return content && content->type == LMZ_JSON_STRING ? content : NULL;
}
