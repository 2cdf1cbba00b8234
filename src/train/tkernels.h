/* tkernels.h — the f32 matrix product the trainer spends its time in.
 *
 * Training runs in f32 on exactly dequantized base weights (src/train/graph.c): both
 * y = W x (forward) and dx = W^T dy (backward, with W dequantized transposed) become
 * Y[t][j] = X[t] . W[j] over rows of k floats. Each output is one canonical 8-lane dot
 * product (vecf.h: element i into lane i mod 8, lanes added in increasing i, combined as
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7))), so the result does not depend on the ISA level,
 * on how outputs are blocked, or on how the caller splits them between threads: training
 * is deterministic for a seed whatever the thread count. */
#ifndef LMZ_TKERNELS_H
#define LMZ_TKERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* For t < N_TOK and j < N_ROWS: d = X[t] . W[j] (rows of K floats, LDX / LDW apart), and
 * Y[t * LDY + j] = d, or Y[t * LDY + j] + d when ACC. */
void lmz_tk_nt(int64_t k, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, long n_rows, float *y,
               size_t ldy, bool acc);

/* The ISA levels of lmz_tk_nt (identical bits; dispatched on lmz_isa_current()). */
void lmz_tk_nt_scalar(int64_t k, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, long n_rows,
                      float *y, size_t ldy, bool acc);
void lmz_tk_nt_avx2(int64_t k, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, long n_rows,
                    float *y, size_t ldy, bool acc);
void lmz_tk_nt_avx512(int64_t k, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, long n_rows,
                      float *y, size_t ldy, bool acc);

#endif
