/* cmd_generate.c — `lmz generate`: text generation with an instruct model's chat
 * template, greedy or seeded sampling, stop strings, and several prompts in one batch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../generate/chat.h"
#include "../generate/generate.h"
#include "../util/error.h"
#include "cli.h"

#define MAX_STOPS 16

static const char usage[] =
    "usage: lmz generate [options] [PROMPT_FILE | --text PROMPT | --prompts FILE]\n"
    "  Continues a prompt (or, with --chat, answers it as the assistant) and prints the text.\n"
    "options:\n"
    "  -m MODEL        GGUF file or a fetched model's name, e.g. qwen25coder (default: smollm2)\n"
    "  -T N            threads (default 2); the output does not depend on it\n"
    "  --chat          wrap the prompt in the model's chat template as a user message\n"
    "  --system TEXT   system message for --chat (default: the template's own, if any)\n"
    "  -n N            maximum tokens to generate (default 256)\n"
    "  --temp T        sampling temperature; 0 = greedy (default 0)\n"
    "  --top-k K       sample among the K most likely tokens; 0 = all (default 40)\n"
    "  --top-p P       and among the smallest set with probability >= P (default 0.95)\n"
    "  --seed S        random seed for sampling (default 0); same seed, same text\n"
    "  --stop STR      stop before STR (repeatable, up to 16)\n"
    "  --prompts FILE  one prompt per line, all generated together as one batch; prints one\n"
    "                  JSON object per line: {\"index\", \"text\", \"tokens\", \"stop\"}\n"
    "  --ctx N         context size per prompt (default: prompt + n, at most 8192)\n";

typedef struct {
    cli_opts base;
    bool chat;
    const char *system;
    int max_tokens;
    lmz_sampling sampling;
    uint64_t seed;
    const char *stops[MAX_STOPS];
    int n_stop;
    const char *prompts_file;
    int n_ctx;
} gen_opts;

static int parse_number(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || d < lo || d > hi) {
        cli_error("%s wants a number from %g to %g, not '%s'", opt, lo, hi, v);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse_gen(int argc, char **argv, gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->max_tokens = 256;
    o->sampling = (lmz_sampling){0.0f, 40, 0.95f};
    /* pull out the generation options; pass the rest to the common parser */
    char **rest = malloc(sizeof(char *) * (size_t)(argc + 1));
    if (!rest) return -1;
    int n_rest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        bool value_opt = !strcmp(a, "--system") || !strcmp(a, "-n") || !strcmp(a, "--temp") || !strcmp(a, "--top-k") ||
                         !strcmp(a, "--top-p") || !strcmp(a, "--seed") || !strcmp(a, "--stop") ||
                         !strcmp(a, "--prompts") || !strcmp(a, "--ctx");
        if (value_opt && !v) {
            cli_error("option %s needs a value", a);
            free(rest);
            return -1;
        }
        int bad = 0;
        if (!strcmp(a, "--chat")) o->chat = true;
        else if (!strcmp(a, "--system")) o->system = argv[++i];
        else if (!strcmp(a, "-n")) bad = parse_number(a, argv[++i], 1, 1 << 20, &d), o->max_tokens = (int)d;
        else if (!strcmp(a, "--temp")) bad = parse_number(a, argv[++i], 0, 100, &d), o->sampling.temperature = (float)d;
        else if (!strcmp(a, "--top-k")) bad = parse_number(a, argv[++i], 0, 1 << 24, &d), o->sampling.top_k = (int)d;
        else if (!strcmp(a, "--top-p")) bad = parse_number(a, argv[++i], 0, 1, &d), o->sampling.top_p = (float)d;
        else if (!strcmp(a, "--seed")) bad = parse_number(a, argv[++i], 0, 9007199254740992.0, &d), o->seed = (uint64_t)d;
        else if (!strcmp(a, "--ctx")) bad = parse_number(a, argv[++i], 2, 1 << 20, &d), o->n_ctx = (int)d;
        else if (!strcmp(a, "--prompts")) o->prompts_file = argv[++i];
        else if (!strcmp(a, "--stop")) {
            if (o->n_stop == MAX_STOPS) {
                cli_error("at most %d stop strings", MAX_STOPS);
                bad = -1;
            } else o->stops[o->n_stop++] = argv[++i];
        } else rest[n_rest++] = argv[i];
        if (bad) {
            free(rest);
            return -1;
        }
    }
    int rc = cli_parse(n_rest, rest, 2, &o->base, usage);
    free(rest);
    if (rc) return -1;
    if (o->prompts_file && (o->base.file || o->base.text)) {
        cli_error("give either --prompts FILE or one prompt, not both");
        return -1;
    }
    return 0;
}

