/* archive.c — writer and validating reader of the v1 container (layout: docs/format.md).
 * The writer and the reader share one set of field checks, so the writer cannot produce an
 * archive the reader rejects. All multi-byte fields are little-endian. */
#include "archive.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../coder/bytebuf.h"
#include "../util/crc32.h"
#include "../util/error.h"
#include "../util/sha256.h"

static const uint8_t MAGIC[8] = {0x89, 'L', 'M', 'Z', '\r', '\n', 0x1A, '\n'};
static const uint8_t END_MAGIC[4] = {'E', 'N', 'D', 0x1A};

/* Header field offsets (docs/format.md §3). */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_HEADER_SIZE = 12,
    H_FLAGS = 16,
    H_ENGINE_VERSION = 20,
    H_CODER_VERSION = 24,
    H_FREQ_TOTAL_BITS = 28,
    H_VOCAB_SIZE = 32,
    H_START_TOKEN = 36,
    H_CONTEXT_TOKENS = 40,
    H_CHUNK_BYTES = 44,
    H_MODEL_SHA = 48,
    H_ADAPTER_SHA = 80,
    H_CONTEXT_SHA = 112,
    H_MODEL_NAME = 144,
    H_CRC = 208,
};
_Static_assert(H_CRC + 4 == LMZ_ARCHIVE_HEADER_SIZE, "header layout");

/* The header size field lets a reader check the CRC of, and then name the version of, an
 * archive from a later format with a different header; this bounds what it will accept. */
#define HEADER_SIZE_MIN 20
#define HEADER_SIZE_MAX 65536

#define KNOWN_FLAGS LMZ_ARCHIVE_HAS_CONTEXT
#define KNOWN_CHUNK_FLAGS LMZ_CHUNK_RAW

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

/* ---- Shared field checks ---- */

/* NAME (NUL-terminated within LMZ_ARCHIVE_NAME_MAX + 1 bytes) is printable enough to quote
 * in a message: no control characters. */
static int check_name(const char *name) {
    const char *end = memchr(name, 0, LMZ_ARCHIVE_NAME_MAX + 1);
    if (!end) return lmz_fail("archive header: model name is longer than %d bytes", LMZ_ARCHIVE_NAME_MAX);
    for (const unsigned char *c = (const unsigned char *)name; c < (const unsigned char *)end; c++)
        if (*c < 0x20 || *c == 0x7F) return lmz_fail("archive header: model name contains control characters");
    return 0;
}

static int check_params(const lmz_archive_params *p) {
    if (p->flags & ~KNOWN_FLAGS)
        return lmz_fail("archive header: flags 0x%x include features this lmz does not have", p->flags);
    if (p->freq_total_bits < 1 || p->freq_total_bits > 31)
        return lmz_fail("archive header: frequency total 2^%u is outside 2^1..2^31", p->freq_total_bits);
    if (p->vocab_size < 1 || p->vocab_size >= 1u << p->freq_total_bits)
        return lmz_fail("archive header: vocabulary size %u does not fit a frequency total of 2^%u",
                        p->vocab_size, p->freq_total_bits);
    if (p->start_token != LMZ_ARCHIVE_NO_TOKEN && p->start_token >= p->vocab_size)
        return lmz_fail("archive header: start token %u is outside the vocabulary (%u tokens)", p->start_token,
                        p->vocab_size);
    if (p->context_tokens == 0) return lmz_fail("archive header: context size is 0 tokens");
    if (p->chunk_bytes == 0) return lmz_fail("archive header: chunk size is 0 bytes");
    if (!(p->flags & LMZ_ARCHIVE_HAS_CONTEXT) && !all_zero(p->context_sha256, 32))
        return lmz_fail("archive header: context fingerprint is set but the has-context flag is not");
    return check_name(p->model_name);
}

static int check_chunk(const lmz_chunk_meta *m, uint64_t index, uint32_t chunk_bytes) {
    unsigned long long i = (unsigned long long)index;
    if (m->flags & ~KNOWN_CHUNK_FLAGS)
        return lmz_fail("chunk %llu: flags 0x%x include features this lmz does not have", i, m->flags);
    if (m->input_bytes == 0) return lmz_fail("chunk %llu: holds no input bytes", i);
    if (m->input_bytes > chunk_bytes)
        return lmz_fail("chunk %llu: %u input bytes exceed the archive's chunk size (%u)", i, m->input_bytes,
                        chunk_bytes);
    if (m->flags & LMZ_CHUNK_RAW) {
        if (m->token_count != 0) return lmz_fail("chunk %llu: a stored chunk has a token count (%u)", i, m->token_count);
        if (m->payload_bytes != m->input_bytes)
            return lmz_fail("chunk %llu: stored chunk of %u input bytes has a %u-byte payload", i, m->input_bytes,
                            m->payload_bytes);
    } else if (m->token_count == 0 || m->token_count > m->input_bytes) {
        /* Every token is at least one byte: this also bounds the decoder's work by the size. */
        return lmz_fail("chunk %llu: %u tokens cannot make %u input bytes", i, m->token_count, m->input_bytes);
    }
    return 0;
}

