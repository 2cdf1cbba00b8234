/* test_corruption.c — damaged archives and misuse fail loudly, never crash and never
 * produce wrong output. Library level, with a small archive of the tiny model
 * (tests/tiny_model.h): every single-bit flip anywhere in the archive, every truncation
 * and an extension; payload damage and lying chunk-table entries inside a well-formed
 * container (so the decoder's own checks, not the container's checksums, must catch them);
 * the wrong model and a missing, unexpected or different context; failing reads and
 * writes. Then the CLI (./lmz, built by `make` before `make test`): a corrupt archive, an
 * existing output, --rm, -c, stdin to stdout, bad inputs and options, and a full disk
 * (/dev/full).
 *
 * The container's layout is being redesigned, so nothing here knows it: damage goes
 * through the bytes or through the container's own writer. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/codec/codec.h"
#include "../src/container/archive.h"
#include "../src/coder/bytebuf.h"
#include "../src/model/fingerprint.h"
#include "../src/util/error.h"
#include "../src/util/sha256.h"
#include "model_fixture.h"
#include "test.h"
#include "test_files.h"
#include "tiny_model.h"

/* ---------------- in-memory codec helpers ---------------- */

/* A codec for MODEL with an optional context, small chunks (several per archive). */
static bool codec_for(lmz_codec *c, const lmz_model *m, const lmz_tokenizer *tok, const uint8_t *sha,
                      const char *context) {
    if (lmz_codec_init(c, m, tok, sha, (const uint8_t *)context, context ? strlen(context) : 0, 1, 160, 0, 0) == 0)
        return true;
    test_fail(__FILE__, __LINE__, "codec setup: %s", lmz_last_error());
    lmz_codec_free(c);
    return false;
}

static bool compress_with(lmz_codec *c, const uint8_t *in, size_t len, lmz_bytebuf *archive) {
    lmz_memory_input r = {in, len, 0};
    lmz_codec_stats st;
    archive->len = 0;
    if (lmz_compress(c, lmz_read_memory, &r, lmz_sink_to_bytebuf, archive, &st, NULL, NULL) == 0) return true;
    test_fail(__FILE__, __LINE__, "compressing: %s", lmz_last_error());
    return false;
}

/* Opens and decompresses DATA; 0 with the output in OUT, or -1 with lmz_last_error() set. */
static int decode(lmz_codec *c, const uint8_t *data, size_t len, lmz_bytebuf *out) {
    lmz_archive a;
    lmz_clear_error();
    out->len = 0;
    if (lmz_archive_open(&a, data, len)) return -1;
    lmz_codec_stats st;
    int rc = lmz_decompress(c, &a, lmz_write_to_bytebuf, out, &st, NULL, NULL);
    lmz_archive_close(&a);
    return rc;
}

/* The input of the small archive (522 bytes): text (model-coded chunks) around binary (a
 * stored chunk). */
static size_t sample_input(uint8_t buf[1024]) {
    static const char text[] = "The archive must never decode to something else. Every chunk carries a CRC-32, the "
                               "container checks its header and itself, and the range decoder checks its end. ";
    size_t n = 0;
    memcpy(buf, text, sizeof text - 1);
    n += sizeof text - 1;
    for (int i = 0; i < 200; i++) buf[n++] = (uint8_t)(0x80 + (i * 37) % 128); /* invalid UTF-8 */
    memcpy(buf + n, text, sizeof text - 1);
    return n + sizeof text - 1;
}

/* Distinct failure messages seen, for the log: what a user would read (numbers as #). */
typedef struct {
    char msg[16][120];
    int n, counts[16];
} message_set;

static void note_message(message_set *m, const char *msg) {
    /* numbers vary (chunk indices, sizes, digests): messages that differ only in them count as one */
    char key[120];
    size_t n = 0;
    for (const char *p = msg; *p && n + 2 < sizeof key; p++) {
        bool digit = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f' && p > msg && p[-1] >= '0' && p[-1] <= '9');
        if (!digit) key[n++] = *p;
        else if (!n || key[n - 1] != '#') key[n++] = '#';
    }
    key[n] = 0;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->msg[i], key)) {
            m->counts[i]++;
            return;
        }
    if (m->n < 16) {
        snprintf(m->msg[m->n], sizeof m->msg[0], "%s", key);
        m->counts[m->n++] = 1;
    }
}

static void print_messages(const message_set *m) {
    for (int i = 0; i < m->n; i++) printf("      %5d x %s\n", m->counts[i], m->msg[i]);
}

/* Decodes damaged DATA, which must fail with a message (output that differs from ORIGINAL
 * is reported as the worse failure it is). Returns false after a test failure. */
