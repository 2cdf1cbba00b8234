/* microbench.c — this CPU's limits, for docs/performance.md: how fast can one core (and all
 * cores) multiply int8 and float, and stream memory? Each number is the best of several
 * runs, measured with independent dependency chains so that throughput, not latency, is
 * what is timed.
 *   int8 MAC/s   VPDPBUSD (AVX-512 VNNI, 64 MACs per instruction) and VPMADDUBSW+VPMADDWD
 *                (AVX2, 32 MACs per pair) — the integer cores of lmz's quantized kernels
 *   f32 FLOP/s   separate VMULPS + VADDPS on 8 lanes (lmz never fuses: -ffp-contract=off)
 *   bytes/s      reading a buffer larger than the caches (DRAM) and one that fits L2
 * Usage: microbench [THREADS] (default: all online CPUs for the multi-thread rows). */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHAINS 12
#define ITERS 20000000L

__attribute__((target("avx512f,avx512vnni"))) static double vnni_macs(void) {
    __m512i acc[CHAINS], a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_epi32(c);
    double t0 = now();
    for (long i = 0; i < ITERS / 4; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
    double t = now() - t0;
    int32_t sink = 0;
    for (int c = 0; c < CHAINS; c++) sink += _mm512_reduce_add_epi32(acc[c]);
    if (sink == 42) puts("");
    return (double)(ITERS / 4) * CHAINS * 64 / t;
}

__attribute__((target("avx2"))) static double avx2_macs(void) {
    __m256i acc[CHAINS], a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_epi32(c);
    double t0 = now();
    for (long i = 0; i < ITERS / 4; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), ones));
    double t = now() - t0;
    int32_t lane[8], sink = 0;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_si256((__m256i *)lane, acc[c]);
        sink += lane[0];
    }
    if (sink == 42) puts("");
    return (double)(ITERS / 4) * CHAINS * 32 / t;
}

__attribute__((target("avx2"))) static double f32_flops(void) {
    __m256 acc[CHAINS], m = _mm256_set1_ps(0.999999f), x = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    double t0 = now();
    for (long i = 0; i < ITERS / 4; i++)
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_add_ps(_mm256_mul_ps(acc[c], m), x);
    double t = now() - t0;
    float lane[8], sink = 0;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(lane, acc[c]);
        sink += lane[0];
    }
    if (sink == 42.0f) puts("");
    return (double)(ITERS / 4) * CHAINS * 16 / t;
}

typedef struct {
    const uint8_t *buf;
    size_t bytes;
    int reps;
    double seconds;
    uint64_t sink;
} read_job;

__attribute__((target("avx2"))) static void *read_worker(void *p) {
    read_job *j = p;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    double t0 = now();
    for (int r = 0; r < j->reps; r++)
        for (size_t i = 0; i < j->bytes; i += 128) {
            acc0 = _mm256_add_epi64(acc0, _mm256_load_si256((const __m256i *)(j->buf + i)));
            acc1 = _mm256_add_epi64(acc1, _mm256_load_si256((const __m256i *)(j->buf + i + 32)));
            acc2 = _mm256_add_epi64(acc2, _mm256_load_si256((const __m256i *)(j->buf + i + 64)));
            acc3 = _mm256_add_epi64(acc3, _mm256_load_si256((const __m256i *)(j->buf + i + 96)));
        }
    j->seconds = now() - t0;
    uint64_t lane[4];
    _mm256_storeu_si256((__m256i *)lane, _mm256_add_epi64(_mm256_add_epi64(acc0, acc1), _mm256_add_epi64(acc2, acc3)));
    j->sink = lane[0] + lane[1] + lane[2] + lane[3];
    return NULL;
}

/* Read bandwidth with N threads, each over its own BYTES buffer REPS times (best of 3). */
static double read_bandwidth(int n, size_t bytes, int reps) {
    read_job jobs[64];
    pthread_t th[64];
    for (int i = 0; i < n; i++) {
        uint8_t *b = aligned_alloc(64, bytes);
        memset(b, i + 1, bytes);
        jobs[i] = (read_job){b, bytes, reps, 0, 0};
    }
    double best = 0;
    for (int trial = 0; trial < 3; trial++) {
        for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, read_worker, &jobs[i]);
        double slowest = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            if (jobs[i].seconds > slowest) slowest = jobs[i].seconds;
        }
        double rate = (double)n * bytes * reps / slowest;
        if (rate > best) best = rate;
    }
    for (int i = 0; i < n; i++) free((void *)jobs[i].buf);
    return best;
}

static double best_of(double (*f)(void)) {
    double best = 0;
    for (int i = 0; i < 3; i++) {
        double r = f();
        if (r > best) best = r;
    }
    return best;
}

int main(int argc, char **argv) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 1 ? atoi(argv[1]) : (int)cpus;
    if (threads < 1 || threads > 64) threads = 1;
    __builtin_cpu_init();
    printf("{\n  \"cpus\": %ld,\n", cpus);
    if (__builtin_cpu_supports("avx512vnni"))
        printf("  \"int8_macs_per_s_avx512_vnni_1core\": %.4g,\n", best_of(vnni_macs));
    if (__builtin_cpu_supports("avx2")) {
        printf("  \"int8_macs_per_s_avx2_1core\": %.4g,\n", best_of(avx2_macs));
        printf("  \"f32_flops_per_s_avx2_mul_add_1core\": %.4g,\n", best_of(f32_flops));
    }
    printf("  \"read_bytes_per_s_dram_1thread\": %.4g,\n", read_bandwidth(1, (size_t)256 << 20, 2));
    printf("  \"read_bytes_per_s_dram_%dthreads\": %.4g,\n", threads, read_bandwidth(threads, (size_t)256 << 20, 2));
    printf("  \"read_bytes_per_s_l2_1thread\": %.4g\n}\n", read_bandwidth(1, (size_t)256 << 10, 2000));
    return 0;
}
