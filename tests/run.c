/* run.c — the test runner. Usage: lmz_tests [-j N] [SUBSTRING]. Exit status 1 if any test
 * failed.
 *
 * With -j 1 (the default) every test runs in this process, in name order, its output as it
 * happens. With -j N (make test passes the machine's CPU count) each test runs in a child
 * process of its own, N at a time, those marked TEST_SLOW first; a test's output (stdout
 * and stderr, its subprocesses' too) is held in a temporary file and printed whole when it
 * ends, so tests never interleave, and a test that crashes is reported as failed by signal
 * instead of ending the run. Tests share nothing but the file system: temporary folders
 * come from mkdtemp, ports from the kernel, caches are written by rename. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 1024
static struct test_entry { const char *name; test_fn fn; int slow; } tests[MAX_TESTS];
static int n_tests;
static int current_failed, current_skipped;

void test_register(const char *name, test_fn fn, int slow) {
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    tests[n_tests].slow = slow;
    n_tests++;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    current_failed = 1;
}

int test_failed(void) { return current_failed; }

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    skipped: ");
    vfprintf(stdout, fmt, ap);
    fprintf(stdout, "\n");
    va_end(ap);
    current_skipped = 1;
}

const char *test_data_dir(void) {
    const char *d = getenv("LMZ_DATA");
    return d && *d ? d : "../shared/data";
}

const char *test_model_path(const char *name) {
    static char path[4096];
    const char *file = NULL;
    if (!strcmp(name, "smollm2")) file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    else if (!strcmp(name, "gemma3")) file = "gemma-3-270m-q4_k_m.gguf";
    else if (!strcmp(name, "qwen25coder")) file = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
    if (!file) return NULL;
    const char *cache = getenv("LMZ_CACHE");
    if (cache && *cache) snprintf(path, sizeof path, "%s/models/%s", cache, file);
    else snprintf(path, sizeof path, "%s/.cache/lmz/models/%s", getenv("HOME") ? getenv("HOME") : ".", file);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fclose(f);
    return path;
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct test_entry *)a)->name, ((const struct test_entry *)b)->name);
}

static int slow_first_by_name(const void *a, const void *b) {
    int slow_a = ((const struct test_entry *)a)->slow, slow_b = ((const struct test_entry *)b)->slow;
    return slow_a != slow_b ? slow_b - slow_a : by_name(a, b);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

enum verdict { PASSED, FAILED, SKIPPED };

static enum verdict run_here(int i) {
    current_failed = 0;
    current_skipped = 0;
    tests[i].fn();
    fflush(stdout);
    fflush(stderr);
    return current_failed ? FAILED : current_skipped ? SKIPPED : PASSED;
}

static void print_verdict(enum verdict v, int i, double s) {
    const char *word = v == FAILED ? "FAIL" : v == SKIPPED ? "skip" : "ok  ";
    fprintf(stdout, "%s %s (%.2fs)\n", word, tests[i].name, s);
    fflush(stdout);
}

/* One test in a child process of its own (see the header). */
struct running {
    pid_t pid;
    int test;
    FILE *output;
    struct timespec start;
};

static int start_child(struct running *r, int i) {
    r->test = i;
    r->output = tmpfile();
    if (!r->output) {
        fprintf(stderr, "lmz_tests: cannot create a temporary file: %s\n", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->pid = fork();
    if (r->pid < 0) {
        fprintf(stderr, "lmz_tests: fork: %s\n", strerror(errno));
        fclose(r->output);
        return -1;
    }
    if (r->pid == 0) {
        int fd = fileno(r->output);
        if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(125);
        exit((int)run_here(i)); /* exit, not _exit: atexit handlers remove temporary folders */
    }
    return 0;
}

/* Prints a finished child's output and verdict; returns the verdict. */
static enum verdict finish_child(struct running *r, int status) {
    double s = seconds_since(&r->start);
    fprintf(stdout, "  %s ...\n", tests[r->test].name);
    rewind(r->output);
    char buf[1 << 14];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, r->output)) > 0) fwrite(buf, 1, got, stdout);
    fclose(r->output);
    enum verdict v;
    if (WIFEXITED(status) && WEXITSTATUS(status) <= SKIPPED) {
        v = (enum verdict)WEXITSTATUS(status);
    } else {
        if (WIFSIGNALED(status)) fprintf(stdout, "    killed by signal %d\n", WTERMSIG(status));
        else fprintf(stdout, "    exited with status %d\n", WEXITSTATUS(status));
        v = FAILED;
    }
    print_verdict(v, r->test, s);
    return v;
}

/* The verdicts so far, and which tests failed (listed again at the end). */
static int count[3], failed[MAX_TESTS], n_failed;

static void record(enum verdict v, int i) {
    count[v]++;
    if (v == FAILED) failed[n_failed++] = i;
}

static void run_in_order(const char *filter) {
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fprintf(stdout, "  %s ...\n", tests[i].name);
        fflush(stdout);
        enum verdict v = run_here(i);
        print_verdict(v, i, seconds_since(&t0));
        record(v, i);
    }
}

static int run_in_children(const char *filter, int jobs) {
    struct running *slots = calloc((size_t)jobs, sizeof *slots);
    if (!slots) return -1;
    int next = 0, busy = 0, rc = 0;
    for (;;) {
        while (next < n_tests && filter && !strstr(tests[next].name, filter)) next++;
        if (next < n_tests && busy < jobs) {
            int k = 0;
            while (slots[k].pid) k++;
            if ((rc = start_child(&slots[k], next++))) break;
            busy++;
            continue;
        }
        if (!busy) break;
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            fprintf(stderr, "lmz_tests: wait: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        for (int k = 0; k < jobs; k++) {
            if (slots[k].pid != pid) continue;
            record(finish_child(&slots[k], status), slots[k].test);
            slots[k].pid = 0;
            busy--;
        }
    }
    free(slots);
    return rc;
}

int main(int argc, char **argv) {
    int jobs = 1;
    int arg = 1;
    if (arg < argc && !strcmp(argv[arg], "-j")) {
        if (arg + 1 >= argc || (jobs = atoi(argv[arg + 1])) < 1) {
            fprintf(stderr, "usage: lmz_tests [-j JOBS] [SUBSTRING]  (JOBS >= 1)\n");
            return 2;
        }
        arg += 2;
    }
    const char *filter = arg < argc ? argv[arg] : NULL;
    qsort(tests, n_tests, sizeof tests[0], jobs > 1 ? slow_first_by_name : by_name);
    if (jobs == 1) run_in_order(filter);
    else if (run_in_children(filter, jobs)) return 2;
    for (int i = 0; i < n_failed; i++) printf("failed: %s\n", tests[failed[i]].name);
    if (count[SKIPPED]) printf("%d passed, %d failed, %d skipped\n", count[PASSED], count[FAILED], count[SKIPPED]);
    else printf("%d passed, %d failed\n", count[PASSED], count[FAILED]);
    return count[FAILED] ? 1 : 0;
}
