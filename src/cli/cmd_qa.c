/* cmd_qa.c — `lmz qa encode` and `lmz qa decode` (Question-Asking compression, src/qa/qa.h,
 * docs/qa.md), and the dispatch of `lmz qa bench` to cmd_qa_bench.c when that is built in.
 * Problems come from --problem TEXT or a JSONL file; models are resolved as the other
 * commands do; outputs are written to a temporary file beside the final name and renamed
 * into place only when everything succeeded. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../container/archive.h"
#include "../kernels/quant.h"
#include "../qa/qa.h"
#include "../qa/qa_format.h"
#include "../util/error.h"
#include "../util/json.h"
#include "cli.h"

/* `lmz qa bench` lives in cmd_qa_bench.c (another file); a weak reference keeps this file
 * building and linking whether or not that one is there. */
__attribute__((weak)) int cmd_qa_bench(int argc, char **argv);

static const char usage_qa[] =
    "usage: lmz qa encode [options] (--problem TEXT | --problems FILE.jsonl) -o OUT.lmzq\n"
    "       lmz qa decode [options] (--problem TEXT | --problems FILE.jsonl) IN.lmzq [-o OUT]\n"
    "       lmz qa bench ...            accuracy, gap recovered and bits on QA benchmarks\n"
    "\n"
    "Question-Asking compression: a small model (SLM) answers a problem, asks a large model\n"
    "(the LLM) yes/no questions about its answer and refines it; only the yes/no bits travel.\n"
    "The receiver, with the same SLM (and question model), rebuilds every question and the\n"
    "final answer from the bits. `lmz qa encode --help` and `lmz qa decode --help` for options;\n"
    "docs/qa.md for the protocol, the prompts and the format.\n";

static const char usage_encode[] =
    "usage: lmz qa encode [options] (--problem TEXT | --problems FILE.jsonl [--field NAME]) -o OUT.lmzq\n"
    "\n"
    "Runs the QA protocol with the LLM as the oracle and writes the decision bits (.lmzq).\n"
    "\n"
    "models:\n"
    "  -m SLM                 the small model that answers (default: SmolLM2-135M-Instruct)\n"
    "  --question-model QM    the model that writes the questions (default: the SLM)\n"
    "  --llm MODEL|URL|self   the oracle: a GGUF file or fetched model's name (e.g. qwen25coder),\n"
    "                         an OpenAI-compatible http://HOST:PORT/v1/chat/completions URL, or\n"
    "                         `self` (the SLM answers its own questions: the self-refinement baseline)\n"
    "  --llm-model NAME       the \"model\" field sent to an endpoint\n"
    "  --llm-key-env VAR      send the API key in environment variable VAR (Authorization: Bearer)\n"
    "  --llm-timeout S        seconds an endpoint has for each request (default 300)\n"
    "  --llm-tokens N         token limit of the LLM's reference solution (default 512)\n"
    "protocol:\n"
    "  --variant V            oneshot (default: K questions, one refinement) or iterative\n"
    "                         (rounds of: judge bit, accept -> stop, else Q questions + refinement)\n"
    "  --task T               math (default), code or general: selects the prompts\n"
    "  --questions N          K for oneshot (default 10), Q per round for iterative (default 5)\n"
    "  --rounds R             iterative: rounds (default 2)\n"
    "  --answer-tokens N      the SLM's token limit per answer (default 512)\n"
    "  --coded                arithmetic-code each bit under the SLM's own P(yes)\n"
    "input and output:\n"
    "  --problem TEXT         one problem\n"
    "  --problems FILE.jsonl  one JSON object per line; the problem is field --field NAME\n"
    "                         (default: the first of question, problem, prompt, text)\n"
    "  -o OUT.lmzq            the stream (required)\n"
    "  --answers OUT.jsonl    also write each problem's run: first and final answer, reference,\n"
    "                         questions with their answers, bits\n"
    "  -f                     overwrite existing output files\n"
    "  -T N                   threads (default 2; results are identical for any N)\n"
    "  --isa I                scalar, avx2, avx512 (results are identical for any)\n";

