/* chat_service.c — OpenAI-compatible chat completions over lmz_generate_each: request
 * validation, chat prompts, the batching worker, replies (chat_service.h). */
#include "chat_service.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../coder/bytebuf.h"
#include "../generate/chat.h"
#include "../generate/generate.h"
#include "../util/error.h"
#include "../util/json.h"

#define MAX_STOPS 16
#define MAX_STOP_BYTES 256
#define MAX_MESSAGES 4096
#define MAX_TOP_K 1000 /* the sampler keeps the top k by insertion: a larger k costs O(k^2) per token */
#define MAX_JSON_VALUES 100000 /* bounds the parsed tree of a body (a few MB at most) */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };

typedef struct job {
    int32_t *ids;
    size_t n_ids;
    int n; /* choices */
    lmz_gen_params params;
    const char *stops[MAX_STOPS];
    atomic_int cancel;
    enum job_state state;
    int fail_status;
    char err[512];
    lmz_gen_output *out; /* n of them once done */
    double t_queued, t_started, t_done;
    int batch; /* requests in the batch it ran in */
    struct job *next;
} job;

struct lmz_chat_service {
    lmz_chat_service_config cfg;
    char *model_id, *api_key;
    const lmz_model *m;
    const lmz_tokenizer *tok;
    lmz_ctx *ctx;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t mu;
    pthread_cond_t work; /* the worker waits for a queued job */
    pthread_cond_t done; /* connection threads wait for their job (CLOCK_MONOTONIC) */
    job *head, *tail;
    job **running; /* the batch in generation (n_running jobs) */
    int n_running;
    bool stopping;
    atomic_ullong n_requests;
    time_t created;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---------------- the worker ---------------- */

static void *worker_main(void *arg) {
    lmz_chat_service *s = arg;
    const int S = s->cfg.n_streams;
    const int32_t **prompts = calloc((size_t)S, sizeof *prompts);
    size_t *lens = calloc((size_t)S, sizeof *lens);
    const lmz_gen_params **params = calloc((size_t)S, sizeof *params);
    int *stream = calloc((size_t)S, sizeof *stream);
    const atomic_int **cancel = calloc((size_t)S, sizeof *cancel);
    lmz_gen_output *out = calloc((size_t)S, sizeof *out);
    bool ok = prompts && lens && params && stream && cancel && out;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->work, &s->mu);
        if (s->stopping) break;
        /* the oldest requests that fit the streams (a request's n never exceeds them) */
        int k = 0;
        s->n_running = 0;
        while (s->head && k + s->head->n <= S) {
            job *j = s->head;
            s->head = j->next;
            if (!s->head) s->tail = NULL;
            j->next = NULL;
            j->state = JOB_RUNNING;
            j->t_started = now();
            s->running[s->n_running++] = j;
            for (int c = 0; c < j->n; c++, k++) {
                prompts[k] = j->ids;
                lens[k] = j->n_ids;
                params[k] = &j->params;
                stream[k] = c;
                cancel[k] = &j->cancel;
            }
        }
        for (int r = 0; r < s->n_running; r++) s->running[r]->batch = s->n_running;
        pthread_mutex_unlock(&s->mu);
        char err[512] = "";
        int rc = ok ? lmz_generate_each(s->ctx, s->tok, prompts, lens, k, params, stream, cancel, out) : -1;
        if (rc) snprintf(err, sizeof err, "generation failed: %s", ok ? lmz_last_error() : "out of memory");
        pthread_mutex_lock(&s->mu);
        double t = now();
        k = 0;
        for (int r = 0; r < s->n_running; r++) {
            job *j = s->running[r];
            j->t_done = t;
            if (!rc && !s->stopping && (j->out = calloc((size_t)j->n, sizeof *j->out))) {
                memcpy(j->out, out + k, (size_t)j->n * sizeof *out);
                j->state = JOB_DONE;
            } else {
                for (int c = 0; !rc && c < j->n; c++) lmz_gen_output_free(&out[k + c]);
                j->state = JOB_FAILED;
                j->fail_status = rc ? 500 : 503;
                snprintf(j->err, sizeof j->err, "%s", rc ? err : s->stopping ? "the server is shutting down" : "out of memory");
            }
            k += j->n;
        }
        s->n_running = 0;
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
    free(prompts);
    free(lens);
    free(params);
    free(stream);
    free(cancel);
    free(out);
    return NULL;
}

