/* server.h — a small HTTP/1.1 server for JSON APIs over plain TCP: what `lmz serve` needs
 * to answer OpenAI-compatible requests (the client side is http.h).
 *
 * One thread accepts; each connection gets its own thread, up to a bound (beyond it a
 * connection is answered 503 at once and closed). A connection carries one request
 * (every reply says "Connection: close"). The request is read under hard limits: the
 * header block's size and line count, a body only with Content-Length and at most
 * max_body bytes (a larger declared length is answered 413 without reading the body;
 * chunked request bodies are answered 411), and one deadline for the whole request (408).
 * "Expect: 100-continue" is honoured. Replies are written with MSG_NOSIGNAL under a
 * deadline, so a client that leaves cannot stop the process or hold a thread for long.
 * Errors found by the server itself get a JSON body {"error": {"message", "type"}}, the
 * shape the handler is expected to use too (lmz_http_error). */
#ifndef LMZ_HTTP_SERVER_H
#define LMZ_HTTP_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct lmz_http_server lmz_http_server;

typedef struct {
    const char *method;        /* as sent, e.g. "POST" */
    const char *path;          /* the request target up to '?' */
    const char *query;         /* after '?', or "" */
    const char *authorization; /* the Authorization header's value, or NULL */
    const char *content_type;  /* or NULL */
    const char *body;          /* Content-Length bytes, NUL-terminated ("" without a body) */
    size_t body_len;
    int fd;                    /* the connection, for lmz_http_client_gone */
} lmz_http_request;

typedef struct {
    int status;
    const char *content_type; /* NULL: application/json */
    const char *allow;        /* an Allow header (for 405), or NULL */
    char *body;               /* malloc'd; the server frees it */
    size_t len;
} lmz_http_response;

/* Handles one request, filling RES (status 0 or no body: 500). Runs on the connection's
 * thread, so it may block (e.g. waiting for a model); requests run concurrently. */
typedef void (*lmz_http_handler)(void *arg, const lmz_http_request *req, lmz_http_response *res);

typedef struct {
    const char *host;         /* address to bind, e.g. "127.0.0.1", "::1", "0.0.0.0" */
    int port;                 /* 0: any free port (lmz_http_server_port says which) */
    int max_conns;            /* connections served at once */
    size_t max_header;        /* bytes of request line + headers */
    int max_header_lines;
    size_t max_body;          /* bytes */
    double request_timeout_s; /* to receive the whole request */
    double reply_timeout_s;   /* to send the reply */
    lmz_http_handler handler;
    void *arg;
    /* NULL, or called by run once it has stopped accepting, before it waits for the
     * connections: where the handler's long work is told to end. */
    void (*on_stop)(void *arg);
    FILE *log; /* a line per request the server refuses by itself (408, 413, ...), or NULL */
} lmz_http_server_config;

/* Binds and listens (the port is known when this returns). NULL + lmz_fail. */
lmz_http_server *lmz_http_server_create(const lmz_http_server_config *cfg);
int lmz_http_server_port(const lmz_http_server *s);
/* Accepts and serves until lmz_http_server_stop; then stops accepting, wakes the
 * connections still reading their requests (they end without a reply) and returns once
 * every connection thread has finished. 0, or -1 + lmz_fail. */
int lmz_http_server_run(lmz_http_server *s);
/* Asks run to return. Async-signal-safe (it writes one byte to a pipe). */
void lmz_http_server_stop(lmz_http_server *s);
/* Whether stop was asked for. */
bool lmz_http_server_stopping(const lmz_http_server *s);
void lmz_http_server_free(lmz_http_server *s);

/* Whether the client of REQ has closed its side of the connection (or reset it): checked
 * without blocking, by peeking at the socket. */
bool lmz_http_client_gone(const lmz_http_request *req);

/* Fills RES with STATUS and the body {"error": {"message": MESSAGE, "type": TYPE, "param":
 * PARAM or null, "code": CODE or null}}. */
void lmz_http_error(lmz_http_response *res, int status, const char *type, const char *param, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The reason phrase of STATUS ("Not Found"), "Unknown" for codes it does not know. */
const char *lmz_http_reason(int status);

#endif
