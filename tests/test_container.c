/* test_container.c — CRC-32 known answers and the archive container: round trips (0, 1, many
 * chunks, sizes past 4 GiB), every single-bit flip and every truncation detected, lying sizes
 * and bad fields caught with their messages, the writer's refusals, the model-check messages,
 * and the regression corpus in tests/fixtures/archive/ (written by tools/make_archive_corpus.py,
 * an independent implementation of docs/format.md; fuzz/run.sh seeds from it too). */
#include <stdlib.h>
#include <string.h>

#include "../src/coder/bytebuf.h"
#include "../src/container/archive.h"
#include "../src/util/crc32.h"
#include "../src/util/error.h"
#include "test.h"

#define CORPUS_DIR "tests/fixtures/archive"

static uint64_t rng_state;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* ---- CRC-32 ---- */

TEST(container_crc32_known_answers) {
    CHECK_EQ_INT(lmz_crc32("123456789", 9), 0xCBF43926u);
    CHECK_EQ_INT(lmz_crc32("", 0), 0);
    CHECK_EQ_INT(lmz_crc32("a", 1), 0xE8B7BE43u);
    CHECK_EQ_INT(lmz_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
    uint8_t zeros[32] = {0};
    CHECK_EQ_INT(lmz_crc32(zeros, sizeof zeros), 0x190A55ADu);
    /* Incremental: any split gives the whole buffer's CRC. */
    uint8_t buf[1000];
    rng_state = 1;
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rnd();
    uint32_t whole = lmz_crc32(buf, sizeof buf);
    for (int trial = 0; trial < 100; trial++) {
        size_t a = rnd() % (sizeof buf + 1), b = a + rnd() % (sizeof buf - a + 1);
        uint32_t c = lmz_crc32_update(0, buf, a);
        c = lmz_crc32_update(c, buf + a, b - a);
        c = lmz_crc32_update(c, buf + b, sizeof buf - b);
        CHECK_EQ_INT(c, whole);
    }
}

/* ---- Helpers ---- */

static int to_buffer(void *ctx, const void *data, size_t len) { return lmz_bytebuf_append(ctx, data, len); }

static lmz_archive_params sample_params(void) {
    lmz_archive_params p;
    memset(&p, 0, sizeof p);
    p.engine_version = 1;
    p.coder_version = 1;
    p.freq_total_bits = 30;
    p.vocab_size = 49152;
    p.start_token = 1;
    p.context_tokens = 2048;
    p.chunk_bytes = 1 << 16;
    for (int i = 0; i < 32; i++) p.model_sha256[i] = (uint8_t)(0xA0 + i);
    strcpy(p.model_name, "SmolLM2-135M-Instruct.Q4_1");
    return p;
}

typedef struct {
    lmz_chunk_meta meta;
    uint8_t *payload;
} test_chunk;

/* Writes an archive of the given chunks into OUT (emptied first). 0 or -1. */
static int write_archive(const lmz_archive_params *p, const test_chunk *chunks, size_t n, lmz_bytebuf *out) {
    out->len = 0;
    lmz_archive_writer *w = lmz_archive_writer_new(p, to_buffer, out);
    if (!w) return -1;
    for (size_t i = 0; i < n; i++)
        if (lmz_archive_writer_add(w, &chunks[i].meta, chunks[i].payload) != 0) {
            lmz_archive_writer_free(w);
            return -1;
        }
    int rc = lmz_archive_writer_finish(w);
    lmz_archive_writer_free(w);
    return rc;
}

/* N random chunks (raw and coded) within P's chunk size; payloads filled with random bytes. */
static test_chunk *random_chunks(size_t n, const lmz_archive_params *p) {
    test_chunk *c = calloc(n ? n : 1, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        lmz_chunk_meta *m = &c[i].meta;
        m->input_bytes = 1 + rnd() % p->chunk_bytes;
        m->flags = rnd() % 4 == 0 ? LMZ_CHUNK_RAW : 0;
        m->token_count = m->flags ? 0 : 1 + rnd() % m->input_bytes;
        m->payload_bytes = m->flags ? m->input_bytes : rnd() % (m->input_bytes + 16);
        m->crc32 = rnd();
        c[i].payload = malloc(m->payload_bytes ? m->payload_bytes : 1);
        for (uint32_t k = 0; k < m->payload_bytes; k++) c[i].payload[k] = (uint8_t)rnd();
    }
    return c;
}

static void free_chunks(test_chunk *c, size_t n) {
    for (size_t i = 0; i < n; i++) free(c[i].payload);
    free(c);
}

/* Opens BUF and checks it holds exactly P and CHUNKS. */
static int archive_matches(const lmz_bytebuf *buf, const lmz_archive_params *p, const test_chunk *chunks, size_t n) {
    lmz_archive a;
    if (lmz_archive_open(&a, buf->data, buf->len) != 0) {
        test_fail(__FILE__, __LINE__, "open: %s", lmz_last_error());
        return 0;
    }
    int ok = memcmp(&a.params, p, sizeof *p) == 0 && a.n_chunks == n;
    uint64_t offset = 0;
    for (size_t i = 0; ok && i < n; i++) {
        const lmz_archive_chunk *c = &a.chunks[i];
        ok = memcmp(&c->meta, &chunks[i].meta, sizeof c->meta) == 0 && c->input_offset == offset &&
             c->payload >= buf->data && c->payload + c->meta.payload_bytes <= buf->data + buf->len &&
             (c->meta.payload_bytes == 0 || memcmp(c->payload, chunks[i].payload, c->meta.payload_bytes) == 0);
        offset += c->meta.input_bytes;
    }
    ok = ok && a.original_size == offset;
    if (!ok) test_fail(__FILE__, __LINE__, "archive read back differs from what was written");
    lmz_archive_close(&a);
    return ok;
}

static int expect_error(const uint8_t *data, size_t len, const char *substring) {
    lmz_archive a;
    lmz_clear_error();
    if (lmz_archive_open(&a, data, len) == 0) {
        lmz_archive_close(&a);
        test_fail(__FILE__, __LINE__, "accepted; expected an error containing '%s'", substring);
        return 0;
    }
    if (!strstr(lmz_last_error(), substring)) {
        test_fail(__FILE__, __LINE__, "error '%s' does not contain '%s'", lmz_last_error(), substring);
        return 0;
    }
    return 1;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* After patching fields: recompute the header CRC and the archive CRC so that only the
 * field checks can catch the lie. */
static void reseal(uint8_t *data, size_t len) {
    put32(data + LMZ_ARCHIVE_HEADER_SIZE - 4, lmz_crc32(data, LMZ_ARCHIVE_HEADER_SIZE - 4));
    put32(data + len - 4, lmz_crc32(data, len - 4));
}

/* ---- Round trips ---- */

TEST(container_roundtrip) {
    lmz_bytebuf buf = {0};
    lmz_archive_params p = sample_params();
    rng_state = 2;

    /* No chunks (empty input): header + trailer only. */
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK_EQ_INT(buf.len, LMZ_ARCHIVE_HEADER_SIZE + LMZ_ARCHIVE_TRAILER_SIZE);
    CHECK(archive_matches(&buf, &p, NULL, 0));

    /* The header alone reads back from a prefix. */
    lmz_archive_params h;
    CHECK(lmz_archive_read_header(&h, buf.data, LMZ_ARCHIVE_HEADER_SIZE) == 0);
    CHECK(memcmp(&h, &p, sizeof p) == 0);

    /* One chunk; then many, with every optional field used. */
    static const size_t counts[] = {1, 2, 17, 1000};
    p.flags = LMZ_ARCHIVE_HAS_CONTEXT;
    for (int i = 0; i < 32; i++) {
        p.adapter_sha256[i] = (uint8_t)(i * 7 + 1);
        p.context_sha256[i] = (uint8_t)(255 - i);
    }
    p.chunk_bytes = 3000;
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
        test_chunk *c = random_chunks(counts[ci], &p);
        CHECK(write_archive(&p, c, counts[ci], &buf) == 0);
        size_t expect = LMZ_ARCHIVE_HEADER_SIZE + LMZ_ARCHIVE_TRAILER_SIZE + counts[ci] * LMZ_ARCHIVE_ENTRY_SIZE;
        for (size_t i = 0; i < counts[ci]; i++) expect += c[i].meta.payload_bytes;
        CHECK_EQ_INT(buf.len, expect);
        CHECK(archive_matches(&buf, &p, c, counts[ci]));
        free_chunks(c, counts[ci]);
    }

    /* Name of the maximum length, no start token, a 2^31 total with the largest vocabulary. */
    p = sample_params();
    memset(p.model_name, 'x', LMZ_ARCHIVE_NAME_MAX);
    p.model_name[LMZ_ARCHIVE_NAME_MAX] = 0;
    p.start_token = LMZ_ARCHIVE_NO_TOKEN;
    p.freq_total_bits = 31;
    p.vocab_size = 0x7FFFFFFF;
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));
    lmz_bytebuf_free(&buf);
}

