/* test_files.h — temporary directories, files, runs of ./lmz and the loopback Python test
 * servers (tests/rewriter_server.py, tests/qa_oracle_server.py), shared by the tests that
 * drive the command line, write files or talk to an endpoint (test_corruption.c,
 * test_lora.c, test_lossy.c, test_qa.c, test_qa_bench.c, test_train.c). */
#ifndef LMZ_TEST_FILES_H
#define LMZ_TEST_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

/* Whether python3 runs (the test servers are Python scripts); when not, the running test is
 * marked skipped. */
bool test_have_python(void);

/* A test server: `python3 SCRIPT LOG` (e.g. tests/rewriter_server.py), which listens on a
 * free loopback port and prints it as its first line. */
typedef struct {
    pid_t pid;
    int port;
} test_server;

/* Starts SCRIPT with LOG and reads its port into S->port. Whether it printed one; call
 * test_server_stop either way. */
bool test_server_start(const char *script, const char *log, test_server *s);
/* SIGTERM, then waits for it; nothing when it did not start. */
void test_server_stop(test_server *s);

#endif
