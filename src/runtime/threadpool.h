/* threadpool.h — a persistent pool of worker threads for data-parallel loops.
 *
 * Kernels split their *outputs* (rows, tokens, heads, chunks) into items, so a result never
 * depends on the number of threads or on which thread computed which item. */
#ifndef LMZ_THREADPOOL_H
#define LMZ_THREADPOOL_H

typedef struct lmz_pool lmz_pool;

lmz_pool *lmz_pool_create(int n_threads);   /* n_threads >= 1; NULL + lmz_fail on error */
void lmz_pool_free(lmz_pool *pool);
int lmz_pool_size(const lmz_pool *pool);

/* Calls FN(CTX, begin, end, ith) over [0, N) (N < 2^32) in chunks of GRAIN items that the
 * threads claim from a shared counter, the caller included, and returns when every item
 * is done: a thread the OS delays (a busy machine) just claims fewer chunks instead of
 * holding everyone up. Chunks must write disjoint outputs; ITH (0 for the caller, below
 * lmz_pool_size) indexes per-thread scratch. Not reentrant: FN must not call it. */
typedef void (*lmz_range_fn)(void *ctx, long begin, long end, int ith);
void lmz_pool_for(lmz_pool *pool, long n, long grain, lmz_range_fn fn, void *ctx);

#endif
