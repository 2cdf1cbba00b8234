/* threadpool.h — a persistent pool of worker threads for data-parallel loops.
 *
 * lmz_pool_run(pool, fn, ctx) calls fn(ctx, i, n) once for every i in [0, n) where n is
 * the pool size (the caller runs i = 0) and returns when all have finished. Kernels split
 * their *outputs* by i, so a result never depends on the number of threads. */
#ifndef LMZ_THREADPOOL_H
#define LMZ_THREADPOOL_H

typedef struct lmz_pool lmz_pool;
typedef void (*lmz_task_fn)(void *ctx, int ith, int nth);

lmz_pool *lmz_pool_create(int n_threads);   /* n_threads >= 1; NULL + lmz_fail on error */
void lmz_pool_free(lmz_pool *pool);
int lmz_pool_size(const lmz_pool *pool);
void lmz_pool_run(lmz_pool *pool, lmz_task_fn fn, void *ctx);

/* Calls FN(CTX, begin, end, ith) over [0, N) in chunks of GRAIN items that the threads
 * take from a shared counter: a thread the OS delays (a busy machine) just takes fewer
 * chunks instead of holding everyone up. Chunks must write disjoint outputs, so which
 * thread ran a chunk never changes a result; ITH indexes per-thread scratch. */
typedef void (*lmz_range_fn)(void *ctx, long begin, long end, int ith);
void lmz_pool_for(lmz_pool *pool, long n, long grain, lmz_range_fn fn, void *ctx);

/* The half-open range [*begin, *end) of N items that worker ITH of NTH owns, in units of
 * GRAIN items (the last range takes the remainder). */
void lmz_split_range(long n, long grain, int ith, int nth, long *begin, long *end);

#endif
