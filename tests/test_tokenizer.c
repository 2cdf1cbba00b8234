/* test_tokenizer.c — the tokenizer stage, for each model in CI (SmolLM2: byte-level BPE;
 * Gemma 3: SentencePiece): exact token-id parity with llama.cpp on every shared data file
 * and on edge cases (fixtures from tools/ref/ref_tokens.py, for each model's vocabulary
 * and for copies of it relabelled to other pre-tokenizers / add_space_prefix), the
 * special-token partition against llama.cpp's sequential algorithm, detokenize round
 * trips and their documented exceptions, speed, the Unicode helpers, queries and load
 * errors. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../src/gguf/gguf.h"
#include "../src/tokenizer/pretokenize.h"
#include "../src/tokenizer/special.h"
#include "../src/tokenizer/tokenizer.h"
#include "../src/tokenizer/unicode.h"
#include "../src/util/error.h"
#include "../src/util/sha256.h"
#include "test.h"

/* A model under test: the name test_model_path knows, its fixture, and the fixture's
 * variant name for the model's own, unmodified vocabulary. */
typedef struct {
    const char *name, *fixture, *own_variant;
} model_info;

static const model_info SMOLLM2 = {"smollm2", "tests/fixtures/tokens_smollm2.tsv", "smollm"};
static const model_info GEMMA3 = {"gemma3", "tests/fixtures/tokens_gemma3.tsv", "gemma3"};
/* Outside CI (`make models-all`): its tests are skipped when the model is absent. */
static const model_info QWEN25CODER = {"qwen25coder", "tests/fixtures/tokens_qwen25coder.tsv", "qwen2"};

#define MODEL_HINT "the model is missing: run `python3 tools/fetch_models.py %s`"
#define LARGEST_FILE "llm-text/gsm8k_gpt3_solutions.jsonl"

/* ---- fixture rows ---- */

typedef struct {
    const char *variant, *name, *input, *sha256, *ids;
    int add_special, parse_special;
    size_t n_bytes;
    long n_ids; /* -1: llama.cpp threw on this input */
} fixture_row;

typedef struct {
    char *text; /* the file, cut into fields in place */
    fixture_row *rows;
    size_t n;
} fixture;

static void fixture_free(fixture *fx) {
    free(fx->text);
    free(fx->rows);
}

/* Splits a line into tab-separated fields in place; returns how many. */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = 0;
        p = tab + 1;
    }
    return n;
}

static int fixture_load(fixture *fx, const model_info *m) {
    size_t len;
    memset(fx, 0, sizeof *fx);
    fx->text = test_read_file(m->fixture, &len);
    if (!fx->text) return -1;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += fx->text[i] == '\n';
    fx->rows = calloc(lines, sizeof *fx->rows);
    for (char *line = fx->text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line == '#') continue;
        char *f[9];
        if (split_tabs(line, f, 9) != 9) return -1;
        fixture_row *r = &fx->rows[fx->n++];
        r->variant = f[0];
        r->add_special = atoi(f[1]);
        r->parse_special = atoi(f[2]);
        r->name = f[3];
        r->input = f[4];
        r->n_bytes = strtoull(f[5], NULL, 10);
        r->n_ids = strcmp(f[6], "error") ? atol(f[6]) : -1;
        r->sha256 = f[7];
        r->ids = f[8];
    }
    return 0;
}

static int hex_digit(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* The input bytes of ROW (malloc'd), or NULL when a data file cannot be read. */
static char *row_input(const fixture_row *r, size_t *len) {
    if (!strncmp(r->input, "hex:", 4)) {
        const char *hex = r->input + 4;
        *len = strlen(hex) / 2;
        char *out = malloc(*len + 1);
        for (size_t i = 0; i < *len; i++) out[i] = (char)(hex_digit(hex[2 * i]) * 16 + hex_digit(hex[2 * i + 1]));
        return out;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), r->input + 5);
    return test_read_file(path, len);
}

static void ids_sha256(const int32_t *ids, size_t n, char hex[65]) {
    lmz_sha256 h;
    lmz_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        lmz_sha256_update(&h, le, 4);
    }
    uint8_t digest[32];
    lmz_sha256_final(&h, digest);
    lmz_sha256_hex(digest, hex);
}

/* Word lengths (in bytes) from lmz's splitter KIND over TEXT, decoded as the tokenizer
 * does; returns the number of words (malloc'd *lengths). */
static size_t split_words(enum lmz_pretokenizer kind, const char *text, size_t len, int32_t **lengths) {
    uint32_t *cpts = malloc((len + 1) * sizeof *cpts), *ends = malloc((len + 1) * sizeof *ends);
    uint8_t *cpt_len = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        size_t used;
        uint8_t utf8[4];
        cpts[n] = lmz_utf8_decode((const uint8_t *)text + i, len - i, &used);
        cpt_len[n] = (uint8_t)lmz_utf8_encode(cpts[n], utf8);
        i += used;
    }
    size_t n_words = lmz_pretokenize(kind, cpts, n, ends);
    *lengths = malloc((n_words + 1) * sizeof **lengths);
    for (size_t w = 0, c = 0; w < n_words; w++) {
        int32_t bytes = 0;
        for (; c < ends[w]; c++) bytes += cpt_len[c];
        (*lengths)[w] = bytes;
    }
    free(cpts);
    free(ends);
    free(cpt_len);
    return n_words;
}

/* Checks one row against the tokenizer T, or when T is NULL against the word splitter
 * KIND; on a mismatch describes it in MSG and returns 0. */
