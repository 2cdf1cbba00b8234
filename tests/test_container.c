/* test_container.c — CRC known answers and the archive container: round trips (0, 1, many
 * chunks, sizes past 4 GiB), the overhead the format promises, every single-bit flip (and
 * every double flip in the header) and every truncation detected, lying fields caught with
 * their messages (archives forged here with any field values and valid checksums), the
 * writer's refusals, the model-check messages, the known-model list against
 * tools/fetch_models.py, and the regression corpus in tests/fixtures/archive/ (written by
 * tools/make_archive_corpus.py, an independent implementation of docs/format.md; fuzz/run.sh
 * seeds from it too). */
#include <stdbool.h>
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

/* ---- Checksums ---- */

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

TEST(container_crc16_known_answers) {
    /* CRC-16/CCITT-FALSE; the same values as python's binascii.crc_hqx(data, 0xFFFF). */
    CHECK_EQ_INT(lmz_archive_crc16("123456789", 9), 0x29B1);
    CHECK_EQ_INT(lmz_archive_crc16("", 0), 0xFFFF);
    CHECK_EQ_INT(lmz_archive_crc16("A", 1), 0xB915);
    CHECK_EQ_INT(lmz_archive_crc16("The quick brown fox jumps over the lazy dog", 43), 0x8FDD);
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
    for (int i = 0; i < LMZ_ARCHIVE_FP_BYTES; i++) p.model_fp[i] = (uint8_t)(0xA0 + i);
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
    if (rc == 0 && lmz_archive_writer_size(w) != out->len) rc = lmz_fail("writer miscounted its bytes");
    lmz_archive_writer_free(w);
    return rc;
}

