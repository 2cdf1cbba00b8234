/* error.c — the last-error buffer and checked allocation. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

int lmz_fail(const char *fmt, ...) {
    /* Format into a local buffer first: callers often wrap the previous message, passing
     * lmz_last_error() itself as an argument. */
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
    return -1;
}

const char *lmz_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

void lmz_clear_error(void) { last_error[0] = 0; }

void *lmz_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) lmz_fail("out of memory (allocating %zu bytes)", n);
    return p;
}

void *lmz_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) lmz_fail("out of memory (allocating %zu x %zu bytes)", count, size);
    return p;
}

void *lmz_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) lmz_fail("out of memory (reallocating to %zu bytes)", n);
    return q;
}