static int row_matches(const lmz_tokenizer *t, enum lmz_pretokenizer kind, const fixture_row *r, char *msg,
                       size_t msg_size) {
    size_t len;
    char *text = row_input(r, &len);
    if (!text) {
        snprintf(msg, msg_size, "cannot read %s under %s", r->input, test_data_dir());
        return 0;
    }
    int ok = 1;
    int32_t *ids = NULL;
    size_t n = 0;
    if (len != r->n_bytes) {
        snprintf(msg, msg_size, "input is %zu bytes, the fixture was made from %zu", len, r->n_bytes);
        ok = 0;
    } else if (!t) {
        n = split_words(kind, text, len, &ids);
    } else if (lmz_tokenize(t, text, len, r->add_special, r->parse_special, &ids, &n) < 0) {
        snprintf(msg, msg_size, "lmz_tokenize failed: %s", lmz_last_error());
        ok = 0;
    }
    /* Inputs llama.cpp throws on (n_ids -1) only need to go through; the rest must match. */
    if (ok && r->n_ids >= 0) {
        char sha[65];
        ids_sha256(ids, n, sha);
        if ((long)n != r->n_ids || strcmp(sha, r->sha256)) {
            size_t at = 0;
            char *p = (char *)r->ids;
            while (*p && at < n) {
                long want = strtol(p, &p, 10);
                if (want != ids[at]) break;
                at++;
            }
            int n_msg = snprintf(msg, msg_size, "%zu values (want %ld), sha256 %.16s (want %.16s)", n, r->n_ids, sha,
                                 r->sha256);
            if (*r->ids && n_msg > 0 && (size_t)n_msg < msg_size)
                snprintf(msg + n_msg, msg_size - (size_t)n_msg, ", first difference at index %zu", at);
            ok = 0;
        }
    }
    free(ids);
    free(text);
    return ok;
}

/* Every row of VARIANT whose input is of type INPUT ("file:" or "hex:"), checked as in
 * row_matches; returns the number of mismatches. */
static int check_rows(const lmz_tokenizer *t, enum lmz_pretokenizer kind, const fixture *fx, const char *variant,
                      const char *input, int *n_checked) {
    int failures = 0;
    *n_checked = 0;
    for (size_t i = 0; i < fx->n; i++) {
        const fixture_row *r = &fx->rows[i];
        if (strcmp(r->variant, variant) || strncmp(r->input, input, strlen(input))) continue;
        (*n_checked)++;
        char msg[512];
        if (!row_matches(t, kind, r, msg, sizeof msg)) {
            if (failures < 10) test_fail(__FILE__, __LINE__, "%s, %s (special %d/%d): %s", variant, r->name,
                                         r->add_special, r->parse_special, msg);
            failures++;
        }
    }
    return failures;
}

/* ---- a metadata-only copy of a GGUF with one key replaced or dropped ---- */

static size_t gguf_value_size(const uint8_t *p, const uint8_t *end, uint32_t type) {
    static const size_t fixed[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    uint64_t n;
    if (type == GGUF_STRING) {
        memcpy(&n, p, 8);
        return 8 + (size_t)n;
    }
    if (type != GGUF_ARRAY) return fixed[type];
    uint32_t elem;
    memcpy(&elem, p, 4);
    memcpy(&n, p + 4, 8);
    if (elem != GGUF_STRING && elem != GGUF_ARRAY) return 12 + fixed[elem] * (size_t)n;
    size_t size = 12;
    for (uint64_t i = 0; i < n && p + size < end; i++) size += gguf_value_size(p + size, end, elem);
    return size;
}

/* One metadata change: KEY set to VALUE of TYPE (GGUF_STRING, or GGUF_BOOL with VALUE
 * "true"/"false"), or dropped when VALUE is NULL. */
typedef struct {
    const char *key;
    enum gguf_value_type type;
    const char *value;
} meta_edit;

/* Copies the header and metadata of SRC (a valid GGUF), with no tensors, applying EDIT.
 * Returns a malloc'd buffer. */
static uint8_t *gguf_metadata_with(const gguf_file *src, meta_edit edit, size_t *out_len) {
    size_t size;
    const uint8_t *base = gguf_base(src, &size), *end = base + size;
    uint64_t n_kv;
    memcpy(&n_kv, base + 16, 8);
    const uint8_t *p = base + 24;
    for (uint64_t i = 0; i < n_kv; i++) { /* find the end of the metadata */
        uint64_t klen;
        memcpy(&klen, p, 8);
        uint32_t type;
        memcpy(&type, p + 8 + klen, 4);
        p += 12 + klen + gguf_value_size(p + 12 + klen, end, type);
    }
    size_t value_len = edit.value ? strlen(edit.value) : 0;
    uint8_t *out = malloc((size_t)(p - base) + 12 + value_len), *o = out;
    memcpy(o, base, 24);
    memset(o + 8, 0, 8); /* no tensors */
    o += 24;
    uint64_t kept = 0;
    p = base + 24;
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint8_t *start = p;
        uint64_t klen;
        memcpy(&klen, p, 8);
        int match = klen == strlen(edit.key) && !memcmp(p + 8, edit.key, klen);
        p += 8 + klen;
        uint32_t type;
        memcpy(&type, p, 4);
        p += 4 + gguf_value_size(p + 4, end, type);
        if (!match) {
            memcpy(o, start, (size_t)(p - start));
            o += p - start;
            kept++;
        } else if (edit.value) {
            memcpy(o, start, 8 + klen);
            o += 8 + klen;
            uint32_t t = edit.type;
            memcpy(o, &t, 4);
            o += 4;
            if (edit.type == GGUF_BOOL) {
                *o++ = !strcmp(edit.value, "true");
            } else {
                uint64_t vlen = value_len;
                memcpy(o, &vlen, 8);
                memcpy(o + 8, edit.value, vlen);
                o += 8 + vlen;
            }
            kept++;
        }
    }
    memcpy(out + 16, &kept, 8);
    *out_len = (size_t)(o - out);
    return out;
}

typedef struct {
    gguf_file *model;
    uint8_t *variant_buf;
    gguf_file *variant;
    lmz_tokenizer *tok;
} loaded;

static void unload(loaded *l) {
    lmz_tokenizer_free(l->tok);
    gguf_close(l->variant);
    free(l->variant_buf);
    gguf_close(l->model);
}

/* M's tokenizer, from a copy with EDIT applied unless EDIT is NULL. On failure reports
 * how to get the model and returns -1 (unload L either way). */
static int load_tokenizer(loaded *l, const model_info *m, const meta_edit *edit) {
    memset(l, 0, sizeof *l);
    const char *path = test_model_path(m->name);
    if (!path || !(l->model = gguf_open(path))) {
        test_fail(__FILE__, __LINE__, MODEL_HINT, m->name);
        return -1;
    }
    const gguf_file *f = l->model;
    if (edit) {
        size_t len;
        l->variant_buf = gguf_metadata_with(l->model, *edit, &len);
        if (!(l->variant = gguf_open_buffer(l->variant_buf, len, edit->key))) return -1;
        f = l->variant;
    }
    l->tok = lmz_tokenizer_load(f);
    if (!l->tok) test_fail(__FILE__, __LINE__, "%s: %s", m->name, lmz_last_error());
    return l->tok ? 0 : -1;
}

