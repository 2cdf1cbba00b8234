/* server.c — the accept loop, one thread per connection, bounded request parsing and
 * replies under deadlines (server.h). */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../coder/bytebuf.h"
#include "../util/error.h"
#include "../util/json.h"

struct lmz_http_server {
    lmz_http_server_config cfg;
    int listen_fd;
    int port;
    int stop_pipe[2]; /* written once by stop; the read end stays readable from then on */
    atomic_int stopping;
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when a connection thread ends */
    int n_conns;
};

typedef struct {
    lmz_http_server *s;
    int fd;
} conn_arg;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

const char *lmz_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void lmz_http_error(lmz_http_response *res, int status, const char *type, const char *param, const char *code,
                    const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lmz_bytebuf b = {0};
    int bad = lmz_bytebuf_append(&b, "{\"error\": {\"message\": ", 22) || lmz_json_write_string(&b, msg, strlen(msg)) ||
              lmz_bytebuf_append(&b, ", \"type\": ", 10) || lmz_json_write_string(&b, type, strlen(type)) ||
              lmz_bytebuf_append(&b, ", \"param\": ", 11) ||
              (param ? lmz_json_write_string(&b, param, strlen(param)) : lmz_bytebuf_append(&b, "null", 4)) ||
              lmz_bytebuf_append(&b, ", \"code\": ", 10) ||
              (code ? lmz_json_write_string(&b, code, strlen(code)) : lmz_bytebuf_append(&b, "null", 4)) ||
              lmz_bytebuf_append(&b, "}}\n", 3);
    free(res->body);
    res->status = status;
    res->body = bad ? NULL : (char *)b.data;
    res->len = bad ? 0 : b.len;
    if (bad) lmz_bytebuf_free(&b);
}

/* Waits until FD is ready for EVENTS, the deadline passes or the server stops (when
 * WATCH_STOP). 1 ready, 0 timed out, -1 error, -2 stopping. */
static int wait_for(lmz_http_server *s, int fd, short events, double deadline, bool watch_stop) {
    for (;;) {
        double left = deadline - now();
        if (left <= 0) return 0;
        struct pollfd p[2] = {{fd, events, 0}, {s->stop_pipe[0], POLLIN, 0}};
        int ms = left > 1e6 ? 1000000000 : (int)(left * 1000) + 1;
        int r = poll(p, watch_stop ? 2 : 1, ms);
        if (r < 0 && errno != EINTR) return -1;
        if (r <= 0) continue;
        if (watch_stop && p[1].revents) return -2;
        if (p[0].revents) return 1;
    }
}

/* Sends DATA[0..len) before the deadline. 0, or -1 (time out, the client gone). */
static int send_all(lmz_http_server *s, int fd, const void *data, size_t len, double deadline) {
    const char *p = data;
    while (len) {
        ssize_t k = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k;
            len -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (wait_for(s, fd, POLLOUT, deadline, false) != 1) return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static void send_reply(lmz_http_server *s, int fd, const lmz_http_response *res, bool head_only) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
                     "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                     res->status, lmz_http_reason(res->status),
                     res->content_type ? res->content_type : "application/json", res->len,
                     res->allow ? "Allow: " : "", res->allow ? res->allow : "", res->allow ? "\r\n" : "",
                     res->status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head) return;
    double deadline = now() + s->cfg.reply_timeout_s;
    /* one buffer, so that a small reply leaves in one segment */
    lmz_bytebuf b = {0};
    size_t body = head_only ? 0 : res->len;
    if (lmz_bytebuf_append(&b, head, (size_t)n) || (body && lmz_bytebuf_append(&b, res->body, body))) {
        lmz_bytebuf_free(&b);
        return;
    }
    send_all(s, fd, b.data, b.len, deadline);
    lmz_bytebuf_free(&b);
}

/* After a reply sent before the request was read to its end: half-close, then read and drop
 * what the client still sends for a short while, so that closing with unread bytes does
 * not reset the connection before the client has read the reply. */
static void linger_close(lmz_http_server *s, int fd, bool unread) {
    shutdown(fd, SHUT_WR);
    if (unread) {
        double deadline = now() + 2.0;
        char sink[16384];
        size_t dropped = 0;
        while (dropped < ((size_t)4 << 20) && wait_for(s, fd, POLLIN, deadline, true) == 1) {
            ssize_t k = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) break;
            if (k > 0) dropped += (size_t)k;
        }
    }
    close(fd);
}

static bool is_token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

