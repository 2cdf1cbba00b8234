/* archive.h — the lmz archive container, format v1 (docs/format.md): a small checksummed
 * header of coding parameters (LEB128 varints), the chunk payloads back to back, the chunk
 * table (varints), and a trailer that locates the table and checksums the whole archive.
 * The overhead is about 40 bytes for a one-chunk archive and 7-10 bytes per further chunk,
 * because lmz's typical inputs (LLM responses, code snippets) are a few hundred bytes.
 * It is written in one forward pass (input of unknown length, memory bounded by the table)
 * and read from memory (e.g. an mmapped file) with every field validated before anything
 * is returned. Payload coding is not its business: a payload is whatever bytes the pipeline
 * produced (range-coder output, or the input stored raw). */
#ifndef LMZ_ARCHIVE_H
#define LMZ_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#define LMZ_ARCHIVE_VERSION 1
#define LMZ_ARCHIVE_FP_BYTES 8 /* fingerprints are the first 8 bytes of a SHA-256 */
#define LMZ_ARCHIVE_NO_TOKEN 0xFFFFFFFFu /* start_token when chunks start with no token */

/* Header flags. */
#define LMZ_ARCHIVE_HAS_CONTEXT 0x1u /* coded after a context the decoder must be given too */
#define LMZ_ARCHIVE_HAS_ADAPTER 0x2u /* the model had an adapter applied (adapter_fp) */
/* The archive holds a rewrite of the input (lmz --lossy), not the input itself. It changes
 * nothing in how the archive is read or decoded; it tells whoever decompresses it that the
 * bytes they get back are not the bytes that were compressed. */
#define LMZ_ARCHIVE_LOSSY 0x4u

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
    uint8_t model_fp[LMZ_ARCHIVE_FP_BYTES];   /* SHA-256 of the GGUF file, first 8 bytes */
    uint8_t adapter_fp[LMZ_ARCHIVE_FP_BYTES]; /* with HAS_ADAPTER, else all zero */
    uint8_t context_fp[LMZ_ARCHIVE_FP_BYTES]; /* SHA-256 of the context bytes; with HAS_CONTEXT, else zero */
} lmz_archive_params;

/* One chunk table entry. A stored chunk (its payload is the input bytes as they are) has
 * token_count 0 and payload_bytes = input_bytes. */
typedef struct {
    uint32_t input_bytes;   /* original bytes in the chunk, 1 .. chunk_bytes */
    uint32_t token_count;   /* symbols coded (1 .. input_bytes); 0: stored */
    uint32_t payload_bytes; /* bytes of payload */
    uint32_t crc32;         /* CRC-32 of the chunk's original bytes */
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
/* Bytes written so far (after finish: the archive's size). */
uint64_t lmz_archive_writer_size(const lmz_archive_writer *w);
void lmz_archive_writer_free(lmz_archive_writer *w);

/* ---- Reading ---- */

typedef struct {
    lmz_chunk_meta meta;
    uint64_t input_offset;  /* where the chunk's bytes start in the original */
    const uint8_t *payload; /* meta.payload_bytes bytes inside the archive buffer */
} lmz_archive_chunk;

typedef struct {
    lmz_archive_params params;
    uint64_t original_size; /* the sum of the chunks' input_bytes */
    uint64_t n_chunks;
    size_t size;               /* bytes of the archive */
    lmz_archive_chunk *chunks; /* n_chunks entries, owned (lmz_archive_close) */
} lmz_archive;

/* Validates the header alone (needs only its bytes: DATA may be a prefix of the archive).
 * 0, or -1 with a message. */
int lmz_archive_read_header(lmz_archive_params *params, const uint8_t *data, size_t size);
/* Validates the whole archive in DATA[0..size) and fills A; payload pointers point into
 * DATA, which must outlive A. 0, or -1 with a message (A is then empty). */
int lmz_archive_open(lmz_archive *a, const uint8_t *data, size_t size);
void lmz_archive_close(lmz_archive *a);

/* ---- Models ---- */

/* A model lmz knows by fingerprint, so that messages can name it without the archive
 * storing a name. The list mirrors the pinned models of tools/fetch_models.py (a test
 * checks that it still does). */
typedef struct {
    const char *name;       /* e.g. "SmolLM2-135M-Instruct" */
    const char *fetch_name; /* argument of tools/fetch_models.py that fetches the file */
    const char *file_name;  /* the file's name in the model cache */
    const char *sha256_hex; /* the GGUF file's full SHA-256 */
} lmz_known_model;

/* The known models, ended by an entry whose name is NULL. */
extern const lmz_known_model lmz_known_models[];
/* The known model with fingerprint FP, or NULL. */
const lmz_known_model *lmz_archive_known_model(const uint8_t fp[LMZ_ARCHIVE_FP_BYTES]);

/* The decoder's model check: 0 if MODEL_SHA256 (and ADAPTER_SHA256, NULL for none) match
 * the archive's fingerprints, else -1 with a message naming both sides, e.g. "this archive
 * needs model SmolLM2-135M-Instruct (sha256 b179c9523d0e6a0f..., ...; `python3
 * tools/fetch_models.py smollm2` fetches it); you gave 'Y' (sha256 fedcba9876543210...)".
 * MODEL_NAME names the given model when its fingerprint is not a known one. */
int lmz_archive_check_model(const lmz_archive_params *params, const char *model_name,
                            const uint8_t model_sha256[32], const uint8_t adapter_sha256[32]);

/* CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, not reflected, no final
 * XOR; crc16("123456789") = 0x29B1): the header checksum. */
uint16_t lmz_archive_crc16(const void *data, size_t len);

#endif