lmz_chat_service *lmz_chat_service_create(const lmz_model *m, const lmz_tokenizer *tok,
                                          const lmz_chat_service_config *cfg) {
    if (cfg->n_streams < 1 || cfg->n_ctx < 2 || cfg->max_tokens < 1) {
        lmz_fail("chat service: bad configuration");
        return NULL;
    }
    if (lmz_chat_detect(m->file) == LMZ_CHAT_NONE) {
        lmz_fail("%s has no chat template lmz knows (a base model?); lmz serve needs an instruct model", m->name);
        return NULL;
    }
    lmz_chat_service *s = lmz_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    s->m = m;
    s->tok = tok;
    s->created = time(NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->done, &ca);
    pthread_condattr_destroy(&ca);
    s->model_id = strdup(cfg->model_id ? cfg->model_id : m->name);
    s->api_key = cfg->api_key ? strdup(cfg->api_key) : NULL;
    s->running = calloc((size_t)cfg->n_streams, sizeof *s->running);
    if (!s->model_id || (cfg->api_key && !s->api_key) || !s->running) {
        lmz_fail("out of memory");
        goto fail;
    }
    s->cfg.model_id = s->model_id;
    s->cfg.api_key = s->api_key;
    s->ctx = lmz_ctx_create(m, cfg->n_ctx, cfg->n_streams, cfg->threads);
    if (!s->ctx) goto fail;
    if (pthread_create(&s->worker, NULL, worker_main, s)) {
        lmz_fail("cannot start the worker thread");
        goto fail;
    }
    s->worker_started = true;
    return s;
fail:
    lmz_chat_service_free(s);
    return NULL;
}

void lmz_chat_service_shutdown(lmz_chat_service *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (job *j = s->head; j; j = j->next) {
        j->state = JOB_FAILED;
        j->fail_status = 503;
        snprintf(j->err, sizeof j->err, "the server is shutting down");
    }
    s->head = s->tail = NULL;
    for (int r = 0; r < s->n_running; r++) atomic_store(&s->running[r]->cancel, 1);
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
}

void lmz_chat_service_free(lmz_chat_service *s) {
    if (!s) return;
    lmz_chat_service_shutdown(s);
    if (s->worker_started) pthread_join(s->worker, NULL);
    lmz_ctx_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    free(s->running);
    free(s->model_id);
    free(s->api_key);
    free(s);
}

/* Queues J and waits until it is done or failed; drops it (or cancels its generation) when
 * the client leaves. */