TEST(container_large_sizes) {
    /* Chunks of 4 GiB - 1 input bytes (coded: tiny payloads), so the original size passes 2^32
     * and the offsets are 64-bit; plus a 1 MiB stored chunk. */
    lmz_bytebuf buf = {0};
    lmz_archive_params p = sample_params();
    p.chunk_bytes = 0xFFFFFFFFu;
    enum { N = 6 };
    test_chunk c[N];
    rng_state = 3;
    for (int i = 0; i < N; i++) {
        uint32_t raw = i == 3 ? 1u << 20 : 0;
        c[i].meta = (lmz_chunk_meta){.input_bytes = raw ? raw : 0xFFFFFFFFu,
                                     .token_count = raw ? 0 : 0xFFFFFFFFu,
                                     .payload_bytes = raw ? raw : 100 + (uint32_t)i,
                                     .crc32 = rnd(),
                                     .flags = raw ? LMZ_CHUNK_RAW : 0};
        c[i].payload = malloc(c[i].meta.payload_bytes);
        for (uint32_t k = 0; k < c[i].meta.payload_bytes; k++) c[i].payload[k] = (uint8_t)(k * 31 + i);
    }
    CHECK(write_archive(&p, c, N, &buf) == 0);
    CHECK(archive_matches(&buf, &p, c, N));
    lmz_archive a;
    CHECK(lmz_archive_open(&a, buf.data, buf.len) == 0);
    CHECK(a.original_size == 5ull * 0xFFFFFFFFu + (1u << 20));
    CHECK(a.chunks[5].input_offset == 4ull * 0xFFFFFFFFu + (1u << 20));
    lmz_archive_close(&a);
    for (int i = 0; i < N; i++) free(c[i].payload);
    lmz_bytebuf_free(&buf);
}

