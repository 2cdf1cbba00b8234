/* qa_format.h — the compressed form of a batch of QA runs (".lmzq"; docs/qa.md §5): a
 * header (protocol parameters, the SLM's and question model's fingerprints, each problem's
 * checksum and decision-bit count), the body holding every decision bit, and a trailing
 * CRC-32. This file owns the byte layout, its validation, and the bit writer / reader that
 * put decision bits into the body and take them out again (raw, or range-coded under the
 * SLM's P(yes) with a per-problem choice of the cheaper of the two).
 *
 * The reader never reads outside its input and accepts exactly one encoding of each
 * stream (minimal varints, zero padding and reserved bits), so that what it accepts writes
 * back to the same bytes (fuzz/fuzz_qa.c checks both). */
#ifndef LMZ_QA_FORMAT_H
#define LMZ_QA_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "../coder/bytebuf.h"
#include "../coder/rangecoder.h"

#define LMZ_QA_MAGIC "LMZQ"
#define LMZ_QA_VERSION 1
#define LMZ_QA_FP_BYTES 8           /* fingerprints: the first 8 bytes of the GGUF file's SHA-256 */
#define LMZ_QA_MAX_QUESTIONS 64     /* K (one-shot) or Q (per round) */
#define LMZ_QA_MAX_ROUNDS 16
#define LMZ_QA_MAX_ANSWER_TOKENS 32768
#define LMZ_QA_MAX_PROBLEMS 1000000
/* P(yes) is coded as an integer frequency of this total; each side gets at least 1. */
#define LMZ_QA_PROB_BITS 16
#define LMZ_QA_PROB_TOTAL (1u << LMZ_QA_PROB_BITS)

/* A parsed stream (or one to write). */
typedef struct {
    int version;
    int variant;        /* enum lmz_qa_variant */
    int task;           /* enum lmz_qa_task */
    int coded;          /* 0: raw bits; 1: range-coded body */
    int questions, rounds, answer_tokens;
    uint8_t slm_fp[LMZ_QA_FP_BYTES];
    uint8_t qm_fp[LMZ_QA_FP_BYTES]; /* equal to slm_fp when the SLM asks the questions */
    uint32_t n_problems;
    uint32_t *problem_crc; /* n_problems CRC-32s of the problems' texts */
    uint32_t *n_bits;      /* n_problems decision-bit counts */
    const uint8_t *body;   /* parse: points into the input; write: the bytes to store */
    size_t body_len;
} lmz_qa_stream;

/* The most decision bits one problem can take with these parameters (one-shot: K;
 * iterative: R judge bits + R * Q question bits). */
int lmz_qa_max_bits(int variant, int questions, int rounds);

/* Parses and validates DATA[0..len): magic, version, every field's range, each problem's
 * bit count against the parameters, the raw body's exact length and zero padding, and the
 * trailing CRC-32. S's arrays are malloc'd (free with lmz_qa_stream_free); its body points
 * into DATA. 0, or -1 + lmz_fail saying what is wrong (not a stream, a newer version,
 * truncated, trailing bytes, corrupted). */
int lmz_qa_stream_parse(lmz_qa_stream *s, const uint8_t *data, size_t len);
/* Appends the stream S to OUT. 0, or -1 + lmz_fail. */
int lmz_qa_stream_write(const lmz_qa_stream *s, lmz_bytebuf *out);
void lmz_qa_stream_free(lmz_qa_stream *s);

/* P(yes) -> the frequency of "yes" out of LMZ_QA_PROB_TOTAL: floor(p * total), clamped to
 * [1, total - 1]; a p that is not a number counts as 1/2. Yes is the slice [0, f), no
 * [f, total). */
uint32_t lmz_qa_prob_freq(double p_yes);
/* The code length in bits of BIT under frequency F of yes (-log2 of its slice). */
double lmz_qa_code_bits(uint32_t f_yes, int bit);

/* Writing a body. Raw streams pack the bits MSB first, zero-padded to a byte. Coded
 * streams run one range coder: a problem's first decision is preceded by one raw bit
 * saying how the problem's decisions are stored (1: coded under their frequencies, 0: raw
 * bits). Callers write decisions in protocol order (docs/qa.md §5.3). */
typedef struct {
    int coded;
    lmz_bytebuf *out;
    lmz_renc enc;
    uint8_t acc;
    int n_acc;
} lmz_qa_bitwriter;

void lmz_qa_bitwriter_init(lmz_qa_bitwriter *w, int coded, lmz_bytebuf *out);
/* Coded streams: the per-problem mode bit (1 coded, 0 raw). */
int lmz_qa_bitwriter_mode(lmz_qa_bitwriter *w, int coded_mode);
/* One decision: raw (mode 0, or a raw stream) or under F_YES (mode 1). 0 or -1. */
int lmz_qa_bitwriter_put(lmz_qa_bitwriter *w, int bit, int coded_mode, uint32_t f_yes);
int lmz_qa_bitwriter_finish(lmz_qa_bitwriter *w);

typedef struct {
    int coded;
    const uint8_t *data;
    size_t len;
    size_t bit_pos;  /* raw streams */
    lmz_rdec dec;    /* coded streams */
} lmz_qa_bitreader;

void lmz_qa_bitreader_init(lmz_qa_bitreader *r, int coded, const uint8_t *data, size_t len);
/* The mode bit (coded streams), 0 or 1; -1 + lmz_fail when the body has run out. */
int lmz_qa_bitreader_mode(lmz_qa_bitreader *r);
/* The next decision, 0 or 1; -1 + lmz_fail when the body has run out. */
int lmz_qa_bitreader_get(lmz_qa_bitreader *r, int coded_mode, uint32_t f_yes);
/* After the last decision: 0 if the body held exactly these decisions, else -1 + lmz_fail. */
int lmz_qa_bitreader_finish(const lmz_qa_bitreader *r);

#endif
