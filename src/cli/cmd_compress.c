/* cmd_compress.c — `lmz [options] FILE...`: compress, decompress (-d), test (-t) and list (-l),
 * in the conventions of zstd and xz. Output goes to a temporary file that is renamed into
 * place only after success, so a failure never leaves a partial file or touches the input. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../codec/adapter_choice.h"
#include "../codec/codec.h"
#include "../lossy/lossy.h"
#include "../net/http.h"
#include "../model/fingerprint.h"
#include "../util/error.h"
#include "cli.h"

static const char usage[] =
    "usage: lmz [options] [FILE...]\n"
    "  Compresses each FILE to FILE.lmz (keeping FILE), or with -d decompresses FILE.lmz to FILE.\n"
    "  With no FILE, or FILE '-', reads standard input and writes standard output.\n"
    "  Short options combine: -dc is -d -c, -T4 is -T 4.\n"
    "\n"
    "  -d, --decompress   decompress\n"
    "  -t, --test         decompress in memory and verify every checksum; write nothing\n"
    "  -l, --list         show sizes, ratio, bits/byte, model and chunks of archives\n"
    "  -c, --stdout       write to standard output\n"
    "  -o FILE            write to FILE (one input only)\n"
    "  -f, --force        overwrite existing output files\n"
    "  --rm               remove each input once its output file is complete (not with -c)\n"
    "  -k, --keep         keep inputs (the default)\n"
    "  -m MODEL           GGUF file, or a fetched model's name: smollm2, gemma3, qwen25coder,\n"
    "                     qwen25coder05b (default: SmolLM2-135M-Instruct; $LMZ_MODEL overrides);\n"
    "                     decompression needs the model the archive was made with, and\n"
    "                     without -m takes it from the (first) archive when lmz knows it\n"
    "  --context FILE     condition on FILE's text, which the receiver also has (not stored)\n"
    "  --prompt TEXT      the same with TEXT, e.g. the prompt a response answers\n"
    "  --lora FILE        apply the LoRA adapter FILE (llama.cpp GGUF adapter for the model);\n"
    "                     decompression needs the same adapter file\n"
    "  --lora-dir DIR     choose for each input the adapter of DIR (*.gguf for the model), or\n"
    "                     none, that codes its first 2 KiB smallest; the archive records the\n"
    "                     choice, and -d/-t with --lora-dir find that adapter in their DIR\n"
    "  -T N               threads (default 2); the archive is identical for any N\n"
    "  --chunk BYTES      input bytes per independent chunk (default 4096)\n"
    "  -v, --verbose      print statistics;  -q, --quiet: print nothing but errors\n"
    "\n"
    "  Lossy compression by succinct rewrite:\n"
    "  --lossy            compress a rewrite of the input instead of the input: the rewriter\n"
    "                     model is asked to restate it as succinctly as it can while keeping\n"
    "                     what a reader needs (for a solution: its reasoning steps and final\n"
    "                     answer); each rewrite is coded with the archive's model (-m, and\n"
    "                     --prompt/--context as for the input) and the smallest kept; -d gives\n"
    "                     back that rewrite, -l shows the archive as lossy. When no rewrite\n"
    "                     codes smaller than the input, the input is compressed losslessly\n"
    "                     instead (and lmz says so)\n"
    "  --rewriter MODEL   a local instruct GGUF file or fetched model's name (default\n"
    "                     qwen25coder: Qwen2.5-Coder-1.5B-Instruct), rewriting greedily for\n"
    "                     --best-of 1 and sampling (temperature 0.7, top-k 40, top-p 0.95,\n"
    "                     seeds from --seed) otherwise; a rewrite has at most as many tokens\n"
    "                     as the input, and at least 64\n"
    "  --rewriter http://HOST:PORT/v1/chat/completions\n"
    "                     an OpenAI-compatible endpoint instead, asked once with \"n\": N and\n"
    "                     max_tokens = the input's tokens (at least 64), temperature 0 for\n"
    "                     --best-of 1, else 0.7 with top_p 0.95 and \"seed\"; plain HTTP only\n"
    "                     (no TLS: for https, run a local proxy and give its http:// address);\n"
    "                     the key comes from $LMZ_REWRITER_KEY, else $OPENAI_API_KEY\n"
    "                     (Authorization: Bearer), none if neither is set\n"
    "  --rewriter-model NAME   the endpoint's model (the request's \"model\"; default: none sent)\n"
    "  --rewriter-timeout S    seconds for the whole exchange with the endpoint (default 300)\n"
    "  --best-of N        make N rewrites as one batch and keep the one that codes smallest\n"
    "                     (default 1; ties: the first)\n"
    "  --seed S           base seed of sampled rewrites (default 0); same seed, same rewrites\n"
    "  --rewrite-prompt FILE  the instruction to send instead of the default (lmz --help-lossy\n"
    "                     prints it); the rewriter gets the instruction, then\n"
    "                     \"\\n\\nThe text answers this prompt:\\n\" and the --prompt/--context text\n"
    "                     when given, then \"\\n\\nText to rewrite:\\n\" and the input\n"
    "  -h, --help         this help;  --help-lossy: the default rewrite instruction\n"
    "\n"
    "  Other commands: lmz model info, lmz tokenize, lmz logits, lmz perplexity, lmz generate,\n"
    "  lmz speed (see `lmz help`).\n";

enum mode { MODE_COMPRESS, MODE_DECOMPRESS, MODE_TEST, MODE_LIST };

typedef struct {
    enum mode mode;
    bool to_stdout, force, rm, verbose, quiet;
    const char *out_path, *model_path, *context_path, *prompt, *lora_path, *lora_dir;
    int threads, chunk_bytes;
    bool lossy;
    const char *rewriter, *rewrite_prompt_path, *rewriter_model;
    double rewriter_timeout;
    int best_of;
    uint64_t seed;
    const char **files;
    int n_files;
    char **args; /* argv with bundled short options split (-dc -> -d -c, -T2 -> -T 2) */
} options;