/* The parsed request head: pointers into the header buffer (NUL-terminated in place). */
typedef struct {
    char *method, *target;
    const char *authorization, *content_type;
    long long content_length; /* -1: none */
    bool expect_continue, chunked, other_coding, http10;
} head_info;

/* Parses the request line and headers in H (NUL-terminated, lines ending in LF or CRLF,
 * without the blank line). 0, or the status to answer with and a message in WHY. */
static int parse_head(char *h, int max_lines, head_info *hi, char *why, size_t cap) {
    memset(hi, 0, sizeof *hi);
    hi->content_length = -1;
    char *line = h, *eol = strchr(line, '\n');
    if (eol) *eol = 0;
    if (eol && eol > line && eol[-1] == '\r') eol[-1] = 0;
    /* request line: METHOD SP TARGET SP HTTP/1.x */
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || sp1 == line || sp2 == sp1 + 1) {
        snprintf(why, cap, "malformed request line");
        return 400;
    }
    *sp1 = *sp2 = 0;
    hi->method = line;
    hi->target = sp1 + 1;
    for (const char *c = hi->method; *c; c++)
        if (!is_token_char(*c)) {
            snprintf(why, cap, "malformed request method");
            return 400;
        }
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/", 5) || !version[5]) {
        snprintf(why, cap, "malformed request line (no HTTP version)");
        return 400;
    }
    if (strcmp(version, "HTTP/1.1") && strcmp(version, "HTTP/1.0")) {
        snprintf(why, cap, "this server speaks HTTP/1.0 and HTTP/1.1, not %.20s", version + 5);
        return 505;
    }
    hi->http10 = !strcmp(version, "HTTP/1.0");
    if (hi->target[0] != '/') {
        snprintf(why, cap, "the request target must be a path starting with '/'");
        return 400;
    }
    for (const unsigned char *c = (const unsigned char *)hi->target; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f) {
            snprintf(why, cap, "the request target holds a byte that is not allowed there");
            return 400;
        }
    int lines = 0;
    while (eol) {
        line = eol + 1;
        eol = strchr(line, '\n');
        if (eol) *eol = 0;
        if (eol && eol > line && eol[-1] == '\r') eol[-1] = 0;
        if (!*line) continue;
        if (++lines > max_lines) {
            snprintf(why, cap, "more than %d header lines", max_lines);
            return 431;
        }
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            snprintf(why, cap, "malformed header line");
            return 400;
        }
        for (const char *c = line; c < colon; c++)
            if (!is_token_char(*c)) {
                snprintf(why, cap, "malformed header name");
                return 400;
            }
        *colon = 0;
        char *v = colon + 1, *end = v + strlen(v);
        while (*v == ' ' || *v == '\t') v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
        if (!strcasecmp(line, "Content-Length")) {
            long long cl = 0;
            int digits = 0;
            for (const char *c = v; *c; c++, digits++)
                if (*c < '0' || *c > '9' || digits >= 18) {
                    snprintf(why, cap, "Content-Length must be a decimal number of bytes");
                    return 400;
                } else cl = cl * 10 + (*c - '0');
            if (!digits || (hi->content_length >= 0 && hi->content_length != cl)) {
                snprintf(why, cap, digits ? "conflicting Content-Length headers" : "empty Content-Length");
                return 400;
            }
            hi->content_length = cl;
        } else if (!strcasecmp(line, "Transfer-Encoding")) {
            if (strcasestr(v, "chunked")) hi->chunked = true;
            else hi->other_coding = true;
        } else if (!strcasecmp(line, "Expect")) {
            if (strcasecmp(v, "100-continue")) {
                snprintf(why, cap, "only 'Expect: 100-continue' is understood");
                return 417;
            }
            hi->expect_continue = true;
        } else if (!strcasecmp(line, "Authorization")) {
            hi->authorization = v;
        } else if (!strcasecmp(line, "Content-Type")) {
            hi->content_type = v;
        }
    }
    if (hi->chunked) {
        snprintf(why, cap, "chunked request bodies are not accepted: send the body with a Content-Length");
        return 411;
    }
    if (hi->other_coding) {
        snprintf(why, cap, "request bodies with a transfer coding are not accepted");
        return 501;
    }
    return 0;
}

/* The end of the header block in B[0..len): the offset just after the blank line (and in
 * *HEAD_LEN the offset where the blank line starts), or 0 when it is not complete. */
