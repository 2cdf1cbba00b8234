/* test_qa.c — Question-Asking compression (src/qa/, lmz qa encode / decode): the stream
 * format and its bit writer / reader, question parsing, encode -> decode reproducing every
 * answer for both variants, coded and raw, across thread counts and batch compositions, the
 * coded bits' accounting, rejection of corrupted, truncated and mismatched streams, the
 * endpoint oracle against a loopback server (tests/qa_oracle_server.py), and the command
 * line. SmolLM2 is the small model; SmolLM2 or Gemma 3 plays the LLM, with short answers so
 * the runs stay quick; tests needing a model skip when it is not downloaded. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/qa/qa.h"
#include "../src/qa/qa_format.h"
#include "../src/qa/qa_internal.h"
#include "../src/util/crc32.h"
#include "../src/util/error.h"
#include "../src/util/json.h"
#include "model_fixture.h"
#include "test.h"
#include "test_files.h"

static const char *const problems[] = {
    "Tom has 3 apples and buys 4 more. How many apples does he have now?",
    "A book costs $12. Sara pays with a $20 bill. How much change does she get?",
};

/* ---------------- the format, without models ---------------- */

/* Writes a stream, parses it back, and checks every field and the body's bits, raw and
 * coded (with both per-problem modes); then every truncation, a flipped bit anywhere and a
 * trailing byte are refused. */