/* ---------------- small I/O helpers ---------------- */

static long read_file_fn(void *ctx, uint8_t *buf, size_t len) {
    FILE *f = ctx;
    size_t got = fread(buf, 1, len, f);
    if (got < len && ferror(f)) return lmz_fail("read error: %s", strerror(errno));
    return (long)got;
}

static int write_file_fn(void *ctx, const uint8_t *data, size_t len) {
    FILE *f = ctx;
    if (len && fwrite(data, 1, len, f) != len)
        return lmz_fail("write error: %s", errno == ENOSPC ? "no space left on the device" : strerror(errno));
    return 0;
}

static int sink_fn(void *ctx, const void *data, size_t len) { return write_file_fn(ctx, data, len); }

/* Whole file (or stdin) in memory: mmap for regular files. */
typedef struct {
    uint8_t *data;
    size_t len;
    bool mapped;
} blob;

static int load_blob(const char *path, blob *b) {
    memset(b, 0, sizeof *b);
    if (path) {
        int fd = open(path, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            if (fd >= 0) close(fd);
            return lmz_fail("%s: %s", path, strerror(errno));
        }
        if (S_ISREG(st.st_mode)) {
            b->len = (size_t)st.st_size;
            if (b->len) {
                void *p = mmap(NULL, b->len, PROT_READ, MAP_PRIVATE, fd, 0);
                if (p == MAP_FAILED) {
                    close(fd);
                    return lmz_fail("%s: cannot map: %s", path, strerror(errno));
                }
                b->data = p;
                b->mapped = true;
            }
            close(fd);
            return 0;
        }
        close(fd);
    }
    FILE *f = path ? fopen(path, "rb") : stdin;
    if (!f) return lmz_fail("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16;
    b->data = malloc(cap);
    for (;;) {
        if (!b->data) return lmz_fail("out of memory reading %s", path ? path : "standard input");
        size_t got = fread(b->data + b->len, 1, cap - b->len, f);
        b->len += got;
        if (b->len < cap) break;
        cap *= 2;
        uint8_t *nb = realloc(b->data, cap);
        if (!nb) free(b->data);
        b->data = nb;
    }
    int err = ferror(f);
    if (path) fclose(f);
    if (err) return lmz_fail("read error on %s", path ? path : "standard input");
    return 0;
}

static void free_blob(blob *b) {
    if (b->mapped) munmap(b->data, b->len);
    else free(b->data);
    memset(b, 0, sizeof *b);
}

/* An output file created as a temporary beside its final name. */
typedef struct {
    FILE *f;
    char final_path[4096], tmp_path[4200];
    bool is_stdout;
} output;

static int open_output(const options *o, const char *final_path, output *out) {
    memset(out, 0, sizeof *out);
    if (!final_path) {
        out->f = stdout;
        out->is_stdout = true;
        return 0;
    }
    snprintf(out->final_path, sizeof out->final_path, "%s", final_path);
    struct stat st;
    if (!o->force && stat(final_path, &st) == 0)
        return lmz_fail("%s already exists; use -f to overwrite it", final_path);
    snprintf(out->tmp_path, sizeof out->tmp_path, "%s.lmz-tmp-XXXXXX", final_path);
    int fd = mkstemp(out->tmp_path);
    if (fd < 0) return lmz_fail("cannot create a file beside %s: %s", final_path, strerror(errno));
    out->f = fdopen(fd, "wb");
    if (!out->f) {
        close(fd);
        remove(out->tmp_path);
        return lmz_fail("cannot open %s: %s", out->tmp_path, strerror(errno));
    }
    return 0;
}

/* Finishes the output: flush, sync, rename into place (or discard it when !ok). */
static int close_output(output *out, bool ok, mode_t mode) {
    if (out->is_stdout) {
        if (fflush(stdout) != 0 && ok) return lmz_fail("write error on standard output: %s", strerror(errno));
        return ok ? 0 : -1;
    }
    bool flushed = fflush(out->f) == 0 && fsync(fileno(out->f)) == 0;
    int saved = errno;
    bool closed = fclose(out->f) == 0;
    if (ok && (!flushed || !closed)) {
        remove(out->tmp_path);
        return lmz_fail("write error on %s: %s", out->final_path,
                        saved == ENOSPC ? "no space left on the device" : strerror(saved));
    }
    if (!ok) {
        remove(out->tmp_path);
        return -1;
    }
    chmod(out->tmp_path, mode & 0777);
    if (rename(out->tmp_path, out->final_path) != 0) {
        remove(out->tmp_path);
        return lmz_fail("cannot rename into %s: %s", out->final_path, strerror(errno));
    }
    return 0;
}

/* ---------------- progress ---------------- */

typedef struct {
    const options *o;
    uint64_t total;       /* input size if known, else 0 */
    double t0;
    bool tty;
} progress_state;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void show_progress(void *p, uint64_t done, const lmz_codec_stats *st) {
    progress_state *ps = p;
    if (!ps->tty || ps->o->quiet) return;
    double el = now_seconds() - ps->t0, speed = el > 0 ? (double)done / el : 0;
    fprintf(stderr, "\r%8.1f KiB", (double)done / 1024);
    if (ps->o->mode == MODE_COMPRESS && st->input_bytes)
        fprintf(stderr, "  %.3f bits/byte", 8.0 * (double)st->output_bytes / (double)st->input_bytes);
    fprintf(stderr, "  %.1f KiB/s", speed / 1024);
    if (ps->total && speed > 0 && done < ps->total) {
        double eta = (double)(ps->total - done) / speed;
        fprintf(stderr, "  ETA %d:%02d", (int)eta / 60, (int)eta % 60);
    }
    fprintf(stderr, "   ");
}

/* ---------------- model ---------------- */

typedef struct {
    lmz_model *model;
    lmz_tokenizer *tok;
    uint8_t sha[32];
    lmz_lora *lora;  /* --lora, or NULL */
    lmz_adapter_set candidates; /* --lora-dir when compressing: every adapter of the folder */
} loaded_model;

static void note_skipped(void *ctx, const char *path, const char *why) {
    const options *o = ctx;
    if (o->verbose) fprintf(stderr, "lmz: --lora-dir: skipping %s: %s\n", path, why);
}

static int load_model(const options *o, loaded_model *lm) {
    cli_opts co = {0};
    co.model_path = o->model_path;
    if (cli_load(&co, &lm->model, &lm->tok)) return -1;
    lmz_model_fingerprint(lm->model, lm->sha);
    if (o->lora_path && !(lm->lora = lmz_lora_load(o->lora_path, lm->model))) return -1;
    if (o->lora_dir && o->mode == MODE_COMPRESS &&
        lmz_adapter_set_load(&lm->candidates, o->lora_dir, lm->model, NULL, note_skipped, (void *)o))
        return -1;
    return 0;
}

static void unload_model(loaded_model *lm) {
    lmz_adapter_set_free(&lm->candidates);
    lmz_lora_free(lm->lora);
    lmz_tokenizer_free(lm->tok);
    lmz_model_free(lm->model);
}

/* The context the coding is conditioned on (--context FILE or --prompt TEXT), or none. */
typedef struct {
    blob file;
    const uint8_t *data; /* NULL: no context */
    size_t len;
} context_text;

static int load_context(const options *o, context_text *ct) {
    memset(ct, 0, sizeof *ct);
    if (o->context_path) {
        if (load_blob(o->context_path, &ct->file)) return -1;
        ct->data = ct->file.data ? ct->file.data : (const uint8_t *)"";
        ct->len = ct->file.len;
    } else if (o->prompt) {
        ct->data = (const uint8_t *)o->prompt;
        ct->len = strlen(o->prompt);
    }
    return 0;
}

static int make_codec(const options *o, const loaded_model *lm, const context_text *ct, lmz_codec *codec) {
    int rc = lmz_codec_init(codec, lm->model, lm->tok, lm->sha, ct->data, ct->len, o->threads, o->chunk_bytes, 0, 0);
    if (rc == 0) rc = lmz_codec_set_lora(codec, lm->lora);
    return rc;
}

/* ---------------- lossy: the rewriter ---------------- */

typedef struct {
    bool remote;      /* o->rewriter is an endpoint's URL */
    lmz_model *model; /* a local rewriter */
    lmz_tokenizer *tok;
    blob instruction_file; /* --rewrite-prompt */
    char *instruction;     /* NUL-terminated */
} rewriter;

/* Loads the instruction and the rewriter; prints what went wrong. */
static int load_rewriter(const options *o, rewriter *rw) {
    memset(rw, 0, sizeof *rw);
    rw->remote = o->rewriter && strstr(o->rewriter, "://");
    if (o->rewrite_prompt_path) {
        blob *f = &rw->instruction_file;
        if (load_blob(o->rewrite_prompt_path, f) || (f->len && memchr(f->data, 0, f->len) &&
                                                      lmz_fail("%s: the rewrite instruction holds a NUL byte",
                                                               o->rewrite_prompt_path))) {
            cli_error("%s", lmz_last_error());
            return -1;
        }
        if (!(rw->instruction = malloc(f->len + 1))) {
            cli_error("out of memory");
            return -1;
        }
        if (f->len) memcpy(rw->instruction, f->data, f->len);
        rw->instruction[f->len] = 0;
    } else if (!(rw->instruction = strdup(lmz_lossy_default_instruction))) {
        cli_error("out of memory");
        return -1;
    }
    if (rw->remote) {
        lmz_http_url u;
        if (lmz_http_parse_url(o->rewriter, &u) == 0) return 0;
        cli_error("--rewriter %s", lmz_last_error());
        return -1;
    }
    cli_opts co = {0};
    co.model_path = o->rewriter ? o->rewriter : "qwen25coder";
    return cli_load(&co, &rw->model, &rw->tok);
}

static void unload_rewriter(rewriter *rw) {
    lmz_tokenizer_free(rw->tok);
    lmz_model_free(rw->model);
    free(rw->instruction);
    free_blob(&rw->instruction_file);
    memset(rw, 0, sizeof *rw);
}

/* The rewrites from an endpoint (*N: asked for, then received). */
static int rewrite_remote(const options *o, const lmz_codec *codec, const lmz_lossy_request *req, lmz_gen_output *gen,
                          int *n) {
    int32_t *ids;
    size_t n_input;
    if (lmz_tokenize(codec->tok, (const char *)req->input, req->input_len, false, false, &ids, &n_input)) return -1;
    free(ids);
    char *message = lmz_lossy_message(req);
    if (!message) return -1;
    const char *key = getenv("LMZ_REWRITER_KEY");
    if (!key || !*key) key = getenv("OPENAI_API_KEY");
    lmz_lossy_endpoint e = {o->rewriter, o->rewriter_model, key && *key ? key : NULL, o->rewriter_timeout};
    int asked = *n, rc = lmz_lossy_rewrite_remote(&e, message, asked, lmz_lossy_token_limit(n_input), o->seed, gen, n);
    free(message);
    return rc;
}

/* --lossy: the rewrites of INPUT's bytes, the choice among them by coded size, and the
 * chosen archive written to OUT_PATH (NULL: standard output). */
static int compress_lossy(const options *o, lmz_codec *codec, const rewriter *rw, const context_text *ct,
                          const char *input, const char *name, const char *out_path, mode_t mode) {
    blob in;
    if (load_blob(input, &in)) return -1;
    lmz_lossy_request req = {rw->instruction, ct->data, ct->len, in.data ? in.data : (const uint8_t *)"", in.len};
    int n = o->best_of;
    lmz_gen_output *gen = lmz_calloc((size_t)n, sizeof *gen);
    const char **texts = lmz_calloc((size_t)n, sizeof *texts);
    size_t *lens = lmz_calloc((size_t)n, sizeof *lens);
    lmz_lossy_result res = {0};
    double t0 = now_seconds();
    int rc = gen && texts && lens ? 0 : -1;
    if (rc == 0 && rw->remote) {
        rc = rewrite_remote(o, codec, &req, gen, &n);
        if (rc == 0 && n < o->best_of && !o->quiet)
            fprintf(stderr, "lmz: %s: the rewriter returned %d of the %d rewrites asked for; choosing among those\n",
                    name, n, o->best_of);
    } else if (rc == 0) {
        rc = lmz_lossy_rewrite_local(rw->model, rw->tok, &req, n, o->seed, o->threads, gen);
    }
    double t_gen = now_seconds() - t0;
    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            texts[i] = gen[i].text;
            lens[i] = gen[i].len;
        }
        rc = lmz_lossy_choose(codec, req.input, req.input_len, texts, lens, n, &res);
    }
    if (rc == 0) {
        output out;
        rc = open_output(o, out_path, &out);
        if (rc == 0) {
            rc = write_file_fn(out.f, res.archive.data, res.archive.len);
            if (close_output(&out, rc == 0, mode)) rc = -1;
        }
    }
    if (rc == 0 && o->verbose) {
        fprintf(stderr, "%s: %zu bytes; rewritten %d time%s by %s in %.1fs", name, in.len, n, n == 1 ? "" : "s",
                rw->remote ? o->rewriter : rw->model->name, t_gen);
        if (!rw->remote) { /* "+": cut at the token limit */
            fprintf(stderr, " (tokens:");
            for (int i = 0; i < n; i++) fprintf(stderr, " %d%s", gen[i].n_tokens, gen[i].reason == LMZ_STOP_EOG ? "" : "+");
            fprintf(stderr, ")");
        }
        fprintf(stderr, "\n%s: coded sizes: the input %zu bytes; rewrites", name, res.original_bytes);
        for (int i = 0; i < n; i++) {
            if (res.candidate_bytes[i]) fprintf(stderr, "%s #%d %zu", i ? "," : "", i, res.candidate_bytes[i]);
            else fprintf(stderr, "%s #%d empty", i ? "," : "", i);
        }
        if (res.kept >= 0)
            fprintf(stderr, "\n%s: kept rewrite #%d: %zu bytes of text, archive %zu bytes (%.2f%% of the input)\n", name,
                    res.kept, res.kept_len, res.archive.len, in.len ? 100.0 * (double)res.archive.len / (double)in.len : 0.0);
        else fprintf(stderr, "\n");
    }
    if (rc == 0 && res.kept < 0 && !o->quiet)
        fprintf(stderr, "lmz: %s: no rewrite codes smaller than the input (%zu bytes); wrote the input's lossless archive "
                        "instead\n", name, res.original_bytes);
    for (int i = 0; gen && i < o->best_of; i++) lmz_gen_output_free(&gen[i]);
    free(gen);
    free(texts);
    free(lens);
    lmz_lossy_result_free(&res);
    free_blob(&in);
    return rc;
}