/* N random chunks (stored and coded) within P's chunk size; payloads filled with random bytes. */
static test_chunk *random_chunks(size_t n, const lmz_archive_params *p) {
    test_chunk *c = calloc(n ? n : 1, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        lmz_chunk_meta *m = &c[i].meta;
        m->input_bytes = 1 + rnd() % p->chunk_bytes;
        bool stored = rnd() % 4 == 0;
        m->token_count = stored ? 0 : 1 + rnd() % m->input_bytes;
        m->payload_bytes = stored ? m->input_bytes : rnd() % (m->input_bytes + 16);
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
    int ok = memcmp(&a.params, p, sizeof *p) == 0 && a.n_chunks == n && a.size == buf->len;
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

/* Bytes of the archive format of a one-chunk archive: its size minus the payload's. */
static size_t one_chunk_overhead(const lmz_archive_params *p, lmz_chunk_meta m) {
    lmz_bytebuf buf = {0};
    uint8_t *payload = calloc(m.payload_bytes, 1);
    test_chunk c = {m, payload};
    size_t size = write_archive(p, &c, 1, &buf) == 0 ? buf.len - m.payload_bytes : 0;
    free(payload);
    lmz_bytebuf_free(&buf);
    return size;
}

/* ---- Round trips and size ---- */

TEST(container_roundtrip) {
    lmz_bytebuf buf = {0};
    lmz_archive_params p = sample_params();
    rng_state = 2;

    /* No chunks (empty input): header, empty table, trailer. */
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));

    /* The header alone reads back from a prefix of exactly its size (byte 5). */
    lmz_archive_params h;
    CHECK(lmz_archive_read_header(&h, buf.data, buf.data[5]) == 0);
    CHECK(memcmp(&h, &p, sizeof p) == 0);

    /* One chunk; then many, with every optional field used. */
    static const size_t counts[] = {1, 2, 17, 1000};
    p.flags = LMZ_ARCHIVE_HAS_CONTEXT | LMZ_ARCHIVE_HAS_ADAPTER;
    for (int i = 0; i < LMZ_ARCHIVE_FP_BYTES; i++) {
        p.adapter_fp[i] = (uint8_t)(i * 7 + 1);
        p.context_fp[i] = (uint8_t)(255 - i);
    }
    p.chunk_bytes = 3000;
    for (size_t ci = 0; ci < sizeof counts / sizeof *counts; ci++) {
        test_chunk *c = random_chunks(counts[ci], &p);
        CHECK(write_archive(&p, c, counts[ci], &buf) == 0);
        CHECK(archive_matches(&buf, &p, c, counts[ci]));
        free_chunks(c, counts[ci]);
    }

    /* Each flag alone, so each fingerprint is found at its place without the other. */
    p.flags = LMZ_ARCHIVE_HAS_ADAPTER;
    memset(p.context_fp, 0, sizeof p.context_fp);
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));
    p.flags = LMZ_ARCHIVE_HAS_CONTEXT;
    memcpy(p.context_fp, p.adapter_fp, sizeof p.context_fp);
    memset(p.adapter_fp, 0, sizeof p.adapter_fp);
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));
    /* The lossy mark, alone and with both fingerprints: it reads back and moves nothing. */
    p.flags = LMZ_ARCHIVE_LOSSY;
    memset(p.context_fp, 0, sizeof p.context_fp);
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));
    p.flags = LMZ_ARCHIVE_LOSSY | LMZ_ARCHIVE_HAS_CONTEXT | LMZ_ARCHIVE_HAS_ADAPTER;
    memset(p.adapter_fp, 0x33, sizeof p.adapter_fp);
    memset(p.context_fp, 0x44, sizeof p.context_fp);
    test_chunk *lossy_chunks = random_chunks(3, &p);
    CHECK(write_archive(&p, lossy_chunks, 3, &buf) == 0);
    CHECK(archive_matches(&buf, &p, lossy_chunks, 3));
    free_chunks(lossy_chunks, 3);

    /* Every number at its largest: the longest header. */
    p = sample_params();
    p.flags = LMZ_ARCHIVE_HAS_CONTEXT | LMZ_ARCHIVE_HAS_ADAPTER;
    memset(p.adapter_fp, 0xFF, sizeof p.adapter_fp);
    memset(p.context_fp, 0xFF, sizeof p.context_fp);
    p.engine_version = p.coder_version = p.context_tokens = p.chunk_bytes = UINT32_MAX;
    p.start_token = 0x7FFFFFFE;
    p.freq_total_bits = 31;
    p.vocab_size = 0x7FFFFFFF;
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));
    /* No start token. */
    p.start_token = LMZ_ARCHIVE_NO_TOKEN;
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK(archive_matches(&buf, &p, NULL, 0));
    lmz_bytebuf_free(&buf);
}

TEST(container_overhead) {
    /* The point of the format: small archives for 100-byte to few-KB inputs. Parameters of
     * lmz with SmolLM2-135M-Instruct and its defaults. */
    lmz_archive_params p = sample_params();
    p.start_token = 0;
    p.context_tokens = 1537;
    p.chunk_bytes = 4096;
    lmz_bytebuf buf = {0};
    CHECK(write_archive(&p, NULL, 0, &buf) == 0);
    CHECK_EQ_INT(buf.len, 33); /* empty input */
    CHECK_EQ_INT(buf.data[5], 28); /* the header */
    /* "hello\n": 2 tokens in 3 bytes. */
    CHECK_EQ_INT(one_chunk_overhead(&p, (lmz_chunk_meta){6, 2, 3, 0}), 40);
    /* A 2 KB response: 450 tokens in 420 bytes. */
    CHECK_EQ_INT(one_chunk_overhead(&p, (lmz_chunk_meta){2000, 450, 420, 0}), 43);
    /* A 200-byte snippet stored raw (it did not code smaller). */
    CHECK_EQ_INT(one_chunk_overhead(&p, (lmz_chunk_meta){200, 0, 200, 0}), 40);
    /* A context adds its fingerprint; so does an adapter. */
    p.flags = LMZ_ARCHIVE_HAS_CONTEXT;
    CHECK_EQ_INT(one_chunk_overhead(&p, (lmz_chunk_meta){6, 2, 3, 0}), 48);
    /* Marking an archive lossy costs nothing: the flags varint stays one byte. */
    p.flags = LMZ_ARCHIVE_LOSSY;
    CHECK_EQ_INT(one_chunk_overhead(&p, (lmz_chunk_meta){6, 2, 3, 0}), 40);
    p.flags = 0;
    /* Every further full chunk: 10 bytes (and one more once the table reaches 128 bytes, as
     * its size then needs a second byte). */
    size_t prev = 0;
    for (size_t n = 1; n <= 13; n++) {
        test_chunk *c = calloc(n, sizeof *c);
        size_t payloads = 0;
        for (size_t i = 0; i < n; i++) {
            c[i].meta = (lmz_chunk_meta){4096, 1000, 900, 0};
            c[i].payload = calloc(900, 1);
            payloads += 900;
        }
        CHECK(write_archive(&p, c, n, &buf) == 0);
        size_t overhead = buf.len - payloads;
        if (n > 1) CHECK_EQ_INT(overhead - prev, n == 13 ? 11 : 10);
        prev = overhead;
        free_chunks(c, n);
    }
    CHECK_EQ_INT(prev, 28 + 13 * 10 + 2 + 4);
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
                                     .crc32 = rnd()};
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

