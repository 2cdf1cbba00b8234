/* test_logits.c — logit parity with llama.cpp (fixtures from tools/ref/make_logit_fixtures.py).
 *
 * llama.cpp is not bit-stable itself: with flash attention on and off it disagrees on the
 * argmax of 2–4% of these positions, all near-ties, and its logits move by up to ~1–3.
 * The fixture holds both of its runs, so the test measures that noise floor and holds lmz
 * to it: argmax agreement at least llama.cpp's own minus half a point, >= 99% where the
 * top two logits are >= 0.25 apart, mean KL and max |delta logit| within twice llama.cpp's
 * own (plus a small margin). A wrong rope, norm, scale or kernel moves these by orders of
 * magnitude. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/probs/probs.h"
#include "../src/util/fp16.h"
#include "model_fixture.h"
#include "test.h"

#define DECISIVE_MARGIN 0.25f

typedef struct {
    const uint8_t *p, *end;
} reader;

static int take(reader *r, void *out, size_t n) {
    if ((size_t)(r->end - r->p) < n) return -1;
    memcpy(out, r->p, n);
    r->p += n;
    return 0;
}

/* KL(P || Q) in bits over the K tokens with logits lp (normalizer lse_p) and lq (lse_q),
 * plus one bucket for the rest of the vocabulary; tokens with a NaN logit are skipped. */
static double kl_bits(const float *lp, double lse_p, const float *lq, double lse_q, int k) {
    double p_top = 0, q_top = 0, kl = 0;
    for (int i = 0; i < k; i++) {
        if (lq[i] != lq[i]) continue;
        double p = exp((double)lp[i] - lse_p), q = exp((double)lq[i] - lse_q);
        p_top += p;
        q_top += q;
        if (p > 0 && q > 0) kl += p * log(p / q);
    }
    double p_rest = 1 - p_top, q_rest = 1 - q_top;
    if (p_rest > 1e-12 && q_rest > 1e-12) kl += p_rest * log(p_rest / q_rest);
    return kl / log(2.0);
}

static double max_abs_delta(const float *a, const float *b, int k) {
    double m = 0;
    for (int i = 0; i < k; i++)
        if (b[i] == b[i] && fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}

static void parity(const char *model_name, bool optional) {
    lmz_model *m = optional ? test_model_optional(model_name) : test_model(model_name);
    if (!m) return;
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/logits_%s.bin", model_name);
    size_t len;
    uint8_t *blob = (uint8_t *)test_read_file(path, &len);
    CHECKF(blob, "cannot read %s", path);
    reader r = {blob, blob + len};
    char magic[8];
    uint32_t hdr[3];
    CHECK(!take(&r, magic, 8) && !memcmp(magic, "LMZLOGF2", 8) && !take(&r, hdr, 12));
    const uint32_t n_prompts = hdr[0], topk = hdr[1], n_vocab = hdr[2];
    CHECK_EQ_INT(n_vocab, m->n_vocab);
    CHECK(n_prompts >= 4 && topk >= 2 && topk <= 64);

    lmz_ctx *c = lmz_ctx_create(m, 512, 1, 2);
    CHECK(c);
    long positions = 0, agree = 0, self_agree = 0, decisive = 0, decisive_agree = 0;
    double max_delta = 0, self_max_delta = 0, kl_sum = 0, self_kl_sum = 0;
    for (uint32_t pi = 0; pi < n_prompts; pi++) {
        uint32_t n;
        CHECK(!take(&r, &n, 4) && n > 0 && n <= 512);
        int32_t *ids = malloc(n * sizeof *ids);
        float *logits = malloc((size_t)n * n_vocab * sizeof(float));
        CHECK(ids && logits && !take(&r, ids, n * 4));
        lmz_ctx_reset_seq(c, 0);
        CHECK(!lmz_eval(c, 0, ids, (int)n, 0, logits));
        for (uint32_t i = 0; i < n; i++) {
            float lse, lse2, ref[64], ref2[64], ours[64];
            int32_t ref_id[64], argmax2;
            CHECK(!take(&r, &lse, 4) && !take(&r, ref_id, 4 * topk) && !take(&r, ref, 4 * topk) &&
                  !take(&r, &argmax2, 4) && !take(&r, &lse2, 4) && !take(&r, ref2, 4 * topk));
            const float *l = logits + (size_t)i * n_vocab;
            double mx = l[0], sum = 0;
            for (uint32_t v = 1; v < n_vocab; v++) mx = l[v] > mx ? l[v] : mx;
            for (uint32_t v = 0; v < n_vocab; v++) sum += exp((double)l[v] - mx);
            double our_lse = mx + log(sum);
            for (uint32_t k = 0; k < topk; k++) ours[k] = l[ref_id[k]];
            positions++;
            agree += lmz_argmax(l, (int)n_vocab) == ref_id[0];
            self_agree += argmax2 == ref_id[0];
            if (ref[0] - ref[1] >= DECISIVE_MARGIN) {
                decisive++;
                decisive_agree += lmz_argmax(l, (int)n_vocab) == ref_id[0];
            }
            double d = max_abs_delta(ref, ours, (int)topk), d2 = max_abs_delta(ref, ref2, (int)topk);
            if (d > max_delta) max_delta = d;
            if (d2 > self_max_delta) self_max_delta = d2;
            kl_sum += kl_bits(ref, lse, ours, our_lse, (int)topk);
            self_kl_sum += kl_bits(ref, lse, ref2, lse2, (int)topk);
        }
        free(ids);
        free(logits);
    }
    lmz_ctx_free(c);
    free(blob);
    double rate = (double)agree / positions, self_rate = (double)self_agree / positions;
    double decisive_rate = decisive ? (double)decisive_agree / decisive : 1.0;
    double mean_kl = kl_sum / positions, self_kl = self_kl_sum / positions;
    printf("    %s, %ld positions          lmz vs llama.cpp   llama.cpp flash-attn on vs off\n"
           "      argmax agreement        %8.2f%%          %8.2f%%\n"
           "      max |delta logit|       %8.3f           %8.3f      (over llama.cpp's top %u)\n"
           "      mean KL (bits)          %8.5f           %8.5f\n"
           "      argmax agreement where llama.cpp's top-2 margin >= %.2f: %.2f%% of %ld positions\n",
           model_name, positions, 100 * rate, 100 * self_rate, max_delta, self_max_delta, topk, mean_kl, self_kl,
           DECISIVE_MARGIN, 100 * decisive_rate, decisive);
    CHECKF(rate >= self_rate - 0.005, "argmax agreement %.4f below llama.cpp's own %.4f", rate, self_rate);
    CHECKF(decisive_rate >= 0.99, "agreement on decisive positions %.4f < 0.99", decisive_rate);
    CHECKF(mean_kl <= 2 * self_kl + 0.001, "mean KL %.5f bits vs llama.cpp's own %.5f", mean_kl, self_kl);
    CHECKF(max_delta <= 2 * self_max_delta + 0.5, "max |delta logit| %.3f vs llama.cpp's own %.3f", max_delta,
           self_max_delta);
}

TEST(logits_parity_smollm2) { parity("smollm2", false); }
TEST(logits_parity_gemma3) { parity("gemma3", false); }
TEST(logits_parity_qwen25coder) { parity("qwen25coder", true); }