/* ---- Writer ---- */

struct lmz_archive_writer {
    lmz_archive_sink sink;
    void *ctx;
    uint32_t crc;         /* CRC-32 of every byte written so far */
    uint32_t chunk_bytes; /* from the header: the per-chunk input limit */
    lmz_bytebuf table;    /* serialized chunk table, written at the end */
    uint64_t n_chunks;
    uint64_t original_size;
    bool broken; /* a write failed: the output is incomplete, refuse to go on */
    bool finished;
};

static int emit(lmz_archive_writer *w, const void *data, size_t len) {
    if (len == 0) return 0;
    w->crc = lmz_crc32_update(w->crc, data, len);
    if (w->sink(w->ctx, data, len) != 0) {
        w->broken = true;
        return -1;
    }
    return 0;
}

lmz_archive_writer *lmz_archive_writer_new(const lmz_archive_params *p, lmz_archive_sink sink, void *ctx) {
    if (check_params(p) != 0) return NULL;
    lmz_archive_writer *w = lmz_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->sink = sink;
    w->ctx = ctx;
    w->chunk_bytes = p->chunk_bytes;

    uint8_t h[LMZ_ARCHIVE_HEADER_SIZE] = {0};
    memcpy(h + H_MAGIC, MAGIC, sizeof MAGIC);
    put32(h + H_VERSION, LMZ_ARCHIVE_VERSION);
    put32(h + H_HEADER_SIZE, LMZ_ARCHIVE_HEADER_SIZE);
    put32(h + H_FLAGS, p->flags);
    put32(h + H_ENGINE_VERSION, p->engine_version);
    put32(h + H_CODER_VERSION, p->coder_version);
    put32(h + H_FREQ_TOTAL_BITS, p->freq_total_bits);
    put32(h + H_VOCAB_SIZE, p->vocab_size);
    put32(h + H_START_TOKEN, p->start_token);
    put32(h + H_CONTEXT_TOKENS, p->context_tokens);
    put32(h + H_CHUNK_BYTES, p->chunk_bytes);
    memcpy(h + H_MODEL_SHA, p->model_sha256, 32);
    memcpy(h + H_ADAPTER_SHA, p->adapter_sha256, 32);
    memcpy(h + H_CONTEXT_SHA, p->context_sha256, 32);
    memcpy(h + H_MODEL_NAME, p->model_name, strlen(p->model_name)); /* the rest stays zero */
    put32(h + H_CRC, lmz_crc32(h, H_CRC));
    if (emit(w, h, sizeof h) != 0) {
        lmz_archive_writer_free(w);
        return NULL;
    }
    return w;
}

static int writer_usable(const lmz_archive_writer *w) {
    if (w->broken) return lmz_fail("archive writer: an earlier write failed");
    if (w->finished) return lmz_fail("archive writer: already finished");
    return 0;
}

int lmz_archive_writer_add(lmz_archive_writer *w, const lmz_chunk_meta *m, const void *payload) {
    if (writer_usable(w) != 0 || check_chunk(m, w->n_chunks, w->chunk_bytes) != 0) return -1;
    uint8_t e[LMZ_ARCHIVE_ENTRY_SIZE];
    put32(e + 0, m->input_bytes);
    put32(e + 4, m->token_count);
    put32(e + 8, m->payload_bytes);
    put32(e + 12, m->crc32);
    put32(e + 16, m->flags);
    if (lmz_bytebuf_append(&w->table, e, sizeof e) != 0) return -1;
    if (emit(w, payload, m->payload_bytes) != 0) return -1;
    w->n_chunks++;
    w->original_size += m->input_bytes;
    return 0;
}

