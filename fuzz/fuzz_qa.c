/* fuzz_qa.c — libFuzzer target for the QA stream reader (src/qa/qa_format.c; built and run by
 * fuzz/run.sh, seeded from tests/fixtures/qa/). Any input must be refused with a message or
 * parse into a header whose every field is in range and whose body lies inside the input;
 * writing back what was read must give the input's exact bytes (one encoding per stream);
 * and the decision-bit reader, driven over the body the way the decoder drives it (problems
 * in turn, a mode bit before each coded problem's first decision, P(yes) frequencies from a
 * fixed sequence), must return only 0, 1 or an error with a message, and must end cleanly or
 * with an error. Mutations rarely keep the trailing CRC-32 right, so each input is also tried
 * with it recomputed, which lets the fuzzer reach the checks behind it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/coder/bytebuf.h"
#include "../src/qa/qa_format.h"
#include "../src/util/crc32.h"
#include "../src/util/error.h"

static void require(int cond) {
    if (!cond) abort();
}

static void read_bits(const lmz_qa_stream *s) {
    lmz_qa_bitreader r;
    lmz_qa_bitreader_init(&r, s->coded, s->body, s->body_len);
    uint32_t n = s->n_problems < 64 ? s->n_problems : 64;
    uint32_t left[64];
    int mode[64];
    for (uint32_t i = 0; i < n; i++) left[i] = s->n_bits[i], mode[i] = -1;
    uint32_t x = 0x9e3779b9u;
    for (int active = 1, guard = 0; active && guard < 4096; guard++) {
        active = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!left[i]) continue;
            active = 1;
            if (s->coded && mode[i] < 0) {
                mode[i] = lmz_qa_bitreader_mode(&r);
                if (mode[i] < 0) {
                    require(lmz_last_error()[0] != 0);
                    return;
                }
                require(mode[i] == 0 || mode[i] == 1);
            }
            x = x * 1664525u + 1013904223u;
            uint32_t f = 1 + (x >> 8) % (LMZ_QA_PROB_TOTAL - 1);
            int b = lmz_qa_bitreader_get(&r, s->coded ? mode[i] : 0, f);
            if (b < 0) {
                require(lmz_last_error()[0] != 0);
                return;
            }
            require(b == 0 || b == 1);
            left[i]--;
        }
    }
    int rc = lmz_qa_bitreader_finish(&r);
    require(rc == 0 || (rc == -1 && lmz_last_error()[0] != 0));
}

static void check(const uint8_t *data, size_t size) {
    lmz_clear_error();
    lmz_qa_stream s;
    if (lmz_qa_stream_parse(&s, data, size) != 0) {
        require(lmz_last_error()[0] != 0);
        require(s.problem_crc == NULL && s.n_bits == NULL);
        return;
    }
    require(s.version == LMZ_QA_VERSION && (s.variant == 0 || s.variant == 1) && s.task >= 0 && s.task <= 2);
    require(s.coded == 0 || s.coded == 1);
    require(s.questions >= 1 && s.questions <= LMZ_QA_MAX_QUESTIONS && s.rounds >= 1 && s.rounds <= LMZ_QA_MAX_ROUNDS);
    require(s.answer_tokens >= 1 && s.answer_tokens <= LMZ_QA_MAX_ANSWER_TOKENS);
    require(s.n_problems >= 1 && s.n_problems <= LMZ_QA_MAX_PROBLEMS);
    for (uint32_t i = 0; i < s.n_problems; i++)
        require(s.n_bits[i] >= 1 && (int)s.n_bits[i] <= lmz_qa_max_bits(s.variant, s.questions, s.rounds));
    require(s.body >= data && s.body + s.body_len + 4 == data + size);
    if (s.body_len) {
        volatile uint8_t ends = s.body[0] ^ s.body[s.body_len - 1]; /* ASan checks both ends */
        (void)ends;
    }
    /* one encoding per stream */
    lmz_bytebuf again = {0};
    require(lmz_qa_stream_write(&s, &again) == 0);
    require(again.len == size && memcmp(again.data, data, size) == 0);
    lmz_bytebuf_free(&again);
    read_bits(&s);
    lmz_qa_stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    if (size < 8) return 0;
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    uint32_t crc = lmz_crc32(copy, size - 4);
    for (int k = 0; k < 4; k++) copy[size - 4 + k] = (uint8_t)(crc >> (8 * k));
    check(copy, size);
    free(copy);
    return 0;
}