/* ---- parity ---- */

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static int has_file_row(const fixture *fx, const char *variant, const char *rel) {
    for (size_t i = 0; i < fx->n; i++)
        if (!strcmp(fx->rows[i].variant, variant) && !strncmp(fx->rows[i].input, "file:", 5) &&
            !strcmp(fx->rows[i].input + 5, rel))
            return 1;
    return 0;
}

/* Files under DIR (relative to the data folder) with no row of VARIANT; returns how many. */
static int count_uncovered(const fixture *fx, const char *variant, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), dir);
    DIR *d = opendir(path);
    if (!d) {
        test_fail(__FILE__, __LINE__, "cannot open %s (set LMZ_DATA to the shared data folder)", path);
        return 1;
    }
    int missing = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char rel[4096], full[8192];
        snprintf(rel, sizeof rel, "%s/%s", dir, e->d_name);
        snprintf(full, sizeof full, "%s/%s", test_data_dir(), rel);
        struct stat st;
        if (stat(full, &st) < 0) continue;
        if (S_ISDIR(st.st_mode)) missing += count_uncovered(fx, variant, rel);
        else if (!has_file_row(fx, variant, rel)) {
            test_fail(__FILE__, __LINE__, "%s has no fixture row: rerun tools/ref/ref_tokens.py", rel);
            missing++;
        }
    }
    closedir(d);
    return missing;
}

/* Every shared data file (llm-text, corpora and qa must all be covered) through M's own
 * vocabulary; returns the number of files that differ from llama.cpp. */
static int parity_data_files(const model_info *m, int *n_files, int *uncovered) {
    fixture fx;
    *n_files = *uncovered = 0;
    if (fixture_load(&fx, m) < 0) {
        test_fail(__FILE__, __LINE__, "cannot parse %s", m->fixture);
        return 1;
    }
    loaded l;
    int failures = 1;
    if (load_tokenizer(&l, m, NULL) == 0) {
        *uncovered = count_uncovered(&fx, m->own_variant, "llm-text") + count_uncovered(&fx, m->own_variant, "corpora") +
                     count_uncovered(&fx, m->own_variant, "qa");
        failures = check_rows(l.tok, LMZ_PRETOK_GPT2, &fx, m->own_variant, "file:", n_files);
    }
    unload(&l);
    fixture_free(&fx);
    return failures;
}

/* The edge cases of VARIANT through M's vocabulary with EDIT applied (NULL: none). */
static int parity_edge_cases(const model_info *m, const char *variant, const meta_edit *edit, int *n_cases) {
    fixture fx;
    *n_cases = 0;
    if (fixture_load(&fx, m) < 0) {
        test_fail(__FILE__, __LINE__, "cannot parse %s", m->fixture);
        return 1;
    }
    loaded l;
    int failures = 1;
    if (load_tokenizer(&l, m, edit) == 0) failures = check_rows(l.tok, LMZ_PRETOK_GPT2, &fx, variant, "hex:", n_cases);
    unload(&l);
    fixture_free(&fx);
    return failures;
}

TEST(tokenizer_parity_smollm2_data_files) {
    int n, uncovered;
    int failures = parity_data_files(&SMOLLM2, &n, &uncovered);
    CHECK_EQ_INT(uncovered, 0);
    CHECKF(failures == 0, "%d of %d data files differ from llama.cpp", failures, n);
    CHECKF(n >= 45, "only %d data files in the fixture", n);
}

TEST(tokenizer_parity_smollm2_edge_cases) {
    int n;
    int failures = parity_edge_cases(&SMOLLM2, SMOLLM2.own_variant, NULL, &n);
    CHECKF(failures == 0, "%d of %d edge cases differ from llama.cpp", failures, n);
    CHECKF(n >= 75, "only %d edge cases in the fixture", n);
}

TEST(tokenizer_parity_qwen25coder_data_files) {
    if (!test_model_path(QWEN25CODER.name)) {
        test_skip("model qwen25coder is not downloaded (`make models-all` fetches it)");
        return;
    }
    int n, uncovered;
    int failures = parity_data_files(&QWEN25CODER, &n, &uncovered);
    CHECK_EQ_INT(uncovered, 0);
    CHECKF(failures == 0, "%d of %d data files differ from llama.cpp", failures, n);
    CHECKF(n >= 45, "only %d data files in the fixture", n);
}

TEST(tokenizer_parity_qwen25coder_edge_cases) {
    if (!test_model_path(QWEN25CODER.name)) {
        test_skip("model qwen25coder is not downloaded (`make models-all` fetches it)");
        return;
    }
    int n;
    int failures = parity_edge_cases(&QWEN25CODER, QWEN25CODER.own_variant, NULL, &n);
    CHECKF(failures == 0, "%d of %d edge cases differ from llama.cpp", failures, n);
    CHECKF(n >= 60, "only %d edge cases in the fixture", n);
}

TEST(tokenizer_parity_gemma3_data_files) {
    int n, uncovered;
    int failures = parity_data_files(&GEMMA3, &n, &uncovered);
    CHECK_EQ_INT(uncovered, 0);
    CHECKF(failures == 0, "%d of %d data files differ from llama.cpp", failures, n);
    CHECKF(n >= 45, "only %d data files in the fixture", n);
}

TEST(tokenizer_parity_gemma3_edge_cases) {
    int n;
    int failures = parity_edge_cases(&GEMMA3, GEMMA3.own_variant, NULL, &n);
    CHECKF(failures == 0, "%d of %d edge cases differ from llama.cpp", failures, n);
    CHECKF(n >= 100, "only %d edge cases in the fixture", n);
}

/* Gemma's vocabulary relabelled: add_space_prefix = true (Llama 2's setting: a space
 * before the first raw fragment and each one after a special token), and without
 * scores (every merge ties, so the leftmost-pair rule decides them all). */
