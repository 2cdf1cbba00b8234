/* test_generate.c — generation: chat templates, sampling, stop strings, and determinism
 * (the same text for any thread count and batch composition). */
#include <stdlib.h>
#include <string.h>

#include "../src/generate/chat.h"
#include "../src/generate/generate.h"
#include "../src/generate/sampler.h"
#include "../src/util/error.h"
#include "model_fixture.h"
#include "test.h"

TEST(generate_chatml_template_with_default_system_prompt) {
    lmz_model *m = test_model("smollm2");
    if (!m) return;
    CHECK(lmz_chat_detect(m->file) == LMZ_CHAT_CHATML);
    lmz_chat_message msg = {"user", "Hi!"};
    char *s = lmz_chat_render(m->file, &msg, 1);
    CHECK(s);
    const char *want = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                       "<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n";
    CHECKF(!strcmp(s, want), "rendered: %s", s);
    free(s);
    lmz_chat_message two[2] = {{"system", "Be brief."}, {"user", "Hi!"}};
    s = lmz_chat_render(m->file, two, 2);
    CHECK(s && !strcmp(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
                          "<|im_start|>assistant\n"));
    free(s);
}

TEST(generate_sampler_is_deterministic_and_respects_limits) {
    float logits[100];
    for (int i = 0; i < 100; i++) logits[i] = (float)((i * 37) % 100) / 10.0f;
    lmz_sampler *s = lmz_sampler_create(100);
    CHECK(s);
    lmz_sampling greedy = {0.0f, 40, 0.95f}, k1 = {1.0f, 1, 1.0f}, k3 = {5.0f, 3, 1.0f};
    lmz_rng r1, r2;
    lmz_rng_seed(&r1, 42);
    CHECK_EQ_INT(lmz_sample(s, logits, &greedy, &r1), 27); /* (27*37)%100 = 99: the largest */
    CHECK_EQ_INT(lmz_sample(s, logits, &k1, &r1), 27);
    /* top-3 at high temperature: only the three best ever come out, all of them do */
    int seen[100] = {0};
    for (int i = 0; i < 300; i++) seen[lmz_sample(s, logits, &k3, &r1)]++;
    int distinct = 0;
    for (int i = 0; i < 100; i++) distinct += seen[i] > 0;
    CHECK_EQ_INT(distinct, 3);
    CHECK(seen[81] && seen[54] && seen[27]);
    /* same seed, same draws */
    lmz_rng_seed(&r1, 7);
    lmz_rng_seed(&r2, 7);
    lmz_sampling t = {0.9f, 0, 0.9f};
    for (int i = 0; i < 50; i++) CHECK(lmz_sample(s, logits, &t, &r1) == lmz_sample(s, logits, &t, &r2));
    lmz_sampler_free(s);
}

/* Generates for PROMPTS with THREADS threads; returns malloc'd concatenation of outputs. */
static char *run(lmz_model *m, lmz_tokenizer *tok, const char *const *prompts, int n, int threads,
                 const lmz_gen_params *gp) {
    int32_t *ids[4];
    size_t lens[4];
    lmz_gen_output out[4];
    for (int i = 0; i < n; i++)
        if (lmz_tokenize(tok, prompts[i], strlen(prompts[i]), true, false, &ids[i], &lens[i])) return NULL;
    lmz_ctx *c = lmz_ctx_create(m, 128, n, threads);
    if (!c || lmz_generate(c, tok, (const int32_t *const *)ids, lens, n, gp, out)) return NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += out[i].len + 1;
    char *all = calloc(total + 1, 1);
    for (int i = 0; i < n; i++) {
        strcat(all, out[i].text);
        strcat(all, "|");
        lmz_gen_output_free(&out[i]);
        free(ids[i]);
    }
    lmz_ctx_free(c);
    return all;
}

static void same_text(const char *model_name) {
    lmz_model *m = test_model(model_name);
    lmz_tokenizer *tok = test_tokenizer(model_name);
    if (!m || !tok) return;
    const char *prompts[3] = {"The history of the printing press", "def fibonacci(n):", "Three reasons to learn C:"};
    lmz_gen_params sampled = {24, {0.8f, 40, 0.95f}, 1234, NULL, 0};
    lmz_gen_params greedy = {24, {0.0f, 40, 0.95f}, 0, NULL, 0};
    const lmz_gen_params *params[2] = {&greedy, &sampled};
    for (int pi = 0; pi < 2; pi++) {
        char *ref = run(m, tok, prompts, 3, 1, params[pi]);
        CHECKF(ref, "%s", lmz_last_error());
        CHECKF(strlen(ref) > 3 * 10, "too little text: %s", ref);
        for (int threads = 2; threads <= 8; threads *= 2) {
            char *got = run(m, tok, prompts, 3, threads, params[pi]);
            CHECK(got);
            CHECKF(!strcmp(got, ref), "%d threads:\n%s\nvs 1 thread:\n%s", threads, got, ref);
            free(got);
        }
        /* the second prompt alone in slot 0 gives what it gave in slot 1 when greedy */
        if (pi == 0) {
            char *alone = run(m, tok, prompts + 1, 1, 2, params[pi]);
            CHECK(alone);
            const char *second = strchr(ref, '|') + 1;
            CHECKF(!strncmp(second, alone, strlen(alone)), "alone: %s\nin batch: %s", alone, second);
            free(alone);
        }
        free(ref);
    }
}