/* Payload byte I of the damage tests' archives (the forger below writes the same). */
static uint8_t pattern(size_t i) { return (uint8_t)(i * 7 + 1); }

/* The damage tests' archives: 0, two small chunks (coded, stored), and two chunks with both
 * fingerprints and no start token (the longest header here). */
static void damage_archive(int which, lmz_bytebuf *buf) {
    lmz_archive_params p = sample_params();
    p.chunk_bytes = 64;
    static uint8_t payload[12];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = pattern(i);
    test_chunk c[2] = {{{40, 9, 5, 0x11111111u}, payload}, {{7, 0, 7, 0x22222222u}, payload + 5}};
    if (which == 2) {
        p.flags = LMZ_ARCHIVE_HAS_CONTEXT | LMZ_ARCHIVE_HAS_ADAPTER;
        memset(p.adapter_fp, 0x5A, sizeof p.adapter_fp);
        memset(p.context_fp, 0xC3, sizeof p.context_fp);
        p.start_token = LMZ_ARCHIVE_NO_TOKEN;
    }
    if (write_archive(&p, c, which ? 2 : 0, buf) != 0) buf->len = 0;
}

TEST(container_every_bit_flip_detected) {
    lmz_bytebuf buf = {0};
    for (int which = 0; which < 3; which++) {
        damage_archive(which, &buf);
        CHECK(buf.len > 6);
        const size_t header = buf.data[5];
        int by_header_crc = 0;
        for (size_t byte = 0; byte < buf.len; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                buf.data[byte] ^= (uint8_t)(1u << bit);
                lmz_archive a;
                lmz_clear_error();
                int rc = lmz_archive_open(&a, buf.data, buf.len);
                const char *msg = lmz_last_error();
                lmz_archive_params p;
                int header_rc = lmz_archive_read_header(&p, buf.data, header);
                buf.data[byte] ^= (uint8_t)(1u << bit);
                CHECKF(rc == -1, "archive %d: flip of bit %d of byte %zu not detected", which, bit, byte);
                if (byte >= header) {
                    CHECKF(strstr(msg, "archive checksum mismatch"), "archive %d byte %zu bit %d: unclear message '%s'",
                           which, byte, bit, msg);
                    continue;
                }
                /* In the header, the message must say the header is bad (or not an archive). */
                CHECKF(strstr(msg, "header") || strstr(msg, "not an lmz archive") || strstr(msg, "truncated"),
                       "archive %d byte %zu bit %d: unclear message '%s'", which, byte, bit, msg);
                by_header_crc += strstr(msg, "header checksum mismatch") != NULL;
                /* The header alone, given exactly its bytes, is rejected too. */
                CHECKF(header_rc == -1, "archive %d, header only: flip of bit %d of byte %zu not detected", which, bit,
                       byte);
            }
        }
        printf("    archive %d: %zu bit flips detected (%d of the %zu in the header by its checksum)\n", which,
               buf.len * 8, by_header_crc, header * 8);
    }
    lmz_bytebuf_free(&buf);
}

