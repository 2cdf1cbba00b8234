/* cmd_train.c — `lmz train`: trains a LoRA adapter on text and JSONL files (src/train/)
 * and writes it in llama.cpp's GGUF adapter format, with checkpoints to resume from. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../gguf/tensor_types.h"
#include "../kernels/quant.h"
#include "../train/train.h"
#include "../util/error.h"
#include "../util/sha256.h"
#include "cli.h"

static const char usage[] =
    "usage: lmz train -m MODEL --data FILE [--data FILE...] -o ADAPTER.gguf [options]\n"
    "  Trains a LoRA adapter for MODEL on the text of the --data files and writes it as a\n"
    "  GGUF adapter (F32) that `lmz --lora`, llama.cpp and lmz's other commands load. A file\n"
    "  ending in .jsonl holds one JSON value per line, and each line's string values (not\n"
    "  its keys), joined by newlines, are one document; any other file is one document. Each\n"
    "  document is tokenized and cut into sequences of --seq tokens, each after the model's\n"
    "  start token, as the compressor codes text. The result depends only on the model, the\n"
    "  data, the options and the seed: not on -T.\n"
    "\n"
    "  --rank R            adapter rank (default 16)\n"
    "  --alpha A           scale alpha / rank (default 32)\n"
    "  --targets LIST      projections to adapt, from q,k,v,o,gate,up,down (default all)\n"
    "  --lr X              peak learning rate (default 2e-4)\n"
    "  --steps N           optimizer steps, or\n"
    "  --epochs E          passes over the data (default 1; may be fractional)\n"
    "  --seq N             tokens per sequence (default 256)\n"
    "  --batch B           sequences per micro-batch (default 1)\n"
    "  --accum K           micro-batches per optimizer step (default 1)\n"
    "  --warmup W          steps of linear warm-up before the cosine decay (default 0)\n"
    "  --weight-decay X    AdamW's decoupled weight decay (default 0)\n"
    "  --clip X            clip the gradient's global norm to X (default 1; 0: never)\n"
    "  --seed S            seed of the adapter's initialization and the data order (default 0)\n"
    "  --checkpoint FILE   save the run's state there every --save-every steps, at the end and\n"
    "                      on Ctrl-C (the adapter is written to -o each time too)\n"
    "  --save-every N      steps between checkpoints (default 50)\n"
    "  --resume FILE       continue the run saved in checkpoint FILE (same model and --data;\n"
    "                      its options stand); the result is bit-identical to an\n"
    "                      uninterrupted run. Checkpoints go on to FILE unless --checkpoint\n"
    "  -T N                threads (default 2)\n"
    "  -q                  no progress lines\n"
    "\n"
    "  A progress line per step on standard error: step, loss (nats per token), bits/token,\n"
    "  learning rate, gradient norm, tokens/s.\n";

#define N_FIXED 13

typedef struct {
    const char *model, *out, *checkpoint, *resume;
    const char **data;
    int n_data;
    lmz_train_config cfg;
    double epochs;
    bool steps_given, epochs_given, quiet;
    int threads, save_every;
    /* the options a resumed run must not change, in the order of fixed_names below */
    bool given[N_FIXED];
} options;

static const char *const fixed_names[N_FIXED] = {"--rank",  "--alpha", "--targets", "--lr",     "--steps",
                                                 "--epochs", "--seq",  "--batch",   "--accum",  "--warmup",
                                                 "--weight-decay", "--clip", "--seed"};

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out) {
    if (!cli_parse_long(s, lo, hi, out)) return 0;
    cli_error("%s wants a whole number from %ld to %ld, not '%s'", opt, lo, hi, s);
    return -1;
}