/* ---------------- one file ---------------- */

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* The output path for INPUT (NULL input: stdin), or NULL for stdout. */
static int output_path(const options *o, const char *input, char *buf, size_t cap, const char **path) {
    *path = NULL;
    if (o->to_stdout || o->mode == MODE_TEST || o->mode == MODE_LIST) return 0;
    if (o->out_path) {
        *path = strcmp(o->out_path, "-") ? o->out_path : NULL;
        return 0;
    }
    if (!input) return 0;
    if (o->mode == MODE_COMPRESS) {
        if (has_suffix(input, ".lmz")) return lmz_fail("%s already has the .lmz suffix; skipping it (use -c or -o)", input);
        snprintf(buf, cap, "%s.lmz", input);
    } else {
        if (!has_suffix(input, ".lmz")) return lmz_fail("%s: unknown suffix (expected .lmz); use -o or -c", input);
        snprintf(buf, cap, "%.*s", (int)(strlen(input) - 4), input);
    }
    *path = buf;
    return 0;
}

static void print_stats(const options *o, const char *name, const lmz_codec_stats *st, uint64_t in, uint64_t out,
                        double secs) {
    if (o->quiet || (!o->verbose && o->mode != MODE_TEST)) return;
    fprintf(stderr, "%s: %llu -> %llu bytes", name, (unsigned long long)in, (unsigned long long)out);
    if (o->mode == MODE_COMPRESS && in) {
        fprintf(stderr, " (%.2f%%, %.4f bits/byte; ideal %.4f, coding overhead %.3f%%), %llu chunks (%llu stored), "
                        "%llu escapes",
                100.0 * (double)out / (double)in, 8.0 * (double)out / (double)in, st->ideal_bits / (double)in,
                st->ideal_bits > 0 ? 100.0 * (st->coded_bits - st->ideal_bits) / st->ideal_bits : 0.0,
                (unsigned long long)st->chunks, (unsigned long long)st->raw_chunks, (unsigned long long)st->escapes);
    }
    if (o->mode == MODE_TEST) fprintf(stderr, " OK");
    fprintf(stderr, ", %.2fs (%.1f KiB/s)\n", secs, secs > 0 ? (double)(o->mode == MODE_COMPRESS ? in : out) / 1024 / secs : 0);
}

