/* crc32.c — table-driven CRC-32 (one table lookup per byte). Throughput is far above what
 * the model-bound compressor needs, so the simple byte-wise form is enough. */
#include "crc32.h"

#include <pthread.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* table[b] is the CRC register after shifting the byte b through it eight times. */
static void build_table(void) {
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        table[b] = c;
    }
}

uint32_t lmz_crc32_update(uint32_t crc, const void *data, size_t len) {
    pthread_once(&table_once, build_table);
    const uint8_t *p = data;
    /* A finished CRC is the register complemented (the final XOR); undoing it lets pieces chain. */
    uint32_t c = ~crc;
    for (size_t i = 0; i < len; i++) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return ~c;
}

uint32_t lmz_crc32(const void *data, size_t len) { return lmz_crc32_update(0, data, len); }