static bool must_fail(lmz_codec *c, const uint8_t *data, size_t len, const uint8_t *original, size_t original_len,
                      const char *what, message_set *msgs) {
    lmz_bytebuf out = {0};
    int rc = decode(c, data, len, &out);
    bool ok = true;
    if (rc == 0 && (out.len != original_len || memcmp(out.data, original, original_len))) {
        test_fail(__FILE__, __LINE__, "%s: decoded to different bytes without an error", what);
        ok = false;
    } else if (rc == 0) {
        test_fail(__FILE__, __LINE__, "%s: accepted (the damage went unnoticed)", what);
        ok = false;
    } else if (!lmz_last_error()[0]) {
        test_fail(__FILE__, __LINE__, "%s: failed without a message", what);
        ok = false;
    } else {
        note_message(msgs, lmz_last_error());
    }
    lmz_bytebuf_free(&out);
    return ok;
}

/* The tiny model's codec and the small archive; false after a test failure. */
typedef struct {
    lmz_codec codec;
    uint8_t input[1024];
    size_t input_len;
    lmz_bytebuf archive;
} fixture;

static bool fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    lmz_model *m = tiny_model();
    if (!m || !codec_for(&f->codec, m, tiny_tokenizer(), tiny_model_sha256(), NULL)) return false;
    f->input_len = sample_input(f->input);
    if (!compress_with(&f->codec, f->input, f->input_len, &f->archive)) return false;
    lmz_bytebuf out = {0};
    bool ok = decode(&f->codec, f->archive.data, f->archive.len, &out) == 0 && out.len == f->input_len &&
              !memcmp(out.data, f->input, f->input_len);
    lmz_bytebuf_free(&out);
    if (!ok) test_fail(__FILE__, __LINE__, "the undamaged archive does not round-trip: %s", lmz_last_error());
    return ok;
}

static void fixture_free(fixture *f) {
    lmz_codec_free(&f->codec);
    lmz_bytebuf_free(&f->archive);
}

/* ---------------- library level ---------------- */

