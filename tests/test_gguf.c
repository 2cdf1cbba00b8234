/* test_gguf.c — tests of the GGUF reader: the regression corpus in tests/fixtures/gguf/
 * (written by tools/make_gguf_corpus.py; every malformed file must fail with its expected
 * message, every valid one must open and read back), the accessors' edge cases, and the
 * real default model's metadata and tensor table. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../src/gguf/gguf.h"
#include "../src/gguf/tensor_types.h"
#include "../src/util/error.h"
#include "test.h"

#define CORPUS_DIR "tests/fixtures/gguf"
#define CORPUS_INDEX CORPUS_DIR "/index.txt"

static bool gstr_is(gguf_str s, const char *z) { return s.len == strlen(z) && !memcmp(s.ptr, z, s.len); }

/* Reads every key, array element and tensor through the accessors, so that a reader bug in a
 * file that opens shows up under ASan; returns false (with a test failure) on an inconsistency. */
static bool walk_everything(const gguf_file *f, const char *label) {
    size_t size;
    const uint8_t *base = gguf_base(f, &size);
    for (int k = 0; k < gguf_n_keys(f); k++) {
        gguf_str name = gguf_key_name(f, k);
        char key[256];
        if (name.len >= sizeof key || memchr(name.ptr, 0, name.len)) continue; /* not addressable by name */
        memcpy(key, name.ptr, name.len);
        key[name.len] = 0;
        if (gguf_find_key(f, key) != k) {
            test_fail(__FILE__, __LINE__, "%s: key %d '%s' not found by name", label, k, key);
            return false;
        }
        uint64_t u64v;
        uint32_t u32v;
        float f32v;
        bool boolv;
        gguf_str strv;
        (void)gguf_get_u64(f, key, &u64v);
        (void)gguf_get_u32(f, key, &u32v);
        (void)gguf_get_f32(f, key, &f32v);
        (void)gguf_get_bool(f, key, &boolv);
        if (gguf_get_str(f, key, &strv) && (strv.len > size || (const uint8_t *)strv.ptr < base ||
                                            (const uint8_t *)strv.ptr + strv.len > base + size)) {
            test_fail(__FILE__, __LINE__, "%s: string '%s' points outside the file", label, key);
            return false;
        }
        enum gguf_value_type elem_type;
        uint64_t count;
        if (!gguf_get_array(f, key, &elem_type, &count)) continue;
        for (uint64_t i = 0; i <= count; i++) { /* one past the end on purpose */
            if (elem_type == GGUF_STRING) {
                gguf_str s = gguf_array_str(f, key, i);
                if (s.len && (const uint8_t *)s.ptr + s.len > base + size) {
                    test_fail(__FILE__, __LINE__, "%s: '%s'[%llu] points outside the file", label, key,
                              (unsigned long long)i);
                    return false;
                }
            } else {
                (void)gguf_array_num(f, key, i);
            }
        }
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *data = t->data;
        if (data < base || t->nbytes > size || data + t->nbytes > base + size || t->nbytes == 0) {
            test_fail(__FILE__, __LINE__, "%s: tensor '%s' data lies outside the file", label, t->name);
            return false;
        }
        volatile uint8_t touch = data[0] ^ data[t->nbytes - 1]; /* ASan checks both ends */
        (void)touch;
        if (gguf_find_tensor(f, t->name) != t) {
            test_fail(__FILE__, __LINE__, "%s: tensor '%s' not found by name", label, t->name);
            return false;
        }
    }
    if (gguf_tensor_at(f, gguf_n_tensors(f)) != NULL) {
        test_fail(__FILE__, __LINE__, "%s: tensor index past the end is not NULL", label);
        return false;
    }
    return true;
}

