/* archive.c — writer and validating reader of the v1 container (layout: docs/format.md).
 * The writer and the reader share one set of field checks, so the writer cannot produce an
 * archive the reader rejects. Integers are LEB128 varints, and the reader accepts only their
 * shortest form, so every valid archive has exactly one encoding (the fuzz target checks
 * that rewriting what it read gives the same bytes). Fixed-width fields are little-endian. */
#include "archive.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../coder/bytebuf.h"
#include "../util/crc32.h"
#include "../util/error.h"

static const uint8_t MAGIC[4] = {0x89, 'L', 'M', 'Z'};

/* Fixed header positions (docs/format.md §3): every version keeps these, and ends its header
 * with a CRC-16 of the bytes before it, so any reader can check a newer header and name its
 * version. */
enum { H_VERSION = 4, H_HEADER_SIZE = 5, H_FIELDS = 6, H_CRC_BYTES = 2 };
#define HEADER_SIZE_MIN (H_FIELDS + H_CRC_BYTES)

#define VARINT_MAX 10 /* bytes of a 64-bit LEB128 value */
/* The largest v1 header: eight 32-bit varints and three fingerprints; the size is one byte. */
#define HEADER_MAX (H_FIELDS + 8 * 5 + 3 * LMZ_ARCHIVE_FP_BYTES + H_CRC_BYTES)
_Static_assert(HEADER_MAX <= 255, "header size must fit its one-byte field");
/* The largest table entry: three 32-bit varints and the CRC-32. */
#define ENTRY_MAX (3 * 5 + 4)

#define KNOWN_FLAGS (LMZ_ARCHIVE_HAS_CONTEXT | LMZ_ARCHIVE_HAS_ADAPTER | LMZ_ARCHIVE_LOSSY)

/* ---- Encoding helpers ---- */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes V as LEB128 (7 bits per byte, least significant first, top bit = more follow). */
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a LEB128 value <= MAX from *P without passing END, in its shortest form only (a
 * final 0x00 byte after others would add nothing), and advances *P. NULL, or why not. */
static const char *get_varint(const uint8_t **p, const uint8_t *end, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (*p == end) return "is cut off";
        uint8_t b = *(*p)++;
        uint64_t bits = b & 0x7Fu;
        if (shift >= 64 || bits > (max >> shift)) return "is too large";
        v |= bits << shift;
        if (b & 0x80) continue;
        if (b == 0 && shift > 0) return "is not in its shortest form";
        if (v > max) return "is too large";
        *out = v;
        return NULL;
    }
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

uint16_t lmz_archive_crc16(const void *data, size_t len) {
    /* Bitwise: it only ever covers a header of at most 255 bytes. */
    const uint8_t *p = data;
    uint16_t c = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        c ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++) c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
    }
    return c;
}

/* ---- Shared field checks ---- */

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
    /* The reader leaves an absent fingerprint zero; a writer given one without its flag
     * would otherwise drop it silently. */
    if (!(p->flags & LMZ_ARCHIVE_HAS_ADAPTER) && !all_zero(p->adapter_fp, LMZ_ARCHIVE_FP_BYTES))
        return lmz_fail("archive header: adapter fingerprint is set but the has-adapter flag is not");
    /* All zero means "no adapter" to lmz_archive_check_model: such an archive could never be
     * decoded. */
    if ((p->flags & LMZ_ARCHIVE_HAS_ADAPTER) && all_zero(p->adapter_fp, LMZ_ARCHIVE_FP_BYTES))
        return lmz_fail("archive header: the has-adapter flag is set but the adapter fingerprint is zero");
    if (!(p->flags & LMZ_ARCHIVE_HAS_CONTEXT) && !all_zero(p->context_fp, LMZ_ARCHIVE_FP_BYTES))
        return lmz_fail("archive header: context fingerprint is set but the has-context flag is not");
    return 0;
}

