/* grade.h — the benchmark side of lmz qa (issue 8): the problem sets `lmz qa bench` reads
 * and the grading of an answer against a problem's gold.
 *
 * Sets are JSONL files written by tools/make_qa_sets.py, one problem a line:
 *   {"id", "task": "math"|"code"|"general", "problem", "gold", "tests", "entry_point", "prefix"}
 * (tests/entry_point/prefix may be absent or empty for math).
 *
 * Math: the final answer is extracted (the last \boxed{...} with nested braces, else the last
 * "#### X" line, else the last "answer is X" / "Answer: X", else the last number), normalized
 * (LaTeX spacing and wrappers, $ and \%, degrees, \dfrac, \frac{a}{b} -> a/b, thousands
 * commas, ...) and compared with the gold: as numbers when both are numbers (relative
 * tolerance 1e-6), else as normalized strings.
 *
 * Code: the Python code is extracted (the first fenced block that defines the entry point,
 * else the longest fenced block, else the whole answer), the set's prefix (HumanEval's
 * prompt) put before it, the tests after it, and the program run by python3 in a sandbox:
 * a fresh temporary directory, a new session and process group, new network and PID
 * namespaces where the kernel allows them, an unprivileged uid when run as root, rlimits on
 * CPU seconds, address space, file size, open files and processes, stdin /dev/null, output
 * to a capped file, a clean environment, and a wall-clock limit after which the whole
 * process group (and namespace) is killed. Pass = exit status 0. */
#ifndef LMZ_QA_GRADE_H
#define LMZ_QA_GRADE_H

#include <stdbool.h>
#include <stddef.h>

#include "qa.h"

typedef struct {
    char *id;
    enum lmz_qa_task task;
    char *problem;
    char *gold;
    char *tests;        /* code: asserts (and their imports) run after the answer's code */
    char *entry_point;  /* code: the function the tests call */
    char *prefix;       /* code: text put before the answer's code (HumanEval's prompt) */
} lmz_qa_item;          /* every string malloc'd and non-NULL ("" when absent) */

typedef struct {
    lmz_qa_item *items;
    int n;
} lmz_qa_set;

/* Parses a set from TEXT[0..len) (blank lines skipped; every other line one problem with at
 * least "id", "task", "problem" and "gold" as strings; ids unique). 0, or -1 + lmz_fail
 * naming the line. */
int lmz_qa_set_parse(const char *text, size_t len, lmz_qa_set *set);
int lmz_qa_set_load(const char *path, lmz_qa_set *set);
void lmz_qa_set_free(lmz_qa_set *set);

/* ---- math ---- */

/* The final answer written in ANSWER (malloc'd), or NULL when it has none (no number at all). */
char *lmz_qa_math_extract(const char *answer);
/* The normalized form of an answer or gold string (malloc'd; NULL only when out of memory). */
char *lmz_qa_math_normalize(const char *s);
/* Whether CANDIDATE (an extracted answer) equals GOLD, both given raw. */
bool lmz_qa_math_equal(const char *candidate, const char *gold);

/* ---- code ---- */

/* The Python code of ANSWER (malloc'd; NULL only when out of memory). */
char *lmz_qa_code_extract(const char *answer, const char *entry_point);
/* The program that grades ANSWER for a code item: prefix + the answer's code + tests. */
char *lmz_qa_code_program(const lmz_qa_item *it, const char *answer);

typedef struct {
    double wall_s;      /* wall-clock limit (default 10) */
    int cpu_s;          /* RLIMIT_CPU (default 10) */
    size_t mem_bytes;   /* RLIMIT_AS (default 1 GiB) */
    size_t file_bytes;  /* RLIMIT_FSIZE: the output file and any file written (default 1 MiB) */
    size_t output_cap;  /* output bytes kept in the result (default 64 KiB) */
    int max_files;      /* RLIMIT_NOFILE (default 64) */
    int max_procs;      /* processes beyond those the sandbox uid already runs (default 32) */
} lmz_qa_sandbox_limits;

void lmz_qa_sandbox_defaults(lmz_qa_sandbox_limits *l);

typedef struct {
    bool exited;          /* exited normally (exit_code valid) */
    int exit_code;
    int term_signal;      /* killed by this signal (0 when it exited) */
    bool timed_out;       /* the wall-clock limit killed it */
    char *output;         /* stdout + stderr, at most output_cap bytes, NUL-terminated */
    size_t output_len;
    bool output_truncated;
    double wall_s;
    char dir[256];        /* the temporary directory it ran in (removed afterwards) */
    bool netns, pidns, uid_dropped; /* which isolation the kernel granted */
} lmz_qa_sandbox_result;

/* The python3 the sandbox runs, or NULL when none: $LMZ_PYTHON, else the first python3 on
 * $PATH (then /usr/local/bin, /usr/bin, /bin) that resolves to an ELF executable (not a
 * shim script, which needs the environment the sandbox clears) that, when lmz runs as root,
 * the unprivileged sandbox uid can reach and run. */
const char *lmz_qa_python(void);
/* Runs PROGRAM with python3 in the sandbox (L: NULL for the defaults). 0 when it ran, whatever
 * its outcome (R filled; free with lmz_qa_sandbox_result_free); -1 + lmz_fail when it could
 * not be started (no python3, no temporary directory, fork failure). */
int lmz_qa_sandbox_python(const char *program, const lmz_qa_sandbox_limits *l, lmz_qa_sandbox_result *r);
void lmz_qa_sandbox_result_free(lmz_qa_sandbox_result *r);

/* ---- both ---- */

typedef struct {
    bool correct;
    char *extracted;   /* math: the extracted final answer (NULL: none); code: the code run */
    /* code only: */
    int exit_code;     /* -1 when killed */
    int term_signal;
    bool timed_out;
    char *output;      /* the tail of the run's output (at most 2 KiB) */
    double seconds;
} lmz_qa_grade;

/* Grades ANSWER for IT (math or code; "general" items are graded as math). 0, or -1 +
 * lmz_fail when a code answer could not be run (G then says not correct). */
int lmz_qa_grade_answer(const lmz_qa_item *it, const char *answer, const lmz_qa_sandbox_limits *l, lmz_qa_grade *g);
void lmz_qa_grade_free(lmz_qa_grade *g);

#endif
