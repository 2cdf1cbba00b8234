/* tokenizer.h — text <-> token ids with the model's own vocabulary (stage 1 of the data
 * flow: the compressor codes token ids, so both sides must tokenize identically).
 *
 * Token ids are exactly those of llama.cpp's llama_tokenize() for the same GGUF, text and
 * flags (tests/test_tokenizer.c checks this against fixtures made by llama.cpp).
 * Supported: byte-level BPE (tokenizer.ggml.model = "gpt2") with the pre-tokenizers
 * "gpt-2", "smollm" (and its aliases), "qwen2" and "llama-bpe"/"llama3" (and their
 * aliases); SentencePiece (tokenizer.ggml.model = "llama": Gemma, Llama 2) with byte
 * fallback and add_space_prefix either way.
 *
 * Special tokens: CONTROL and UNKNOWN texts are cut out of the input only with
 * parse_special; USER_DEFINED ones always (Gemma 3 has 165: "\n", runs of newlines,
 * spaces and tabs up to 31, HTML tags, image markers). llama.cpp orders candidates of
 * equal length unspecifiedly; lmz by id. That can only matter for two equal-length
 * texts that overlap in the input, which no supported vocabulary has.
 *
 * Round trip: detokenize(tokenize(text)) (add_special off, render_special = parse_special)
 * gives the text back byte for byte, except for these losses, which llama.cpp has too
 * (callers that need losslessness must check the round trip and escape what fails it):
 *   byte-level BPE
 *   - each invalid UTF-8 byte is replaced by U+FFFD before tokenizing;
 *   - a byte whose single-byte token the vocabulary lacks is dropped. SmolLM2 lacks 21:
 *     04 06 13 14 16 1D C0 C1 F1 F2 F5..FF, so these control characters and code points
 *     U+40000..U+BFFFF vanish even from valid UTF-8.
 *   SentencePiece (any other bytes round-trip, invalid UTF-8 through <0xHH> tokens)
 *   - a literal "▁" (U+2581) in the text comes back as a space;
 *   - an invalid UTF-8 lead byte swallows the bytes its length announces; if a space is
 *     among them, the space comes back as the raw bytes of "▁" (E2 96 81);
 *   - a byte with neither a "<0xHH>" nor a single-byte token makes tokenizing fail
 *     (llama.cpp throws); Gemma has all 256;
 *   - with add_space_prefix (not Gemma) a space goes before the text after each special
 *     token; detokenizing removes only the one at the start.
 *   Both: with parse_special off, merging can still produce a CONTROL token from plain
 *   text (only if its pieces are tokens; neither SmolLM2 nor Gemma 3 has such a path),
 *   which then renders only with render_special. */
#ifndef LMZ_TOKENIZER_H
#define LMZ_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h"

typedef struct lmz_tokenizer lmz_tokenizer;

/* tokenizer.ggml.token_type values, after llama.cpp's load-time corrections (tokens it
 * recognises as end-of-generation or fill-in-the-middle markers become CONTROL). */
enum lmz_token_type {
    LMZ_TOKEN_UNDEFINED = 0,
    LMZ_TOKEN_NORMAL = 1,
    LMZ_TOKEN_UNKNOWN = 2,
    LMZ_TOKEN_CONTROL = 3,
    LMZ_TOKEN_USER_DEFINED = 4,
    LMZ_TOKEN_UNUSED = 5,
    LMZ_TOKEN_BYTE = 6,
};

/* Builds the tokenizer from F's tokenizer.ggml.* metadata (F may be closed afterwards).
 * NULL + lmz_fail on missing or malformed keys or an unsupported model / pre-tokenizer. */
lmz_tokenizer *lmz_tokenizer_load(const gguf_file *f);
void lmz_tokenizer_free(lmz_tokenizer *t);

/* Tokenizes TEXT[0..len) (any bytes, NULs included) into a malloc'd array *ids of *n_ids
 * ids (*ids may be NULL when *n_ids is 0). add_special: add BOS/EOS where the model asks
 * for them. parse_special: text matching a CONTROL token (e.g. "<|im_start|>") becomes
 * that token; off, such text is tokenized as plain text (USER_DEFINED tokens are always
 * matched, as in llama.cpp). Plain text for compression uses parse_special = false;
 * chat-templated prompts use true. Thread-safe on a shared tokenizer.
 * 0, or -1 + lmz_fail (allocation failure, input over 1 GiB, an SPM byte with no
 * fallback token). */
int lmz_tokenize(const lmz_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                 int32_t **ids, size_t *n_ids);

/* The exact bytes token ID stands for: byte-level BPE texts are mapped back to raw
 * bytes, SentencePiece texts get "▁" -> " ", BYTE tokens ("<0xHH>") give their byte;
 * CONTROL and UNKNOWN tokens give their text when render_special, else nothing.
 * Copies at most CAP bytes to BUF and returns the full length (0 for an invalid id). */
size_t lmz_token_bytes(const lmz_tokenizer *t, int32_t id, bool render_special, char *buf, size_t cap);

/* Concatenates the bytes of IDS[0..n) into a malloc'd *text (NUL-terminated, *len bytes
 * before the NUL), as llama_detokenize with remove_special off: no clean-up of spaces,
 * except that with add_space_prefix the first piece loses one leading space.
 * 0, or -1 + lmz_fail. */
int lmz_detokenize(const lmz_tokenizer *t, const int32_t *ids, size_t n, bool render_special, char **text,
                   size_t *len);

int32_t lmz_tokenizer_n_vocab(const lmz_tokenizer *t);
int32_t lmz_tokenizer_bos(const lmz_tokenizer *t); /* -1 when the model has none */
int32_t lmz_tokenizer_eos(const lmz_tokenizer *t); /* -1 when the model has none */
bool lmz_tokenizer_adds_bos(const lmz_tokenizer *t); /* what add_special adds */
bool lmz_tokenizer_adds_eos(const lmz_tokenizer *t);
/* End of generation: EOS, EOT, EOM and the tokens llama.cpp recognises by text
 * ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<eos>", ...; also Gemma 3's "</s>",
 * as llama.cpp's list has it). */
bool lmz_tokenizer_is_eog(const lmz_tokenizer *t, int32_t id);
/* LMZ_TOKEN_UNDEFINED for an invalid id. */
enum lmz_token_type lmz_tokenizer_token_type(const lmz_tokenizer *t, int32_t id);
/* The id of the token whose stored text is exactly TEXT (e.g. "<|im_end|>"), or -1. */
int32_t lmz_tokenizer_find(const lmz_tokenizer *t, const char *text);
/* The stored text of token ID (byte-level BPE texts are in GPT-2's byte encoding, e.g.
 * "Ġthe"; SentencePiece texts have "▁" for spaces, e.g. "▁the"); NULL for an invalid id.
 * Not NUL-terminated: *len gives its length. */
const char *lmz_tokenizer_token_text(const lmz_tokenizer *t, int32_t id, size_t *len);

#endif