/* Splits the --prompts file into lines (empty lines skipped). */
static int read_prompt_lines(const char *path, char **data, char ***lines, int *n) {
    cli_opts fo = {0};
    fo.file = path;
    size_t len;
    if (cli_read_input(&fo, data, &len)) return -1;
    int cap = 16;
    *lines = malloc(sizeof(char *) * (size_t)cap);
    *n = 0;
    for (char *p = *data; lines && p < *data + len;) {
        char *nl = memchr(p, '\n', (size_t)(*data + len - p));
        if (nl) *nl = 0;
        if (*p) {
            if (*n == cap) {
                cap *= 2;
                char **nl2 = realloc(*lines, sizeof(char *) * (size_t)cap);
                if (!nl2) return -1;
                *lines = nl2;
            }
            (*lines)[(*n)++] = p;
        }
        if (!nl) break;
        p = nl + 1;
    }
    if (*n == 0) {
        cli_error("%s holds no prompts", path);
        return -1;
    }
    return 0;
}

static void print_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    if (parse_gen(argc, argv, &o)) return 2;
    char *data = NULL, **texts = NULL;
    int n = 1;
    if (o.prompts_file) {
        if (read_prompt_lines(o.prompts_file, &data, &texts, &n)) return 1;
    } else {
        size_t len;
        if (cli_read_input(&o.base, &data, &len)) return 1;
        texts = malloc(sizeof(char *));
        if (!texts) return 1;
        texts[0] = data;
    }
    lmz_model *m;
    lmz_tokenizer *tok;
    if (cli_load(&o.base, &m, &tok)) return 1;

    int rc = 1;
    int32_t **ids = calloc((size_t)n, sizeof *ids);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    lmz_gen_output *out = calloc((size_t)n, sizeof *out);
    lmz_ctx *c = NULL;
    size_t longest = 0;
    if (!ids || !lens || !out) goto done;
    for (int i = 0; i < n; i++) {
        char *prompt = texts[i];
        char *rendered = NULL;
        if (o.chat) {
            lmz_chat_message msgs[2];
            int k = 0;
            if (o.system) msgs[k++] = (lmz_chat_message){"system", o.system};
            msgs[k++] = (lmz_chat_message){"user", prompt};
            rendered = lmz_chat_render(m->file, msgs, k);
            if (!rendered) {
                cli_error("%s", lmz_last_error());
                goto done;
            }
            prompt = rendered;
        }
        int trc = lmz_tokenize(tok, prompt, strlen(prompt), true, o.chat, &ids[i], &lens[i]);
        free(rendered);
        if (trc) {
            cli_error("%s", lmz_last_error());
            goto done;
        }
        if (lens[i] == 0) {
            cli_error("prompt %d is empty", i + 1);
            goto done;
        }
        if (lens[i] > longest) longest = lens[i];
    }
    int n_ctx = o.n_ctx ? o.n_ctx : (int)(longest + (size_t)o.max_tokens);
    if (!o.n_ctx && n_ctx > 8192) n_ctx = 8192;
    c = lmz_ctx_create(m, n_ctx, n, o.base.threads);
    if (!c) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    lmz_gen_params gp = {o.max_tokens, o.sampling, o.seed, o.stops, o.n_stop};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (lmz_generate(c, tok, (const int32_t *const *)ids, lens, n, &gp, out)) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    long generated = 0;
    for (int i = 0; i < n; i++) {
        generated += out[i].n_tokens;
        if (o.prompts_file) {
            printf("{\"index\": %d, \"text\": ", i);
            print_json_string(out[i].text, out[i].len);
            printf(", \"tokens\": %d, \"stop\": \"%s\"}\n", out[i].n_tokens, lmz_stop_reason_name(out[i].reason));
        } else {
            fwrite(out[i].text, 1, out[i].len, stdout);
            putchar('\n');
        }
    }
    fprintf(stderr, "%d prompt(s), %ld tokens generated in %.2fs (%.1f tokens/s)\n", n, generated, secs,
            secs > 0 ? (double)generated / secs : 0.0);
    rc = 0;
done:
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    for (int i = 0; out && i < n; i++) lmz_gen_output_free(&out[i]);
    free(ids);
    free(lens);
    free(out);
    lmz_ctx_free(c);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    free(texts);
    free(data);
    return rc;
}
