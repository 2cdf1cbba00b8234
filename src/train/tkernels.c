/* tkernels.c — lmz_tk_nt's baseline level and the dispatch on the ISA level (tkernels.h). */
#include "tkernels.h"

#include "../kernels/quant.h"

#define TK_NAME lmz_tk_nt_scalar
#include "tkernels_impl.h"

void lmz_tk_nt(int64_t k, const float *x, size_t ldx, int n_tok, const float *w, size_t ldw, long n_rows, float *y,
               size_t ldy, bool acc) {
#if defined(__x86_64__)
    if (lmz_isa_current() >= LMZ_ISA_AVX512) {
        lmz_tk_nt_avx512(k, x, ldx, n_tok, w, ldw, n_rows, y, ldy, acc);
        return;
    }
    if (lmz_isa_current() >= LMZ_ISA_AVX2) {
        lmz_tk_nt_avx2(k, x, ldx, n_tok, w, ldw, n_rows, y, ldy, acc);
        return;
    }
#endif
    lmz_tk_nt_scalar(k, x, ldx, n_tok, w, ldw, n_rows, y, ldy, acc);
}
