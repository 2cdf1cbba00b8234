/* gguf.h — read-only GGUF v2/v3 files over mmap (stage 0 of the data flow: the model file).
 *
 * gguf_open() validates the whole header up front: every count, length, offset and
 * size is bounds-checked against the file, so later accessors never fault. Tensors
 * are used in place from the mapping, in their stored type. Spec: ../shared/docs/gguf-spec.md §1. */
#ifndef LMZ_GGUF_H
#define LMZ_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gguf_value_type {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4,
    GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9,
    GGUF_UINT64 = 10, GGUF_INT64 = 11, GGUF_FLOAT64 = 12, GGUF_N_VALUE_TYPES
};

/* A string inside the file: not NUL-terminated. */
typedef struct { const char *ptr; uint64_t len; } gguf_str;

typedef struct {
    char name[64];           /* NUL-terminated (GGUF names are < 64 bytes) */
    uint32_t n_dims;
    uint64_t ne[4];          /* extents, ne[0] innermost; missing dims are 1 */
    uint32_t type;           /* ggml tensor type id (see kernels/quant.h) */
    uint64_t offset;         /* relative to the data section */
    uint64_t nbytes;
    const void *data;        /* points into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and validates PATH. On failure returns NULL; lmz_last_error() says why. */
gguf_file *gguf_open(const char *path);
/* Same over a caller-owned buffer (kept alive by the caller); used by fuzzing and tests. */
gguf_file *gguf_open_buffer(const void *buf, size_t size, const char *label);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
const void *gguf_base(const gguf_file *f, size_t *size);   /* the whole mapped file */

/* Metadata. Lookups return false when the key is absent or has an incompatible type. */
int gguf_find_key(const gguf_file *f, const char *key);    /* index or -1 */
int gguf_n_keys(const gguf_file *f);
/* Out-of-range IDX gives an empty name and GGUF_N_VALUE_TYPES. */
gguf_str gguf_key_name(const gguf_file *f, int idx);
enum gguf_value_type gguf_key_type(const gguf_file *f, int idx);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out); /* any non-negative integer */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out); /* any integer that fits */
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);    /* F32 or F64 */
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Arrays: element type and count; elements by index (bounds-checked by the caller via count). */
bool gguf_get_array(const gguf_file *f, const char *key, enum gguf_value_type *elem_type, uint64_t *count);
gguf_str gguf_array_str(const gguf_file *f, const char *key, uint64_t i);
double gguf_array_num(const gguf_file *f, const char *key, uint64_t i);  /* any numeric element */

/* Tensors. */
uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

#endif