static const char usage_decode[] =
    "usage: lmz qa decode [options] (--problem TEXT | --problems FILE.jsonl [--field NAME]) IN.lmzq [-o OUT]\n"
    "\n"
    "Rebuilds the final answers from a .lmzq stream and the same problems. One problem: the\n"
    "answer's text; --problems: JSONL lines {\"index\", \"id\" (when the input has one), \"answer\"}.\n"
    "\n"
    "  -m SLM                 the small model (default: the one the stream names, when lmz knows it)\n"
    "  --question-model QM    the question model, when the stream's is not the SLM (default: the\n"
    "                         one the stream names, when lmz knows it)\n"
    "  --problem TEXT / --problems FILE.jsonl [--field NAME]   as for encode\n"
    "  -o OUT                 write there instead of standard output\n"
    "  -f                     overwrite an existing output file\n"
    "  -T N, --isa I          as for encode\n";

/* ---------------- options ---------------- */

typedef struct {
    const char *slm, *qm, *llm, *llm_model, *llm_key_env;
    double llm_timeout;
    int llm_tokens;
    lmz_qa_params p;
    bool variant_set, questions_set, rounds_set;
    const char *problem, *problems_file, *field;
    const char *out, *answers, *in;
    bool force;
    int threads;
} qa_opts;

