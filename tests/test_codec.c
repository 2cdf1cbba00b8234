/* test_codec.c — the compressor is lossless: lmz_compress then lmz_decompress (in memory)
 * gives back every input byte for byte — every file under ../shared/data and generated
 * edge cases (empty, single bytes, all byte values, random bytes, long runs, invalid UTF-8,
 * CRLF, special-token text, inputs of many chunks and longer than the model's context,
 * chunk boundaries inside characters, short reads, a context); the archive does not depend
 * on the thread count, the group size or how the input arrives; and with the real default
 * model, English LLM text compresses to well under a quarter of its size.
 *
 * Most cases use the tiny model (tests/tiny_model.h): the real model codes ~1-2 KB/s on
 * this project's 2-core machine, and losslessness does not depend on model quality. Even
 * the tiny model codes only a few KB/s (the softmax over 49,152 tokens is a per-token
 * floor), and a chunk is coded before the codec knows it will be stored raw, so by default
 * each data file is sampled (its head, a piece of its middle, its tail) and the large
 * generated cases are scaled down. LMZ_TEST_FULL=1 round-trips every data file whole and
 * the generated cases at full size (10 MB random, 1 MB runs): hours on this machine. */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../src/codec/codec.h"
#include "../src/codec/symbols.h"
#include "../src/coder/bytebuf.h"
#include "../src/model/fingerprint.h"
#include "../src/util/error.h"
#include "../src/util/sha256.h"
#include "model_fixture.h"
#include "test.h"
#include "tiny_model.h"

/* Sampled mode: a data file's head, a piece from its middle (from an odd offset, which in
 * UTF-8 text often falls inside a character) and its tail, coded in chunks of SAMPLE_CHUNK
 * bytes so that every sample spans several chunks. */
#define SAMPLE_HEAD 1024
#define SAMPLE_MID 512
#define SAMPLE_TAIL 512
#define SAMPLE_CHUNK 700
/* Threads for the bulk round trips. One: with the tiny model's small matrices, two threads
 * on this 2-core machine cost four times the CPU time of one (pool hand-offs per op). */
#define BULK_THREADS 1

static bool full_mode(void) {
    const char *e = getenv("LMZ_TEST_FULL");
    return e && *e && strcmp(e, "0") != 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---------------- in-memory I/O ---------------- */

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    size_t max_read; /* most bytes one call returns (0: as many as asked): short reads */
} mem_reader;

static long mem_read(void *ctx, uint8_t *buf, size_t len) {
    mem_reader *r = ctx;
    size_t n = r->len - r->pos;
    if (n > len) n = len;
    if (r->max_read && n > r->max_read) n = r->max_read;
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return (long)n;
}

/* ---------------- round trips ---------------- */

/* A model and the codec settings of one round trip (0 = the codec's defaults). */
typedef struct {
    const lmz_model *model;
    const lmz_tokenizer *tok;
    const uint8_t *sha;
    const uint8_t *context;
    size_t context_len;
    int chunk_bytes, chunk_tokens, group;
    size_t kv_budget_bytes; /* 0: the codec's */
    size_t max_read;
} setup;

/* The tiny model with default settings; false after a test failure. */
static bool tiny_setup(setup *s) {
    memset(s, 0, sizeof *s);
    s->model = tiny_model();
    s->tok = tiny_tokenizer();
    s->sha = tiny_model_sha256();
    return s->model && s->tok && s->sha;
}

static int compress_to(const setup *s, int threads, const char *label, const uint8_t *in, size_t len,
                       lmz_bytebuf *archive, lmz_codec_stats *st) {
    lmz_codec c;
    if (lmz_codec_init(&c, s->model, s->tok, s->sha, s->context, s->context_len, threads, s->chunk_bytes,
                       s->chunk_tokens, s->group)) {
        test_fail(__FILE__, __LINE__, "%s: codec setup: %s", label, lmz_last_error());
        lmz_codec_free(&c);
        return -1;
    }
    if (s->kv_budget_bytes) c.kv_budget_bytes = s->kv_budget_bytes;
    archive->len = 0;
    mem_reader r = {in, len, 0, s->max_read};
    int rc = lmz_compress(&c, mem_read, &r, lmz_sink_to_bytebuf, archive, st, NULL, NULL);
    if (rc) test_fail(__FILE__, __LINE__, "%s: compressing (%d threads): %s", label, threads, lmz_last_error());
    else if (st->input_bytes != len || st->output_bytes != archive->len)
        test_fail(__FILE__, __LINE__, "%s: statistics say %llu -> %llu bytes, but %zu -> %zu were coded", label,
                  (unsigned long long)st->input_bytes, (unsigned long long)st->output_bytes, len, archive->len),
            rc = -1;
    lmz_codec_free(&c);
    return rc;
}