TEST(corrupt_every_bit_flip) {
    fixture f;
    if (!fixture_init(&f)) return;
    lmz_archive a;
    CHECK(lmz_archive_open(&a, f.archive.data, f.archive.len) == 0);
    uint64_t coded = 0, stored = 0;
    for (uint64_t i = 0; i < a.n_chunks; i++) a.chunks[i].meta.token_count ? coded++ : stored++;
    lmz_archive_close(&a);
    CHECKF(coded >= 2 && stored >= 1, "the sample archive should hold coded and stored chunks (%llu, %llu)",
           (unsigned long long)coded, (unsigned long long)stored);
    printf("    archive of %zu bytes (%llu coded chunks, %llu stored): flipping each of its %zu bits\n", f.archive.len,
           (unsigned long long)coded, (unsigned long long)stored, 8 * f.archive.len);
    uint8_t *copy = malloc(f.archive.len);
    CHECK(copy);
    message_set msgs = {0};
    for (size_t bit = 0; bit < 8 * f.archive.len && !test_failed(); bit++) {
        memcpy(copy, f.archive.data, f.archive.len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        char what[64];
        snprintf(what, sizeof what, "bit %zu of byte %zu flipped", bit % 8, bit / 8);
        must_fail(&f.codec, copy, f.archive.len, f.input, f.input_len, what, &msgs);
    }
    print_messages(&msgs);
    free(copy);
    fixture_free(&f);
}

TEST(corrupt_truncated_or_extended) {
    fixture f;
    if (!fixture_init(&f)) return;
    message_set msgs = {0};
    for (size_t len = 0; len < f.archive.len && !test_failed(); len++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", len);
        must_fail(&f.codec, f.archive.data, len, f.input, f.input_len, what, &msgs);
    }
    uint8_t *longer = malloc(f.archive.len + 1);
    CHECK(longer);
    memcpy(longer, f.archive.data, f.archive.len);
    for (int b = 0; b < 256 && !test_failed(); b += 85) {
        longer[f.archive.len] = (uint8_t)b;
        must_fail(&f.codec, longer, f.archive.len + 1, f.input, f.input_len, "one byte appended", &msgs);
    }
    print_messages(&msgs);
    free(longer);
    fixture_free(&f);
}

/* Rewrites the archive through the container's writer with chunk K's entry and payload
 * changed by EDIT, so that it is well formed and only the decoder can notice. Returns
 * false if the writer refuses the entry (then the reader would too). */
typedef void (*chunk_edit)(lmz_chunk_meta *meta, uint8_t *payload, size_t *payload_len, uint32_t arg);
typedef struct {
    chunk_edit edit;
    uint32_t arg;
    const char *what;
} edit_spec;

static bool rewrite(const lmz_bytebuf *archive, uint64_t k, chunk_edit edit, uint32_t arg, lmz_bytebuf *out) {
    lmz_archive a;
    if (lmz_archive_open(&a, archive->data, archive->len)) return false;
    out->len = 0;
    lmz_archive_writer *w = lmz_archive_writer_new(&a.params, lmz_sink_to_bytebuf, out);
    bool ok = w != NULL;
    for (uint64_t i = 0; ok && i < a.n_chunks; i++) {
        lmz_chunk_meta meta = a.chunks[i].meta;
        uint8_t payload[8192];
        size_t len = meta.payload_bytes;
        if (len + 1 > sizeof payload) {
            ok = false;
            break;
        }
        memcpy(payload, a.chunks[i].payload, len);
        if (i == k) {
            edit(&meta, payload, &len, arg);
            meta.payload_bytes = (uint32_t)len;
        }
        ok = lmz_archive_writer_add(w, &meta, payload) == 0;
    }
    ok = ok && lmz_archive_writer_finish(w) == 0;
    lmz_archive_writer_free(w);
    lmz_archive_close(&a);
    return ok;
}

static void flip_payload_bit(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t bit) {
    (void)m;
    p[(bit / 8) % *len] ^= (uint8_t)(1u << (bit % 8));
}
static void flip_crc_bit(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t bit) {
    (void)p, (void)len;
    m->crc32 ^= 1u << (bit % 32);
}
static void tokens_plus(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t d) {
    (void)p, (void)len;
    m->token_count += d;
}
static void tokens_minus(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t d) {
    (void)p, (void)len;
    if (m->token_count > d) m->token_count -= d;
}
static void input_minus_one(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t unused) {
    (void)p, (void)len, (void)unused;
    m->input_bytes--;
}
static void payload_cut(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t n) {
    (void)m, (void)p;
    *len = *len > n ? *len - n : 0;
}
static void payload_extended(lmz_chunk_meta *m, uint8_t *p, size_t *len, uint32_t byte) {
    (void)m;
    p[(*len)++] = (uint8_t)byte;
}

/* Damage the container's checksums cannot see: payload bits of coded and stored chunks
 * (a sample), and chunk-table entries that lie about the CRC, the token count, the input
 * size or the payload's end. The range decoder's end check, the byte count and the chunk's
 * CRC-32 must catch each. */
TEST(corrupt_payload_and_table_behind_valid_checksums) {
    fixture f;
    if (!fixture_init(&f)) return;
    lmz_archive a;
    CHECK(lmz_archive_open(&a, f.archive.data, f.archive.len) == 0);
    uint64_t n = a.n_chunks;
    uint32_t *payload_bits = calloc(n, sizeof *payload_bits);
    bool *coded = calloc(n, sizeof *coded);
    CHECK(payload_bits && coded);
    for (uint64_t i = 0; i < n; i++) {
        payload_bits[i] = 8 * a.chunks[i].meta.payload_bytes;
        coded[i] = a.chunks[i].meta.token_count != 0;
    }
    lmz_archive_close(&a);
    lmz_bytebuf bad = {0};
    message_set msgs = {0};
    int tried = 0, refused = 0;
    uint64_t rng = 42;
    for (uint64_t k = 0; k < n && !test_failed(); k++) {
        edit_spec edits[40];
        int m = 0;
        for (int s = 0; s < (coded[k] ? 24 : 4) && payload_bits[k]; s++) { /* bits spread over the payload */
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            edits[m++] = (edit_spec){flip_payload_bit, (uint32_t)((rng >> 33) % payload_bits[k]), "payload bit"};
        }
        edits[m++] = (edit_spec){flip_crc_bit, 0, "CRC bit 0"};
        edits[m++] = (edit_spec){flip_crc_bit, 31, "CRC bit 31"};
        edits[m++] = (edit_spec){input_minus_one, 0, "input size - 1"};
        if (coded[k]) {
            edits[m++] = (edit_spec){tokens_plus, 1, "token count + 1"};
            edits[m++] = (edit_spec){tokens_minus, 1, "token count - 1"};
            edits[m++] = (edit_spec){tokens_minus, 5, "token count - 5"};
            edits[m++] = (edit_spec){payload_cut, 1, "payload cut by 1 byte"};
            edits[m++] = (edit_spec){payload_cut, 3, "payload cut by 3 bytes"};
            edits[m++] = (edit_spec){payload_extended, 0x00, "payload + 0x00"};
            edits[m++] = (edit_spec){payload_extended, 0xA5, "payload + 0xA5"};
        }
        for (int e = 0; e < m && !test_failed(); e++) {
            char what[96];
            snprintf(what, sizeof what, "chunk %llu (%s): %s %u", (unsigned long long)k, coded[k] ? "coded" : "stored",
                     edits[e].what, edits[e].arg);
            if (!rewrite(&f.archive, k, edits[e].edit, edits[e].arg, &bad)) {
                refused++; /* the writer would not write it: the reader refuses it too */
                continue;
            }
            tried++;
            must_fail(&f.codec, bad.data, bad.len, f.input, f.input_len, what, &msgs);
        }
    }
    printf("    %d well-formed damaged archives rejected by the decoder (%d edits the writer refused):\n", tried,
           refused);
    print_messages(&msgs);
    CHECK(tried > 50);
    lmz_bytebuf_free(&bad);
    free(payload_bits);
    free(coded);
    fixture_free(&f);
}

static void fp_hex(const uint8_t *sha, char out[17]) {
    for (int i = 0; i < 8; i++) snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

static bool contains_nocase(const char *hay, const char *needle) {
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, strlen(needle))) return true;
    return false;
}

/* Decoding with another model is refused before anything is decoded, with a message that
 * names the model the archive needs (by name where lmz knows it, and by fingerprint). */
