/* crc32.h — CRC-32 as in IEEE 802.3, zlib and PNG (reflected, polynomial 0xEDB88320,
 * initial value and final XOR 0xFFFFFFFF). lmz archives use it for the header, the whole
 * archive and each chunk's original bytes (docs/format.md); it is the common CRC so that
 * other tools (python's zlib.crc32, `crc32`) can check an archive independently. */
#ifndef LMZ_CRC32_H
#define LMZ_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over LEN more bytes: start with crc = 0; feeding a buffer in pieces gives
 * the same result as feeding it whole (same convention as zlib's crc32()). */
uint32_t lmz_crc32_update(uint32_t crc, const void *data, size_t len);

/* The CRC-32 of one buffer: lmz_crc32_update(0, data, len). */
uint32_t lmz_crc32(const void *data, size_t len);

#endif