/* ST (optional) receives the decompressor's statistics. */
static int decompress_to(const setup *s, int threads, const char *label, const lmz_bytebuf *archive,
                         lmz_bytebuf *out, lmz_codec_stats *stats) {
    lmz_archive a;
    if (lmz_archive_open(&a, archive->data, archive->len)) {
        test_fail(__FILE__, __LINE__, "%s: opening the archive: %s", label, lmz_last_error());
        return -1;
    }
    lmz_codec c;
    lmz_codec_stats own, *st = stats ? stats : &own;
    int rc = lmz_codec_init(&c, s->model, s->tok, s->sha, s->context, s->context_len, threads, s->chunk_bytes,
                            s->chunk_tokens, s->group);
    if (s->kv_budget_bytes) c.decode_kv_budget_bytes = s->kv_budget_bytes;
    out->len = 0;
    if (!rc) rc = lmz_decompress(&c, &a, lmz_write_to_bytebuf, out, st, NULL, NULL);
    if (rc) test_fail(__FILE__, __LINE__, "%s: decompressing (%d threads): %s", label, threads, lmz_last_error());
    lmz_codec_free(&c);
    lmz_archive_close(&a);
    return rc;
}

static bool same_bytes(const char *label, const uint8_t *want, size_t want_len, const lmz_bytebuf *got) {
    size_t i = 0;
    while (i < want_len && i < got->len && want[i] == got->data[i]) i++;
    if (i == want_len && got->len == want_len) return true;
    test_fail(__FILE__, __LINE__, "%s: the output (%zu bytes) differs from the input (%zu bytes) from byte %zu", label,
              got->len, want_len, i);
    return false;
}

typedef struct {
    size_t archive_bytes;
    uint64_t chunks, raw_chunks;
    uint8_t archive_sha[32];
} trip;

static void sha256_of(const void *data, size_t len, uint8_t out[32]) {
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, data, len);
    lmz_sha256_final(&h, out);
}

/* Compresses IN with THREADS threads, decompresses it, and checks the bytes; T (optional)
 * receives the archive's size and digest. */
static bool round_trip(const setup *s, int threads, const char *label, const uint8_t *in, size_t len, trip *t) {
    lmz_bytebuf archive = {0}, out = {0};
    lmz_codec_stats st;
    bool ok = compress_to(s, threads, label, in, len, &archive, &st) == 0 &&
              decompress_to(s, threads, label, &archive, &out, NULL) == 0 && same_bytes(label, in, len, &out);
    if (ok && t) {
        t->archive_bytes = archive.len;
        t->chunks = st.chunks;
        t->raw_chunks = st.raw_chunks;
        sha256_of(archive.data, archive.len, t->archive_sha);
    }
    lmz_bytebuf_free(&archive);
    lmz_bytebuf_free(&out);
    return ok;
}

static void print_trip(const char *label, size_t len, const trip *t, double secs) {
    printf("    %-58s %9zu -> %9zu B  %4llu chunks (%llu raw)  %6.2fs\n", label, len, t->archive_bytes,
           (unsigned long long)t->chunks, (unsigned long long)t->raw_chunks, secs);
    fflush(stdout);
}

/* ---------------- the data files ---------------- */

typedef struct {
    char **paths;
    size_t n, cap;
} path_list;

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Appends every regular file under DIR (recursively) to L. */
static bool walk(const char *dir, path_list *l) {
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool ok = true;
    while (ok && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(n);
        if (!path) {
            ok = false;
            break;
        }
        snprintf(path, n, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) {
            free(path);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            ok = walk(path, l);
            free(path);
        } else if (S_ISREG(st.st_mode)) {
            if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 64;
                char **np = realloc(l->paths, cap * sizeof *np);
                if (!np) {
                    free(path);
                    ok = false;
                    break;
                }
                l->paths = np;
                l->cap = cap;
            }
            l->paths[l->n++] = path;
        } else {
            free(path);
        }
    }
    closedir(d);
    return ok;
}