TEST(tokenizer_parity_gemma3_relabelled) {
    static const struct {
        const char *variant;
        meta_edit edit;
    } relabels[] = {
        {"gemma3+space_prefix", {"tokenizer.ggml.add_space_prefix", GGUF_BOOL, "true"}},
        {"gemma3-scores", {"tokenizer.ggml.scores", GGUF_STRING, NULL}},
    };
    fixture fx;
    CHECKF(fixture_load(&fx, &GEMMA3) == 0, "cannot parse %s", GEMMA3.fixture);
    for (size_t i = 0; i < sizeof relabels / sizeof relabels[0]; i++) {
        loaded l;
        if (load_tokenizer(&l, &GEMMA3, &relabels[i].edit) < 0) {
            unload(&l);
            fixture_free(&fx);
            return;
        }
        int n_files, n_cases;
        int failures = check_rows(l.tok, LMZ_PRETOK_GPT2, &fx, relabels[i].variant, "file:", &n_files) +
                       check_rows(l.tok, LMZ_PRETOK_GPT2, &fx, relabels[i].variant, "hex:", &n_cases);
        unload(&l);
        if (failures || n_files < 5 || n_cases < 100) {
            fixture_free(&fx);
            CHECKF(0, "%s: %d of %d inputs differ from llama.cpp", relabels[i].variant, failures, n_files + n_cases);
        }
    }
    fixture_free(&fx);
}

/* SmolLM2's vocabulary under the GPT-2, Qwen2 and Llama-3 pre-tokenizers. */
TEST(tokenizer_parity_other_pretokenizers) {
    fixture fx;
    CHECKF(fixture_load(&fx, &SMOLLM2) == 0, "cannot parse %s", SMOLLM2.fixture);
    static const char *const pres[] = {"gpt-2", "qwen2", "llama-bpe"};
    for (int p = 0; p < 3; p++) {
        const meta_edit edit = {"tokenizer.ggml.pre", GGUF_STRING, pres[p]};
        loaded l;
        if (load_tokenizer(&l, &SMOLLM2, &edit) < 0) {
            unload(&l);
            fixture_free(&fx);
            return;
        }
        int n_files, n_cases;
        int failures = check_rows(l.tok, LMZ_PRETOK_GPT2, &fx, pres[p], "file:", &n_files) +
                       check_rows(l.tok, LMZ_PRETOK_GPT2, &fx, pres[p], "hex:", &n_cases);
        unload(&l);
        if (failures || n_files < 5 || n_cases < 50) {
            fixture_free(&fx);
            CHECKF(0, "pre %s: %d of %d inputs differ from llama.cpp", pres[p], failures, n_files + n_cases);
        }
    }
    fixture_free(&fx);
}

/* Word boundaries alone, for each splitter (no model needed). */
TEST(tokenizer_parity_word_splits) {
    fixture fx;
    CHECKF(fixture_load(&fx, &SMOLLM2) == 0, "cannot parse %s", SMOLLM2.fixture);
    static const struct {
        const char *variant;
        enum lmz_pretokenizer kind;
    } splitters[] = {
        {"split:gpt2", LMZ_PRETOK_GPT2},
        {"split:smollm", LMZ_PRETOK_DIGITS_THEN_GPT2},
        {"split:qwen2", LMZ_PRETOK_QWEN2},
        {"split:llama3", LMZ_PRETOK_LLAMA3},
    };
    for (size_t i = 0; i < sizeof splitters / sizeof splitters[0]; i++) {
        int n_files, n_cases;
        int failures = check_rows(NULL, splitters[i].kind, &fx, splitters[i].variant, "file:", &n_files) +
                       check_rows(NULL, splitters[i].kind, &fx, splitters[i].variant, "hex:", &n_cases);
        if (failures || n_files < 5 || n_cases < 50) {
            fixture_free(&fx);
            CHECKF(0, "%s: %d of %d inputs split differently from llama.cpp", splitters[i].variant, failures,
                   n_files + n_cases);
        }
    }
    fixture_free(&fx);
}

/* ---- special-token partition ---- */

/* llama.cpp's tokenizer_st_partition as written: each candidate in turn (rank order)
 * splits every remaining raw fragment at its leftmost non-overlapping occurrences. */
static void partition_sequentially(const lmz_special_token *by_rank, size_t n_specials, const char *text,
                                   size_t len, bool parse_special, lmz_fragment_list *out) {
    lmz_fragment *cur = malloc((2 * len + 2) * sizeof *cur), *next = malloc((2 * len + 2) * sizeof *next);
    size_t n = 0;
    if (len) cur[n++] = (lmz_fragment){0, len, -1};
    for (size_t s = 0; s < n_specials; s++) {
        const lmz_special_token *sp = &by_rank[s];
        if (!parse_special && sp->needs_parse_special) continue;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            lmz_fragment fr = cur[i];
            if (fr.token >= 0) {
                next[m++] = fr;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            const char *hit;
            while (pos < end && (hit = memmem(text + pos, end - pos, sp->text, sp->len))) {
                size_t at = (size_t)(hit - text);
                if (at > pos) next[m++] = (lmz_fragment){pos, at - pos, -1};
                next[m++] = (lmz_fragment){at, sp->len, sp->id};
                pos = at + sp->len;
            }
            if (pos < end) next[m++] = (lmz_fragment){pos, end - pos, -1};
        }
        lmz_fragment *swap = cur;
        cur = next;
        next = swap;
        n = m;
    }
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 16;
            out->items = realloc(out->items, out->cap * sizeof *out->items);
        }
        out->items[out->n++] = cur[i];
    }
    free(cur);
    free(next);
}

/* The one-pass trie partition gives llama.cpp's fragments on random text over a small
 * alphabet, with specials that nest, overlap and repeat. */
