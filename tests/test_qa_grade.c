/* test_qa_grade.c — the grading of `lmz qa bench` (src/qa/grade.c): set files, math answer
 * extraction and normalization on real GSM8K / MATH-500 solutions, code extraction, and the
 * python3 sandbox (passing, failing, looping, memory-hungry, forking and flooding programs).
 * The python tests are skipped when there is no python3. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/qa/grade.h"
#include "../src/util/error.h"
#include "../src/util/json.h"
#include "test.h"
#include "test_files.h"

/* ------------------------------------------------------------------ sets */

TEST(qa_grade_set_parse) {
    static const char good[] =
        "{\"id\": \"a/1\", \"task\": \"math\", \"problem\": \"1+1?\", \"gold\": \"2\"}\n"
        "\n"
        "{\"id\": \"b/2\", \"task\": \"code\", \"problem\": \"f\", \"gold\": \"def f(): return 1\", "
        "\"tests\": \"assert f() == 1\\n\", \"entry_point\": \"f\", \"prefix\": \"\"}\n";
    lmz_qa_set s;
    CHECKF(lmz_qa_set_parse(good, strlen(good), &s) == 0, "%s", lmz_last_error());
    CHECK_EQ_INT(s.n, 2);
    CHECK(!strcmp(s.items[0].id, "a/1") && s.items[0].task == LMZ_QA_MATH && !strcmp(s.items[0].gold, "2"));
    CHECK(!strcmp(s.items[0].tests, "") && !strcmp(s.items[0].prefix, ""));
    CHECK(s.items[1].task == LMZ_QA_CODE && !strcmp(s.items[1].entry_point, "f"));
    CHECK(!strcmp(s.items[1].tests, "assert f() == 1\n"));
    lmz_qa_set_free(&s);
    static const struct { const char *text, *msg; } bad[] = {
        {"", "no problems"},
        {"{\"id\": \"a\", \"task\": \"math\", \"problem\": \"p\"}\n", "line 1: no \"gold\""},
        {"{\"id\": \"a\", \"task\": \"poetry\", \"problem\": \"p\", \"gold\": \"g\"}\n", "poetry"},
        {"{\"id\": \"a\", \"task\": \"math\", \"problem\": \"p\", \"gold\": 3}\n", "not a string"},
        {"{\"id\": \"a\", \"task\": \"code\", \"problem\": \"p\", \"gold\": \"g\"}\n", "without tests"},
        {"{\"id\": \"a\", \"task\": \"math\", \"problem\": \"p\", \"gold\": \"g\"}\n"
         "{\"id\": \"a\", \"task\": \"math\", \"problem\": \"q\", \"gold\": \"h\"}\n", "line 2: id \"a\" repeats"},
        {"{\"id\": \"a\", \"task\": \"math\", \"problem\": \"p\", \"gold\": \"g\"}\n[1]\n", "line 2: not a JSON object"},
        {"{\"id\": \"a\", \"task\": \"math\",\n", "line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(lmz_qa_set_parse(bad[i].text, strlen(bad[i].text), &s) == -1, "bad set %zu accepted", i);
        CHECKF(strstr(lmz_last_error(), bad[i].msg), "bad set %zu: '%s' lacks '%s'", i, lmz_last_error(), bad[i].msg);
        CHECK(s.items == NULL && s.n == 0);
    }
    CHECK(lmz_qa_set_load("/nonexistent/set.jsonl", &s) == -1 && strstr(lmz_last_error(), "cannot open"));
}

/* ------------------------------------------------------------------ math */

TEST(qa_grade_math_extract) {
    static const struct { const char *answer, *want; } cases[] = {
        {"So the total is $\\boxed{18}$.", "18"},
        {"First \\boxed{3}, then corrected: \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"},
        {"\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"},
        {"nested \\boxed{\\text{(C)} \\{x\\}} end", "\\text{(C)} \\{x\\}"},
        {"The answer is \\boxed 5.", "5."},
        {"She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18"},
        {"#### 1,200\n", "1,200"},
        {"Let me check my answer.\nThe answer is 42. Great.", "42"},
        {"**Final Answer:** 7 apples", "7 apples"},
        {"Answer:\n\n  x = 5\n", "x = 5"},
        {"The final answer is: $3\\sqrt{13}$.", "$3\\sqrt{13}$"},
        {"It costs 3 dollars, then 4.5 more, so 7.5 in total.", "7.5"},
        {"Totals: -12 and 1,234,567 units", "1,234,567"},
        {"No numbers here at all.", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = lmz_qa_math_extract(cases[i].answer);
        bool ok = cases[i].want ? got && !strcmp(got, cases[i].want) : got == NULL;
        CHECKF(ok, "case %zu: got '%s', want '%s'", i, got ? got : "(none)", cases[i].want ? cases[i].want : "(none)");
        free(got);
    }
}

TEST(qa_grade_math_equal) {
    static const struct { const char *cand, *gold; bool eq; } cases[] = {
        {"18", "18", true},
        {"18.0", "18", true},
        {"$18.00", "18", true},
        {"1,200", "1200", true},
        {"18 dollars", "18", true},
        {"18 per day, so", "18", true},
        {"x = 5", "5", true},
        {"5", "x=5", true},
        {"\\dfrac{14}{3}", "\\frac{14}{3}", true},
        {"14/3", "\\frac{14}{3}", true},
        {"\\frac14", "0.25", true},
        {"-\\frac{\\pi}{6}", "-\\frac{\\pi}{6}", true},
        {"\\frac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2}", true},
        {"90^\\circ", "90", true},
        {"90^{\\circ}", "90^\\circ", true},
        {"50\\%", "50", true},
        {"\\left(3, \\frac{\\pi}{2}\\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", true},
        {"\\text{Evelyn}", "\\text{Evelyn}", true},
        {"Evelyn", "\\text{Evelyn}", true},
        {"C", "\\text{(C)}", true},
        {"11\\sqrt2", "11\\sqrt{2}", true},
        {"10{,}000", "10000", true},
        {"(-1)/2", "-0.5", true},
        {"19", "18", false},
        {"18.5", "18", false},
        {"\\sqrt{3}", "3", false},
        {"3x", "3", false},
        {"9+1", "9", false},
        {"p + q", "p - q", false},
        {"\\frac{3}{2}", "\\frac{2}{3}", false},
        {"", "0", false},
        {"1,-2", "-2,1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECKF(lmz_qa_math_equal(cases[i].cand, cases[i].gold) == cases[i].eq, "case %zu: '%s' vs '%s' should be %s", i,
               cases[i].cand, cases[i].gold, cases[i].eq ? "equal" : "different");
}

/* Each line of a JSONL file in the shared data: F(record, user) for each; the count. */
static int each_record(const char *rel, void (*fn)(const lmz_json *, void *), void *user) {
    char path[TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), rel);
    size_t len;
    char *text = test_read_file(path, &len);
    if (!text) return -1;
    int n = 0;
    for (char *p = text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p) - 1;
        lmz_json *o = lmz_json_parse(p, (size_t)(nl - p + 1));
        if (o) {
            fn(o, user);
            n++;
            lmz_json_free(o);
        }
        if (!nl[1]) break;
    }
    free(text);
    return n;
}

typedef struct { int right, wrong_mutant, n; char first_bad[512]; } gold_stats;

static void note_bad(gold_stats *st, const char *what, const char *gold) {
    if (!st->first_bad[0]) snprintf(st->first_bad, sizeof st->first_bad, "%s (gold '%s')", what, gold);
}

static void gsm8k_record(const lmz_json *o, void *user) {
    gold_stats *st = user;
    const lmz_json *a = lmz_json_get(o, "answer");
    if (!a || a->type != LMZ_JSON_STRING) return;
    const char *h = strstr(a->str, "####");
    if (!h) return;
    st->n++;
    char gold[64];
    snprintf(gold, sizeof gold, "%s", h + 4);
    lmz_qa_item it = {.task = LMZ_QA_MATH, .gold = gold};
    lmz_qa_grade g;
    if (lmz_qa_grade_answer(&it, a->str, NULL, &g) == 0 && g.correct) st->right++;
    else note_bad(st, g.extracted ? g.extracted : "(none)", gold);
    lmz_qa_grade_free(&g);
    /* the same solution ending with a wrong number */
    char *mut = malloc(a->len + 32);
    long v = strtol(gold[0] == ' ' ? gold + 1 : gold, NULL, 10);
    memcpy(mut, a->str, (size_t)(h - a->str));
    snprintf(mut + (h - a->str), 32, "#### %ld", v + 1);
    if (lmz_qa_grade_answer(&it, mut, NULL, &g) == 0 && !g.correct) st->wrong_mutant++;
    else note_bad(st, mut + (h - a->str), gold);
    lmz_qa_grade_free(&g);
    free(mut);
}

TEST(qa_grade_gsm8k_gold_solutions) {
    gold_stats st = {0};
    int n = each_record("qa/gsm8k_test.jsonl", gsm8k_record, &st);
    if (n < 0) {
        test_skip("no %s/qa/gsm8k_test.jsonl", test_data_dir());
        return;
    }
    CHECK_EQ_INT(st.n, 1319);
    CHECKF(st.right == st.n, "%d of %d solutions graded right; first wrong: %s", st.right, st.n, st.first_bad);
    CHECKF(st.wrong_mutant == st.n, "%d of %d wrong final numbers graded wrong; %s", st.wrong_mutant, st.n,
           st.first_bad);
}

static void math500_record(const lmz_json *o, void *user) {
    gold_stats *st = user;
    const lmz_json *sol = lmz_json_get(o, "solution"), *ans = lmz_json_get(o, "answer");
    if (!sol || !ans || sol->type != LMZ_JSON_STRING || ans->type != LMZ_JSON_STRING) return;
    st->n++;
    lmz_qa_item it = {.task = LMZ_QA_MATH, .gold = ans->str};
    lmz_qa_grade g;
    if (lmz_qa_grade_answer(&it, sol->str, NULL, &g) == 0 && g.correct) st->right++;
    else note_bad(st, g.extracted ? g.extracted : "(none)", ans->str);
    lmz_qa_grade_free(&g);
    /* the solution with its final boxed answer changed: gold + "+1" */
    const char *last = NULL;
    for (const char *p = sol->str; (p = strstr(p, "\\boxed{")); p++) last = p;
    if (!last) return;
    size_t pre = (size_t)(last - sol->str);
    char *mut = malloc(pre + ans->len + 32);
    memcpy(mut, sol->str, pre);
    sprintf(mut + pre, "\\boxed{%s+1}.", ans->str);
    if (lmz_qa_grade_answer(&it, mut, NULL, &g) == 0 && !g.correct) st->wrong_mutant++;
    else note_bad(st, mut + pre, ans->str);
    lmz_qa_grade_free(&g);
    free(mut);
}

TEST(qa_grade_math500_gold_solutions) {
    gold_stats st = {0};
    int n = each_record("qa/math500_test.jsonl", math500_record, &st);
    if (n < 0) {
        test_skip("no %s/qa/math500_test.jsonl", test_data_dir());
        return;
    }
    CHECK_EQ_INT(st.n, 500);
    CHECKF(st.right == st.n, "%d of %d solutions graded right; first wrong: %s", st.right, st.n, st.first_bad);
    CHECKF(st.wrong_mutant == st.n, "%d of %d changed answers graded wrong; %s", st.wrong_mutant, st.n, st.first_bad);
}

/* ------------------------------------------------------------------ code */

TEST(qa_grade_code_extract) {
    static const struct { const char *answer, *entry, *want; } cases[] = {
        {"Here:\n```python\ndef f(x):\n    return x\n```\nUsage:\n```python\nprint(f(1))\n```\n", "f",
         "def f(x):\n    return x\n"},
        {"```python\nimport math\n```\n```python\ndef g(): pass\n```\n", "f", "def g(): pass\n"}, /* longest */
        {"```\nx = 1\n```", "", "x = 1\n"},
        {"def f(x):\n    return x + 1\n", "f", "def f(x):\n    return x + 1\n"}, /* unfenced */
        {"```python\ndef f(x):\n    return 2 * x", "f", "def f(x):\n    return 2 * x"}, /* cut off */
        {"  ```py\n  def f(): return 3\n  ```\n", "f", "  def f(): return 3\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = lmz_qa_code_extract(cases[i].answer, cases[i].entry);
        CHECKF(got && !strcmp(got, cases[i].want), "case %zu: got '%s'", i, got ? got : "(null)");
        free(got);
    }
    lmz_qa_item it = {.task = LMZ_QA_CODE, .prefix = "def f(x):\n    \"\"\"doc\"\"\"\n", .tests = "assert f(1) == 2\n",
                      .entry_point = "f"};
    char *p = lmz_qa_code_program(&it, "    return x + 1\n");
    CHECK(p && !strcmp(p, "def f(x):\n    \"\"\"doc\"\"\"\n\n    return x + 1\n\n\n\nassert f(1) == 2\n"));
    free(p);
}

static bool have_python(void) {
    if (lmz_qa_python()) return true;
    test_skip("no python3");
    return false;
}

static lmz_qa_sandbox_limits quick_limits(void) {
    lmz_qa_sandbox_limits l;
    lmz_qa_sandbox_defaults(&l);
    l.wall_s = 4;
    l.cpu_s = 4;
    return l;
}

/* Whether a process other than this one still runs with DIR in its command line. */
static bool leftover_process(const char *dir) {
    DIR *d = opendir("/proc");
    if (!d) return false;
    struct dirent *e;
    bool found = false;
    char path[300], buf[4096];
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (!buf[i]) buf[i] = ' ';
        buf[n] = 0;
        if (strstr(buf, dir)) found = true;
        snprintf(path, sizeof path, "/proc/%s/cwd", e->d_name);
        char cwd[300];
        ssize_t k = readlink(path, cwd, sizeof cwd - 1);
        if (k > 0) {
            cwd[k] = 0;
            if (!strcmp(cwd, dir)) found = true;
        }
    }
    closedir(d);
    return found;
}

TEST(qa_grade_sandbox_pass_and_fail) {
    if (!have_python()) return;
    lmz_qa_sandbox_limits l = quick_limits();
    lmz_qa_sandbox_result r;
    CHECKF(lmz_qa_sandbox_python("import os\nprint('hi', len(os.environ), os.getuid())\n", &l, &r) == 0, "%s", lmz_last_error());
    CHECKF(r.exited && r.exit_code == 0 && !r.timed_out, "exit %d signal %d: %s", r.exit_code, r.term_signal, r.output);
    CHECKF(!strncmp(r.output, "hi ", 3), "output '%s'", r.output);
    int nenv = atoi(r.output + 3);
    CHECKF(nenv > 0 && nenv <= 8, "environment of %d variables: not the clean one", nenv);
    const char *uid = strchr(r.output + 3, ' ');
    CHECK(uid);
    if (geteuid() == 0) CHECKF(r.uid_dropped && atoi(uid + 1) == 65534, "ran as uid %s", uid + 1);
    else CHECK(atoi(uid + 1) == (int)geteuid());
    struct stat st;
    CHECKF(stat(r.dir, &st) != 0, "%s not removed", r.dir);
    lmz_qa_sandbox_result_free(&r);

    CHECK(lmz_qa_sandbox_python("def f(x):\n    return x\nassert f(1) == 2\n", &l, &r) == 0);
    CHECK(r.exited && r.exit_code == 1 && !r.timed_out);
    CHECKF(strstr(r.output, "AssertionError"), "output '%s'", r.output);
    lmz_qa_sandbox_result_free(&r);

    CHECK(lmz_qa_sandbox_python("def (:\n", &l, &r) == 0);
    CHECKF(r.exited && r.exit_code != 0 && strstr(r.output, "SyntaxError"), "exit %d: %s", r.exit_code, r.output);
    lmz_qa_sandbox_result_free(&r);

    /* standard input is empty; the network is not reachable when the kernel gave a namespace */
    CHECK(lmz_qa_sandbox_python("import sys\nassert sys.stdin.read() == ''\n", &l, &r) == 0);
    CHECKF(r.exited && r.exit_code == 0, "%s", r.output);
    lmz_qa_sandbox_result_free(&r);
    CHECK(lmz_qa_sandbox_python("import socket\n"
                                "s = socket.socket()\n"
                                "s.settimeout(2)\n"
                                "try:\n    s.connect(('1.1.1.1', 53))\nexcept OSError:\n    raise SystemExit(3)\n",
                                &l, &r) == 0);
    if (r.netns) CHECKF(r.exited && r.exit_code == 3, "exit %d: %s", r.exit_code, r.output);
    lmz_qa_sandbox_result_free(&r);
}

TEST(qa_grade_sandbox_infinite_loop) {
    if (!have_python()) return;
    lmz_qa_sandbox_limits l = quick_limits();
    l.wall_s = 1.5;
    lmz_qa_sandbox_result r;
    CHECK(lmz_qa_sandbox_python("while True:\n    pass\n", &l, &r) == 0);
    CHECKF(!r.exited && r.timed_out && r.term_signal == 9, "exited %d code %d", r.exited, r.exit_code);
    CHECKF(r.wall_s >= 1.5 && r.wall_s < 5, "ran %.2f s", r.wall_s);
    CHECK(!leftover_process(r.dir));
    lmz_qa_sandbox_result_free(&r);
    /* a sleeping loop (no CPU time: only the wall clock stops it) */
    CHECK(lmz_qa_sandbox_python("import time\nwhile True:\n    time.sleep(0.05)\n", &l, &r) == 0);
    CHECK(r.timed_out && !r.exited && r.wall_s < 5);
    lmz_qa_sandbox_result_free(&r);
}

TEST(qa_grade_sandbox_memory_hog) {
    if (!have_python()) return;
    lmz_qa_sandbox_limits l = quick_limits();
    l.wall_s = 30; /* touching 1 GiB takes a few seconds on a loaded machine; it must end by itself */
    l.cpu_s = 30;
    lmz_qa_sandbox_result r;
    CHECK(lmz_qa_sandbox_python("a = []\nwhile True:\n    a.append(bytearray(16 << 20))\n", &l, &r) == 0);
    CHECKF(!(r.exited && r.exit_code == 0) && !r.timed_out, "exit %d timed out %d", r.exit_code, r.timed_out);
    CHECKF(strstr(r.output, "MemoryError") || !r.exited, "output '%s'", r.output);
    lmz_qa_sandbox_result_free(&r);
    /* one allocation over the limit fails at once */
    CHECK(lmz_qa_sandbox_python("x = bytearray(3 << 30)\n", &l, &r) == 0);
    CHECK(r.exited && r.exit_code != 0 && strstr(r.output, "MemoryError"));
    lmz_qa_sandbox_result_free(&r);
}

TEST(qa_grade_sandbox_fork_bomb) {
    if (!have_python()) return;
    lmz_qa_sandbox_limits l = quick_limits();
    l.wall_s = 2;
    lmz_qa_sandbox_result r;
    /* forks as long as it can, every child too; then each tries to escape its process group */
    CHECK(lmz_qa_sandbox_python("import os, time\n"
                                "for _ in range(1000):\n"
                                "    try:\n"
                                "        os.fork()\n"
                                "    except OSError:\n"
                                "        pass\n"
                                "try:\n    os.setsid()\nexcept OSError:\n    pass\n"
                                "time.sleep(30)\n",
                                &l, &r) == 0);
    CHECKF(!(r.exited && r.exit_code == 0), "a fork bomb passed");
    CHECKF(r.wall_s < 6, "ran %.2f s", r.wall_s);
    /* nothing of it survives (the namespace's end, or the process group kill) */
    bool left = true;
    for (int i = 0; i < 100 && left; i++) {
        left = leftover_process(r.dir);
        if (left) usleep(20000);
    }
    CHECKF(!left || !r.pidns, "processes of the fork bomb survived in %s", r.dir);
    lmz_qa_sandbox_result_free(&r);
}

TEST(qa_grade_sandbox_output_flood) {
    if (!have_python()) return;
    lmz_qa_sandbox_limits l = quick_limits();
    l.file_bytes = 256 << 10;
    l.output_cap = 4096;
    lmz_qa_sandbox_result r;
    CHECK(lmz_qa_sandbox_python("while True:\n    print('x' * 1000)\n", &l, &r) == 0);
    CHECKF(!(r.exited && r.exit_code == 0) && !r.timed_out, "exit %d timed out %d", r.exit_code, r.timed_out);
    CHECK(r.output_len == 4096 && r.output_truncated);
    lmz_qa_sandbox_result_free(&r);
    /* files the program writes are capped too */
    CHECK(lmz_qa_sandbox_python("with open('big', 'wb') as f:\n    f.write(b'x' * (1 << 20))\n", &l, &r) == 0);
    CHECKF(r.exited && r.exit_code != 0, "a 1 MiB file was written under a 256 KiB limit");
    lmz_qa_sandbox_result_free(&r);
}

/* The reference solutions of MBPP and HumanEval (every 8th problem) pass their tests as the
 * grader runs them; another problem's solution fails them. Needs tools/make_qa_sets.py. */
TEST(qa_grade_code_golds_pass) {
    if (!have_python()) return;
    char dir[TEST_PATH_MAX], cmd[TEST_PATH_MAX * 2 + 200];
    if (!test_make_dir("qa-sets", dir)) return;
    snprintf(cmd, sizeof cmd, "LMZ_DATA=%s python3 tools/make_qa_sets.py -q --sets mbpp,humaneval --out %s",
             test_data_dir(), dir);
    if (system(cmd) != 0) {
        test_skip("tools/make_qa_sets.py failed (no data in %s?)", test_data_dir());
        return;
    }
    static const char *const sets[] = {"mbpp", "humaneval"};
    for (int k = 0; k < 2; k++) {
        char path[TEST_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, sets[k]);
        lmz_qa_set s;
        CHECKF(lmz_qa_set_load(path, &s) == 0, "%s", lmz_last_error());
        CHECK_EQ_INT(s.n, k == 0 ? 257 : 164);
        for (int i = 0; i < s.n; i += 8) {
            lmz_qa_item *it = &s.items[i];
            CHECK(it->task == LMZ_QA_CODE);
            /* the gold as a model would write it: fenced, after some prose */
            size_t n = strlen(it->gold) + 64;
            char *ans = malloc(n);
            snprintf(ans, n, "Here is the code:\n```python\n%s\n```\n", it->gold);
            lmz_qa_grade g;
            int rc = lmz_qa_grade_answer(it, ans, NULL, &g);
            free(ans);
            if (rc || !g.correct) {
                test_fail(__FILE__, __LINE__, "%s: gold graded wrong (exit %d): %s", it->id, g.exit_code,
                          g.output ? g.output : lmz_last_error());
                lmz_qa_grade_free(&g);
                lmz_qa_set_free(&s);
                return;
            }
            lmz_qa_grade_free(&g);
            const lmz_qa_item *other = &s.items[(i + 1) % s.n];
            CHECK(lmz_qa_grade_answer(it, other->gold, NULL, &g) == 0);
            CHECKF(!g.correct, "%s: the solution of %s passed its tests", it->id, other->id);
            lmz_qa_grade_free(&g);
        }
        lmz_qa_set_free(&s);
    }
}
