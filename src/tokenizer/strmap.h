/* strmap.h — open-addressing hash map from byte strings to int32 values, used by the
 * tokenizers for vocabulary lookup, BPE piece interning and the per-call word cache.
 * Keys are copied into the map's own arena, so callers may pass transient buffers. */
#ifndef LMZ_STRMAP_H
#define LMZ_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;
    uint32_t key_off; /* into the map's key arena */
    uint32_t key_len; /* UINT32_MAX marks a free slot */
    int32_t value;
} lmz_strmap_entry;

typedef struct {
    lmz_strmap_entry *entries;
    size_t capacity; /* power of two, kept at least twice count */
    size_t count;
    char *keys;      /* arena holding every key's bytes */
    size_t keys_len, keys_cap;
} lmz_strmap;

/* Sizes the map for about EXPECTED keys (it grows as needed). -1 + lmz_fail on failure. */
int lmz_strmap_init(lmz_strmap *m, size_t expected);
void lmz_strmap_free(lmz_strmap *m);

/* The value stored for KEY, or -1 when absent. */
int32_t lmz_strmap_get(const lmz_strmap *m, const void *key, size_t len);

/* The entry for KEY, inserted with value -1 when absent (*inserted says which). The
 * pointer is valid until the next insertion. NULL + lmz_fail on allocation failure or
 * when the key arena would pass 4 GiB. */
lmz_strmap_entry *lmz_strmap_insert(lmz_strmap *m, const void *key, size_t len, bool *inserted);

/* The bytes of ENTRY's key (valid until the next insertion). */
static inline const char *lmz_strmap_key(const lmz_strmap *m, const lmz_strmap_entry *e) {
    return m->keys + e->key_off;
}

uint64_t lmz_hash_bytes(const void *data, size_t len);

#endif