TEST(generate_same_text_for_any_thread_count_and_batch_smollm2) { same_text("smollm2"); }
TEST(generate_same_text_for_any_thread_count_and_batch_gemma3) { same_text("gemma3"); }

TEST(generate_stops_at_stop_string_and_limit) {
    lmz_model *m = test_model("smollm2");
    lmz_tokenizer *tok = test_tokenizer("smollm2");
    if (!m || !tok) return;
    const char *prompt = "1, 2, 3, 4, 5, 6,";
    const char *stops[1] = {" 9"};
    lmz_gen_params gp = {40, {0.0f, 40, 0.95f}, 0, stops, 1};
    int32_t *ids;
    size_t n;
    CHECK(!lmz_tokenize(tok, prompt, strlen(prompt), true, false, &ids, &n));
    lmz_ctx *c = lmz_ctx_create(m, 128, 1, 2);
    lmz_gen_output out;
    const int32_t *p = ids;
    CHECK(!lmz_generate(c, tok, &p, &n, 1, &gp, &out));
    CHECKF(out.reason == LMZ_STOP_STRING && !strcmp(out.text, " 7, 8,"), "got '%s' (%s)", out.text,
           lmz_stop_reason_name(out.reason));
    lmz_gen_output_free(&out);
    gp.n_stop = 0;
    gp.max_tokens = 5;
    CHECK(!lmz_generate(c, tok, &p, &n, 1, &gp, &out));
    CHECK(out.reason == LMZ_STOP_LENGTH && out.n_tokens == 5);
    lmz_gen_output_free(&out);
    lmz_ctx_free(c);
    free(ids);
}

/* lmz_generate_each: prompts with different parameters in one batch each give what
 * lmz_generate gives them alone (at the stream index they name); a prompt whose cancel flag
 * is set stops before its first token. */
TEST(generate_each_mixed_parameters_equal_separate_runs) {
    lmz_model *m = test_model("smollm2");
    lmz_tokenizer *tok = test_tokenizer("smollm2");
    if (!m || !tok) return;
    const char *texts[3] = {"The history of the printing press", "def fibonacci(n):", "Three reasons to learn C:"};
    const char *stops[1] = {"\n"};
    lmz_gen_params gp[3] = {{12, {0.0f, 0, 1.0f}, 0, NULL, 0},
                            {20, {0.9f, 40, 0.95f}, 99, stops, 1},
                            {16, {0.7f, 0, 0.9f}, 5, NULL, 0}};
    int32_t *ids[3];
    size_t lens[3];
    for (int i = 0; i < 3; i++) CHECK(!lmz_tokenize(tok, texts[i], strlen(texts[i]), true, false, &ids[i], &lens[i]));
    /* alone: prompt i as the only prompt, except that prompt 2 runs as the second of two
     * copies (stream 1) */
    lmz_gen_output alone[3], pair[2];
    lmz_ctx *c = lmz_ctx_create(m, 128, 4, 2);
    CHECK(c);
    for (int i = 0; i < 2; i++) {
        const int32_t *p = ids[i];
        CHECK(!lmz_generate(c, tok, &p, &lens[i], 1, &gp[i], &alone[i]));
    }
    const int32_t *two[2] = {ids[2], ids[2]};
    size_t two_lens[2] = {lens[2], lens[2]};
    CHECK(!lmz_generate(c, tok, two, two_lens, 2, &gp[2], pair));
    alone[2] = pair[1];
    lmz_gen_output_free(&pair[0]);
    /* together, in another order, with a fourth prompt cancelled from the start */
    atomic_int off, on;
    atomic_init(&off, 0);
    atomic_init(&on, 1);
    const int32_t *prompts[4] = {ids[2], ids[0], ids[1], ids[0]};
    size_t plens[4] = {lens[2], lens[0], lens[1], lens[0]};
    const lmz_gen_params *params[4] = {&gp[2], &gp[0], &gp[1], &gp[0]};
    int stream[4] = {1, 0, 0, 0};
    const atomic_int *cancel[4] = {&off, NULL, &off, &on};
    lmz_gen_output out[4];
    CHECKF(!lmz_generate_each(c, tok, prompts, plens, 4, params, stream, cancel, out), "%s", lmz_last_error());
    static const int which[3] = {1, 2, 0}; /* out[which[i]] is prompt i */
    for (int i = 0; i < 3; i++) {
        const lmz_gen_output *o = &out[which[i]];
        CHECKF(o->len == alone[i].len && !memcmp(o->text, alone[i].text, o->len) && o->reason == alone[i].reason &&
                   o->n_tokens == alone[i].n_tokens,
               "prompt %d: batched '%s' (%s), alone '%s' (%s)", i, o->text, lmz_stop_reason_name(o->reason),
               alone[i].text, lmz_stop_reason_name(alone[i].reason));
        CHECK(o->n_tokens > 0);
    }
    CHECK(out[3].reason == LMZ_STOP_CANCELLED && out[3].n_tokens == 0 && out[3].len == 0);
    for (int i = 0; i < 4; i++) lmz_gen_output_free(&out[i]);
    for (int i = 0; i < 3; i++) lmz_gen_output_free(&alone[i]), free(ids[i]);
    lmz_ctx_free(c);
}