TEST(tokenizer_special_partition_matches_sequential_scan) {
    /* in rank order: longest first, equal lengths by id */
    static const lmz_special_token by_rank[] = {
        {10, "abab", 4, false}, {11, "<ab>", 4, true}, {12, "aab", 3, false}, {13, "bab", 3, true},
        {14, "ab", 2, false},   {15, "ba", 2, false},  {16, "<a", 2, true},   {17, "b>", 2, false},
        {18, "aa", 2, false},   {19, "a", 1, true},    {20, ">", 1, false},
    };
    size_t n_specials = sizeof by_rank / sizeof by_rank[0];
    lmz_special_token shuffled[sizeof by_rank / sizeof by_rank[0]];
    for (size_t i = 0; i < n_specials; i++) shuffled[i] = by_rank[(i * 7) % n_specials];
    lmz_specials s;
    CHECK(lmz_specials_init(&s, shuffled, n_specials) == 0);
    lmz_fragment_list got = {0}, want = {0};
    uint64_t rng = 0x243F6A8885A308D3ull;
    int failures = 0;
    for (int iter = 0; iter < 20000 && failures == 0; iter++) {
        char text[64];
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = (size_t)(rng >> 59) * 2; /* 0..62 */
        for (size_t i = 0; i < len; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            text[i] = "aab<>b"[(rng >> 33) % 6];
        }
        bool parse_special = iter & 1;
        if (lmz_specials_partition(&s, (const uint8_t *)text, len, parse_special, &got) < 0) failures++;
        partition_sequentially(by_rank, n_specials, text, len, parse_special, &want);
        int same = got.n == want.n;
        for (size_t i = 0; same && i < got.n; i++)
            same = got.items[i].off == want.items[i].off && got.items[i].len == want.items[i].len &&
                   got.items[i].token == want.items[i].token;
        if (!same) {
            test_fail(__FILE__, __LINE__, "\"%.*s\" (parse_special %d): %zu fragments, want %zu", (int)len, text,
                      parse_special, got.n, want.n);
            failures++;
        }
    }
    free(got.items);
    free(want.items);
    lmz_specials_free(&s);
    CHECK_EQ_INT(failures, 0);
}

/* ---- speed ---- */

/* Tokenizing the largest LLM-text file must stay far from quadratic behaviour. */
static void check_speed(const model_info *m, double limit_s) {
    loaded l;
    if (load_tokenizer(&l, m, NULL) < 0) {
        unload(&l);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), LARGEST_FILE);
    size_t len;
    char *text = test_read_file(path, &len);
    int32_t *ids = NULL;
    size_t n = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = text ? lmz_tokenize(l.tok, text, len, false, false, &ids, &n) : -1;
    double s = seconds_since(&t0);
    free(ids);
    free(text);
    unload(&l);
    CHECKF(rc == 0, "cannot tokenize %s", path);
    printf("    %s: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)\n", m->name, len, n, s, (double)len / s / 1e6);
    CHECKF(s < limit_s, "tokenizing %zu bytes took %.2f s", len, s);
}

TEST(tokenizer_speed_smollm2_largest_file) { check_speed(&SMOLLM2, 5.0); }
/* The limit leaves room for sanitizer builds; an optimized build takes well under 1 s. */
TEST(tokenizer_speed_gemma3_largest_file) { check_speed(&GEMMA3, 5.0); }

/* ---- round trips ---- */