static void free_paths(path_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

/* What is round-tripped of a file: all of it, or in sampled mode its head, middle and
 * tail (a new malloc'd buffer; DATA is then freed). */
static uint8_t *sample_of(uint8_t *data, size_t len, size_t *out_len) {
    if (full_mode() || len <= SAMPLE_HEAD + SAMPLE_MID + SAMPLE_TAIL) {
        *out_len = len;
        return data;
    }
    uint8_t *s = malloc(SAMPLE_HEAD + SAMPLE_MID + SAMPLE_TAIL);
    if (s) {
        size_t mid = (len / 2) | 1;
        memcpy(s, data, SAMPLE_HEAD);
        memcpy(s + SAMPLE_HEAD, data + mid, SAMPLE_MID);
        memcpy(s + SAMPLE_HEAD + SAMPLE_MID, data + len - SAMPLE_TAIL, SAMPLE_TAIL);
    }
    free(data);
    *out_len = SAMPLE_HEAD + SAMPLE_MID + SAMPLE_TAIL;
    return s;
}

TEST(codec_round_trip_data_files) {
    setup s;
    if (!tiny_setup(&s)) return;
    if (!full_mode()) s.chunk_bytes = SAMPLE_CHUNK;
    path_list files = {0};
    CHECKF(walk(test_data_dir(), &files) && files.n > 0, "no files under %s", test_data_dir());
    qsort(files.paths, files.n, sizeof *files.paths, by_string);
    printf("    %s: %zu files, %s\n", test_data_dir(), files.n,
           full_mode() ? "whole" : "sampled (head, middle, tail; LMZ_TEST_FULL=1 for whole files)");
    size_t total_in = 0, total_out = 0, skip = strlen(test_data_dir()) + 1;
    double t_all = now();
    for (size_t i = 0; i < files.n && !test_failed(); i++) {
        size_t len;
        uint8_t *data = (uint8_t *)test_read_file(files.paths[i], &len);
        if (!data) {
            test_fail(__FILE__, __LINE__, "cannot read %s", files.paths[i]);
            break;
        }
        size_t file_len = len;
        data = sample_of(data, file_len, &len);
        if (!data) {
            test_fail(__FILE__, __LINE__, "out of memory");
            break;
        }
        trip t;
        double t0 = now();
        if (round_trip(&s, BULK_THREADS, files.paths[i], data, len, &t)) {
            char label[128];
            snprintf(label, sizeof label, "%s%s", files.paths[i] + skip, len < file_len ? " (sample)" : "");
            print_trip(label, len, &t, now() - t0);
            total_in += len;
            total_out += t.archive_bytes;
        }
        free(data);
    }
    free_paths(&files);
    if (!test_failed())
        printf("    all files: %zu -> %zu bytes in %.1fs\n", total_in, total_out, now() - t_all);
}

/* Every data file, whole, cut into chunks as the codec cuts them by default (4096 bytes,
 * at most 1536 symbols, the rest carried into the next chunk): each chunk's symbols give
 * back its bytes, each symbol stands for at least one byte (the container's rule
 * token_count <= input_bytes), and none is the token that stands for an escape (the
 * decoder would read 8 raw bits after it). No model runs, so this covers every byte the
 * sampled round trips above leave out, in seconds: whether a chunk comes back depends on
 * its bytes only through these symbols. */
TEST(codec_symbols_every_file_whole) {
    setup s;
    if (!tiny_setup(&s)) return;
    lmz_codec c;
    CHECKF(lmz_codec_init(&c, s.model, s.tok, s.sha, NULL, 0, 1, 0, 0, 0) == 0, "%s", lmz_last_error());
    const int32_t escape = c.escape;
    const size_t chunk_bytes = (size_t)c.chunk_bytes, chunk_tokens = (size_t)c.chunk_tokens;
    lmz_codec_free(&c);
    path_list files = {0};
    CHECKF(walk(test_data_dir(), &files) && files.n > 0, "no files under %s", test_data_dir());
    size_t total = 0, symbols = 0, escapes = 0, chunks = 0;
    double t0 = now();
    for (size_t f = 0; f < files.n && !test_failed(); f++) {
        size_t len;
        uint8_t *data = (uint8_t *)test_read_file(files.paths[f], &len);
        if (!data) {
            test_fail(__FILE__, __LINE__, "cannot read %s", files.paths[f]);
            break;
        }
        for (size_t pos = 0; pos < len && !test_failed(); chunks++) {
            size_t n = len - pos < chunk_bytes ? len - pos : chunk_bytes, k, covered = 0;
            int32_t *syms;
            if (lmz_bytes_to_symbols(s.tok, data + pos, n, &syms, &k)) {
                test_fail(__FILE__, __LINE__, "%s: %s", files.paths[f], lmz_last_error());
                break;
            }
            if (k > chunk_tokens) k = chunk_tokens;
            for (size_t i = 0; i < k; i++) {
                uint8_t piece[1024];
                size_t b = lmz_symbol_bytes(s.tok, syms[i], piece, sizeof piece);
                if (b == 0 || b > sizeof piece || covered + b > n || memcmp(piece, data + pos + covered, b) ||
                    syms[i] == escape) {
                    test_fail(__FILE__, __LINE__, "%s, byte %zu: symbol %d (%zu bytes) does not stand for the input",
                              files.paths[f], pos + covered, syms[i], b);
                    break;
                }
                covered += b;
                escapes += lmz_is_escape(syms[i]);
            }
            if (!test_failed() && k < chunk_tokens && covered != n)
                test_fail(__FILE__, __LINE__, "%s, byte %zu: the symbols cover %zu of %zu bytes", files.paths[f], pos,
                          covered, n);
            symbols += k;
            pos += covered;
            free(syms);
        }
        total += len;
        free(data);
    }
    free_paths(&files);
    printf("    %zu files, %zu bytes: %zu chunks, %zu symbols (%zu escaped bytes), %.1fs\n", files.n, total, chunks,
           symbols, escapes, now() - t0);
}

/* ---------------- generated inputs ---------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gen;

static void gen_put(gen *g, const void *data, size_t len) {
    if (g->n + len > g->cap) {
        size_t cap = g->cap ? g->cap : 4096;
        while (cap < g->n + len) cap *= 2;
        uint8_t *np = realloc(g->p, cap);
        if (!np) abort(); /* a test generator out of memory: nothing sensible to report */
        g->p = np;
        g->cap = cap;
    }
    memcpy(g->p + g->n, data, len);
    g->n += len;
}

