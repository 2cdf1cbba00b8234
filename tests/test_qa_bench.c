/* test_qa_bench.c — `lmz qa bench` (src/cli/cmd_qa_bench.c) end to end with SmolLM2 as both
 * the small and the large model and short answers: one JSON line per problem with grades
 * that agree with the grader, labels that agree with the grades, the protocol's bits and a
 * passing decode check; resuming skips finished problems, cuts off a line an interruption
 * left incomplete and redoes that problem to the same line; another configuration is
 * refused; code problems carry their test run's outcome. With the loopback test server of
 * tests/qa_oracle_server.py as the LLM (a fixed reference whose final answer is 7), the
 * LLM's grades are known in advance. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/qa/grade.h"
#include "../src/util/json.h"
#include "test.h"
#include "test_files.h"

static char dir[TEST_PATH_MAX];
static char err[16384];

static int bench(const char *fmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args - 16, fmt, ap);
    va_end(ap);
    strcat(args, " >/dev/null"); /* the summary */
    return test_run_lmz("", args, dir, err, sizeof err);
}

/* The lines of a results file (at most MAX), each malloc'd; their count. */
static int read_lines(const char *path, char **lines, int max) {
    size_t len;
    char *text = test_read_file(path, &len);
    int n = 0;
    for (char *p = text; p && *p && n < max;) {
        char *nl = strchr(p, '\n');
        size_t k = nl ? (size_t)(nl - p) : strlen(p);
        lines[n] = malloc(k + 1);
        memcpy(lines[n], p, k);
        lines[n++][k] = 0;
        p = nl ? nl + 1 : p + k;
    }
    free(text);
    return n;
}

static void free_lines(char **lines, int n) {
    for (int i = 0; i < n; i++) free(lines[i]);
}

static const lmz_json *at(const lmz_json *o, const char *a, const char *b) {
    const lmz_json *v = lmz_json_get(o, a);
    return b ? lmz_json_get(v, b) : v;
}

static bool is_true(const lmz_json *v) { return v && v->type == LMZ_JSON_TRUE; }
static bool is_bool(const lmz_json *v) { return v && (v->type == LMZ_JSON_TRUE || v->type == LMZ_JSON_FALSE); }

/* Checks one result line against its problem: grades re-derived with the grader. */
static bool check_line(const char *line, const lmz_qa_item *it, int questions) {
    lmz_json *o = lmz_json_parse(line, strlen(line));
    bool ok = false;
    if (!o) {
        test_fail(__FILE__, __LINE__, "not JSON: %.200s", line);
        return false;
    }
    const lmz_json *id = at(o, "id", NULL), *label = at(o, "label", NULL);
    if (!id || id->type != LMZ_JSON_STRING || strcmp(id->str, it->id)) {
        test_fail(__FILE__, __LINE__, "line for %s has id %s", it->id, id && id->str ? id->str : "(none)");
        goto done;
    }
    static const char *const who[] = {"slm", "llm", "qa", "self"};
    bool correct[4];
    for (int k = 0; k < 4; k++) {
        const lmz_json *ans = at(o, who[k], "answer"), *c = at(o, who[k], "correct");
        if (!ans || ans->type != LMZ_JSON_STRING || !is_bool(c)) {
            test_fail(__FILE__, __LINE__, "%s: %s lacks answer/correct", it->id, who[k]);
            goto done;
        }
        lmz_qa_grade g;
        lmz_qa_grade_answer(it, ans->str, NULL, &g);
        correct[k] = is_true(c);
        bool same = g.correct == correct[k];
        lmz_qa_grade_free(&g);
        if (!same) {
            test_fail(__FILE__, __LINE__, "%s: %s graded %d in the file, %d by the grader", it->id, who[k], correct[k],
                      !correct[k]);
            goto done;
        }
        if (it->task == LMZ_QA_CODE && !at(o, who[k], "exit")) {
            test_fail(__FILE__, __LINE__, "%s: %s has no test exit status", it->id, who[k]);
            goto done;
        }
    }
    const char *want = correct[0] ? (correct[1] ? "easy" : "inverse") : (correct[1] ? "gap" : "hard");
    if (!label || label->type != LMZ_JSON_STRING || strcmp(label->str, want)) {
        test_fail(__FILE__, __LINE__, "%s: label %s, want %s", it->id, label && label->str ? label->str : "?", want);
        goto done;
    }
    const lmz_json *nb = at(o, "qa", "n_bits"), *qb = at(o, "qa", "question_bits"), *tok = at(o, "llm", "tokens");
    const lmz_json *dec = at(o, "decode_ok", NULL), *same = at(o, "self", "same_first_answer");
    if (!nb || atoi(nb->str) != questions || !qb || qb->type != LMZ_JSON_STRING || (int)strlen(qb->str) != questions) {
        test_fail(__FILE__, __LINE__, "%s: qa bits not %d", it->id, questions);
        goto done;
    }
    if (!tok || tok->type != LMZ_JSON_NUMBER || atoi(tok->str) < 1 || !is_true(dec) || !is_true(same)) {
        test_fail(__FILE__, __LINE__, "%s: tokens, decode_ok or same_first_answer wrong: %.300s", it->id, line);
        goto done;
    }
    ok = true;
done:
    lmz_json_free(o);
    return ok;
}

