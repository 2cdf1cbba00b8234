/* sha256.h — SHA-256 (FIPS 180-4), for model fingerprints and determinism hashes. */
#ifndef LMZ_SHA256_H
#define LMZ_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t total_bytes;
    uint8_t block[64];
    size_t block_len;
} lmz_sha256;

void lmz_sha256_init(lmz_sha256 *h);
void lmz_sha256_update(lmz_sha256 *h, const void *data, size_t len);
void lmz_sha256_final(lmz_sha256 *h, uint8_t digest[32]);
/* Lowercase hex of a digest into out[65]. */
void lmz_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