static void gen_str(gen *g, const char *s) { gen_put(g, s, strlen(s)); }

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static const char *const words[] = {"the", "compressor", "codes", "each", "token", "with", "its", "probability",
                                    "and", "a", "range", "coder", "Ça", "déjà", "vu", "日本語", "テキスト", "🙂",
                                    "naïve", "über", "x = f(y);", "42", "\t", "  "};

/* LEN bytes of word salad, mixing ASCII with 2-, 3- and 4-byte characters. */
static void gen_text(gen *g, size_t len, uint64_t seed) {
    rng_state = seed;
    size_t end = g->n + len;
    while (g->n < end) {
        const char *w = words[rnd() % (sizeof words / sizeof words[0])];
        gen_str(g, w);
        gen_str(g, rnd() % 9 ? " " : ".\n");
    }
    g->n = end; /* cut wherever it falls, perhaps inside a character */
}

/* Text with bytes that do not round-trip through the tokenizer: every kind of invalid
 * UTF-8, the control bytes SmolLM2 has no token for, and a valid code point whose bytes
 * it lacks (U+40000). */
static void gen_invalid_utf8(gen *g, size_t len) {
    static const struct {
        uint8_t b[4];
        size_t n;
    } bad[] = {
        {{0x80}, 1},             {{0xbf}, 1},                   {{0xc0, 0xaf}, 2},             {{0xc1, 0xbf}, 2},
        {{0xe0, 0x80, 0x80}, 3}, {{0xed, 0xa0, 0x80}, 3},       {{0xf4, 0x90, 0x80, 0x80}, 4}, {{0xf5}, 1},
        {{0xfe}, 1},             {{0xff}, 1},                   {{0xc3}, 1},                   {{0xe2, 0x82}, 2},
        {{0xf0, 0x9f, 0x98}, 3}, {{0x04}, 1},                   {{0x06}, 1},                   {{0x13}, 1},
        {{0x1d}, 1},             {{0xf1, 0x80, 0x80, 0x80}, 4}, {{0x00}, 1},                   {{0xc3, 0xa9, 0xa9}, 3},
    };
    rng_state = 7;
    size_t end = g->n + len;
    while (g->n < end) {
        gen_str(g, words[rnd() % (sizeof words / sizeof words[0])]);
        if (rnd() % 3 == 0) {
            size_t k = rnd() % (sizeof bad / sizeof bad[0]);
            gen_put(g, bad[k].b, bad[k].n);
        } else {
            gen_str(g, " ");
        }
    }
    g->n = end;
}