/* ---- Damage ---- */

/* A small archive with two chunks, shared by the damage tests. */
static void small_archive(lmz_bytebuf *buf) {
    lmz_archive_params p = sample_params();
    p.chunk_bytes = 64;
    static uint8_t coded[5] = {1, 2, 3, 4, 5}, raw[7] = "stored";
    test_chunk c[2] = {{{40, 9, 5, 0x11111111u, 0}, coded}, {{7, 0, 7, 0x22222222u, LMZ_CHUNK_RAW}, raw}};
    if (write_archive(&p, c, 2, buf) != 0) buf->len = 0;
}

TEST(container_every_bit_flip_detected) {
    lmz_bytebuf buf = {0};
    small_archive(&buf);
    CHECK(buf.len > LMZ_ARCHIVE_HEADER_SIZE);
    int by_header_crc = 0;
    for (size_t byte = 0; byte < buf.len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            buf.data[byte] ^= (uint8_t)(1u << bit);
            lmz_archive a;
            lmz_clear_error();
            int rc = lmz_archive_open(&a, buf.data, buf.len);
            const char *msg = lmz_last_error();
            buf.data[byte] ^= (uint8_t)(1u << bit);
            CHECKF(rc == -1, "flip of bit %d of byte %zu not detected", bit, byte);
            if (byte >= LMZ_ARCHIVE_HEADER_SIZE) continue;
            /* In the header, the message must say the header is bad (or not an archive). */
            CHECKF(strstr(msg, "header") || strstr(msg, "not an lmz archive") || strstr(msg, "version") ||
                       strstr(msg, "truncated"),
                   "byte %zu bit %d: unclear message '%s'", byte, bit, msg);
            by_header_crc += strstr(msg, "header checksum mismatch") != NULL;
            /* The header alone, given exactly its bytes, is rejected too. */
            buf.data[byte] ^= (uint8_t)(1u << bit);
            lmz_archive_params p;
            rc = lmz_archive_read_header(&p, buf.data, LMZ_ARCHIVE_HEADER_SIZE);
            buf.data[byte] ^= (uint8_t)(1u << bit);
            CHECKF(rc == -1, "header-only read: flip of bit %d of byte %zu not detected", bit, byte);
        }
    }
    printf("    %zu bit flips detected (%d of the header's by its checksum)\n", buf.len * 8, by_header_crc);
    lmz_bytebuf_free(&buf);
}

