/* chat_service.h — lmz's engine as an OpenAI-compatible chat completions service: the
 * request handler behind `lmz serve` (src/net/server.h carries the HTTP).
 *
 * Endpoints: POST /v1/chat/completions, GET /v1/models, GET /v1/models/ID, GET /health.
 * A completion request is validated and its chat prompt rendered and tokenized on the
 * connection's thread; then it waits in a queue. One worker thread owns the model's
 * context (n_streams sequences) and runs the queued requests, oldest first, as many as
 * fit (each of a request's n choices takes one sequence), as one lmz_generate_each batch;
 * requests arriving meanwhile form the next batch. Each choice is generated with its
 * request's own parameters and draws its random numbers as choice i of that request alone
 * would, and lmz's logits do not depend on the batch, so a reply never depends on what
 * else was running. A request whose client leaves is dropped from the queue, or its
 * sequences stop at the next token. docs/serve.md documents fields, limits and errors. */
#ifndef LMZ_CHAT_SERVICE_H
#define LMZ_CHAT_SERVICE_H

#include <stdbool.h>
#include <stdio.h>

#include "../model/model.h"
#include "../net/server.h"
#include "../tokenizer/tokenizer.h"

typedef struct {
    const char *model_id;  /* the name replies and /v1/models give the model */
    int n_ctx;             /* positions per sequence: prompt + completion */
    int n_streams;         /* sequences generated together; also the largest n */
    int threads;
    int max_tokens;        /* the most a request may ask for, and what it gets by default */
    const char *api_key;   /* NULL: no authentication; else requests need "Bearer KEY" */
    FILE *log;             /* a line per request, or NULL */
} lmz_chat_service_config;

typedef struct lmz_chat_service lmz_chat_service;

/* Creates the context and starts the worker. M and TOK must outlive the service. NULL +
 * lmz_fail. */
lmz_chat_service *lmz_chat_service_create(const lmz_model *m, const lmz_tokenizer *tok,
                                          const lmz_chat_service_config *cfg);
/* The lmz_http_handler: ARG is the service. */
void lmz_chat_service_handle(void *arg, const lmz_http_request *req, lmz_http_response *res);
/* Stops taking work: queued requests are answered 503 and running ones stop at their next
 * token (and are answered 503). Returns at once. */
void lmz_chat_service_shutdown(lmz_chat_service *s);
/* Shuts down, waits for the worker and frees. */
void lmz_chat_service_free(lmz_chat_service *s);

#endif
