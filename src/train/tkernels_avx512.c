/* tkernels_avx512.c — lmz_tk_nt compiled for AVX-512 (tkernels_impl.h; same bits as
 * baseline): 4 x 4 tiles of 8-float vectors, whose 16 accumulators the 32 registers hold
 * without spilling, and 4 x 8 tiles of 16-float vectors that pair two rows' canonical
 * lanes (TK_WIDE_TILE). On this project's AMD EPYC the wide tile takes the trainer's
 * shapes from 70-117 to 88-146 GFLOP/s (1.15-1.25x, one thread) and `lmz train` about 8 %. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "tkernels.h"

#define TK_WIDE_TILE
#define TK_NAME lmz_tk_nt_avx512
#include "tkernels_impl.h"
#endif
