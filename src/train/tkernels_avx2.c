/* tkernels_avx2.c — lmz_tk_nt compiled for AVX2 (tkernels_impl.h; same bits as baseline). */
#if defined(__x86_64__)
#include "tkernels.h"

#define TK_NAME lmz_tk_nt_avx2
#include "tkernels_impl.h"
#endif
