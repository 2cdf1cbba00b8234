/* threadpool.c — workers spin briefly on a generation counter (a decode step issues a
 * few hundred small parallel loops, so sleeping between them would cost more than the
 * work), then fall back to a condition variable when idle. With more threads than CPUs
 * nobody spins: a spinning thread would take the CPU from the one it waits for. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "../util/error.h"

#define SPIN_ITERATIONS 20000

struct lmz_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint generation;     /* bumped once per lmz_pool_run */
    atomic_int pending;         /* workers still running the current task */
    atomic_bool stop;
    int spin_limit;             /* busy-wait iterations before sleeping or yielding */
    lmz_task_fn fn;
    void *ctx;
};

typedef struct {
    lmz_pool *pool;
    int index;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p) {
    worker_arg *arg = p;
    lmz_pool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
               !atomic_load(&pool->stop)) {
            if (++spins < pool->spin_limit) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->mutex);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        pool->fn(pool->ctx, index, pool->n);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel);
    }
}

lmz_pool *lmz_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    lmz_pool *pool = lmz_calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n = n_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pool->spin_limit = cpus > 0 && n_threads > cpus ? 0 : SPIN_ITERATIONS;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = lmz_calloc((size_t)n_threads, sizeof(pthread_t));
    if (!pool->threads) {
        free(pool);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg || (arg->pool = pool, arg->index = i, pthread_create(&pool->threads[i], NULL, worker_main, arg))) {
            free(arg);
            pool->n = i; /* only threads 1..i-1 exist */
            lmz_pool_free(pool);
            lmz_fail("cannot start worker thread %d", i);
            return NULL;
        }
    }
    return pool;
}

void lmz_pool_free(lmz_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    free(pool->threads);
    free(pool);
}

int lmz_pool_size(const lmz_pool *pool) { return pool ? pool->n : 1; }

void lmz_pool_run(lmz_pool *pool, lmz_task_fn fn, void *ctx) {
    if (!pool || pool->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->n - 1);
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    fn(ctx, 0, pool->n);
    /* Spin, then yield: with more threads than cores the stragglers need our core. */
    for (int spins = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; spins++) {
        if (spins < pool->spin_limit) cpu_relax();
        else sched_yield();
    }
}

typedef struct {
    lmz_range_fn fn;
    void *ctx;
    long n, grain;
    atomic_long next;
} range_task;

static void range_worker(void *p, int ith, int nth) {
    (void)nth;
    range_task *t = p;
    for (;;) {
        long b = atomic_fetch_add_explicit(&t->next, t->grain, memory_order_relaxed);
        if (b >= t->n) return;
        t->fn(t->ctx, b, b + t->grain < t->n ? b + t->grain : t->n, ith);
    }
}

void lmz_pool_for(lmz_pool *pool, long n, long grain, lmz_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (!pool || pool->n == 1 || n <= grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    range_task t = {fn, ctx, n, grain, 0};
    lmz_pool_run(pool, range_worker, &t);
}

void lmz_split_range(long n, long grain, int ith, int nth, long *begin, long *end) {
    if (grain < 1) grain = 1;
    long units = (n + grain - 1) / grain;
    long per = units / nth, extra = units % nth;
    long first = ith * per + (ith < extra ? ith : extra);
    long count = per + (ith < extra ? 1 : 0);
    *begin = first * grain < n ? first * grain : n;
    *end = (first + count) * grain < n ? (first + count) * grain : n;
}
