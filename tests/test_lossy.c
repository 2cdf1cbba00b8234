/* test_lossy.c — lossy compression by succinct rewrite (lmz --lossy): the LOSSY archive
 * flag, the choice among rewrites, determinism of the whole path across thread counts,
 * and the remote rewriter against a loopback test server (tests/rewriter_server.py). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/codec/codec.h"
#include "../src/coder/bytebuf.h"
#include "../src/util/error.h"
#include "test.h"
#include "tiny_model.h"

static int sink_append(void *ctx, const void *data, size_t len) { return lmz_bytebuf_append(ctx, data, len); }
static int write_append(void *ctx, const uint8_t *data, size_t len) { return lmz_bytebuf_append(ctx, data, len); }

static const char sample_text[] =
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May? She sold 48/2 = 24 clips in May.\n";

/* Codes TEXT with the tiny model into OUT, marked lossy or not. */
static int code_text(bool lossy, const char *text, int threads, lmz_bytebuf *out) {
    lmz_codec c;
    if (lmz_codec_init(&c, tiny_model(), tiny_tokenizer(), tiny_model_sha256(), NULL, 0, threads, 0, 0, 0)) return -1;
    c.lossy = lossy;
    lmz_memory_input in = {(const uint8_t *)text, strlen(text), 0};
    lmz_codec_stats st;
    int rc = lmz_compress(&c, lmz_read_memory, &in, sink_append, out, &st, NULL, NULL);
    lmz_codec_free(&c);
    return rc;
}

/* A lossy archive is the ordinary archive of its text with flag bit 2 set: the same bytes but
 * the flags byte and the two checksums, and it decodes to the text. */
TEST(lossy_archive_flag) {
    if (!tiny_model()) return;
    lmz_bytebuf plain = {0}, lossy = {0}, back = {0};
    lmz_archive a = {0};
    CHECK(code_text(false, sample_text, 1, &plain) == 0 && code_text(true, sample_text, 1, &lossy) == 0);
    CHECK_EQ_INT(plain.len, lossy.len);
    CHECK_EQ_INT(plain.data[6], 0);
    CHECK_EQ_INT(lossy.data[6], LMZ_ARCHIVE_LOSSY);
    size_t header = plain.data[5];
    for (size_t i = 0; i < plain.len; i++) {
        bool checksum = (i >= header - 2 && i < header) || i >= plain.len - 4;
        if (i != 6 && !checksum) CHECKF(plain.data[i] == lossy.data[i], "byte %zu differs", i);
    }
    CHECKF(lmz_archive_open(&a, lossy.data, lossy.len) == 0, "%s", lmz_last_error());
    CHECK(a.params.flags == LMZ_ARCHIVE_LOSSY);
    lmz_codec c;
    CHECK(lmz_codec_init(&c, tiny_model(), tiny_tokenizer(), tiny_model_sha256(), NULL, 0, 1, 0, 0, 0) == 0);
    lmz_codec_stats st;
    int rc = lmz_decompress(&c, &a, write_append, &back, &st, NULL, NULL);
    lmz_codec_free(&c);
    lmz_archive_close(&a);
    CHECKF(rc == 0, "%s", lmz_last_error());
    CHECK(back.len == strlen(sample_text) && !memcmp(back.data, sample_text, back.len));
    lmz_bytebuf_free(&plain);
    lmz_bytebuf_free(&lossy);
    lmz_bytebuf_free(&back);
}