static int list_archive(const options *o, const char *name, const lmz_archive *a) {
    (void)o;
    uint64_t size = a->size, raw = 0;
    for (uint64_t i = 0; i < a->n_chunks; i++) raw += a->chunks[i].meta.token_count == 0;
    char sha[2 * LMZ_ARCHIVE_FP_BYTES + 1];
    for (int i = 0; i < LMZ_ARCHIVE_FP_BYTES; i++) snprintf(sha + 2 * i, 3, "%02x", a->params.model_fp[i]);
    const lmz_known_model *known = lmz_archive_known_model(a->params.model_fp);
    printf("%s\n", name);
    printf("  original      %llu bytes\n", (unsigned long long)a->original_size);
    printf("  compressed    %llu bytes\n", (unsigned long long)size);
    if (a->original_size)
        printf("  ratio         %.2f%% (%.4f bits/byte)\n", 100.0 * (double)size / (double)a->original_size,
               8.0 * (double)size / (double)a->original_size);
    printf("  model         %s (sha256 %s...)\n", known ? known->name : "not one lmz knows by name", sha);
    printf("  chunks        %llu (%llu stored raw), up to %u bytes and %u context tokens each\n",
           (unsigned long long)a->n_chunks, (unsigned long long)raw, a->params.chunk_bytes, a->params.context_tokens);
    if (a->params.flags & LMZ_ARCHIVE_LOSSY) printf("  lossy         holds a rewrite, not the original\n");
    printf("  context       %s\n", a->params.flags & LMZ_ARCHIVE_HAS_CONTEXT ? "yes (must be given to decompress)" : "none");
    if (a->params.flags & LMZ_ARCHIVE_HAS_ADAPTER) {
        for (int i = 0; i < LMZ_ARCHIVE_FP_BYTES; i++) snprintf(sha + 2 * i, 3, "%02x", a->params.adapter_fp[i]);
        printf("  adapter       sha256 %s... (decompressing needs that file: --lora FILE, or --lora-dir DIR holding it)\n", sha);
    } else {
        printf("  adapter       none\n");
    }
    return 0;
}