TEST(container_every_header_double_flip_detected) {
    /* The header's CRC-16 detects every 1-, 2- and 3-bit error in a header (its polynomial has
     * Hamming distance 4 up to 4 KB); the size byte it depends on is guarded by the exact
     * parse. Check every pair of bits, on the header alone and in the whole archive. */
    lmz_bytebuf buf = {0};
    damage_archive(2, &buf);
    CHECK(buf.len > 6);
    const size_t bits = (size_t)buf.data[5] * 8;
    size_t pairs = 0;
    for (size_t i = 0; i < bits; i++) {
        for (size_t j = i + 1; j < bits; j++) {
            buf.data[i / 8] ^= (uint8_t)(1u << (i % 8));
            buf.data[j / 8] ^= (uint8_t)(1u << (j % 8));
            lmz_archive_params p;
            int header_rc = lmz_archive_read_header(&p, buf.data, bits / 8);
            lmz_archive a;
            int rc = lmz_archive_open(&a, buf.data, buf.len);
            buf.data[i / 8] ^= (uint8_t)(1u << (i % 8));
            buf.data[j / 8] ^= (uint8_t)(1u << (j % 8));
            CHECKF(header_rc == -1 && rc == -1, "flip of bits %zu and %zu not detected", i, j);
            pairs++;
        }
    }
    printf("    %zu double flips detected\n", pairs);
    lmz_bytebuf_free(&buf);
}

TEST(container_every_truncation_detected) {
    lmz_bytebuf buf = {0};
    for (int which = 0; which < 3; which++) {
        damage_archive(which, &buf);
        CHECK(buf.len > 0);
        for (size_t len = 0; len < buf.len; len++) {
            uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any read past LEN */
            memcpy(copy, buf.data, len);
            int ok = expect_error(copy, len, len == 0 ? "empty" : "truncated");
            free(copy);
            CHECKF(ok, "archive %d: prefix of %zu bytes", which, len);
        }
        /* Extra bytes after the end are not silently ignored either. */
        CHECK(lmz_bytebuf_append(&buf, "x", 1) == 0);
        CHECK(expect_error(buf.data, buf.len, "extra bytes"));
    }
    lmz_bytebuf_free(&buf);
}

/* ---- Forged archives: any field values, valid checksums ---- */

/* An archive described field by field, as stored; forge() writes it with both checksums
 * right, so that only the field checks can object. */
typedef struct {
    uint8_t version;
    uint64_t field[8];        /* header numbers as stored (the start token plus one) */
    size_t fp_bytes;          /* fingerprint bytes after them */
    uint64_t entry[2][4];     /* input bytes, tokens, payload bytes (not written for 0 tokens), CRC-32 */
    size_t n_entries;
    int64_t payload_delta;    /* payload area bytes beyond those the entries claim */
    size_t table_cut;         /* bytes cut from the end of the table */
    uint64_t table_size_plus; /* added to the stored table size */
    int overlong_at;          /* the Nth varint written (from 1) gets a needless 0x00 byte; 0: none */
} forged;

static int forged_varints;

static void forge_varint(lmz_bytebuf *b, uint64_t v, const forged *f, bool reversed) {
    uint8_t t[12];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)(v & 0x7F) | 0x80;
        v >>= 7;
    } while (v);
    if (++forged_varints == f->overlong_at) t[n++] = 0x00;
    else t[n - 1] &= 0x7F;
    for (size_t i = 0; i < n; i++) lmz_bytebuf_push(b, t[reversed ? n - 1 - i : i]);
}

static void forge_u32(lmz_bytebuf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) lmz_bytebuf_push(b, (uint8_t)(v >> (8 * i)));
}