static int parse_opts(int argc, char **argv, bool encode, qa_opts *o) {
    const char *usage = encode ? usage_encode : usage_decode;
    memset(o, 0, sizeof *o);
    o->threads = 2;
    o->llm_timeout = 300;
    o->llm_tokens = 512;
    lmz_qa_params_default(&o->p, LMZ_QA_ONESHOT, LMZ_QA_MATH);
    const char *variant = "oneshot", *task = "math";
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        static const char *const valued[] = {"-m", "--question-model", "--llm", "--llm-model", "--llm-key-env",
                                             "--llm-timeout", "--llm-tokens", "--variant", "--task", "--questions",
                                             "--rounds", "--answer-tokens", "--problem", "--problems", "--field", "-o",
                                             "--answers", "-T", "--isa", NULL};
        bool takes = false;
        for (int k = 0; valued[k]; k++) takes |= !strcmp(a, valued[k]);
        const char *v = takes ? (i + 1 < argc ? argv[++i] : NULL) : NULL;
        if (takes && !v) {
            cli_error("option %s needs a value (see `lmz qa %s --help`)", a, encode ? "encode" : "decode");
            return -1;
        }
        bool enc_only = !strcmp(a, "--llm") || !strcmp(a, "--llm-model") || !strcmp(a, "--llm-key-env") ||
                        !strcmp(a, "--llm-timeout") || !strcmp(a, "--llm-tokens") || !strcmp(a, "--variant") ||
                        !strcmp(a, "--task") || !strcmp(a, "--questions") || !strcmp(a, "--rounds") ||
                        !strcmp(a, "--answer-tokens") || !strcmp(a, "--coded") || !strcmp(a, "--answers");
        if (enc_only && !encode) {
            cli_error("%s is an option of `lmz qa encode`; decode reads the protocol's parameters from the stream", a);
            return -1;
        }
        if (!strcmp(a, "-m")) o->slm = v;
        else if (!strcmp(a, "--question-model")) o->qm = v;
        else if (!strcmp(a, "--llm")) o->llm = v;
        else if (!strcmp(a, "--llm-model")) o->llm_model = v;
        else if (!strcmp(a, "--llm-key-env")) o->llm_key_env = v;
        else if (!strcmp(a, "--llm-timeout")) {
            char *end;
            o->llm_timeout = strtod(v, &end);
            if (end == v || *end || !(o->llm_timeout > 0) || o->llm_timeout > 86400) {
                cli_error("--llm-timeout wants seconds, more than 0 and at most 86400, not '%s'", v);
                return -1;
            }
        } else if (!strcmp(a, "--llm-tokens")) {
            if (cli_parse_int(v, 1, LMZ_QA_MAX_ANSWER_TOKENS, &o->llm_tokens)) {
                cli_error("--llm-tokens wants 1 to %d, not '%s'", LMZ_QA_MAX_ANSWER_TOKENS, v);
                return -1;
            }
        } else if (!strcmp(a, "--variant")) variant = v, o->variant_set = true;
        else if (!strcmp(a, "--task")) task = v;
        else if (!strcmp(a, "--questions")) {
            if (cli_parse_int(v, 1, LMZ_QA_MAX_QUESTIONS, &o->p.questions)) {
                cli_error("--questions wants 1 to %d, not '%s'", LMZ_QA_MAX_QUESTIONS, v);
                return -1;
            }
            o->questions_set = true;
        } else if (!strcmp(a, "--rounds")) {
            if (cli_parse_int(v, 1, LMZ_QA_MAX_ROUNDS, &o->p.rounds)) {
                cli_error("--rounds wants 1 to %d, not '%s'", LMZ_QA_MAX_ROUNDS, v);
                return -1;
            }
            o->rounds_set = true;
        } else if (!strcmp(a, "--answer-tokens")) {
            if (cli_parse_int(v, 1, LMZ_QA_MAX_ANSWER_TOKENS, &o->p.answer_tokens)) {
                cli_error("--answer-tokens wants 1 to %d, not '%s'", LMZ_QA_MAX_ANSWER_TOKENS, v);
                return -1;
            }
        } else if (!strcmp(a, "--coded")) o->p.coded = 1;
        else if (!strcmp(a, "--problem")) o->problem = v;
        else if (!strcmp(a, "--problems")) o->problems_file = v;
        else if (!strcmp(a, "--field")) o->field = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--answers")) o->answers = v;
        else if (!strcmp(a, "-f")) o->force = true;
        else if (!strcmp(a, "-T")) {
            if (cli_parse_int(v, 1, 256, &o->threads)) {
                cli_error("-T wants a thread count from 1 to 256, not '%s'", v);
                return -1;
            }
        } else if (!strcmp(a, "--isa")) {
            enum lmz_isa isa;
            if (!lmz_isa_parse(v, &isa)) {
                cli_error("--isa wants scalar or one of this machine's SIMD levels, not '%s'", v);
                return -1;
            }
            lmz_isa_set(isa);
        } else if (a[0] == '-' && a[1]) {
            cli_error("unknown option %s (see `lmz qa %s --help`)", a, encode ? "encode" : "decode");
            return -1;
        } else if (!encode && !o->in) o->in = a;
        else {
            cli_error("unexpected argument '%s' (see `lmz qa %s --help`)", a, encode ? "encode" : "decode");
            return -1;
        }
    }
    if (!!o->problem == !!o->problems_file) {
        cli_error("give the problem(s) by exactly one of --problem TEXT and --problems FILE.jsonl");
        return -1;
    }
    if (o->field && !o->problems_file) {
        cli_error("--field goes with --problems FILE.jsonl");
        return -1;
    }
    if (!encode) {
        if (!o->in) {
            cli_error("name the .lmzq stream to decode (see `lmz qa decode --help`)");
            return -1;
        }
        return 0;
    }
    if (!o->out) {
        cli_error("name the output stream with -o OUT.lmzq");
        return -1;
    }
    if (!o->llm) {
        cli_error("name the oracle with --llm MODEL|URL|self");
        return -1;
    }
    enum lmz_qa_variant var;
    if (!strcmp(variant, "oneshot") || !strcmp(variant, "one-shot")) var = LMZ_QA_ONESHOT;
    else if (!strcmp(variant, "iterative")) var = LMZ_QA_ITERATIVE;
    else {
        cli_error("--variant wants oneshot or iterative, not '%s'", variant);
        return -1;
    }
    enum lmz_qa_task t;
    if (!strcmp(task, "math")) t = LMZ_QA_MATH;
    else if (!strcmp(task, "code")) t = LMZ_QA_CODE;
    else if (!strcmp(task, "general")) t = LMZ_QA_GENERAL;
    else {
        cli_error("--task wants math, code or general, not '%s'", task);
        return -1;
    }
    lmz_qa_params d;
    lmz_qa_params_default(&d, var, t);
    o->p.variant = var;
    o->p.task = t;
    if (!o->questions_set) o->p.questions = d.questions;
    if (!o->rounds_set) o->p.rounds = d.rounds;
    if (o->rounds_set && var == LMZ_QA_ONESHOT) {
        cli_error("--rounds is for --variant iterative");
        return -1;
    }
    return 0;
}

/* ---------------- problems ---------------- */

typedef struct {
    int n;
    char **text;
    char **id; /* the JSON text of each line's id (a string or number), or NULL */
} problem_set;

static void problems_free(problem_set *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->text[i]);
        free(s->id[i]);
    }
    free(s->text);
    free(s->id);
    memset(s, 0, sizeof *s);
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

