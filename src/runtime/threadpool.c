/* threadpool.c — a persistent pool running parallel loops (lmz_pool_for).
 *
 * A loop's items are claimed in chunks from one 64-bit counter that also carries the
 * loop's generation, and the caller waits only for the items to be done, never for the
 * workers to check in: a worker the OS has descheduled (another process on a busy
 * machine) just claims nothing, and the caller, which also claims chunks, finishes the
 * loop without it. The loop's description (function, context, sizes) lives in the pool
 * and is read by workers under a sequence lock, so a worker waking late can never run a
 * chunk of one loop with another loop's function: its claim names the generation.
 *
 * Idle workers spin briefly (a decode step issues a few hundred small loops, so sleeping
 * between them would cost more than the work), then sleep on a condition variable. With
 * more threads than CPUs nobody spins: a spinning thread would take the CPU from the one
 * it waits for. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "../util/error.h"

#define SPIN_ITERATIONS 20000

typedef struct {
    lmz_range_fn fn;
    void *ctx;
    long n, grain;
    uint32_t generation;
} loop_desc;

struct lmz_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_int sleepers;
    atomic_bool stop;
    int spin_limit;             /* busy-wait iterations before sleeping or yielding */
    uint32_t generation;        /* the caller's count of loops (never 0 once started) */
    /* The current loop, written only by the caller while no chunk of the previous loop is
     * outstanding, between the two increments of `seq` (odd while being written). */
    atomic_uint seq;
    _Atomic(lmz_range_fn) fn;
    _Atomic(void *) ctx;
    atomic_long n_items, grain;
    atomic_uint loop_generation;
    atomic_uint_fast64_t claim; /* generation << 32 | the next unclaimed item */
    atomic_long done;           /* items of the current loop finished */
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

static inline uint32_t claim_generation(uint64_t c) { return (uint32_t)(c >> 32); }

/* A consistent copy of the current loop's description; false while it is being written. */
static bool read_loop(lmz_pool *pool, loop_desc *d) {
    unsigned s1 = atomic_load_explicit(&pool->seq, memory_order_acquire);
    if (s1 & 1) return false;
    d->fn = atomic_load_explicit(&pool->fn, memory_order_relaxed);
    d->ctx = atomic_load_explicit(&pool->ctx, memory_order_relaxed);
    d->n = atomic_load_explicit(&pool->n_items, memory_order_relaxed);
    d->grain = atomic_load_explicit(&pool->grain, memory_order_relaxed);
    d->generation = atomic_load_explicit(&pool->loop_generation, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&pool->seq, memory_order_relaxed) == s1;
}

/* Claims and runs chunks of loop D until none is left (or a newer loop has started). */
static void run_chunks(lmz_pool *pool, const loop_desc *d, int ith) {
    uint64_t c = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        long next = (long)(c & 0xffffffffu);
        if (claim_generation(c) != d->generation || next >= d->n) return;
        long end = next + d->grain < d->n ? next + d->grain : d->n;
        uint64_t want = ((uint64_t)d->generation << 32) | (uint64_t)end;
        if (!atomic_compare_exchange_weak_explicit(&pool->claim, &c, want, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* c now holds the current value */
        d->fn(d->ctx, next, end, ith);
        atomic_fetch_add_explicit(&pool->done, end - next, memory_order_release);
        c = atomic_load_explicit(&pool->claim, memory_order_acquire);
    }
}

static void *worker_main(void *p) {
    worker_arg *arg = p;
    lmz_pool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    uint32_t seen = 0;
    for (;;) {
        int spins = 0;
        while (claim_generation(atomic_load_explicit(&pool->claim, memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop)) {
            if (++spins < pool->spin_limit) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->mutex);
            atomic_fetch_add(&pool->sleepers, 1);
            while (claim_generation(atomic_load(&pool->claim)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stop)) return NULL;
        loop_desc d;
        if (!read_loop(pool, &d)) continue; /* being written: look again */
        seen = d.generation;
        run_chunks(pool, &d, index);
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

void lmz_pool_for(lmz_pool *pool, long n, long grain, lmz_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (!pool || pool->n == 1 || n <= grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    if (++pool->generation == 0) pool->generation = 1; /* 0 is what workers start from */
    const loop_desc d = {fn, ctx, n, grain, pool->generation};
    /* Publish the description (sequence lock), then open the claims. */
    unsigned s = atomic_load_explicit(&pool->seq, memory_order_relaxed);
    atomic_store_explicit(&pool->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&pool->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool->n_items, n, memory_order_relaxed);
    atomic_store_explicit(&pool->grain, grain, memory_order_relaxed);
    atomic_store_explicit(&pool->loop_generation, d.generation, memory_order_relaxed);
    atomic_store_explicit(&pool->seq, s + 2, memory_order_release);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    atomic_store(&pool->claim, (uint64_t)d.generation << 32);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
    run_chunks(pool, &d, 0);
    /* Only chunks that workers claimed and are still running are left. */
    for (int spins = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < n; spins++) {
        if (spins < SPIN_ITERATIONS) cpu_relax();
        else sched_yield();
    }
}