static const char set_text[] =
    "{\"id\": \"t/1\", \"task\": \"math\", \"problem\": \"Tom has 3 apples and buys 4 more. How many apples does he "
    "have?\", \"gold\": \"7\"}\n"
    "{\"id\": \"t/2\", \"task\": \"math\", \"problem\": \"What is 2 + 2?\", \"gold\": \"4\"}\n"
    "{\"id\": \"t/3\", \"task\": \"math\", \"problem\": \"What is 10 divided by 4?\", \"gold\": \"\\\\frac{5}{2}\"}\n"
    "{\"id\": \"c/1\", \"task\": \"code\", \"problem\": \"Write a Python function inc(x) that returns x + 1.\", "
    "\"gold\": \"def inc(x):\\n    return x + 1\\n\", \"tests\": \"assert inc(1) == 2\\n\", \"entry_point\": "
    "\"inc\"}\n";

#define OPTS "-m smollm2 --llm smollm2 --llm-tokens 24 --answer-tokens 24 --questions 2 --batch 2 -T 1 -q"

TEST(qa_bench_cli) {
    if (!test_model_path("smollm2")) {
        test_skip("SmolLM2 is not in the model cache");
        return;
    }
    if (!test_have_lmz() || !test_make_dir("qa-bench", dir)) return;
    char set[TEST_PATH_MAX + 16], out[TEST_PATH_MAX + 16];
    snprintf(set, sizeof set, "%s/set.jsonl", dir);
    snprintf(out, sizeof out, "%s/results.jsonl", dir);
    CHECK(test_write_file(set, set_text, sizeof set_text - 1));
    lmz_qa_set s;
    CHECK(lmz_qa_set_load(set, &s) == 0);

    int rc = bench("qa bench --set %s --limit 3 --out %s " OPTS, set, out);
    CHECKF(rc == 0, "exit %d: %s", rc, err);
    char *lines[8], *again[8];
    int n = read_lines(out, lines, 8);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < 3; i++)
        if (!check_line(lines[i], &s.items[i], 2)) {
            free_lines(lines, n);
            lmz_qa_set_free(&s);
            return;
        }

    /* a rerun has nothing to do and leaves the file alone */
    rc = bench("qa bench --set %s --limit 3 --out %s " OPTS, set, out);
    CHECKF(rc == 0, "exit %d: %s", rc, err);
    CHECK_EQ_INT(read_lines(out, again, 8), 3);
    for (int i = 0; i < 3; i++) CHECK(!strcmp(lines[i], again[i]));
    free_lines(again, 3);

    /* an interruption in the middle of the last line: cut off, redone to the same results */
    size_t len;
    char *text = test_read_file(out, &len);
    CHECK(text && test_write_file(out, text, len - strlen(lines[2]) / 2 - 1));
    free(text);
    rc = bench("qa bench --set %s --limit 3 --out %s " OPTS, set, out);
    CHECKF(rc == 0 && strstr(err, "incomplete line"), "exit %d: %s", rc, err);
    CHECK_EQ_INT(read_lines(out, again, 8), 3);
    for (int i = 0; i < 3; i++) {
        lmz_json *a = lmz_json_parse(lines[i], strlen(lines[i])), *b = lmz_json_parse(again[i], strlen(again[i]));
        bool same = a && b;
        static const char *const keys[][2] = {{"slm", "answer"}, {"llm", "answer"}, {"qa", "answer"},
                                              {"self", "answer"}, {"qa", "question_bits"}, {"id", NULL}};
        for (size_t k = 0; same && k < sizeof keys / sizeof keys[0]; k++)
            same = !strcmp(at(a, keys[k][0], keys[k][1])->str, at(b, keys[k][0], keys[k][1])->str);
        lmz_json_free(a);
        lmz_json_free(b);
        CHECKF(same, "line %d differs after the resumed run", i + 1);
    }
    free_lines(again, 3);
    free_lines(lines, n);

    /* another configuration into the same file: refused */
    rc = bench("qa bench --set %s --limit 3 --out %s -m smollm2 --llm smollm2 --llm-tokens 24 --answer-tokens 24 "
               "--questions 3 -T 1 -q", set, out);
    CHECKF(rc == 1 && strstr(err, "another configuration"), "exit %d: %s", rc, err);
    rc = bench("qa bench --set %s --limit 3 -m smollm2", set);
    CHECKF(rc == 2 && strstr(err, "--out"), "exit %d: %s", rc, err);

    /* the code problem (offset 3): its tests run in the sandbox */
    if (lmz_qa_python()) {
        rc = bench("qa bench --set %s --offset 3 --out %s " OPTS, set, out);
        CHECKF(rc == 0, "exit %d: %s", rc, err);
        CHECK_EQ_INT(read_lines(out, lines, 8), 4);
        bool ok = check_line(lines[3], &s.items[3], 2);
        free_lines(lines, 4);
        CHECK(ok);
    }
    lmz_qa_set_free(&s);
}

