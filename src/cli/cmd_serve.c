/* cmd_serve.c — `lmz serve`: the model as an OpenAI-compatible chat completions endpoint
 * (src/serve/chat_service.c) over the HTTP server of src/net/server.c; options, the
 * listening line scripts read the port from, and shutdown on SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../net/server.h"
#include "../serve/chat_service.h"
#include "../util/error.h"
#include "cli.h"

static const char usage[] =
    "usage: lmz serve [options]\n"
    "  Serves the model as an OpenAI-compatible endpoint: POST /v1/chat/completions,\n"
    "  GET /v1/models, GET /health (docs/serve.md). Prints one line on stdout,\n"
    "  \"lmz serve: listening on http://HOST:PORT/v1/chat/completions\", once it listens;\n"
    "  a line per request on stderr. SIGINT or SIGTERM stops it (queued and running\n"
    "  requests are answered 503).\n"
    "options:\n"
    "  -m MODEL          instruct GGUF file or a fetched model's name (default: smollm2)\n"
    "  --host ADDR       address to listen on (default 127.0.0.1, this machine only; any\n"
    "                    other, e.g. 0.0.0.0, exposes the model to the network without TLS)\n"
    "  --port N          TCP port (default 8080; 0: any free port, printed)\n"
    "  -T N              threads for the model (default 2); replies do not depend on it\n"
    "  --ctx N           positions per request, prompt and completion together (default\n"
    "                    2048); a longer prompt is answered 400\n"
    "  --streams S       sequences generated together (default 8): concurrent requests are\n"
    "                    batched up to S choices; also the largest n a request may ask for\n"
    "  --max-tokens N    the most completion tokens a request may ask for, and what it gets\n"
    "                    without max_tokens (default 512)\n"
    "  --max-body BYTES  largest request body (default 1048576); larger ones get 413\n"
    "  --max-conns N     connections served at once (default 32); more get 503\n"
    "  --timeout S       seconds a client has to send its whole request (default 30); 408\n"
    "  --api-key-env VAR require 'Authorization: Bearer $VAR' (401 otherwise; /health is open)\n"
    "  --model-id NAME   the model's name in replies and /v1/models (default: the file's\n"
    "                    name without .gguf)\n"
    "  -q                no per-request lines on stderr\n";

static lmz_http_server *volatile running_server;
static volatile sig_atomic_t n_signals;

static void on_signal(int sig) {
    (void)sig;
    if (++n_signals > 1) _exit(130); /* a second Ctrl-C: now */
    if (running_server) lmz_http_server_stop(running_server);
}

static void stop_service(void *arg) { lmz_chat_service_shutdown(arg); }

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out) {
    if (!cli_parse_long(v, lo, hi, out)) return 0;
    cli_error("%s wants a number from %ld to %ld, not '%s'", opt, lo, hi, v);
    return -1;
}