static void forge(const forged *f, lmz_bytebuf *b) {
    b->len = 0;
    forged_varints = 0;
    lmz_bytebuf_append(b, "\x89LMZ", 4);
    lmz_bytebuf_push(b, f->version);
    lmz_bytebuf_push(b, 0); /* header size, set below */
    for (int i = 0; i < 8; i++) forge_varint(b, f->field[i], f, false);
    for (size_t i = 0; i < f->fp_bytes; i++) lmz_bytebuf_push(b, (uint8_t)(0xA0 + i));
    b->data[5] = (uint8_t)(b->len + 2);
    uint16_t crc = lmz_archive_crc16(b->data, b->len);
    lmz_bytebuf_push(b, (uint8_t)crc);
    lmz_bytebuf_push(b, (uint8_t)(crc >> 8));
    int64_t payload = f->payload_delta;
    for (size_t i = 0; i < f->n_entries; i++) payload += (int64_t)f->entry[i][f->entry[i][1] ? 2 : 0];
    for (int64_t i = 0; i < payload; i++) lmz_bytebuf_push(b, pattern((size_t)i));
    size_t table = b->len;
    for (size_t i = 0; i < f->n_entries; i++) {
        const uint64_t *e = f->entry[i];
        forge_varint(b, e[0], f, false);
        forge_varint(b, e[1], f, false);
        if (e[1]) forge_varint(b, e[2], f, false);
        forge_u32(b, (uint32_t)e[3]);
    }
    b->len -= f->table_cut;
    forge_varint(b, b->len - table + f->table_size_plus, f, true);
    forge_u32(b, lmz_crc32(b->data, b->len));
}

