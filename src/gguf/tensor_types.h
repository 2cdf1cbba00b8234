/* tensor_types.h — the ggml tensor type ids a GGUF file may name, with their block geometry.
 * This is a file-format fact (gguf-spec.md §1.6); which types lmz can compute with is
 * decided in kernels/. */
#ifndef LMZ_TENSOR_TYPES_H
#define LMZ_TENSOR_TYPES_H

#include <stdbool.h>
#include <stdint.h>

enum lmz_type {
    LMZ_F32 = 0, LMZ_F16 = 1, LMZ_Q4_0 = 2, LMZ_Q4_1 = 3, LMZ_Q5_0 = 6, LMZ_Q5_1 = 7,
    LMZ_Q8_0 = 8, LMZ_Q8_1 = 9, LMZ_Q2_K = 10, LMZ_Q3_K = 11, LMZ_Q4_K = 12, LMZ_Q5_K = 13,
    LMZ_Q6_K = 14, LMZ_Q8_K = 15, LMZ_I8 = 24, LMZ_I16 = 25, LMZ_I32 = 26, LMZ_I64 = 27,
    LMZ_F64 = 28, LMZ_BF16 = 30
};

/* Returns false for ids this reader does not know (file is then rejected). */
bool lmz_type_geometry(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes);
const char *lmz_type_name(uint32_t type);

#endif