TEST(qa_format_roundtrip) {
    for (int coded = 0; coded < 2; coded++) {
        /* 3 problems, iterative Q=2 R=2: bit counts 1 (accepted at once), 3+1, 6 */
        uint32_t crc[3] = {11, 22, 33}, nbits[3] = {1, 4, 6};
        uint8_t bits[11];
        uint32_t freq[11];
        int owner[11], mode[3] = {1, 0, 1};
        uint32_t seed = 12345;
        for (int k = 0; k < 11; k++) {
            seed = seed * 1103515245u + 12345u;
            bits[k] = (seed >> 16) & 1;
            freq[k] = 1 + (seed >> 8) % (LMZ_QA_PROB_TOTAL - 1);
        }
        /* an interleaving like the protocol's (the reader only has to see the writer's order) */
        static const int order[11] = {0, 1, 2, 1, 1, 1, 2, 2, 2, 2, 2};
        memcpy(owner, order, sizeof order);
        lmz_bytebuf body = {0}, out = {0};
        lmz_qa_bitwriter w;
        lmz_qa_bitwriter_init(&w, coded, &body);
        bool seen[3] = {false, false, false};
        for (int k = 0; k < 11; k++) {
            if (coded && !seen[owner[k]]) CHECK(lmz_qa_bitwriter_mode(&w, mode[owner[k]]) == 0);
            seen[owner[k]] = true;
            CHECK(lmz_qa_bitwriter_put(&w, bits[k], mode[owner[k]], freq[k]) == 0);
        }
        CHECK(lmz_qa_bitwriter_finish(&w) == 0);
        lmz_qa_stream s = {LMZ_QA_VERSION, LMZ_QA_ITERATIVE, LMZ_QA_CODE, coded, 2, 2, 300,
                           {1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 3, 4, 5, 6, 7, 8}, 3, crc, nbits, body.data, body.len};
        CHECK(lmz_qa_stream_write(&s, &out) == 0);
        if (!coded) CHECK_EQ_INT(body.len, 2); /* 11 bits */
        lmz_qa_stream r;
        CHECKF(lmz_qa_stream_parse(&r, out.data, out.len) == 0, "%s", lmz_last_error());
        CHECK(r.variant == LMZ_QA_ITERATIVE && r.task == LMZ_QA_CODE && r.coded == coded && r.questions == 2 &&
              r.rounds == 2 && r.answer_tokens == 300 && r.n_problems == 3 && r.slm_fp[7] == 8);
        CHECK(r.problem_crc[2] == 33 && r.n_bits[1] == 4 && r.body_len == body.len);
        lmz_qa_bitreader rd;
        lmz_qa_bitreader_init(&rd, coded, r.body, r.body_len);
        int got_mode[3] = {-1, -1, -1};
        for (int k = 0; k < 11; k++) {
            if (coded && got_mode[owner[k]] < 0) got_mode[owner[k]] = lmz_qa_bitreader_mode(&rd);
            if (coded) CHECK_EQ_INT(got_mode[owner[k]], mode[owner[k]]);
            int b = lmz_qa_bitreader_get(&rd, coded ? got_mode[owner[k]] : 0, freq[k]);
            CHECKF(b == bits[k], "decision %d: %d != %d", k, b, bits[k]);
        }
        CHECKF(lmz_qa_bitreader_finish(&rd) == 0, "%s", lmz_last_error());
        if (coded) {
            /* read under other frequencies (as a receiver with another P(yes) would): an error,
             * or other bits */
            lmz_qa_bitreader_init(&rd, coded, r.body, r.body_len);
            int differ = 0, bad = 0;
            for (int k = 0; k < 11 && !bad; k++) {
                if (k < 3) bad = lmz_qa_bitreader_mode(&rd) < 0; /* problems 0, 1, 2 start at 0, 1, 2 */
                int b = lmz_qa_bitreader_get(&rd, mode[owner[k]], LMZ_QA_PROB_TOTAL - freq[k]);
                bad |= b < 0;
                differ |= b != bits[k];
            }
            CHECK(bad || differ || lmz_qa_bitreader_finish(&rd) != 0);
        }
        /* one decision more than was written: the body has run out (or its end is wrong) */
        lmz_qa_bitreader_init(&rd, coded, r.body, r.body_len);
        int extra = 0;
        for (int k = 0; k < 64 && extra >= 0; k++) extra = lmz_qa_bitreader_get(&rd, 0, 0);
        CHECK(extra < 0);
        lmz_qa_stream_free(&r);

        /* every truncation, every single-bit flip and a trailing byte: refused */
        for (size_t len = 0; len < out.len; len++) {
            CHECKF(lmz_qa_stream_parse(&r, out.data, len) == -1, "truncated to %zu accepted", len);
            CHECK(lmz_last_error()[0]);
        }
        for (size_t bit = 0; bit < out.len * 8; bit++) {
            out.data[bit / 8] ^= (uint8_t)(1 << bit % 8);
            int rc = lmz_qa_stream_parse(&r, out.data, out.len);
            out.data[bit / 8] ^= (uint8_t)(1 << bit % 8);
            CHECKF(rc == -1, "bit %zu flipped: accepted", bit);
        }
        CHECK(lmz_bytebuf_push(&out, 0) == 0);
        CHECK(lmz_qa_stream_parse(&r, out.data, out.len) == -1 && strstr(lmz_last_error(), "trailing"));
        CHECK(lmz_qa_stream_parse(&r, (const uint8_t *)"LMZX", 4) == -1 && strstr(lmz_last_error(), "magic"));
        lmz_bytebuf_free(&body);
        lmz_bytebuf_free(&out);
    }
    /* frequencies: floor, clamped, NaN as one half; code lengths */
    CHECK_EQ_INT(lmz_qa_prob_freq(0.0), 1);
    CHECK_EQ_INT(lmz_qa_prob_freq(1.0), LMZ_QA_PROB_TOTAL - 1);
    CHECK_EQ_INT(lmz_qa_prob_freq(0.5), LMZ_QA_PROB_TOTAL / 2);
    CHECK_EQ_INT(lmz_qa_prob_freq(NAN), LMZ_QA_PROB_TOTAL / 2);
    CHECK(fabs(lmz_qa_code_bits(LMZ_QA_PROB_TOTAL / 4, 1) - 2.0) < 1e-9);
    CHECK(fabs(lmz_qa_code_bits(LMZ_QA_PROB_TOTAL / 4, 0) - 0.4150374992788438) < 1e-9);
}

/* A numbered list gives its questions (markdown and bullets dropped, duplicates and questions
 * already asked skipped, cut at 300 bytes); too few are padded with the task's fallbacks,
 * never repeating one while unused ones remain; no numbered line: lines ending in '?'. */
