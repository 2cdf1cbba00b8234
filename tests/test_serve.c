/* test_serve.c — `lmz serve` run as a child process on a free loopback port with SmolLM2:
 * replies equal lmz_generate's for the same conversation and parameters (also n > 1,
 * sampled, stop strings); concurrent clients get what they get one at a time; malformed,
 * oversized, unauthorized and misrouted requests get their HTTP error with a JSON body
 * while the server keeps serving; clients that stall or leave at any point (mid-head,
 * mid-body, mid-generation) neither stop nor stall it; too many connections get 503;
 * lmz --lossy --rewriter uses it; SIGTERM ends it cleanly. Every server is killed at the
 * end, also when a check fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../src/generate/chat.h"
#include "../src/generate/generate.h"
#include "../src/net/http.h"
#include "../src/util/error.h"
#include "../src/util/json.h"
#include "model_fixture.h"
#include "test.h"
#include "test_files.h"

/* ---------------- the server process ---------------- */

typedef struct {
    pid_t pid;
    int port;
    char log[TEST_PATH_MAX + 32]; /* its standard error */
    char url[128];
} serve_proc;

#define MAX_LIVE 8
static pid_t live[MAX_LIVE];

static void kill_live(void) {
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char dir[TEST_PATH_MAX];
static size_t log_len;

/* Starts `ENV ./lmz serve -m SMOLLM2 --port 0 ARGS` and reads the port from its first line. */
static bool serve_start(serve_proc *s, const char *env, const char *args) {
    static bool registered;
    if (!registered) atexit(kill_live), registered = true;
    memset(s, 0, sizeof *s);
    static int n_started;
    snprintf(s->log, sizeof s->log, "%s/serve-%d.log", dir, n_started++);
    char cmd[TEST_PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "%s exec ./lmz serve -m '%s' --port 0 %s 2>'%s'", env, test_model_path("smollm2"), args,
             s->log);
    int fds[2];
    if (pipe(fds)) return false;
    s->pid = fork();
    if (s->pid < 0) return false;
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the tests, even if they crash */
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] <= 0) {
            live[i] = s->pid;
            break;
        }
    close(fds[1]);
    char line[256] = {0};
    size_t n = 0;
    double deadline = now_s() + 60;
    while (n + 1 < sizeof line && now_s() < deadline) {
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        ssize_t k = read(fds[0], line + n, 1);
        if (k <= 0 || line[n] == '\n') break;
        n++;
    }
    close(fds[0]);
    const char *at = strstr(line, "lmz serve: listening on http://127.0.0.1:");
    if (!at) {
        printf("    lmz serve printed '%s'\n", line);
        return false;
    }
    s->port = atoi(at + strlen("lmz serve: listening on http://127.0.0.1:"));
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/v1/chat/completions", s->port);
    return s->port > 0 && strstr(line, "/v1/chat/completions\n");
}

/* SIGTERM, then waits (SIGKILL after 20 s). The exit status, or -1 when it did not exit
 * by itself. */
static int serve_stop(serve_proc *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int status = 0, rc = -1;
    double deadline = now_s() + 20;
    for (;;) {
        pid_t w = waitpid(s->pid, &status, WNOHANG);
        if (w == s->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (now_s() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            break;
        }
        usleep(20000);
    }
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == s->pid) live[i] = 0;
    s->pid = 0;
    return rc;
}

/* ---------------- clients ---------------- */

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_str(int fd, const char *s, size_t len) {
    while (len) {
        ssize_t k = send(fd, s, len, MSG_NOSIGNAL);
        if (k <= 0) return false;
        s += k;
        len -= (size_t)k;
    }
    return true;
}

/* Reads the reply on FD until the server closes it: the status (or -1), the body in BODY. */
static int read_reply(int fd, char *body, size_t cap) {
    char *buf = malloc(1 << 20);
    size_t n = 0;
    ssize_t k;
    while (buf && n < (1 << 20) - 1 && (k = recv(fd, buf + n, (1 << 20) - 1 - n, 0)) > 0) n += (size_t)k;
    int status = -1;
    body[0] = 0;
    if (buf) {
        buf[n] = 0;
        if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) status = -1;
        const char *b = strstr(buf, "\r\n\r\n");
        snprintf(body, cap, "%s", b ? b + 4 : "");
    }
    free(buf);
    return status;
}

