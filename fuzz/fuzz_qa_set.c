/* fuzz_qa_set.c — libFuzzer target for the `lmz qa bench` set loader and the answer
 * graders' text handling (src/qa/grade.c; built and run by fuzz/run.sh, seeded from
 * tests/fixtures/qa_set/: a few lines of each set as tools/make_qa_sets.py writes them and
 * a model-like answer).
 *
 * Any input must either be rejected with a message or load into a set whose every string
 * is present, whose ids are unique and non-empty, and whose code problems have tests. The
 * input, as text, then goes through the math extraction, normalization and comparison and
 * the code extraction (not the sandbox: nothing is run): they must not crash, and an
 * extracted answer must equal itself. ASan/UBSan/LeakSanitizer report the rest; abort()
 * marks a broken invariant. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/qa/grade.h"
#include "../src/util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lmz_qa_set s;
    if (lmz_qa_set_parse((const char *)data, size, &s) == 0) {
        if (s.n <= 0) abort();
        for (int i = 0; i < s.n; i++) {
            const lmz_qa_item *it = &s.items[i];
            if (!it->id || !it->problem || !it->gold || !it->tests || !it->entry_point || !it->prefix) abort();
            if (!*it->id || (it->task == LMZ_QA_CODE && !*it->tests)) abort();
            for (int j = 0; j < i; j++)
                if (!strcmp(s.items[j].id, it->id)) abort();
            char *prog = lmz_qa_code_program(it, it->gold);
            if (!prog) abort();
            free(prog);
        }
        lmz_qa_set_free(&s);
    } else if (!lmz_last_error()[0]) {
        abort();
    }
    /* the same bytes as an answer */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char *x = lmz_qa_math_extract(text);
    if (x) {
        char *n = lmz_qa_math_normalize(x);
        if (!n) abort();
        if (*n && !lmz_qa_math_equal(x, x)) abort();
        (void)lmz_qa_math_equal(text, x);
        free(n);
        free(x);
    }
    char *code = lmz_qa_code_extract(text, "f");
    if (!code || strlen(code) > size) abort();
    free(code);
    free(text);
    return 0;
}
