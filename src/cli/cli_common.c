/* cli_common.c — option parsing, model loading and input reading for the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../codec/symbols.h"
#include "../container/archive.h"
#include "../kernels/quant.h"
#include "../util/error.h"
#include "cli.h"

#define DEFAULT_MODEL_FILE "SmolLM2-135M-Instruct.Q4_1.gguf"

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lmz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int cli_parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, int lo, int hi, int *out) {
    long v;
    if (cli_parse_long(s, lo, hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

int cli_parse(int argc, char **argv, int first, cli_opts *o, const char *usage) {
    memset(o, 0, sizeof *o);
    o->threads = 2;
    o->top_k = 5;
    o->n_ctx = 2048;
    o->streams = 8;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = !strcmp(a, "-m") || !strcmp(a, "-T") || !strcmp(a, "-k") || !strcmp(a, "--text") ||
                           !strcmp(a, "--ctx") || !strcmp(a, "--isa") || !strcmp(a, "--streams") ||
                           !strcmp(a, "--lora");
        if (takes_value && !next) {
            cli_error("option %s needs a value\n%s", a, usage);
            return -1;
        }
        if (!strcmp(a, "-m")) o->model_path = argv[++i];
        else if (!strcmp(a, "--text")) o->text = argv[++i];
        else if (!strcmp(a, "--lora") && strstr(usage, "--lora")) o->lora_path = argv[++i];
        else if (!strcmp(a, "-T")) {
            if (cli_parse_int(argv[++i], 1, 256, &o->threads)) {
                cli_error("-T wants a thread count from 1 to 256, not '%s'", argv[i]);
                return -1;
            }
        } else if (!strcmp(a, "-k")) {
            if (cli_parse_int(argv[++i], 1, 1000, &o->top_k)) {
                cli_error("-k wants a number from 1 to 1000, not '%s'", argv[i]);
                return -1;
            }
        } else if (!strcmp(a, "--ctx")) {
            if (cli_parse_int(argv[++i], 2, 1 << 20, &o->n_ctx)) {
                cli_error("--ctx wants a context size of at least 2, not '%s'", argv[i]);
                return -1;
            }
        } else if (!strcmp(a, "--streams")) {
            if (cli_parse_int(argv[++i], 1, 256, &o->streams)) {
                cli_error("--streams wants a stream count from 1 to 256, not '%s'", argv[i]);
                return -1;
            }
        } else if (!strcmp(a, "--isa")) {
            enum lmz_isa isa;
            if (!lmz_isa_parse(argv[++i], &isa)) {
                cli_error("--isa wants scalar or one of this machine's SIMD levels (%s), not '%s'",
#if defined(__aarch64__)
                          "neon",
#else
                          "avx2, avx512",
#endif
                          argv[i]);
                return -1;
            }
            lmz_isa_set(isa);
        } else if (!strcmp(a, "--scalar")) lmz_isa_set(LMZ_ISA_SCALAR);
        else if (!strcmp(a, "--ids")) o->ids_only = true;
        else if (!strcmp(a, "--start")) o->with_start = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s", usage);
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            cli_error("unknown option %s\n%s", a, usage);
            return -1;
        } else if (o->file) {
            cli_error("only one input file is accepted here (got '%s' and '%s')", o->file, a);
            return -1;
        } else o->file = a;
    }
    return 0;
}

/* The models directory of the cache: $LMZ_CACHE/models or ~/.cache/lmz/models. */
static void models_dir(char *out, size_t size) {
    const char *cache = getenv("LMZ_CACHE");
    if (cache && *cache) snprintf(out, size, "%s/models", cache);
    else snprintf(out, size, "%s/.cache/lmz/models", getenv("HOME") ? getenv("HOME") : ".");
}

const char *cli_default_model_path(void) {
    static char path[4096];
    const char *env = getenv("LMZ_MODEL");
    if (env && *env) return env;
    char dir[4000];
    models_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, DEFAULT_MODEL_FILE);
    return path;
}

const char *cli_resolve_model(const char *arg, const lmz_known_model **known) {
    static char path[4096];
    *known = NULL;
    FILE *f = fopen(arg, "rb");
    if (f || strchr(arg, '/')) {
        if (f) fclose(f);
        return arg;
    }
    for (const lmz_known_model *m = lmz_known_models; m->name; m++) {
        if (strcasecmp(arg, m->fetch_name) && strcasecmp(arg, m->name)) continue;
        char dir[4000];
        models_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/%s", dir, m->file_name);
        *known = m;
        return path;
    }
    return arg;
}

int cli_load(const cli_opts *o, lmz_model **model, lmz_tokenizer **tok) {
    const lmz_known_model *known = NULL;
    const char *path = o->model_path ? cli_resolve_model(o->model_path, &known) : cli_default_model_path();
    if (known) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            cli_error("model '%s' is not in the model cache (%s);\n"
                      "  fetch it with `python3 tools/fetch_models.py %s`", o->model_path, path, known->fetch_name);
            return -1;
        }
        fclose(f);
    }
    if (!o->model_path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
            cli_error("the default model is not at %s.\n"
                      "  Fetch it with `make model` (or `python3 tools/fetch_models.py smollm2`),\n"
                      "  or name a GGUF file with -m MODEL.", path);
            return -1;
        }
        fclose(f);
    }
    *model = lmz_model_load(path);
    if (!*model) {
        cli_error("%s", lmz_last_error());
        return -1;
    }
    *tok = lmz_tokenizer_load((*model)->file);
    if (!*tok) {
        cli_error("%s: %s", path, lmz_last_error());
        lmz_model_free(*model);
        return -1;
    }
    return 0;
}

int cli_read_input(const cli_opts *o, char **data, size_t *len) {
    if (o->text) {
        *len = strlen(o->text);
        *data = malloc(*len + 1);
        if (!*data) return -1;
        memcpy(*data, o->text, *len + 1);
        return 0;
    }
    bool use_stdin = !o->file || !strcmp(o->file, "-");
    FILE *f = use_stdin ? stdin : fopen(o->file, "rb");
    if (!f) {
        cli_error("cannot open %s: %s", o->file, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            cli_error("out of memory reading %s", use_stdin ? "standard input" : o->file);
            if (!use_stdin) fclose(f);
            return -1;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) free(buf);
        buf = nb;
    }
    bool failed = ferror(f);
    if (!use_stdin) fclose(f);
    if (failed) {
        cli_error("read error on %s", use_stdin ? "standard input" : o->file);
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

