/* http.h — a minimal HTTP/1.1 client for one POST with a JSON body, over a plain TCP
 * socket: what lmz needs to reach an OpenAI-compatible /v1/chat/completions endpoint.
 *
 * No TLS: lmz has no dependencies beyond libc, so https:// URLs are refused with a message
 * suggesting a local proxy. The whole exchange (name lookup aside) runs under one deadline,
 * and the reply is bounded in size, so a stalled or hostile server cannot hang lmz or make
 * it grow without limit. */
#ifndef LMZ_HTTP_H
#define LMZ_HTTP_H

#include <stddef.h>

typedef struct {
    char host[256];
    char port[8];
    const char *path; /* inside the URL given to lmz_http_parse_url, from its '/' */
} lmz_http_url;

/* Splits "http://HOST[:PORT]/PATH" (PORT default 80; HOST may be [IPv6]). 0, or -1 +
 * lmz_fail (https, another scheme, no host, a bad port). */
int lmz_http_parse_url(const char *url, lmz_http_url *u);

typedef struct {
    int status;  /* e.g. 200 */
    char *body;  /* malloc'd and NUL-terminated, transfer coding removed */
    size_t len;
} lmz_http_reply;

/* POSTs BODY[0..len) as application/json to URL, with "Authorization: Bearer BEARER" when
 * BEARER is not NULL, and reads the reply: within TIMEOUT_S seconds in all, at most
 * MAX_REPLY bytes. Any status is a reply (the caller judges it). 0, or -1 + lmz_fail: the
 * URL, name lookup, connection refused, time out, a reply over the limit, or not HTTP. */
int lmz_http_post_json(const char *url, const char *bearer, const char *body, size_t len, double timeout_s,
                       size_t max_reply, lmz_http_reply *reply);
void lmz_http_reply_free(lmz_http_reply *r);

#endif