TEST(qa_question_parsing) {
    char **q;
    const char *text = "1. Is the sum 7?\n2) **Is 3 + 4 = 7?**\n  - 3. Is the sum 7?\nSome chatter.\nQ4: Is Tom buying 4?\n";
    char *prior[1] = {"Is Tom buying 4?"};
    CHECK(qa_parse_questions(text, 5, LMZ_QA_MATH, prior, 1, &q) == 0);
    CHECK(!strcmp(q[0], "Is the sum 7?") && !strcmp(q[1], "Is 3 + 4 = 7?"));
    CHECK(!strcmp(q[2], "Is the final answer correct?") && !strcmp(q[3], "Is every calculation in the solution correct?"));
    for (int i = 0; i < 5; i++) free(q[i]);
    free(q);
    CHECK(qa_parse_questions("Is it right?\nNo list here.\nDoes it run?", 2, LMZ_QA_CODE, NULL, 0, &q) == 0);
    CHECK(!strcmp(q[0], "Is it right?") && !strcmp(q[1], "Does it run?"));
    for (int i = 0; i < 2; i++) free(q[i]);
    free(q);
    /* more than the ten fallbacks: they repeat, in order */
    CHECK(qa_parse_questions("", 12, LMZ_QA_GENERAL, NULL, 0, &q) == 0);
    CHECK(!strcmp(q[0], "Is the answer correct?") && !strcmp(q[10], q[0]) && strcmp(q[9], q[0]));
    for (int i = 0; i < 12; i++) free(q[i]);
    free(q);
    char long_q[400];
    memset(long_q, 'a', sizeof long_q);
    memcpy(long_q, "1. ", 3);
    long_q[sizeof long_q - 1] = 0;
    CHECK(qa_parse_questions(long_q, 1, LMZ_QA_MATH, NULL, 0, &q) == 0);
    CHECK_EQ_INT(strlen(q[0]), 300);
    free(q[0]);
    free(q);
}

/* ---------------- with models ---------------- */

static bool have(const char *name) {
    if (test_model_path(name)) return true;
    test_skip("model %s is not downloaded (python3 tools/fetch_models.py %s)", name, name);
    return false;
}

static void params(lmz_qa_params *p, enum lmz_qa_variant v, int coded) {
    lmz_qa_params_default(p, v, LMZ_QA_MATH);
    p->questions = v == LMZ_QA_ONESHOT ? 3 : 2;
    p->rounds = 2;
    p->answer_tokens = 40;
    p->coded = coded;
}

static lmz_qa_models slm_models(int threads) {
    return (lmz_qa_models){test_model("smollm2"), test_tokenizer("smollm2"), NULL, NULL, threads};
}

/* The oracle: Gemma 3 as a local "LLM" (a base model: plain prompts) for one-shot, SmolLM2
 * itself for iterative (it rejects these attempts, so the rounds run). */
static lmz_qa_oracle *oracle_for(enum lmz_qa_variant v, int threads) {
    const char *name = v == LMZ_QA_ONESHOT ? "gemma3" : "smollm2";
    lmz_qa_oracle *o = lmz_qa_oracle_local(test_model(name), test_tokenizer(name), LMZ_QA_MATH, threads);
    if (o) o->max_tokens = 32;
    return o;
}

static void free_results(lmz_qa_result *r, int n) {
    for (int i = 0; i < n; i++) lmz_qa_result_free(&r[i]);
}

static bool same_result(const lmz_qa_result *a, const lmz_qa_result *b) {
    if (strcmp(a->answer, b->answer) || strcmp(a->first_answer, b->first_answer) || a->n_bits != b->n_bits ||
        a->n_questions != b->n_questions || a->n_judgements != b->n_judgements || memcmp(a->bits, b->bits, (size_t)a->n_bits))
        return false;
    for (int k = 0; k < a->n_questions; k++)
        if (strcmp(a->questions[k], b->questions[k]) || a->question_bits[k] != b->question_bits[k]) return false;
    if ((a->p_yes == NULL) != (b->p_yes == NULL)) return false;
    return !a->p_yes || !memcmp(a->p_yes, b->p_yes, (size_t)a->n_bits * sizeof *a->p_yes);
}

/* Encodes the two problems; the stream into S. */
static int encode(enum lmz_qa_variant v, int coded, int threads, const char *const *probs, int n, lmz_qa_result *res,
                  lmz_bytebuf *s) {
    lmz_qa_params p;
    params(&p, v, coded);
    lmz_qa_models m = slm_models(threads);
    lmz_qa_oracle *o = oracle_for(v, threads);
    if (!o) return -1;
    int rc = lmz_qa_encode(&m, &p, o, probs, n, res, s);
    o->free(o);
    return rc;
}

/* Both variants, coded and raw: the encoder's stream and answers do not depend on the thread
 * count (-T 1 and -T 3; one combination each way, to keep the test short), and decoding with
 * another thread count reproduces every answer, question and bit; the bit accounting holds:
 * ideal bits = Σ -log2 P(decision) under the coder's P(yes), coded bits <= raw + 1 (the mode
 * bit), the body no longer than those bits plus the coder's flush; raw: one bit a decision. */