/* One generated case: round trip, and print its line. */
static bool gen_case(const setup *s, const char *label, const uint8_t *in, size_t len) {
    trip t;
    double t0 = now();
    if (!round_trip(s, BULK_THREADS, label, in, len, &t)) return false;
    print_trip(label, len, &t, now() - t0);
    return true;
}

TEST(codec_round_trip_edge_cases) {
    setup s;
    if (!tiny_setup(&s)) return;
    const bool full = full_mode();
    gen g = {0};

    /* Empty: an archive of no chunks. */
    trip t;
    CHECK(round_trip(&s, BULK_THREADS, "empty", (const uint8_t *)"", 0, &t));
    CHECK_EQ_INT(t.chunks, 0);

    static const uint8_t singles[] = {'x', 0x00, 0xff, '\n', 0x80, 0x04};
    for (size_t i = 0; i < sizeof singles; i++) {
        char label[32];
        snprintf(label, sizeof label, "one byte 0x%02x", singles[i]);
        CHECK(gen_case(&s, label, &singles[i], 1));
    }

    uint8_t all[1024];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    CHECK(gen_case(&s, "all 256 byte values, ascending", all, 256));
    for (int i = 0; i < 1024; i++) all[i] = (uint8_t)(255 - i % 256);
    CHECK(gen_case(&s, "all 256 byte values, descending, 4 times", all, 1024));

    size_t n_random = full ? 10u << 20 : 8u << 10;
    uint8_t *random = malloc(n_random);
    CHECK(random);
    rng_state = 12345;
    for (size_t i = 0; i < n_random; i++) random[i] = (uint8_t)(rnd() >> 8);
    bool ok = gen_case(&s, full ? "random bytes, 10 MiB" : "random bytes, 8 KiB", random, n_random);
    free(random);
    CHECK(ok);

    /* Runs: 'a' codes as 4-byte tokens, a zero byte is a token of its own. */
    size_t n_run = full ? 1u << 20 : 8u << 10;
    uint8_t *run = malloc(n_run);
    CHECK(run);
    memset(run, 'a', n_run);
    ok = gen_case(&s, full ? "'a' x 1 MiB" : "'a' x 8 KiB", run, n_run);
    memset(run, 0, n_run);
    if (!full) n_run = 4 << 10;
    ok = ok && gen_case(&s, full ? "zeros x 1 MiB" : "zeros x 4 KiB", run, n_run);
    free(run);
    CHECK(ok);

    g.n = 0;
    gen_invalid_utf8(&g, 6000);
    CHECK(gen_case(&s, "invalid UTF-8 and tokenless bytes within text", g.p, g.n));
    g.n = 0;
    rng_state = 99;
    while (g.n < 4096) { /* mostly bad bytes: the chunks are stored raw */
        static const uint8_t bad[] = {0x80, 0xff, 0xc0, 0xfe, 0x04, 0xf5};
        gen_put(&g, &bad[rnd() % sizeof bad], 1);
        if (rnd() % 4 == 0) gen_str(&g, "ok");
    }
    CHECK(gen_case(&s, "mostly invalid UTF-8", g.p, g.n));

    g.n = 0;
    for (int i = 0; g.n < 4096; i++) {
        char line[96];
        snprintf(line, sizeof line, "line %d: some text, then CRLF%s\r\n", i,
                 i % 7 == 0 ? "\r" : i % 11 == 0 ? "   " : i % 13 == 0 ? "\n\r" : "");
        gen_str(&g, line);
    }
    CHECK(gen_case(&s, "CRLF text (with lone CR, CR CR LF, LF CR)", g.p, g.n));

    /* The text of every special token, whole and cut short, inside plain text: with
     * parse_special off they are plain text, never the control tokens. */
    g.n = 0;
    gen_str(&g, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
                "<|im_start|>assistant\nHello.<|im_end|><|endoftext|><|endoftext|>\n<|im_sta <|endoftext| <|");
    for (int32_t id = 0; id < lmz_tokenizer_n_vocab(s.tok); id++) {
        enum lmz_token_type type = lmz_tokenizer_token_type(s.tok, id);
        if (type != LMZ_TOKEN_CONTROL && type != LMZ_TOKEN_USER_DEFINED && type != LMZ_TOKEN_UNKNOWN) continue;
        size_t tl;
        const char *text = lmz_tokenizer_token_text(s.tok, id, &tl);
        gen_str(&g, " x");
        gen_put(&g, text, tl);
        gen_put(&g, text, tl > 1 ? tl - 1 : tl);
    }
    CHECK(gen_case(&s, "special-token texts", g.p, g.n));

    /* More tokens than the model's context (4096), in chunks of the default size; then
     * chunks cut by the token limit instead (bytes carried over to the next chunk). */
    g.n = 0;
    while (g.n < (17 << 10)) gen_str(&g, "The model predicts each token and the coder spends what it missed. ");
    CHECK(gen_case(&s, "17 KiB of English (> 4096 tokens), default chunks", g.p, g.n));
    setup big = s;
    big.chunk_bytes = 1 << 20;
    big.chunk_tokens = 300;
    g.n = 0;
    gen_text(&g, 5000, 3);
    CHECK(gen_case(&big, "5000 bytes, 1 MiB chunks cut at 300 tokens", g.p, g.n));
    setup tight = s;
    tight.chunk_tokens = 7;
    g.n = 0;
    gen_invalid_utf8(&g, 1500);
    CHECK(gen_case(&tight, "invalid UTF-8, chunks of at most 7 tokens", g.p, g.n));

    /* Chunk boundaries inside multi-byte characters. */
    g.n = 0;
    for (int i = 0; g.n < 6000; i++) gen_str(&g, i % 3 ? "日本語のテキスト🙂" : "é🙂ü");
    setup odd = s;
    odd.chunk_bytes = 1001;
    CHECK(gen_case(&odd, "3- and 4-byte characters, 1001-byte chunks", g.p, g.n));
    g.n = 200;
    for (int cb = 1; cb <= 5; cb++) {
        char label[64];
        snprintf(label, sizeof label, "200 bytes of characters, %d-byte chunks", cb);
        odd.chunk_bytes = cb;
        CHECK(gen_case(&odd, label, g.p, g.n));
    }
    free(g.p);
}

