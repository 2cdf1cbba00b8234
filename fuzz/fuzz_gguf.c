/* fuzz_gguf.c — libFuzzer target for the GGUF reader (built and run by fuzz/run.sh).
 * Any input must either be rejected with a message or open into a table whose every key,
 * array element and tensor can be read through the accessors without leaving the input;
 * ASan/UBSan report the rest, and abort() marks a broken invariant as a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/gguf/gguf.h"
#include "../src/util/error.h"

static void require(int cond) {
    if (!cond) abort();
}

static void walk_key(const gguf_file *f, int k, const uint8_t *base, size_t size) {
    gguf_str name = gguf_key_name(f, k);
    require(name.len > 0 && (const uint8_t *)name.ptr >= base && name.len <= size &&
            (const uint8_t *)name.ptr + name.len <= base + size);
    char key[512];
    /* Keys with a NUL byte or longer than the buffer are not addressable through the C-string API. */
    if (name.len >= sizeof key || memchr(name.ptr, 0, name.len)) return;
    memcpy(key, name.ptr, name.len);
    key[name.len] = 0;
    require(gguf_find_key(f, key) == k);

    uint64_t u64v;
    uint32_t u32v;
    float f32v;
    bool boolv;
    gguf_str s;
    if (gguf_get_u32(f, key, &u32v)) require(gguf_get_u64(f, key, &u64v) && u64v == u32v);
    (void)gguf_get_f32(f, key, &f32v);
    (void)gguf_get_bool(f, key, &boolv);
    if (gguf_get_str(f, key, &s)) {
        require(gguf_key_type(f, k) == GGUF_STRING && s.len <= size);
        require((const uint8_t *)s.ptr >= base && (const uint8_t *)s.ptr + s.len <= base + size);
        volatile char last = s.len ? s.ptr[s.len - 1] : 0;
        (void)last;
    }
    enum gguf_value_type elem_type;
    uint64_t count;
    if (!gguf_get_array(f, key, &elem_type, &count)) return;
    require(elem_type < GGUF_N_VALUE_TYPES && elem_type != GGUF_ARRAY && count <= size);
    for (uint64_t i = 0; i <= count; i++) { /* including one past the end */
        if (elem_type == GGUF_STRING) {
            gguf_str e = gguf_array_str(f, key, i);
            require(i < count || e.len == 0);
            require(e.len == 0 || ((const uint8_t *)e.ptr >= base && (const uint8_t *)e.ptr + e.len <= base + size));
        } else {
            (void)gguf_array_num(f, key, i);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lmz_clear_error();
    gguf_file *f = gguf_open_buffer(data, size, "fuzz");
    if (!f) {
        require(strncmp(lmz_last_error(), "fuzz: ", 6) == 0);
        return 0;
    }
    size_t base_size;
    const uint8_t *base = gguf_base(f, &base_size);
    require(base == data && base_size == size);
    int n_keys = gguf_n_keys(f);
    for (int k = 0; k < n_keys; k++) walk_key(f, k, base, size);
    require(gguf_key_name(f, n_keys).len == 0 && gguf_key_type(f, -1) == GGUF_N_VALUE_TYPES);

    uint64_t n_tensors = gguf_n_tensors(f);
    for (uint64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *p = t->data;
        require(t->n_dims >= 1 && t->n_dims <= 4 && t->nbytes > 0 && t->nbytes <= size);
        require(p >= base && p + t->nbytes <= base + size);
        volatile uint8_t ends = p[0] ^ p[t->nbytes - 1]; /* ASan checks both ends */
        (void)ends;
        require(gguf_find_tensor(f, t->name) == t);
    }
    require(gguf_tensor_at(f, n_tensors) == NULL);
    gguf_close(f);
    return 0;
}