static void roundtrip(enum lmz_qa_variant v, int coded) {
    if (!have("smollm2") || (v == LMZ_QA_ONESHOT && !have("gemma3"))) return;
    lmz_qa_result enc[2] = {0}, dec[2] = {0};
    lmz_bytebuf s = {0};
    int enc_threads = v == LMZ_QA_ONESHOT ? 1 : 3, dec_threads = 4 - enc_threads;
    CHECKF(encode(v, coded, enc_threads, problems, 2, enc, &s) == 0, "%s", lmz_last_error());
    lmz_qa_models m = slm_models(dec_threads);
    CHECKF(lmz_qa_decode(&m, s.data, s.len, problems, 2, dec) == 0, "%s", lmz_last_error());
    lmz_qa_stream st;
    CHECK(lmz_qa_stream_parse(&st, s.data, s.len) == 0);
    double total = 0;
    for (int i = 0; i < 2; i++) {
        printf("    problem %d: %d bits, ideal %.3f, coded %.3f%s; answer %s\n", i, enc[i].n_bits, enc[i].ideal_bits,
               enc[i].coded_bits, enc[i].stored_raw ? " (raw)" : "",
               strcmp(enc[i].answer, enc[i].first_answer) ? "refined" : "unchanged");
        CHECKF(same_result(&enc[i], &dec[i]), "problem %d decodes differently:\n[%s]\n[%s]", i, enc[i].answer, dec[i].answer);
        CHECK(enc[i].reference && !dec[i].reference);
        CHECK_EQ_INT(st.n_bits[i], enc[i].n_bits);
        if (v == LMZ_QA_ONESHOT) CHECK(enc[i].n_bits == 3 && enc[i].n_questions == 3 && enc[i].n_judgements == 0);
        else CHECK(enc[i].n_judgements >= 1 && enc[i].n_bits == enc[i].n_judgements + enc[i].n_questions);
        if (coded) {
            double ideal = 0;
            for (int k = 0; k < enc[i].n_bits; k++) {
                CHECK(enc[i].p_yes[k] >= 0 && enc[i].p_yes[k] <= 1);
                ideal += -log2((double)(enc[i].bits[k] ? lmz_qa_prob_freq(enc[i].p_yes[k])
                                                       : LMZ_QA_PROB_TOTAL - lmz_qa_prob_freq(enc[i].p_yes[k])) /
                               LMZ_QA_PROB_TOTAL);
            }
            CHECKF(fabs(ideal - enc[i].ideal_bits) < 1e-9, "%.12f != %.12f", ideal, enc[i].ideal_bits);
            CHECK(enc[i].coded_bits <= enc[i].n_bits + 1 + 1e-9);
            CHECK(fabs(enc[i].coded_bits - 1 - (enc[i].stored_raw ? enc[i].n_bits : enc[i].ideal_bits)) < 1e-9);
        } else {
            CHECK(!enc[i].p_yes && enc[i].coded_bits == enc[i].n_bits && enc[i].ideal_bits == enc[i].n_bits);
        }
        total += enc[i].coded_bits;
    }
    if (coded) CHECKF(st.body_len * 8.0 <= total + 16, "body %zu bytes for %.2f bits", st.body_len, total);
    else CHECK_EQ_INT(st.body_len, (enc[0].n_bits + enc[1].n_bits + 7) / 8);
    lmz_qa_stream_free(&st);

    /* the other thread count encodes the same stream */
    lmz_qa_result again[2] = {0};
    lmz_bytebuf s2 = {0};
    CHECKF(encode(v, coded, dec_threads, problems, 2, again, &s2) == 0, "%s", lmz_last_error());
    CHECK(s2.len == s.len && !memcmp(s2.data, s.data, s.len));
    CHECK(same_result(&again[0], &enc[0]) && same_result(&again[1], &enc[1]));
    free_results(enc, 2);
    free_results(dec, 2);
    free_results(again, 2);
    lmz_bytebuf_free(&s);
    lmz_bytebuf_free(&s2);
}

TEST(qa_roundtrip_oneshot_raw) { roundtrip(LMZ_QA_ONESHOT, 0); }
TEST(qa_roundtrip_oneshot_coded) { roundtrip(LMZ_QA_ONESHOT, 1); }
TEST(qa_roundtrip_iterative_raw) { roundtrip(LMZ_QA_ITERATIVE, 0); }
TEST(qa_roundtrip_iterative_coded) { roundtrip(LMZ_QA_ITERATIVE, 1); }