int cmd_serve(int argc, char **argv) {
    const char *host = "127.0.0.1", *key_env = NULL, *model_id = NULL;
    long port = 8080, max_tokens = 512, max_body = 1 << 20, max_conns = 32, timeout = 30;
    bool quiet = false;
    char **rest = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!rest) return 1;
    int n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool value_opt = !strcmp(a, "--host") || !strcmp(a, "--port") || !strcmp(a, "--max-tokens") ||
                         !strcmp(a, "--max-body") || !strcmp(a, "--max-conns") || !strcmp(a, "--timeout") ||
                         !strcmp(a, "--api-key-env") || !strcmp(a, "--model-id");
        if (value_opt && !v) {
            cli_error("option %s needs a value", a);
            free(rest);
            return 2;
        }
        int bad = 0;
        if (!strcmp(a, "--host")) host = argv[++i];
        else if (!strcmp(a, "--port")) bad = parse_long(a, argv[++i], 0, 65535, &port);
        else if (!strcmp(a, "--max-tokens")) bad = parse_long(a, argv[++i], 1, 1 << 20, &max_tokens);
        else if (!strcmp(a, "--max-body")) bad = parse_long(a, argv[++i], 64, 1L << 30, &max_body);
        else if (!strcmp(a, "--max-conns")) bad = parse_long(a, argv[++i], 1, 4096, &max_conns);
        else if (!strcmp(a, "--timeout")) bad = parse_long(a, argv[++i], 1, 86400, &timeout);
        else if (!strcmp(a, "--api-key-env")) key_env = argv[++i];
        else if (!strcmp(a, "--model-id")) model_id = argv[++i];
        else if (!strcmp(a, "-q")) quiet = true;
        else rest[n_rest++] = argv[i];
        if (bad) {
            free(rest);
            return 2;
        }
    }
    cli_opts o;
    int prc = cli_parse(n_rest, rest, 2, &o, usage);
    free(rest);
    if (prc) return 2;
    if (o.file || o.text) {
        cli_error("lmz serve takes no input (got '%s')\n%s", o.file ? o.file : o.text, usage);
        return 2;
    }
    const char *api_key = NULL;
    if (key_env) {
        api_key = getenv(key_env);
        if (!api_key || !*api_key) {
            cli_error("--api-key-env %s: the environment variable %s is not set or empty", key_env, key_env);
            return 2;
        }
    }

    lmz_model *m;
    lmz_tokenizer *tok;
    if (cli_load(&o, &m, &tok)) return 1;
    char id[sizeof m->path];
    if (!model_id) { /* the file's name without its directory and .gguf */
        const char *base = strrchr(m->path, '/');
        snprintf(id, sizeof id, "%s", base ? base + 1 : m->path);
        size_t n = strlen(id);
        if (n > 5 && !strcmp(id + n - 5, ".gguf")) id[n - 5] = 0;
        model_id = id;
    }
    int rc = 1;
    lmz_http_server *srv = NULL;
    lmz_chat_service_config sc = {model_id, o.n_ctx, o.streams, o.threads, (int)max_tokens, api_key,
                                  quiet ? NULL : stderr};
    lmz_chat_service *svc = lmz_chat_service_create(m, tok, &sc);
    if (!svc) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    lmz_http_server_config hc = {
        .host = host,
        .port = (int)port,
        .max_conns = (int)max_conns,
        .max_header = 16384,
        .max_header_lines = 100,
        .max_body = (size_t)max_body,
        .request_timeout_s = (double)timeout,
        .reply_timeout_s = 30,
        .handler = lmz_chat_service_handle,
        .arg = svc,
        .on_stop = stop_service,
        .log = quiet ? NULL : stderr,
    };
    srv = lmz_http_server_create(&hc);
    if (!srv) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL); /* a client that leaves must not end the server */
    running_server = srv;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    bool v6 = strchr(host, ':') != NULL;
    if (!quiet)
        fprintf(stderr, "lmz serve: %s, %d positions x %d streams, %d thread(s), up to %ld tokens per reply%s\n",
                model_id, o.n_ctx, o.streams, o.threads, max_tokens, api_key ? ", key required" : "");
    if (!quiet && strcmp(host, "127.0.0.1") && strcmp(host, "::1") && strcmp(host, "localhost"))
        fprintf(stderr, "lmz serve: warning: listening on %s, not loopback: reachable from other machines, "
                        "without TLS%s\n", host, api_key ? "" : " and without a key (--api-key-env)");
    printf("lmz serve: listening on http://%s%s%s:%d/v1/chat/completions\n", v6 ? "[" : "", host, v6 ? "]" : "",
           lmz_http_server_port(srv));
    fflush(stdout);
    if (lmz_http_server_run(srv)) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    if (!quiet) fprintf(stderr, "lmz serve: stopped\n");
    rc = 0;
done:
    running_server = NULL;
    lmz_http_server_free(srv);
    lmz_chat_service_free(svc);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    return rc;
}