TEST(corrupt_wrong_model) {
    fixture f;
    if (!fixture_init(&f)) return;
    lmz_bytebuf out = {0};
    char want[17];
    fp_hex(tiny_model_sha256(), want);

    /* Same architecture, name and tokenizer, other weights: only the fingerprint differs. */
    char path[4300];
    snprintf(path, sizeof path, "%s.other", tiny_model_path());
    CHECKF(tiny_model_write(path, TINY_MODEL_SEED + 1) == 0, "%s", lmz_last_error());
    lmz_model *other = lmz_model_load(path);
    lmz_tokenizer *other_tok = other ? lmz_tokenizer_load(other->file) : NULL;
    remove(path); /* mapped: stays readable until freed */
    CHECKF(other && other_tok, "%s", lmz_last_error());
    uint8_t other_sha[32];
    size_t size;
    const void *base = gguf_base(other->file, &size);
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, base, size);
    lmz_sha256_final(&h, other_sha);
    lmz_codec c;
    bool ok = codec_for(&c, other, other_tok, other_sha, NULL);
    if (ok) {
        int rc = decode(&c, f.archive.data, f.archive.len, &out);
        printf("    other weights: %s\n", lmz_last_error());
        if (rc == 0 || !strstr(lmz_last_error(), want))
            test_fail(__FILE__, __LINE__, "another tiny model: %s (the message should show %s...)",
                      rc ? lmz_last_error() : "accepted", want);
        lmz_codec_free(&c);
    }
    lmz_tokenizer_free(other_tok);
    lmz_model_free(other);

    /* The real model for a tiny-model archive, and the tiny model for a real-model archive. */
    lmz_model *real = test_model("smollm2");
    lmz_tokenizer *real_tok = test_tokenizer("smollm2");
    if (!real || !real_tok || test_failed()) {
        fixture_free(&f);
        lmz_bytebuf_free(&out);
        return;
    }
    uint8_t real_sha[32];
    lmz_model_fingerprint(real, real_sha);
    lmz_bytebuf real_archive = {0};
    if (codec_for(&c, real, real_tok, real_sha, NULL)) {
        int rc = decode(&c, f.archive.data, f.archive.len, &out);
        printf("    SmolLM2 for a tiny-model archive: %s\n", lmz_last_error());
        if (rc == 0 || !strstr(lmz_last_error(), want))
            test_fail(__FILE__, __LINE__, "SmolLM2 for a tiny-model archive: %s", rc ? lmz_last_error() : "accepted");
        static const char hello[] = "Hello, world.";
        ok = compress_with(&c, (const uint8_t *)hello, sizeof hello - 1, &real_archive);
        lmz_codec_free(&c);
        if (ok) {
            int rc2 = decode(&f.codec, real_archive.data, real_archive.len, &out);
            printf("    tiny model for a SmolLM2 archive: %s\n", lmz_last_error());
            if (rc2 == 0 || !contains_nocase(lmz_last_error(), "smollm2"))
                test_fail(__FILE__, __LINE__, "the tiny model for a SmolLM2 archive: %s (should name SmolLM2)",
                          rc2 ? lmz_last_error() : "accepted");
        }
    }
    lmz_bytebuf_free(&real_archive);
    lmz_bytebuf_free(&out);
    fixture_free(&f);
}

/* An archive made with a context needs the same context; one made without refuses one. */
TEST(corrupt_wrong_context) {
    lmz_model *m = tiny_model();
    if (!m) return;
    const lmz_tokenizer *tok = tiny_tokenizer();
    const uint8_t *sha = tiny_model_sha256();
    uint8_t input[1024];
    size_t len = sample_input(input);
    static const char *const contexts[] = {NULL, "What must an archive never do?", "What must an archive never do!"};
    lmz_bytebuf archive = {0}, out = {0};
    for (int made = 0; made < 2; made++) {
        lmz_codec c;
        CHECK(codec_for(&c, m, tok, sha, contexts[made]));
        bool ok = compress_with(&c, input, len, &archive);
        lmz_codec_free(&c);
        CHECK(ok);
        for (int given = 0; given < 3; given++) {
            CHECK(codec_for(&c, m, tok, sha, contexts[given]));
            int rc = decode(&c, archive.data, archive.len, &out);
            lmz_codec_free(&c);
            if (given == made) {
                CHECKF(rc == 0 && out.len == len && !memcmp(out.data, input, len), "the right context: %s",
                       lmz_last_error());
                continue;
            }
            printf("    made %s, given %s: %s\n", made ? "with a context" : "without", given ? "a context" : "none",
                   lmz_last_error());
            CHECKF(rc != 0 && contains_nocase(lmz_last_error(), "context"),
                   "made with context %d, decoded with %d: %s", made, given, rc ? lmz_last_error() : "accepted");
        }
    }
    lmz_bytebuf_free(&archive);
    lmz_bytebuf_free(&out);
}