/* The LLM behind an OpenAI-compatible URL: tests/qa_oracle_server.py answers every solve
 * request with "... Final answer: 7", so the LLM is right exactly on the problems whose gold
 * is 7; its tokens are counted with --llm-tokenizer. A server that is not there is an
 * error, and nothing is written. */
TEST(qa_bench_cli_endpoint) {
    if (!test_model_path("smollm2")) {
        test_skip("SmolLM2 is not in the model cache");
        return;
    }
    if (!lmz_qa_python()) {
        test_skip("no python3 for the test server");
        return;
    }
    if (!test_have_lmz() || !test_make_dir("qa-bench-ep", dir)) return;
    char set[TEST_PATH_MAX + 16], out[TEST_PATH_MAX + 16], log[TEST_PATH_MAX + 16], out2[TEST_PATH_MAX + 16];
    snprintf(set, sizeof set, "%s/set.jsonl", dir);
    snprintf(out, sizeof out, "%s/results.jsonl", dir);
    snprintf(out2, sizeof out2, "%s/none.jsonl", dir);
    snprintf(log, sizeof log, "%s/requests.jsonl", dir);
    CHECK(test_write_file(set, set_text, sizeof set_text - 1));
    test_server srv = {0};
    bool started = test_server_start("tests/qa_oracle_server.py", log, &srv);
    int rc = -1;
    if (started)
        rc = bench("qa bench --set %s --limit 2 --out %s -m smollm2 --llm http://127.0.0.1:%d/good/v1/chat/completions "
                   "--llm-model big --llm-tokenizer smollm2 --answer-tokens 24 --questions 2 --batch 2 -T 1 -q",
                   set, out, srv.port);
    test_server_stop(&srv);
    CHECKF(started, "the test server did not start");
    CHECKF(rc == 0, "exit %d: %s", rc, err);
    char *lines[4];
    int n = read_lines(out, lines, 4);
    CHECK_EQ_INT(n, 2);
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
        lmz_json *o = lmz_json_parse(lines[i], strlen(lines[i]));
        const lmz_json *ans = at(o, "llm", "answer"), *c = at(o, "llm", "correct"), *tok = at(o, "llm", "tokens");
        const lmz_json *cfg = at(o, "config", NULL), *nb = at(o, "qa", "n_bits");
        ok = ans && !strcmp(ans->str, "The answer is 3 + 4 = 7.\nFinal answer: 7") && is_bool(c) &&
             is_true(c) == (i == 0) && tok && atoi(tok->str) > 5 && cfg && strstr(cfg->str, "llm_model=big") && nb &&
             atoi(nb->str) == 2;
        lmz_json_free(o);
        if (!ok) test_fail(__FILE__, __LINE__, "line %d: %.400s", i + 1, lines[i]);
    }
    free_lines(lines, n);
    if (!ok) return;
    rc = bench("qa bench --set %s --limit 1 --out %s -m smollm2 --llm http://127.0.0.1:%d/good/v1/chat/completions "
               "--llm-timeout 5 --answer-tokens 8 --questions 2 -T 1 -q", set, out2, srv.port);
    CHECKF(rc == 1 && strstr(err, "qa encode"), "exit %d: %s", rc, err);
    struct stat st;
    CHECK(stat(out2, &st) != 0);
}
