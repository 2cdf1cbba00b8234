/* test.h — the test harness: TEST(name) registers a test; CHECK* record a failure and
 * end the test. tests/run.c runs them (all, or those whose name contains argv[1]) and
 * prints "N passed, N failed" as its last line. */
#ifndef LMZ_TEST_H
#define LMZ_TEST_H

#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
/* SLOW: the test takes minutes; with -j N it is started before the others, so the run
 * does not end waiting for it alone. */
void test_register(const char *name, test_fn fn, int slow);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int test_failed(void);
/* Marks the running test as skipped (say why); it then counts neither as passed nor failed. */
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Paths: the shared data folder and the default model (both resolved from the environment). */
const char *test_data_dir(void);         /* $LMZ_DATA or ../shared/data */
const char *test_model_path(const char *name); /* smollm2 -> cached GGUF path; NULL if absent */
char *test_read_file(const char *path, size_t *len); /* malloc'd, NUL-terminated; NULL on error */

#define TEST_REGISTERED(name, slow)                                        \
    static void name(void);                                                \
    __attribute__((constructor)) static void name##_register(void) {       \
        test_register(#name, name, slow);                                  \
    }                                                                      \
    static void name(void)
#define TEST(name) TEST_REGISTERED(name, 0)
#define TEST_SLOW(name) TEST_REGISTERED(name, 1)

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) { test_fail(__FILE__, __LINE__, "%s", #cond); return; } \
    } while (0)

#define CHECKF(cond, ...)                                                  \
    do {                                                                   \
        if (!(cond)) { test_fail(__FILE__, __LINE__, __VA_ARGS__); return; } \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                 \
    do {                                                                   \
        long long _a = (long long)(a), _b = (long long)(b);                \
        if (_a != _b) {                                                    \
            test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, _a, _b); \
            return;                                                        \
        }                                                                  \
    } while (0)

#endif
