/* cmd_text.c — `lmz tokenize`, `lmz logits` and `lmz perplexity`: the engine applied to a text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../codec/symbols.h"
#include "../lora/lora.h"
#include "../probs/probs.h"
#include "../util/error.h"
#include "../util/sha256.h"
#include "cli.h"

#define EVAL_PIECE 64 /* tokens evaluated per call, bounding the logits buffer */

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Prints a token's bytes with escapes for anything unprintable. */
static void print_piece(const lmz_tokenizer *tok, int32_t id) {
    char buf[256];
    size_t n = lmz_token_bytes(tok, id, true, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '\t') fputs("\\t", stdout);
        else if (ch == '\r') fputs("\\r", stdout);
        else if (ch == '\'' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('\'');
}

/* Loads the model, reads the input and tokenizes it; the caller frees everything. */
static int load_and_tokenize(int argc, char **argv, const char *usage, cli_opts *o, lmz_model **m,
                             lmz_tokenizer **tok, int32_t **ids, size_t *n_ids, size_t *n_bytes) {
    if (cli_parse(argc, argv, 2, o, usage)) return 2;
    char *text;
    if (cli_read_input(o, &text, n_bytes)) return 1;
    if (cli_load(o, m, tok)) {
        free(text);
        return 1;
    }
    int rc = lmz_tokenize(*tok, text, *n_bytes, false, false, ids, n_ids);
    free(text);
    if (rc) {
        cli_error("%s", lmz_last_error());
        lmz_tokenizer_free(*tok);
        lmz_model_free(*m);
        return 1;
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    static const char usage[] =
        "usage: lmz tokenize [-m MODEL] [--ids] [--start] [FILE | --text TEXT]\n"
        "  Tokenizes FILE (or standard input, or TEXT) as plain text (special-token text is not\n"
        "  parsed) and prints one token per line: id and bytes. --ids prints only the ids.\n"
        "  --start puts the start token first, as lmz does when it codes a text.\n";
    cli_opts o;
    lmz_model *m;
    lmz_tokenizer *tok;
    int32_t *ids;
    size_t n, bytes;
    int rc = load_and_tokenize(argc, argv, usage, &o, &m, &tok, &ids, &n, &bytes);
    if (rc) return rc;
    if (o.with_start) {
        int32_t start = lmz_start_token(tok);
        if (o.ids_only) printf(n ? "%d " : "%d", start);
        else {
            printf("%d\t", start);
            print_piece(tok, start);
            putchar('\n');
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (o.ids_only) {
            printf(i + 1 < n ? "%d " : "%d", ids[i]);
            continue;
        }
        printf("%d\t", ids[i]);
        print_piece(tok, ids[i]);
        putchar('\n');
    }
    if (o.ids_only) putchar('\n');
    fprintf(stderr, "%zu tokens, %zu bytes\n", n, bytes);
    free(ids);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    return 0;
}

/* Evaluates START + IDS in windows of n_ctx positions (each window restarts from the start
 * token), calling VISIT with the logits that predict each id. */
typedef void (*visit_fn)(void *state, size_t index, const float *logits, int32_t actual);

static int run_windows(lmz_model *m, const lmz_tokenizer *tok, const cli_opts *o, const int32_t *ids, size_t n,
                       visit_fn visit, void *state) {
    int n_ctx = o->n_ctx;
    lmz_ctx *c = lmz_ctx_create(m, n_ctx, 1, o->threads);
    lmz_lora *lora = c && o->lora_path ? lmz_lora_load(o->lora_path, m) : NULL;
    bool adapted = !o->lora_path || (lora && lmz_ctx_set_lora(c, lora) == 0);
    float *logits = c ? malloc((size_t)EVAL_PIECE * m->n_vocab * sizeof(float)) : NULL;
    int32_t *window = malloc((size_t)n_ctx * sizeof(int32_t));
    if (!c || !adapted || !logits || !window) {
        cli_error("%s", c && adapted ? "out of memory" : lmz_last_error());
        lmz_ctx_free(c);
        lmz_lora_free(lora);
        free(logits);
        free(window);
        return -1;
    }
    int32_t start = lmz_start_token(tok);
    bool progress = isatty(2);
    double t0 = now_seconds();
    for (size_t base = 0; base < n; base += (size_t)n_ctx - 1) {
        size_t len = n - base < (size_t)n_ctx - 1 ? n - base : (size_t)n_ctx - 1;
        window[0] = start;
        memcpy(window + 1, ids + base, len * sizeof(int32_t));
        lmz_ctx_reset_seq(c, 0);
        /* positions 0..len-1 of the window predict ids[base + 0 .. base + len - 1] */
        for (size_t p = 0; p < len; p += EVAL_PIECE) {
            int k = (int)(len - p < EVAL_PIECE ? len - p : EVAL_PIECE);
            if (lmz_eval(c, 0, window + p, k, (int)p, logits)) {
                cli_error("%s", lmz_last_error());
                lmz_ctx_free(c);
                lmz_lora_free(lora);
                free(logits);
                free(window);
                return -1;
            }
            for (int j = 0; j < k; j++)
                visit(state, base + p + (size_t)j, logits + (size_t)j * m->n_vocab, ids[base + p + (size_t)j]);
            if (progress) {
                size_t done = base + p + (size_t)k;
                double el = now_seconds() - t0;
                fprintf(stderr, "\r%zu/%zu tokens, %.1f tokens/s   ", done, n, (double)done / (el > 0 ? el : 1));
            }
        }
    }
    if (progress) fputc('\n', stderr);
    lmz_ctx_free(c);
    lmz_lora_free(lora);
    free(logits);
    free(window);
    return 0;
}

typedef struct {
    const lmz_tokenizer *tok;
    int n_vocab, top_k;
    lmz_sha256 hash;
    int32_t *order;
} logits_state;

static void visit_logits(void *p, size_t index, const float *logits, int32_t actual) {
    logits_state *s = p;
    lmz_sha256_update(&s->hash, logits, (size_t)s->n_vocab * sizeof(float));
    printf("%zu\t", index);
    print_piece(s->tok, actual);
    printf("\t%.3f bits\t", lmz_token_bits(logits, s->n_vocab, actual));
    /* top-k by repeated selection: k is small */
    for (int k = 0; k < s->top_k; k++) {
        int32_t best = -1;
        for (int32_t v = 0; v < s->n_vocab; v++) {
            bool taken = false;
            for (int j = 0; j < k && !taken; j++) taken = s->order[j] == v;
            if (!taken && (best < 0 || logits[v] > logits[best])) best = v;
        }
        s->order[k] = best;
        printf(" %d:", best);
        print_piece(s->tok, best);
        printf("=%.3f", logits[best]);
    }
    putchar('\n');
}

int cmd_logits(int argc, char **argv) {
    static const char usage[] =
        "usage: lmz logits [-m MODEL] [--lora ADAPTER] [-k K] [-T N] [--ctx N] [--isa I] [FILE | --text TEXT]\n"
        "  For every token of the text: its position, bytes, code length in bits under the\n"
        "  model, and the model's top-K predictions (id:'piece'=logit) for that position.\n"
        "  The first token is predicted from the start token alone; --lora applies an adapter\n"
        "  (llama.cpp GGUF LoRA for the model). The last line is the\n"
        "  SHA-256 of all logits (float32, little-endian): equal on every machine, thread\n"
        "  count and ISA.\n";
    cli_opts o;
    lmz_model *m;
    lmz_tokenizer *tok;
    int32_t *ids;
    size_t n, bytes;
    int rc = load_and_tokenize(argc, argv, usage, &o, &m, &tok, &ids, &n, &bytes);
    if (rc) return rc;
    logits_state s = {tok, m->n_vocab, o.top_k, {{0}, 0, {0}, 0}, malloc((size_t)o.top_k * sizeof(int32_t))};
    lmz_sha256_init(&s.hash);
    rc = s.order ? run_windows(m, tok, &o, ids, n, visit_logits, &s) : -1;
    if (!rc) {
        uint8_t digest[32];
        char hex[65];
        lmz_sha256_final(&s.hash, digest);
        lmz_sha256_hex(digest, hex);
        printf("logits sha256 %s\n", hex);
    }
    free(s.order);
    free(ids);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    return rc ? 1 : 0;
}

typedef struct {
    int n_vocab;
    double bits;
} perplexity_state;

static void visit_bits(void *p, size_t index, const float *logits, int32_t actual) {
    (void)index;
    perplexity_state *s = p;
    s->bits += lmz_token_bits(logits, s->n_vocab, actual);
}

int cmd_perplexity(int argc, char **argv) {
    static const char usage[] =
        "usage: lmz perplexity [-m MODEL] [--lora ADAPTER] [-T N] [--ctx N] [FILE | --text TEXT]\n"
        "  Code length of the text under the model: bits per token and per byte. This is the\n"
        "  ideal size of a lossless archive made with the same model and context size. The text\n"
        "  is scored in independent windows of --ctx positions (default 2048), each starting\n"
        "  from the start token. --lora applies an adapter (llama.cpp GGUF LoRA for the model).\n";
    cli_opts o;
    lmz_model *m;
    lmz_tokenizer *tok;
    int32_t *ids;
    size_t n, bytes;
    int rc = load_and_tokenize(argc, argv, usage, &o, &m, &tok, &ids, &n, &bytes);
    if (rc) return rc;
    perplexity_state s = {m->n_vocab, 0.0};
    double t0 = now_seconds();
    rc = run_windows(m, tok, &o, ids, n, visit_bits, &s);
    double el = now_seconds() - t0;
    if (!rc) {
        printf("file          %s\n", o.text ? "(text)" : o.file ? o.file : "(stdin)");
        printf("model         %s\n", m->name);
        if (o.lora_path) printf("adapter       %s\n", o.lora_path);
        printf("bytes         %zu\n", bytes);
        printf("tokens        %zu\n", n);
        printf("bits          %.0f\n", s.bits);
        printf("bits/token    %.4f\n", n ? s.bits / (double)n : 0.0);
        printf("bits/byte     %.4f\n", bytes ? s.bits / (double)bytes : 0.0);
        printf("ideal size    %.0f bytes (%.2f%% of the input)\n", s.bits / 8, bytes ? 100.0 * s.bits / 8 / (double)bytes : 0.0);
        printf("speed         %.1f tokens/s (%d threads, context %d)\n", el > 0 ? (double)n / el : 0.0, o.threads, o.n_ctx);
    }
    free(ids);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    return rc ? 1 : 0;
}
