/* cmd_speed.c — `lmz speed`: engine throughput, measured the way llama-bench does it
 * (prompt processing of P tokens as one batch; decode of N tokens one at a time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/quant.h"
#include "../util/error.h"
#include "cli.h"

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* STEPS decode steps of S streams as one batch each; *RATE = tokens of all streams per second. */
static int decode_streams(lmz_ctx *c, int S, int steps, int n_vocab, float *logits, double *rate) {
    int32_t tok[256], pos[256], seq[256];
    for (int s = 0; s < S; s++) {
        lmz_ctx_reset_seq(c, s);
        tok[s] = (s * 7919 + 11) % n_vocab;
        seq[s] = s;
    }
    double t0 = now_seconds();
    for (int i = 0; i < steps; i++) {
        for (int s = 0; s < S; s++) pos[s] = i;
        lmz_batch b = {S, tok, pos, seq, NULL};
        if (lmz_decode(c, &b, logits)) return -1;
        for (int s = 0; s < S; s++) tok[s] = (tok[s] * 31 + 7) % n_vocab;
    }
    *rate = (double)S * steps / (now_seconds() - t0);
    return 0;
}

int cmd_speed(int argc, char **argv) {
    static const char usage[] =
        "usage: lmz speed [-m MODEL] [-T N] [--isa I] [--streams S]\n"
        "  Prints tokens/s for prompt processing of 512 tokens in one batch (pp512), for\n"
        "  decoding 128 tokens one at a time (tg128), and for decoding 128 steps of S\n"
        "  independent streams in lockstep, one batch of S tokens per step (tg128xS, tokens of\n"
        "  all streams per second; S = 8 by default). Each is the best of 3 runs. Decode steps\n"
        "  compute every token's logits, as decompression does.\n";
    cli_opts o;
    if (cli_parse(argc, argv, 2, &o, usage)) return 2;
    lmz_model *m;
    lmz_tokenizer *tok;
    if (cli_load(&o, &m, &tok)) return 1;
    const int pp = 512, tg = 128, reps = 3;
    const int S = o.streams;
    lmz_ctx *c = lmz_ctx_create(m, pp + tg, S, o.threads);
    int32_t *ids = malloc((size_t)pp * sizeof(int32_t));
    float *logits = malloc((size_t)m->n_vocab * S * sizeof(float));
    if (!c || !ids || !logits) {
        cli_error("%s", lmz_last_error());
        return 1;
    }
    srand(1);
    for (int i = 0; i < pp; i++) ids[i] = rand() % m->n_vocab;
    double best_pp = 0, best_tg = 0, best_streams = 0;
    for (int r = 0; r < reps; r++) {
        lmz_ctx_reset_seq(c, 0);
        double t0 = now_seconds();
        /* logits only for the last token, as llama-bench does */
        uint8_t *want = calloc((size_t)pp, 1);
        int32_t *pos = malloc((size_t)pp * sizeof(int32_t)), *seq = calloc((size_t)pp, sizeof(int32_t));
        for (int i = 0; i < pp; i++) pos[i] = i;
        want[pp - 1] = 1;
        lmz_batch b = {pp, ids, pos, seq, want};
        int rc = lmz_decode(c, &b, logits);
        double t1 = now_seconds();
        free(want);
        free(pos);
        free(seq);
        if (rc) {
            cli_error("%s", lmz_last_error());
            return 1;
        }
        if (pp / (t1 - t0) > best_pp) best_pp = pp / (t1 - t0);

        lmz_ctx_reset_seq(c, 0);
        int32_t t = ids[0];
        t0 = now_seconds();
        for (int i = 0; i < tg; i++) {
            if (lmz_eval(c, 0, &t, 1, i, logits)) {
                cli_error("%s", lmz_last_error());
                return 1;
            }
            t = (t * 31 + 7) % m->n_vocab;
        }
        t1 = now_seconds();
        if (tg / (t1 - t0) > best_tg) best_tg = tg / (t1 - t0);

        double rate;
        if (decode_streams(c, S, tg, m->n_vocab, logits, &rate)) {
            cli_error("%s", lmz_last_error());
            return 1;
        }
        if (rate > best_streams) best_streams = rate;
    }
    printf("model %s\nthreads %d\nisa %s\npp%d %.2f\ntg%d %.2f\ntg%dx%d %.2f\n", m->name, o.threads,
           lmz_isa_name(lmz_isa_current()), pp, best_pp, tg, best_tg, tg, S, best_streams);
    free(ids);
    free(logits);
    lmz_ctx_free(c);
    lmz_tokenizer_free(tok);
    lmz_model_free(m);
    return 0;
}