TEST(container_lying_fields_detected) {
    lmz_bytebuf buf = {0}, ref = {0};
    const forged base = {.version = 1,
                         .field = {0, 1, 1, 30, 49152, 2, 2048, 64},
                         .fp_bytes = 8,
                         .entry = {{40, 9, 5, 0x11111111u}, {7, 0, 7, 0x22222222u}},
                         .n_entries = 2};
    /* The forger and the writer agree on a valid archive, byte for byte. */
    damage_archive(1, &ref);
    forge(&base, &buf);
    CHECK(buf.len == ref.len && memcmp(buf.data, ref.data, buf.len) == 0);

#define LIE(change, expected)                          \
    do {                                               \
        forged f = base;                               \
        change;                                        \
        forge(&f, &buf);                               \
        CHECK(expect_error(buf.data, buf.len, expected)); \
    } while (0)

    /* Header fields. */
    LIE(f.version = 2, "archive format version 2 is not supported (this lmz reads version 1)");
    LIE(f.version = 0, "archive format version 0 is not supported");
    LIE(f.field[0] = 0x80, "archive header: flags 0x80 include features this lmz does not have");
    LIE(f.field[0] = LMZ_ARCHIVE_HAS_CONTEXT,
        "archive header: 8 bytes follow its numbers where its flags call for 16 fingerprint bytes");
    LIE(f.fp_bytes = 9, "archive header: 9 bytes follow its numbers where its flags call for 8 fingerprint bytes");
    LIE(f.fp_bytes = 0, "archive header: 0 bytes follow its numbers where its flags call for 8 fingerprint bytes");
    LIE(f.field[3] = 0, "archive header: frequency total 2^0 is outside 2^1..2^31");
    LIE(f.field[3] = 32, "archive header: frequency total 2^32 is outside");
    LIE(f.field[4] = 0, "archive header: vocabulary size 0 does not fit");
    LIE(f.field[4] = 1u << 30, "archive header: vocabulary size 1073741824 does not fit a frequency total of 2^30");
    LIE(f.field[4] = 1ull << 32, "archive header: the vocabulary size is too large");
    LIE(f.field[5] = 49153, "archive header: start token 49152 is outside the vocabulary (49152 tokens)");
    LIE(f.field[6] = 0, "archive header: context size is 0 tokens");
    LIE(f.field[7] = 0, "archive header: chunk size is 0 bytes");
    LIE(f.overlong_at = 2, "archive header: the engine version is not in its shortest form");

    /* Chunk table. */
    LIE(f.entry[0][0] = 65, "chunk 0: 65 input bytes exceed the archive's chunk size (64)");
    LIE(f.entry[0][0] = 0, "chunk 0: holds no input bytes");
    LIE(f.entry[0][0] = 1ull << 32, "chunk 0: the input size in the chunk table is too large");
    LIE(f.entry[0][1] = 41, "chunk 0: 41 tokens cannot make 40 input bytes");
    LIE(f.entry[1][1] = 8, "chunk 1: 8 tokens cannot make 7 input bytes");
    LIE(f.overlong_at = 11, "chunk 0: the payload size in the chunk table is not in its shortest form");
    LIE(f.table_cut = 1, "chunk 1: the checksum in the chunk table is cut off");
    LIE(f.table_cut = 5, "chunk 1: the token count in the chunk table is cut off");

    /* Sizes that do not add up. */
    LIE(f.payload_delta = 1, "chunk payloads add up to 12 bytes but the archive holds 13 payload bytes");
    LIE(f.payload_delta = -1, "chunk 1: compressed size exceeds the archive (7 bytes at payload offset 5; "
                              "the payload area has 11)");
    LIE((f.entry[0][2] = 6, f.payload_delta = -1), "chunk 1: compressed size exceeds the archive");
    LIE((f.entry[1][0] = 8, f.payload_delta = -1), "chunk 1: compressed size exceeds the archive");
    LIE((f.entry[0][2] = 0xFFFFFFFFu, f.payload_delta = -0xFFFFFFF0ll), "chunk 0: compressed size exceeds the archive");
    LIE((f.n_entries = 0, f.payload_delta = 3), "chunk payloads add up to 0 bytes but the archive holds 3");
    LIE(f.table_size_plus = 1000, "chunk table (1013 bytes) does not fit in the archive");
    LIE(f.table_size_plus = UINT64_MAX - 13, "chunk table (18446744073709551615 bytes) does not fit in the archive");
    LIE(f.overlong_at = 14, "archive trailer: the chunk table size is not in its shortest form");
#undef LIE

    /* Fixed header bytes that decide where the checksum is. */
    uint8_t *d = malloc(ref.len);
    memcpy(d, ref.data, ref.len);
    d[5] = 7;
    CHECK(expect_error(d, ref.len, "archive header is damaged (header size 7)"));
    /* A later version with a longer header than the bytes at hand is named as such. */
    d[4] = 7;
    d[5] = 250;
    CHECK(expect_error(d, ref.len, "archive format version 7 is not supported"));
    /* Signature, emptiness. */
    memcpy(d, ref.data, ref.len);
    d[1] = 'l';
    CHECK(expect_error(d, ref.len, "not an lmz archive"));
    CHECK(expect_error(d, 3, "not an lmz archive"));
    CHECK(expect_error(ref.data, 5, "archive is truncated (5 bytes)"));
    CHECK(expect_error(ref.data, 20, "archive is truncated (20 bytes; the header alone is 27)"));
    CHECK(expect_error(ref.data, 0, "archive is empty"));
    /* Checksums. */
    memcpy(d, ref.data, ref.len);
    d[ref.data[5] + 2] ^= 0x40;
    CHECK(expect_error(d, ref.len, "archive checksum mismatch"));
    memcpy(d, ref.data, ref.len);
    d[12] ^= 1;
    CHECK(expect_error(d, ref.len, "archive header checksum mismatch"));
    free(d);
    lmz_bytebuf_free(&buf);
    lmz_bytebuf_free(&ref);
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
    /* A fingerprint without its flag would be dropped silently. */
    p = sample_params();
    p.adapter_fp[3] = 1;
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    CHECK(strstr(lmz_last_error(), "adapter fingerprint is set but the has-adapter flag is not") != NULL);
    p = sample_params();
    p.context_fp[0] = 1;
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    CHECK(strstr(lmz_last_error(), "context fingerprint is set but the has-context flag is not") != NULL);
    p = sample_params();
    p.flags = LMZ_ARCHIVE_HAS_ADAPTER;
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    CHECK(strstr(lmz_last_error(), "the has-adapter flag is set but the adapter fingerprint is zero") != NULL);
    p = sample_params();
    p.flags = 8; /* the first bit without a meaning */
    CHECK(lmz_archive_writer_new(&p, to_buffer, &buf) == NULL);
    CHECK(buf.len == 0); /* nothing written on refusal */

    p = sample_params();
    lmz_archive_writer *w = lmz_archive_writer_new(&p, to_buffer, &buf);
    CHECK(w != NULL);
    lmz_chunk_meta bad = {.input_bytes = 10, .token_count = 11, .payload_bytes = 0};
    CHECK(lmz_archive_writer_add(w, &bad, NULL) == -1);
    CHECK(strstr(lmz_last_error(), "chunk 0: 11 tokens cannot make 10 input bytes") != NULL);
    bad = (lmz_chunk_meta){.input_bytes = 10, .token_count = 0, .payload_bytes = 9};
    CHECK(lmz_archive_writer_add(w, &bad, "123456789") == -1);
    CHECK(strstr(lmz_last_error(), "chunk 0: stored chunk of 10 input bytes has a 9-byte payload") != NULL);
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
    size_t budget = (size_t)buf.data[5] + 1;
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

/* ---- Models ---- */

/* SHA (32 bytes) from 64 hex digits. */
static void sha_from_hex(const char *hex, uint8_t sha[32]) {
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        sha[i] = (uint8_t)v;
    }
}

