/* test_symbols.c — any bytes become symbols whose bytes concatenate back to the input;
 * clean text uses no escape, and everything else escapes only what it must. */
#include <stdlib.h>
#include <string.h>

#include "../src/codec/symbols.h"
#include "model_fixture.h"
#include "test.h"

/* Round trip of one input; returns the number of escapes (or -1 after a failure). */
static long round_trip(const lmz_tokenizer *tok, const uint8_t *in, size_t len) {
    int32_t *syms;
    size_t n;
    if (lmz_bytes_to_symbols(tok, in, len, &syms, &n)) {
        test_fail(__FILE__, __LINE__, "symbols failed");
        return -1;
    }
    uint8_t *back = malloc(len + 1);
    size_t pos = 0;
    long escapes = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t piece[512];
        size_t k = lmz_symbol_bytes(tok, syms[i], piece, sizeof piece);
        if (pos + k > len || memcmp(in + pos, piece, k)) {
            test_fail(__FILE__, __LINE__, "symbol %zu does not match the input at byte %zu", i, pos);
            free(back);
            free(syms);
            return -1;
        }
        pos += k;
        escapes += lmz_is_escape(syms[i]);
    }
    free(back);
    free(syms);
    if (pos != len) {
        test_fail(__FILE__, __LINE__, "symbols cover %zu of %zu bytes", pos, len);
        return -1;
    }
    return escapes;
}

static void check_model(const char *name) {
    lmz_tokenizer *tok = test_tokenizer(name);
    if (!tok) return;
    const char *clean = "Hello, world! Ça va? 日本語のテキスト 🙂👩‍👩‍👧 \t\r\n  spaces   end";
    CHECK_EQ_INT(round_trip(tok, (const uint8_t *)clean, strlen(clean)), 0);
    CHECK_EQ_INT(round_trip(tok, (const uint8_t *)"", 0), 0);
    /* invalid UTF-8: exactly the bad bytes are escaped */
    const uint8_t bad[] = {'a', 'b', 0xff, 'c', 0xc3, '(', 0xe2, 0x82, 'x', 0xed, 0xa0, 0x80, 0xc0, 0xaf, 'z'};
    long esc = round_trip(tok, bad, sizeof bad);
    CHECKF(esc == 9, "%s: %ld escapes for 9 invalid bytes", name, esc);
    /* every byte value, and every pair of a control byte with text */
    uint8_t all[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    CHECK(round_trip(tok, all, sizeof all) >= 128); /* 0x80..0xff alone are invalid UTF-8 */
    for (int b = 0; b < 32; b++) {
        uint8_t s[8] = {'o', 'k', (uint8_t)b, ' ', 'y', 'e', 's', '.'};
        CHECK(round_trip(tok, s, sizeof s) >= 0);
    }
    /* random binary */
    uint8_t rnd[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) x = x * 1103515245u + 12345u, rnd[i] = (uint8_t)(x >> 16);
    CHECK(round_trip(tok, rnd, sizeof rnd) > 0);
    int32_t start = lmz_tokenizer_find(tok, "<|endoftext|>");
    int32_t esc_id = lmz_escape_token(tok, start);
    CHECK(esc_id >= 0 && esc_id != start && lmz_tokenizer_token_type(tok, esc_id) == LMZ_TOKEN_CONTROL);
}

TEST(symbols_round_trip_any_bytes_smollm2) { check_model("smollm2"); }
TEST(symbols_round_trip_any_bytes_gemma3) { check_model("gemma3"); }