int lmz_archive_writer_finish(lmz_archive_writer *w) {
    if (writer_usable(w) != 0) return -1;
    uint8_t t[LMZ_ARCHIVE_TRAILER_SIZE];
    put64(t + 0, w->original_size);
    put64(t + 8, w->n_chunks);
    memcpy(t + 16, END_MAGIC, sizeof END_MAGIC);
    if (emit(w, w->table.data, w->table.len) != 0 || emit(w, t, 20) != 0) return -1;
    put32(t + 20, w->crc); /* covers everything before it, the trailer's first 20 bytes included */
    if (emit(w, t + 20, 4) != 0) return -1;
    w->finished = true;
    return 0;
}

void lmz_archive_writer_free(lmz_archive_writer *w) {
    if (!w) return;
    lmz_bytebuf_free(&w->table);
    free(w);
}

/* ---- Reader ---- */

int lmz_archive_read_header(lmz_archive_params *p, const uint8_t *data, size_t size) {
    if (size == 0) return lmz_fail("archive is empty (0 bytes)");
    if (memcmp(data, MAGIC, size < sizeof MAGIC ? size : sizeof MAGIC) != 0)
        return lmz_fail("not an lmz archive (it does not start with the lmz signature)");
    if (size < H_FLAGS) return lmz_fail("archive is truncated (%zu bytes)", size);
    uint32_t version = get32(data + H_VERSION);
    uint32_t header_size = get32(data + H_HEADER_SIZE);
    if (header_size < HEADER_SIZE_MIN || header_size > HEADER_SIZE_MAX)
        return lmz_fail("archive header is damaged (header size %u)", header_size);
    if (size < header_size) {
        /* The checksum cannot be checked; a version this lmz does not read is the likelier story. */
        if (version != LMZ_ARCHIVE_VERSION)
            return lmz_fail("archive format version %u is not supported (this lmz reads version %d)", version,
                            LMZ_ARCHIVE_VERSION);
        return lmz_fail("archive is truncated (%zu bytes; the header alone is %u)", size, header_size);
    }
    if (get32(data + header_size - 4) != lmz_crc32(data, header_size - 4))
        return lmz_fail("archive header checksum mismatch (the header is damaged)");
    if (version != LMZ_ARCHIVE_VERSION)
        return lmz_fail("archive format version %u is not supported (this lmz reads version %d)", version,
                        LMZ_ARCHIVE_VERSION);
    if (header_size != LMZ_ARCHIVE_HEADER_SIZE)
        return lmz_fail("archive header size %u is wrong for format version %d (expected %d)", header_size,
                        LMZ_ARCHIVE_VERSION, LMZ_ARCHIVE_HEADER_SIZE);

    memset(p, 0, sizeof *p);
    p->flags = get32(data + H_FLAGS);
    p->engine_version = get32(data + H_ENGINE_VERSION);
    p->coder_version = get32(data + H_CODER_VERSION);
    p->freq_total_bits = get32(data + H_FREQ_TOTAL_BITS);
    p->vocab_size = get32(data + H_VOCAB_SIZE);
    p->start_token = get32(data + H_START_TOKEN);
    p->context_tokens = get32(data + H_CONTEXT_TOKENS);
    p->chunk_bytes = get32(data + H_CHUNK_BYTES);
    memcpy(p->model_sha256, data + H_MODEL_SHA, 32);
    memcpy(p->adapter_sha256, data + H_ADAPTER_SHA, 32);
    memcpy(p->context_sha256, data + H_CONTEXT_SHA, 32);
    const uint8_t *name = data + H_MODEL_NAME;
    const uint8_t *nul = memchr(name, 0, H_CRC - H_MODEL_NAME);
    if (!nul) return lmz_fail("archive header: model name is longer than %d bytes", LMZ_ARCHIVE_NAME_MAX);
    if (!all_zero(nul, (size_t)(data + H_CRC - nul)))
        return lmz_fail("archive header: model name field has bytes after the name's end");
    memcpy(p->model_name, name, (size_t)(nul - name));
    return check_params(p);
}