static int parse_float(const char *opt, const char *s, double lo, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo) || !isfinite(v)) {
        cli_error("%s wants a number of at least %g, not '%s'", opt, lo, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    lmz_train_config_default(&o->cfg);
    o->threads = 2;
    o->save_every = 50;
    o->epochs = 1;
    o->data = calloc((size_t)argc, sizeof *o->data);
    if (!o->data) return -1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "-q")) {
            o->quiet = true;
            continue;
        }
        if (a[0] != '-') {
            cli_error("unexpected argument '%s' (training files go after --data)\n%s", a, usage);
            return -1;
        }
        if (!v) {
            cli_error("option %s needs a value\n%s", a, usage);
            return -1;
        }
        i++;
        long n;
        float f;
        int fixed = -1;
        for (int k = 0; k < N_FIXED; k++)
            if (!strcmp(a, fixed_names[k])) fixed = k;
        if (fixed >= 0) o->given[fixed] = true;
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--data")) o->data[o->n_data++] = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--checkpoint")) o->checkpoint = v;
        else if (!strcmp(a, "--resume")) o->resume = v;
        else if (!strcmp(a, "--targets")) {
            if (lmz_train_parse_targets(v, &o->cfg.targets)) {
                cli_error("--targets: %s", lmz_last_error());
                return -1;
            }
        } else if (!strcmp(a, "--rank")) {
            if (parse_long(a, v, 1, 4096, &n)) return -1;
            o->cfg.rank = (int)n;
        } else if (!strcmp(a, "--alpha")) {
            if (parse_float(a, v, 1e-30, &o->cfg.alpha)) return -1;
        } else if (!strcmp(a, "--lr")) {
            if (parse_float(a, v, 1e-30, &o->cfg.lr)) return -1;
        } else if (!strcmp(a, "--steps")) {
            if (parse_long(a, v, 1, 1L << 40, &n)) return -1;
            o->cfg.steps = n;
            o->steps_given = true;
        } else if (!strcmp(a, "--epochs")) {
            if (parse_float(a, v, 1e-9, &f)) return -1;
            o->epochs = f;
            o->epochs_given = true;
        } else if (!strcmp(a, "--seq")) {
            if (parse_long(a, v, 1, 65535, &n)) return -1;
            o->cfg.seq = (int)n;
        } else if (!strcmp(a, "--batch")) {
            if (parse_long(a, v, 1, 1 << 20, &n)) return -1;
            o->cfg.batch = (int)n;
        } else if (!strcmp(a, "--accum")) {
            if (parse_long(a, v, 1, 1 << 20, &n)) return -1;
            o->cfg.accum = (int)n;
        } else if (!strcmp(a, "--warmup")) {
            if (parse_long(a, v, 0, 1 << 30, &n)) return -1;
            o->cfg.warmup = (int)n;
        } else if (!strcmp(a, "--weight-decay")) {
            if (parse_float(a, v, 0, &o->cfg.weight_decay)) return -1;
        } else if (!strcmp(a, "--clip")) {
            if (parse_float(a, v, 0, &o->cfg.clip)) return -1;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->cfg.seed = strtoull(v, &end, 0);
            if (errno || end == v || *end) {
                cli_error("--seed wants a whole number, not '%s'", v);
                return -1;
            }
        } else if (!strcmp(a, "--save-every")) {
            if (parse_long(a, v, 1, 1 << 30, &n)) return -1;
            o->save_every = (int)n;
        } else if (!strcmp(a, "-T")) {
            if (parse_long(a, v, 1, 256, &n)) return -1;
            o->threads = (int)n;
        } else {
            cli_error("unknown option %s\n%s", a, usage);
            return -1;
        }
    }
    if (!o->n_data || !o->out) {
        cli_error("lmz train needs --data FILE and -o ADAPTER.gguf\n%s", usage);
        return -1;
    }
    if (o->steps_given && o->epochs_given) {
        cli_error("give --steps or --epochs, not both");
        return -1;
    }
    return 0;
}

/* With --resume: the checkpoint's configuration, refusing options given to change it. */
static int resume_config(options *o) {
    lmz_train_config saved;
    if (lmz_train_checkpoint_config(o->resume, &saved)) {
        cli_error("%s", lmz_last_error());
        return -1;
    }
    const lmz_train_config *c = &o->cfg;
    /* --epochs always differs: it would set the steps anew */
    const bool differs[N_FIXED] = {c->rank != saved.rank,     c->alpha != saved.alpha, c->targets != saved.targets,
                                   c->lr != saved.lr,         c->steps != saved.steps, true,
                                   c->seq != saved.seq,       c->batch != saved.batch, c->accum != saved.accum,
                                   c->warmup != saved.warmup, c->weight_decay != saved.weight_decay,
                                   c->clip != saved.clip,     c->seed != saved.seed};
    for (int k = 0; k < N_FIXED; k++)
        if (o->given[k] && differs[k]) {
            cli_error("--resume continues the run saved in %s with the options it was started with; %s cannot "
                      "change (leave it out)", o->resume, fixed_names[k]);
            return -1;
        }
    o->cfg = saved;
    return 0;
}

/* Saves the adapter to -o and, with --checkpoint, the run's state. */
static int save(lmz_trainer *t, const options *o, const char *checkpoint) {
    if (lmz_lora_save(lmz_trainer_adapter(t), o->out, LMZ_F32)) {
        cli_error("%s", lmz_last_error());
        return -1;
    }
    if (checkpoint && lmz_trainer_save_checkpoint(t, checkpoint)) {
        cli_error("%s", lmz_last_error());
        return -1;
    }
    return 0;
}