static int valid_utf8(const uint8_t *s, size_t len) {
    for (size_t i = 0; i < len;) {
        uint8_t b = s[i];
        size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (!n || i + n > len) return 0;
        uint32_t c = n == 1 ? b : (uint32_t)(b & (0x7F >> n));
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
            (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

/* Whether the vocabulary has a token for raw byte B on its own (SmolLM2 lacks 21). */
static int byte_has_token(const lmz_tokenizer *t, uint8_t b) {
    uint8_t utf8[5] = {0};
    lmz_utf8_encode(lmz_byte_to_cpt(b), utf8);
    return lmz_tokenizer_find(t, (const char *)utf8) >= 0;
}

/* Byte-level BPE round-trips valid UTF-8 whose bytes all have tokens. */
static int bpe_round_trips(const lmz_tokenizer *t, const char *text, size_t len) {
    if (!valid_utf8((const uint8_t *)text, len)) return 0;
    for (size_t i = 0; i < len; i++)
        if (!byte_has_token(t, (uint8_t)text[i])) return 0;
    return 1;
}

/* SPM round-trips any bytes (byte fallback) except (1) a literal "▁", which comes back
 * as a space, and (2) a space inside the span an invalid lead byte announces: the
 * symbol takes the escaped space's first bytes, which then come back as raw bytes. */
static int spm_round_trips(const lmz_tokenizer *t, const char *text, size_t len) {
    (void)t;
    if (memmem(text, len, "\xe2\x96\x81", 3)) return 0;
    for (size_t i = 0; i < len;) {
        uint8_t lead = (uint8_t)text[i];
        size_t span = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        for (size_t k = 1; k < span && i + k < len; k++)
            if (text[i + k] == ' ') return 0;
        i += span;
    }
    return 1;
}

/* detokenize(tokenize(x)) == x for every fixture input of M's own vocabulary that
 * EXPECTED accepts (special text parsed or not, rendered the same way); the fixture
 * exercises the other kinds too. */
static void check_round_trips(const model_info *m, int (*expected)(const lmz_tokenizer *, const char *, size_t),
                              int min_checked, int min_skipped) {
    fixture fx;
    CHECKF(fixture_load(&fx, m) == 0, "cannot parse %s", m->fixture);
    loaded l;
    if (load_tokenizer(&l, m, NULL) < 0) {
        unload(&l);
        fixture_free(&fx);
        return;
    }
    int checked = 0, skipped = 0, failures = 0;
    for (size_t i = 0; i < fx.n; i++) {
        const fixture_row *r = &fx.rows[i];
        if (strcmp(r->variant, m->own_variant)) continue;
        size_t len;
        char *text = row_input(r, &len);
        if (!text) continue;
        if (!expected(l.tok, text, len)) {
            skipped++;
            free(text);
            continue;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        size_t back_len = 0;
        int ok = lmz_tokenize(l.tok, text, len, false, r->parse_special, &ids, &n) == 0 &&
                 lmz_detokenize(l.tok, ids, n, r->parse_special, &back, &back_len) == 0 && back_len == len &&
                 !memcmp(back, text, len);
        if (!ok && failures++ < 5) test_fail(__FILE__, __LINE__, "%s does not round-trip", r->name);
        checked++;
        free(ids);
        free(back);
        free(text);
    }
    unload(&l);
    fixture_free(&fx);
    CHECK_EQ_INT(failures, 0);
    CHECKF(checked >= min_checked && skipped >= min_skipped, "round-tripped %d inputs, skipped %d", checked, skipped);
}

TEST(tokenizer_round_trip_smollm2) { check_round_trips(&SMOLLM2, bpe_round_trips, 80, 10); }
TEST(tokenizer_round_trip_gemma3) { check_round_trips(&GEMMA3, spm_round_trips, 130, 3); }

/* Documents BPE's loss: invalid UTF-8 bytes come back as U+FFFD (EF BF BD), exactly as
 * llama.cpp tokenizes them. Compressing such input needs an escape outside the tokenizer. */
TEST(tokenizer_bpe_invalid_utf8_is_replaced) {
    loaded l;
    if (load_tokenizer(&l, &SMOLLM2, NULL) < 0) {
        unload(&l);
        return;
    }
    static const struct {
        const char *in;
        size_t in_len;
        const char *out;
        size_t out_len;
    } cases[] = {
        {"\xff", 1, "\xef\xbf\xbd", 3},
        {"a\x80" "b", 3, "a\xef\xbf\xbd" "b", 5},
        {"\xc3(", 2, "\xef\xbf\xbd(", 4},
        {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
        {"\xc0\x80", 2, "\0", 1}, /* an overlong NUL decodes to U+0000: one zero byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0, back_len = 0;
        char *back = NULL;
        int ok = lmz_tokenize(l.tok, cases[i].in, cases[i].in_len, false, false, &ids, &n) == 0 &&
                 lmz_detokenize(l.tok, ids, n, false, &back, &back_len) == 0 && back_len == cases[i].out_len &&
                 !memcmp(back, cases[i].out, back_len);
        free(ids);
        free(back);
        if (!ok) {
            unload(&l);
            CHECKF(0, "case %zu: invalid bytes were not replaced by U+FFFD as expected", i);
        }
    }
    unload(&l);
}

/* Documents BPE's other loss, also llama.cpp's: a byte whose single-byte token is
 * missing from the vocabulary (for SmolLM2: 04 06 13 14 16 1D C0 C1 F1 F2 F5..FF) is
 * dropped unless a merge covers it. Control characters and code points
 * U+40000..U+BFFFF (lead bytes F1, F2) in valid UTF-8 are affected. */
TEST(tokenizer_bpe_bytes_without_tokens_are_dropped) {
    loaded l;
    if (load_tokenizer(&l, &SMOLLM2, NULL) < 0) {
        unload(&l);
        return;
    }
    int missing = 0;
    for (int b = 0; b < 256; b++) missing += !byte_has_token(l.tok, (uint8_t)b);
    int32_t *ids = NULL;
    size_t n = 0, back_len = 0;
    char *back = NULL;
    int ok = lmz_tokenize(l.tok, "a\x1d" "b\x04", 4, false, false, &ids, &n) == 0 &&
             lmz_detokenize(l.tok, ids, n, false, &back, &back_len) == 0;
    int dropped = ok && back_len == 2 && !memcmp(back, "ab", 2);
    free(ids);
    free(back);
    unload(&l);
    CHECK_EQ_INT(missing, 21);
    CHECK(dropped);
}

/* Documents SPM's two losses (the same in llama.cpp): a literal "▁" in the text comes
 * back as a space, and an invalid lead byte whose announced length covers a space
 * makes that space come back as the raw bytes of "▁". Other invalid UTF-8, NULs and
 * control characters round-trip through the <0xHH> byte tokens. */
TEST(tokenizer_spm_round_trip_exceptions) {
    loaded l;
    if (load_tokenizer(&l, &GEMMA3, NULL) < 0) {
        unload(&l);
        return;
    }
    static const struct {
        const char *in;
        size_t in_len;
        const char *out;
        size_t out_len;
    } cases[] = {
        {"a\xe2\x96\x81" "b", 5, "a b", 3},
        {"\xe2 x", 3, "\xe2\xe2\x96\x81x", 5},
        {"\x80\xc3(\0\x1d x\xff", 8, "\x80\xc3(\0\x1d x\xff", 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0, back_len = 0;
        char *back = NULL;
        int ok = lmz_tokenize(l.tok, cases[i].in, cases[i].in_len, false, false, &ids, &n) == 0 &&
                 lmz_detokenize(l.tok, ids, n, false, &back, &back_len) == 0 && back_len == cases[i].out_len &&
                 !memcmp(back, cases[i].out, back_len);
        free(ids);
        free(back);
        if (!ok) {
            unload(&l);
            CHECKF(0, "case %zu does not detokenize as documented", i);
        }
    }
    unload(&l);
}

/* ---- queries ---- */

TEST(tokenizer_smollm2_special_tokens) {
    loaded l;
    if (load_tokenizer(&l, &SMOLLM2, NULL) < 0) {
        unload(&l);
        return;
    }
    const lmz_tokenizer *t = l.tok;
    char buf[64];
    int32_t the = lmz_tokenizer_find(t, "\xc4\xa0the"); /* "Ġthe" */
    size_t the_len = lmz_token_bytes(t, the, false, buf, sizeof buf);
    int the_ok = the > 0 && the_len == 4 && !memcmp(buf, " the", 4);
    size_t text_len = 0;
    const char *text = lmz_tokenizer_token_text(t, 2, &text_len);
    int text_ok = text && text_len == 10 && !memcmp(text, "<|im_end|>", 10);
    size_t hidden = lmz_token_bytes(t, 1, false, buf, sizeof buf);
    size_t shown = lmz_token_bytes(t, 1, true, buf, sizeof buf);
    int shown_ok = shown == 12 && !memcmp(buf, "<|im_start|>", 12);
    int32_t n_vocab = lmz_tokenizer_n_vocab(t), bos = lmz_tokenizer_bos(t), eos = lmz_tokenizer_eos(t);
    int adds = lmz_tokenizer_adds_bos(t) || lmz_tokenizer_adds_eos(t);
    int eog0 = lmz_tokenizer_is_eog(t, 0), eog1 = lmz_tokenizer_is_eog(t, 1), eog2 = lmz_tokenizer_is_eog(t, 2);
    int eog_bad = lmz_tokenizer_is_eog(t, -1) || lmz_tokenizer_is_eog(t, n_vocab);
    enum lmz_token_type type1 = lmz_tokenizer_token_type(t, 1), type_the = lmz_tokenizer_token_type(t, the);
    int32_t missing = lmz_tokenizer_find(t, "<|no such token|>");
    size_t invalid = lmz_token_bytes(t, n_vocab, true, buf, sizeof buf);
    unload(&l);
    CHECK_EQ_INT(n_vocab, 49152);
    CHECK_EQ_INT(bos, 1);
    CHECK_EQ_INT(eos, 2);
    CHECK(!adds);
    CHECK(eog0 && !eog1 && eog2 && !eog_bad);
    CHECK_EQ_INT(type1, LMZ_TOKEN_CONTROL);
    CHECK_EQ_INT(type_the, LMZ_TOKEN_NORMAL);
    CHECK(the_ok);
    CHECK(text_ok);
    CHECK_EQ_INT(hidden, 0);
    CHECK(shown_ok);
    CHECK_EQ_INT(missing, -1);
    CHECK_EQ_INT(invalid, 0);
}

/* Whether token ID renders (render_special as given) to exactly WANT. */
static int renders_as(const lmz_tokenizer *t, int32_t id, bool render_special, const char *want, size_t want_len) {
    char buf[64];
    size_t n = lmz_token_bytes(t, id, render_special, buf, sizeof buf);
    return n == want_len && !memcmp(buf, want, n);
}

TEST(tokenizer_gemma3_special_tokens) {
    loaded l;
    if (load_tokenizer(&l, &GEMMA3, NULL) < 0) {
        unload(&l);
        return;
    }
    const lmz_tokenizer *t = l.tok;
    int32_t start = lmz_tokenizer_find(t, "<start_of_turn>"), end = lmz_tokenizer_find(t, "<end_of_turn>");
    int32_t eos_text = lmz_tokenizer_find(t, "<eos>"), bos_text = lmz_tokenizer_find(t, "<bos>");
    int32_t newline = lmz_tokenizer_find(t, "\n"), the = lmz_tokenizer_find(t, "\xe2\x96\x81the");
    int32_t byte_a = lmz_tokenizer_find(t, "<0x41>"), close_s = lmz_tokenizer_find(t, "</s>");
    int eog = lmz_tokenizer_is_eog(t, end) && lmz_tokenizer_is_eog(t, eos_text) && !lmz_tokenizer_is_eog(t, start) &&
              !lmz_tokenizer_is_eog(t, bos_text) && !lmz_tokenizer_is_eog(t, newline);
    /* llama.cpp's EOG list has "</s>" (for PaddleOCR): Gemma's USER_DEFINED "</s>" ends
     * generation and becomes CONTROL, so plain text is not split at it */
    int close_s_control = lmz_tokenizer_is_eog(t, close_s) && lmz_tokenizer_token_type(t, close_s) == LMZ_TOKEN_CONTROL;
    int types = lmz_tokenizer_token_type(t, start) == LMZ_TOKEN_CONTROL &&
                lmz_tokenizer_token_type(t, newline) == LMZ_TOKEN_USER_DEFINED &&
                lmz_tokenizer_token_type(t, byte_a) == LMZ_TOKEN_BYTE &&
                lmz_tokenizer_token_type(t, the) == LMZ_TOKEN_NORMAL;
    int pieces = renders_as(t, the, false, " the", 4) && renders_as(t, byte_a, false, "A", 1) &&
                 renders_as(t, newline, false, "\n", 1) && renders_as(t, start, false, "", 0) &&
                 renders_as(t, start, true, "<start_of_turn>", 15);
    int32_t *ids = NULL;
    size_t n = 0;
    int adds_bos = lmz_tokenize(t, "", 0, true, false, &ids, &n) == 0 && n == 1 && ids[0] == bos_text;
    free(ids);
    int32_t n_vocab = lmz_tokenizer_n_vocab(t), bos = lmz_tokenizer_bos(t), eos = lmz_tokenizer_eos(t);
    int flags = lmz_tokenizer_adds_bos(t) && !lmz_tokenizer_adds_eos(t);
    unload(&l);
    CHECK_EQ_INT(n_vocab, 262144);
    CHECK_EQ_INT(start, 105);
    CHECK_EQ_INT(end, 106);
    CHECK_EQ_INT(bos, 2);
    CHECK_EQ_INT(eos, 1);
    CHECK_EQ_INT(bos_text, 2);
    CHECK_EQ_INT(eos_text, 1);
    CHECK_EQ_INT(newline, 107);
    CHECK(flags && adds_bos);
    CHECK(eog);
    CHECK(close_s_control);
    CHECK(types);
    CHECK(pieces);
}

/* ---- Unicode helpers ---- */

TEST(tokenizer_unicode_decode_is_llama_cpp_lax) {
    static const struct {
        const char *bytes;
        size_t len;
        uint32_t cpt;
        size_t used;
    } cases[] = {
        {"A", 1, 'A', 1},
        {"\xc3\xa9", 2, 0xE9, 2},
        {"\xe2\x82\xac", 3, 0x20AC, 3},
        {"\xf0\x9f\x98\x80", 4, 0x1F600, 4},
        {"\x80", 1, 0xFFFD, 1},          /* stray continuation */
        {"\xc3", 1, 0xFFFD, 1},          /* truncated */
        {"\xc3(", 2, 0xFFFD, 1},         /* bad continuation */
        {"\xe2\x82", 2, 0xFFFD, 1},
        {"\xc0\x80", 2, 0, 2},           /* overlong forms are accepted */
        {"\xe0\x80\xaf", 3, '/', 3},
        {"\xed\xa0\x80", 3, 0xD800, 3},  /* so are surrogates */
        {"\xf4\x8f\xbf\xbf", 4, 0x10FFFF, 4},
        {"\xf4\x90\x80\x80", 4, 0xFFFD, 1}, /* above U+10FFFF: llama.cpp throws */
        {"\xf8\x88\x80\x80\x80", 5, 0xFFFD, 1},
        {"\xff", 1, 0xFFFD, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t used;
        uint32_t cpt = lmz_utf8_decode((const uint8_t *)cases[i].bytes, cases[i].len, &used);
        CHECKF(cpt == cases[i].cpt && used == cases[i].used, "case %zu: got U+%04X/%zu", i, cpt, used);
    }
    uint8_t out[4];
    CHECK_EQ_INT(lmz_utf8_encode(0x7F, out), 1);
    CHECK_EQ_INT(lmz_utf8_encode(0x80, out), 2);
    CHECK_EQ_INT(lmz_utf8_encode(0xFFFF, out), 3);
    CHECK(lmz_utf8_encode(0x10FFFF, out) == 4 && out[0] == 0xF4 && out[1] == 0x8F && out[3] == 0xBF);
}

TEST(tokenizer_unicode_classes) {
    static const struct {
        uint32_t cpt;
        unsigned flags;
    } cases[] = {
        {'A', LMZ_UC_LETTER}, {'5', LMZ_UC_NUMBER}, {' ', LMZ_UC_SEPARATOR | LMZ_UC_WHITESPACE},
        {'\n', LMZ_UC_CONTROL | LMZ_UC_WHITESPACE}, {0x1C, LMZ_UC_CONTROL}, {'$', LMZ_UC_SYMBOL},
        {'_', LMZ_UC_PUNCTUATION}, {0x85, LMZ_UC_CONTROL | LMZ_UC_WHITESPACE},
        {0xA0, LMZ_UC_SEPARATOR | LMZ_UC_WHITESPACE}, {0x301, LMZ_UC_MARK}, {0x378, LMZ_UC_UNDEFINED},
        {0xB2, LMZ_UC_NUMBER}, {0x200B, LMZ_UC_CONTROL}, {0x3000, LMZ_UC_SEPARATOR | LMZ_UC_WHITESPACE},
        {0x4E00, LMZ_UC_LETTER}, {0xD800, LMZ_UC_CONTROL}, {0xE000, LMZ_UC_CONTROL},
        {0x1F600, LMZ_UC_SYMBOL}, {0x2EBF0, LMZ_UC_LETTER}, /* CJK Ext. I: new in Unicode 15.1 */
        {0x10FFFF, LMZ_UC_UNDEFINED}, {0x110000, LMZ_UC_UNDEFINED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECKF(lmz_unicode_flags(cases[i].cpt) == cases[i].flags, "U+%04X: flags 0x%03X, want 0x%03X",
               cases[i].cpt, lmz_unicode_flags(cases[i].cpt), cases[i].flags);
    CHECK(lmz_unicode_ranges[0].start == 0);
    for (size_t i = 1; i < lmz_unicode_n_ranges; i++) CHECK(lmz_unicode_ranges[i].start > lmz_unicode_ranges[i - 1].start);
}

TEST(tokenizer_gpt2_byte_map) {
    uint8_t seen[0x200] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t c = lmz_byte_to_cpt((uint8_t)b);
        CHECKF(c < 0x200 && !seen[c], "byte 0x%02X maps to U+%04X twice or out of range", b, c);
        seen[c] = 1;
        CHECK_EQ_INT(lmz_cpt_to_byte(c), b);
    }
    CHECK_EQ_INT(lmz_byte_to_cpt(' '), 0x120);  /* "Ġ" */
    CHECK_EQ_INT(lmz_byte_to_cpt('\n'), 0x10A); /* "Ċ" */
    CHECK_EQ_INT(lmz_byte_to_cpt(0x7F), 0x121);
    CHECK_EQ_INT(lmz_byte_to_cpt(0xAD), 0x143);
    CHECK_EQ_INT(lmz_byte_to_cpt('a'), 'a');
    CHECK_EQ_INT(lmz_cpt_to_byte(0x144), -1);
    CHECK_EQ_INT(lmz_cpt_to_byte(0x20), -1);
}

/* ---- load errors ---- */

typedef struct {
    meta_edit edit;
    const char *message;
} load_error_case;

/* Each edit of M's metadata must fail to load with a message containing the given text. */
static void check_load_errors(const model_info *m, const load_error_case *cases, size_t n) {
    const char *path = test_model_path(m->name);
    CHECKF(path, MODEL_HINT, m->name);
    gguf_file *model = gguf_open(path);
    CHECKF(model, "%s", lmz_last_error());
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = gguf_metadata_with(model, cases[i].edit, &len);
        gguf_file *f = gguf_open_buffer(buf, len, "variant");
        lmz_tokenizer *t = f ? lmz_tokenizer_load(f) : NULL;
        const char *err = lmz_last_error();
        int ok = f && !t && strstr(err, cases[i].message);
        lmz_tokenizer_free(t);
        gguf_close(f);
        free(buf);
        if (!ok) {
            gguf_close(model);
            CHECKF(0, "%s: %s = %s: got \"%s\", want a message with \"%s\"", m->name, cases[i].edit.key,
                   cases[i].edit.value ? cases[i].edit.value : "(dropped)", err, cases[i].message);
        }
    }
    gguf_close(model);
}

TEST(tokenizer_load_errors_are_clear) {
    static const load_error_case bpe[] = {
        {{"tokenizer.ggml.model", GGUF_STRING, "bert"}, "unsupported tokenizer.ggml.model \"bert\""},
        {{"tokenizer.ggml.model", GGUF_STRING, NULL}, "tokenizer.ggml.model is missing"},
        {{"tokenizer.ggml.pre", GGUF_STRING, "default"}, "unsupported pre-tokenizer"},
        {{"tokenizer.ggml.pre", GGUF_STRING, NULL}, "tokenizer.ggml.pre is missing"},
        {{"tokenizer.ggml.tokens", GGUF_STRING, NULL}, "tokenizer.ggml.tokens is missing"},
        {{"tokenizer.ggml.tokens", GGUF_STRING, "oops"}, "must be an array of strings"},
        {{"tokenizer.ggml.token_type", GGUF_STRING, "oops"}, "tokenizer.ggml.token_type must be an array of int32"},
        {{"tokenizer.ggml.merges", GGUF_STRING, NULL}, "tokenizer.ggml.merges is missing"},
        {{"tokenizer.ggml.bos_token_id", GGUF_STRING, "one"}, "bos_token_id must be an unsigned integer"},
        {{"tokenizer.ggml.add_bos_token", GGUF_STRING, "yes"}, "add_bos_token must be a boolean"},
    };
    static const load_error_case spm[] = {
        {{"tokenizer.ggml.scores", GGUF_STRING, "oops"}, "tokenizer.ggml.scores must be an array of float32 or int32"},
        {{"tokenizer.ggml.add_space_prefix", GGUF_STRING, "no"}, "add_space_prefix must be a boolean"},
        {{"tokenizer.ggml.eos_token_id", GGUF_STRING, "1"}, "eos_token_id must be an unsigned integer"},
    };
    check_load_errors(&SMOLLM2, bpe, sizeof bpe / sizeof bpe[0]);
    if (test_failed()) return;
    check_load_errors(&GEMMA3, spm, sizeof spm / sizeof spm[0]);
}
