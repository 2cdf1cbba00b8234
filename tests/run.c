/* run.c — the test runner. Usage: lmz_tests [SUBSTRING]. Exit status 1 if any test failed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"

#define MAX_TESTS 1024
static struct { const char *name; test_fn fn; } tests[MAX_TESTS];
static int n_tests;
static int current_failed, current_skipped;

void test_register(const char *name, test_fn fn) {
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
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
    return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    qsort(tests, n_tests, sizeof tests[0], by_name);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        current_failed = 0;
        current_skipped = 0;
        fprintf(stdout, "  %s ...\n", tests[i].name);
        fflush(stdout);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        const char *verdict = current_failed ? "FAIL" : current_skipped ? "skip" : "ok  ";
        fprintf(stdout, "%s %s (%.2fs)\n", verdict, tests[i].name, s);
        fflush(stdout);
        if (current_failed) failed++;
        else if (current_skipped) skipped++;
        else passed++;
    }
    if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
