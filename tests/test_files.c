/* test_files.c — temporary directories, files, runs of ./lmz and the loopback Python test
 * servers for the tests (test_files.h). */
#include "test_files.h"

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MAX_DIRS 32

static char made[MAX_DIRS][TEST_PATH_MAX];
static int n_made;

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path); /* files, and directories once emptied (FTW_DEPTH visits them last) */
}

void test_remove_dir(const char *dir) {
    struct stat st;
    if (dir[0] && stat(dir, &st) == 0) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_made(void) {
    for (int i = 0; i < n_made; i++) test_remove_dir(made[i]);
}

bool test_make_dir(const char *prefix, char dir[TEST_PATH_MAX]) {
    if (n_made == MAX_DIRS) {
        test_fail(__FILE__, __LINE__, "more than %d temporary directories in one run", MAX_DIRS);
        return false;
    }
    const char *t = getenv("TMPDIR");
    snprintf(dir, TEST_PATH_MAX, "%s/lmz-%s-XXXXXX", t && *t ? t : "/tmp", prefix);
    if (!mkdtemp(dir)) {
        test_fail(__FILE__, __LINE__, "cannot create a temporary directory %s", dir);
        dir[0] = 0;
        return false;
    }
    if (n_made == 0) atexit(remove_made);
    snprintf(made[n_made++], TEST_PATH_MAX, "%s", dir);
    return true;
}

bool test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = false;
    return ok;
}

bool test_same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = test_read_file(a, &la), *y = test_read_file(b, &lb);
    bool same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

bool test_have_lmz(void) {
    struct stat st;
    if (stat("./lmz", &st) == 0) return true;
    test_fail(__FILE__, __LINE__, "./lmz is missing: run `make` in the repository root before the tests");
    return false;
}

int test_run_lmz(const char *env, const char *args, const char *scratch_dir, char *err, size_t cap) {
    char err_path[TEST_PATH_MAX + 16];
    snprintf(err_path, sizeof err_path, "%s/stderr", scratch_dir);
    size_t need = strlen(env) + strlen(args) + strlen(err_path) + 64;
    char *cmd = malloc(need);
    if (!cmd) return -1;
    snprintf(cmd, need, "%s ./lmz %s %s 2>%s", env, args, strchr(args, '<') ? "" : "</dev/null", err_path);
    int status = system(cmd);
    free(cmd);
    size_t len = 0;
    char *text = test_read_file(err_path, &len);
    snprintf(err, cap, "%s", text ? text : "");
    free(text);
    remove(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool test_have_python(void) {
    FILE *py = popen("python3 --version 2>&1", "r");
    char version[64] = {0};
    bool ok = py && fgets(version, sizeof version, py) && !strncmp(version, "Python 3", 8);
    if (py) pclose(py);
    if (!ok) test_skip("python3 is not installed (the test server is a Python script)");
    return ok;
}

bool test_server_start(const char *script, const char *log, test_server *s) {
    int fds[2];
    if (pipe(fds)) return false;
    s->pid = fork();
    if (s->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (s->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", script, log, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t k = read(fds[0], line + n, 1);
        if (k <= 0 || line[n] == '\n') break;
        n++;
    }
    close(fds[0]);
    s->port = atoi(line);
    return s->port > 0;
}

void test_server_stop(test_server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}