static int check_chunk(const lmz_chunk_meta *m, uint64_t index, uint32_t chunk_bytes) {
    unsigned long long i = (unsigned long long)index;
    if (m->input_bytes == 0) return lmz_fail("chunk %llu: holds no input bytes", i);
    if (m->input_bytes > chunk_bytes)
        return lmz_fail("chunk %llu: %u input bytes exceed the archive's chunk size (%u)", i, m->input_bytes,
                        chunk_bytes);
    if (m->token_count == 0 && m->payload_bytes != m->input_bytes) /* the reader never sees this: it is implied */
        return lmz_fail("chunk %llu: stored chunk of %u input bytes has a %u-byte payload", i, m->input_bytes,
                        m->payload_bytes);
    /* Every symbol is at least one byte: this also bounds the decoder's work by the size. */
    if (m->token_count > m->input_bytes)
        return lmz_fail("chunk %llu: %u tokens cannot make %u input bytes", i, m->token_count, m->input_bytes);
    return 0;
}

/* The header's bytes for P (checked): returns its size. */
static size_t encode_header(const lmz_archive_params *p, uint8_t h[HEADER_MAX]) {
    size_t n = H_FIELDS;
    memcpy(h, MAGIC, sizeof MAGIC);
    h[H_VERSION] = LMZ_ARCHIVE_VERSION;
    const uint32_t fields[] = {p->flags,      p->engine_version, p->coder_version,  p->freq_total_bits,
                               p->vocab_size, p->start_token + 1 /* NO_TOKEN -> 0 */, p->context_tokens,
                               p->chunk_bytes};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) n += put_varint(h + n, fields[i]);
    memcpy(h + n, p->model_fp, LMZ_ARCHIVE_FP_BYTES);
    n += LMZ_ARCHIVE_FP_BYTES;
    if (p->flags & LMZ_ARCHIVE_HAS_ADAPTER) {
        memcpy(h + n, p->adapter_fp, LMZ_ARCHIVE_FP_BYTES);
        n += LMZ_ARCHIVE_FP_BYTES;
    }
    if (p->flags & LMZ_ARCHIVE_HAS_CONTEXT) {
        memcpy(h + n, p->context_fp, LMZ_ARCHIVE_FP_BYTES);
        n += LMZ_ARCHIVE_FP_BYTES;
    }
    n += H_CRC_BYTES;
    h[H_HEADER_SIZE] = (uint8_t)n;
    uint16_t crc = lmz_archive_crc16(h, n - H_CRC_BYTES);
    h[n - 2] = (uint8_t)crc;
    h[n - 1] = (uint8_t)(crc >> 8);
    return n;
}

/* ---- Writer ---- */

struct lmz_archive_writer {
    lmz_archive_sink sink;
    void *ctx;
    uint32_t crc;         /* CRC-32 of every byte written so far */
    uint64_t written;     /* bytes written so far */
    uint32_t chunk_bytes; /* from the header: the per-chunk input limit */
    lmz_bytebuf table;    /* serialized chunk table, written at the end */
    uint64_t n_chunks;
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
    w->written += len;
    return 0;
}