static int add_problem(problem_set *s, const char *text, size_t len, char *id) {
    if (s->n >= LMZ_QA_MAX_PROBLEMS) {
        free(id);
        return lmz_fail("more than %d problems", LMZ_QA_MAX_PROBLEMS);
    }
    char **t = realloc(s->text, (size_t)(s->n + 1) * sizeof *t), **d = t ? realloc(s->id, (size_t)(s->n + 1) * sizeof *d) : NULL;
    if (t) s->text = t;
    if (d) s->id = d;
    char *copy = t && d ? dupn(text, len) : NULL;
    if (!copy) {
        free(id);
        return lmz_fail("out of memory reading the problems");
    }
    s->text[s->n] = copy;
    s->id[s->n] = id;
    s->n++;
    return 0;
}

static char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lmz_fail("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        lmz_fail(buf ? "read error on %s" : "out of memory reading %s", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int load_problems(const qa_opts *o, problem_set *s) {
    memset(s, 0, sizeof *s);
    if (o->problem) {
        if (!*o->problem) return lmz_fail("--problem is empty");
        return add_problem(s, o->problem, strlen(o->problem), NULL);
    }
    size_t len;
    char *data = read_whole(o->problems_file, &len);
    if (!data) return -1;
    static const char *const defaults[] = {"question", "problem", "prompt", "text", NULL};
    int line_no = 0, rc = 0;
    for (char *line = data; line < data + len && !rc; line_no++) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(data + len - line);
        char *next = nl ? nl + 1 : data + len;
        bool blank = true;
        for (size_t k = 0; k < n && blank; k++) blank = line[k] == ' ' || line[k] == '\t' || line[k] == '\r';
        if (blank) {
            line = next;
            continue;
        }
        lmz_json *j = lmz_json_parse(line, n);
        if (!j) {
            rc = lmz_fail("%s line %d: %s", o->problems_file, line_no + 1, lmz_last_error());
            break;
        }
        const lmz_json *v = NULL;
        if (o->field) v = lmz_json_get(j, o->field);
        else
            for (int k = 0; defaults[k] && !v; k++) v = lmz_json_get(j, defaults[k]);
        if (!v || v->type != LMZ_JSON_STRING || !v->len) {
            rc = lmz_fail("%s line %d: no %s%s%s string field%s", o->problems_file, line_no + 1, o->field ? "\"" : "",
                          o->field ? o->field : "question/problem/prompt/text", o->field ? "\"" : "",
                          o->field ? "" : " (name the field with --field NAME)");
        } else if (memchr(v->str, 0, v->len)) {
            rc = lmz_fail("%s line %d: the problem holds a NUL character", o->problems_file, line_no + 1);
        } else {
            char *id = NULL;
            static const char *const id_keys[] = {"id", "task_id", "unique_id", NULL};
            for (int k = 0; id_keys[k] && !id; k++) {
                const lmz_json *iv = lmz_json_get(j, id_keys[k]);
                if (iv && iv->type == LMZ_JSON_NUMBER) id = dupn(iv->str, iv->len);
                else if (iv && iv->type == LMZ_JSON_STRING) {
                    lmz_bytebuf b = {0};
                    if (!lmz_json_write_string(&b, iv->str, iv->len)) id = dupn((const char *)b.data, b.len);
                    lmz_bytebuf_free(&b);
                }
            }
            rc = add_problem(s, v->str, v->len, id);
        }
        lmz_json_free(j);
        line = next;
    }
    free(data);
    if (!rc && s->n == 0) rc = lmz_fail("%s holds no problems", o->problems_file);
    if (rc) problems_free(s);
    return rc;
}

/* ---------------- models ---------------- */

typedef struct {
    lmz_model *m;
    lmz_tokenizer *tok;
} loaded;

static int load(const char *name, loaded *l) {
    cli_opts co = {0};
    co.model_path = name;
    return cli_load(&co, &l->m, &l->tok);
}

static void unload(loaded *l) {
    if (l->tok) lmz_tokenizer_free(l->tok);
    if (l->m) lmz_model_free(l->m);
    memset(l, 0, sizeof *l);
}

/* The resolved path of a model argument (NULL: the default model), for telling two apart. */
static void resolved(const char *arg, char *out, size_t cap) {
    const lmz_known_model *k;
    snprintf(out, cap, "%s", arg ? cli_resolve_model(arg, &k) : cli_default_model_path());
}

/* ---------------- output files ---------------- */