TEST(container_every_truncation_detected) {
    lmz_bytebuf buf = {0};
    small_archive(&buf);
    CHECK(buf.len > 0);
    for (size_t len = 0; len < buf.len; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any read past LEN */
        memcpy(copy, buf.data, len);
        int ok = expect_error(copy, len, len == 0 ? "empty" : "truncated");
        free(copy);
        CHECKF(ok, "prefix of %zu bytes", len);
    }
    /* Extra bytes after the end are not silently ignored either. */
    CHECK(lmz_bytebuf_append(&buf, "x", 1) == 0);
    CHECK(expect_error(buf.data, buf.len, "extra bytes"));
    lmz_bytebuf_free(&buf);
}

TEST(container_lying_fields_detected) {
    lmz_bytebuf buf = {0};
    small_archive(&buf);
    const size_t len = buf.len;
    CHECK(len > 0);
    uint8_t *orig = malloc(len), *d = malloc(len + 64);
    memcpy(orig, buf.data, len);
    const size_t trailer = len - LMZ_ARCHIVE_TRAILER_SIZE, table = trailer - 2 * LMZ_ARCHIVE_ENTRY_SIZE;
    const size_t e0 = table, e1 = table + LMZ_ARCHIVE_ENTRY_SIZE;
    enum { INPUT = 0, TOKENS = 4, PAYLOAD = 8, FLAGS = 16 };

#define LIE(patch, expected)                        \
    do {                                            \
        memcpy(d, orig, len);                       \
        patch;                                      \
        reseal(d, len);                             \
        CHECK(expect_error(d, len, expected));      \
    } while (0)

    /* Sizes. */
    LIE(put64(d + trailer, 48), "chunk sizes add up to 47 bytes but the archive says the original is 48");
    LIE(put64(d + trailer, 46), "chunk sizes add up to 47");
    LIE(put64(d + trailer + 8, 3), "chunk table (3 entries) does not fit in the archive");
    LIE(put64(d + trailer + 8, 1000), "chunk table (1000 entries) does not fit in the archive");
    LIE(put64(d + trailer + 8, 1ull << 62), "does not fit in the archive");
    /* One entry: the table is then only chunk 1's entry, and chunk 0's entry counts as payload. */
    LIE(put64(d + trailer + 8, 1), "chunk payloads add up to 7 bytes but the archive holds 32 payload bytes");
    LIE(put32(d + e0 + PAYLOAD, 6), "chunk 1: compressed size exceeds the archive");
    LIE(put32(d + e1 + PAYLOAD, 6), "chunk 1: stored chunk of 7 input bytes has a 6-byte payload");
    LIE(put32(d + e0 + PAYLOAD, 4), "chunk payloads add up to 11 bytes but the archive holds 12");
    LIE(put32(d + e0 + PAYLOAD, 0xFFFFFFFFu), "chunk 0: compressed size exceeds the archive");
    LIE(put32(d + e0 + INPUT, 65), "chunk 0: 65 input bytes exceed the archive's chunk size (64)");
    LIE(put32(d + e0 + INPUT, 0), "chunk 0: holds no input bytes");
    LIE(put32(d + e0 + TOKENS, 41), "chunk 0: 41 tokens cannot make 40 input bytes");
    LIE(put32(d + e0 + TOKENS, 0), "chunk 0: 0 tokens cannot make 40 input bytes");
    LIE(put32(d + e1 + TOKENS, 1), "chunk 1: a stored chunk has a token count (1)");
    LIE(put32(d + e1 + FLAGS, 3), "chunk 1: flags 0x3 include features");

    /* Header fields (the header CRC is resealed, so only the field checks can object). */
    LIE(put32(d + 16, 0x80), "archive header: flags 0x80 include features");
    LIE(put32(d + 28, 0), "frequency total 2^0 is outside");
    LIE(put32(d + 28, 32), "frequency total 2^32 is outside");
    LIE(put32(d + 32, 0), "vocabulary size 0 does not fit");
    LIE(put32(d + 32, 1u << 30), "vocabulary size 1073741824 does not fit a frequency total of 2^30");
    LIE(put32(d + 36, 49152), "start token 49152 is outside the vocabulary (49152 tokens)");
    LIE(put32(d + 40, 0), "context size is 0");
    LIE(put32(d + 44, 0), "chunk size is 0");
    LIE(d[112] = 1, "context fingerprint is set but the has-context flag is not");
    LIE(d[144] = '\n', "model name contains control characters");
    LIE(memset(d + 144, 'a', 64), "model name is longer than 63 bytes");
    LIE(d[200] = 'z', "model name field has bytes after the name's end");
    LIE(put32(d + 8, 2), "archive format version 2 is not supported (this lmz reads version 1)");
    LIE(put32(d + 8, 0), "archive format version 0 is not supported");
#undef LIE

    /* Fields that move the checksum itself. */
    memcpy(d, orig, len);
    put32(d + 12, 16);
    CHECK(expect_error(d, len, "archive header is damaged (header size 16)"));
    put32(d + 12, 1u << 20);
    CHECK(expect_error(d, len, "archive header is damaged"));
    memcpy(d, orig, len);
    put32(d + 12, 100);
    put32(d + 96, lmz_crc32(d, 96));
    CHECK(expect_error(d, len, "archive header size 100 is wrong for format version 1 (expected 212)"));
    /* A later version with a longer header than the bytes at hand is named as such. */
    memcpy(d, orig, len);
    put32(d + 8, 7);
    put32(d + 12, 4000);
    CHECK(expect_error(d, len, "archive format version 7 is not supported"));
    /* Signature, emptiness. */
    memcpy(d, orig, len);
    d[1] = 'l';
    CHECK(expect_error(d, len, "not an lmz archive"));
    CHECK(expect_error(d, 3, "not an lmz archive"));
    CHECK(expect_error(orig, 5, "archive is truncated (5 bytes)"));
    CHECK(expect_error(orig, 0, "archive is empty"));
    /* Checksums. */
    memcpy(d, orig, len);
    d[LMZ_ARCHIVE_HEADER_SIZE + 2] ^= 0x40;
    CHECK(expect_error(d, len, "archive checksum mismatch"));
    memcpy(d, orig, len);
    d[20] ^= 1;
    CHECK(expect_error(d, len, "archive header checksum mismatch"));
    free(orig);
    free(d);
    lmz_bytebuf_free(&buf);
}

