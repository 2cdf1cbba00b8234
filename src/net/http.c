/* http.c — one HTTP/1.1 POST over a non-blocking socket under a deadline (http.h). */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../coder/bytebuf.h"
#include "../util/error.h"

int lmz_http_parse_url(const char *url, lmz_http_url *u) {
    memset(u, 0, sizeof *u);
    if (!strncasecmp(url, "https://", 8))
        return lmz_fail("%s: lmz speaks plain HTTP only (no TLS); for an https endpoint run a local proxy that "
                        "forwards http://127.0.0.1:PORT to it, and give lmz that address", url);
    if (strncasecmp(url, "http://", 7)) return lmz_fail("%s: not an http:// URL", url);
    const char *h = url + 7, *path = strchr(h, '/');
    if (!path) path = h + strlen(h);
    const char *host_end, *port = NULL;
    if (*h == '[') { /* [IPv6]:port */
        const char *close = memchr(h, ']', (size_t)(path - h));
        if (!close) return lmz_fail("%s: unterminated [IPv6 address]", url);
        host_end = close;
        h++;
        if (close + 1 < path) {
            if (close[1] != ':') return lmz_fail("%s: expected ':PORT' after the IPv6 address", url);
            port = close + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(path - h));
        host_end = colon ? colon : path;
        if (colon) port = colon + 1;
    }
    if (host_end == h) return lmz_fail("%s: no host", url);
    if ((size_t)(host_end - h) >= sizeof u->host) return lmz_fail("%s: the host name is too long", url);
    memcpy(u->host, h, (size_t)(host_end - h));
    if (port) {
        size_t n = (size_t)(path - port);
        long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (port[i] < '0' || port[i] > '9' || (v = v * 10 + (port[i] - '0')) > 65535) n = 0;
        }
        if (n == 0 || v == 0) return lmz_fail("%s: the port must be a number from 1 to 65535", url);
        snprintf(u->port, sizeof u->port, "%ld", v);
    } else {
        strcpy(u->port, "80");
    }
    u->path = *path ? path : "/";
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Waits until FD is ready for EVENTS or the deadline passes. 1 ready, 0 timed out, -1 error. */
static int wait_for(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - now();
        if (left <= 0) return 0;
        struct pollfd p = {fd, events, 0};
        int ms = left > 1e6 ? 1000000000 : (int)(left * 1000) + 1;
        int r = poll(&p, 1, ms);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return -1;
    }
}

/* Connects to U's host (each address it resolves to, in turn) before the deadline. */
static int connect_to(const lmz_http_url *u, double deadline, const char *where) {
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(u->host, u->port, &hints, &res);
    if (g) return lmz_fail("cannot find %s: %s", u->host, gai_strerror(g));
    int fd = -1, err = 0;
    bool timed_out = false;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            int w = wait_for(fd, POLLOUT, deadline);
            socklen_t len = sizeof err;
            if (w == 0) timed_out = true;
            else if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) r = 0;
            else if (w < 0) err = errno;
        } else if (r != 0) {
            err = errno;
        }
        if (r != 0) {
            close(fd);
            fd = -1;
            if (timed_out) break;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) return fd;
    if (timed_out) return lmz_fail("cannot connect to %s: no answer within the time limit", where);
    return lmz_fail("cannot connect to %s: %s%s", where, strerror(err),
                    err == ECONNREFUSED ? " (is the server running, on that port?)" : "");
}

/* Decodes a chunked body B[0..len) into OUT. 1 when it is complete (the last chunk seen),
 * 0 when more bytes are needed, -1 when it is malformed. */
static int dechunk(const char *b, size_t len, lmz_bytebuf *out) {
    size_t i = 0;
    out->len = 0;
    for (;;) {
        size_t size = 0, digits = 0;
        while (i < len) {
            char c = b[i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) break;
            if (size > ((size_t)1 << 40)) return -1;
            size = size * 16 + (size_t)d;
            digits++;
            i++;
        }
        if (i == len) return 0;
        if (!digits) return -1;
        const char *eol = memchr(b + i, '\n', len - i); /* chunk extensions are ignored */
        if (!eol) return 0;
        i = (size_t)(eol - b) + 1;
        if (size == 0) return 1; /* trailers, if any, are not needed */
        if (len - i < size + 2) return 0;
        if (lmz_bytebuf_append(out, b + i, size)) return -1;
        i += size;
        if (b[i] == '\r') i++;
        if (b[i] != '\n') return -1;
        i++;
    }
}

/* The value of header NAME in the header block H (lines after the status line), or NULL. */
static const char *header_value(const char *h, const char *name) {
    size_t n = strlen(name);
    for (const char *line = strchr(h, '\n'); line; line = strchr(line, '\n')) {
        line++;
        if (!strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ' || *v == '\t') v++;
            return v;
        }
    }
    return NULL;
}