/* The input: its first bytes, read ahead to choose an adapter (--lora-dir), then the rest. */
typedef struct {
    FILE *f;
    uint8_t head[LMZ_ADAPTER_SAMPLE_BYTES];
    lmz_memory_input ahead; /* over head: the bytes read ahead, served first */
} headed_input;

static long read_headed(void *ctx, uint8_t *buf, size_t len) {
    headed_input *h = ctx;
    if (h->ahead.pos == h->ahead.len) return read_file_fn(h->f, buf, len);
    return lmz_read_memory(&h->ahead, buf, len);
}

/* --lora-dir, compressing: reads the input's first bytes into H and sets the codec's
 * adapter to the candidate that codes them smallest. */
static int choose_adapter(const options *o, lmz_codec *codec, const lmz_adapter_set *candidates, headed_input *h,
                          const char *name) {
    size_t len = 0;
    while (len < sizeof h->head) {
        long got = read_file_fn(h->f, h->head + len, sizeof h->head - len);
        if (got < 0) return -1;
        if (got == 0) break;
        len += (size_t)got;
    }
    h->ahead = (lmz_memory_input){h->head, len, 0};
    double *bits = lmz_malloc((size_t)(candidates->n + 1) * sizeof *bits);
    int chosen;
    if (!bits || lmz_adapter_choose(codec, candidates, h->head, len, &chosen, bits)) {
        free(bits);
        return -1;
    }
    if (o->verbose) {
        fprintf(stderr, "%s: adapter %s, scored on the first %zu bytes (bits/byte:", name,
                chosen < 0 ? "none" : candidates->paths[chosen], len);
        for (int i = -1; i < candidates->n; i++) {
            const char *base = i < 0 ? "none" : strrchr(candidates->paths[i], '/') + 1;
            fprintf(stderr, "%s %s %.4f", i < 0 ? "" : ",", base, len ? bits[i + 1] / (double)len : 0.0);
        }
        fprintf(stderr, ")\n");
    }
    free(bits);
    return 0;
}