/* ---- Writer ---- */

static int failing_sink(void *ctx, const void *data, size_t len) {
    (void)data;
    size_t *budget = ctx;
    if (len > *budget) return lmz_fail("disk full");
    *budget -= len;
    return 0;
}

TEST(container_writer_refusals) {
    lmz_bytebuf buf = {0};
    lmz_archive_params p = sample_params();
    p.vocab_size = 0;
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    CHECK(strstr(lmz_last_error(), "vocabulary size 0") != NULL);
    p = sample_params();
    memset(p.model_name, 'n', sizeof p.model_name); /* no NUL */
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    p = sample_params();
    p.model_name[3] = '\t';
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    CHECK(buf.len == 0); /* nothing written on refusal */

    p = sample_params();
    lmz_archive_writer *w = lmz_archive_writer_new(&p, to_buffer, &buf);
    CHECK(w != NULL);
    lmz_chunk_meta bad = {.input_bytes = 10, .token_count = 11, .payload_bytes = 0};
    CHECK(lmz_archive_writer_add(w, &bad, NULL) == -1);
    CHECK(strstr(lmz_last_error(), "chunk 0: 11 tokens cannot make 10 input bytes") != NULL);
    lmz_chunk_meta good = {.input_bytes = 10, .token_count = 3, .payload_bytes = 2, .crc32 = 5};
    CHECK(lmz_archive_writer_add(w, &good, "ab") == 0);
    CHECK(lmz_archive_writer_finish(w) == 0);
    CHECK(lmz_archive_writer_add(w, &good, "ab") == -1);
    CHECK(lmz_archive_writer_finish(w) == -1);
    lmz_archive_writer_free(w);
    lmz_archive a;
    CHECK(lmz_archive_open(&a, buf.data, buf.len) == 0);
    CHECK(a.n_chunks == 1 && a.original_size == 10);
    lmz_archive_close(&a);

    /* A failing sink: the error comes back, and the writer will not go on. */
    size_t budget = LMZ_ARCHIVE_HEADER_SIZE + 1;
    w = lmz_archive_writer_new(&p, failing_sink, &budget);
    CHECK(w != NULL);
    CHECK(lmz_archive_writer_add(w, &good, "ab") == -1);
    CHECK(strstr(lmz_last_error(), "disk full") != NULL);
    budget = 1000;
    CHECK(lmz_archive_writer_add(w, &good, "ab") == -1);
    CHECK(lmz_archive_writer_finish(w) == -1);
    CHECK(strstr(lmz_last_error(), "an earlier write failed") != NULL);
    lmz_archive_writer_free(w);
    budget = 10;
    CHECK(lmz_archive_writer_new(&p, failing_sink, &budget) == NULL);
    lmz_bytebuf_free(&buf);
}