/* Checks one outcome: EXPECT_OK, or failure whose message contains SUBSTRING and names LABEL. */
static bool check_outcome(gguf_file *f, const char *how, const char *label, bool expect_ok,
                          const char *substring) {
    if (expect_ok) {
        if (!f) {
            test_fail(__FILE__, __LINE__, "%s(%s): expected ok, got error: %s", how, label, lmz_last_error());
            return false;
        }
        bool ok = walk_everything(f, label);
        gguf_close(f);
        return ok;
    }
    if (f) {
        test_fail(__FILE__, __LINE__, "%s(%s): opened, expected an error containing \"%s\"", how, label,
                  substring);
        gguf_close(f);
        return false;
    }
    const char *msg = lmz_last_error();
    if (!strstr(msg, substring) || !strstr(msg, label)) {
        test_fail(__FILE__, __LINE__, "%s(%s): error \"%s\" lacks \"%s\" or the file name", how, label, msg,
                  substring);
        return false;
    }
    return true;
}

/* Every corpus file, through both entry points: gguf_open (mmap) and gguf_open_buffer over an
 * exact-size heap copy, where ASan catches a read even one byte past the end. */
TEST(gguf_corpus) {
    size_t index_len;
    char *index = test_read_file(CORPUS_INDEX, &index_len);
    CHECKF(index, "cannot read %s: run the tests from the repository root", CORPUS_INDEX);
    int n_cases = 0, n_ok = 0, n_failed = 0;
    char *save = NULL;
    for (char *line = strtok_r(index, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == 0) continue;
        char *name = line, *outcome = strchr(line, ' ');
        if (!outcome) {
            test_fail(__FILE__, __LINE__, "malformed index line: %s", line);
            n_failed++;
            continue;
        }
        *outcome++ = 0;
        bool expect_ok = !strcmp(outcome, "ok");
        const char *substring = "";
        if (!expect_ok) {
            if (strncmp(outcome, "error ", 6) != 0) {
                test_fail(__FILE__, __LINE__, "%s: index outcome must be 'ok' or 'error MESSAGE'", name);
                n_failed++;
                continue;
            }
            substring = outcome + 6;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, name);
        size_t len;
        char *bytes = test_read_file(path, &len);
        if (!bytes) {
            test_fail(__FILE__, __LINE__, "cannot read %s", path);
            n_failed++;
            continue;
        }
        char *exact = malloc(len ? len : 1);
        memcpy(exact, bytes, len);
        free(bytes);

        lmz_clear_error();
        bool ok = check_outcome(gguf_open(path), "gguf_open", path, expect_ok, substring);
        lmz_clear_error();
        ok &= check_outcome(gguf_open_buffer(exact, len, name), "gguf_open_buffer", name, expect_ok, substring);
        free(exact);
        n_cases++;
        n_ok += expect_ok;
        n_failed += !ok;
    }
    free(index);
    CHECKF(n_failed == 0, "%d of %d corpus cases failed", n_failed, n_cases);
    /* Guards against an emptied or half-written index passing vacuously. */
    CHECKF(n_cases >= 100 && n_ok >= 5, "only %d corpus cases (%d ok): regenerate with tools/make_gguf_corpus.py",
           n_cases, n_ok);
}

static gguf_file *open_fixture(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, name);
    gguf_file *f = gguf_open(path);
    if (!f) test_fail(__FILE__, __LINE__, "%s", lmz_last_error());
    return f;
}