/* --lora-dir, decompressing: the adapter archive A names, looked up by its fingerprint in
 * the folder (FOUND keeps it loaded), or none when A was made without one. */
static int find_archive_adapter(const options *o, lmz_codec *codec, const lmz_archive *a, lmz_adapter_set *found) {
    if (!(a->params.flags & LMZ_ARCHIVE_HAS_ADAPTER)) return lmz_codec_set_lora(codec, NULL);
    if (lmz_adapter_set_load(found, o->lora_dir, codec->model, a->params.adapter_fp, note_skipped, (void *)o))
        return -1;
    return lmz_codec_set_lora(codec, found->adapters[0]);
}

static int process(const options *o, lmz_codec *codec, const lmz_adapter_set *candidates, const rewriter *rw,
                   const context_text *ct, const char *input) {
    const char *name = input ? input : "(stdin)";
    char buf[4096];
    const char *out_path;
    if (output_path(o, input, buf, sizeof buf, &out_path)) return -1;
    struct stat in_st = {0};
    if (input && stat(input, &in_st) != 0) return lmz_fail("%s: %s", input, strerror(errno));
    if (input && S_ISDIR(in_st.st_mode)) return lmz_fail("%s is a directory", input);
    if (out_path && input && !strcmp(out_path, input)) return lmz_fail("%s: output would overwrite the input", input);
    double t0 = now_seconds();
    progress_state ps = {o, input && S_ISREG(in_st.st_mode) ? (uint64_t)in_st.st_size : 0, t0, isatty(2) != 0};
    lmz_codec_stats st;
    int rc;
    if (o->mode == MODE_COMPRESS && o->lossy) {
        if (compress_lossy(o, codec, rw, ct, input, name, out_path, in_st.st_mode ? in_st.st_mode : 0644)) return -1;
    } else if (o->mode == MODE_COMPRESS) {
        FILE *in = input ? fopen(input, "rb") : stdin;
        if (!in) return lmz_fail("%s: %s", input, strerror(errno));
        output out;
        if (open_output(o, out_path, &out)) {
            if (input) fclose(in);
            return -1;
        }
        headed_input head = {.f = in};
        rc = o->lora_dir ? choose_adapter(o, codec, candidates, &head, name) : 0;
        if (rc == 0) rc = lmz_compress(codec, read_headed, &head, sink_fn, out.f, &st, show_progress, &ps);
        if (input) fclose(in);
        if (ps.tty && !o->quiet) fputc('\r', stderr);
        if (close_output(&out, rc == 0, in_st.st_mode ? in_st.st_mode : 0644)) return -1;
        print_stats(o, name, &st, st.input_bytes, st.output_bytes, now_seconds() - t0);
    } else {
        blob b;
        if (load_blob(input, &b)) return -1;
        lmz_archive a;
        if (lmz_archive_open(&a, b.data, b.len)) {
            lmz_fail("%s: %s", name, lmz_last_error());
            free_blob(&b);
            return -1;
        }
        if (o->mode == MODE_DECOMPRESS && (a.params.flags & LMZ_ARCHIVE_LOSSY) && !o->quiet)
            fprintf(stderr, "lmz: %s is lossy: it gives back a rewrite of what was compressed, not the original\n",
                    name);
        if (o->mode == MODE_LIST) {
            rc = list_archive(o, name, &a);
        } else {
            output out = {0};
            if (o->mode == MODE_DECOMPRESS && open_output(o, out_path, &out)) {
                lmz_archive_close(&a);
                free_blob(&b);
                return -1;
            }
            ps.total = a.original_size;
            lmz_adapter_set found = {0};
            rc = o->lora_dir ? find_archive_adapter(o, codec, &a, &found) : 0;
            if (rc == 0)
                rc = lmz_decompress(codec, &a, o->mode == MODE_TEST ? NULL : write_file_fn, out.f, &st, show_progress,
                                    &ps);
            if (rc) lmz_fail("%s: %s", name, lmz_last_error());
            if (o->lora_dir) lmz_codec_set_lora(codec, NULL);
            lmz_adapter_set_free(&found);
            if (ps.tty && !o->quiet) fputc('\r', stderr);
            if (o->mode == MODE_DECOMPRESS && close_output(&out, rc == 0, in_st.st_mode ? in_st.st_mode : 0644)) rc = -1;
            if (!rc) print_stats(o, name, &st, b.len, st.output_bytes, now_seconds() - t0);
        }
        lmz_archive_close(&a);
        free_blob(&b);
        if (rc) return -1;
    }
    /* Only when the output is a file (so never with -t or -l): with -c, as in gzip, xz and
     * zstd, the input stays, since a pipe's reader may still fail after lmz succeeded. */
    if (o->rm && input && out_path && remove(input) != 0)
        return lmz_fail("%s: processed, but cannot remove it: %s", input, strerror(errno));
    return 0;
}

/* ---------------- options ---------------- */

