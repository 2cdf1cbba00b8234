/* tensor_types.c — block sizes of ggml tensor types (ggml-common.h static_asserts). */
#include "tensor_types.h"

#include <stddef.h>

static const struct { uint32_t id; const char *name; uint32_t elems, bytes; } table[] = {
    {LMZ_F32, "F32", 1, 4},       {LMZ_F16, "F16", 1, 2},       {LMZ_Q4_0, "Q4_0", 32, 18},
    {LMZ_Q4_1, "Q4_1", 32, 20},   {LMZ_Q5_0, "Q5_0", 32, 22},   {LMZ_Q5_1, "Q5_1", 32, 24},
    {LMZ_Q8_0, "Q8_0", 32, 34},   {LMZ_Q8_1, "Q8_1", 32, 36},   {LMZ_Q2_K, "Q2_K", 256, 84},
    {LMZ_Q3_K, "Q3_K", 256, 110}, {LMZ_Q4_K, "Q4_K", 256, 144}, {LMZ_Q5_K, "Q5_K", 256, 176},
    {LMZ_Q6_K, "Q6_K", 256, 210}, {LMZ_Q8_K, "Q8_K", 256, 292}, {LMZ_I8, "I8", 1, 1},
    {LMZ_I16, "I16", 1, 2},       {LMZ_I32, "I32", 1, 4},       {LMZ_I64, "I64", 1, 8},
    {LMZ_F64, "F64", 1, 8},       {LMZ_BF16, "BF16", 1, 2},
};

bool lmz_type_geometry(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].id == type) {
            *block_elems = table[i].elems;
            *block_bytes = table[i].bytes;
            return true;
        }
    }
    return false;
}

const char *lmz_type_name(uint32_t type) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].id == type) return table[i].name;
    return "unknown";
}