TEST(container_model_check_messages) {
    lmz_archive_params p = sample_params();
    uint8_t sha[32], adapter[32];
    memcpy(sha, p.model_sha256, 32);
    memset(adapter, 0x5A, 32);
    CHECK(lmz_archive_check_model(&p, "mine", sha, NULL) == 0);
    CHECK(lmz_archive_check_model(&p, "mine", sha, (const uint8_t[32]){0}) == 0);
    sha[0] ^= 1;
    CHECK(lmz_archive_check_model(&p, "gemma-3-270m", sha, NULL) == -1);
    CHECK(strcmp(lmz_last_error(), "this archive needs model 'SmolLM2-135M-Instruct.Q4_1' (sha256 a0a1a2a3a4a5a6a7...); "
                                   "you gave 'gemma-3-270m' (sha256 a1a1a2a3a4a5a6a7...)") == 0);
    sha[0] ^= 1;
    CHECK(lmz_archive_check_model(&p, "mine", sha, adapter) == -1);
    CHECK(strstr(lmz_last_error(), "made without an adapter; you gave one (sha256 5a5a5a5a5a5a5a5a...)") != NULL);
    memcpy(p.adapter_sha256, adapter, 32);
    CHECK(lmz_archive_check_model(&p, "mine", sha, adapter) == 0);
    CHECK(lmz_archive_check_model(&p, "mine", sha, NULL) == -1);
    CHECK(strstr(lmz_last_error(), "needs an adapter (sha256 5a5a5a5a5a5a5a5a...); you gave none") != NULL);
    adapter[31] = 0;
    CHECK(lmz_archive_check_model(&p, "mine", sha, adapter) == -1);
    CHECK(strstr(lmz_last_error(), "needs adapter sha256 5a5a5a5a5a5a5a5a...; you gave sha256 5a5a") != NULL);
}

/* ---- Regression corpus ---- */

TEST(container_corpus) {
    /* index.txt: one line per file, "NAME ok" or "NAME error SUBSTRING". */
    size_t index_len;
    char *index = test_read_file(CORPUS_DIR "/index.txt", &index_len);
    CHECKF(index != NULL, "cannot read %s/index.txt (run from the repository root)", CORPUS_DIR);
    int files = 0, valid = 0;
    for (char *line = strtok(index, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], outcome[16];
        int used = 0;
        CHECKF(sscanf(line, "%127s %15s %n", name, outcome, &used) == 2, "bad index line '%s'", line);
        const char *expected = line + used;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, name);
        size_t len;
        uint8_t *data = (uint8_t *)test_read_file(path, &len);
        CHECKF(data != NULL, "cannot read %s", path);
        lmz_archive a;
        lmz_clear_error();
        int rc = lmz_archive_open(&a, data, len);
        if (strcmp(outcome, "ok") == 0) {
            CHECKF(rc == 0, "%s: %s", name, lmz_last_error());
            uint64_t sum = 0;
            for (uint64_t i = 0; i < a.n_chunks; i++) sum += a.chunks[i].meta.input_bytes;
            CHECK(sum == a.original_size);
            lmz_archive_close(&a);
            valid++;
        } else {
            CHECKF(rc == -1, "%s: accepted, expected error '%s'", name, expected);
            CHECKF(strstr(lmz_last_error(), expected) != NULL, "%s: error '%s' lacks '%s'", name, lmz_last_error(),
                   expected);
        }
        free(data);
        files++;
    }
    free(index);
    printf("    %d corpus files (%d valid)\n", files, valid);
    CHECK(files > 10 && valid >= 3);
}