/* A header whose limits (context window, chunk size) are far beyond what its chunks need
 * is well formed; decoding sizes its memory by the chunks, so it still works. With the
 * real model a 2^20-position cache for 4 sequences would be ~96 GB. */
TEST(corrupt_header_limits_beyond_chunks) {
    lmz_model *m = test_model("smollm2");
    lmz_tokenizer *tok = test_tokenizer("smollm2");
    if (!m || !tok) return;
    uint8_t sha[32];
    lmz_model_fingerprint(m, sha);
    lmz_codec c;
    if (!codec_for(&c, m, tok, sha, NULL)) return;
    static const char text[] = "Hello, world. Hello again.";
    lmz_bytebuf archive = {0}, big = {0}, out = {0};
    lmz_archive a;
    bool ok = compress_with(&c, (const uint8_t *)text, sizeof text - 1, &archive) &&
              lmz_archive_open(&a, archive.data, archive.len) == 0;
    if (ok) {
        lmz_archive_params p = a.params;
        p.context_tokens = 1u << 20;
        p.chunk_bytes = 1u << 31;
        lmz_archive_writer *w = lmz_archive_writer_new(&p, lmz_sink_to_bytebuf, &big);
        ok = w != NULL;
        for (uint64_t i = 0; ok && i < a.n_chunks; i++)
            ok = lmz_archive_writer_add(w, &a.chunks[i].meta, a.chunks[i].payload) == 0;
        ok = ok && lmz_archive_writer_finish(w) == 0;
        lmz_archive_writer_free(w);
        lmz_archive_close(&a);
        if (!ok) test_fail(__FILE__, __LINE__, "rewriting the header: %s", lmz_last_error());
    }
    if (ok &&
        (decode(&c, big.data, big.len, &out) != 0 || out.len != sizeof text - 1 || memcmp(out.data, text, out.len)))
        test_fail(__FILE__, __LINE__, "a header with a 2^20-token window and 2 GiB chunks: %s", lmz_last_error());
    lmz_codec_free(&c);
    lmz_bytebuf_free(&archive);
    lmz_bytebuf_free(&big);
    lmz_bytebuf_free(&out);
}

/* Failing I/O: a read error, a sink that runs out of space while the archive is written,
 * a writer that fails while the output is: each ends the call with the I/O's message. */
typedef struct {
    lmz_memory_input r;
    size_t fail_after; /* bytes that succeed before every further call fails */
    lmz_bytebuf out;
} failing_io;

static long failing_read(void *ctx, uint8_t *buf, size_t len) {
    failing_io *io = ctx;
    if (io->r.pos >= io->fail_after) return lmz_fail("read error: simulated");
    return lmz_read_memory(&io->r, buf, len);
}

static int failing_sink(void *ctx, const void *data, size_t len) {
    failing_io *io = ctx;
    if (io->out.len + len > io->fail_after) return lmz_fail("write error: no space left (simulated)");
    return lmz_bytebuf_append(&io->out, data, len);
}

static int failing_write(void *ctx, const uint8_t *data, size_t len) { return failing_sink(ctx, data, len); }

TEST(corrupt_failing_io) {
    fixture f;
    if (!fixture_init(&f)) return;
    lmz_codec_stats st;
    for (size_t after = 0; after < f.input_len; after += 150) {
        failing_io io = {{f.input, f.input_len, 0}, after, {0}};
        lmz_bytebuf sink = {0};
        int rc = lmz_compress(&f.codec, failing_read, &io, lmz_sink_to_bytebuf, &sink, &st, NULL, NULL);
        lmz_bytebuf_free(&sink);
        CHECKF(rc != 0 && strstr(lmz_last_error(), "simulated"), "read error after %zu bytes: %s", after,
               rc ? lmz_last_error() : "ignored");
    }
    for (size_t after = 0; after < f.archive.len; after += 37) {
        failing_io io = {{f.input, f.input_len, 0}, after, {0}};
        int rc = lmz_compress(&f.codec, lmz_read_memory, &io.r, failing_sink, &io, &st, NULL, NULL);
        lmz_bytebuf_free(&io.out);
        CHECKF(rc != 0 && strstr(lmz_last_error(), "simulated"), "sink full after %zu bytes: %s", after,
               rc ? lmz_last_error() : "ignored");
    }
    lmz_archive a;
    CHECK(lmz_archive_open(&a, f.archive.data, f.archive.len) == 0);
    for (size_t after = 0; after < f.input_len; after += 100) {
        failing_io io = {{NULL, 0, 0}, after, {0}};
        int rc = lmz_decompress(&f.codec, &a, failing_write, &io, &st, NULL, NULL);
        lmz_bytebuf_free(&io.out);
        if (rc == 0 || !strstr(lmz_last_error(), "simulated")) {
            test_fail(__FILE__, __LINE__, "output full after %zu bytes: %s", after, rc ? lmz_last_error() : "ignored");
            break;
        }
    }
    lmz_archive_close(&a);
    fixture_free(&f);
}

/* ---------------- the command line ---------------- */

static char tmp_dir[TEST_PATH_MAX];
static char err_text[8192]; /* the last command's standard error */