/* The reference valid file: every value type reads back, and only through the right accessor. */
TEST(gguf_fixture_values) {
    gguf_file *f = open_fixture("ok_full_v3.gguf");
    if (!f) return;
    uint64_t u64v = 0;
    uint32_t u32v = 0;
    float f32v = 0;
    bool boolv = false;
    gguf_str s;
    bool ok = gguf_version(f) == 3 && gguf_n_keys(f) == 17;
    ok = ok && gguf_get_str(f, "general.architecture", &s) && gstr_is(s, "llama");
    ok = ok && gguf_get_u64(f, "test.u8", &u64v) && u64v == 200;
    ok = ok && !gguf_get_u64(f, "test.i8", &u64v);                          /* negative */
    ok = ok && gguf_get_u32(f, "test.u16", &u32v) && u32v == 60000;
    ok = ok && !gguf_get_u32(f, "test.i16", &u32v);
    ok = ok && gguf_get_u32(f, "test.u32", &u32v) && u32v == 4000000000u;
    ok = ok && !gguf_get_u64(f, "test.i32", &u64v);
    ok = ok && gguf_get_u64(f, "test.u64", &u64v) && u64v == 1ull << 40;
    ok = ok && !gguf_get_u32(f, "test.u64", &u32v);                         /* does not fit */
    ok = ok && !gguf_get_u64(f, "test.i64", &u64v);
    ok = ok && gguf_get_f32(f, "test.f32", &f32v) && f32v == 0.5f;
    ok = ok && gguf_get_f32(f, "test.f64", &f32v) && f32v == 2.25f;
    ok = ok && gguf_get_bool(f, "test.bool", &boolv) && boolv;
    /* Wrong types are refused rather than reinterpreted. */
    ok = ok && !gguf_get_f32(f, "test.u32", &f32v) && !gguf_get_u64(f, "test.f32", &u64v);
    ok = ok && !gguf_get_bool(f, "test.u8", &boolv) && !gguf_get_str(f, "test.u8", &s);
    ok = ok && !gguf_get_u64(f, "general.name", &u64v) && !gguf_get_u64(f, "test.tokens", &u64v);
    ok = ok && !gguf_get_str(f, "no.such.key", &s) && gguf_find_key(f, "no.such.key") == -1;
    ok = ok && gguf_find_key(f, "test.u") == -1 && gguf_find_key(f, "") == -1;      /* no prefix match */
    gguf_close(f);
    CHECK(ok);
}

TEST(gguf_fixture_arrays) {
    gguf_file *f = open_fixture("ok_full_v3.gguf");
    if (!f) return;
    enum gguf_value_type et = GGUF_N_VALUE_TYPES;
    uint64_t n = 0;
    bool ok = gguf_get_array(f, "test.tokens", &et, &n) && et == GGUF_STRING && n == 4;
    ok = ok && gstr_is(gguf_array_str(f, "test.tokens", 0), "<s>");
    ok = ok && gstr_is(gguf_array_str(f, "test.tokens", 2), "");
    ok = ok && gstr_is(gguf_array_str(f, "test.tokens", 3), "w\xc3\xb6rld");
    ok = ok && gguf_array_str(f, "test.tokens", 4).len == 0;                 /* out of range */
    ok = ok && gguf_array_str(f, "test.tokens", UINT64_MAX).len == 0;
    ok = ok && gguf_array_num(f, "test.tokens", 0) == 0.0;                   /* strings are not numbers */
    ok = ok && gguf_get_array(f, "test.scores", &et, &n) && et == GGUF_FLOAT32 && n == 3;
    ok = ok && gguf_array_num(f, "test.scores", 1) == -1.5 && gguf_array_num(f, "test.scores", 3) == 0.0;
    ok = ok && gguf_get_array(f, "test.types", &et, &n) && et == GGUF_INT32 && n == 5;
    ok = ok && gguf_array_num(f, "test.types", 1) == -2.0 && gguf_array_num(f, "test.types", 4) == 5.0;
    ok = ok && gguf_array_str(f, "test.types", 0).len == 0;                  /* numbers are not strings */
    ok = ok && gguf_get_array(f, "test.empty", &et, &n) && et == GGUF_UINT8 && n == 0;
    ok = ok && gguf_array_num(f, "test.empty", 0) == 0.0;
    ok = ok && !gguf_get_array(f, "test.u8", &et, &n) && !gguf_get_array(f, "no.such.key", &et, &n);
    ok = ok && gguf_array_num(f, "no.such.key", 0) == 0.0 && gguf_array_str(f, "no.such.key", 0).len == 0;
    gguf_close(f);
    CHECK(ok);
}

TEST(gguf_fixture_key_index_bounds) {
    gguf_file *f = open_fixture("ok_full_v3.gguf");
    if (!f) return;
    int n = gguf_n_keys(f);
    bool ok = gstr_is(gguf_key_name(f, 0), "general.architecture") && gguf_key_type(f, 0) == GGUF_STRING;
    ok = ok && gstr_is(gguf_key_name(f, n - 1), "test.empty") && gguf_key_type(f, n - 1) == GGUF_ARRAY;
    ok = ok && gguf_key_name(f, n).len == 0 && gguf_key_type(f, n) == GGUF_N_VALUE_TYPES;
    ok = ok && gguf_key_name(f, -1).len == 0 && gguf_key_type(f, -1) == GGUF_N_VALUE_TYPES;
    gguf_close(f);
    CHECK(ok);
}

