/* gguf.c — GGUF parser. Every read goes through a bounds-checked cursor; the header,
 * the metadata and the tensor table are validated once in gguf_open_buffer(). */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/error.h"
#include "../util/fp16.h"
#include "tensor_types.h"

#define GGUF_MAX_STRING_LEN (1ull << 30)
#define GGUF_MAX_ARRAY_LEN (1ull << 30)
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct {
    gguf_str key;
    uint32_t type;
    const uint8_t *value;    /* scalar bytes or string length prefix */
    uint32_t elem_type;      /* arrays */
    uint64_t count;          /* arrays */
    const uint8_t *elems;    /* arrays: first element */
    gguf_str *strs;          /* string arrays: one view per element */
} gguf_kv;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint32_t version;
    char label[256];
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
};

typedef struct {
    const uint8_t *base;
    size_t size, pos;
    const char *label;
} cursor;

static const uint32_t scalar_size[GGUF_N_VALUE_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static int need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return lmz_fail("%s: truncated GGUF file: %s at byte %zu needs %llu bytes, only %zu left",
                        c->label, what, c->pos, (unsigned long long)n, c->size - c->pos);
    return 0;
}

static int read_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    *v = lmz_read_u32le(c->base + c->pos);
    c->pos += 4;
    return 0;
}

static int read_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    *v = lmz_read_u64le(c->base + c->pos);
    c->pos += 8;
    return 0;
}

static int read_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len;
    if (read_u64(c, &len, what)) return -1;
    if (len > GGUF_MAX_STRING_LEN)
        return lmz_fail("%s: corrupt GGUF file: %s has absurd length %llu at byte %zu", c->label, what,
                        (unsigned long long)len, c->pos - 8);
    if (need(c, len, what)) return -1;
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

static bool str_eq(gguf_str s, const char *z) { return strlen(z) == s.len && memcmp(s.ptr, z, s.len) == 0; }

/* Steps the cursor over one non-array value of TYPE. */
static int skip_scalar(cursor *c, uint32_t type, const char *what) {
    if (type == GGUF_STRING) {
        gguf_str s;
        return read_str(c, &s, what);
    }
    if (type >= GGUF_N_VALUE_TYPES || type == GGUF_ARRAY)
        return lmz_fail("%s: corrupt GGUF file: %s has unknown value type %u", c->label, what, type);
    if (need(c, scalar_size[type], what)) return -1;
    c->pos += scalar_size[type];
    return 0;
}

static int parse_kv(gguf_file *f, cursor *c, gguf_kv *kv, uint64_t index) {
    char what[128];
    snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)index);
    if (read_str(c, &kv->key, what)) return -1;
    if (kv->key.len == 0) return lmz_fail("%s: corrupt GGUF file: %s has an empty name", f->label, what);
    /* From here on, messages name the key so the user can tell which record is bad. */
    snprintf(what, sizeof what, "metadata key %llu '%.*s'", (unsigned long long)index,
             (int)(kv->key.len > 64 ? 64 : kv->key.len), kv->key.ptr);
    if (read_u32(c, &kv->type, what)) return -1;
    kv->value = c->base + c->pos;
    if (kv->type != GGUF_ARRAY) return skip_scalar(c, kv->type, what);

    if (read_u32(c, &kv->elem_type, what) || read_u64(c, &kv->count, what)) return -1;
    if (kv->elem_type == GGUF_ARRAY)
        return lmz_fail("%s: unsupported GGUF file: %s is a nested array", f->label, what);
    if (kv->elem_type >= GGUF_N_VALUE_TYPES)
        return lmz_fail("%s: corrupt GGUF file: %s has unknown array element type %u", f->label, what,
                        kv->elem_type);
    if (kv->count > GGUF_MAX_ARRAY_LEN)
        return lmz_fail("%s: corrupt GGUF file: %s has absurd array length %llu", f->label, what,
                        (unsigned long long)kv->count);
    kv->elems = c->base + c->pos;
    if (kv->elem_type != GGUF_STRING) {
        uint64_t bytes = kv->count * scalar_size[kv->elem_type];
        if (need(c, bytes, what)) return -1;
        c->pos += bytes;
        return 0;
    }
    /* Each string element needs at least its 8-byte length, so COUNT is bounded by the file. */
    if (need(c, kv->count * 8, what)) return -1;
    kv->strs = lmz_malloc(kv->count * sizeof(gguf_str));
    if (!kv->strs) return -1;
    for (uint64_t i = 0; i < kv->count; i++)
        if (read_str(c, &kv->strs[i], what)) return -1;
    return 0;
}

