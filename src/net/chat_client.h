/* chat_client.h — one exchange with an OpenAI-compatible /v1/chat/completions endpoint over
 * src/net/http.h, shared by the lossy rewriter (src/lossy/remote.c) and the QA oracle
 * (src/qa/oracle_endpoint.c): the request's JSON body, the POST, and the checks that the
 * reply is a chat completion with choices, with the error messages that name the endpoint.
 * What the choices mean (how many, which one) is the caller's. */
#ifndef LMZ_CHAT_CLIENT_H
#define LMZ_CHAT_CLIENT_H

#include <stddef.h>

#include "../coder/bytebuf.h"
#include "../util/json.h"
#include "http.h"

/* Appends the request body to B: {"model": MODEL, "messages": [{"role": "system", "content":
 * SYSTEM}, {"role": "user", "content": USER}], PARAMS} — no "model" when MODEL is NULL, no
 * system turn when SYSTEM is NULL; PARAMS is the rest of the object's members as JSON text
 * (e.g. "\"n\": 1, \"max_tokens\": 16, \"temperature\": 0"). 0, or -1 (out of memory). */
int lmz_chat_request_body(lmz_bytebuf *b, const char *model, const char *system, const char *user,
                          const char *params);

/* Where to send it. NAME starts every error message, followed by the URL: "rewriter
 * http://..." or "the LLM endpoint http://...". */
typedef struct {
    const char *name;
    const char *url;
    const char *api_key; /* sent as "Authorization: Bearer KEY", or NULL */
    double timeout_s;    /* for the whole exchange */
    size_t max_reply;    /* bytes */
} lmz_chat_target;

typedef struct {
    lmz_http_reply http;
    lmz_json *json;
    const lmz_json *choices; /* inside json: a non-empty array */
    size_t n_choices;
} lmz_chat_reply;

/* POSTs BODY[0..len) to T and reads a chat completion into R (free with
 * lmz_chat_reply_free, also after a failure). 0, or -1 + lmz_fail naming T: not reached or
 * timed out, an HTTP status other than 200 (with the reply's error.message, or an excerpt
 * of its body), a reply that is not JSON, or one without choices. */
int lmz_chat_post(const lmz_chat_target *t, const char *body, size_t len, lmz_chat_reply *r);
void lmz_chat_reply_free(lmz_chat_reply *r);

/* CHOICE's message.content when it is a string, else NULL. */
const lmz_json *lmz_chat_choice_content(const lmz_json *choice);

#endif
