/* tkernels_avx512.c — lmz_tk_nt compiled for AVX-512 (tkernels_impl.h; same bits as
 * baseline): 8-float vectors still, but 32 registers hold the 16 accumulators without
 * spilling. */
#if defined(__x86_64__)
#include "tkernels.h"

#define TK_NAME lmz_tk_nt_avx512
#include "tkernels_impl.h"
#endif