/* A fresh temporary directory; the previous one is removed (all are at exit). */
static bool make_tmp_dir(void) {
    if (tmp_dir[0]) test_remove_dir(tmp_dir);
    return test_make_dir("cli", tmp_dir);
}

/* Runs `./lmz ARGS` through the shell, in the temporary directory's name space: %D in
 * ARGS stands for the directory, %M for the tiny model. Standard input is /dev/null unless
 * ARGS redirects it; standard error goes to err_text. Fingerprints are cached in the
 * directory, not in the user's cache. Returns the exit status (-1 if it did not exit). */
static int lmz_cli(const char *args) {
    char expanded[4096];
    size_t n = 0;
    for (const char *p = args; *p && n + 1 < sizeof expanded; p++) {
        const char *sub = NULL;
        if (p[0] == '%' && p[1] == 'D') sub = tmp_dir;
        else if (p[0] == '%' && p[1] == 'M') sub = tiny_model_path();
        if (sub) {
            n += (size_t)snprintf(expanded + n, sizeof expanded - n, "%s", sub);
            p++;
        } else {
            expanded[n++] = *p;
        }
    }
    expanded[n < sizeof expanded ? n : sizeof expanded - 1] = 0;
    char env[TEST_PATH_MAX + 32];
    snprintf(env, sizeof env, "LMZ_CACHE=%s/cache", tmp_dir);
    return test_run_lmz(env, expanded, tmp_dir, err_text, sizeof err_text);
}

static bool write_file(const char *name, const void *data, size_t len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return test_write_file(path, data, len);
}

static bool exists(const char *name) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return stat(path, &st) == 0;
}

/* The file's bytes equal DATA. */
static bool file_is(const char *name, const void *data, size_t len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    size_t got;
    char *buf = test_read_file(path, &got);
    bool same = buf && got == len && !memcmp(buf, data, len);
    free(buf);
    return same;
}

static char *read_tmp(const char *name, size_t *len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return test_read_file(path, len);
}

/* No temporary output (FILE.lmz-tmp-XXXXXX) was left behind. */
static bool no_temporaries(void) {
    DIR *d = opendir(tmp_dir);
    if (!d) return false;
    struct dirent *e;
    bool clean = true;
    while ((e = readdir(d)))
        if (strstr(e->d_name, "tmp")) clean = false;
    closedir(d);
    return clean;
}

/* Expect exit status != 0 and a message on stderr containing NEEDLE (case-insensitive). */
#define CHECK_CLI_FAILS(args, needle)                                                                             \
    do {                                                                                                          \
        int _rc = lmz_cli(args);                                                                                  \
        printf("    lmz %-44s -> %d: %.*s", args, _rc, (int)strcspn(err_text, "\n") + 1, err_text);               \
        CHECKF(_rc != 0 && _rc != -1, "lmz %s: exit status %d, expected a failure", args, _rc);                   \
        CHECKF(contains_nocase(err_text, needle), "lmz %s: stderr should mention '%s': %s", args, needle,         \
               err_text);                                                                                         \
    } while (0)

#define CHECK_CLI_OK(args)                                                                                        \
    do {                                                                                                          \
        int _rc = lmz_cli(args);                                                                                  \
        CHECKF(_rc == 0, "lmz %s: exit status %d: %s", args, _rc, err_text);                                      \
    } while (0)

