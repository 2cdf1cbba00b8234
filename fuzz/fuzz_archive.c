/* fuzz_archive.c — libFuzzer target for the archive reader and the range decoder (built and
 * run by fuzz/run.sh, seeded from tests/fixtures/archive/). Any input must be rejected with a
 * message or open into a table whose every chunk lies inside the input with sizes that add up;
 * each coded chunk's payload is then fed to the range decoder, which must keep its invariants
 * on whatever bytes it gets; and writing back what was read must give the input's exact bytes
 * (the format allows one encoding per archive). Mutations almost never keep the checksums right,
 * so each input is also tried with both checksums recomputed, which lets the fuzzer reach the
 * field checks behind them. ASan/UBSan report the rest; abort() marks a broken invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/coder/bytebuf.h"
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

static int to_buffer(void *ctx, const void *data, size_t len) { return lmz_bytebuf_append(ctx, data, len); }

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
    require(a.size == size && a.n_chunks <= size / 6); /* an entry takes at least 6 bytes */
    uint64_t input = 0;
    const uint8_t *next = data + data[5]; /* payloads start right after the header */
    for (uint64_t i = 0; i < a.n_chunks; i++) {
        const lmz_archive_chunk *c = &a.chunks[i];
        const lmz_chunk_meta *m = &c->meta;
        require(c->payload == next && c->input_offset == input);
        require(m->payload_bytes <= size && c->payload + m->payload_bytes <= data + size);
        require(m->input_bytes >= 1 && m->input_bytes <= a.params.chunk_bytes && m->token_count <= m->input_bytes);
        if (m->token_count == 0) require(m->payload_bytes == m->input_bytes);
        else decode_payload(c->payload, m->payload_bytes, m->token_count);
        if (m->payload_bytes) {
            volatile uint8_t ends = c->payload[0] ^ c->payload[m->payload_bytes - 1]; /* ASan checks both ends */
            (void)ends;
        }
        next += m->payload_bytes;
        input += m->input_bytes;
    }
    require(input == a.original_size);

    /* Every valid archive has exactly one encoding: writing what was read gives its bytes. */
    lmz_bytebuf again = {0};
    lmz_archive_writer *w = lmz_archive_writer_new(&a.params, to_buffer, &again);
    require(w != NULL);
    for (uint64_t i = 0; i < a.n_chunks; i++) require(lmz_archive_writer_add(w, &a.chunks[i].meta, a.chunks[i].payload) == 0);
    require(lmz_archive_writer_finish(w) == 0 && lmz_archive_writer_size(w) == size);
    require(again.len == size && memcmp(again.data, data, size) == 0);
    lmz_archive_writer_free(w);
    lmz_bytebuf_free(&again);

    uint8_t sha[32] = {0}, adapter[32] = {0};
    memcpy(sha, a.params.model_fp, LMZ_ARCHIVE_FP_BYTES);
    memcpy(adapter, a.params.adapter_fp, LMZ_ARCHIVE_FP_BYTES);
    require(lmz_archive_check_model(&a.params, "fuzz", sha, adapter) == 0);
    sha[5] ^= 1;
    require(lmz_archive_check_model(&a.params, "fuzz", sha, NULL) == -1);
    lmz_archive_close(&a);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_archive(data, size);
    if (size < 8) return 0;
    /* The same bytes with the header checksum (CRC-16 in the 2 bytes before header size,
     * byte 5) and the archive checksum (CRC-32 in the last 4 bytes) made to match. */
    uint8_t *copy = malloc(size);
    memcpy(copy, data, size);
    size_t header_size = copy[5];
    if (header_size >= 2 && header_size <= size) {
        uint16_t crc = lmz_archive_crc16(copy, header_size - 2);
        copy[header_size - 2] = (uint8_t)crc;
        copy[header_size - 1] = (uint8_t)(crc >> 8);
    }
    put32(copy + size - 4, lmz_crc32(copy, size - 4));
    check_archive(copy, size);
    free(copy);
    return 0;
}
