/* codec.h — the lossless compressor: input bytes -> chunks -> symbols -> model
 * probabilities -> range coder -> archive (docs/format.md), and back.
 *
 * The input is cut into independent chunks (at most chunk_bytes bytes and chunk_tokens
 * symbols each). Every chunk is coded from scratch: the model sees the start token, the
 * optional context (text the receiver also has, e.g. the prompt of a response; it is not
 * stored), then the chunk's symbols. Chunks are processed in groups that share one batch:
 * compression evaluates all their positions together, decompression advances all of them
 * one symbol per step in lockstep; a group is at most `group` chunks whose KV cache fits
 * a budget. A chunk that codes no smaller than its bytes is stored. The archive
 * does not depend on the thread count or on how chunks are grouped. */
#ifndef LMZ_CODEC_H
#define LMZ_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../container/archive.h"
#include "../lora/lora.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

#define LMZ_ENGINE_VERSION 1
#define LMZ_CODER_VERSION 1
#define LMZ_DEFAULT_CHUNK_BYTES 4096
#define LMZ_DEFAULT_CHUNK_TOKENS 1536

typedef struct {
    const lmz_model *model;
    const lmz_tokenizer *tok;
    uint8_t model_sha256[32];
    int32_t start, escape;      /* the start token and the token standing for an escaped byte */
    int threads;
    int chunk_bytes, chunk_tokens;
    int group;                  /* chunks per batch, at most */
    size_t kv_budget_bytes;     /* a group's KV cache, at most (beyond its first chunk), when */
    size_t decode_kv_budget_bytes; /* compressing / decompressing; set by lmz_codec_init */
    int32_t *context;           /* context tokens (after the start token), owned */
    size_t n_context;
    uint8_t context_sha256[32];
    bool has_context;
    const lmz_lora *lora;       /* adapter applied to the model, or NULL (lmz_codec_set_lora) */
    bool lossy;                 /* the input is a rewrite (lmz --lossy): archives carry LMZ_ARCHIVE_LOSSY;
                                   false after lmz_codec_init */
} lmz_codec;

typedef struct {
    uint64_t input_bytes, output_bytes, chunks, raw_chunks, symbols, escapes;
    uint64_t peak_group_positions; /* the most KV cache positions one group of chunks held */
    double ideal_bits;          /* sum of -log2 p over coded symbols (+8 per escaped byte) */
    double coded_bits;          /* payload bits of the model-coded chunks */
} lmz_codec_stats;

/* Progress: bytes done so far (input bytes when compressing, output when decompressing). */
typedef void (*lmz_progress_fn)(void *ctx, uint64_t bytes_done, const lmz_codec_stats *st);

/* Reads up to LEN bytes into BUF; returns the count (0 at the end) or -1 after lmz_fail. */
typedef long (*lmz_read_fn)(void *ctx, uint8_t *buf, size_t len);
/* Writes LEN bytes; 0, or -1 after lmz_fail. */
typedef int (*lmz_write_fn)(void *ctx, const uint8_t *data, size_t len);

/* Sets up C for MODEL (whose file has SHA-256 MODEL_SHA256) with an optional CONTEXT.
 * chunk_bytes / chunk_tokens / group 0 take the defaults. 0, or -1 + lmz_fail. */
int lmz_codec_init(lmz_codec *c, const lmz_model *model, const lmz_tokenizer *tok, const uint8_t model_sha256[32],
                   const uint8_t *context, size_t context_len, int threads, int chunk_bytes, int chunk_tokens,
                   int group);
void lmz_codec_free(lmz_codec *c);
/* Codes with the adapter LORA (loaded or made for C's model, and saved: archives record its
 * file's fingerprint, and decompression then needs the same adapter); NULL for none. The
 * adapter is not copied and must outlive C. 0, or -1 + lmz_fail. */
int lmz_codec_set_lora(lmz_codec *c, const lmz_lora *lora);

/* A reader over bytes already in memory: lmz_compress(c, lmz_read_memory, &input, ...). */
typedef struct {
    const uint8_t *data;
    size_t len, pos;
} lmz_memory_input;
long lmz_read_memory(void *ctx, uint8_t *buf, size_t len);
/* A sink (archive bytes) and a writer (decompressed bytes) appending to the lmz_bytebuf CTX. */
int lmz_sink_to_bytebuf(void *ctx, const void *data, size_t len);
int lmz_write_to_bytebuf(void *ctx, const uint8_t *data, size_t len);

int lmz_compress(lmz_codec *c, lmz_read_fn read, void *rctx, lmz_archive_sink sink, void *sctx,
                 lmz_codec_stats *st, lmz_progress_fn progress, void *pctx);

/* Decompresses (or, with WRITE NULL, only verifies) an opened archive; checks that the
 * archive was made with C's model and context first. */
int lmz_decompress(lmz_codec *c, const lmz_archive *a, lmz_write_fn write, void *wctx, lmz_codec_stats *st,
                   lmz_progress_fn progress, void *pctx);

#endif
