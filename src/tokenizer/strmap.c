/* strmap.c — the byte-string hash map (linear probing, power-of-two capacity). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "../util/error.h"

#define FREE_SLOT UINT32_MAX

/* A fast non-cryptographic hash: 8 bytes per step, multiply-xorshift mixing. Inputs
 * are token texts and words of the text being compressed; collisions only cost time. */
uint64_t lmz_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xC2B2AE3D27D4EB4Full);
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    if (len) memcpy(&tail, p, len);
    h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    return h;
}

static size_t slot_of(const lmz_strmap *m, uint64_t hash, const void *key, size_t len) {
    size_t mask = m->capacity - 1;
    size_t i = (size_t)hash & mask;
    for (;;) {
        const lmz_strmap_entry *e = &m->entries[i];
        if (e->key_len == FREE_SLOT) return i;
        if (e->hash == hash && e->key_len == len && (len == 0 || memcmp(m->keys + e->key_off, key, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

static int alloc_entries(lmz_strmap *m, size_t capacity) {
    lmz_strmap_entry *entries = lmz_malloc(capacity * sizeof *entries);
    if (!entries) return -1;
    for (size_t i = 0; i < capacity; i++) entries[i].key_len = FREE_SLOT;
    m->entries = entries;
    m->capacity = capacity;
    return 0;
}

int lmz_strmap_init(lmz_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    return alloc_entries(m, capacity);
}

void lmz_strmap_free(lmz_strmap *m) {
    free(m->entries);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

int32_t lmz_strmap_get(const lmz_strmap *m, const void *key, size_t len) {
    const lmz_strmap_entry *e = &m->entries[slot_of(m, lmz_hash_bytes(key, len), key, len)];
    return e->key_len == FREE_SLOT ? -1 : e->value;
}

static int grow(lmz_strmap *m) {
    lmz_strmap old = *m;
    if (alloc_entries(m, old.capacity * 2) < 0) return -1;
    for (size_t i = 0; i < old.capacity; i++) {
        const lmz_strmap_entry *e = &old.entries[i];
        if (e->key_len == FREE_SLOT) continue;
        size_t mask = m->capacity - 1, j = (size_t)e->hash & mask;
        while (m->entries[j].key_len != FREE_SLOT) j = (j + 1) & mask;
        m->entries[j] = *e;
    }
    free(old.entries);
    return 0;
}

lmz_strmap_entry *lmz_strmap_insert(lmz_strmap *m, const void *key, size_t len, bool *inserted) {
    uint64_t hash = lmz_hash_bytes(key, len);
    size_t i = slot_of(m, hash, key, len);
    if (m->entries[i].key_len != FREE_SLOT) {
        *inserted = false;
        return &m->entries[i];
    }
    if ((m->count + 1) * 2 > m->capacity) {
        if (grow(m) < 0) return NULL;
        i = slot_of(m, hash, key, len);
    }
    if (len >= FREE_SLOT || m->keys_len + len > UINT32_MAX) {
        lmz_fail("tokenizer: string table over 4 GiB");
        return NULL;
    }
    if (m->keys_len + len > m->keys_cap) {
        size_t cap = m->keys_cap ? m->keys_cap : 4096;
        while (cap < m->keys_len + len) cap *= 2;
        char *keys = lmz_realloc(m->keys, cap);
        if (!keys) return NULL;
        m->keys = keys;
        m->keys_cap = cap;
    }
    if (len) memcpy(m->keys + m->keys_len, key, len);
    lmz_strmap_entry *e = &m->entries[i];
    e->hash = hash;
    e->key_off = (uint32_t)m->keys_len;
    e->key_len = (uint32_t)len;
    e->value = -1;
    m->keys_len += len;
    m->count++;
    *inserted = true;
    return e;
}