TEST(gguf_fixture_tensors) {
    gguf_file *f = open_fixture("ok_full_v3.gguf");
    if (!f) return;
    size_t size;
    const uint8_t *base = gguf_base(f, &size);
    const gguf_tensor *w = gguf_find_tensor(f, "weights.f32");
    const gguf_tensor *q8 = gguf_find_tensor(f, "weights.q8_0");
    const gguf_tensor *q4 = gguf_find_tensor(f, "weights.q4_1");
    bool ok = gguf_n_tensors(f) == 3 && w && q8 && q4 && gguf_tensor_at(f, 0) == w && gguf_tensor_at(f, 3) == NULL;
    ok = ok && !gguf_find_tensor(f, "weights") && !gguf_find_tensor(f, "");
    ok = ok && w->type == LMZ_F32 && w->n_dims == 2 && w->ne[0] == 4 && w->ne[1] == 2 && w->ne[2] == 1 &&
         w->ne[3] == 1 && w->nbytes == 32 && w->offset == 0;
    ok = ok && q8->type == LMZ_Q8_0 && q8->ne[0] == 32 && q8->ne[1] == 2 && q8->nbytes == 68 && q8->offset == 32;
    ok = ok && q4->type == LMZ_Q4_1 && q4->n_dims == 1 && q4->ne[0] == 64 && q4->ne[1] == 1 &&
         q4->nbytes == 40 && q4->offset == 128;
    /* Data section starts at the 32-aligned end of the header; the file ends with the last tensor. */
    ok = ok && ((const uint8_t *)w->data - base) % 32 == 0 && (const uint8_t *)q4->data + q4->nbytes == base + size;
    for (int i = 0; ok && i < 8; i++) {
        float v;
        memcpy(&v, (const uint8_t *)w->data + 4 * i, 4);
        ok = v == (float)i;
    }
    const uint8_t *q8_block = q8->data, *q4_block = q4->data;
    ok = ok && q8_block[0] == 0x00 && q8_block[1] == 0x3c && q4_block[0] == 0x00 && q4_block[1] == 0x3c;
    gguf_close(f);
    CHECK(ok);

    f = open_fixture("ok_alignment_64.gguf");
    if (!f) return;
    base = gguf_base(f, &size);
    ok = true;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        ok = ok && t->offset % 64 == 0 && ((const uint8_t *)t->data - base) % 64 == 0;
    }
    gguf_close(f);
    CHECK(ok);
}

TEST(gguf_fixture_version2) {
    gguf_file *f = open_fixture("ok_full_v2.gguf");
    if (!f) return;
    uint32_t v = gguf_version(f);
    uint64_t n = gguf_n_tensors(f);
    gguf_close(f);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(n, 3);
}

TEST(gguf_open_missing_file) {
    lmz_clear_error();
    CHECK(gguf_open(CORPUS_DIR "/no-such-file.gguf") == NULL);
    CHECK(strstr(lmz_last_error(), "no-such-file.gguf: cannot open model file"));
    CHECK(gguf_open(CORPUS_DIR) == NULL);
    CHECK(strstr(lmz_last_error(), "not a regular file"));
    CHECK(gguf_open_buffer(NULL, 0, NULL) == NULL);
    CHECK(strstr(lmz_last_error(), "(buffer): not a GGUF file"));
}

static gguf_file *open_model(void) {
    const char *path = test_model_path("smollm2");
    if (!path) {
        test_fail(__FILE__, __LINE__,
                  "SmolLM2-135M-Instruct.Q4_1.gguf not found in $LMZ_CACHE/models: run `make` to fetch it");
        return NULL;
    }
    gguf_file *f = gguf_open(path);
    if (!f) test_fail(__FILE__, __LINE__, "%s", lmz_last_error());
    return f;
}