typedef struct {
    char final_path[4096], tmp_path[4200];
    FILE *f;
} out_file;

static int out_open(const char *path, bool force, out_file *o) {
    memset(o, 0, sizeof *o);
    struct stat st;
    if (!force && stat(path, &st) == 0) return lmz_fail("%s already exists; use -f to overwrite it", path);
    snprintf(o->final_path, sizeof o->final_path, "%s", path);
    snprintf(o->tmp_path, sizeof o->tmp_path, "%s.lmz-tmp-XXXXXX", path);
    int fd = mkstemp(o->tmp_path);
    if (fd < 0) return lmz_fail("cannot create a file beside %s: %s", path, strerror(errno));
    if (!(o->f = fdopen(fd, "wb"))) {
        close(fd);
        remove(o->tmp_path);
        return lmz_fail("cannot open %s: %s", o->tmp_path, strerror(errno));
    }
    return 0;
}

/* Flushes and closes; renames into place when OK, else removes the temporary. */
static int out_close(out_file *o, bool ok) {
    if (!o->f) return ok ? 0 : -1;
    bool good = fflush(o->f) == 0 && fsync(fileno(o->f)) == 0;
    int saved = errno;
    good &= fclose(o->f) == 0;
    o->f = NULL;
    if (!ok || !good) {
        remove(o->tmp_path);
        if (ok) return lmz_fail("write error on %s: %s", o->final_path, strerror(saved));
        return -1;
    }
    chmod(o->tmp_path, 0644);
    if (rename(o->tmp_path, o->final_path)) {
        int e = errno;
        remove(o->tmp_path);
        return lmz_fail("cannot rename into %s: %s", o->final_path, strerror(e));
    }
    return 0;
}

static int put_json_str(FILE *f, const char *key, const char *s) {
    lmz_bytebuf b = {0};
    if (lmz_json_write_string(&b, s ? s : "", s ? strlen(s) : 0)) return -1;
    int rc = fprintf(f, "\"%s\": %.*s", key, (int)b.len, (const char *)b.data) < 0 ? -1 : 0;
    lmz_bytebuf_free(&b);
    return rc;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------- encode ---------------- */

static int write_answers(FILE *f, const problem_set *ps, const lmz_qa_result *r, int n) {
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"index\": %d, ", i);
        if (ps->id[i]) fprintf(f, "\"id\": %s, ", ps->id[i]);
        if (put_json_str(f, "first_answer", r[i].first_answer) || fputs(", ", f) < 0 ||
            put_json_str(f, "answer", r[i].answer) || fputs(", ", f) < 0 || put_json_str(f, "reference", r[i].reference))
            return -1;
        fputs(", \"questions\": [", f);
        for (int k = 0; k < r[i].n_questions; k++) {
            fprintf(f, "%s{", k ? ", " : "");
            if (put_json_str(f, "q", r[i].questions[k])) return -1;
            fprintf(f, ", \"a\": %s}", r[i].question_bits[k] ? "true" : "false");
        }
        fputs("], \"judgements\": [", f);
        for (int k = 0; k < r[i].n_judgements; k++) fprintf(f, "%s%s", k ? ", " : "", r[i].judge_bits[k] ? "true" : "false");
        fprintf(f, "], \"bits\": \"");
        for (int k = 0; k < r[i].n_bits; k++) fputc('0' + r[i].bits[k], f);
        fprintf(f, "\", \"n_bits\": %d, \"ideal_bits\": %.4f, \"coded_bits\": %.4f}\n", r[i].n_bits, r[i].ideal_bits,
                r[i].coded_bits);
    }
    return ferror(f) ? lmz_fail("write error") : 0;
}

