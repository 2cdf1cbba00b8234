/* cli.h — pieces shared by the lmz command-line subcommands. */
#ifndef LMZ_CLI_H
#define LMZ_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../container/archive.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"

/* Options common to the model subcommands. */
typedef struct {
    const char *model_path;  /* -m; NULL: the default model */
    int threads;             /* -T */
    const char *text;        /* --text */
    const char *file;        /* positional FILE ("-" or NULL: stdin) */
    int top_k;               /* -k */
    int n_ctx;               /* --ctx */
    int streams;             /* --streams */
    bool ids_only;           /* --ids */
    bool with_start;         /* --start */
    const char *lora_path;   /* --lora, where the command's usage lists it */
} cli_opts;

/* Parses argv[first..] into OPTS; prints usage to stderr and returns -1 on a bad option. */
int cli_parse(int argc, char **argv, int first, cli_opts *opts, const char *usage);

/* The default model: $LMZ_MODEL, else $LMZ_CACHE (or ~/.cache/lmz)/models/<default>. */
const char *cli_default_model_path(void);

/* -m's argument as a path: an existing file or anything with a '/' as given; else a known
 * model's name (smollm2, gemma3, qwen25coder, ..., as tools/fetch_models.py names them,
 * or e.g. "Gemma 3 270M") as its file in the model cache. */
const char *cli_resolve_model(const char *arg, const lmz_known_model **known);

/* Loads the model and its tokenizer (from the same file); prints the error and returns -1. */
int cli_load(const cli_opts *opts, lmz_model **model, lmz_tokenizer **tok);

/* Reads FILE (NULL or "-": stdin) or --text into a malloc'd buffer. */
int cli_read_input(const cli_opts *opts, char **data, size_t *len);

/* Parses S as a whole decimal number in [LO, HI] (nothing else in S) into *OUT; 0, or -1
 * (nothing printed: the caller says which option was wrong). */
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_int(const char *s, int lo, int hi, int *out);

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_model(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_speed(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_qa(int argc, char **argv);
int cmd_qa_bench(int argc, char **argv); /* cmd_qa_bench.c: `lmz qa bench` */

#endif
