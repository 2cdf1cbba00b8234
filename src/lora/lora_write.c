/* lora_write.c — writes an adapter as a GGUF v3 file in llama.cpp's adapter format
 * (gguf-spec.md §1 and §6): the 24-byte header; the metadata general.architecture,
 * general.type = adapter, adapter.type = lora, adapter.lora.alpha; one tensor info per
 * NAME.lora_a / NAME.lora_b; zero padding to the default 32-byte alignment; then each
 * tensor's data at an aligned offset in info order (the contiguous layout llama.cpp
 * requires), all little-endian. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gguf/tensor_types.h"
#include "../util/error.h"
#include "../util/fp16.h"
#include "../util/sha256.h"
#include "lora.h"

#define ALIGNMENT 32 /* GGUF's default; no general.alignment key is written */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool failed;
} out_buf;

static void put(out_buf *b, const void *data, size_t len) {
    if (b->failed) return;
    if (len > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap - b->n < len) cap *= 2;
        uint8_t *grown = lmz_realloc(b->p, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void put_u32(out_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(out_buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(out_buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void put_kv_str(out_buf *b, const char *key, const char *value) {
    put_str(b, key);
    put_u32(b, GGUF_STRING);
    put_str(b, value);
}

static void pad(out_buf *b) {
    static const uint8_t zeros[ALIGNMENT];
    put(b, zeros, (ALIGNMENT - b->n % ALIGNMENT) % ALIGNMENT);
}

/* The two tensors of weight W: ggml extents and data. */
typedef struct {
    char name[72];
    uint64_t ne0, ne1;
    const float *data;
} tensor_out;

static void tensors_of(const lmz_lora_weight *w, tensor_out t[2]) {
    snprintf(t[0].name, sizeof t[0].name, "%s.lora_a", w->name);
    snprintf(t[1].name, sizeof t[1].name, "%s.lora_b", w->name);
    t[0].ne0 = w->embedding ? (uint64_t)w->rank : (uint64_t)w->n_in;
    t[0].ne1 = w->embedding ? (uint64_t)w->n_out : (uint64_t)w->rank;
    t[1].ne0 = (uint64_t)w->rank;
    t[1].ne1 = w->embedding ? (uint64_t)w->n_in : (uint64_t)w->n_out;
    t[0].data = w->a;
    t[1].data = w->b;
}

int lmz_lora_serialize(const lmz_lora *l, uint32_t type, uint8_t **data, size_t *size) {
    if (type != LMZ_F32 && type != LMZ_F16)
        return lmz_fail("adapters are written as F32 or F16, not %s", lmz_type_name(type));
    const size_t elem = type == LMZ_F32 ? 4 : 2;
    out_buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 2 * (uint64_t)l->n_weights);
    put_u64(&b, 4);
    put_kv_str(&b, "general.architecture", l->arch);
    put_kv_str(&b, "general.type", "adapter");
    put_kv_str(&b, "adapter.type", "lora");
    put_str(&b, "adapter.lora.alpha");
    put_u32(&b, GGUF_FLOAT32);
    put_u32(&b, lmz_f32_to_bits(l->alpha));

    uint64_t offset = 0;
    for (int i = 0; i < l->n_weights; i++) {
        tensor_out t[2];
        tensors_of(l->weights[i], t);
        for (int j = 0; j < 2; j++) {
            if (strlen(t[j].name) > 63) {
                free(b.p);
                return lmz_fail("adapter tensor name %s is longer than GGUF's 63 bytes", t[j].name);
            }
            put_str(&b, t[j].name);
            put_u32(&b, 2);
            put_u64(&b, t[j].ne0);
            put_u64(&b, t[j].ne1);
            put_u32(&b, type);
            put_u64(&b, offset);
            offset += (t[j].ne0 * t[j].ne1 * elem + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        }
    }
    pad(&b);
    for (int i = 0; i < l->n_weights; i++) {
        tensor_out t[2];
        tensors_of(l->weights[i], t);
        for (int j = 0; j < 2; j++) {
            for (uint64_t k = 0; k < t[j].ne0 * t[j].ne1; k++) {
                if (type == LMZ_F32) {
                    put_u32(&b, lmz_f32_to_bits(t[j].data[k]));
                } else {
                    uint16_t h = lmz_f32_to_fp16(t[j].data[k]);
                    uint8_t x[2] = {(uint8_t)h, (uint8_t)(h >> 8)};
                    put(&b, x, 2);
                }
            }
            pad(&b);
        }
    }
    if (b.failed) {
        free(b.p);
        return -1;
    }
    *data = b.p;
    *size = b.n;
    return 0;
}

/* Rounds every weight to F16 (so memory holds what an F16 file holds); false if one does
 * not fit. */
static bool round_to_f16(lmz_lora *l) {
    for (int i = 0; i < l->n_weights; i++) {
        tensor_out t[2];
        tensors_of(l->weights[i], t);
        float *arrays[2] = {l->weights[i]->a, l->weights[i]->b};
        for (int j = 0; j < 2; j++)
            for (uint64_t k = 0; k < t[j].ne0 * t[j].ne1; k++) {
                arrays[j][k] = lmz_fp16_to_f32(lmz_f32_to_fp16(arrays[j][k]));
                if (!isfinite(arrays[j][k])) return false;
            }
    }
    return true;
}

static bool all_finite(const lmz_lora *l) {
    for (int i = 0; i < l->n_weights; i++) {
        tensor_out t[2];
        tensors_of(l->weights[i], t);
        for (int j = 0; j < 2; j++)
            for (uint64_t k = 0; k < t[j].ne0 * t[j].ne1; k++)
                if (!isfinite(t[j].data[k])) return false;
    }
    return true;
}

int lmz_lora_save(lmz_lora *l, const char *path, uint32_t type) {
    if (type == LMZ_F16 && !round_to_f16(l))
        return lmz_fail("%s: the adapter has values beyond F16's range; save it as F32", path);
    if (!all_finite(l)) return lmz_fail("%s: the adapter holds non-finite values", path);
    uint8_t *data;
    size_t size;
    if (lmz_lora_serialize(l, type, &data, &size)) return -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        int err = errno;
        if (fd >= 0) close(fd), remove(tmp);
        free(data);
        return lmz_fail("cannot create a file beside %s: %s", path, strerror(err));
    }
    fchmod(fd, 0644); /* mkstemp's 0600 would hide the adapter from other users */
    bool ok = fwrite(data, 1, size, f) == size;
    ok = fflush(f) == 0 && ok;
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        err = errno;
        ok = false;
    }
    if (!ok) {
        remove(tmp);
        free(data);
        return lmz_fail("cannot write the adapter %s: %s", path, strerror(err));
    }
    lmz_sha256 h;
    lmz_sha256_init(&h);
    lmz_sha256_update(&h, data, size);
    lmz_sha256_final(&h, l->sha256);
    free(data);
    return 0;
}
