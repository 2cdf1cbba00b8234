/* train.h — LoRA training: its configuration, the training data, the optimizer and the
 * training loop with checkpoints (the forward and backward pass are in graph.h).
 *
 * A run: sequences of at most `seq` text tokens, each preceded by the model's start token
 * (lmz_start_token, as every chunk the compressor codes), are visited in an order shuffled
 * per epoch with a seeded RNG; an optimizer step takes batch x accum sequences and descends
 * the mean next-token cross-entropy over all their predicted tokens with AdamW (decoupled
 * weight decay, bias-corrected moments), after clipping the gradient's global norm, at a
 * learning rate with linear warm-up and cosine decay. The adapter starts as PEFT's: A
 * kaiming-uniform (uniform in +-1/sqrt(inputs)), B zero, scale alpha / rank.
 *
 * Deterministic: for a model, data, configuration and seed, every step gives the same bits
 * whatever the thread count (graph.h), and a run resumed from a checkpoint gives the same
 * bits as one never interrupted. */
#ifndef LMZ_TRAIN_H
#define LMZ_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lora/lora.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

typedef struct {
    int rank;            /* 16 */
    float alpha;         /* 32: scale alpha / rank */
    unsigned targets;    /* bits 1 << enum lmz_lora_target; default all seven */
    float lr;            /* peak learning rate, 2e-4 */
    float beta1, beta2;  /* 0.9, 0.999 */
    float eps;           /* 1e-8 */
    float weight_decay;  /* 0 (decoupled, as AdamW) */
    float clip;          /* global gradient norm limit, 1.0; 0: none */
    int64_t steps;       /* optimizer steps of the run */
    int warmup;          /* steps of linear warm-up, 0 */
    int seq;             /* text tokens per sequence at most, 256 */
    int batch, accum;    /* sequences per micro-batch, micro-batches per step: 1, 1 */
    uint64_t seed;       /* 0 */
} lmz_train_config;

void lmz_train_config_default(lmz_train_config *c);
/* 0, or -1 + lmz_fail naming the first value out of range. */
int lmz_train_config_check(const lmz_train_config *c);
/* "q,k,v,o,gate,up,down" (any non-empty subset, any order) to target bits; 0 or -1 + lmz_fail. */
int lmz_train_parse_targets(const char *list, unsigned *targets);
/* The bits back as such a list. */
void lmz_train_format_targets(unsigned targets, char *out, size_t size);

/* The learning rate of step STEP (0-based): lr (s + 1) / warmup during the warm-up, then
 * lr (1 + cos(pi (s - warmup) / (steps - warmup))) / 2. */
float lmz_train_lr(const lmz_train_config *c, int64_t step);

/* ---------------- data ---------------- */

/* Training sequences, back to back: sequence i is tokens[off[i] .. off[i + 1]), the start
 * token then 1..seq text tokens (its predictions: off[i + 1] - off[i] - 1). */
typedef struct {
    int seq;
    int32_t start;
    int32_t *tokens;
    size_t n_tokens, cap_tokens;
    size_t *off;          /* n_seqs + 1 entries */
    size_t n_seqs, cap_seqs;
    size_t n_docs, n_bytes;
} lmz_train_data;

/* Empty data cut into sequences of at most SEQ tokens of TOK. 0 or -1 + lmz_fail. */
int lmz_train_data_init(lmz_train_data *d, const lmz_tokenizer *tok, int seq);
void lmz_train_data_free(lmz_train_data *d);
/* Appends one document: its tokens (plain text, special-token text not parsed) cut into
 * sequences of SEQ tokens, the last one shorter. Empty text adds nothing. */
int lmz_train_data_add_text(lmz_train_data *d, const lmz_tokenizer *tok, const char *text, size_t len);
/* Appends a file: PATH ending in ".jsonl" holds one JSON value per line, each line a
 * document made of its string values (object keys excluded) joined by newlines, blank lines
 * skipped; any other file is one document. 0, or -1 + lmz_fail naming the file and line. */
int lmz_train_data_add_file(lmz_train_data *d, const lmz_tokenizer *tok, const char *path);
/* The text of one JSON line as add_file takes it (malloc'd *OUT, *OUT_LEN), for tests.
 * 0, or -1 + lmz_fail. */
int lmz_train_json_text(const char *line, size_t len, char **out, size_t *out_len);
/* SHA-256 of the sequences (what a checkpoint records to recognize its data). */
void lmz_train_data_sha256(const lmz_train_data *d, uint8_t sha[32]);

/* ---------------- the run ---------------- */

typedef struct lmz_trainer lmz_trainer;

/* A new run of CFG on DATA (kept by reference; it must outlive the trainer) with a fresh
 * adapter, on N_THREADS threads. NULL + lmz_fail. */
lmz_trainer *lmz_trainer_create(const lmz_model *m, const lmz_train_config *cfg, const lmz_train_data *data,
                                int n_threads);
/* The run saved in checkpoint PATH, continued on DATA (which must be the checkpoint's: same
 * sequences) and model M (the checkpoint's: same file contents). NULL + lmz_fail. */
lmz_trainer *lmz_trainer_resume(const lmz_model *m, const char *path, const lmz_train_data *data, int n_threads);
void lmz_trainer_free(lmz_trainer *t);
/* The configuration saved in checkpoint PATH (to cut the data as it was before resuming).
 * 0, or -1 + lmz_fail. */
int lmz_train_checkpoint_config(const char *path, lmz_train_config *cfg);

typedef struct {
    int64_t step;        /* steps done, this one included */
    double loss;         /* mean cross-entropy of the step's predictions, nats */
    int64_t tokens;      /* predictions in the step */
    float lr;            /* the learning rate the step used */
    double grad_norm;    /* the gradient's global norm before clipping */
    int64_t epoch;       /* the epoch the next sequence belongs to (0-based) */
} lmz_train_stats;

/* One optimizer step. 0, or -1 + lmz_fail. */
int lmz_trainer_step(lmz_trainer *t, lmz_train_stats *st);
int64_t lmz_trainer_steps_done(const lmz_trainer *t);
const lmz_train_config *lmz_trainer_config(const lmz_trainer *t);
/* The adapter being trained (owned by the trainer; save it with lmz_lora_save). */
lmz_lora *lmz_trainer_adapter(lmz_trainer *t);
/* Writes the run's state (configuration, adapter, AdamW moments, step, RNG, data position,
 * the model's and the data's fingerprints) to PATH, through a temporary file renamed into
 * place. 0, or -1 + lmz_fail. */
int lmz_trainer_save_checkpoint(lmz_trainer *t, const char *path);

#endif