/* The archive depends on the input bytes only, not on how the reader hands them over. */
TEST(codec_short_reads) {
    setup s;
    if (!tiny_setup(&s)) return;
    gen g = {0};
    gen_invalid_utf8(&g, 3000);
    trip whole;
    CHECK(round_trip(&s, BULK_THREADS, "short reads: whole", g.p, g.n, &whole));
    lmz_bytebuf archive = {0};
    lmz_codec_stats st;
    static const size_t sizes[] = {1, 3, 777};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        s.max_read = sizes[i];
        uint8_t sha[32];
        CHECK(compress_to(&s, BULK_THREADS, "short reads", g.p, g.n, &archive, &st) == 0);
        sha256_of(archive.data, archive.len, sha);
        CHECKF(!memcmp(sha, whole.archive_sha, 32), "reads of at most %zu bytes change the archive", sizes[i]);
    }
    lmz_bytebuf_free(&archive);
    free(g.p);
}

static void hex(const uint8_t *sha, char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* The same archive for 1, 2 and 8 threads and for several group sizes and KV budgets, and
 * the same output whatever the decoder's thread count and budget, on a representative
 * subset: samples of English, LLM JSON, code, binary and already-compressed data files and
 * generated text. A group's KV positions stay within the budget (beyond its first chunk)
 * on both sides. */
TEST(codec_thread_invariance) {
    setup s;
    if (!tiny_setup(&s)) return;
    static const char *const subset[] = {"corpora/cantrbry/alice29.txt", "llm-text/mt_bench/question.jsonl",
                                         "corpora/calgary/progc",        "corpora/cantrbry/kennedy.xls",
                                         "qa/HumanEval.jsonl.gz",        "corpora/calgary/pic"};
    const size_t piece = 600;
    gen g = {0};
    for (size_t f = 0; f < sizeof subset / sizeof subset[0]; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", test_data_dir(), subset[f]);
        size_t len;
        uint8_t *data = (uint8_t *)test_read_file(path, &len);
        CHECKF(data, "cannot read %s", path);
        size_t take = len < piece ? len : piece;
        gen_put(&g, data + len / 3, take); /* from inside the file, not its start */
        free(data);
    }
    gen_invalid_utf8(&g, piece);
    s.chunk_bytes = 300; /* about 14 chunks: several groups for every thread count */
    lmz_bytebuf archive = {0}, out = {0};
    lmz_codec_stats st;
    uint8_t want[32], got[32];
    char want_hex[17], got_hex[17];
    /* budgets in positions: ~2 chunks of ~300 (a group ends early and its last chunk opens
     * the next), and 1 (every group is one chunk) */
    const size_t kvb = lmz_kv_bytes_per_position(s.model);
    static const struct {
        int threads, group;
        size_t kv_positions;
    } runs[] = {{1, 0, 0}, {2, 0, 0}, {8, 0, 0}, {1, 1, 0}, {2, 5, 0}, {3, 64, 0}, {1, 64, 700}, {2, 0, 1}};
    uint64_t longest_chunk = 0;
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        setup v = s;
        v.group = runs[r].group;
        v.kv_budget_bytes = runs[r].kv_positions * kvb;
        char label[64];
        snprintf(label, sizeof label, "subset, %d threads, group %d, kv %zu", runs[r].threads, runs[r].group,
                 runs[r].kv_positions);
        double t0 = now();
        CHECK(compress_to(&v, runs[r].threads, label, g.p, g.n, &archive, &st) == 0);
        sha256_of(archive.data, archive.len, r == 0 ? want : got);
        hex(r == 0 ? want : got, r == 0 ? want_hex : got_hex);
        printf("    %-40s %zu -> %zu B, %llu chunks (%llu raw), sha256 %s..., %.2fs\n", label, g.n, archive.len,
               (unsigned long long)st.chunks, (unsigned long long)st.raw_chunks, r == 0 ? want_hex : got_hex,
               now() - t0);
        CHECKF(r == 0 || !memcmp(want, got, 32), "%s: archive sha256 %s... differs from 1 thread's %s...", label,
               got_hex, want_hex);
        CHECKF(st.chunks > (uint64_t)st.raw_chunks + 4, "too few model-coded chunks to mean anything");
        if (runs[r].kv_positions == 1) longest_chunk = st.peak_group_positions; /* groups of one chunk */
        if (runs[r].kv_positions > 1)
            CHECKF(st.peak_group_positions <= runs[r].kv_positions && st.peak_group_positions > runs[r].kv_positions / 2,
                   "%s: a group held %llu KV positions", label, (unsigned long long)st.peak_group_positions);
    }
    CHECKF(longest_chunk > 250 && longest_chunk <= 302, "the longest chunk holds %llu positions, expected ~300",
           (unsigned long long)longest_chunk);
    static const struct {
        int threads;
        size_t kv_positions;
    } decodes[] = {{1, 0}, {8, 0}, {2, 700}, {1, 1}};
    for (size_t i = 0; i < sizeof decodes / sizeof decodes[0]; i++) {
        setup v = s;
        v.kv_budget_bytes = decodes[i].kv_positions * kvb;
        CHECK(decompress_to(&v, decodes[i].threads, "subset", &archive, &out, &st) == 0);
        CHECK(same_bytes("subset", g.p, g.n, &out));
        const uint64_t cap = decodes[i].kv_positions == 1 ? longest_chunk : decodes[i].kv_positions;
        CHECKF(decodes[i].kv_positions == 0 || st.peak_group_positions <= cap,
               "decoding with a budget of %zu positions, a group held %llu", decodes[i].kv_positions,
               (unsigned long long)st.peak_group_positions);
    }
    lmz_bytebuf_free(&archive);
    lmz_bytebuf_free(&out);
    free(g.p);
}

