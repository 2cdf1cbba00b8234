/* tkernels_impl.h — the body of lmz_tk_nt (tkernels.h), included once per ISA level by
 * tkernels.c (baseline), tkernels_avx2.c and tkernels_avx512.c, which the Makefile compiles
 * with their ISA's flags. It is written with 8-float vectors (GCC vector extensions), one
 * vector per output holding the 8 canonical lanes; with -ffp-contract=off every level runs
 * the same IEEE multiplies and adds in the same order, so all levels give the same bits.
 *
 * Outputs are computed 4 tokens x 4 weight rows at a time (16 accumulators: the x and w
 * vectors loaded once serve 4 products each), over blocks of weight rows small enough to
 * stay in L2 while every token passes over them. The includer defines TK_NAME. */
#include <string.h>

typedef float tk_v8 __attribute__((vector_size(32)));

#define TK_ROW_BLOCK 64 /* weight rows kept hot in cache while the tokens pass */

/* V = the 8 floats at P, unaligned. A macro: a function returning a 32-byte vector would
 * trip -Wpsabi in the baseline build, which has no 32-byte registers. */
#define TK_LOAD(v, p) memcpy(&(v), (p), sizeof(tk_v8))

static inline float tk_combine(const tk_v8 *v) {
    const float *a = (const float *)v;
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static inline void tk_store(float *y, float d, bool acc) { *y = acc ? *y + d : d; }

/* Finishes one output of a tile: elements K8..K-1 of X . W (the tail past the last full
 * 8) into lanes 0.., as tk_dot1 adds them, then the lanes combined and stored. */
static inline void tk_finish(tk_v8 *lanes, int64_t k8, int64_t k, const float *x, const float *w, float *y, bool acc) {
    for (int64_t i = k8; i < k; i++) (*lanes)[i - k8] += x[i] * w[i];
    tk_store(y, tk_combine(lanes), acc);
}

/* One output: the canonical dot product of X and W. */
static inline float tk_dot1(int64_t k, const float *x, const float *w) {
    const int64_t k8 = k & ~(int64_t)7;
    tk_v8 a = {0}, u, v;
    for (int64_t i = 0; i < k8; i += 8) {
        TK_LOAD(u, x + i);
        TK_LOAD(v, w + i);
        a += u * v;
    }
    for (int64_t i = k8; i < k; i++) a[i - k8] += x[i] * w[i];
    return tk_combine(&a);
}

/* 4 tokens x 4 rows, written out so that the 16 accumulators live in registers. */
static inline void tk_dot4x4(int64_t k, const float *x, size_t ldx, const float *w, size_t ldw, float *y, size_t ldy,
                             bool acc) {
    const int64_t k8 = k & ~(int64_t)7;
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    const float *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;
    tk_v8 a00 = {0}, a01 = {0}, a02 = {0}, a03 = {0}, a10 = {0}, a11 = {0}, a12 = {0}, a13 = {0};
    tk_v8 a20 = {0}, a21 = {0}, a22 = {0}, a23 = {0}, a30 = {0}, a31 = {0}, a32 = {0}, a33 = {0};
    for (int64_t i = 0; i < k8; i += 8) {
        tk_v8 u0, u1, u2, u3, v;
        TK_LOAD(u0, x0 + i), TK_LOAD(u1, x1 + i), TK_LOAD(u2, x2 + i), TK_LOAD(u3, x3 + i);
        TK_LOAD(v, w0 + i);
        a00 += u0 * v, a10 += u1 * v, a20 += u2 * v, a30 += u3 * v;
        TK_LOAD(v, w1 + i);
        a01 += u0 * v, a11 += u1 * v, a21 += u2 * v, a31 += u3 * v;
        TK_LOAD(v, w2 + i);
        a02 += u0 * v, a12 += u1 * v, a22 += u2 * v, a32 += u3 * v;
        TK_LOAD(v, w3 + i);
        a03 += u0 * v, a13 += u1 * v, a23 += u2 * v, a33 += u3 * v;
    }
    tk_v8 a[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
    for (int t = 0; t < 4; t++)
        for (int r = 0; r < 4; r++) tk_finish(&a[t][r], k8, k, x + t * ldx, w + r * ldw, y + t * ldy + r, acc);
}

#ifdef TK_WIDE_TILE
/* 4 tokens x 8 rows with 16-float vectors: each vector holds two rows' 8 canonical lanes
 * (rows 2p and 2p + 1 in its low and high halves) against one token's 8 activations in
 * both halves, so every half runs tk_dot1's lane arithmetic unchanged and this tile gives
 * tk_dot4x4's bits with twice the lanes per instruction. Needs AVX-512F and DQ. */
static inline void tk_dot4x8(int64_t k, const float *x, size_t ldx, const float *w, size_t ldw, float *y, size_t ldy,
                             bool acc) {
    const int64_t k8 = k & ~(int64_t)7;
    __m512 a[4][4]; /* fully unrolled loops keep the tile in registers */
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++)
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) a[t][p] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k8; i += 8) {
        __m512 v[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            v[p] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(w + 2 * p * ldw + i)),
                                      _mm256_loadu_ps(w + (2 * p + 1) * ldw + i), 1);
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            const __m512 u = _mm512_broadcast_f32x8(_mm256_loadu_ps(x + t * ldx + i));
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) a[t][p] = _mm512_add_ps(a[t][p], _mm512_mul_ps(u, v[p]));
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++)
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            for (int h = 0; h < 2; h++) {
                const int r = 2 * p + h;
                tk_v8 lanes;
                _mm256_storeu_ps((float *)&lanes, h ? _mm512_extractf32x8_ps(a[t][p], 1) : _mm512_castps512_ps256(a[t][p]));
                tk_finish(&lanes, k8, k, x + t * ldx, w + r * ldw, y + t * ldy + r, acc);
            }
}
#endif

void TK_NAME(int64_t k, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, long n_rows, float *y,
             size_t ldy, bool acc) {
    for (long j0 = 0; j0 < n_rows; j0 += TK_ROW_BLOCK) {
        const long j1 = n_rows - j0 < TK_ROW_BLOCK ? n_rows : j0 + TK_ROW_BLOCK;
        const long j4 = j0 + (j1 - j0) / 4 * 4;
        int t = 0;
        for (; t + 4 <= n_tok; t += 4) {
            long j = j0;
#ifdef TK_WIDE_TILE
            for (; j + 8 <= j4; j += 8) tk_dot4x8(k, x + t * ldx, ldx, w + j * ldw, ldw, y + t * ldy + j, ldy, acc);
#endif
            for (; j < j4; j += 4)
                tk_dot4x4(k, x + t * ldx, ldx, w + j * ldw, ldw, y + t * ldy + j, ldy, acc);
            for (long j = j4; j < j1; j++)
                for (int u = t; u < t + 4; u++) tk_store(y + u * ldy + j, tk_dot1(k, x + u * ldx, w + j * ldw), acc);
        }
        for (; t < n_tok; t++)
            for (long j = j0; j < j1; j++) tk_store(y + t * ldy + j, tk_dot1(k, x + t * ldx, w + j * ldw), acc);
    }
}