TEST(gguf_model_metadata) {
    gguf_file *f = open_model();
    if (!f) return;
    gguf_str s = {0};
    uint32_t u = 0;
    uint64_t u64v = 0;
    float x = 0;
    bool b = true;
    bool ok = gguf_version(f) == 3 && gguf_n_keys(f) == 33;
    ok = ok && gguf_get_str(f, "general.architecture", &s) && gstr_is(s, "llama");
    ok = ok && gguf_key_type(f, gguf_find_key(f, "llama.block_count")) == GGUF_UINT32;
    ok = ok && gguf_get_u32(f, "llama.block_count", &u) && u == 30;
    ok = ok && gguf_get_u64(f, "llama.block_count", &u64v) && u64v == 30;
    ok = ok && gguf_get_u32(f, "llama.embedding_length", &u) && u == 576;
    ok = ok && gguf_get_u32(f, "llama.attention.head_count_kv", &u) && u == 3;
    ok = ok && gguf_get_f32(f, "llama.rope.freq_base", &x) && x == 100000.0f;
    ok = ok && gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &x) && fabsf(x - 1e-5f) < 1e-9f;
    ok = ok && gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) && !b;
    ok = ok && !gguf_get_str(f, "llama.block_count", &s) && !gguf_get_u32(f, "general.architecture", &u);
    ok = ok && !gguf_get_f32(f, "llama.block_count", &x) && !gguf_get_bool(f, "llama.block_count", &b);
    enum gguf_value_type et;
    uint64_t n = 0;
    ok = ok && gguf_get_array(f, "tokenizer.ggml.tokens", &et, &n) && et == GGUF_STRING && n == 49152;
    ok = ok && gstr_is(gguf_array_str(f, "tokenizer.ggml.tokens", 0), "<|endoftext|>");
    ok = ok && gstr_is(gguf_array_str(f, "tokenizer.ggml.tokens", 49151), "ectable");
    ok = ok && gguf_array_str(f, "tokenizer.ggml.tokens", 49152).len == 0;
    ok = ok && gguf_get_array(f, "tokenizer.ggml.token_type", &et, &n) && et == GGUF_INT32 && n == 49152;
    ok = ok && gguf_get_array(f, "tokenizer.ggml.merges", &et, &n) && et == GGUF_STRING && n == 48900;
    ok = ok && walk_everything(f, "model");
    gguf_close(f);
    CHECK(ok);
}

TEST(gguf_model_tensors) {
    gguf_file *f = open_model();
    if (!f) return;
    size_t size;
    const uint8_t *base = gguf_base(f, &size);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    bool ok = gguf_n_tensors(f) == 272 && emb && gguf_tensor_at(f, 272) == NULL;
    ok = ok && emb->type == LMZ_Q8_0 && emb->n_dims == 2 && emb->ne[0] == 576 && emb->ne[1] == 49152 &&
         emb->ne[2] == 1 && emb->ne[3] == 1 && emb->nbytes == 576ull / 32 * 34 * 49152;
    ok = ok && gguf_find_tensor(f, "blk.29.ffn_down.weight") && !gguf_find_tensor(f, "blk.30.ffn_down.weight");
    int n_types[3] = {0}; /* F32, Q4_1, Q8_0 */
    for (uint64_t i = 0; ok && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *data = t->data;
        ok = data >= base && data + t->nbytes <= base + size && (data - base) % 32 == 0;
        if (!ok) test_fail(__FILE__, __LINE__, "tensor '%s' data outside the mapping", t->name);
        n_types[0] += t->type == LMZ_F32;
        n_types[1] += t->type == LMZ_Q4_1;
        n_types[2] += t->type == LMZ_Q8_0;
    }
    gguf_close(f);
    CHECK(ok);
    CHECKF(n_types[0] + n_types[1] + n_types[2] == 272 && n_types[0] && n_types[1] && n_types[2],
           "tensor types: %d F32, %d Q4_1, %d Q8_0", n_types[0], n_types[1], n_types[2]);
}