TEST(cli_compress_decompress_and_refusals) {
    if (!test_have_lmz() || !tiny_model_path() || !make_tmp_dir()) return;
    uint8_t input[1024];
    size_t len = sample_input(input);
    CHECK(write_file("in.txt", input, len));

    CHECK_CLI_OK("-q -m %M %D/in.txt");
    CHECK(exists("in.txt.lmz") && file_is("in.txt", input, len));
    size_t alen;
    char *archive = read_tmp("in.txt.lmz", &alen);
    CHECK(archive);

    /* An existing output is refused without -f, and left as it was. */
    CHECK_CLI_FAILS("-q -m %M %D/in.txt", "exists");
    CHECK(file_is("in.txt.lmz", archive, alen));
    CHECK_CLI_OK("-q -f -m %M %D/in.txt");
    CHECK(file_is("in.txt.lmz", archive, alen)); /* the same bytes again */
    CHECK_CLI_FAILS("-q -d -m %M %D/in.txt.lmz", "exists");

    /* -c writes standard output; -o a named file; stdin to stdout both ways. */
    CHECK_CLI_OK("-q -d -c -m %M %D/in.txt.lmz > %D/out1");
    CHECK(file_is("out1", input, len));
    CHECK_CLI_OK("-q -d -m %M -o %D/out2 %D/in.txt.lmz");
    CHECK(file_is("out2", input, len));
    CHECK_CLI_OK("-q -m %M < %D/in.txt > %D/piped.lmz");
    CHECK(file_is("piped.lmz", archive, alen));
    CHECK_CLI_OK("-q -d -m %M < %D/piped.lmz > %D/out3");
    CHECK(file_is("out3", input, len));
    CHECK_CLI_OK("-q -t -m %M %D/in.txt.lmz");

    /* Short options bundle as in xz and zstd, a value option last with its value glued or
     * next; a value that looks like options (here a prompt) is not split. */
    CHECK_CLI_OK("-qdc -m %M %D/in.txt.lmz > %D/out4");
    CHECK(file_is("out4", input, len));
    CHECK_CLI_OK("-qdcT1 -m %M %D/in.txt.lmz > %D/out5");
    CHECK(file_is("out5", input, len));
    CHECK_CLI_OK("-qcT 3 -m %M %D/in.txt > %D/bundled.lmz");
    CHECK(file_is("bundled.lmz", archive, alen));
    CHECK_CLI_OK("-qtm %M %D/in.txt.lmz");
    CHECK_CLI_OK("-qc -m %M --prompt -dqx %D/in.txt > %D/prompted.lmz");
    CHECK_CLI_OK("-qdc -m %M --prompt -dqx %D/prompted.lmz > %D/out6");
    CHECK(file_is("out6", input, len));
    CHECK_CLI_FAILS("-qdx -m %M %D/in.txt.lmz", "unknown option -qdx");
    CHECK_CLI_FAILS("-qT0 -m %M %D/in.txt", "-T");

    /* --rm removes the input only after success. */
    CHECK(write_file("rm.txt", input, len));
    CHECK_CLI_OK("-q --rm -m %M %D/rm.txt");
    CHECK(!exists("rm.txt") && exists("rm.txt.lmz"));
    CHECK_CLI_OK("-q -d --rm -m %M %D/rm.txt.lmz");
    CHECK(file_is("rm.txt", input, len) && !exists("rm.txt.lmz"));
    /* ... and never when the output is standard output, as in gzip, xz and zstd. */
    CHECK_CLI_OK("-q -c --rm -m %M %D/rm.txt > %D/rm.out");
    CHECK(exists("rm.txt") && file_is("rm.out", archive, alen));

    /* Bad inputs and options. */
    CHECK_CLI_FAILS("-q -m %M %D/nonexistent", "nonexistent");
    CHECK_CLI_FAILS("-q -m %M %D", "directory");
    CHECK_CLI_FAILS("--no-such-option %D/in.txt", "unknown option");
    CHECK_CLI_FAILS("-q -d -m %M %D/in.txt", "suffix");
    CHECK_CLI_FAILS("-q -m %M -T 0 %D/in.txt", "-T");
    CHECK(no_temporaries());
    free(archive);
}

TEST(cli_model_by_name) {
    /* -m NAME finds a known model's file in the cache ($LMZ_CACHE/models), and says how to
     * fetch one that is missing. The tiny model stands in for SmolLM2's file. */
    if (!test_have_lmz() || !tiny_model_path() || !make_tmp_dir()) return;
    char dir[4200], link_path[4400];
    snprintf(dir, sizeof dir, "%s/cache/models", tmp_dir);
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", tmp_dir);
    CHECK((mkdir(cache, 0700) == 0 || errno == EEXIST) && mkdir(dir, 0700) == 0);
    snprintf(link_path, sizeof link_path, "%s/%s", dir, lmz_known_models[0].file_name);
    CHECK(symlink(tiny_model_path(), link_path) == 0);
    uint8_t input[1024];
    size_t len = sample_input(input);
    CHECK(write_file("in.txt", input, len));
    CHECK_CLI_OK("-q -m smollm2 %D/in.txt");
    CHECK_CLI_OK("-q -d -c -m %M %D/in.txt.lmz > %D/out"); /* the same model as by its path */
    CHECK(file_is("out", input, len));
    CHECK_CLI_OK("-q -t -m SmolLM2-135M-Instruct %D/in.txt.lmz");
    CHECK_CLI_FAILS("-q -t -m gemma3 %D/in.txt.lmz", "fetch_models.py gemma3");
    CHECK_CLI_FAILS("-q -t -m no-such-model %D/in.txt.lmz", "no-such-model");
}

TEST(cli_decompress_finds_the_archives_model) {
    /* Without -m, -d and -t use the model the archive names when lmz knows it (here Gemma 3,
     * found in the cache by its file name), not the default; a missing one gets the fetch
     * hint. -m still overrides. */
    char gemma[4096];
    if (!test_model_path("gemma3") || snprintf(gemma, sizeof gemma, "%s", test_model_path("gemma3")) <= 0) {
        test_fail(__FILE__, __LINE__, "gemma3 is not downloaded: python3 tools/fetch_models.py gemma3");
        return;
    }
    if (!test_have_lmz() || !tiny_model_path() || !make_tmp_dir()) return;
    char cache[4200], dir[4300], link_path[4400];
    snprintf(cache, sizeof cache, "%s/cache", tmp_dir);
    snprintf(dir, sizeof dir, "%s/models", cache);
    CHECK((mkdir(cache, 0700) == 0 || errno == EEXIST) && (mkdir(dir, 0700) == 0 || errno == EEXIST));
    const lmz_known_model *known = NULL;
    for (const lmz_known_model *m = lmz_known_models; m->name; m++)
        if (!strcmp(m->fetch_name, "gemma3")) known = m;
    CHECK(known);
    if (!known) return;
    snprintf(link_path, sizeof link_path, "%s/%s", dir, known->file_name);
    CHECK(symlink(gemma, link_path) == 0 || errno == EEXIST);
    uint8_t input[1024];
    size_t len = sample_input(input);
    CHECK(write_file("g.txt", input, len));
    CHECK_CLI_OK("-q -m gemma3 %D/g.txt");
    CHECK_CLI_OK("-q -d -c %D/g.txt.lmz > %D/g.out");
    CHECK(file_is("g.out", input, len));
    CHECK_CLI_OK("-q -t %D/g.txt.lmz");
    CHECK_CLI_FAILS("-q -t -m %M %D/g.txt.lmz", "needs model Gemma 3");
    CHECK(unlink(link_path) == 0);
    CHECK_CLI_FAILS("-q -t %D/g.txt.lmz", "fetch_models.py gemma3");
}

