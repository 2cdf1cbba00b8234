/* attention.h — one query head attending over a range of cached positions.
 *
 * The canonical computation (what every ISA must reproduce bit for bit):
 *   s_u   = lmz_vec_dot_f16(q, K_u, D) * scale        (vecf.h's 8-lane order)
 *   m     = max_u s_u
 *   w_u   = lmz_expf(s_u - m), sum = canonical 8-lane sum of w   (lmz_vec_exp_sum)
 *   out_i = sum over u in increasing order of (w_u * (1 / sum)) * V_u,i, starting from 0
 * K and V rows are fp16 (the KV cache), ROW_STRIDE elements apart. */
#ifndef LMZ_ATTENTION_H
#define LMZ_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

/* Positions P0..P1 (inclusive) of K/V (pointers to position 0). W is scratch for at
 * least P1 + 1 floats; OUT receives D floats. */
void lmz_attend_head(const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0, int p1, int d,
                     float scale, float *w, float *out);

/* N_HEADS query heads (Q and OUT: N_HEADS rows of D floats) sharing one K/V head: the
 * same bits as N_HEADS calls of lmz_attend_head. W: scratch for N_HEADS * (P1 + 1) floats. */
void lmz_attend_heads(int n_heads, const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0,
                      int p1, int d, float scale, float *w, float *out);

void lmz_attend_head_scalar(const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride, int p0, int p1,
                            int d, float scale, float *w, float *out);
void lmz_attend_heads_avx2(int n_heads, const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride,
                           int p0, int p1, int d, float scale, float *w, float *out);

void lmz_attend_heads_avx512(int n_heads, const float *q, const uint16_t *k, const uint16_t *v, size_t row_stride,
                             int p0, int p1, int d, float scale, float *w, float *out);

#endif