/* A problem's run is the same whether it is encoded alone or in a batch with others. */
TEST(qa_batch_equals_single) {
    if (!have("smollm2") || !have("gemma3")) return;
    lmz_qa_result batch[2] = {0}, one[1] = {0};
    CHECKF(encode(LMZ_QA_ITERATIVE, 1, 2, problems, 2, batch, NULL) == 0, "%s", lmz_last_error());
    for (int i = 0; i < 2; i++) {
        CHECKF(encode(LMZ_QA_ITERATIVE, 1, 2, &problems[i], 1, one, NULL) == 0, "%s", lmz_last_error());
        bool same = same_result(&one[0], &batch[i]) && one[0].ideal_bits == batch[i].ideal_bits &&
                    !strcmp(one[0].reference, batch[i].reference);
        free_results(one, 1);
        CHECKF(same, "problem %d differs alone", i);
    }
    free_results(batch, 2);
}

/* The self oracle answers as the SLM believes: every decision is the likelier one, so a coded
 * decision costs at most a bit. */
TEST(qa_self_oracle) {
    if (!have("smollm2")) return;
    lmz_qa_models m = slm_models(2);
    lmz_qa_oracle *o = lmz_qa_oracle_self(&m, LMZ_QA_MATH);
    CHECK(o);
    o->max_tokens = 16;
    lmz_qa_params p;
    params(&p, LMZ_QA_ONESHOT, 1);
    lmz_qa_result r[1] = {0};
    int rc = lmz_qa_encode(&m, &p, o, problems, 1, r, NULL);
    o->free(o);
    CHECKF(rc == 0, "%s", lmz_last_error());
    for (int k = 0; k < r[0].n_bits; k++)
        CHECKF(r[0].bits[k] == (r[0].p_yes[k] > 0.5), "decision %d: %d with P(yes) %.4f", k, r[0].bits[k], r[0].p_yes[k]);
    CHECK(r[0].ideal_bits <= r[0].n_bits + 1e-9);
    free_results(r, 1);
}

/* Decoding refuses, with a message and without crashing: a flipped bit in the header or
 * anywhere (the CRC), every truncation, the wrong small model, a question model the stream
 * does not name, the wrong problems or problem count. A body bit flipped with the CRC made
 * to match again decodes to an error or to a well-formed different run. */
TEST(qa_decode_rejects) {
    if (!have("smollm2") || !have("gemma3")) return;
    lmz_qa_result enc[1] = {0}, dec[1] = {0};
    lmz_bytebuf s = {0};
    CHECKF(encode(LMZ_QA_ONESHOT, 0, 2, problems, 1, enc, &s) == 0, "%s", lmz_last_error());
    lmz_qa_models m = slm_models(2);
    for (size_t bit = 0; bit < s.len * 8; bit++) {
        s.data[bit / 8] ^= (uint8_t)(1 << bit % 8);
        int rc = lmz_qa_decode(&m, s.data, s.len, problems, 1, dec);
        s.data[bit / 8] ^= (uint8_t)(1 << bit % 8);
        CHECKF(rc == -1 && lmz_last_error()[0], "bit %zu flipped: accepted", bit);
    }
    for (size_t len = 0; len < s.len; len++)
        CHECKF(lmz_qa_decode(&m, s.data, len, problems, 1, dec) == -1, "truncated to %zu: accepted", len);
    CHECK(lmz_qa_decode(&m, s.data, s.len, problems, 1, dec) == 0);
    free_results(dec, 1);

    lmz_qa_models wrong = {test_model("gemma3"), test_tokenizer("gemma3"), NULL, NULL, 2};
    CHECK(lmz_qa_decode(&wrong, s.data, s.len, problems, 1, dec) == -1);
    CHECKF(strstr(lmz_last_error(), "needs the small model SmolLM2-135M-Instruct") &&
               strstr(lmz_last_error(), "the given one is Gemma 3 270M"), "%s", lmz_last_error());
    lmz_qa_models with_qm = {m.slm, m.slm_tok, test_model("gemma3"), test_tokenizer("gemma3"), 2};
    CHECK(lmz_qa_decode(&with_qm, s.data, s.len, problems, 1, dec) == -1 && strstr(lmz_last_error(), "drop the question model"));
    CHECK(lmz_qa_decode(&m, s.data, s.len, &problems[1], 1, dec) == -1 && strstr(lmz_last_error(), "problem 0 is not"));
    CHECK(lmz_qa_decode(&m, s.data, s.len, problems, 2, dec) == -1 && strstr(lmz_last_error(), "made for 1 problem"));

    /* body bits flipped, CRC fixed: an error, or a well-formed run with other bits */
    lmz_qa_stream st;
    CHECK(lmz_qa_stream_parse(&st, s.data, s.len) == 0);
    size_t body_at = (size_t)(st.body - s.data);
    lmz_qa_stream_free(&st);
    for (int bit = 0; bit < 3; bit++) {
        s.data[body_at] ^= (uint8_t)(0x80 >> bit);
        uint32_t crc = lmz_crc32(s.data, s.len - 4);
        for (int k = 0; k < 4; k++) s.data[s.len - 4 + k] = (uint8_t)(crc >> (8 * k));
        int rc = lmz_qa_decode(&m, s.data, s.len, problems, 1, dec);
        if (rc == 0) {
            CHECK(dec[0].answer && dec[0].bits[bit] != enc[0].bits[bit]);
            free_results(dec, 1);
        } else {
            CHECK(lmz_last_error()[0]);
        }
        s.data[body_at] ^= (uint8_t)(0x80 >> bit);
    }
    free_results(enc, 1);
    lmz_bytebuf_free(&s);
}