/* A context (text both sides have, not stored) round-trips, and helps when it is related. */
TEST(codec_context_tiny) {
    setup s;
    if (!tiny_setup(&s)) return;
    gen ctx = {0}, g = {0};
    gen_text(&ctx, 3000, 11);
    gen_text(&g, 6000, 12);
    s.context = ctx.p;
    s.context_len = ctx.n;
    CHECK(gen_case(&s, "6000 bytes after a 3000-byte context", g.p, g.n));
    s.context_len = 1;
    CHECK(gen_case(&s, "the same after a 1-byte context", g.p, g.n));
    free(ctx.p);
    free(g.p);
}

/* ---------------- the real default model ---------------- */

/* 2 KB of English LLM text with SmolLM2: lossless, the same archive for 1, 2 and 8
 * threads, and well under a quarter of the input (the model gives ~0.65 bits/byte on this
 * file, 8%; the container's overhead is included). */
TEST(codec_real_model) {
    lmz_model *m = test_model("smollm2");
    lmz_tokenizer *tok = test_tokenizer("smollm2");
    if (!m || !tok) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/llm-text/mt_bench/reference_answer_gpt-4.jsonl", test_data_dir());
    size_t len;
    uint8_t *data = (uint8_t *)test_read_file(path, &len);
    CHECKF(data && len > 12000, "cannot read %s", path);
    uint8_t sha[32];
    lmz_model_fingerprint(m, sha);
    setup s = {.model = m, .tok = tok, .sha = sha};
    const size_t n_context = 3000, n = 2000;
    const uint8_t *text = data + n_context;
    lmz_bytebuf archive = {0}, out = {0};
    lmz_codec_stats st;
    uint8_t want[32], got[32];
    static const int threads[] = {1, 2, 8};
    size_t plain = 0;
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        double t0 = now();
        if (compress_to(&s, threads[i], "real model", text, n, &archive, &st)) break;
        sha256_of(archive.data, archive.len, i ? got : want);
        printf("    SmolLM2, %d threads: %zu -> %zu bytes (%.1f%%, %.3f bits/byte), %.2fs\n", threads[i], n,
               archive.len, 100.0 * (double)archive.len / (double)n, 8.0 * (double)archive.len / (double)n,
               now() - t0);
        fflush(stdout);
        if (i && memcmp(want, got, 32)) {
            test_fail(__FILE__, __LINE__, "the archive made with %d threads differs from 1 thread's", threads[i]);
            break;
        }
        plain = archive.len;
    }
    if (!test_failed()) {
        double t0 = now();
        if (decompress_to(&s, 1, "real model", &archive, &out, NULL) == 0 && same_bytes("real model", text, n, &out))
            printf("    decompressed with 1 thread in %.2fs\n", now() - t0);
    }
    if (!test_failed() && plain * 4 >= n)
        test_fail(__FILE__, __LINE__, "%zu bytes compress to %zu, not under 25%%", n, plain);
    /* With the preceding bytes as the context: still lossless, and smaller. */
    s.context = data;
    s.context_len = n_context;
    double t0 = now();
    if (!test_failed() && compress_to(&s, 1, "real model with context", text, n, &archive, &st) == 0 &&
        decompress_to(&s, 1, "real model with context", &archive, &out, NULL) == 0 &&
        same_bytes("real model with context", text, n, &out)) {
        printf("    with a %zu-byte context: %zu -> %zu bytes (%.1f%%), round trip %.2fs\n", n_context, n, archive.len,
               100.0 * (double)archive.len / (double)n, now() - t0);
        if (archive.len >= plain)
            test_fail(__FILE__, __LINE__, "the context did not help: %zu bytes with it, %zu without", archive.len,
                      plain);
    }
    lmz_bytebuf_free(&archive);
    lmz_bytebuf_free(&out);
    free(data);
}
