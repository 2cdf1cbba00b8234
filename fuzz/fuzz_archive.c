/* fuzz_archive.c — libFuzzer target for the archive reader and the range decoder (built and
 * run by fuzz/run.sh, seeded from tests/fixtures/archive/). Any input must be rejected with a
 * message or open into a table whose every chunk lies inside the input with sizes that add up;
 * each coded chunk's payload is then fed to the range decoder, which must keep its invariants
 * on whatever bytes it gets. Mutations almost never keep the checksums right, so each input is
 * also tried with both checksums recomputed, which lets the fuzzer reach the field checks
 * behind them. ASan/UBSan report the rest; abort() marks a broken invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/coder/rangecoder.h"
#include "../src/container/archive.h"
#include "../src/util/crc32.h"
#include "../src/util/error.h"

static void require(int cond) {
    if (!cond) abort();
}

/* Decodes up to 2000 symbols of a fixed skewed 300-symbol distribution from PAYLOAD: the
 * decoder's state must stay valid and its end check must answer. */
static void decode_payload(const uint8_t *payload, uint32_t len, uint32_t tokens) {
    enum { N = 300, TOTAL = 1 << 30 };
    static uint32_t cum[N + 1];
    if (cum[N] == 0) /* symbol 0 takes all but 2000 per other symbol */
        for (uint32_t i = 0; i < N; i++) cum[i + 1] = cum[i] + (i == 0 ? TOTAL - 2000 * (N - 1) : 2000);
    lmz_rdec d;
    lmz_rdec_init(&d, payload, len);
    uint32_t n = tokens < 2000 ? tokens : 2000;
    for (uint32_t i = 0; i < n && !d.past_end; i++) {
        uint32_t t = lmz_rdec_target(&d, TOTAL);
        require(t < TOTAL);
        uint32_t lo = 0, hi = N;
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (cum[mid] <= t) lo = mid;
            else hi = mid;
        }
        lmz_rdec_consume(&d, cum[lo], cum[lo + 1] - cum[lo], TOTAL);
        require(d.code < d.range && d.range >= (1ull << 48) && d.range < (1ull << 56));
    }
    (void)lmz_rdec_bits(&d, 37);
    int rc = lmz_rdec_finish(&d);
    require(rc == 0 || rc == -1);
    require(!(d.past_end && rc == 0));
}

static void check_archive(const uint8_t *data, size_t size) {
    lmz_clear_error();
    lmz_archive_params header;
    int header_rc = lmz_archive_read_header(&header, data, size);
    lmz_archive a;
    if (lmz_archive_open(&a, data, size) != 0) {
        require(lmz_last_error()[0] != 0);
        require(a.chunks == NULL && a.n_chunks == 0);
        return;
    }
    /* A readable archive has a readable header, and both reads agree. */
    require(header_rc == 0 && memcmp(&header, &a.params, sizeof header) == 0);
    require(memchr(a.params.model_name, 0, sizeof a.params.model_name) != NULL);
    require(a.n_chunks <= size / LMZ_ARCHIVE_ENTRY_SIZE);
    uint64_t input = 0;
    const uint8_t *next = data + LMZ_ARCHIVE_HEADER_SIZE;
    for (uint64_t i = 0; i < a.n_chunks; i++) {
        const lmz_archive_chunk *c = &a.chunks[i];
        const lmz_chunk_meta *m = &c->meta;
        require(c->payload == next && c->input_offset == input);
        require(c->payload >= data && m->payload_bytes <= size && c->payload + m->payload_bytes <= data + size);
        require(m->input_bytes >= 1 && m->input_bytes <= a.params.chunk_bytes);
        if (m->flags & LMZ_CHUNK_RAW) {
            require(m->token_count == 0 && m->payload_bytes == m->input_bytes);
        } else {
            require(m->token_count >= 1 && m->token_count <= m->input_bytes);
            decode_payload(c->payload, m->payload_bytes, m->token_count);
        }
        if (m->payload_bytes) {
            volatile uint8_t ends = c->payload[0] ^ c->payload[m->payload_bytes - 1]; /* ASan checks both ends */
            (void)ends;
        }
        next += m->payload_bytes;
        input += m->input_bytes;
    }
    require(input == a.original_size);
    require(next + a.n_chunks * LMZ_ARCHIVE_ENTRY_SIZE + LMZ_ARCHIVE_TRAILER_SIZE == data + size);

    uint8_t other[32];
    memcpy(other, a.params.model_sha256, 32);
    require(lmz_archive_check_model(&a.params, "fuzz", other, a.params.adapter_sha256) == 0);
    other[5] ^= 1;
    require(lmz_archive_check_model(&a.params, "fuzz", other, NULL) == -1);
    lmz_archive_close(&a);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_archive(data, size);
    if (size < 16) return 0;
    /* The same bytes with the header checksum (at header size - 4) and the archive checksum
     * (the last 4 bytes) made to match. */
    uint32_t header_size = (uint32_t)data[12] | (uint32_t)data[13] << 8 | (uint32_t)data[14] << 16 |
                           (uint32_t)data[15] << 24;
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    if (header_size >= 4 && header_size <= size) put32(copy + header_size - 4, lmz_crc32(copy, header_size - 4));
    put32(copy + size - 4, lmz_crc32(copy, size - 4));
    check_archive(copy, size);
    free(copy);
    return 0;
}