static int qa_encode_cmd(int argc, char **argv) {
    qa_opts o;
    if (parse_opts(argc, argv, true, &o)) return 2;
    problem_set ps;
    if (load_problems(&o, &ps)) {
        cli_error("%s", lmz_last_error());
        return 1;
    }
    loaded slm = {0}, qm = {0}, llm = {0};
    lmz_qa_oracle *oracle = NULL;
    lmz_qa_result *res = calloc((size_t)ps.n, sizeof *res);
    lmz_bytebuf stream = {0};
    out_file of = {0}, af = {0};
    int status = 1;
    char slm_path[4096], other[4096];
    if (!res) {
        cli_error("out of memory");
        goto done;
    }
    if (load(o.slm, &slm)) goto done;
    resolved(o.slm, slm_path, sizeof slm_path);
    lmz_qa_models models = {slm.m, slm.tok, NULL, NULL, o.threads};
    if (o.qm) {
        resolved(o.qm, other, sizeof other);
        if (strcmp(other, slm_path)) {
            if (load(o.qm, &qm)) goto done;
            models.qm = qm.m;
            models.qm_tok = qm.tok;
        }
    }
    if (!strcmp(o.llm, "self")) oracle = lmz_qa_oracle_self(&models, o.p.task);
    else if (!strncmp(o.llm, "http://", 7) || !strncmp(o.llm, "https://", 8)) {
        const char *key = NULL;
        if (o.llm_key_env && !(key = getenv(o.llm_key_env))) {
            cli_error("--llm-key-env %s: that environment variable is not set", o.llm_key_env);
            goto done;
        }
        oracle = lmz_qa_oracle_endpoint(o.llm, o.llm_model, key, o.p.task, o.llm_timeout);
    } else {
        resolved(o.llm, other, sizeof other);
        const lmz_model *lm = slm.m;
        const lmz_tokenizer *lt = slm.tok;
        if (strcmp(other, slm_path)) {
            if (load(o.llm, &llm)) goto done;
            lm = llm.m;
            lt = llm.tok;
        }
        oracle = lmz_qa_oracle_local(lm, lt, o.p.task, o.threads);
    }
    if (!oracle) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    oracle->max_tokens = o.llm_tokens;
    /* refuse an existing output before the (long) run */
    struct stat st;
    if (!o.force && (stat(o.out, &st) == 0 || (o.answers && stat(o.answers, &st) == 0))) {
        cli_error("%s already exists; use -f to overwrite it", stat(o.out, &st) == 0 ? o.out : o.answers);
        goto done;
    }
    double t0 = now();
    if (lmz_qa_encode(&models, &o.p, oracle, (const char *const *)ps.text, ps.n, res, &stream)) {
        cli_error("%s", lmz_last_error());
        goto done;
    }
    double secs = now() - t0;
    bool ok = out_open(o.out, o.force, &of) == 0 && fwrite(stream.data, 1, stream.len, of.f) == stream.len;
    if (ok && o.answers) ok = out_open(o.answers, o.force, &af) == 0 && write_answers(af.f, &ps, res, ps.n) == 0;
    if (!ok) {
        cli_error("%s", lmz_last_error()[0] ? lmz_last_error() : strerror(errno));
        out_close(&of, false);
        out_close(&af, false);
        goto done;
    }
    if (out_close(&of, true) || out_close(&af, true)) {
        cli_error("%s", lmz_last_error());
        if (o.answers) remove(o.out); /* both or neither */
        goto done;
    }
    lmz_qa_stream s;
    size_t body = lmz_qa_stream_parse(&s, stream.data, stream.len) == 0 ? s.body_len : 0;
    lmz_qa_stream_free(&s);
    int bits = 0;
    double ideal = 0, coded = 0;
    for (int i = 0; i < ps.n; i++) {
        bits += res[i].n_bits;
        ideal += res[i].ideal_bits;
        coded += res[i].coded_bits;
        fprintf(stderr, "problem %d: %d decision bits ", i, res[i].n_bits);
        for (int k = 0; k < res[i].n_bits; k++) fputc('0' + res[i].bits[k], stderr);
        if (o.p.coded) fprintf(stderr, ", %.2f bits coded (ideal %.2f%s)", res[i].coded_bits, res[i].ideal_bits,
                               res[i].stored_raw ? ", stored raw" : "");
        fprintf(stderr, "; answer %s\n", strcmp(res[i].first_answer, res[i].answer) ? "refined" : "unchanged");
    }
    fprintf(stderr, "%s: %d problem%s, %d decision bits", o.out, ps.n, ps.n == 1 ? "" : "s", bits);
    if (o.p.coded) fprintf(stderr, " (%.2f ideal, %.2f coded with mode bits)", ideal, coded);
    fprintf(stderr, "; body %zu bytes, stream %zu bytes; %.1f s\n", body, stream.len, secs);
    status = 0;
done:
    if (res)
        for (int i = 0; i < ps.n; i++) lmz_qa_result_free(&res[i]);
    free(res);
    if (oracle) oracle->free(oracle);
    lmz_bytebuf_free(&stream);
    unload(&llm);
    unload(&qm);
    unload(&slm);
    problems_free(&ps);
    return status;
}