static void run_job(lmz_chat_service *s, job *j, const lmz_http_request *req) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        j->state = JOB_FAILED;
        j->fail_status = 503;
        snprintf(j->err, sizeof j->err, "the server is shutting down");
        pthread_mutex_unlock(&s->mu);
        return;
    }
    j->state = JOB_QUEUED;
    j->t_queued = now();
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    pthread_cond_signal(&s->work);
    while (j->state == JOB_QUEUED || j->state == JOB_RUNNING) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&s->done, &s->mu, &until);
        if (j->state != JOB_QUEUED && j->state != JOB_RUNNING) break;
        if (atomic_load(&j->cancel)) continue;
        pthread_mutex_unlock(&s->mu);
        bool gone = lmz_http_client_gone(req);
        pthread_mutex_lock(&s->mu);
        if (!gone) continue;
        if (j->state == JOB_QUEUED) { /* unlink it: the worker never sees it */
            job **pp = &s->head, *prev = NULL;
            while (*pp && *pp != j) prev = *pp, pp = &(*pp)->next;
            if (*pp) {
                *pp = j->next;
                if (s->tail == j) s->tail = prev;
            }
            j->state = JOB_FAILED;
            j->fail_status = 499;
            snprintf(j->err, sizeof j->err, "the client left before its request ran");
        } else if (j->state == JOB_RUNNING) {
            atomic_store(&j->cancel, 1);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---------------- requests ---------------- */

/* A request error: the status, the parameter it concerns, and a message. */
typedef struct {
    int status;
    const char *param, *code;
    char msg[512];
} req_error;

static int bad(req_error *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(req_error *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->status = 400;
    e->param = param;
    return -1;
}

/* An upper bound on the number of values in the JSON text B[0..n): one, plus one per ','
 * '[' and '{' outside strings. */
static size_t json_value_bound(const char *b, size_t n) {
    size_t count = 1;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') in_str = true;
        else if (c == ',' || c == '[' || c == '{') count++;
    }
    return count;
}

static bool is_null(const lmz_json *v) { return !v || v->type == LMZ_JSON_NULL; }

/* A number member NAME in [lo, hi] (DEF when absent or null). */
static int get_number(const lmz_json *o, const char *name, double lo, double hi, double def, double *out,
                      req_error *e) {
    const lmz_json *v = lmz_json_get(o, name);
    if (is_null(v)) {
        *out = def;
        return 0;
    }
    if (v->type != LMZ_JSON_NUMBER) return bad(e, name, "'%s' must be a number", name);
    double d = strtod(v->str, NULL);
    if (!(d >= lo && d <= hi)) return bad(e, name, "'%s' must be from %g to %g, not %s", name, lo, hi, v->str);
    *out = d;
    return 0;
}

/* An integer member NAME in [lo, hi] (DEF when absent or null). */
static int get_int(const lmz_json *o, const char *name, long long lo, long long hi, long long def, long long *out,
                   req_error *e) {
    const lmz_json *v = lmz_json_get(o, name);
    if (is_null(v)) {
        *out = def;
        return 0;
    }
    if (v->type != LMZ_JSON_NUMBER) return bad(e, name, "'%s' must be an integer", name);
    char *end;
    errno = 0;
    long long x = strtoll(v->str, &end, 10);
    if (*end) { /* 3.0 or 1e3: an integer only when it is one */
        double d = strtod(v->str, NULL);
        if (d != floor(d) || !(d >= -9.2e18 && d <= 9.2e18)) return bad(e, name, "'%s' must be an integer", name);
        x = (long long)d;
    }
    if (errno || x < lo || x > hi)
        return bad(e, name, "'%s' must be from %lld to %lld, not %s", name, lo, hi, v->str);
    *out = x;
    return 0;
}

static int get_bool(const lmz_json *o, const char *name, bool *out, req_error *e) {
    const lmz_json *v = lmz_json_get(o, name);
    *out = false;
    if (is_null(v)) return 0;
    if (v->type != LMZ_JSON_TRUE && v->type != LMZ_JSON_FALSE) return bad(e, name, "'%s' must be true or false", name);
    *out = v->type == LMZ_JSON_TRUE;
    return 0;
}

/* A message's text: a string, or an array of {"type": "text", "text": "..."} parts,
 * concatenated. *OWNED is set when the text had to be assembled (free it). */
static int message_text(const lmz_json *c, int i, const char **text, size_t *len, char **owned, req_error *e) {
    *owned = NULL;
    if (c && c->type == LMZ_JSON_STRING) {
        *text = c->str;
        *len = c->len;
        return 0;
    }
    if (!c || c->type != LMZ_JSON_ARRAY)
        return bad(e, "messages", "messages[%d].content must be a string or an array of text parts", i);
    lmz_bytebuf b = {0};
    int k = 0;
    for (const lmz_json *p = c->child; p; p = p->next, k++) {
        const lmz_json *type = lmz_json_get(p, "type"), *t = lmz_json_get(p, "text");
        if (!type || type->type != LMZ_JSON_STRING || strcmp(type->str, "text") || !t || t->type != LMZ_JSON_STRING) {
            lmz_bytebuf_free(&b);
            return bad(e, "messages", "messages[%d].content[%d] must be {\"type\": \"text\", \"text\": \"...\"} "
                       "(lmz serve takes text only)", i, k);
        }
        if (lmz_bytebuf_append(&b, t->str, t->len)) {
            lmz_bytebuf_free(&b);
            e->status = 500;
            snprintf(e->msg, sizeof e->msg, "out of memory");
            return -1;
        }
    }
    if (lmz_bytebuf_append(&b, "", 1)) { /* NUL-terminated; also makes an empty text non-NULL */
        lmz_bytebuf_free(&b);
        e->status = 500;
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return -1;
    }
    *owned = (char *)b.data;
    *text = *owned;
    *len = b.len - 1;
    return 0;
}

static int append_tokens(const lmz_tokenizer *tok, const char *text, size_t len, bool add_special, bool special,
                         lmz_bytebuf *ids) {
    int32_t *part;
    size_t k;
    if (lmz_tokenize(tok, text, len, add_special, special, &part, &k)) return -1;
    int rc = lmz_bytebuf_append(ids, part, k * sizeof *part);
    free(part);
    return rc;
}

/* The prompt's tokens. The template is rendered with a marker ("\x01" INDEX "\x02") in place
 * of each message's text, and the texts are tokenized as plain text where their markers
 * are: a message that holds "<|im_end|>" cannot end its turn early. The template's own
 * text is tokenized with special tokens, the first piece with the model's start token. */
static int prompt_tokens(const lmz_model *m, const lmz_tokenizer *tok, const char *const *roles,
                         const char *const *texts, const size_t *lens, int n, int32_t **ids, size_t *n_ids) {
    lmz_chat_message *msgs = lmz_calloc((size_t)n, sizeof *msgs);
    char *marks = lmz_malloc((size_t)n * 16);
    char *rendered = NULL;
    lmz_bytebuf out = {0};
    int rc = -1;
    if (!msgs || !marks) goto done;
    for (int i = 0; i < n; i++) {
        snprintf(marks + 16 * i, 16, "\x01%d\x02", i);
        msgs[i] = (lmz_chat_message){roles[i], marks + 16 * i};
    }
    if (!(rendered = lmz_chat_render(m->file, msgs, n))) goto done;
    const char *seg = rendered;
    bool first = true;
    for (;;) {
        const char *mark = strchr(seg, '\x01');
        size_t len = mark ? (size_t)(mark - seg) : strlen(seg);
        if ((len || first) && append_tokens(tok, seg, len, first, true, &out)) goto done;
        first = false;
        if (!mark) break;
        char *end;
        long i = strtol(mark + 1, &end, 10);
        if (end == mark + 1 || *end != '\x02' || i < 0 || i >= n) {
            lmz_fail("the model's chat template holds the byte 0x01");
            goto done;
        }
        if (lens[i] && append_tokens(tok, texts[i], lens[i], false, false, &out)) goto done;
        seg = end + 1;
    }
    *ids = (int32_t *)out.data;
    *n_ids = out.len / sizeof(int32_t);
    out.data = NULL;
    rc = 0;
done:
    lmz_bytebuf_free(&out);
    free(rendered);
    free(marks);
    free(msgs);
    return rc;
}

/* Reads the completion request R into J (tokens, parameters, n). */
static int parse_completion(lmz_chat_service *s, const lmz_json *r, job *j, req_error *e) {
    if (!r || r->type != LMZ_JSON_OBJECT) return bad(e, NULL, "the request body must be a JSON object");
    bool flag;
    if (get_bool(r, "stream", &flag, e)) return -1;
    if (flag) return bad(e, "stream", "streaming is not supported: leave 'stream' out or set it to false");
    if (get_bool(r, "logprobs", &flag, e)) return -1;
    if (flag) return bad(e, "logprobs", "logprobs are not supported");
    const lmz_json *v = lmz_json_get(r, "model");
    if (!is_null(v) && v->type != LMZ_JSON_STRING) return bad(e, "model", "'model' must be a string");
    static const char *const unsupported[] = {"tools", "functions", "logit_bias"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        v = lmz_json_get(r, unsupported[i]);
        if (!is_null(v) && lmz_json_count(v) > 0)
            return bad(e, unsupported[i], "'%s' is not supported by lmz serve", unsupported[i]);
    }
    static const char *const penalties[] = {"frequency_penalty", "presence_penalty"};
    for (size_t i = 0; i < 2; i++) {
        double d;
        if (get_number(r, penalties[i], -2, 2, 0, &d, e)) return -1;
        if (d != 0) return bad(e, penalties[i], "'%s' is not supported (only 0)", penalties[i]);
    }
    v = lmz_json_get(lmz_json_get(r, "response_format"), "type");
    if (v && (v->type != LMZ_JSON_STRING || strcmp(v->str, "text")))
        return bad(e, "response_format", "only the response format {\"type\": \"text\"} is supported");

    long long max_tokens, n, top_k, seed;
    double temperature, top_p;
    const char *mt_name = is_null(lmz_json_get(r, "max_completion_tokens")) ? "max_tokens" : "max_completion_tokens";
    if (get_int(r, mt_name, 1, s->cfg.max_tokens, s->cfg.max_tokens, &max_tokens, e) ||
        get_int(r, "n", 1, s->cfg.n_streams, 1, &n, e) || get_number(r, "temperature", 0, 2, 1, &temperature, e) ||
        get_number(r, "top_p", 0, 1, 1, &top_p, e) || get_int(r, "top_k", 0, MAX_TOP_K, 0, &top_k, e) ||
        get_int(r, "seed", INT64_MIN, INT64_MAX, 0, &seed, e))
        return -1;
    if (top_p <= 0) return bad(e, "top_p", "'top_p' must be above 0");
    j->n = (int)n;
    j->params.max_tokens = (int)max_tokens;
    j->params.sampling = (lmz_sampling){(float)temperature, (int)top_k, (float)top_p};
    j->params.seed = (uint64_t)seed;
    j->params.stop = j->stops;

    v = lmz_json_get(r, "stop");
    if (!is_null(v)) {
        const lmz_json *one = v->type == LMZ_JSON_STRING ? v : NULL;
        if (!one && v->type != LMZ_JSON_ARRAY) return bad(e, "stop", "'stop' must be a string or an array of strings");
        if (!one && lmz_json_count(v) > MAX_STOPS) return bad(e, "stop", "at most %d stop strings", MAX_STOPS);
        for (const lmz_json *x = one ? one : v->child; x; x = one ? NULL : x->next) {
            if (x->type != LMZ_JSON_STRING) return bad(e, "stop", "'stop' must be a string or an array of strings");
            if (x->len > MAX_STOP_BYTES || strlen(x->str) != x->len)
                return bad(e, "stop", "a stop string must be at most %d bytes, without NUL", MAX_STOP_BYTES);
            if (x->len) j->stops[j->params.n_stop++] = x->str;
        }
    }

    const lmz_json *msgs = lmz_json_get(r, "messages");
    if (!msgs) return bad(e, "messages", "'messages' is missing: give the conversation as an array of messages");
    if (msgs->type != LMZ_JSON_ARRAY || !msgs->child)
        return bad(e, "messages", "'messages' must be a non-empty array of {\"role\", \"content\"} objects");
    size_t count = lmz_json_count(msgs);
    if (count > MAX_MESSAGES) return bad(e, "messages", "at most %d messages", MAX_MESSAGES);
    int nm = (int)count, rc = -1;
    const char **roles = calloc(count, sizeof *roles), **texts = calloc(count, sizeof *texts);
    size_t *lens = calloc(count, sizeof *lens);
    char **owned = calloc(count, sizeof *owned);
    if (!roles || !texts || !lens || !owned) {
        e->status = 500;
        snprintf(e->msg, sizeof e->msg, "out of memory");
        goto done;
    }
    int i = 0;
    for (const lmz_json *mj = msgs->child; mj; mj = mj->next, i++) {
        if (mj->type != LMZ_JSON_OBJECT) {
            bad(e, "messages", "messages[%d] must be an object with 'role' and 'content'", i);
            goto done;
        }
        const lmz_json *role = lmz_json_get(mj, "role");
        if (!role || role->type != LMZ_JSON_STRING) {
            bad(e, "messages", "messages[%d].role must be \"system\", \"user\" or \"assistant\"", i);
            goto done;
        }
        if (!strcmp(role->str, "system") || !strcmp(role->str, "developer")) roles[i] = "system";
        else if (!strcmp(role->str, "user")) roles[i] = "user";
        else if (!strcmp(role->str, "assistant")) roles[i] = "assistant";
        else {
            bad(e, "messages", "messages[%d].role '%.40s' is not one of system, user, assistant", i, role->str);
            goto done;
        }
        if (message_text(lmz_json_get(mj, "content"), i, &texts[i], &lens[i], &owned[i], e)) goto done;
    }
    if (prompt_tokens(s->m, s->tok, roles, texts, lens, nm, &j->ids, &j->n_ids)) {
        e->status = 500;
        snprintf(e->msg, sizeof e->msg, "the prompt could not be made: %s", lmz_last_error());
        goto done;
    }
    if (j->n_ids >= (size_t)s->cfg.n_ctx) {
        bad(e, "messages", "the prompt takes %zu tokens but the context holds %d (prompt and completion together; "
            "lmz serve --ctx)", j->n_ids, s->cfg.n_ctx);
        e->code = "context_length_exceeded";
        goto done;
    }
    rc = 0;
done:
    for (int k = 0; owned && k < nm; k++) free(owned[k]);
    free(owned);
    free(roles);
    free(texts);
    free(lens);
    return rc;
}

/* Appends S[0..len) as a JSON string, invalid UTF-8 replaced by U+FFFD (a completion cut
 * by max_tokens can end inside a character). */
static int write_utf8_string(lmz_bytebuf *b, const char *s, size_t len) {
    lmz_bytebuf clean = {0};
    const unsigned char *p = (const unsigned char *)s;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        bool ok = k > 0 && i + k <= len;
        for (size_t t = 1; ok && t < k; t++) ok = (p[i + t] & 0xC0) == 0x80;
        if (ok && k == 3) ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] > 0x9F);
        if (ok && k == 4) ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] > 0x8F);
        if (ok) {
            rc = lmz_bytebuf_append(&clean, p + i, k);
            i += k;
        } else {
            rc = lmz_bytebuf_append(&clean, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    if (!rc) rc = lmz_json_write_string(b, clean.data ? (const char *)clean.data : "", clean.len);
    lmz_bytebuf_free(&clean);
    return rc;
}

static int append_str(lmz_bytebuf *b, const char *s) { return lmz_bytebuf_append(b, s, strlen(s)); }

static int append_fmt(lmz_bytebuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append_fmt(lmz_bytebuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= sizeof tmp ? lmz_fail("format overflow") : lmz_bytebuf_append(b, tmp, (size_t)n);
}

static int completion_json(lmz_chat_service *s, const job *j, unsigned long long id, lmz_bytebuf *b) {
    long completion = 0;
    for (int c = 0; c < j->n; c++) completion += j->out[c].n_tokens;
    if (append_fmt(b, "{\"id\": \"chatcmpl-lmz-%d-%llu\", \"object\": \"chat.completion\", \"created\": %lld, \"model\": ",
                   (int)getpid(), id, (long long)time(NULL)) ||
        lmz_json_write_string(b, s->model_id, strlen(s->model_id)) || append_str(b, ", \"choices\": ["))
        return -1;
    for (int c = 0; c < j->n; c++) {
        const lmz_gen_output *o = &j->out[c];
        const char *finish = o->reason == LMZ_STOP_EOG || o->reason == LMZ_STOP_STRING ? "stop" : "length";
        if (append_fmt(b, "%s{\"index\": %d, \"message\": {\"role\": \"assistant\", \"content\": ", c ? ", " : "", c) ||
            write_utf8_string(b, o->text, o->len) ||
            append_fmt(b, "}, \"logprobs\": null, \"finish_reason\": \"%s\"}", finish))
            return -1;
    }
    return append_fmt(b, "], \"usage\": {\"prompt_tokens\": %zu, \"completion_tokens\": %ld, \"total_tokens\": %zu}}\n",
                      j->n_ids, completion, j->n_ids + (size_t)completion);
}

static void chat_completion(lmz_chat_service *s, const lmz_http_request *req, lmz_http_response *res, char *note,
                            size_t note_cap) {
    req_error e = {0};
    job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.cancel, 0);
    lmz_json *r = NULL;
    unsigned long long id = atomic_fetch_add(&s->n_requests, 1) + 1;
    if (json_value_bound(req->body, req->body_len) > MAX_JSON_VALUES) {
        bad(&e, NULL, "the request holds more than %d JSON values", MAX_JSON_VALUES);
        goto fail;
    }
    if (!(r = lmz_json_parse(req->body, req->body_len))) {
        bad(&e, NULL, "the request body is not valid JSON: %s", req->body_len ? lmz_last_error() : "it is empty");
        goto fail;
    }
    if (parse_completion(s, r, &j, &e)) goto fail;
    run_job(s, &j, req);
    if (j.state != JOB_DONE) {
        e.status = j.fail_status ? j.fail_status : 500;
        snprintf(e.msg, sizeof e.msg, "%s", j.err);
        goto fail;
    }
    lmz_bytebuf b = {0};
    if (completion_json(s, &j, id, &b)) {
        lmz_bytebuf_free(&b);
        e.status = 500;
        snprintf(e.msg, sizeof e.msg, "the reply could not be written: %s", lmz_last_error());
        goto fail;
    }
    res->status = 200;
    res->body = (char *)b.data;
    res->len = b.len;
    long completion = 0;
    for (int c = 0; c < j.n; c++) completion += j.out[c].n_tokens;
    snprintf(note, note_cap, "n=%d, %zu prompt + %ld completion tokens, queued %.2f s, generated %.2f s in a batch of %d%s",
             j.n, j.n_ids, completion, j.t_started - j.t_queued, j.t_done - j.t_started, j.batch,
             atomic_load(&j.cancel) ? "; the client left, so generation stopped" : "");
    goto done;
fail:
    lmz_http_error(res, e.status, e.status >= 500 ? "server_error" : "invalid_request_error", e.param, e.code, "%s",
                   e.msg);
    snprintf(note, note_cap, "%s", e.msg);
done:
    for (int c = 0; j.out && c < j.n; c++) lmz_gen_output_free(&j.out[c]);
    free(j.out);
    free(j.ids);
    lmz_json_free(r);
}

static void model_json(lmz_chat_service *s, lmz_bytebuf *b) {
    append_str(b, "{\"id\": ");
    lmz_json_write_string(b, s->model_id, strlen(s->model_id));
    append_fmt(b, ", \"object\": \"model\", \"created\": %lld, \"owned_by\": \"lmz\", \"context_length\": %d}",
               (long long)s->created, s->cfg.n_ctx);
}

/* Whether the Authorization header is "Bearer KEY", compared in constant time. */
static bool authorized(const lmz_chat_service *s, const char *auth) {
    if (!s->api_key) return true;
    if (!auth || strncasecmp(auth, "Bearer ", 7)) return false;
    const char *given = auth + 7;
    while (*given == ' ') given++;
    size_t n = strlen(s->api_key), m = strlen(given);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)s->api_key[i] ^ (unsigned char)(i < m ? given[i] : 0);
    return diff == 0;
}