TEST(container_model_check_messages) {
    lmz_archive_params p = sample_params();
    uint8_t smol[32], gemma[32], other[32], adapter[32];
    sha_from_hex(lmz_known_models[0].sha256_hex, smol);
    sha_from_hex(lmz_known_models[1].sha256_hex, gemma);
    memcpy(p.model_fp, smol, LMZ_ARCHIVE_FP_BYTES);
    CHECK(lmz_archive_known_model(p.model_fp) == &lmz_known_models[0]);
    CHECK(lmz_archive_check_model(&p, "mine", smol, NULL) == 0);
    CHECK(lmz_archive_check_model(&p, "mine", smol, (const uint8_t[32]){0}) == 0);
    /* Only the fingerprint's 8 bytes are compared: they are all the archive has. */
    memcpy(other, smol, 32);
    other[31] ^= 1;
    CHECK(lmz_archive_check_model(&p, "mine", other, NULL) == 0);

    CHECK(lmz_archive_check_model(&p, "Gemma 3 270m", gemma, NULL) == -1);
    CHECK(strcmp(lmz_last_error(),
                 "this archive needs model SmolLM2-135M-Instruct (sha256 b179c9523d0e6a0f..., the 8-byte prefix the "
                 "archive stores; `python3 tools/fetch_models.py smollm2` fetches it); you gave Gemma 3 270M (sha256 "
                 "a5fd3b62230aa5ec...)") == 0);
    other[0] ^= 1;
    CHECK(lmz_archive_check_model(&p, "My Model 7B", other, NULL) == -1);
    CHECK(strstr(lmz_last_error(), "; you gave 'My Model 7B' (sha256 b079c9523d0e6a0f...)") != NULL);
    memset(p.model_fp, 0xEE, LMZ_ARCHIVE_FP_BYTES);
    CHECK(lmz_archive_check_model(&p, "x", smol, NULL) == -1);
    CHECK(strcmp(lmz_last_error(), "this archive needs a model lmz does not know by name (sha256 eeeeeeeeeeeeeeee..., "
                                   "the 8-byte prefix the archive stores); you gave SmolLM2-135M-Instruct (sha256 "
                                   "b179c9523d0e6a0f...)") == 0);

    memcpy(p.model_fp, smol, LMZ_ARCHIVE_FP_BYTES);
    memset(adapter, 0x5A, 32);
    CHECK(lmz_archive_check_model(&p, "mine", smol, adapter) == -1);
    CHECK(strstr(lmz_last_error(), "made without an adapter; you gave one (sha256 5a5a5a5a5a5a5a5a...)") != NULL);
    p.flags = LMZ_ARCHIVE_HAS_ADAPTER;
    memcpy(p.adapter_fp, adapter, LMZ_ARCHIVE_FP_BYTES);
    CHECK(lmz_archive_check_model(&p, "mine", smol, adapter) == 0);
    CHECK(lmz_archive_check_model(&p, "mine", smol, NULL) == -1);
    CHECK(strstr(lmz_last_error(), "needs an adapter (sha256 5a5a5a5a5a5a5a5a..., the 8-byte prefix the archive "
                                   "stores); you gave none") != NULL);
    adapter[7] = 0;
    CHECK(lmz_archive_check_model(&p, "mine", smol, adapter) == -1);
    CHECK(strstr(lmz_last_error(), "needs adapter sha256 5a5a5a5a5a5a5a5a...; you gave sha256 5a5a5a5a5a5a5a00...") !=
          NULL);
}