/* Sends the raw request REQ and reads the reply. */
static int raw(int port, const char *req, size_t len, char *body, size_t cap) {
    int fd = connect_to(port);
    if (fd < 0) return -1;
    int status = send_str(fd, req, len) ? read_reply(fd, body, cap) : -1;
    close(fd);
    return status;
}

static int raw_post(int port, const char *path, const char *json, char *body, size_t cap) {
    size_t need = strlen(json) + 256;
    char *req = malloc(need);
    int n = snprintf(req, need, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, strlen(json), json);
    int status = raw(port, req, (size_t)n, body, cap);
    free(req);
    return status;
}

/* POSTs JSON through lmz's own client; the status, the body in *REPLY (free it). */
static int post(const serve_proc *s, const char *bearer, const char *json, char **reply) {
    lmz_http_reply r;
    *reply = NULL;
    if (lmz_http_post_json(s->url, bearer, json, strlen(json), 120, 1 << 20, &r)) {
        printf("    POST failed: %s\n", lmz_last_error());
        return -1;
    }
    *reply = r.body;
    return r.status;
}

/* The contents of choices[*] in a completion reply, joined by '|'; NULL if not a well-formed
 * completion (every field checked). */
static char *choices_of(const char *body, int *prompt_tokens, int *completion_tokens) {
    lmz_json *j = body ? lmz_json_parse(body, strlen(body)) : NULL;
    const lmz_json *id = lmz_json_get(j, "id"), *obj = lmz_json_get(j, "object"), *model = lmz_json_get(j, "model"),
                   *created = lmz_json_get(j, "created"), *choices = lmz_json_get(j, "choices"),
                   *usage = lmz_json_get(j, "usage");
    char *all = NULL;
    if (!id || id->type != LMZ_JSON_STRING || strncmp(id->str, "chatcmpl-", 9) || !obj ||
        strcmp(obj->str ? obj->str : "", "chat.completion") || !model || model->type != LMZ_JSON_STRING || !created ||
        created->type != LMZ_JSON_NUMBER || !choices || choices->type != LMZ_JSON_ARRAY || !usage)
        goto done;
    const lmz_json *pt = lmz_json_get(usage, "prompt_tokens"), *ct = lmz_json_get(usage, "completion_tokens"),
                   *tt = lmz_json_get(usage, "total_tokens");
    if (!pt || !ct || !tt || pt->type != LMZ_JSON_NUMBER || atoi(pt->str) + atoi(ct->str) != atoi(tt->str)) goto done;
    *prompt_tokens = atoi(pt->str);
    *completion_tokens = atoi(ct->str);
    size_t total = 1;
    for (const lmz_json *c = choices->child; c; c = c->next) {
        const lmz_json *content = lmz_json_get(lmz_json_get(c, "message"), "content");
        if (!content || content->type != LMZ_JSON_STRING) goto done;
        total += content->len + 1;
    }
    all = calloc(total, 1);
    int i = 0;
    for (const lmz_json *c = choices->child; c; c = c->next, i++) {
        const lmz_json *m = lmz_json_get(c, "message"), *content = lmz_json_get(m, "content"),
                       *role = lmz_json_get(m, "role"), *index = lmz_json_get(c, "index"),
                       *finish = lmz_json_get(c, "finish_reason");
        if (!role || strcmp(role->str ? role->str : "", "assistant") || !index || atoi(index->str) != i || !finish ||
            (strcmp(finish->str ? finish->str : "", "stop") && strcmp(finish->str ? finish->str : "", "length"))) {
            free(all);
            all = NULL;
            goto done;
        }
        strcat(all, content->str);
        strcat(all, "|");
    }
done:
    lmz_json_free(j);
    return all;
}