static size_t adapter_params(const lmz_lora *l) {
    size_t n = 0;
    for (int i = 0; i < l->n_weights; i++)
        n += (size_t)l->weights[i]->rank * (size_t)(l->weights[i]->n_in + l->weights[i]->n_out);
    return n;
}

int cmd_train(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o)) {
        free(o.data);
        return 2;
    }
    if (o.resume && resume_config(&o)) {
        free(o.data);
        return 1;
    }
    cli_opts co = {0};
    co.model_path = o.model;
    lmz_model *m = NULL;
    lmz_tokenizer *tok = NULL;
    lmz_train_data data = {0};
    lmz_trainer *t = NULL;
    int rc = 1;
    if (cli_load(&co, &m, &tok)) goto done;
    if (lmz_train_data_init(&data, tok, o.cfg.seq)) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    for (int i = 0; i < o.n_data; i++)
        if (lmz_train_data_add_file(&data, tok, o.data[i])) {
            cli_error("%s", lmz_last_error());
            goto done;
        }
    if (!data.n_seqs) {
        cli_error("the --data files hold no text to train on");
        goto done;
    }
    if (!o.resume && !o.steps_given) {
        const double per_step = (double)o.cfg.batch * o.cfg.accum;
        o.cfg.steps = (int64_t)ceil(o.epochs * (double)data.n_seqs / per_step);
        if (o.cfg.steps < 1) o.cfg.steps = 1;
    }
    t = o.resume ? lmz_trainer_resume(m, o.resume, &data, o.threads) : lmz_trainer_create(m, &o.cfg, &data, o.threads);
    if (!t) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    const lmz_train_config *c = lmz_trainer_config(t);
    const char *checkpoint = o.checkpoint ? o.checkpoint : o.resume;
    char targets[64];
    lmz_train_format_targets(c->targets, targets, sizeof targets);
    size_t n_tokens = data.n_tokens - data.n_seqs;
    if (!o.quiet) {
        fprintf(stderr, "model      %s (%s, %d layers)\n", m->name, m->arch_name, m->n_layer);
        fprintf(stderr, "data       %zu documents, %zu bytes, %zu tokens in %zu sequences of up to %d\n", data.n_docs,
                data.n_bytes, n_tokens, data.n_seqs, c->seq);
        fprintf(stderr, "adapter    rank %d, alpha %g, on %s: %zu parameters\n", c->rank, (double)c->alpha, targets,
                adapter_params(lmz_trainer_adapter(t)));
        fprintf(stderr, "run        %lld steps of %d x %d sequences (%.2f epochs), lr %g, warm-up %d, clip %g, "
                "weight decay %g, seed %llu, %d threads%s\n", (long long)c->steps, c->batch, c->accum,
                (double)c->steps * c->batch * c->accum / (double)data.n_seqs, (double)c->lr, c->warmup,
                (double)c->clip, (double)c->weight_decay, (unsigned long long)c->seed, o.threads,
                o.resume ? ", resumed" : "");
        if (o.resume)
            fprintf(stderr, "resumed    at step %lld of %lld\n", (long long)lmz_trainer_steps_done(t),
                    (long long)c->steps);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    const double t0 = now_seconds();
    int64_t done_tokens = 0;
    while (lmz_trainer_steps_done(t) < c->steps && !interrupted) {
        lmz_train_stats st;
        if (lmz_trainer_step(t, &st)) {
            cli_error("%s", lmz_last_error());
            goto done;
        }
        done_tokens += st.tokens;
        const double el = now_seconds() - t0;
        if (!o.quiet)
            fprintf(stderr, "step %lld/%lld  loss %.4f  bits/token %.4f  lr %.3e  |g| %.3f  %.1f tokens/s\n",
                    (long long)st.step, (long long)c->steps, st.loss, st.loss / log(2.0), (double)st.lr, st.grad_norm,
                    el > 0 ? (double)done_tokens / el : 0.0);
        if (checkpoint && st.step % o.save_every == 0 && st.step < c->steps && save(t, &o, checkpoint)) goto done;
    }
    if (save(t, &o, checkpoint)) goto done;
    if (interrupted) {
        fprintf(stderr, "interrupted at step %lld: adapter written to %s%s%s\n", (long long)lmz_trainer_steps_done(t),
                o.out, checkpoint ? ", state to " : "", checkpoint ? checkpoint : "");
        rc = 130;
        goto done;
    }
    if (!o.quiet) {
        char hex[65];
        lmz_sha256_hex(lmz_trainer_adapter(t)->sha256, hex);
        fprintf(stderr, "wrote      %s (sha256 %.16s...) after %lld steps\n", o.out, hex,
                (long long)lmz_trainer_steps_done(t));
    }
    rc = 0;
done:
    lmz_trainer_free(t);
    lmz_train_data_free(&data);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    free(o.data);
    return rc;
}