TEST(container_known_models_match_fetch_models) {
    /* Every model tools/fetch_models.py pins is in the list, under its name and digest. */
    size_t len;
    char *py = test_read_file("tools/fetch_models.py", &len);
    CHECKF(py != NULL, "cannot read tools/fetch_models.py (run from the repository root)");
    size_t known = 0;
    for (const lmz_known_model *m = lmz_known_models; m->name; m++, known++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\": (", m->fetch_name);
        char *entry = strstr(py, key);
        CHECKF(entry != NULL, "tools/fetch_models.py has no model %s", m->fetch_name);
        char *next = strstr(entry + strlen(key), "\": (");
        char *sha = strstr(entry, m->sha256_hex), *file = strstr(entry, m->file_name);
        CHECKF(sha && (!next || sha < next), "tools/fetch_models.py pins another sha256 for %s", m->fetch_name);
        CHECKF(file == entry + strlen(key) + 1, "tools/fetch_models.py names another file for %s", m->fetch_name);
        uint8_t fp[32];
        sha_from_hex(m->sha256_hex, fp);
        CHECK(lmz_archive_known_model(fp) == m);
    }
    size_t pinned = 0;
    for (char *s = strstr(py, "\": ("); s; s = strstr(s + 1, "\": (")) pinned++;
    CHECK_EQ_INT(pinned, known);
    free(py);
}

/* ---- Regression corpus ---- */

TEST(container_corpus) {
    /* index.txt: one line per file, "NAME ok" or "NAME error SUBSTRING". */
    size_t index_len;
    char *index = test_read_file(CORPUS_DIR "/index.txt", &index_len);
    CHECKF(index != NULL, "cannot read %s/index.txt (run from the repository root)", CORPUS_DIR);
    int files = 0, valid = 0;
    lmz_bytebuf again = {0};
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
            test_chunk *c = calloc(a.n_chunks + 1, sizeof *c);
            for (uint64_t i = 0; i < a.n_chunks; i++) {
                sum += a.chunks[i].meta.input_bytes;
                c[i] = (test_chunk){a.chunks[i].meta, (uint8_t *)a.chunks[i].payload};
            }
            CHECK(sum == a.original_size);
            /* The python writer and this one produce the same bytes. */
            CHECKF(write_archive(&a.params, c, a.n_chunks, &again) == 0 && again.len == len &&
                       memcmp(again.data, data, len) == 0,
                   "%s: rewriting it gives other bytes", name);
            free(c);
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
    lmz_bytebuf_free(&again);
    printf("    %d corpus files (%d valid)\n", files, valid);
    CHECK(files > 10 && valid >= 3);
}
