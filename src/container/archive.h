/* archive.h — the lmz archive container, format v1 (docs/format.md): a checksummed header
 * of coding parameters, the chunk payloads back to back, the chunk table, and a fixed-size
 * trailer. It is written in one forward pass (input of unknown length, memory bounded by
 * the 20-byte-per-chunk table) and read from memory (e.g. an mmapped file) with every field
 * validated before anything is returned. Payload coding is not its business: a payload is
 * whatever bytes the pipeline produced (range-coder output, or the input stored raw). */
#ifndef LMZ_ARCHIVE_H
#define LMZ_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#define LMZ_ARCHIVE_VERSION 1
#define LMZ_ARCHIVE_HEADER_SIZE 212 /* v1 */
#define LMZ_ARCHIVE_ENTRY_SIZE 20   /* one chunk table entry */
#define LMZ_ARCHIVE_TRAILER_SIZE 24
#define LMZ_ARCHIVE_NAME_MAX 63     /* model name bytes (stored NUL-padded in 64) */
#define LMZ_ARCHIVE_NO_TOKEN 0xFFFFFFFFu /* start_token when chunks start with no token */

/* Header flags. */
#define LMZ_ARCHIVE_HAS_CONTEXT 0x1u /* coded after a context the decoder must be given too */

/* Chunk flags. */
#define LMZ_CHUNK_RAW 0x1u /* payload is the input bytes as they are (token_count 0) */

/* Everything the decoder needs to reproduce the encoder's probabilities, known before the
 * first chunk. Which values the pipeline supports is its own check; the container only
 * enforces that they are well formed (see docs/format.md §3). */
typedef struct {
    uint32_t flags;
    uint32_t engine_version;  /* version of lmz's logits computation */
    uint32_t coder_version;   /* version of the logits -> frequencies -> range coder mapping */
    uint32_t freq_total_bits; /* frequency total is 2^this, 1..31 */
    uint32_t vocab_size;      /* 1 .. 2^freq_total_bits - 1 */
    uint32_t start_token;     /* token fed before each chunk's first, or LMZ_ARCHIVE_NO_TOKEN */
    uint32_t context_tokens;  /* model context window used, >= 1 */
    uint32_t chunk_bytes;     /* largest input bytes in one chunk, >= 1 */
    uint8_t model_sha256[32]; /* SHA-256 of the GGUF file */
    uint8_t adapter_sha256[32];  /* all zero: no adapter */
    uint8_t context_sha256[32];  /* SHA-256 of the context bytes; all zero without HAS_CONTEXT */
    char model_name[LMZ_ARCHIVE_NAME_MAX + 1]; /* NUL-terminated; for messages only */
} lmz_archive_params;

/* One chunk table entry. */
typedef struct {
    uint32_t input_bytes;   /* original bytes in the chunk, 1 .. chunk_bytes */
    uint32_t token_count;   /* tokens coded (1 .. input_bytes); 0 for a raw chunk */
    uint32_t payload_bytes; /* bytes of payload; = input_bytes for a raw chunk */
    uint32_t crc32;         /* CRC-32 of the chunk's original bytes */
    uint32_t flags;         /* LMZ_CHUNK_* */
} lmz_chunk_meta;

/* ---- Writing ---- */

/* Where the writer's bytes go, in order: 0, or -1 with lmz_fail. */
typedef int (*lmz_archive_sink)(void *ctx, const void *data, size_t len);

typedef struct lmz_archive_writer lmz_archive_writer;

/* Validates PARAMS and writes the header. NULL on error (message via lmz_last_error). */
lmz_archive_writer *lmz_archive_writer_new(const lmz_archive_params *params, lmz_archive_sink sink, void *ctx);
/* Writes one chunk's payload (meta->payload_bytes bytes) and records its table entry; refuses
 * an entry the reader would reject. 0 or -1. */
int lmz_archive_writer_add(lmz_archive_writer *w, const lmz_chunk_meta *meta, const void *payload);
/* Writes the chunk table and the trailer. 0 or -1. */
int lmz_archive_writer_finish(lmz_archive_writer *w);
void lmz_archive_writer_free(lmz_archive_writer *w);

/* ---- Reading ---- */

typedef struct {
    lmz_chunk_meta meta;
    uint64_t input_offset;  /* where the chunk's bytes start in the original */
    const uint8_t *payload; /* meta.payload_bytes bytes inside the archive buffer */
} lmz_archive_chunk;

typedef struct {
    lmz_archive_params params;
    uint64_t original_size;
    uint64_t n_chunks;
    lmz_archive_chunk *chunks; /* n_chunks entries, owned (lmz_archive_close) */
} lmz_archive;

/* Validates the header alone (needs only its bytes: DATA may be a prefix of the archive).
 * 0, or -1 with a message. */
int lmz_archive_read_header(lmz_archive_params *params, const uint8_t *data, size_t size);
/* Validates the whole archive in DATA[0..size) and fills A; payload pointers point into
 * DATA, which must outlive A. 0, or -1 with a message (A is then empty). */
int lmz_archive_open(lmz_archive *a, const uint8_t *data, size_t size);
void lmz_archive_close(lmz_archive *a);

/* The decoder's model check: 0 if MODEL_SHA256 (and ADAPTER_SHA256, NULL for none) match
 * the archive's, else -1 with a message naming both sides, e.g. "this archive needs model
 * 'X' (sha256 0123456789abcdef...); you gave 'Y' (sha256 fedcba9876543210...)". */
int lmz_archive_check_model(const lmz_archive_params *params, const char *model_name,
                            const uint8_t model_sha256[32], const uint8_t adapter_sha256[32]);

#endif