static int compare_keys(const void *a, const void *b) {
    const gguf_kv *x = *(const gguf_kv *const *)a, *y = *(const gguf_kv *const *)b;
    int c = memcmp(x->key.ptr, y->key.ptr, x->key.len < y->key.len ? x->key.len : y->key.len);
    if (c) return c;
    return (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

/* Sorting first keeps this O(n log n): the key count is bounded only by the file size, and a
 * pairwise scan over a few million tiny keys would hang the loader. */
static int reject_duplicate_keys(gguf_file *f) {
    if (f->n_kv < 2) return 0;
    const gguf_kv **sorted = lmz_malloc(f->n_kv * sizeof *sorted);
    if (!sorted) return -1;
    for (uint64_t i = 0; i < f->n_kv; i++) sorted[i] = &f->kv[i];
    qsort(sorted, f->n_kv, sizeof *sorted, compare_keys);
    int rc = 0;
    for (uint64_t i = 1; i < f->n_kv && !rc; i++) {
        const gguf_str key = sorted[i]->key;
        if (!compare_keys(&sorted[i - 1], &sorted[i]))
            rc = lmz_fail("%s: corrupt GGUF file: duplicate metadata key '%.*s'", f->label,
                          (int)(key.len > 200 ? 200 : key.len), key.ptr);
    }
    free(sorted);
    return rc;
}

static int compare_tensor_names(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int parse_tensor_info(gguf_file *f, cursor *c, gguf_tensor *t, uint64_t index) {
    char what[128];
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)index);
    gguf_str name;
    if (read_str(c, &name, what)) return -1;
    if (name.len == 0 || name.len >= sizeof t->name)
        return lmz_fail("%s: corrupt GGUF file: %s has a name of %llu bytes (must be 1..63)", f->label,
                        what, (unsigned long long)name.len);
    if (memchr(name.ptr, 0, name.len))
        return lmz_fail("%s: corrupt GGUF file: %s has a NUL byte in its name", f->label, what);
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = 0;
    snprintf(what, sizeof what, "tensor info %llu '%s'", (unsigned long long)index, t->name);
    if (read_u32(c, &t->n_dims, what)) return -1;
    if (t->n_dims < 1 || t->n_dims > 4)
        return lmz_fail("%s: corrupt GGUF file: tensor '%s' has %u dimensions (must be 1..4)", f->label,
                        t->name, t->n_dims);
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (read_u64(c, &t->ne[d], what)) return -1;
    if (read_u32(c, &t->type, what) || read_u64(c, &t->offset, what)) return -1;

    uint32_t block_elems, block_bytes;
    if (!lmz_type_geometry(t->type, &block_elems, &block_bytes))
        return lmz_fail("%s: unsupported GGUF file: tensor '%s' has unknown type id %u", f->label, t->name,
                        t->type);
    const uint64_t limit = 1ull << 40;
    uint64_t elems = 1;
    for (int d = 0; d < 4; d++) {
        if (t->ne[d] == 0 || t->ne[d] > limit || elems > limit / t->ne[d])
            return lmz_fail("%s: corrupt GGUF file: tensor '%s' has invalid dimensions [%llu, %llu, %llu, %llu] "
                            "(each must be 1..2^40, and at most 2^40 elements in all)",
                            f->label, t->name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                            (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
        elems *= t->ne[d];
    }
    if (t->ne[0] % block_elems)
        return lmz_fail("%s: corrupt GGUF file: tensor '%s' row of %llu elements is not a multiple of the "
                        "%s block size %u", f->label, t->name, (unsigned long long)t->ne[0],
                        lmz_type_name(t->type), block_elems);
    t->nbytes = elems / block_elems * block_bytes;
    return 0;
}

gguf_file *gguf_open_buffer(const void *buf, size_t size, const char *label) {
    gguf_file *f = lmz_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->base = buf;
    f->size = size;
    snprintf(f->label, sizeof f->label, "%s", label ? label : "(buffer)");
    cursor c = {f->base, size, 0, f->label};

    if (size < 4 || memcmp(buf, "GGUF", 4) != 0) {
        lmz_fail("%s: not a GGUF file (bad magic; expected 'GGUF')", f->label);
        goto fail;
    }
    c.pos = 4;
    if (read_u32(&c, &f->version, "header")) goto fail;
    if ((f->version & 0xffff) == 0 && f->version != 0) {
        lmz_fail("%s: big-endian GGUF files are not supported", f->label);
        goto fail;
    }
    if (f->version < 2 || f->version > 3) {
        lmz_fail("%s: unsupported GGUF version %u (lmz reads versions 2 and 3)", f->label, f->version);
        goto fail;
    }
    if (read_u64(&c, &f->n_tensors, "header") || read_u64(&c, &f->n_kv, "header")) goto fail;
    /* A KV record takes at least 14 bytes (8-byte length, 1-byte key, 4-byte type, 1-byte value)
     * and a tensor info at least 33, so larger counts lie. Keys are indexed by int in the API. */
    if (f->n_kv > (size - c.pos) / 14 || f->n_tensors > (size - c.pos) / 33 || f->n_kv > INT_MAX) {
        lmz_fail("%s: truncated or corrupt GGUF file: header claims %llu metadata keys and %llu tensors, more than "
                 "the file's %zu bytes can hold", f->label, (unsigned long long)f->n_kv,
                 (unsigned long long)f->n_tensors, size);
        goto fail;
    }

    f->kv = lmz_calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    if (!f->kv) goto fail;
    uint32_t alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        if (parse_kv(f, &c, kv, i)) goto fail;
        if (str_eq(kv->key, "general.alignment")) {
            if (kv->type != GGUF_UINT32) {
                lmz_fail("%s: corrupt GGUF file: general.alignment has value type %u, must be UINT32 (%d)",
                         f->label, kv->type, GGUF_UINT32);
                goto fail;
            }
            uint32_t a = lmz_read_u32le(kv->value);
            if (a == 0 || (a & (a - 1))) {
                lmz_fail("%s: corrupt GGUF file: general.alignment is %u, must be a power of two", f->label, a);
                goto fail;
            }
            alignment = a;
        }
    }
    if (reject_duplicate_keys(f)) goto fail;

    f->tensors = lmz_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->tensors) goto fail;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (parse_tensor_info(f, &c, &f->tensors[i], i)) goto fail;

    uint64_t data_start = ((uint64_t)c.pos + alignment - 1) / alignment * alignment;
    if (f->n_tensors && data_start > size) {
        lmz_fail("%s: truncated GGUF file: the tensor data section would start at byte %llu, past the end "
                 "(%zu bytes)", f->label, (unsigned long long)data_start, size);
        goto fail;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % alignment) {
            lmz_fail("%s: corrupt GGUF file: tensor '%s' offset %llu is not a multiple of the alignment %u",
                     f->label, t->name, (unsigned long long)t->offset, alignment);
            goto fail;
        }
        if (t->offset > size - data_start || t->nbytes > size - data_start - t->offset) {
            lmz_fail("%s: truncated or corrupt GGUF file: tensor '%s' (%llu bytes at data offset %llu) "
                     "extends past the end of the file (%zu bytes)", f->label, t->name,
                     (unsigned long long)t->nbytes, (unsigned long long)t->offset, size);
            goto fail;
        }
        t->data = f->base + data_start + t->offset;
    }
    if (f->n_tensors > 1) {
        const gguf_tensor **sorted = lmz_malloc(f->n_tensors * sizeof *sorted);
        if (!sorted) goto fail;
        for (uint64_t i = 0; i < f->n_tensors; i++) sorted[i] = &f->tensors[i];
        qsort(sorted, f->n_tensors, sizeof *sorted, compare_tensor_names);
        for (uint64_t i = 1; i < f->n_tensors; i++) {
            if (!strcmp(sorted[i - 1]->name, sorted[i]->name)) {
                lmz_fail("%s: corrupt GGUF file: duplicate tensor name '%s'", f->label, sorted[i]->name);
                free(sorted);
                goto fail;
            }
        }
        free(sorted);
    }
    return f;
fail:
    gguf_close(f);
    return NULL;
}