TEST(cli_corrupt_archive_and_full_disk) {
    if (!test_have_lmz() || !tiny_model_path() || !make_tmp_dir()) return;
    uint8_t input[1024];
    size_t len = sample_input(input);
    CHECK(write_file("in.txt", input, len));
    CHECK_CLI_OK("-q -m %M %D/in.txt");
    size_t alen;
    char *archive = read_tmp("in.txt.lmz", &alen);
    CHECK(archive && alen > 8);

    /* Damage at the start, middle and end: non-zero exit, a message, no output file, and
     * --rm keeps the archive. */
    static const double where[] = {0.02, 0.5, 0.98};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        archive[(size_t)(where[i] * (double)alen)] ^= 0x10;
        CHECK(write_file("bad.lmz", archive, alen));
        archive[(size_t)(where[i] * (double)alen)] ^= 0x10;
        CHECK_CLI_FAILS("-q -d --rm -m %M %D/bad.lmz", "bad.lmz");
        CHECK(!exists("bad") && exists("bad.lmz") && no_temporaries());
        CHECK_CLI_FAILS("-q -t -m %M %D/bad.lmz", "bad.lmz");
        CHECK_CLI_FAILS("-q -d -c -m %M %D/bad.lmz > %D/bad.out", "bad.lmz");
    }
    /* Damage only the decoder sees (a chunk's CRC, in a well-formed archive of several
     * chunks), found after earlier chunks were written: the partial output is removed. */
    CHECK_CLI_OK("-q -m %M --chunk 100 -o %D/chunks.lmz %D/in.txt");
    lmz_bytebuf good = {0}, late = {0};
    good.data = (uint8_t *)read_tmp("chunks.lmz", &good.len);
    CHECK(good.data);
    lmz_archive a;
    CHECK(lmz_archive_open(&a, good.data, good.len) == 0);
    uint64_t last = a.n_chunks - 1;
    lmz_archive_close(&a);
    CHECK(last >= 2 && rewrite(&good, last, flip_crc_bit, 7, &late));
    CHECK(write_file("late.lmz", late.data, late.len));
    CHECK_CLI_FAILS("-q -d --rm -m %M %D/late.lmz", "checksum");
    CHECK(!exists("late") && exists("late.lmz") && no_temporaries());
    lmz_bytebuf_free(&good);
    lmz_bytebuf_free(&late);

    CHECK(write_file("short.lmz", archive, alen / 2));
    CHECK_CLI_FAILS("-q -d -m %M %D/short.lmz", "short.lmz");
    CHECK(!exists("short") && no_temporaries());
    CHECK(write_file("text.lmz", input, len));
    CHECK_CLI_FAILS("-q -d -m %M %D/text.lmz", "not an lmz archive");

    /* The wrong model, a missing or wrong context. */
    const char *real = test_model_path("smollm2");
    if (real) {
        char args[4400];
        snprintf(args, sizeof args, "-q -d -c -m %s %%D/in.txt.lmz > %%D/wrong", real);
        char want[17];
        fp_hex(tiny_model_sha256(), want);
        CHECK_CLI_FAILS(args, want);
    }
    CHECK_CLI_OK("-q -m %M --prompt 'What is this?' -o %D/ctx.lmz %D/in.txt");
    CHECK_CLI_FAILS("-q -d -c -m %M %D/ctx.lmz > %D/ctx.out", "context");
    CHECK_CLI_FAILS("-q -d -c -m %M --prompt 'What is that?' %D/ctx.lmz > %D/ctx.out", "context");
    CHECK_CLI_OK("-q -d -c -m %M --prompt 'What is this?' %D/ctx.lmz > %D/ctx.out");
    CHECK(file_is("ctx.out", input, len));

    /* A full disk: writing to /dev/full fails with a message, either way. */
    CHECK_CLI_FAILS("-q -c -m %M %D/in.txt > /dev/full", "space");
    CHECK_CLI_FAILS("-q -d -c -m %M %D/in.txt.lmz > /dev/full", "space");
    free(archive);
}
