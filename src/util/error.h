/* error.h — one process-wide "last error" message.
 * Library functions that fail return NULL or -1 and describe why here; the CLI
 * prints it. Messages say what failed and how to fix it, without a trailing newline. */
#ifndef LMZ_ERROR_H
#define LMZ_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define LMZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LMZ_PRINTF(a, b)
#endif

/* Sets the message and returns -1, so callers can write `return lmz_fail(...)`. */
int lmz_fail(const char *fmt, ...) LMZ_PRINTF(1, 2);
const char *lmz_last_error(void);
void lmz_clear_error(void);

/* malloc/calloc/realloc that report failure through lmz_fail (and return NULL). */
void *lmz_malloc(size_t n);
void *lmz_calloc(size_t count, size_t size);
void *lmz_realloc(void *p, size_t n);

#endif