/* Walks the table, checking every entry and that sizes add up, and fills A's chunks. */
static int read_table(lmz_archive *a, const uint8_t *data, const uint8_t *table, size_t payload_size) {
    uint64_t offset = 0, input_sum = 0;
    for (uint64_t i = 0; i < a->n_chunks; i++) {
        const uint8_t *e = table + i * LMZ_ARCHIVE_ENTRY_SIZE;
        lmz_archive_chunk *c = &a->chunks[i];
        c->meta.input_bytes = get32(e + 0);
        c->meta.token_count = get32(e + 4);
        c->meta.payload_bytes = get32(e + 8);
        c->meta.crc32 = get32(e + 12);
        c->meta.flags = get32(e + 16);
        if (check_chunk(&c->meta, i, a->params.chunk_bytes) != 0) return -1;
        if (c->meta.payload_bytes > payload_size - offset)
            return lmz_fail("chunk %llu: compressed size exceeds the archive (%u bytes at payload offset %llu; "
                            "the payload area has %zu)",
                            (unsigned long long)i, c->meta.payload_bytes, (unsigned long long)offset, payload_size);
        c->payload = data + LMZ_ARCHIVE_HEADER_SIZE + offset;
        c->input_offset = input_sum;
        offset += c->meta.payload_bytes;
        input_sum += c->meta.input_bytes; /* < 2^64: at most 2^60 chunks of < 2^32 bytes */
    }
    if (offset != payload_size)
        return lmz_fail("chunk payloads add up to %llu bytes but the archive holds %zu payload bytes",
                        (unsigned long long)offset, payload_size);
    if (input_sum != a->original_size)
        return lmz_fail("chunk sizes add up to %llu bytes but the archive says the original is %llu bytes",
                        (unsigned long long)input_sum, (unsigned long long)a->original_size);
    return 0;
}

static int open_archive(lmz_archive *a, const uint8_t *data, size_t size) {
    if (lmz_archive_read_header(&a->params, data, size) != 0) return -1;
    size_t body = size - LMZ_ARCHIVE_HEADER_SIZE; /* payloads + table + trailer */
    const uint8_t *t = data + size - LMZ_ARCHIVE_TRAILER_SIZE;
    if (body < LMZ_ARCHIVE_TRAILER_SIZE || memcmp(t + 16, END_MAGIC, sizeof END_MAGIC) != 0)
        return lmz_fail("archive is truncated (or has extra bytes after its end): no end-of-archive record");
    if (get32(t + 20) != lmz_crc32(data, size - 4))
        return lmz_fail("archive checksum mismatch (the archive is damaged)");
    a->original_size = get64(t + 0);
    a->n_chunks = get64(t + 8);
    size_t room = body - LMZ_ARCHIVE_TRAILER_SIZE; /* payloads + table */
    if (a->n_chunks > room / LMZ_ARCHIVE_ENTRY_SIZE)
        return lmz_fail("chunk table (%llu entries) does not fit in the archive", (unsigned long long)a->n_chunks);
    size_t table_size = (size_t)a->n_chunks * LMZ_ARCHIVE_ENTRY_SIZE;
    a->chunks = lmz_calloc((size_t)a->n_chunks, sizeof *a->chunks);
    if (!a->chunks) return -1;
    return read_table(a, data, t - table_size, room - table_size);
}

int lmz_archive_open(lmz_archive *a, const uint8_t *data, size_t size) {
    memset(a, 0, sizeof *a);
    if (open_archive(a, data, size) == 0) return 0;
    lmz_archive_close(a); /* a failed open leaves nothing half-filled behind */
    return -1;
}

void lmz_archive_close(lmz_archive *a) {
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

/* The first 16 hex digits: enough to tell files apart in a message. */
static void short_hex(const uint8_t sha[32], char out[20]) {
    char hex[65];
    lmz_sha256_hex(sha, hex);
    memcpy(out, hex, 16);
    memcpy(out + 16, "...", 4);
}

int lmz_archive_check_model(const lmz_archive_params *p, const char *model_name, const uint8_t model_sha256[32],
                            const uint8_t adapter_sha256[32]) {
    char want[20], got[20];
    if (memcmp(p->model_sha256, model_sha256, 32) != 0) {
        short_hex(p->model_sha256, want);
        short_hex(model_sha256, got);
        return lmz_fail("this archive needs model '%s' (sha256 %s); you gave '%s' (sha256 %s)", p->model_name, want,
                        model_name, got);
    }
    static const uint8_t none[32];
    const uint8_t *given = adapter_sha256 ? adapter_sha256 : none;
    if (memcmp(p->adapter_sha256, given, 32) == 0) return 0;
    if (all_zero(p->adapter_sha256, 32)) {
        short_hex(given, got);
        return lmz_fail("this archive was made without an adapter; you gave one (sha256 %s)", got);
    }
    short_hex(p->adapter_sha256, want);
    if (!adapter_sha256) return lmz_fail("this archive needs an adapter (sha256 %s); you gave none", want);
    short_hex(given, got);
    return lmz_fail("this archive needs adapter sha256 %s; you gave sha256 %s", want, got);
}