static bool takes_value(const char *a) {
    static const char *const with_value[] = {"-o", "-m", "-T", "--context", "--prompt", "--chunk", "--lora",
                                             "--lora-dir", "--rewriter", "--rewrite-prompt", "--best-of", "--seed",
                                             "--rewriter-model", "--rewriter-timeout"};
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
        if (!strcmp(a, with_value[k])) return true;
    return false;
}

/* As in getopt, xz and zstd: "-dcf" is "-d -c -f", and a value option ends a bundle, its
 * value glued ("-T2", "-dcT2") or the next argument ("-dcT 2"). Values and everything after
 * "--" are left alone, so a prompt or file name that starts with '-' stays whole; a bundle
 * with a letter lmz does not know stays whole too, for the parser to name. Returns argv with
 * the bundles split (its strings are argv's or static), or NULL when out of memory. */
static char **split_bundles(int argc, char **argv, int *out_argc) {
    static const char flags[] = "dtlzcfkvqh", valued[] = "Tom";
    static char singles[128][3]; /* "-X" for each letter X */
    size_t cap = 1;
    for (int i = 0; i < argc; i++) cap += strlen(argv[i]) + 1;
    char **out = calloc(cap, sizeof *out);
    if (!out) return NULL;
    int n = 0;
    bool only_files = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        size_t len = strlen(a);
        bool bundle = i > 0 && !only_files && len > 2 && a[0] == '-' && a[1] != '-';
        for (size_t k = 1; bundle && k < len; k++) {
            if (strchr(valued, a[k])) break;
            if (!strchr(flags, a[k])) bundle = false;
        }
        if (!bundle) {
            out[n++] = argv[i];
            if (i > 0 && !only_files && !strcmp(a, "--")) only_files = true;
            else if (i > 0 && !only_files && takes_value(a) && i + 1 < argc) out[n++] = argv[++i];
            continue;
        }
        for (size_t k = 1; k < len; k++) {
            char *single = singles[(unsigned char)a[k]]; /* a letter of FLAGS or VALUED: ASCII */
            single[0] = '-';
            single[1] = a[k];
            out[n++] = single;
            if (strchr(valued, a[k])) {
                if (k + 1 < len) out[n++] = argv[i] + k + 1;
                else if (i + 1 < argc) out[n++] = argv[++i];
                break;
            }
        }
    }
    *out_argc = n;
    return out;
}

static void options_free(options *o) {
    free(o->files);
    free(o->args);
}

static int parse(int argc_given, char **argv_given, options *o) {
    memset(o, 0, sizeof *o);
    int argc;
    char **argv = o->args = split_bundles(argc_given, argv_given, &argc);
    if (!argv) {
        cli_error("out of memory");
        return -1;
    }
    o->threads = 2;
    o->best_of = 1;
    o->rewriter_timeout = LMZ_LOSSY_DEFAULT_TIMEOUT_S;
    o->files = calloc((size_t)argc, sizeof *o->files);
    if (!o->files) return -1;
    bool only_files = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_files || a[0] != '-' || !strcmp(a, "-")) {
            o->files[o->n_files++] = a;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (takes_value(a) && !v) {
            cli_error("option %s needs a value (see lmz --help)", a);
            return -1;
        }
        if (!strcmp(a, "--")) only_files = true;
        else if (!strcmp(a, "-d") || !strcmp(a, "--decompress")) o->mode = MODE_DECOMPRESS;
        else if (!strcmp(a, "-t") || !strcmp(a, "--test")) o->mode = MODE_TEST;
        else if (!strcmp(a, "-l") || !strcmp(a, "--list")) o->mode = MODE_LIST;
        else if (!strcmp(a, "-z") || !strcmp(a, "--compress")) o->mode = MODE_COMPRESS;
        else if (!strcmp(a, "-c") || !strcmp(a, "--stdout")) o->to_stdout = true;
        else if (!strcmp(a, "-f") || !strcmp(a, "--force")) o->force = true;
        else if (!strcmp(a, "--rm")) o->rm = true;
        else if (!strcmp(a, "-k") || !strcmp(a, "--keep")) o->rm = false;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = true;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(a, "--help-lossy")) {
            printf("%s\n", lmz_lossy_default_instruction);
            exit(0);
        } else if (!strcmp(a, "-o")) o->out_path = argv[++i];
        else if (!strcmp(a, "-m")) o->model_path = argv[++i];
        else if (!strcmp(a, "--context")) o->context_path = argv[++i];
        else if (!strcmp(a, "--prompt")) o->prompt = argv[++i];
        else if (!strcmp(a, "--lora")) o->lora_path = argv[++i];
        else if (!strcmp(a, "--lora-dir")) o->lora_dir = argv[++i];
        else if (!strcmp(a, "--lossy")) o->lossy = true;
        else if (!strcmp(a, "--rewriter")) o->rewriter = argv[++i];
        else if (!strcmp(a, "--rewrite-prompt")) o->rewrite_prompt_path = argv[++i];
        else if (!strcmp(a, "--rewriter-model")) o->rewriter_model = argv[++i];
        else if (!strcmp(a, "--rewriter-timeout")) {
            char *end;
            errno = 0;
            double t = strtod(argv[++i], &end);
            if (errno || *end || end == argv[i] || !(t > 0 && t <= 86400)) {
                cli_error("--rewriter-timeout wants seconds, more than 0 and at most 86400, not '%s'", argv[i]);
                return -1;
            }
            o->rewriter_timeout = t;
        }
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || argv[i][0] == '-') {
                cli_error("--seed wants a number from 0 to %llu, not '%s'", (unsigned long long)UINT64_MAX, argv[i]);
                return -1;
            }
            o->seed = v;
        } else if (!strcmp(a, "--best-of")) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || n < 1 || n > LMZ_LOSSY_MAX_CANDIDATES) {
                cli_error("--best-of wants a number from 1 to %d, not '%s'", LMZ_LOSSY_MAX_CANDIDATES, argv[i]);
                return -1;
            }
            o->best_of = (int)n;
        }
        else if (!strcmp(a, "-T") || !strcmp(a, "--chunk")) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            bool threads = !strcmp(a, "-T");
            if (*end || end == argv[i] || n < 1 || n > (threads ? 256 : (1 << 24))) {
                cli_error("%s wants a number from 1 to %d, not '%s'", a, threads ? 256 : 1 << 24, argv[i]);
                return -1;
            }
            if (threads) o->threads = (int)n;
            else o->chunk_bytes = (int)n;
        } else {
            cli_error("unknown option %s (see lmz --help)", a);
            return -1;
        }
    }
    if (o->context_path && o->prompt) {
        cli_error("give --context or --prompt, not both");
        return -1;
    }
    if (o->lora_path && o->lora_dir) {
        cli_error("give --lora or --lora-dir, not both");
        return -1;
    }
    bool lossy_only = o->rewriter || o->rewrite_prompt_path || o->best_of != 1 || o->seed || o->rewriter_model ||
                      o->rewriter_timeout != LMZ_LOSSY_DEFAULT_TIMEOUT_S;
    if (lossy_only && !o->lossy) {
        cli_error("--rewriter, --rewriter-model, --rewriter-timeout, --rewrite-prompt, --best-of and --seed go with "
                  "--lossy");
        return -1;
    }
    bool remote = o->rewriter && strstr(o->rewriter, "://");
    if (!remote && (o->rewriter_model || o->rewriter_timeout != LMZ_LOSSY_DEFAULT_TIMEOUT_S)) {
        cli_error("--rewriter-model and --rewriter-timeout are for an endpoint (--rewriter http://...)");
        return -1;
    }
    if (o->lossy && o->mode != MODE_COMPRESS) {
        cli_error("--lossy compresses; -d, -t and -l read a lossy archive like any other, without it");
        return -1;
    }
    if (o->lossy && o->lora_dir) {
        cli_error("--lossy does not choose adapters: give the coder's adapter with --lora FILE");
        return -1;
    }
    if (o->out_path && o->n_files > 1) {
        cli_error("-o takes one input file, not %d", o->n_files);
        return -1;
    }
    return 0;
}