static size_t header_end(const char *b, size_t len, size_t *head_len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (b[i] != '\n') continue;
        *head_len = i + 1;
        if (b[i + 1] == '\n') return i + 2;
        if (b[i + 1] == '\r' && i + 2 < len && b[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static const char *error_type(int status) {
    return status == 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error";
}

static void serve_conn(lmz_http_server *s, int fd) {
    const lmz_http_server_config *cfg = &s->cfg;
    double deadline = now() + cfg->request_timeout_s;
    lmz_http_response res = {0};
    char why[256] = "";
    bool unread = true; /* the request may have bytes we did not read */
    char *buf = malloc(cfg->max_header + 1);
    char *body = NULL;
    if (!buf) {
        lmz_http_error(&res, 503, "server_error", NULL, NULL, "out of memory");
        goto reply;
    }
    /* the head */
    size_t got = 0, hend = 0, head_len = 0;
    while (!(hend = header_end(buf, got, &head_len))) {
        if (got == cfg->max_header) {
            lmz_http_error(&res, 431, "invalid_request_error", NULL, NULL,
                           "the request line and headers exceed %zu bytes", cfg->max_header);
            goto reply;
        }
        int w = wait_for(s, fd, POLLIN, deadline, true);
        if (w == 0) {
            lmz_http_error(&res, 408, "invalid_request_error", NULL, NULL,
                           "the request did not arrive within %g s", cfg->request_timeout_s);
            goto reply;
        }
        if (w < 0) goto drop;
        ssize_t k = recv(fd, buf + got, cfg->max_header - got, MSG_DONTWAIT);
        if (k == 0) goto drop; /* the client left */
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            goto drop;
        }
        got += (size_t)k;
    }
    buf[head_len] = 0; /* the head as a string: its lines, each ended by its LF */
    head_info hi;
    int status = parse_head(buf, cfg->max_header_lines, &hi, why, sizeof why);
    if (status) {
        lmz_http_error(&res, status, error_type(status), NULL, NULL, "%s", why);
        goto reply;
    }
    bool wants_body = !strcmp(hi.method, "POST") || !strcmp(hi.method, "PUT") || !strcmp(hi.method, "PATCH");
    if (hi.content_length < 0 && wants_body) {
        lmz_http_error(&res, 411, "invalid_request_error", NULL, NULL, "a %s request needs a Content-Length header",
                       hi.method);
        goto reply;
    }
    size_t cl = hi.content_length > 0 ? (size_t)hi.content_length : 0;
    if (hi.content_length > (long long)cfg->max_body) {
        lmz_http_error(&res, 413, "invalid_request_error", NULL, "request_too_large",
                       "the request body of %lld bytes exceeds this server's limit of %zu bytes (--max-body)",
                       hi.content_length, cfg->max_body);
        goto reply;
    }
    /* the body: what came with the head, then the rest */
    body = malloc(cl + 1);
    if (!body) {
        lmz_http_error(&res, 503, "server_error", NULL, NULL, "out of memory");
        goto reply;
    }
    size_t have = got - hend < cl ? got - hend : cl;
    if (have) memcpy(body, buf + hend, have);
    if (hi.expect_continue && have < cl && !hi.http10) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send_all(s, fd, cont, sizeof cont - 1, deadline)) goto drop;
    }
    while (have < cl) {
        int w = wait_for(s, fd, POLLIN, deadline, true);
        if (w == 0) {
            lmz_http_error(&res, 408, "invalid_request_error", NULL, NULL,
                           "the request body did not arrive within %g s (%zu of %zu bytes came)",
                           cfg->request_timeout_s, have, cl);
            goto reply;
        }
        if (w < 0) goto drop;
        ssize_t k = recv(fd, body + have, cl - have, MSG_DONTWAIT);
        if (k == 0) goto drop;
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            goto drop;
        }
        have += (size_t)k;
    }
    body[cl] = 0;
    unread = got - hend > cl;
    char *q = strchr(hi.target, '?');
    if (q) *q++ = 0;
    lmz_http_request req = {hi.method, hi.target, q ? q : "", hi.authorization, hi.content_type, body, cl, fd};
    cfg->handler(cfg->arg, &req, &res);
    if (!res.status || (!res.body && res.status != 204))
        lmz_http_error(&res, 500, "server_error", NULL, NULL, "the request could not be answered");
    send_reply(s, fd, &res, !strcmp(hi.method, "HEAD"));
    linger_close(s, fd, unread);
    goto done;