/* ---------------- the endpoint oracle and the command line ---------------- */

static char tmp_dir[TEST_PATH_MAX];
static char cli_err[8192];

static bool tmp(void) { return tmp_dir[0] || test_make_dir("qa", tmp_dir); }

static int run_lmz(const char *env, const char *fmt, ...) {
    char args[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return test_run_lmz(env, args, tmp_dir, cli_err, sizeof cli_err);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The string field KEY of line LINE of the JSONL file PATH (malloc'd), or NULL. */
static char *jsonl_string(const char *path, int line, const char *key) {
    size_t len;
    char *text = test_read_file(path, &len), *p = text, *out = NULL;
    for (int i = 0; p && i < line; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (p && *p) {
        lmz_json *j = lmz_json_parse(p, strcspn(p, "\n"));
        const lmz_json *v = lmz_json_get(j, key);
        if (v && v->type == LMZ_JSON_STRING && (out = malloc(v->len + 1))) memcpy(out, v->str, v->len + 1);
        lmz_json_free(j);
    }
    free(text);
    return out;
}

/* lmz qa encode --llm URL against the loopback server: the oracle's answers become the bits
 * (the server says yes exactly to questions with "correct" or "right"), requests carry
 * temperature 0, the model name and the key; decode (no LLM) gives back the answer; a server
 * that is down, too slow, answers 500 or a malformed reply is a clear error, exit status 1,
 * and no output file. */
TEST(qa_cli_endpoint) {
    if (!have("smollm2") || !test_have_lmz() || !tmp() || !test_have_python()) return;
    char log[4200], out[4300], ans[4300], back[4300], url[256], probs[4300];
    snprintf(log, sizeof log, "%s/requests.jsonl", tmp_dir);
    snprintf(out, sizeof out, "%s/ep.lmzq", tmp_dir);
    snprintf(ans, sizeof ans, "%s/ep.answers.jsonl", tmp_dir);
    snprintf(back, sizeof back, "%s/ep.back.jsonl", tmp_dir);
    snprintf(probs, sizeof probs, "%s/problems.jsonl", tmp_dir);
    static const char jsonl[] = "{\"id\": \"p1\", \"question\": \"Tom has 3 apples and buys 4 more. How many apples "
                                "does he have now?\"}\n\n{\"id\": 7, \"question\": \"What is 2 + 2?\"}\n";
    CHECK(test_write_file(probs, jsonl, sizeof jsonl - 1));
    test_server srv = {0};
    CHECKF(test_server_start("tests/qa_oracle_server.py", log, &srv), "the test server did not start");
#define URL(mode) (snprintf(url, sizeof url, "http://127.0.0.1:%d/" mode "/v1/chat/completions", srv.port), url)
    static const char env[] = "LMZ_QA_TEST_KEY=qa-key";
    int rc = run_lmz(env, "qa encode -m smollm2 --llm %s --llm-model big-model --llm-key-env LMZ_QA_TEST_KEY "
                          "--questions 3 --answer-tokens 32 -T 3 --problems %s -o %s --answers %s",
                     URL("good"), probs, out, ans);
    size_t len;
    char *requests = test_read_file(log, &len), *answers = test_read_file(ans, &len);
    bool logged = requests && strstr(requests, "\"auth\": \"Bearer qa-key\"") &&
                  strstr(requests, "\\\"model\\\": \\\"big-model\\\"") && strstr(requests, "\\\"temperature\\\": 0") &&
                  strstr(requests, "Question about the student's solution:");
    /* yes exactly where the question says "correct" or "right" */
    bool bits_ok = answers && strstr(answers, "\"id\": \"p1\"") && strstr(answers, "\"id\": 7") &&
                   strstr(answers, "\"reference\": \"The answer is 3 + 4 = 7.\\nFinal answer: 7\"");
    for (char *q = answers ? strstr(answers, "{\"q\": ") : NULL; q && bits_ok; q = strstr(q + 1, "{\"q\": ")) {
        char *end = strstr(q, "\"a\": ");
        bits_ok = end != NULL;
        if (!bits_ok) break;
        char save = *end;
        *end = 0;
        char lower[1024];
        size_t k = 0;
        for (; q[k] && k + 1 < sizeof lower; k++) lower[k] = (char)(q[k] >= 'A' && q[k] <= 'Z' ? q[k] + 32 : q[k]);
        lower[k] = 0;
        *end = save;
        bool yes = strstr(lower, "correct") || strstr(lower, "right");
        bits_ok = !strncmp(end + 5, yes ? "true" : "false", yes ? 4 : 5);
    }
    free(requests);
    free(answers);
    if (rc || !logged || !bits_ok) test_server_stop(&srv);
    CHECKF(rc == 0, "exit status %d: %s", rc, cli_err);
    CHECKF(strstr(cli_err, "2 problems, 6 decision bits"), "%s", cli_err);
    CHECK(logged);
    CHECK(bits_ok);

    /* decode: JSONL with index, id and the answers the encoder wrote */
    rc = run_lmz("", "qa decode --problems %s %s -o %s", probs, out, back);
    bool same = rc == 0;
    for (int i = 0; i < 2 && same; i++) {
        char *a = jsonl_string(ans, i, "answer"), *b = jsonl_string(back, i, "answer"), *id = jsonl_string(back, i, "id");
        same = a && b && !strcmp(a, b) && (i == 1 || (id && !strcmp(id, "p1")));
        free(a);
        free(b);
        free(id);
    }
    if (!same) test_server_stop(&srv);
    CHECKF(same, "decode should give the encoder's answers (exit %d: %s)", rc, cli_err);

    /* iterative, coded: the judge accepts the apples problem at once (1 bit) and rejects the
     * other, which then takes 2 questions (1 + 2 bits) */
    rc = run_lmz("", "qa encode -m smollm2 --llm %s --variant iterative --rounds 1 --questions 2 --coded "
                     "--answer-tokens 32 --problems %s -o %s --answers %s -f", URL("good"), probs, out, ans);
    if (rc) test_server_stop(&srv);
    CHECKF(rc == 0 && strstr(cli_err, "2 problems, 4 decision bits"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa decode --problems %s %s -o %s -f", probs, out, back);
    same = rc == 0;
    for (int i = 0; i < 2 && same; i++) {
        char *a = jsonl_string(ans, i, "answer"), *b = jsonl_string(back, i, "answer");
        same = a && b && !strcmp(a, b);
        free(a);
        free(b);
    }
    if (!same) test_server_stop(&srv);
    CHECKF(same, "iterative: decode should give the encoder's answers (exit %d: %s)", rc, cli_err);

    /* failures: a clear message, exit 1, no output file */
    remove(out);
    remove(ans);
    static const struct {
        const char *mode, *needle;
    } bad[] = {
        {"slow", "no complete reply from 127.0.0.1"},
        {"malformed", "the reply is not JSON"},
        {"nochoices", "the reply has no choices"},
        {"error500", "answered HTTP 500: the model crashed"},
    };
    bool all_ok = true;
    for (size_t i = 0; i < sizeof bad / sizeof *bad && all_ok; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/%s/v1/chat/completions", srv.port, bad[i].mode);
        rc = run_lmz("", "qa encode -m smollm2 --llm %s --llm-timeout 2 --questions 2 --answer-tokens 8 --problem 'What is 2 + 2?' "
                         "-o %s --answers %s", url, out, ans);
        printf("    %s: exit %d: %.*s", bad[i].mode, rc, (int)strcspn(cli_err, "\n") + 1, cli_err);
        all_ok = rc == 1 && strstr(cli_err, bad[i].needle) && !exists(out) && !exists(ans);
        if (!all_ok) printf("    expected exit 1, '%s' and no output\n", bad[i].needle);
    }
    test_server_stop(&srv);
    CHECK(all_ok);
    /* nothing listening (the server is gone: its port refuses) */
    rc = run_lmz("", "qa encode -m smollm2 --llm %s --questions 2 --answer-tokens 8 --problem 'What is 2 + 2?' -o %s",
                 URL("good"), out);
    CHECKF(rc == 1 && strstr(cli_err, "Connection refused") && !exists(out), "exit %d: %s", rc, cli_err);
#undef URL
}

/* The command line with a local oracle: one problem through --problem, decode to a file gives
 * the answer's exact bytes; -T does not change the stream; help, bad options and a wrong
 * stream are refused with a message and status 1 or 2; an existing output is kept without -f. */
TEST(qa_cli_local) {
    if (!have("smollm2") || !test_have_lmz() || !tmp()) return;
    char out[4300], out3[4300], ans[4300], back[4300];
    snprintf(out, sizeof out, "%s/local.lmzq", tmp_dir);
    snprintf(out3, sizeof out3, "%s/local3.lmzq", tmp_dir);
    snprintf(ans, sizeof ans, "%s/local.answers.jsonl", tmp_dir);
    snprintf(back, sizeof back, "%s/local.txt", tmp_dir);
    static const char common[] = "qa encode -m smollm2 --llm smollm2 --llm-tokens 24 --variant iterative --questions 2 "
                                 "--rounds 1 --coded --answer-tokens 32 --problem 'What is 2 + 2?'";
    int rc = run_lmz("", "%s -T 1 -o %s --answers %s", common, out, ans);
    CHECKF(rc == 0, "exit %d: %s", rc, cli_err);
    CHECKF(strstr(cli_err, "1 problem,"), "%s", cli_err);
    rc = run_lmz("", "%s -T 3 -o %s", common, out3);
    CHECKF(rc == 0 && test_same_file(out, out3), "-T 3 should write the same stream (exit %d: %s)", rc, cli_err);
    rc = run_lmz("", "qa decode --problem 'What is 2 + 2?' -o %s %s", back, out);
    CHECKF(rc == 0, "exit %d: %s", rc, cli_err);
    size_t len;
    char *got = test_read_file(back, &len), *want = jsonl_string(ans, 0, "answer");
    bool same = got && want && len == strlen(want) && !memcmp(got, want, len);
    free(got);
    free(want);
    CHECKF(same, "the decoded answer is not the encoder's");

    /* refusals */
    CHECK(run_lmz("", "qa --help >/dev/null") == 0);
    CHECK(run_lmz("", "qa encode --help >/dev/null") == 0);
    CHECK(run_lmz("", "qa decode --help >/dev/null") == 0);
    rc = run_lmz("", "%s -T 1 -o %s", common, out);
    CHECKF(rc == 1 && strstr(cli_err, "already exists"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa decode --problem 'What is 3 + 3?' %s", out);
    CHECKF(rc == 1 && strstr(cli_err, "problem 0 is not the one"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa decode -m gemma3 --problem 'What is 2 + 2?' %s", out);
    CHECKF(rc == 1 && strstr(cli_err, "needs the small model SmolLM2"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa decode --problem 'What is 2 + 2?' %s", ans);
    CHECKF(rc == 1 && strstr(cli_err, "not an lmz QA stream"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa encode --llm smollm2 --problem x --variant twice -o %s/x.lmzq", tmp_dir);
    CHECKF(rc == 2 && strstr(cli_err, "--variant wants oneshot or iterative"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa decode --coded --problem x %s", out);
    CHECKF(rc == 2 && strstr(cli_err, "reads the protocol's parameters from the stream"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa encode --problem x -o %s/x.lmzq", tmp_dir);
    CHECKF(rc == 2 && strstr(cli_err, "--llm"), "exit %d: %s", rc, cli_err);
    rc = run_lmz("", "qa frobnicate");
    CHECKF(rc == 2 && strstr(cli_err, "unknown qa command"), "exit %d: %s", rc, cli_err);
}
