/* cmd_qa_bench.c — `lmz qa bench` (issue 8): runs Question-Asking compression over a problem
 * set (tools/make_qa_sets.py) with its baselines — the SLM alone, the LLM alone, QA with
 * the LLM as oracle, and self-refinement (the SLM answering its own questions) — grades each
 * answer (src/qa/grade.c), checks that decoding the QA stream gives the same answers, and
 * writes one JSON line per problem, appended and synced after each batch, so an interrupted
 * run resumes where it stopped (ids already in the results file are skipped). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../coder/bytebuf.h"
#include "../qa/grade.h"
#include "../qa/qa.h"
#include "../util/error.h"
#include "../util/json.h"
#include "cli.h"

static const char usage[] =
    "usage: lmz qa bench --set FILE.jsonl --llm MODEL --out RESULTS.jsonl [options]\n"
    "  Runs each problem of the set (tools/make_qa_sets.py writes them to $LMZ_CACHE/qa/)\n"
    "  four ways — the SLM alone (its first answer), the LLM alone (the oracle's own solution),\n"
    "  QA (the SLM refined by the LLM's yes/no answers) and self-refinement (the same protocol\n"
    "  with the SLM answering its own questions, no LLM) — grades every answer against the\n"
    "  gold (math: the final answer; code: the set's tests run by python3 in a sandbox),\n"
    "  decodes the QA bits again to check the receiver gets the same answers, and appends one\n"
    "  JSON line per problem to RESULTS after each batch. Problems whose id is already in\n"
    "  RESULTS are skipped, so an interrupted run continues where it stopped.\n"
    "\n"
    "  --set FILE          the problems (JSONL: id, task, problem, gold, tests, entry_point, prefix)\n"
    "  --out FILE          the results (appended; created when missing)\n"
    "  --offset N          skip the set's first N problems (default 0)\n"
    "  --limit N           at most N problems from there (default all)\n"
    "  -m SLM              the small model (default: lmz's default model)\n"
    "  --question-model QM the model that writes the questions (default: the SLM)\n"
    "  --llm MODEL         the large model: a GGUF file or fetched model's name, or the URL of\n"
    "                      an OpenAI-compatible /v1/chat/completions endpoint\n"
    "  --llm-model NAME    the \"model\" field sent to an endpoint (with a URL; default \"default\")\n"
    "  --llm-key-env VAR   send the API key in environment variable VAR (with a URL)\n"
    "  --llm-tokenizer M   a GGUF whose tokenizer counts the LLM's answer tokens (with a URL)\n"
    "  --llm-timeout S     seconds per endpoint request (default 300)\n"
    "  --llm-tokens N      the LLM's token limit for its own solution (default: the oracle's, 512)\n"
    "  --variant V         oneshot (default) or iterative\n"
    "  --questions K       questions (one-shot) or questions per round (iterative)\n"
    "  --rounds R          rounds (iterative)\n"
    "  --answer-tokens N   the SLM's token limit per attempt\n"
    "  --coded             code the answer bits under the SLM's P(yes)\n"
    "  --batch B           problems encoded together (default 4)\n"
    "  --no-self           skip the self-refinement baseline\n"
    "  --no-decode-check   skip decoding the QA bits again\n"
    "  --code-timeout S    wall-clock seconds for a code answer's tests (default 10)\n"
    "  -T N                threads (default 2); results are identical for any N\n"
    "  -q                  no progress lines\n"
    "\n"
    "  Each line: id, task, config, gold; slm / llm / qa / self: answer, extracted, correct\n"
    "  (code: exit status, timeout, output tail); qa and self: questions, bits, n_bits,\n"
    "  ideal_bits, coded_bits; llm: tokens (the LLM's tokenizer), llm_vocab; decode_ok;\n"
    "  label (easy: SLM and LLM right; gap: SLM wrong, LLM right; hard: both wrong; inverse:\n"
    "  SLM right, LLM wrong); ratio = n_bits / (LLM tokens x log2 vocab); seconds.\n";

typedef struct {
    const char *set, *out, *slm, *qm, *llm, *llm_model, *llm_key_env, *llm_tok;
    double llm_timeout, code_timeout;
    int offset, limit, batch, threads, questions, rounds, answer_tokens, llm_tokens;
    int coded;
    enum lmz_qa_variant variant;
    bool self, decode_check, quiet;
} options;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->batch = 4;
    o->threads = 2;
    o->limit = -1;
    o->questions = o->rounds = o->answer_tokens = o->llm_tokens = -1;
    o->variant = LMZ_QA_ONESHOT;
    o->self = o->decode_check = true;
    o->llm_timeout = 300;
    o->code_timeout = 10;
    o->llm_model = "default";
    for (int i = 2; i < argc; i++) { /* argv[0] "lmz", argv[1] "qa"; "bench" is argv[2] */
        const char *a = argv[i];
        if (i == 2 && !strcmp(a, "bench")) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool flag = !strcmp(a, "--coded") || !strcmp(a, "--no-self") || !strcmp(a, "--no-decode-check") ||
                    !strcmp(a, "-q") || !strcmp(a, "-h") || !strcmp(a, "--help");
        if (!flag && !v) {
            cli_error("%s needs a value\n%s", a, usage);
            return -1;
        }
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if (!strcmp(a, "--coded")) o->coded = 1;
        else if (!strcmp(a, "--no-self")) o->self = false;
        else if (!strcmp(a, "--no-decode-check")) o->decode_check = false;
        else if (!strcmp(a, "-q")) o->quiet = true;
        else if (!strcmp(a, "--set")) o->set = argv[++i];
        else if (!strcmp(a, "--out")) o->out = argv[++i];
        else if (!strcmp(a, "-m")) o->slm = argv[++i];
        else if (!strcmp(a, "--question-model")) o->qm = argv[++i];
        else if (!strcmp(a, "--llm")) o->llm = argv[++i];
        else if (!strcmp(a, "--llm-model")) o->llm_model = argv[++i];
        else if (!strcmp(a, "--llm-key-env")) o->llm_key_env = argv[++i];
        else if (!strcmp(a, "--llm-tokenizer")) o->llm_tok = argv[++i];
        else if (!strcmp(a, "--llm-timeout") || !strcmp(a, "--code-timeout")) {
            char *end;
            double d = strtod(argv[++i], &end);
            if (*end || !(d > 0 && d <= 86400)) bad = 1;
            else if (a[2] == 'l') o->llm_timeout = d;
            else o->code_timeout = d;
        } else if (!strcmp(a, "--variant")) {
            i++;
            if (!strcmp(argv[i], "oneshot") || !strcmp(argv[i], "one-shot")) o->variant = LMZ_QA_ONESHOT;
            else if (!strcmp(argv[i], "iterative")) o->variant = LMZ_QA_ITERATIVE;
            else bad = 1;
        } else if (!strcmp(a, "--offset")) bad = cli_parse_int(argv[++i], 0, 1 << 30, &o->offset);
        else if (!strcmp(a, "--limit")) bad = cli_parse_int(argv[++i], 1, 1 << 30, &o->limit);
        else if (!strcmp(a, "--batch")) bad = cli_parse_int(argv[++i], 1, 256, &o->batch);
        else if (!strcmp(a, "-T")) bad = cli_parse_int(argv[++i], 1, 256, &o->threads);
        else if (!strcmp(a, "--questions")) bad = cli_parse_int(argv[++i], 1, 64, &o->questions);
        else if (!strcmp(a, "--rounds")) bad = cli_parse_int(argv[++i], 1, 16, &o->rounds);
        else if (!strcmp(a, "--answer-tokens")) bad = cli_parse_int(argv[++i], 1, 32768, &o->answer_tokens);
        else if (!strcmp(a, "--llm-tokens")) bad = cli_parse_int(argv[++i], 1, 32768, &o->llm_tokens);
        else {
            cli_error("unknown option %s\n%s", a, usage);
            return -1;
        }
        if (bad) {
            cli_error("bad value '%s' for %s", argv[i], a);
            return -1;
        }
    }
    if (!o->set || !o->out || !o->llm) {
        cli_error("lmz qa bench needs --set, --llm and --out\n%s", usage);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ JSON lines */

typedef struct {
    lmz_bytebuf b;
    int err;
} jw;

static void jraw(jw *w, const char *s) {
    if (!w->err && lmz_bytebuf_append(&w->b, s, strlen(s))) w->err = 1;
}

static void jsep(jw *w) {
    if (w->b.len) {
        char c = (char)w->b.data[w->b.len - 1];
        if (c != '{' && c != '[' && c != ':' && c != '\n') jraw(w, ",");
    }
}

static void jstr(jw *w, const char *s) {
    jsep(w);
    if (!s) jraw(w, "null");
    else if (!w->err && lmz_json_write_string(&w->b, s, strlen(s))) w->err = 1;
}

static void jkey(jw *w, const char *k) {
    jstr(w, k);
    jraw(w, ":");
}

static void jnum(jw *w, double v) {
    char buf[64];
    jsep(w);
    if (!isfinite(v)) snprintf(buf, sizeof buf, "null");
    else if (v == (double)(long long)v && fabs(v) < 1e15) snprintf(buf, sizeof buf, "%lld", (long long)v);
    else snprintf(buf, sizeof buf, "%.6g", v);
    jraw(w, buf);
}

static void jbool(jw *w, bool v) {
    jsep(w);
    jraw(w, v ? "true" : "false");
}

static void jopen(jw *w, char c) {
    jsep(w);
    char s[2] = {c, 0};
    jraw(w, s);
}

static void jclose(jw *w, char c) {
    char s[2] = {c, 0};
    jraw(w, s);
}

static char *bitstring(const uint8_t *bits, int n) {
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    for (int i = 0; i < n; i++) s[i] = bits[i] ? '1' : '0';
    s[n] = 0;
    return s;
}

/* "answer", "extracted", "correct" (+ code details) of one graded answer. */
static void write_graded(jw *w, const lmz_qa_item *it, const char *answer, const lmz_qa_grade *g) {
    jkey(w, "answer");
    jstr(w, answer);
    jkey(w, "extracted");
    jstr(w, it->task == LMZ_QA_CODE ? NULL : g->extracted);
    jkey(w, "correct");
    jbool(w, g->correct);
    if (it->task == LMZ_QA_CODE) {
        jkey(w, "exit");
        jnum(w, g->exit_code);
        jkey(w, "timed_out");
        jbool(w, g->timed_out);
        jkey(w, "output_tail");
        if (g->output && strlen(g->output) > 400) jstr(w, g->output + strlen(g->output) - 400);
        else jstr(w, g->output);
    }
}

static void write_protocol(jw *w, const lmz_qa_result *r) {
    jkey(w, "questions");
    jopen(w, '[');
    for (int q = 0; q < r->n_questions; q++) jstr(w, r->questions[q]);
    jclose(w, ']');
    char *qb = bitstring(r->question_bits, r->n_questions), *jb = bitstring(r->judge_bits, r->n_judgements);
    if (!qb || !jb) w->err = 1;
    jkey(w, "question_bits");
    jstr(w, qb ? qb : "");
    jkey(w, "judge_bits");
    jstr(w, jb ? jb : "");
    free(qb);
    free(jb);
    jkey(w, "n_bits");
    jnum(w, r->n_bits);
    jkey(w, "ideal_bits");
    jnum(w, r->ideal_bits);
    jkey(w, "coded_bits");
    jnum(w, r->coded_bits);
}

/* ------------------------------------------------------------------ earlier results */

typedef struct {
    char *id;
    int slm, llm, qa, self; /* 1 right, 0 wrong, -1 absent */
    int decode_ok;          /* -1 not checked */
    double bits, coded_bits, tokens;
} record;

typedef struct {
    record *r;
    int n, cap;
} records;

static int records_add(records *rs, const record *r) {
    if (rs->n == rs->cap) {
        int nc = rs->cap ? rs->cap * 2 : 64;
        record *nr = lmz_realloc(rs->r, (size_t)nc * sizeof *nr);
        if (!nr) return -1;
        rs->r = nr;
        rs->cap = nc;
    }
    rs->r[rs->n++] = *r;
    return 0;
}

static const record *records_find(const records *rs, const char *id) {
    for (int i = 0; i < rs->n; i++)
        if (!strcmp(rs->r[i].id, id)) return &rs->r[i];
    return NULL;
}

static int get_correct(const lmz_json *o, const char *who) {
    const lmz_json *w = lmz_json_get(o, who), *c = lmz_json_get(w, "correct");
    if (!c) return -1;
    return c->type == LMZ_JSON_TRUE ? 1 : 0;
}

static double get_num(const lmz_json *o, const char *who, const char *key) {
    const lmz_json *v = lmz_json_get(who ? lmz_json_get(o, who) : o, key);
    return v && v->type == LMZ_JSON_NUMBER ? strtod(v->str, NULL) : NAN;
}

/* Reads the results already in PATH (CONFIG must match theirs); a last line cut short by an
 * interruption is cut off the file. 0, or -1 with the error printed. */
static int read_results(const char *path, const char *config, records *rs) {
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 0 : (cli_error("cannot open %s: %s", path, strerror(errno)), -1);
    lmz_bytebuf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (lmz_bytebuf_append(&b, chunk, got)) break;
    fclose(f);
    size_t complete = 0;
    for (size_t i = b.len; i > 0; i--)
        if (b.data[i - 1] == '\n') {
            complete = i;
            break;
        }
    if (complete < b.len) {
        fprintf(stderr, "lmz qa bench: %s ends in an incomplete line (an interrupted write): cutting it off\n", path);
        if (truncate(path, (off_t)complete) != 0) {
            cli_error("cannot truncate %s: %s", path, strerror(errno));
            lmz_bytebuf_free(&b);
            return -1;
        }
    }
    int line = 0, rc = 0;
    for (size_t pos = 0; pos < complete && !rc;) {
        const char *s = (const char *)b.data + pos;
        size_t n = (size_t)((const char *)memchr(s, '\n', complete - pos) - s);
        line++;
        pos += n + 1;
        if (!n) continue;
        lmz_json *o = lmz_json_parse(s, n);
        const lmz_json *id = lmz_json_get(o, "id"), *cf = lmz_json_get(o, "config");
        if (!o || !id || id->type != LMZ_JSON_STRING) {
            cli_error("%s line %d is not a result line (%s); move the file away or fix it", path, line,
                      o ? "no id" : lmz_last_error());
            rc = -1;
        } else if (!cf || cf->type != LMZ_JSON_STRING || strcmp(cf->str, config)) {
            cli_error("%s line %d was made with another configuration:\n  %s\nthis run is\n  %s\n"
                      "use another --out for another configuration", path, line, cf && cf->str ? cf->str : "(none)",
                      config);
            rc = -1;
        } else {
            const lmz_json *d = lmz_json_get(o, "decode_ok");
            record r = {.slm = get_correct(o, "slm"), .llm = get_correct(o, "llm"), .qa = get_correct(o, "qa"),
                        .self = get_correct(o, "self"),
                        .decode_ok = !d || d->type == LMZ_JSON_NULL ? -1 : d->type == LMZ_JSON_TRUE,
                        .bits = get_num(o, "qa", "n_bits"), .coded_bits = get_num(o, "qa", "coded_bits"),
                        .tokens = get_num(o, "llm", "tokens")};
            r.id = strdup(id->str);
            if (!r.id || records_add(rs, &r)) rc = -1;
        }
        lmz_json_free(o);
    }
    lmz_bytebuf_free(&b);
    return rc;
}

static const char *label_of(int slm, int llm) {
    if (slm < 0 || llm < 0) return NULL;
    return slm ? (llm ? "easy" : "inverse") : (llm ? "gap" : "hard");
}

/* ------------------------------------------------------------------ models */

typedef struct {
    lmz_model *m;
    lmz_tokenizer *t;
} loaded;

static int load_model(const char *name, loaded *l) {
    cli_opts o;
    memset(&o, 0, sizeof o);
    o.model_path = name;
    return cli_load(&o, &l->m, &l->t);
}

static void unload(loaded *l) {
    if (l->t) lmz_tokenizer_free(l->t);
    if (l->m) lmz_model_free(l->m);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* ------------------------------------------------------------------ the run */

/* Frees a batch's results (zeroed ones are left as they are) and zeroes them. */
static void free_results(lmz_qa_result *a, lmz_qa_result *b, lmz_qa_result *c, int n) {
    lmz_qa_result zero;
    memset(&zero, 0, sizeof zero);
    lmz_qa_result *all[3] = {a, b, c};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < n; k++) {
            if (memcmp(&all[s][k], &zero, sizeof zero)) lmz_qa_result_free(&all[s][k]);
            memset(&all[s][k], 0, sizeof zero);
        }
}

static void print_summary(const records *rs, const lmz_qa_set *set, int first, int last, double log2v) {
    int n = 0, slm = 0, llm = 0, qa = 0, self = 0, n_self = 0, dec = 0, n_dec = 0;
    int gap = 0, gap_fixed = 0, slm_right = 0, regress = 0, labels[4] = {0};
    double bits = 0, coded = 0, tokens = 0;
    int n_tok = 0;
    for (int i = first; i < last; i++) {
        const record *r = records_find(rs, set->items[i].id);
        if (!r || r->slm < 0 || r->llm < 0 || r->qa < 0) continue;
        n++;
        slm += r->slm;
        llm += r->llm;
        qa += r->qa;
        if (r->self >= 0) {
            n_self++;
            self += r->self;
        }
        if (r->decode_ok >= 0) {
            n_dec++;
            dec += r->decode_ok;
        }
        labels[r->slm ? (r->llm ? 0 : 3) : (r->llm ? 1 : 2)]++;
        if (!r->slm && r->llm) {
            gap++;
            gap_fixed += r->qa;
        }
        if (r->slm) {
            slm_right++;
            regress += !r->qa;
        }
        bits += r->bits;
        coded += r->coded_bits;
        if (isfinite(r->tokens)) {
            tokens += r->tokens;
            n_tok++;
        }
    }
    printf("lmz qa bench: %d problems graded (of %d selected)\n", n, last - first);
    if (!n) return;
    printf("  accuracy     SLM %.3f  LLM %.3f  QA %.3f", (double)slm / n, (double)llm / n, (double)qa / n);
    if (n_self) printf("  self-refinement %.3f (n %d)", (double)self / n_self, n_self);
    printf("\n");
    if (llm != slm) printf("  gap recovered (QA - SLM) / (LLM - SLM) = %.3f\n", (double)(qa - slm) / (llm - slm));
    else printf("  gap recovered: undefined (LLM and SLM equally accurate)\n");
    printf("  labels       easy %d  gap %d  hard %d  inverse %d\n", labels[0], labels[1], labels[2], labels[3]);
    printf("  gap problems QA fixes: %d of %d; SLM-right problems QA breaks: %d of %d\n", gap_fixed, gap, regress,
           slm_right);
    printf("  bits         mean %.2f decision bits, %.2f coded bits\n", bits / n, coded / n);
    if (n_tok) {
        double mt = tokens / n_tok;
        printf("  LLM answer   mean %.1f tokens; ratio bits / (tokens x log2 |V| = %.2f) = %.5f (coded %.5f)\n", mt, log2v,
               bits / n / (mt * log2v), coded / n / (mt * log2v));
    }
    if (n_dec) printf("  decode check %d of %d reproduce the encoder's answers\n", dec, n_dec);
}

int cmd_qa_bench(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o)) return 2;
    lmz_qa_set set;
    if (lmz_qa_set_load(o.set, &set)) {
        cli_error("%s", lmz_last_error());
        return 1;
    }
    int first = o.offset < set.n ? o.offset : set.n;
    int last = o.limit < 0 || o.limit > set.n - first ? set.n : first + o.limit;
    bool remote = !strncmp(o.llm, "http://", 7) || !strncmp(o.llm, "https://", 8);
    int status = 1;
    loaded slm = {0}, qm = {0}, llm = {0};
    lmz_qa_oracle *oracles[3] = {0}, *selfs[3] = {0};
    records rs = {0};
    lmz_qa_params params[3];
    for (int t = 0; t < 3; t++) {
        lmz_qa_params_default(&params[t], o.variant, (enum lmz_qa_task)t);
        if (o.questions > 0) params[t].questions = o.questions;
        if (o.rounds > 0) params[t].rounds = o.rounds;
        if (o.answer_tokens > 0) params[t].answer_tokens = o.answer_tokens;
        params[t].coded = o.coded;
    }

    if (load_model(o.slm ? o.slm : cli_default_model_path(), &slm)) goto out;
    if (o.qm && load_model(o.qm, &qm)) goto out;
    if (!remote && load_model(o.llm, &llm)) goto out;
    if (remote && o.llm_tok && load_model(o.llm_tok, &llm)) goto out;
    lmz_qa_models models = {slm.m, slm.t, qm.m, qm.t, o.threads};
    double log2v = llm.m ? log2((double)llm.m->n_vocab) : NAN;

    /* the configuration every line records; a resumed run must match it */
    char config[16384], llm_tokens[16] = "default";
    if (o.llm_tokens > 0) snprintf(llm_tokens, sizeof llm_tokens, "%d", o.llm_tokens);
    const lmz_qa_params *p0 = &params[set.items[first < set.n ? first : 0].task];
    snprintf(config, sizeof config,
             "slm=%s qm=%s llm=%s%s%s variant=%s questions=%d rounds=%d answer_tokens=%d llm_tokens=%s coded=%d "
             "code_timeout=%g",
             base_name(slm.m->path), qm.m ? base_name(qm.m->path) : "slm", remote ? o.llm : base_name(llm.m->path),
             remote ? " llm_model=" : "", remote ? o.llm_model : "", o.variant == LMZ_QA_ONESHOT ? "oneshot" : "iterative",
             p0->questions, o.variant == LMZ_QA_ONESHOT ? 0 : p0->rounds, p0->answer_tokens, llm_tokens, o.coded, o.code_timeout);
    if (read_results(o.out, config, &rs)) goto out;

    int pending = 0;
    for (int i = first; i < last; i++) pending += !records_find(&rs, set.items[i].id);
    if (!o.quiet)
        fprintf(stderr, "lmz qa bench: %s, problems %d..%d: %d to run, %d already in %s\n", o.set, first, last - 1,
                pending, last - first - pending, o.out);
    const char *api_key = NULL;
    if (o.llm_key_env && !(api_key = getenv(o.llm_key_env))) {
        cli_error("--llm-key-env %s: that environment variable is not set", o.llm_key_env);
        goto out;
    }
    lmz_qa_sandbox_limits lim;
    lmz_qa_sandbox_defaults(&lim);
    lim.wall_s = o.code_timeout;
    lim.cpu_s = (int)ceil(o.code_timeout);

    int done = 0;
    double t_start = now_s();
    int *batch = malloc((size_t)o.batch * sizeof *batch);
    const char **problems = malloc((size_t)o.batch * sizeof *problems);
    lmz_qa_result *res = calloc((size_t)o.batch, sizeof *res), *sres = calloc((size_t)o.batch, sizeof *sres),
                  *dres = calloc((size_t)o.batch, sizeof *dres);
    if (!batch || !problems || !res || !sres || !dres) {
        cli_error("out of memory");
        goto out_batch;
    }
    for (int i = first; i < last;) {
        /* the next batch: up to B pending problems of one task */
        int n = 0;
        enum lmz_qa_task task = LMZ_QA_MATH;
        for (; i < last && n < o.batch; i++) {
            const lmz_qa_item *it = &set.items[i];
            if (records_find(&rs, it->id)) continue;
            if (n && it->task != task) break;
            task = it->task;
            batch[n] = i;
            problems[n++] = it->problem;
        }
        if (!n) continue;
        if (!oracles[task]) {
            oracles[task] = remote ? lmz_qa_oracle_endpoint(o.llm, o.llm_model, api_key, task, o.llm_timeout)
                                   : lmz_qa_oracle_local(llm.m, llm.t, task, o.threads);
            if (!oracles[task]) {
                cli_error("the LLM oracle: %s", lmz_last_error());
                goto out_batch;
            }
            if (o.llm_tokens > 0) oracles[task]->max_tokens = o.llm_tokens;
        }
        if (o.self && !selfs[task] && !(selfs[task] = lmz_qa_oracle_self(&models, task))) {
            cli_error("the self-refinement oracle: %s", lmz_last_error());
            goto out_batch;
        }
        double t0 = now_s();
        lmz_bytebuf stream = {0};
        memset(res, 0, (size_t)n * sizeof *res);
        memset(sres, 0, (size_t)n * sizeof *sres);
        memset(dres, 0, (size_t)n * sizeof *dres);
        if (lmz_qa_encode(&models, &params[task], oracles[task], problems, n, res, &stream)) {
            cli_error("qa encode (problems %s..): %s", set.items[batch[0]].id, lmz_last_error());
            lmz_bytebuf_free(&stream);
            free_results(res, sres, dres, n);
            goto out_batch;
        }
        double t1 = now_s();
        if (o.self && lmz_qa_encode(&models, &params[task], selfs[task], problems, n, sres, NULL)) {
            cli_error("self-refinement (problems %s..): %s", set.items[batch[0]].id, lmz_last_error());
            lmz_bytebuf_free(&stream);
            free_results(res, sres, dres, n);
            goto out_batch;
        }
        double t2 = now_s();
        bool decoded = false;
        if (o.decode_check) {
            if (lmz_qa_decode(&models, stream.data, stream.len, problems, n, dres)) {
                fprintf(stderr, "lmz qa bench: DECODE FAILED for problems %s..: %s\n", set.items[batch[0]].id,
                        lmz_last_error());
                memset(dres, 0, (size_t)n * sizeof *dres);
            } else
                decoded = true;
        }
        double t3 = now_s();
        size_t stream_len = stream.len;
        lmz_bytebuf_free(&stream);

        jw w = {0};
        double t_grade = 0;
        for (int k = 0; k < n; k++) {
            const lmz_qa_item *it = &set.items[batch[k]];
            lmz_qa_result *r = &res[k];
            double g0 = now_s();
            lmz_qa_grade gs, gl, gq, gself;
            memset(&gself, 0, sizeof gself);
            int grc = lmz_qa_grade_answer(it, r->first_answer, &lim, &gs);
            grc |= lmz_qa_grade_answer(it, r->reference, &lim, &gl);
            grc |= lmz_qa_grade_answer(it, r->answer, &lim, &gq);
            if (o.self) grc |= lmz_qa_grade_answer(it, sres[k].answer, &lim, &gself);
            if (grc) fprintf(stderr, "lmz qa bench: %s: a grading run failed: %s\n", it->id, lmz_last_error());
            double g1 = now_s();
            t_grade += g1 - g0;
            long tokens = -1;
            if (llm.t && r->reference) {
                int32_t *ids = NULL;
                size_t nt = 0;
                if (lmz_tokenize(llm.t, r->reference, strlen(r->reference), false, false, &ids, &nt) == 0)
                    tokens = (long)nt;
                free(ids);
            }
            bool dec_ok = decoded && dres[k].answer && r->answer && !strcmp(dres[k].answer, r->answer) &&
                          dres[k].n_bits == r->n_bits;
            const char *label = label_of(gs.correct, gl.correct);

            jopen(&w, '{');
            jkey(&w, "id");
            jstr(&w, it->id);
            jkey(&w, "task");
            jstr(&w, it->task == LMZ_QA_CODE ? "code" : it->task == LMZ_QA_MATH ? "math" : "general");
            jkey(&w, "config");
            jstr(&w, config);
            jkey(&w, "gold");
            jstr(&w, it->task == LMZ_QA_CODE ? NULL : it->gold);
            jkey(&w, "label");
            jstr(&w, label);
            jkey(&w, "slm");
            jopen(&w, '{');
            write_graded(&w, it, r->first_answer, &gs);
            jclose(&w, '}');
            jkey(&w, "llm");
            jopen(&w, '{');
            write_graded(&w, it, r->reference, &gl);
            jkey(&w, "tokens");
            if (tokens >= 0) jnum(&w, (double)tokens);
            else jstr(&w, NULL);
            jclose(&w, '}');
            jkey(&w, "qa");
            jopen(&w, '{');
            write_graded(&w, it, r->answer, &gq);
            write_protocol(&w, r);
            jclose(&w, '}');
            jkey(&w, "self");
            if (o.self) {
                jopen(&w, '{');
                write_graded(&w, it, sres[k].answer, &gself);
                write_protocol(&w, &sres[k]);
                jkey(&w, "same_first_answer");
                jbool(&w, sres[k].first_answer && r->first_answer && !strcmp(sres[k].first_answer, r->first_answer));
                jclose(&w, '}');
            } else
                jstr(&w, NULL);
            jkey(&w, "decode_ok");
            if (o.decode_check) jbool(&w, dec_ok);
            else jstr(&w, NULL);
            jkey(&w, "llm_vocab");
            if (llm.m) jnum(&w, llm.m->n_vocab);
            else jstr(&w, NULL);
            jkey(&w, "ratio");
            if (tokens > 0 && isfinite(log2v)) jnum(&w, r->n_bits / (tokens * log2v));
            else jstr(&w, NULL);
            jkey(&w, "batch");
            jopen(&w, '{');
            jkey(&w, "size");
            jnum(&w, n);
            jkey(&w, "stream_bytes");
            jnum(&w, (double)stream_len);
            jkey(&w, "seconds_qa");
            jnum(&w, round((t1 - t0) * 100) / 100);
            jkey(&w, "seconds_self");
            jnum(&w, round((t2 - t1) * 100) / 100);
            jkey(&w, "seconds_decode");
            jnum(&w, round((t3 - t2) * 100) / 100);
            jkey(&w, "threads");
            jnum(&w, o.threads);
            jclose(&w, '}');
            jkey(&w, "seconds_grade");
            jnum(&w, round((g1 - g0) * 100) / 100);
            jclose(&w, '}');
            jraw(&w, "\n");

            record rec = {.id = strdup(it->id), .slm = gs.correct, .llm = gl.correct, .qa = gq.correct,
                          .self = o.self ? gself.correct : -1, .decode_ok = o.decode_check ? dec_ok : -1,
                          .bits = r->n_bits, .coded_bits = r->coded_bits, .tokens = tokens >= 0 ? (double)tokens : NAN};
            if (!rec.id || records_add(&rs, &rec)) w.err = 1;
            if (!o.quiet)
                fprintf(stderr, "  %s: SLM %c LLM %c QA %c self %c  %d bits (%.1f coded)  %s%s\n", it->id,
                        gs.correct ? '+' : '-', gl.correct ? '+' : '-', gq.correct ? '+' : '-',
                        o.self ? (gself.correct ? '+' : '-') : '.', r->n_bits, r->coded_bits, label,
                        o.decode_check && !dec_ok ? "  DECODE MISMATCH" : "");
            lmz_qa_grade_free(&gs);
            lmz_qa_grade_free(&gl);
            lmz_qa_grade_free(&gq);
            lmz_qa_grade_free(&gself);
        }
        free_results(res, sres, dres, n);
        if (w.err) {
            lmz_bytebuf_free(&w.b);
            cli_error("out of memory writing results");
            goto out_batch;
        }
        int fd = open(o.out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        bool ok = fd >= 0;
        for (size_t off = 0; ok && off < w.b.len;) {
            ssize_t k = write(fd, w.b.data + off, w.b.len - off);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) ok = false;
            else off += (size_t)k;
        }
        ok = ok && fsync(fd) == 0;
        if (fd >= 0 && close(fd) != 0) ok = false;
        lmz_bytebuf_free(&w.b);
        if (!ok) {
            cli_error("cannot append to %s: %s", o.out, strerror(errno));
            goto out_batch;
        }
        done += n;
        if (!o.quiet) {
            double el = now_s() - t_start;
            fprintf(stderr,
                    "lmz qa bench: %d/%d done; batch of %d: QA %.0f s, self %.0f s, decode %.0f s, grading %.1f s; "
                    "%.0f s a problem so far, ~%.0f min left\n",
                    done, pending, n, t1 - t0, t2 - t1, t3 - t2, t_grade, el / done,
                    el / done * (pending - done) / 60);
        }
    }
    print_summary(&rs, &set, first, last, log2v);
    status = 0;
out_batch:
    free(batch);
    free(problems);
    free(res);
    free(sres);
    free(dres);
out:
    for (int t = 0; t < 3; t++) {
        if (oracles[t] && oracles[t]->free) oracles[t]->free(oracles[t]);
        if (selfs[t] && selfs[t]->free) selfs[t]->free(selfs[t]);
    }
    for (int i = 0; i < rs.n; i++) free(rs.r[i].id);
    free(rs.r);
    unload(&llm);
    unload(&qm);
    unload(&slm);
    lmz_qa_set_free(&set);
    return status;
}