reply:
    if (cfg->log && res.body) {
        fprintf(cfg->log, "lmz serve: refused a request: %d %s: %.*s", res.status, lmz_http_reason(res.status),
                (int)res.len, res.body);
        fflush(cfg->log);
    }
    send_reply(s, fd, &res, false);
    linger_close(s, fd, unread);
    goto done;
drop:
    close(fd);
done:
    free(res.body);
    free(body);
    free(buf);
}

static void *conn_main(void *p) {
    conn_arg a = *(conn_arg *)p;
    free(p);
    serve_conn(a.s, a.fd);
    pthread_mutex_lock(&a.s->mu);
    a.s->n_conns--;
    pthread_cond_broadcast(&a.s->idle);
    pthread_mutex_unlock(&a.s->mu);
    return NULL;
}

lmz_http_server *lmz_http_server_create(const lmz_http_server_config *cfg) {
    lmz_http_server *s = lmz_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    s->listen_fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK)) {
        lmz_fail("pipe: %s", strerror(errno));
        goto fail;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int g = getaddrinfo(cfg->host, port, &hints, &res);
    if (g) {
        lmz_fail("cannot use the address %s: %s", cfg->host, gai_strerror(g));
        goto fail;
    }
    int err = 0;
    for (struct addrinfo *a = res; a && s->listen_fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) || listen(fd, 128)) {
            err = errno;
            close(fd);
            continue;
        }
        s->listen_fd = fd;
    }
    freeaddrinfo(res);
    if (s->listen_fd < 0) {
        lmz_fail("cannot listen on %s port %d: %s", cfg->host, cfg->port, strerror(err));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &len)) {
        lmz_fail("getsockname: %s", strerror(errno));
        goto fail;
    }
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return s;
fail:
    lmz_http_server_free(s);
    return NULL;
}

int lmz_http_server_port(const lmz_http_server *s) { return s->port; }

void lmz_http_server_stop(lmz_http_server *s) {
    atomic_store(&s->stopping, 1);
    char c = 1;
    if (write(s->stop_pipe[1], &c, 1) < 0) { /* full (already stopping) or closed: nothing to do */
    }
}

bool lmz_http_server_stopping(const lmz_http_server *s) { return atomic_load(&s->stopping) != 0; }

/* Answers a connection over the bound with 503 (one try, no waiting) and closes it. */
static void refuse(int fd, const char *why) {
    lmz_http_response res = {0};
    lmz_http_error(&res, 503, "server_error", NULL, NULL, "%s", why);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\nRetry-After: 1\r\n\r\n",
                     res.len);
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n && res.body)
        (void)!send(fd, res.body, res.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    free(res.body);
    shutdown(fd, SHUT_WR);
    close(fd);
}

int lmz_http_server_run(lmz_http_server *s) {
    int rc = 0;
    while (!lmz_http_server_stopping(s)) {
        struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        int r = poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR) continue;
            rc = lmz_fail("poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents) break;
        if (!p[0].revents) continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec t = {0, 100 * 1000 * 1000}; /* out of descriptors: let some close */
                nanosleep(&t, NULL);
            }
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&s->mu);
        bool full = s->n_conns >= s->cfg.max_conns;
        if (!full) s->n_conns++;
        pthread_mutex_unlock(&s->mu);
        if (full) {
            refuse(fd, "too many connections; try again");
            continue;
        }
        conn_arg *a = malloc(sizeof *a);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, (size_t)1 << 20);
        bool started = false;
        if (a) {
            a->s = s;
            a->fd = fd;
            started = pthread_create(&t, &attr, conn_main, a) == 0;
        }
        pthread_attr_destroy(&attr);
        if (!started) {
            free(a);
            pthread_mutex_lock(&s->mu);
            s->n_conns--;
            pthread_mutex_unlock(&s->mu);
            refuse(fd, "the server cannot take this connection now; try again");
        }
    }
    /* stop: no new connections; wait for the connection threads (those reading a request
     * see the stop pipe and end; those waiting on their handler end when it returns) */
    lmz_http_server_stop(s);
    close(s->listen_fd);
    s->listen_fd = -1;
    if (s->cfg.on_stop) s->cfg.on_stop(s->cfg.arg);
    pthread_mutex_lock(&s->mu);
    while (s->n_conns > 0) pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void lmz_http_server_free(lmz_http_server *s) {
    if (!s) return;
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}

bool lmz_http_client_gone(const lmz_http_request *req) {
    struct pollfd p = {req->fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    char c;
    ssize_t k = recv(req->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}