gguf_file *gguf_open(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        lmz_fail("%s: cannot open model file: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        lmz_fail("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        lmz_fail("%s: not a GGUF file (empty)", path);
        return NULL;
    }
    void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        lmz_fail("%s: cannot map model file: %s", path, strerror(errno));
        return NULL;
    }
    gguf_file *f = gguf_open_buffer(base, size, path);
    if (!f) {
        munmap(base, size);
        return NULL;
    }
    f->mapped = true;
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].strs);
    free(f->kv);
    free(f->tensors);
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }

const void *gguf_base(const gguf_file *f, size_t *size) {
    *size = f->size;
    return f->base;
}

int gguf_find_key(const gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (str_eq(f->kv[i].key, key)) return (int)i;
    return -1;
}

int gguf_n_keys(const gguf_file *f) { return (int)f->n_kv; }

gguf_str gguf_key_name(const gguf_file *f, int idx) {
    gguf_str none = {"", 0};
    return idx >= 0 && (uint64_t)idx < f->n_kv ? f->kv[idx].key : none;
}

enum gguf_value_type gguf_key_type(const gguf_file *f, int idx) {
    return idx >= 0 && (uint64_t)idx < f->n_kv ? (enum gguf_value_type)f->kv[idx].type : GGUF_N_VALUE_TYPES;
}

