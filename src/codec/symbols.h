/* symbols.h — bytes <-> the symbol stream the coder codes, losslessly for ANY bytes.
 *
 * A model token stands for its exact bytes. Bytes that tokenization would not give back
 * (invalid UTF-8, which the tokenizer replaces by U+FFFD; bytes that have no token, such
 * as SmolLM2's missing control-character bytes) are sent as an escape: the model codes the
 * escape token (a control token that plain-text tokenization never produces), then the
 * byte follows as 8 raw bits. The model then sees the escape token as context.
 *
 * Symbols are int32: a value >= 0 is a token id; -1 - b is the escaped byte b. */
#ifndef LMZ_SYMBOLS_H
#define LMZ_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include "../tokenizer/tokenizer.h"

static inline int32_t lmz_escaped(uint8_t b) { return -1 - (int32_t)b; }
static inline int lmz_is_escape(int32_t sym) { return sym < 0; }
static inline uint8_t lmz_escaped_byte(int32_t sym) { return (uint8_t)(-1 - sym); }

/* The token that starts every coded sequence, giving the model a context for the first
 * real token: "<|endoftext|>" if the vocabulary has it, else BOS, else EOS, else 0. */
int32_t lmz_start_token(const lmz_tokenizer *tok);

/* The token that stands for an escape in the model's context: the first CONTROL token
 * other than START, BOS and EOS (EOS if there is none). */
int32_t lmz_escape_token(const lmz_tokenizer *tok, int32_t start);

/* Converts BYTES[0..len) to symbols (malloc'd *syms, *n); 0, or -1 + lmz_fail. The
 * concatenated bytes of the symbols always equal the input. */
int lmz_bytes_to_symbols(const lmz_tokenizer *tok, const uint8_t *bytes, size_t len, int32_t **syms, size_t *n);

/* The bytes SYM stands for: copies at most CAP of them to BUF, returns their number. */
size_t lmz_symbol_bytes(const lmz_tokenizer *tok, int32_t sym, uint8_t *buf, size_t cap);

#endif