/* The error reply's message, when BODY is {"error": {"message": ..., "type": ...}}. */
static bool is_error_body(const char *body, const char *needle) {
    lmz_json *j = lmz_json_parse(body, strlen(body));
    const lmz_json *e = lmz_json_get(j, "error"), *m = lmz_json_get(e, "message"), *t = lmz_json_get(e, "type");
    bool ok = m && m->type == LMZ_JSON_STRING && t && t->type == LMZ_JSON_STRING && (!needle || strstr(m->str, needle));
    if (!ok) printf("    error body: %s\n", body);
    lmz_json_free(j);
    return ok;
}

/* ---------------- the reference: lmz_generate in this process ---------------- */

/* What lmz generate --chat does: the user message in the chat template, N copies generated
 * together with GP; the texts joined by '|'. *N_PROMPT gets the prompt's token count. */
static char *reference(const char *system, const char *user, int n, const lmz_gen_params *gp, size_t *n_prompt) {
    lmz_model *m = test_model("smollm2");
    lmz_tokenizer *tok = test_tokenizer("smollm2");
    if (!m || !tok) return NULL;
    lmz_chat_message msgs[2];
    int k = 0;
    if (system) msgs[k++] = (lmz_chat_message){"system", system};
    msgs[k++] = (lmz_chat_message){"user", user};
    char *text = lmz_chat_render(m->file, msgs, k);
    int32_t *ids = NULL;
    size_t len = 0;
    if (!text || lmz_tokenize(tok, text, strlen(text), true, true, &ids, &len)) return NULL;
    free(text);
    const int32_t *prompts[8];
    size_t lens[8];
    lmz_gen_output out[8];
    for (int i = 0; i < n; i++) prompts[i] = ids, lens[i] = len;
    lmz_ctx *c = lmz_ctx_create(m, 512, n, 2);
    char *all = NULL;
    if (c && !lmz_generate(c, tok, prompts, lens, n, gp, out)) {
        size_t total = 1;
        for (int i = 0; i < n; i++) total += out[i].len + 1;
        all = calloc(total, 1);
        for (int i = 0; i < n; i++) {
            strcat(all, out[i].text);
            strcat(all, "|");
            lmz_gen_output_free(&out[i]);
        }
    }
    lmz_ctx_free(c);
    free(ids);
    *n_prompt = len;
    return all;
}

static bool setup(void) {
    if (!test_model_path("smollm2")) {
        test_skip("SmolLM2 is not fetched (make model)");
        return false;
    }
    if (!test_have_lmz()) return false;
    if (!dir[0] && !test_make_dir("serve", dir)) return false;
    return true;
}

/* Each test starts its server(s), runs its checks in a function that may return early on
 * a failed check, and stops them whatever happened. */
#define WITH_SERVER(srv, env, args, checks)                                                   \
    do {                                                                                      \
        serve_proc srv;                                                                       \
        bool _up = serve_start(&srv, env, args);                                              \
        if (_up) checks(&srv);                                                                \
        int _rc = serve_stop(&srv);                                                           \
        if (!_up) {                                                                           \
            char *_log = test_read_file(srv.log, &log_len);                                       \
            CHECKF(false, "lmz serve %s did not start: %s", args, _log ? _log : "");          \
        }                                                                                     \
        CHECKF(test_failed() || _rc == 0, "lmz serve should exit with 0 on SIGTERM, not %d", _rc); \
    } while (0)

/* ---------------- replies ---------------- */

static const char question[] = "What is the capital of France? Answer in one sentence.";