static const gguf_kv *find(const gguf_file *f, const char *key) {
    int i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kv[i];
}

/* Integer scalar of any width as a signed 128-bit-safe pair: returns false for non-integers. */
static bool read_integer(uint32_t type, const uint8_t *p, int64_t *sv, uint64_t *uv, bool *is_signed) {
    *is_signed = false;
    switch (type) {
    case GGUF_UINT8: *uv = p[0]; return true;
    case GGUF_UINT16: *uv = lmz_read_u16le(p); return true;
    case GGUF_UINT32: *uv = lmz_read_u32le(p); return true;
    case GGUF_UINT64: *uv = lmz_read_u64le(p); return true;
    case GGUF_INT8: *sv = (int8_t)p[0]; break;
    case GGUF_INT16: *sv = (int16_t)lmz_read_u16le(p); break;
    case GGUF_INT32: *sv = (int32_t)lmz_read_u32le(p); break;
    case GGUF_INT64: *sv = (int64_t)lmz_read_u64le(p); break;
    default: return false;
    }
    *is_signed = true;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    const gguf_kv *kv = find(f, key);
    int64_t sv = 0;
    uint64_t uv = 0;
    bool is_signed;
    if (!kv || !read_integer(kv->type, kv->value, &sv, &uv, &is_signed)) return false;
    if (is_signed) {
        if (sv < 0) return false;
        uv = (uint64_t)sv;
    }
    *out = uv;
    return true;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    uint64_t v;
    if (!gguf_get_u64(f, key, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = find(f, key);
    if (!kv) return false;
    if (kv->type == GGUF_FLOAT32) {
        *out = lmz_bits_to_f32(lmz_read_u32le(kv->value));
        return true;
    }
    if (kv->type == GGUF_FLOAT64) {
        uint64_t u = lmz_read_u64le(kv->value);
        double d;
        memcpy(&d, &u, 8);
        *out = (float)d;
        return true;
    }
    return false;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = find(f, key);
    if (!kv || kv->type != GGUF_BOOL) return false;
    *out = kv->value[0] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = find(f, key);
    if (!kv || kv->type != GGUF_STRING) return false;
    out->len = lmz_read_u64le(kv->value);
    out->ptr = (const char *)kv->value + 8;
    return true;
}

bool gguf_get_array(const gguf_file *f, const char *key, enum gguf_value_type *elem_type, uint64_t *count) {
    const gguf_kv *kv = find(f, key);
    if (!kv || kv->type != GGUF_ARRAY) return false;
    *elem_type = (enum gguf_value_type)kv->elem_type;
    *count = kv->count;
    return true;
}

gguf_str gguf_array_str(const gguf_file *f, const char *key, uint64_t i) {
    const gguf_kv *kv = find(f, key);
    gguf_str none = {"", 0};
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING || i >= kv->count) return none;
    return kv->strs[i];
}

double gguf_array_num(const gguf_file *f, const char *key, uint64_t i) {
    const gguf_kv *kv = find(f, key);
    if (!kv || kv->type != GGUF_ARRAY || i >= kv->count || kv->elem_type == GGUF_STRING) return 0.0;
    const uint8_t *p = kv->elems + i * scalar_size[kv->elem_type];
    int64_t sv;
    uint64_t uv;
    bool is_signed;
    if (read_integer(kv->elem_type, p, &sv, &uv, &is_signed)) return is_signed ? (double)sv : (double)uv;
    if (kv->elem_type == GGUF_FLOAT32) return lmz_bits_to_f32(lmz_read_u32le(p));
    if (kv->elem_type == GGUF_FLOAT64) {
        uint64_t u = lmz_read_u64le(p);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    return p[0] != 0; /* bool */
}

uint64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) { return i < f->n_tensors ? &f->tensors[i] : NULL; }

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}