void lmz_chat_service_handle(void *arg, const lmz_http_request *req, lmz_http_response *res) {
    lmz_chat_service *s = arg;
    double t0 = now();
    char note[640] = "";
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    const char *p = req->path;
    bool known = !strcmp(p, "/health") || !strcmp(p, "/v1/models") || !strncmp(p, "/v1/models/", 11) ||
                 !strcmp(p, "/v1/chat/completions");
    if (!known) {
        lmz_http_error(res, 404, "invalid_request_error", NULL, "not_found",
                       "no such endpoint: %.200s (lmz serve has POST /v1/chat/completions, GET /v1/models, GET /health)",
                       p);
    } else if (strcmp(p, "/health") && !authorized(s, req->authorization)) {
        lmz_http_error(res, 401, "authentication_error", NULL, "invalid_api_key",
                       "a valid 'Authorization: Bearer KEY' header is needed");
    } else if (!strcmp(p, "/v1/chat/completions")) {
        if (strcmp(req->method, "POST")) {
            res->allow = "POST";
            lmz_http_error(res, 405, "invalid_request_error", NULL, "method_not_allowed",
                           "%.20s is not allowed on %s: use POST", req->method, p);
        } else {
            chat_completion(s, req, res, note, sizeof note);
        }
    } else if (!get) {
        res->allow = "GET, HEAD";
        lmz_http_error(res, 405, "invalid_request_error", NULL, "method_not_allowed",
                       "%.20s is not allowed on %s: use GET", req->method, p);
    } else {
        lmz_bytebuf b = {0};
        if (!strcmp(p, "/health")) {
            append_str(&b, "{\"status\": \"ok\"}\n");
        } else if (!strcmp(p, "/v1/models")) {
            append_str(&b, "{\"object\": \"list\", \"data\": [");
            model_json(s, &b);
            append_str(&b, "]}\n");
        } else if (!strcmp(p + 11, s->model_id)) {
            model_json(s, &b);
            append_str(&b, "\n");
        }
        if (b.len) {
            res->status = 200;
            res->body = (char *)b.data;
            res->len = b.len;
        } else {
            lmz_bytebuf_free(&b);
            lmz_http_error(res, 404, "invalid_request_error", "model", "model_not_found",
                           "no such model: %.200s (this server has %s)", p + 11, s->model_id);
        }
    }
    if (s->cfg.log) {
        if (!note[0] && res->status != 200 && res->body) {
            lmz_json *j = lmz_json_parse(res->body, res->len);
            const lmz_json *m = lmz_json_get(lmz_json_get(j, "error"), "message");
            if (m && m->type == LMZ_JSON_STRING) snprintf(note, sizeof note, "%s", m->str);
            lmz_json_free(j);
        }
        fprintf(s->cfg.log, "lmz serve: %.20s %.200s %d %.2f s%s%s\n", req->method, p, res->status, now() - t0,
                note[0] ? ": " : "", note);
        fflush(s->cfg.log);
    }
}