static void check_replies(serve_proc *s) {
    char *reply;
    int pt = 0, ct = 0;
    size_t n_prompt = 0;
    /* greedy, one choice: lmz generate --chat's text */
    lmz_gen_params greedy = {24, {0.0f, 0, 1.0f}, 0, NULL, 0};
    char *ref = reference(NULL, question, 1, &greedy, &n_prompt);
    CHECK(ref);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": \"anything\", \"messages\": [{\"role\": \"user\", \"content\": \"%s\"}], \"temperature\": 0, "
             "\"max_tokens\": 24}", question);
    int status = post(s, NULL, json, &reply);
    char *got = choices_of(reply, &pt, &ct);
    printf("    greedy: %s\n", got ? got : reply ? reply : "(none)");
    CHECKF(status == 200 && got, "status %d: %s", status, reply ? reply : "");
    CHECKF(!strcmp(got, ref), "served '%s', lmz_generate '%s'", got, ref);
    CHECK_EQ_INT(pt, n_prompt);
    CHECK(ct > 0 && ct <= 24);
    free(got);
    free(reply);
    free(ref);

    /* a system message, n = 3 sampled with a seed, top_k/top_p, a stop string: what
     * lmz_generate gives three copies of the prompt with those parameters */
    const char *stops[1] = {"."};
    lmz_gen_params sampled = {20, {0.8f, 40, 0.9f}, 7, stops, 1};
    ref = reference("You are a terse assistant.", "Name three colours.", 3, &sampled, &n_prompt);
    CHECK(ref);
    status = post(s, NULL,
                  "{\"messages\": [{\"role\": \"system\", \"content\": \"You are a terse assistant.\"}, "
                  "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Name three \"}, "
                  "{\"type\": \"text\", \"text\": \"colours.\"}]}], \"n\": 3, \"temperature\": 0.8, \"top_k\": 40, "
                  "\"top_p\": 0.9, \"seed\": 7, \"max_tokens\": 20, \"stop\": \".\", \"stream\": false}",
                  &reply);
    got = choices_of(reply, &pt, &ct);
    printf("    n=3 sampled: %s\n", got ? got : reply ? reply : "(none)");
    CHECKF(status == 200 && got, "status %d: %s", status, reply ? reply : "");
    CHECKF(!strcmp(got, ref), "served '%s', lmz_generate '%s'", got, ref);
    CHECK(strcmp(got, "||||") != 0);
    free(got);
    free(reply);
    free(ref);

    /* GET /v1/models and /health */
    char body[4096];
    CHECK_EQ_INT(raw(s->port, "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 36, body, sizeof body), 200);
    CHECKF(strstr(body, "\"object\": \"list\"") && strstr(body, "SmolLM2-135M-Instruct"), "%s", body);
    CHECK_EQ_INT(raw(s->port, "GET /health HTTP/1.0\r\n\r\n", 24, body, sizeof body), 200);
    CHECKF(strstr(body, "\"ok\""), "%s", body);
}

TEST(serve_replies_equal_lmz_generate) {
    if (!setup()) return;
    WITH_SERVER(srv, "", "-T 2", check_replies);
}

/* ---------------- concurrency ---------------- */

#define N_CLIENTS 4
static const char *const client_json[N_CLIENTS] = {
    "{\"messages\": [{\"role\": \"user\", \"content\": \"Write a haiku about the sea.\"}], \"temperature\": 0, \"max_tokens\": 16}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"What is 12 times 7?\"}], \"temperature\": 0, \"max_tokens\": 12}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"Name a famous painter.\"}], \"n\": 2, \"temperature\": 0.9, "
    "\"seed\": 3, \"max_tokens\": 10}",
    "{\"messages\": [{\"role\": \"user\", \"content\": \"Say hello in Spanish.\"}], \"temperature\": 0, \"max_tokens\": 8, "
    "\"stop\": [\"!\"]}",
};

typedef struct {
    const serve_proc *s;
    int i, status;
    char *text;
} client_job;

static void *client_main(void *p) {
    client_job *c = p;
    char *reply;
    int pt, ct;
    c->status = post(c->s, NULL, client_json[c->i], &reply);
    c->text = choices_of(reply, &pt, &ct);
    free(reply);
    return NULL;
}

static void check_concurrent(serve_proc *s) {
    char *serial[N_CLIENTS] = {0};
    for (int i = 0; i < N_CLIENTS; i++) {
        client_job c = {s, i, 0, NULL};
        client_main(&c);
        serial[i] = c.text;
        printf("    alone %d: %s\n", i, c.text ? c.text : "(none)");
    }
    bool ok = true;
    for (int i = 0; i < N_CLIENTS; i++) ok = ok && serial[i];
    /* twice: two clients at once, then four */
    for (int round = 2; ok && round <= N_CLIENTS; round += 2) {
        pthread_t t[N_CLIENTS];
        client_job c[N_CLIENTS];
        for (int i = 0; i < round; i++) {
            c[i] = (client_job){s, N_CLIENTS - round + i, 0, NULL};
            pthread_create(&t[i], NULL, client_main, &c[i]);
        }
        for (int i = 0; i < round; i++) pthread_join(t[i], NULL);
        for (int i = 0; i < round; i++) {
            bool same = c[i].status == 200 && c[i].text && !strcmp(c[i].text, serial[c[i].i]);
            if (!same) printf("    %d clients, request %d: status %d, '%s' vs alone '%s'\n", round, c[i].i, c[i].status,
                              c[i].text ? c[i].text : "", serial[c[i].i]);
            ok = ok && same;
            free(c[i].text);
        }
    }
    for (int i = 0; i < N_CLIENTS; i++) free(serial[i]);
    CHECKF(ok, "concurrent requests should get what they get alone");
    /* batches did form: some request ran beside another */
    char *log = test_read_file(s->log, &log_len);
    bool batched = log && (strstr(log, "in a batch of 2") || strstr(log, "in a batch of 3") || strstr(log, "in a batch of 4"));
    if (!batched) printf("%s", log ? log : "");
    free(log);
    CHECK(batched);
}

TEST(serve_concurrent_clients_get_their_serial_replies) {
    if (!setup()) return;
    WITH_SERVER(srv, "", "-T 2 --streams 4", check_concurrent);
}

/* ---------------- errors ---------------- */

static bool still_serving(const serve_proc *s) {
    char *reply;
    int pt, ct;
    int status = post(s, NULL, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 3, \"temperature\": 0}",
                      &reply);
    char *got = choices_of(reply, &pt, &ct);
    bool ok = status == 200 && got && ct >= 1 && ct <= 3;
    if (!ok) printf("    the server no longer answers: status %d: %s\n", status, reply ? reply : "");
    free(got);
    free(reply);
    return ok;
}

static void check_errors(serve_proc *s) {
    static const struct {
        const char *path, *json;
        int status;
        const char *needle;
    } posts[] = {
        {"/v1/chat/completions", "{\"messages\": [", 400, "not valid JSON"},
        {"/v1/chat/completions", "", 400, "not valid JSON"},
        {"/v1/chat/completions", "[1, 2]", 400, "must be a JSON object"},
        {"/v1/chat/completions", "{\"max_tokens\": 5}", 400, "'messages' is missing"},
        {"/v1/chat/completions", "{\"messages\": []}", 400, "non-empty array"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", 400, "role"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 400, "content"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 100000}", 400,
         "'max_tokens' must be from 1 to 64"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": \"9\"}", 400,
         "'max_tokens' must be an integer"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": -1}", 400,
         "'temperature'"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 9}", 400, "'n'"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_k\": 40000}", 400,
         "'top_k' must be from 0 to 1000"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_p\": 0}", 400,
         "'top_p' must be above 0"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": true}", 400,
         "streaming is not supported"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": 3}", 400, "'stop'"},
        {"/v1/nowhere", "{}", 404, "no such endpoint"},
        {"/v1/models", "{}", 405, "use GET"},
    };
    char body[8192];
    for (size_t i = 0; i < sizeof posts / sizeof *posts; i++) {
        int status = raw_post(s->port, posts[i].path, posts[i].json, body, sizeof body);
        printf("    POST %s %.40s -> %d\n", posts[i].path, posts[i].json, status);
        CHECKF(status == posts[i].status, "POST %s %s: status %d, not %d: %s", posts[i].path, posts[i].json, status,
               posts[i].status, body);
        CHECK(is_error_body(body, posts[i].needle));
    }
    CHECK(still_serving(s));

    /* a prompt longer than the context (--ctx 96) */
    char json[4096] = "{\"messages\": [{\"role\": \"user\", \"content\": \"";
    for (int i = 0; i < 150; i++) strcat(json, "word ");
    strcat(json, "\"}]}");
    CHECK_EQ_INT(raw_post(s->port, "/v1/chat/completions", json, body, sizeof body), 400);
    CHECK(is_error_body(body, "the context holds 96") && strstr(body, "context_length_exceeded"));

    /* raw requests: method, length, size, syntax */
    static const struct {
        const char *req;
        int status;
        const char *needle;
    } raws[] = {
        {"GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", 405, "use POST"},
        {"PUT /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "use GET"},
        {"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"},
        {"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411, "chunked"},
        {"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "exceeds this server's limit of 65536"},
        {"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400, "conflicting"},
        {"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "Content-Length"},
        {"GARBAGE\r\n\r\n", 400, "malformed request line"},
        {"GET /health HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
        {"GET http://x/health HTTP/1.1\r\n\r\n", 400, "path starting with '/'"},
        {"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed header"},
        {"POST /v1/chat/completions HTTP/1.1\r\nExpect: something\r\nContent-Length: 2\r\n\r\n{}", 417, "100-continue"},
    };
    for (size_t i = 0; i < sizeof raws / sizeof *raws; i++) {
        int status = raw(s->port, raws[i].req, strlen(raws[i].req), body, sizeof body);
        printf("    %.*s -> %d\n", (int)strcspn(raws[i].req, "\r"), raws[i].req, status);
        CHECKF(status == raws[i].status, "%s: status %d, not %d: %s", raws[i].req, status, raws[i].status, body);
        CHECK(is_error_body(body, raws[i].needle));
    }
    CHECK(still_serving(s));

    /* an oversized body actually sent: answered 413 before it is read (the client sees the
     * reply while it is still sending) */
    int fd = connect_to(s->port);
    CHECK(fd >= 0);
    char head[256];
    size_t big = (size_t)8 << 20;
    int hn = snprintf(head, sizeof head, "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", big);
    bool sent = send_str(fd, head, (size_t)hn);
    char *junk = malloc(1 << 16);
    memset(junk, 'x', 1 << 16);
    size_t pushed = 0;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (sent && pushed < big) { /* as a careful client does: stop sending once a reply came */
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) break;
        ssize_t k = send(fd, junk, 1 << 16, MSG_NOSIGNAL);
        if (k <= 0) break;
        pushed += (size_t)k;
    }
    free(junk);
    int status = read_reply(fd, body, sizeof body);
    close(fd);
    printf("    8 MiB body: %d after %zu bytes sent\n", status, pushed);
    CHECKF(pushed < big, "the server read the whole 8 MiB body");
    CHECKF(status == 413 && is_error_body(body, "exceeds"), "status %d", status);
    CHECK(still_serving(s));

    /* a header block over 16 KiB */
    char *huge = malloc(40000);
    strcpy(huge, "GET /health HTTP/1.1\r\nX-Pad: ");
    memset(huge + strlen(huge), 'a', 30000);
    strcpy(huge + 30000, "\r\n\r\n");
    status = raw(s->port, huge, strlen(huge), body, sizeof body);
    free(huge);
    CHECKF(status == 431 && is_error_body(body, "exceed 16384 bytes"), "status %d", status);
    CHECK(still_serving(s));

    /* Expect: 100-continue is answered before the body is sent */
    fd = connect_to(s->port);
    CHECK(fd >= 0);
    const char *ec = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 2}";
    hn = snprintf(head, sizeof head, "POST /v1/chat/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                  strlen(ec));
    send_str(fd, head, (size_t)hn);
    char cont[64] = {0};
    ssize_t k = recv(fd, cont, 25, MSG_WAITALL);
    bool continued = k == 25 && !strncmp(cont, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    send_str(fd, ec, strlen(ec));
    status = read_reply(fd, body, sizeof body);
    close(fd);
    CHECKF(continued && status == 200, "100-continue: '%s', then %d", cont, status);
}

TEST(serve_bad_requests_get_http_errors_and_it_keeps_serving) {
    if (!setup()) return;
    WITH_SERVER(srv, "", "-T 2 --ctx 96 --max-tokens 64 --streams 8 --max-body 65536", check_errors);
}

static void check_auth(serve_proc *s) {
    char *reply;
    const char *json = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": 2}";
    int status = post(s, NULL, json, &reply);
    CHECKF(status == 401 && is_error_body(reply, "Bearer"), "no key: %d", status);
    free(reply);
    status = post(s, "wrong-key", json, &reply);
    CHECKF(status == 401 && strstr(reply, "authentication_error"), "wrong key: %d", status);
    free(reply);
    status = post(s, "sesame-123", json, &reply);
    CHECKF(status == 200, "right key: %d %s", status, reply ? reply : "");
    free(reply);
    char body[1024];
    CHECK_EQ_INT(raw(s->port, "GET /v1/models HTTP/1.1\r\n\r\n", 27, body, sizeof body), 401);
    CHECK_EQ_INT(raw(s->port, "GET /health HTTP/1.1\r\n\r\n", 24, body, sizeof body), 200);
}

TEST(serve_api_key) {
    if (!setup()) return;
    WITH_SERVER(srv, "LMZ_TEST_SERVE_KEY=sesame-123", "-q --api-key-env LMZ_TEST_SERVE_KEY", check_auth);
    char err[1024];
    CHECK(test_run_lmz("", "serve --api-key-env LMZ_NO_SUCH_VARIABLE_SET", dir, err, sizeof err) == 2 &&
          strstr(err, "LMZ_NO_SUCH_VARIABLE_SET"));
    CHECK(test_run_lmz("", "serve --port 70000", dir, err, sizeof err) == 2 && strstr(err, "--port"));
}

/* ---------------- clients that stall or leave ---------------- */

static void check_departures(serve_proc *s) {
    char head[256];
    /* connect and leave; leave inside the head; leave inside the body */
    int fd = connect_to(s->port);
    CHECK(fd >= 0);
    close(fd);
    fd = connect_to(s->port);
    send_str(fd, "POST /v1/chat/comp", 18);
    close(fd);
    fd = connect_to(s->port);
    int hn = snprintf(head, sizeof head, "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"messages\": [");
    send_str(fd, head, (size_t)hn);
    close(fd);
    usleep(200000); /* their threads notice (--max-conns 3 counts them until then) */
    CHECK(still_serving(s));

    /* leave while the reply is generated (a long one): generation stops, nothing breaks */
    const char *longer = "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story about a dragon.\"}], "
                         "\"max_tokens\": 400, \"temperature\": 0}";
    for (int i = 0; i < 2; i++) {
        fd = connect_to(s->port);
        hn = snprintf(head, sizeof head, "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", strlen(longer));
        send_str(fd, head, (size_t)hn);
        send_str(fd, longer, strlen(longer));
        usleep(i ? 50000 : 600000); /* once while generating, once (likely) before */
        close(fd);
    }
    usleep(200000);
    double t0 = now_s();
    CHECK(still_serving(s));
    double waited = now_s() - t0;
    printf("    a reply after two departed 400-token requests took %.2f s\n", waited);
    usleep(300000);
    char *log = test_read_file(s->log, &log_len);
    bool noted = log && (strstr(log, "the client left, so generation stopped") || strstr(log, "the client left before"));
    if (!noted) printf("%s", log ? log : "");
    free(log);
    CHECKF(noted, "the log should say the generation for a departed client stopped");

    /* a stalled client (half a head, then nothing) does not hold up another; it gets 408
     * after --timeout 3 */
    int stalled = connect_to(s->port);
    CHECK(stalled >= 0);
    send_str(stalled, "POST /v1/chat/completions HTTP/1.1\r\nContent-Le", 47);
    t0 = now_s();
    CHECK(still_serving(s));
    printf("    answered beside a stalled client in %.2f s\n", now_s() - t0);
    char body[2048];
    int status = read_reply(stalled, body, sizeof body);
    close(stalled);
    double stall = now_s() - t0;
    CHECKF(status == 408 && is_error_body(body, "did not arrive within 3 s"), "stalled client: %d %s", status, body);
    CHECKF(stall > 1 && stall < 20, "408 after %.1f s", stall);

    /* beyond --max-conns 3 connections at once: 503 at once, and served again once they go */
    usleep(300000);
    int idle[3];
    for (int i = 0; i < 3; i++) idle[i] = connect_to(s->port);
    usleep(200000);
    int extra = connect_to(s->port);
    status = read_reply(extra, body, sizeof body);
    close(extra);
    for (int i = 0; i < 3; i++) close(idle[i]);
    CHECKF(status == 503 && is_error_body(body, "too many connections"), "over the limit: %d %s", status, body);
    usleep(300000);
    CHECK(still_serving(s));
}

TEST(serve_clients_that_stall_or_leave) {
    if (!setup()) return;
    WITH_SERVER(srv, "", "-T 2 --timeout 3 --max-conns 3", check_departures);
}

/* ---------------- lmz --lossy --rewriter URL, and shutdown ---------------- */

static void check_rewriter(serve_proc *s) {
    const char *model = test_model_path("smollm2");
    char in[TEST_PATH_MAX + 32], remote[TEST_PATH_MAX + 32], local[TEST_PATH_MAX + 32], back[TEST_PATH_MAX + 32];
    char args[4 * TEST_PATH_MAX], err[4096];
    snprintf(in, sizeof in, "%s/rewrite-me.txt", dir);
    snprintf(remote, sizeof remote, "%s/remote.lmz", dir);
    snprintf(local, sizeof local, "%s/local.lmz", dir);
    snprintf(back, sizeof back, "%s/back.txt", dir);
    const char *text = "Well, so basically, what happened was that James, he runs 3 sprints, 3 times a week, and each "
                       "sprint is 60 meters, so in total, if you add it all up, he runs 540 meters a week.\n";
    CHECK(test_write_file(in, text, strlen(text)));
    snprintf(args, sizeof args, "--lossy -v --rewriter %s -m '%s' -o '%s' '%s'", s->url, model, remote, in);
    int rc = test_run_lmz("", args, dir, err, sizeof err);
    printf("    %s", err);
    CHECKF(rc == 0, "exit %d: %s", rc, err);
    /* the same archive as with the model as a local rewriter (greedy, one rewrite) */
    snprintf(args, sizeof args, "--lossy --rewriter '%s' -m '%s' -o '%s' '%s'", model, model, local, in);
    rc = test_run_lmz("", args, dir, err, sizeof err);
    CHECKF(rc == 0, "exit %d: %s", rc, err);
    CHECK(test_same_file(remote, local));
    snprintf(args, sizeof args, "-d -m '%s' -o '%s' '%s'", model, back, remote);
    rc = test_run_lmz("", args, dir, err, sizeof err);
    size_t len = 0;
    char *got = test_read_file(back, &len);
    CHECKF(rc == 0 && got && len > 0, "exit %d: %s", rc, err);
    free(got);
    char *log = test_read_file(s->log, &log_len);
    bool served = log && strstr(log, "POST /v1/chat/completions 200");
    free(log);
    CHECK(served);
}

TEST(serve_as_lossy_rewriter) {
    if (!setup()) return;
    WITH_SERVER(srv, "", "-T 2", check_rewriter);
}

static void *slow_client(void *p) {
    client_job *c = p;
    char *reply = NULL;
    c->status = post(c->s, NULL,
                     "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me a long story.\"}], \"max_tokens\": 500}",
                     &reply);
    c->text = reply;
    return NULL;
}

TEST(serve_shuts_down_on_sigterm_mid_request) {
    if (!setup()) return;
    serve_proc s;
    CHECK(serve_start(&s, "", "-T 2"));
    pthread_t t;
    client_job c = {&s, 0, 0, NULL};
    pthread_create(&t, NULL, slow_client, &c);
    usleep(700000);
    double t0 = now_s();
    int rc = serve_stop(&s);
    double took = now_s() - t0;
    pthread_join(t, NULL);
    printf("    exit %d after %.2f s; the client got %d %s", rc, took, c.status, c.text ? c.text : "\n");
    bool ok = rc == 0 && took < 10 && (c.status == 503 || c.status == -1);
    free(c.text);
    CHECK(ok);
}