lmz_archive_writer *lmz_archive_writer_new(const lmz_archive_params *p, lmz_archive_sink sink, void *ctx) {
    if (check_params(p) != 0) return NULL;
    lmz_archive_writer *w = lmz_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->sink = sink;
    w->ctx = ctx;
    w->chunk_bytes = p->chunk_bytes;
    uint8_t h[HEADER_MAX];
    if (emit(w, h, encode_header(p, h)) != 0) {
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
    uint8_t e[ENTRY_MAX];
    size_t n = put_varint(e, m->input_bytes);
    n += put_varint(e + n, m->token_count);
    if (m->token_count) n += put_varint(e + n, m->payload_bytes); /* a stored chunk's is input_bytes */
    put32(e + n, m->crc32);
    if (lmz_bytebuf_append(&w->table, e, n + 4) != 0) return -1;
    if (emit(w, payload, m->payload_bytes) != 0) return -1;
    w->n_chunks++;
    return 0;
}

int lmz_archive_writer_finish(lmz_archive_writer *w) {
    if (writer_usable(w) != 0) return -1;
    /* The table size is read backwards from the trailer's end: its varint goes out reversed. */
    uint8_t v[VARINT_MAX], t[VARINT_MAX + 4];
    size_t n = put_varint(v, w->table.len);
    for (size_t i = 0; i < n; i++) t[i] = v[n - 1 - i];
    if (emit(w, w->table.data, w->table.len) != 0 || emit(w, t, n) != 0) return -1;
    put32(t + n, w->crc); /* covers everything before it */
    if (emit(w, t + n, 4) != 0) return -1;
    w->finished = true;
    return 0;
}

uint64_t lmz_archive_writer_size(const lmz_archive_writer *w) { return w->written; }

void lmz_archive_writer_free(lmz_archive_writer *w) {
    if (!w) return;
    lmz_bytebuf_free(&w->table);
    free(w);
}

/* ---- Reader ---- */

/* The header fields between the fixed part and the CRC, [P, END). */
static int parse_header_fields(lmz_archive_params *prm, const uint8_t *p, const uint8_t *end) {
    static const char *const names[] = {"flags field",    "engine version", "coder version", "frequency total",
                                        "vocabulary size", "start token",    "context size",  "chunk size"};
    uint32_t *const dest[] = {&prm->flags,      &prm->engine_version, &prm->coder_version,  &prm->freq_total_bits,
                              &prm->vocab_size, &prm->start_token,    &prm->context_tokens, &prm->chunk_bytes};
    for (size_t i = 0; i < sizeof dest / sizeof *dest; i++) {
        uint64_t v;
        const char *why = get_varint(&p, end, UINT32_MAX, &v);
        if (why) return lmz_fail("archive header: the %s %s", names[i], why);
        *dest[i] = (uint32_t)v;
        /* Unknown flags may mean fields this lmz cannot parse: report them before those. */
        if (i == 0 && (prm->flags & ~KNOWN_FLAGS))
            return lmz_fail("archive header: flags 0x%x include features this lmz does not have", prm->flags);
    }
    prm->start_token -= 1; /* stored plus one, so that "none" is 0 */
    size_t fps = 1 + !!(prm->flags & LMZ_ARCHIVE_HAS_ADAPTER) + !!(prm->flags & LMZ_ARCHIVE_HAS_CONTEXT);
    if ((size_t)(end - p) != fps * LMZ_ARCHIVE_FP_BYTES)
        return lmz_fail("archive header: %zu bytes follow its numbers where its flags call for %zu fingerprint bytes",
                        (size_t)(end - p), fps * LMZ_ARCHIVE_FP_BYTES);
    memcpy(prm->model_fp, p, LMZ_ARCHIVE_FP_BYTES);
    p += LMZ_ARCHIVE_FP_BYTES;
    if (prm->flags & LMZ_ARCHIVE_HAS_ADAPTER) {
        memcpy(prm->adapter_fp, p, LMZ_ARCHIVE_FP_BYTES);
        p += LMZ_ARCHIVE_FP_BYTES;
    }
    if (prm->flags & LMZ_ARCHIVE_HAS_CONTEXT) memcpy(prm->context_fp, p, LMZ_ARCHIVE_FP_BYTES);
    return check_params(prm);
}

/* lmz_archive_read_header, also giving the header's size. */
static int read_header(lmz_archive_params *p, const uint8_t *data, size_t size, size_t *header_size) {
    if (size == 0) return lmz_fail("archive is empty (0 bytes)");
    if (memcmp(data, MAGIC, size < sizeof MAGIC ? size : sizeof MAGIC) != 0)
        return lmz_fail("not an lmz archive (it does not start with the lmz signature)");
    if (size < H_FIELDS) return lmz_fail("archive is truncated (%zu bytes)", size);
    unsigned version = data[H_VERSION], hsize = data[H_HEADER_SIZE];
    if (hsize < HEADER_SIZE_MIN) return lmz_fail("archive header is damaged (header size %u)", hsize);
    if (size < hsize) {
        /* The checksum cannot be checked; a version this lmz does not read is the likelier story. */
        if (version != LMZ_ARCHIVE_VERSION)
            return lmz_fail("archive format version %u is not supported (this lmz reads version %d)", version,
                            LMZ_ARCHIVE_VERSION);
        return lmz_fail("archive is truncated (%zu bytes; the header alone is %u)", size, hsize);
    }
    if (lmz_archive_crc16(data, hsize - H_CRC_BYTES) != (data[hsize - 2] | data[hsize - 1] << 8))
        return lmz_fail("archive header checksum mismatch (the header is damaged)");
    if (version != LMZ_ARCHIVE_VERSION)
        return lmz_fail("archive format version %u is not supported (this lmz reads version %d)", version,
                        LMZ_ARCHIVE_VERSION);
    memset(p, 0, sizeof *p);
    *header_size = hsize;
    return parse_header_fields(p, data + H_FIELDS, data + hsize - H_CRC_BYTES);
}

int lmz_archive_read_header(lmz_archive_params *p, const uint8_t *data, size_t size) {
    size_t header_size;
    return read_header(p, data, size, &header_size);
}

/* Reads entry INDEX of the table at *P (not past END) into M. 0, or -1 with a message. */
static int parse_entry(const uint8_t **p, const uint8_t *end, uint64_t index, lmz_chunk_meta *m) {
    static const char *const what[] = {"input size", "token count", "payload size"};
    uint64_t v[3];
    for (int f = 0; f < 3; f++) {
        if (f == 2 && v[1] == 0) {
            v[2] = v[0]; /* stored: the payload is the input, so it is not written */
            break;
        }
        const char *why = get_varint(p, end, UINT32_MAX, &v[f]);
        if (why) return lmz_fail("chunk %llu: the %s in the chunk table %s", (unsigned long long)index, what[f], why);
    }
    if (end - *p < 4)
        return lmz_fail("chunk %llu: the checksum in the chunk table is cut off", (unsigned long long)index);
    *m = (lmz_chunk_meta){(uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2], get32(*p)};
    *p += 4;
    return 0;
}

/* Walks the table [TABLE, END), checking every entry and that the payloads fill the payload
 * area [PAYLOADS, TABLE) exactly; stores the chunks in OUT unless it is NULL (a counting
 * pass). Sets *N and *INPUT_TOTAL. 0 or -1. */
static int walk_table(const lmz_archive_params *prm, const uint8_t *payloads, const uint8_t *table,
                      const uint8_t *end, lmz_archive_chunk *out, uint64_t *n, uint64_t *input_total) {
    const size_t payload_size = (size_t)(table - payloads);
    uint64_t i = 0, offset = 0, input = 0;
    for (const uint8_t *p = table; p < end; i++) {
        lmz_chunk_meta m;
        if (parse_entry(&p, end, i, &m) != 0 || check_chunk(&m, i, prm->chunk_bytes) != 0) return -1;
        if (m.payload_bytes > payload_size - offset)
            return lmz_fail("chunk %llu: compressed size exceeds the archive (%u bytes at payload offset %llu; "
                            "the payload area has %zu)",
                            (unsigned long long)i, m.payload_bytes, (unsigned long long)offset, payload_size);
        if (out) out[i] = (lmz_archive_chunk){m, input, payloads + offset};
        offset += m.payload_bytes;
        input += m.input_bytes; /* < 2^64: fewer than 2^61 entries of < 2^32 bytes */
    }
    if (offset != payload_size)
        return lmz_fail("chunk payloads add up to %llu bytes but the archive holds %zu payload bytes",
                        (unsigned long long)offset, payload_size);
    *n = i;
    *input_total = input;
    return 0;
}

static int open_archive(lmz_archive *a, const uint8_t *data, size_t size) {
    size_t hsize;
    if (read_header(&a->params, data, size, &hsize) != 0) return -1;
    /* After the header: payloads, table, table size (at least 1 byte), archive CRC. */
    if (size - hsize < 1 + 4)
        return lmz_fail("archive is truncated (%zu bytes; the header alone is %zu, and the trailer needs 5 more)",
                        size, hsize);
    if (get32(data + size - 4) != lmz_crc32(data, size - 4))
        return lmz_fail("archive checksum mismatch: the archive is damaged, truncated, or has extra bytes after its "
                        "end");
    /* The table size is a varint stored backwards, ending right before the CRC. */
    const uint8_t *body = data + hsize, *size_end = data + size - 4;
    uint8_t rev[VARINT_MAX];
    size_t k = 0;
    while (k < VARINT_MAX && size_end - k > body) {
        rev[k] = size_end[-1 - (ptrdiff_t)k];
        if (!(rev[k++] & 0x80)) break;
    }
    const uint8_t *q = rev;
    uint64_t table_size;
    const char *why = get_varint(&q, rev + k, UINT64_MAX, &table_size);
    if (why) return lmz_fail("archive trailer: the chunk table size %s", why);
    const uint8_t *table_end = size_end - (q - rev);
    if (table_size > (uint64_t)(table_end - body))
        return lmz_fail("chunk table (%llu bytes) does not fit in the archive", (unsigned long long)table_size);
    const uint8_t *table = table_end - table_size;

    uint64_t n, input;
    if (walk_table(&a->params, body, table, table_end, NULL, &n, &input) != 0) return -1;
    if (n) {
        a->chunks = lmz_calloc((size_t)n, sizeof *a->chunks); /* n <= table_size / 6: entries take >= 6 bytes */
        if (!a->chunks || walk_table(&a->params, body, table, table_end, a->chunks, &n, &input) != 0) return -1;
    }
    a->n_chunks = n;
    a->original_size = input;
    a->size = size;
    return 0;
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

/* ---- Models ---- */

const lmz_known_model lmz_known_models[] = {
    {"SmolLM2-135M-Instruct", "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
     "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
    {"Gemma 3 270M", "gemma3", "gemma-3-270m-q4_k_m.gguf",
     "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"},
    {"Qwen2.5-Coder-1.5B-Instruct", "qwen25coder", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"},
    {"Qwen2.5-Coder-0.5B-Instruct", "qwen25coder05b", "qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"},
    {NULL, NULL, NULL, NULL},
};

/* FP as 16 lowercase hex digits. */
static void fp_hex(const uint8_t fp[LMZ_ARCHIVE_FP_BYTES], char out[2 * LMZ_ARCHIVE_FP_BYTES + 1]) {
    for (int i = 0; i < LMZ_ARCHIVE_FP_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", fp[i]);
}

const lmz_known_model *lmz_archive_known_model(const uint8_t fp[LMZ_ARCHIVE_FP_BYTES]) {
    char hex[2 * LMZ_ARCHIVE_FP_BYTES + 1];
    fp_hex(fp, hex);
    for (const lmz_known_model *m = lmz_known_models; m->name; m++)
        if (strncmp(m->sha256_hex, hex, 2 * LMZ_ARCHIVE_FP_BYTES) == 0) return m;
    return NULL;
}

int lmz_archive_check_model(const lmz_archive_params *p, const char *model_name, const uint8_t model_sha256[32],
                            const uint8_t adapter_sha256[32]) {
    char want[2 * LMZ_ARCHIVE_FP_BYTES + 1], got[2 * LMZ_ARCHIVE_FP_BYTES + 1];
    if (memcmp(p->model_fp, model_sha256, LMZ_ARCHIVE_FP_BYTES) != 0) {
        fp_hex(p->model_fp, want);
        fp_hex(model_sha256, got);
        const lmz_known_model *need = lmz_archive_known_model(p->model_fp), *have = lmz_archive_known_model(model_sha256);
        char gave[200];
        if (have) snprintf(gave, sizeof gave, "%s", have->name);
        else snprintf(gave, sizeof gave, "'%s'", model_name);
        if (need)
            return lmz_fail("this archive needs model %s (sha256 %s..., the 8-byte prefix the archive stores; "
                            "`python3 tools/fetch_models.py %s` fetches it); you gave %s (sha256 %s...)",
                            need->name, want, need->fetch_name, gave, got);
        return lmz_fail("this archive needs a model lmz does not know by name (sha256 %s..., the 8-byte prefix the "
                        "archive stores); you gave %s (sha256 %s...)",
                        want, gave, got);
    }
    bool given = adapter_sha256 && !all_zero(adapter_sha256, 32);
    if (!(p->flags & LMZ_ARCHIVE_HAS_ADAPTER)) {
        if (!given) return 0;
        fp_hex(adapter_sha256, got);
        return lmz_fail("this archive was made without an adapter; you gave one (sha256 %s...): drop --lora", got);
    }
    fp_hex(p->adapter_fp, want);
    if (!given)
        return lmz_fail("this archive needs an adapter (sha256 %s..., the 8-byte prefix the archive stores); you gave "
                        "none: give the adapter it was compressed with by --lora FILE",
                        want);
    if (memcmp(p->adapter_fp, adapter_sha256, LMZ_ARCHIVE_FP_BYTES) == 0) return 0;
    fp_hex(adapter_sha256, got);
    return lmz_fail("this archive needs adapter sha256 %s...; you gave sha256 %s..., another adapter or another "
                    "version of it", want, got);
}