int lmz_http_post_json(const char *url, const char *bearer, const char *body, size_t len, double timeout_s,
                       size_t max_reply, lmz_http_reply *reply) {
    memset(reply, 0, sizeof *reply);
    lmz_http_url u;
    if (lmz_http_parse_url(url, &u)) return -1;
    char where[300];
    snprintf(where, sizeof where, "%s:%s", u.host, u.port);
    double deadline = now() + timeout_s;
    int fd = connect_to(&u, deadline, where);
    if (fd < 0) return -1;

    lmz_bytebuf req = {0}, in = {0}, chunked = {0};
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: lmz\r\nContent-Type: application/json\r\n"
                      "Accept: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n",
                      u.path, u.host, strcmp(u.port, "80") ? ":" : "", strcmp(u.port, "80") ? u.port : "", len);
    int rc = -1;
    if (hn < 0 || (size_t)hn >= sizeof head) {
        lmz_fail("%s: the URL is too long", url);
        goto done;
    }
    if (lmz_bytebuf_append(&req, head, (size_t)hn) ||
        (bearer && (lmz_bytebuf_append(&req, "Authorization: Bearer ", 22) ||
                    lmz_bytebuf_append(&req, bearer, strlen(bearer)) || lmz_bytebuf_append(&req, "\r\n", 2))) ||
        lmz_bytebuf_append(&req, "\r\n", 2) || lmz_bytebuf_append(&req, body, len))
        goto done;

    for (size_t sent = 0; sent < req.len;) {
        int w = wait_for(fd, POLLOUT, deadline);
        if (w == 0) {
            lmz_fail("%s did not take the request within %g s", where, timeout_s);
            goto done;
        }
        ssize_t k = w > 0 ? send(fd, req.data + sent, req.len - sent, MSG_NOSIGNAL) : -1;
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (k <= 0) {
            lmz_fail("sending the request to %s failed: %s", where, strerror(errno));
            goto done;
        }
        sent += (size_t)k;
    }

    /* Read until the server closes, or until the body its headers announce is complete. */
    size_t header_end = 0, content_length = 0;
    bool has_length = false, is_chunked = false, complete = false;
    while (!complete) {
        if (in.len >= max_reply) {
            lmz_fail("the reply from %s exceeds %zu bytes", where, max_reply);
            goto done;
        }
        if (lmz_bytebuf_reserve(&in, 65536 + 1)) goto done;
        int w = wait_for(fd, POLLIN, deadline);
        if (w == 0) {
            lmz_fail("no complete reply from %s within %g s", where, timeout_s);
            goto done;
        }
        size_t room = in.cap - in.len - 1;
        if (room > max_reply - in.len) room = max_reply - in.len;
        ssize_t k = w > 0 ? recv(fd, in.data + in.len, room, 0) : -1;
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (k < 0) {
            lmz_fail("reading the reply from %s failed: %s", where, strerror(errno));
            goto done;
        }
        in.len += (size_t)k;
        in.data[in.len] = 0;
        if (!header_end) {
            const char *e = strstr((const char *)in.data, "\r\n\r\n");
            if (e) {
                header_end = (size_t)(e - (const char *)in.data) + 4;
                in.data[header_end - 2] = 0; /* the header block as a string, ended by its last line's CRLF */
                const char *te = header_value((const char *)in.data, "Transfer-Encoding");
                const char *cl = header_value((const char *)in.data, "Content-Length");
                is_chunked = te && !strncasecmp(te, "chunked", 7);
                if (cl && !is_chunked) {
                    char *end;
                    content_length = strtoull(cl, &end, 10);
                    has_length = end != cl;
                }
            }
        }
        if (header_end && is_chunked) {
            int d = dechunk((const char *)in.data + header_end, in.len - header_end, &chunked);
            if (d < 0) {
                lmz_fail("the reply from %s has a malformed chunked body", where);
                goto done;
            }
            complete = d == 1;
        } else if (header_end && has_length) {
            complete = in.len - header_end >= content_length;
        }
        if (k == 0) {
            if (!header_end) {
                lmz_fail(in.len ? "the reply from %s ended inside its headers" : "%s closed the connection without a reply",
                         where);
                goto done;
            }
            if (is_chunked && !complete) {
                lmz_fail("the reply from %s ended inside its chunked body", where);
                goto done;
            }
            if (has_length && !complete) {
                lmz_fail("the reply from %s ended after %zu of its %zu body bytes", where, in.len - header_end,
                         content_length);
                goto done;
            }
            complete = true;
        }
    }
    int major, minor, status;
    if (sscanf((const char *)in.data, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 || status > 999) {
        lmz_fail("the reply from %s is not HTTP", where);
        goto done;
    }
    const uint8_t *b = is_chunked ? chunked.data : in.data + header_end;
    size_t blen = is_chunked ? chunked.len : has_length ? content_length : in.len - header_end;
    reply->body = malloc(blen + 1);
    if (!reply->body) {
        lmz_fail("out of memory");
        goto done;
    }
    if (blen) memcpy(reply->body, b, blen);
    reply->body[blen] = 0;
    reply->len = blen;
    reply->status = status;
    rc = 0;
done:
    close(fd);
    lmz_bytebuf_free(&req);
    lmz_bytebuf_free(&in);
    lmz_bytebuf_free(&chunked);
    return rc;
}

void lmz_http_reply_free(lmz_http_reply *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}
