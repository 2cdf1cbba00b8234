/* test_files.h — temporary directories, files and runs of ./lmz, shared by the tests that
 * drive the command line or write files (test_corruption.c, test_lora.c, test_lossy.c,
 * test_train.c). */
#ifndef LMZ_TEST_FILES_H
#define LMZ_TEST_FILES_H

#include <stdbool.h>
#include <stddef.h>

#define TEST_PATH_MAX 4096

/* Makes a new directory lmz-PREFIX-XXXXXX under $TMPDIR (default /tmp) and copies its path
 * into DIR; it is removed, with everything in it, at exit. false after a test failure. */
bool test_make_dir(const char *prefix, char dir[TEST_PATH_MAX]);
/* Removes DIR and everything in it. */
void test_remove_dir(const char *dir);

bool test_write_file(const char *path, const void *data, size_t len);
/* Whether the two files exist and hold the same bytes. */
bool test_same_file(const char *a, const char *b);
/* Whether ./lmz exists (`make` builds it before `make test`); a test failure if not. */
bool test_have_lmz(void);

/* Runs `ENV ./lmz ARGS` through the shell (ENV: assignments such as "LMZ_CACHE=...", or
 * ""), standard input /dev/null unless ARGS redirects it, standard error into ERR (CAP
 * bytes, NUL-terminated) by way of a file in SCRATCH_DIR. The exit status, or -1 when it
 * did not exit. */
int test_run_lmz(const char *env, const char *args, const char *scratch_dir, char *err, size_t cap);

#endif
