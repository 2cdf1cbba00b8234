/* adapter_choice.h — `lmz --lora-dir DIR`: the LoRA adapters of a folder that fit a model,
 * the automatic choice among them (and the base model) for an input, and finding again, at
 * decompression, the adapter an archive names.
 *
 * The choice is made once per input, before its first chunk: every candidate (no adapter
 * first, then the adapters in file-name order) codes the input's first bytes as a chunk
 * would be coded, and the one with the fewest ideal bits (sum of -log2 p, plus for an
 * adapter the 64 bits of fingerprint the archive then holds) wins, the earlier on a tie. The archive records the winner's fingerprint like any --lora
 * archive, so the decompressor never repeats the choice: it looks the fingerprint up in
 * its own folder. The result depends on the input and the folder's files, never on
 * threads or machine (the scores are the deterministic model's). */
#ifndef LMZ_ADAPTER_CHOICE_H
#define LMZ_ADAPTER_CHOICE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Bytes of the input's beginning that the candidates code to be scored. */
#define LMZ_ADAPTER_SAMPLE_BYTES 2048

typedef struct {
    int n;
    lmz_lora **adapters; /* owned, in file-name order */
    char **paths;        /* owned, the files they came from */
} lmz_adapter_set;

/* Loads the *.gguf files of DIR that are LoRA adapters for MODEL. A file that is not one, or
 * is one for another model, is skipped, with its reason passed to SKIPPED (may be NULL).
 * With WANT_FP (an archive's 8-byte adapter fingerprint), loads only the file whose SHA-256
 * starts with it. Fails (-1 + lmz_fail) when DIR cannot be read or no file qualifies, the
 * message naming what was looked for. */
int lmz_adapter_set_load(lmz_adapter_set *s, const char *dir, const lmz_model *model, const uint8_t *want_fp,
                         void (*skipped)(void *ctx, const char *path, const char *why), void *ctx);
void lmz_adapter_set_free(lmz_adapter_set *s);

/* Scores every candidate on SAMPLE (LEN bytes, LMZ_ADAPTER_SAMPLE_BYTES or fewer) with
 * codec C and sets C's adapter to the winner. *CHOSEN: the adapter's index in S, or -1 for
 * none. BITS (may be NULL): the S->n + 1 scores, [0] for no adapter, [1 + i] for adapter i. 0, or -1 + lmz_fail. */
int lmz_adapter_choose(lmz_codec *c, const lmz_adapter_set *s, const uint8_t *sample, size_t len, int *chosen,
                       double *bits);

#endif