/* Decompressing or testing without -m (and without $LMZ_MODEL): the model that the first
 * archive names, when lmz knows it by fingerprint, rather than the default, so that
 * `lmz -d x.lmz` works for an archive made with `-m gemma3`. NULL: keep the default. */
static const char *model_named_by_archive(const options *o) {
    if (o->model_path || getenv("LMZ_MODEL") || (o->mode != MODE_DECOMPRESS && o->mode != MODE_TEST) ||
        !strcmp(o->files[0], "-"))
        return NULL;
    uint8_t head[256];
    FILE *f = fopen(o->files[0], "rb");
    if (!f) return NULL; /* processing the file reports why */
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    lmz_archive_params p;
    if (lmz_archive_read_header(&p, head, n)) return NULL;
    const lmz_known_model *known = lmz_archive_known_model(p.model_fp);
    return known ? known->fetch_name : NULL;
}

int cmd_compress(int argc, char **argv) {
    options o;
    if (parse(argc, argv, &o)) {
        options_free(&o);
        return 2;
    }
    if (o.n_files == 0) o.files[o.n_files++] = "-";
    for (int i = 0; i < o.n_files; i++) {
        bool is_stdin = !strcmp(o.files[i], "-");
        if (is_stdin && o.mode == MODE_COMPRESS && !o.out_path && isatty(1) && !o.to_stdout) {
            cli_error("refusing to write compressed data to a terminal (use -o FILE or redirect)");
            options_free(&o);
            return 1;
        }
    }
    if (!o.model_path) o.model_path = model_named_by_archive(&o);
    loaded_model lm = {0};
    lmz_codec codec = {0};
    context_text ct = {0};
    rewriter rw = {0};
    bool need_model = o.mode != MODE_LIST;
    bool failed = need_model && (load_model(&o, &lm) || load_context(&o, &ct) || make_codec(&o, &lm, &ct, &codec));
    if (failed && lm.model) cli_error("%s", lmz_last_error()); /* a failed model load has said why */
    if (!failed && o.lossy) failed = load_rewriter(&o, &rw) != 0;
    if (failed) {
        unload_rewriter(&rw);
        lmz_codec_free(&codec);
        free_blob(&ct.file);
        unload_model(&lm);
        options_free(&o);
        return 1;
    }
    int failures = 0;
    for (int i = 0; i < o.n_files; i++) {
        const char *input = strcmp(o.files[i], "-") ? o.files[i] : NULL;
        lmz_clear_error();
        if (process(&o, &codec, &lm.candidates, &rw, &ct, input)) {
            cli_error("%s", lmz_last_error());
            failures++;
        }
    }
    unload_rewriter(&rw);
    lmz_codec_free(&codec);
    free_blob(&ct.file);
    unload_model(&lm);
    options_free(&o);
    return failures ? 1 : 0;
}