/* ---------------- decode ---------------- */

/* The fetch name of the known model with fingerprint FP, or NULL. */
static const char *known_name(const uint8_t fp[LMZ_QA_FP_BYTES]) {
    const lmz_known_model *k = lmz_archive_known_model(fp);
    return k ? k->fetch_name : NULL;
}

static int qa_decode_cmd(int argc, char **argv) {
    qa_opts o;
    if (parse_opts(argc, argv, false, &o)) return 2;
    problem_set ps;
    if (load_problems(&o, &ps)) {
        cli_error("%s", lmz_last_error());
        return 1;
    }
    size_t len = 0;
    char *data = read_whole(o.in, &len);
    loaded slm = {0}, qm = {0};
    lmz_qa_result *res = calloc((size_t)ps.n, sizeof *res);
    out_file of = {0};
    int status = 1;
    if (!data || !res) {
        cli_error("%s", data ? "out of memory" : lmz_last_error());
        goto done;
    }
    lmz_qa_stream s;
    if (lmz_qa_stream_parse(&s, (const uint8_t *)data, len)) {
        cli_error("%s: %s", o.in, lmz_last_error());
        goto done;
    }
    /* without -m / --question-model: the models the stream names, when lmz knows them */
    const char *slm_name = o.slm ? o.slm : known_name(s.slm_fp);
    bool own_qm = memcmp(s.qm_fp, s.slm_fp, LMZ_QA_FP_BYTES) != 0;
    const char *qm_name = o.qm ? o.qm : own_qm ? known_name(s.qm_fp) : NULL;
    lmz_qa_stream_free(&s);
    if (load(slm_name, &slm)) goto done;
    lmz_qa_models models = {slm.m, slm.tok, NULL, NULL, o.threads};
    if (qm_name) {
        char a[4096], b[4096];
        resolved(slm_name, a, sizeof a);
        resolved(qm_name, b, sizeof b);
        if (strcmp(a, b)) {
            if (load(qm_name, &qm)) goto done;
            models.qm = qm.m;
            models.qm_tok = qm.tok;
        }
    }
    if (lmz_qa_decode(&models, (const uint8_t *)data, len, (const char *const *)ps.text, ps.n, res)) {
        cli_error("%s: %s", o.in, lmz_last_error());
        goto done;
    }
    FILE *f = stdout;
    if (o.out) {
        if (out_open(o.out, o.force, &of)) {
            cli_error("%s", lmz_last_error());
            goto done;
        }
        f = of.f;
    }
    bool ok = true;
    if (o.problem) ok = fputs(res[0].answer, f) >= 0 && (o.out || fputc('\n', f) != EOF);
    else
        for (int i = 0; i < ps.n && ok; i++) {
            fprintf(f, "{\"index\": %d, ", i);
            if (ps.id[i]) fprintf(f, "\"id\": %s, ", ps.id[i]);
            ok = put_json_str(f, "answer", res[i].answer) == 0 && fputs("}\n", f) >= 0;
        }
    if (o.out) {
        if (out_close(&of, ok)) {
            cli_error("%s", lmz_last_error()[0] ? lmz_last_error() : "write error");
            goto done;
        }
    } else if (!ok || fflush(stdout)) {
        cli_error("write error on standard output");
        goto done;
    }
    status = 0;
done:
    if (res)
        for (int i = 0; i < ps.n; i++) lmz_qa_result_free(&res[i]);
    free(res);
    free(data);
    unload(&qm);
    unload(&slm);
    problems_free(&ps);
    return status;
}

int cmd_qa(int argc, char **argv) {
    const char *sub = argc >= 3 ? argv[2] : NULL;
    if (!sub || !strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(usage_qa, sub ? stdout : stderr);
        return sub ? 0 : 2;
    }
    if (!strcmp(sub, "encode")) return qa_encode_cmd(argc, argv);
    if (!strcmp(sub, "decode")) return qa_decode_cmd(argc, argv);
    if (!strcmp(sub, "bench")) {
        if (cmd_qa_bench) return cmd_qa_bench(argc, argv);
        cli_error("`lmz qa bench` is not part of this build");
        return 2;
    }
    cli_error("unknown qa command '%s'\n%s", sub, usage_qa);
    return 2;
}
