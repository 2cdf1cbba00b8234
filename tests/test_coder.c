/* test_coder.c — the range coder (exact round trips over ordinary and extreme distributions,
 * measured overhead against the ideal code length, carries, raw bits, damaged and garbage
 * input) and the logits -> frequencies mapping (exact sums, floors, extreme logits, the same
 * bytes on every ISA, a golden hash, the encode/decode lookups), including the two together
 * on a 262,144-token vocabulary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/coder/rangecoder.h"
#include "../src/kernels/quant.h"
#include "../src/kernels/vecf.h"
#include "../src/probs/freq.h"
#include "../src/probs/probs.h"
#include "../src/util/error.h"
#include "../src/util/mathfn.h"
#include "../src/util/sha256.h"
#include "test.h"

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s * 0x9e3779b97f4a7c15ull + 1; }
static uint64_t rnd64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd64() % n); }
static double rnd_unit(void) { return (double)(rnd64() >> 11) / 9007199254740992.0; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- A test distribution: frequencies >= 1 summing to TOTAL, plus cumulative sums. ---- */

typedef struct {
    uint32_t n, total;
    uint32_t *freq;
    uint32_t *cum; /* n + 1 entries */
} dist;

enum shape { SHAPE_RANDOM, SHAPE_ZIPF, SHAPE_PEAKED, SHAPE_TOP_HEAVY, N_SHAPES };
static const char *shape_name[N_SHAPES] = {"random", "zipf", "peaked", "top-heavy"};

/* Weights by SHAPE, scaled onto TOTAL with a floor of 1; the rounding remainder goes to the
 * heaviest symbol. TOP_HEAVY puts ~99.9% on the last symbol: the interval's bottom then keeps
 * rising toward the top, which makes long 0xFF runs and carries. */
static void dist_make(dist *d, uint32_t n, uint32_t total, enum shape shape) {
    d->n = n;
    d->total = total;
    d->freq = malloc(n * sizeof *d->freq);
    d->cum = malloc((n + 1) * sizeof *d->cum);
    double *w = malloc(n * sizeof *w), sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        switch (shape) {
        case SHAPE_RANDOM: w[i] = rnd_unit(); break;
        case SHAPE_ZIPF: w[i] = 1.0 / (1.0 + (double)((i * 2654435761u) % n)); break;
        case SHAPE_PEAKED: w[i] = i == n / 3 ? 0.95 * n : rnd_unit(); break;
        default: w[i] = i == n - 1 ? 1000.0 * n : rnd_unit(); break;
        }
        sum += w[i];
    }
    uint64_t assigned = 0;
    uint32_t best = 0, best_f = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t f = 1 + (uint32_t)(w[i] / sum * (double)(total - n));
        d->freq[i] = f;
        assigned += f;
        if (f > best_f) {
            best = i;
            best_f = f;
        }
    }
    d->freq[best] = best_f + (uint32_t)(total - assigned);
    d->cum[0] = 0;
    for (uint32_t i = 0; i < n; i++) d->cum[i + 1] = d->cum[i] + d->freq[i];
    free(w);
}

static void dist_free(dist *d) {
    free(d->freq);
    free(d->cum);
}

/* The symbol whose slice contains T (binary search over cum). */
static uint32_t dist_find(const dist *d, uint32_t t) {
    uint32_t lo = 0, hi = d->n; /* cum[lo] <= t < cum[hi] */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (d->cum[mid] <= t) lo = mid;
        else hi = mid;
    }
    return lo;
}

static uint32_t dist_sample(const dist *d) { return dist_find(d, rnd_below(d->total)); }

static double ideal_bits(const dist *d, const uint32_t *sym, size_t n) {
    double bits = 0;
    for (size_t i = 0; i < n; i++) bits -= log2((double)d->freq[sym[i]] / (double)d->total);
    return bits;
}

static int encode_stream(const dist *d, const uint32_t *sym, size_t n, lmz_bytebuf *out) {
    lmz_renc e;
    lmz_renc_init(&e, out);
    for (size_t i = 0; i < n; i++)
        if (lmz_renc_encode(&e, d->cum[sym[i]], d->freq[sym[i]], d->total) != 0) return -1;
    return lmz_renc_finish(&e);
}

/* Decodes N symbols; 1 if they equal SYM and the decoder accepts the end of the stream. */
static int decode_matches(const dist *d, const uint32_t *sym, size_t n, const uint8_t *bytes, size_t len) {
    lmz_rdec dec;
    lmz_rdec_init(&dec, bytes, len);
    int same = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = dist_find(d, lmz_rdec_target(&dec, d->total));
        lmz_rdec_consume(&dec, d->cum[s], d->freq[s], d->total);
        if (s != sym[i]) same = 0;
    }
    return same && lmz_rdec_finish(&dec) == 0;
}

/* ---- Range coder ---- */

TEST(coder_roundtrip_and_overhead) {
    static const uint32_t totals[] = {1u << 24, 1u << 30, 1u << 31, 0};
    static const uint32_t alphabets[] = {2, 3, 17, 256, 4096, 65536};
    enum { N_SYM = 20000 };
    uint32_t *sym = malloc(N_SYM * sizeof *sym);
    lmz_bytebuf out = {0};
    rng_seed(1);
    double sum_ideal = 0, sum_coded = 0, worst = 0;
    int streams = 0, measured = 0;
    char worst_label[128] = "";
    for (size_t ti = 0; ti < sizeof totals / sizeof *totals; ti++) {
        for (size_t ai = 0; ai < sizeof alphabets / sizeof *alphabets; ai++) {
            for (int shape = 0; shape < N_SHAPES; shape++) {
                /* 0 stands for a random total large enough for the alphabet. */
                uint32_t total = totals[ti] ? totals[ti] : alphabets[ai] + 1 + rnd_below((1u << 31) - alphabets[ai]);
                dist d;
                dist_make(&d, alphabets[ai], total, shape);
                for (size_t i = 0; i < N_SYM; i++) sym[i] = dist_sample(&d);
                out.len = 0;
                CHECK(encode_stream(&d, sym, N_SYM, &out) == 0);
                CHECKF(decode_matches(&d, sym, N_SYM, out.data, out.len), "round trip: total %u, %u symbols, %s",
                       total, d.n, shape_name[shape]);
                double ideal = ideal_bits(&d, sym, N_SYM), coded = 8.0 * (double)out.len;
                /* Whatever the stream: at most the final byte plus the per-symbol truncation. */
                CHECKF(coded - ideal <= 8.0 + N_SYM * 1.5e-5, "overhead %.2f bits over ideal %.2f", coded - ideal,
                       ideal);
                streams++;
                sum_ideal += ideal;
                sum_coded += coded;
                /* Relative overhead is meaningful when the stream is more than a few bytes. */
                if (ideal >= 16000) {
                    double rel = (coded - ideal) / ideal;
                    CHECKF(rel < 0.001, "overhead %.4f%% (total %u, %u symbols, %s)", 100 * rel, total, d.n,
                           shape_name[shape]);
                    measured++;
                    if (rel > worst) {
                        worst = rel;
                        snprintf(worst_label, sizeof worst_label, "total %u, %u symbols, %s, %.0f bits", total, d.n,
                                 shape_name[shape], ideal);
                    }
                }
                dist_free(&d);
            }
        }
    }
    printf("    range coder: %d streams of %d symbols, overall overhead %.5f%% (%.0f bits coded, %.0f ideal)\n",
           streams, N_SYM, 100 * (sum_coded - sum_ideal) / sum_ideal, sum_coded, sum_ideal);
    printf("    worst relative overhead over %d streams of >= 16000 ideal bits: %.5f%% (%s)\n", measured, 100 * worst,
           worst_label);
    lmz_bytebuf_free(&out);
    free(sym);
}

TEST(coder_extreme_distributions) {
    /* One symbol with probability ~1 in a huge alphabet, and in a binary one; rare symbols
     * are forced in now and then so both the near-certain and the floor slices are coded. */
    static const uint32_t alphabets[] = {262144, 2};
    static const uint32_t totals[] = {1u << 24, 1u << 30, 1u << 31};
    enum { N_SYM = 50000 };
    uint32_t *sym = malloc(N_SYM * sizeof *sym);
    lmz_bytebuf out = {0};
    rng_seed(2);
    for (size_t ai = 0; ai < 2; ai++) {
        for (size_t ti = 0; ti < 3; ti++) {
            dist d = {.n = alphabets[ai], .total = totals[ti]};
            d.freq = malloc(d.n * sizeof *d.freq);
            d.cum = malloc((d.n + 1) * sizeof *d.cum);
            for (uint32_t i = 0; i < d.n; i++) d.freq[i] = 1;
            d.freq[0] = d.total - (d.n - 1);
            d.cum[0] = 0;
            for (uint32_t i = 0; i < d.n; i++) d.cum[i + 1] = d.cum[i] + d.freq[i];
            for (size_t i = 0; i < N_SYM; i++) sym[i] = i % 997 == 5 ? 1 + rnd_below(d.n - 1) : 0;
            out.len = 0;
            CHECK(encode_stream(&d, sym, N_SYM, &out) == 0);
            CHECKF(decode_matches(&d, sym, N_SYM, out.data, out.len), "round trip, %u symbols, total %u", d.n,
                   d.total);
            double ideal = ideal_bits(&d, sym, N_SYM), coded = 8.0 * (double)out.len;
            CHECKF(coded - ideal <= 8.0 + N_SYM * 1.5e-5, "overhead %.2f bits", coded - ideal);
            printf("    p~1 symbol, %u-symbol alphabet, total 2^%d: %zu bytes for %.1f ideal bits (+%.1f bits)\n", d.n,
                   (int)log2(d.total), out.len, ideal, coded - ideal);
            /* A stream of only the near-certain symbol costs almost nothing. */
            for (size_t i = 0; i < N_SYM; i++) sym[i] = 0;
            out.len = 0;
            CHECK(encode_stream(&d, sym, N_SYM, &out) == 0);
            CHECK(decode_matches(&d, sym, N_SYM, out.data, out.len));
            CHECKF(8.0 * (double)out.len <= ideal_bits(&d, sym, N_SYM) + 8.0 + N_SYM * 1.5e-5, "%zu bytes", out.len);
            dist_free(&d);
        }
    }
    lmz_bytebuf_free(&out);
    free(sym);
}

TEST(coder_carry_runs) {
    /* Carries through long runs of held-back 0xFF bytes are rare in random data, so the
     * symbols here are chosen by looking at the encoder's state: while fewer than 12 bytes are
     * held back, pick a symbol that leaves 0xFF as the window's top byte; then pick one that
     * carries. The symbols are just data to the decoder, which must reproduce them. */
    enum { N_SYM = 20000, MIN_RUN = 12 };
    uint32_t *sym = malloc(N_SYM * sizeof *sym);
    lmz_bytebuf out = {0};
    rng_seed(3);
    dist d;
    dist_make(&d, 256, (1u << 31) - 12345, SHAPE_RANDOM);
    lmz_renc e;
    lmz_renc_init(&e, &out);
    int long_carries = 0;
    for (size_t i = 0; i < N_SYM; i++) {
        uint64_t r = e.range / d.total;
        int keep_ff = -1, carry = -1;
        for (uint32_t k = 0; k < d.n; k++) {
            uint64_t top = (e.low + r * d.cum[k]) >> 48;
            if (top == 0xFF) keep_ff = (int)k;
            if (top > 0xFF && carry < 0) carry = (int)k;
        }
        sym[i] = e.pending >= MIN_RUN && carry >= 0 ? (uint32_t)carry : keep_ff >= 0 ? (uint32_t)keep_ff : dist_sample(&d);
        uint64_t held = e.pending;
        size_t before = out.len;
        CHECK(lmz_renc_encode(&e, d.cum[sym[i]], d.freq[sym[i]], d.total) == 0);
        /* A carry writes the held byte + 1 and then the held 0xFF bytes as 0x00. */
        if (held >= MIN_RUN && e.pending < held && out.len >= before + 1 + held) {
            size_t zeros = 0;
            while (zeros < held && out.data[before + 1 + zeros] == 0x00) zeros++;
            long_carries += zeros == held;
        }
    }
    CHECK(lmz_renc_finish(&e) == 0);
    printf("    carries through >= %d held-back 0xFF bytes: %d\n", MIN_RUN, long_carries);
    CHECK(long_carries > 0);
    CHECK(decode_matches(&d, sym, N_SYM, out.data, out.len));
    dist_free(&d);
    lmz_bytebuf_free(&out);
    free(sym);
}

TEST(coder_raw_bits) {
    lmz_bytebuf out = {0};
    rng_seed(4);
    enum { N = 5000 };
    static uint64_t values[N];
    static int widths[N];
    static uint32_t syms[N];
    dist d;
    dist_make(&d, 100, 1u << 30, SHAPE_ZIPF);
    lmz_renc e;
    lmz_renc_init(&e, &out);
    for (int i = 0; i < N; i++) {
        widths[i] = (int)rnd_below(65);
        values[i] = widths[i] == 64 ? rnd64() : rnd64() & ((1ull << widths[i]) - 1);
        syms[i] = dist_sample(&d);
        CHECK(lmz_renc_encode(&e, d.cum[syms[i]], d.freq[syms[i]], d.total) == 0);
        CHECK(lmz_renc_bits(&e, values[i], widths[i]) == 0);
    }
    CHECK(lmz_renc_finish(&e) == 0);
    lmz_rdec dec;
    lmz_rdec_init(&dec, out.data, out.len);
    for (int i = 0; i < N; i++) {
        uint32_t s = dist_find(&d, lmz_rdec_target(&dec, d.total));
        lmz_rdec_consume(&dec, d.cum[s], d.freq[s], d.total);
        CHECK_EQ_INT(s, syms[i]);
        uint64_t v = lmz_rdec_bits(&dec, widths[i]);
        CHECKF(v == values[i], "raw value %d (%d bits)", i, widths[i]);
    }
    CHECK(lmz_rdec_finish(&dec) == 0);
    /* Raw bits cost what they say (within the coder's rounding). */
    double ideal = 0;
    for (int i = 0; i < N; i++) ideal += widths[i] - log2((double)d.freq[syms[i]] / d.total);
    CHECKF(8.0 * out.len - ideal <= 8.0 + 2 * N * 1.5e-5, "%zu bytes for %.1f bits", out.len, ideal);
    dist_free(&d);
    lmz_bytebuf_free(&out);
}

TEST(coder_empty_and_bad_arguments) {
    lmz_bytebuf out = {0};
    lmz_renc e;
    lmz_renc_init(&e, &out);
    CHECK(lmz_renc_finish(&e) == 0);
    CHECK_EQ_INT(out.len, 0); /* no symbols, no bytes */
    lmz_rdec d;
    lmz_rdec_init(&d, out.data, 0);
    CHECK(lmz_rdec_finish(&d) == 0);
    CHECK(!d.past_end && !d.invalid);

    /* The encoder appends after what the buffer holds. */
    CHECK(lmz_bytebuf_append(&out, "hdr", 3) == 0);
    lmz_renc_init(&e, &out);
    CHECK(lmz_renc_encode(&e, 5, 3, 11) == 0 && lmz_renc_finish(&e) == 0);
    CHECK(out.len >= 3 && memcmp(out.data, "hdr", 3) == 0);
    lmz_rdec_init(&d, out.data + 3, out.len - 3);
    CHECK(lmz_rdec_target(&d, 11) - 5 < 3);
    lmz_rdec_consume(&d, 5, 3, 11);
    CHECK(lmz_rdec_finish(&d) == 0);

    lmz_renc_init(&e, &out);
    CHECK(lmz_renc_encode(&e, 0, 0, 10) == -1);
    CHECK(strstr(lmz_last_error(), "invalid symbol") != NULL);
    CHECK(lmz_renc_encode(&e, 8, 3, 10) == -1);
    CHECK(lmz_renc_encode(&e, 0, 1, 0) == -1);
    CHECK(lmz_renc_encode(&e, 0, 1, LMZ_RC_MAX_TOTAL + 1u) == -1);
    CHECK(lmz_renc_encode(&e, LMZ_RC_MAX_TOTAL - 1, 1, LMZ_RC_MAX_TOTAL) == 0);
    CHECK(lmz_renc_bits(&e, 4, 2) == -1);
    CHECK(lmz_renc_bits(&e, 0, 65) == -1);
    CHECK(lmz_renc_bits(&e, 0, -1) == -1);

    /* The decoder flags bad arguments instead of trusting them. */
    uint8_t zeros[16] = {0};
    lmz_rdec_init(&d, zeros, sizeof zeros);
    (void)lmz_rdec_target(&d, 0);
    CHECK(d.invalid);
    lmz_rdec_init(&d, zeros, sizeof zeros);
    lmz_rdec_consume(&d, 3, 0, 10);
    CHECK(d.invalid && lmz_rdec_finish(&d) == -1);
    lmz_bytebuf_free(&out);
}

TEST(coder_damaged_tail_detected) {
    /* Cutting bytes off or appending any byte must change the symbols or fail the end check:
     * each symbol sequence has exactly one accepted encoding. */
    enum { N_SYM = 300 };
    uint32_t sym[N_SYM];
    lmz_bytebuf out = {0};
    rng_seed(5);
    int endings[2] = {0, 0}; /* streams whose flush wrote no byte / one byte */
    for (int trial = 0; trial < 200; trial++) {
        dist d;
        dist_make(&d, 2 + rnd_below(300), trial % 2 ? 1u << 30 : 1u << 24, (enum shape)(trial % N_SHAPES));
        size_t n = 1 + rnd_below(N_SYM);
        for (size_t i = 0; i < n; i++) sym[i] = dist_sample(&d);
        out.len = 0;
        CHECK(encode_stream(&d, sym, n, &out) == 0);
        CHECK(decode_matches(&d, sym, n, out.data, out.len));
        lmz_rdec dec;
        lmz_rdec_init(&dec, out.data, out.len);
        for (size_t i = 0; i < n; i++) {
            uint32_t s = dist_find(&d, lmz_rdec_target(&dec, d.total));
            lmz_rdec_consume(&dec, d.cum[s], d.freq[s], d.total);
        }
        endings[out.len - (dec.pos - 7)]++;
        for (size_t cut = 1; cut <= out.len && cut <= 9; cut++)
            CHECKF(!decode_matches(&d, sym, n, out.data, out.len - cut), "trial %d: cut %zu of %zu bytes accepted",
                   trial, cut, out.len);
        size_t len = out.len;
        for (int b = 0; b < 256; b++) {
            out.len = len;
            CHECK(lmz_bytebuf_push(&out, (uint8_t)b) == 0);
            CHECKF(!decode_matches(&d, sym, n, out.data, out.len), "trial %d: appended 0x%02x accepted", trial, b);
        }
        out.len = len;
        CHECK(lmz_bytebuf_append(&out, "\x01\x02", 2) == 0);
        CHECK(!decode_matches(&d, sym, n, out.data, out.len));
        dist_free(&d);
    }
    CHECKF(endings[0] > 0 && endings[1] > 0, "both flush endings exercised (%d, %d)", endings[0], endings[1]);
    lmz_bytebuf_free(&out);
}

TEST(coder_garbage_input) {
    /* Random bytes, truncated streams and all-0xFF: bounded work, no reads outside the input
     * (ASan builds check that), and the flags say something is wrong when it is. */
    rng_seed(6);
    uint8_t buf[512];
    int rejected = 0, trials = 0;
    for (int trial = 0; trial < 3000; trial++) {
        size_t len = rnd_below(sizeof buf + 1);
        int fill = trial % 3;
        for (size_t i = 0; i < len; i++) buf[i] = fill == 0 ? (uint8_t)rnd64() : fill == 1 ? 0xFF : (uint8_t)(i * 37);
        uint8_t *copy = malloc(len ? len : 1); /* exact-size block, so ASan sees any overread */
        memcpy(copy, buf, len);
        dist d;
        dist_make(&d, 2 + rnd_below(1000), 1u << (20 + rnd_below(12)), (enum shape)(trial % N_SHAPES));
        lmz_rdec dec;
        lmz_rdec_init(&dec, copy, len);
        size_t n = rnd_below(4000);
        for (size_t i = 0; i < n; i++) {
            uint32_t t = lmz_rdec_target(&dec, d.total);
            CHECK(t < d.total);
            uint32_t s = dist_find(&d, t);
            lmz_rdec_consume(&dec, d.cum[s], d.freq[s], d.total);
            CHECK(dec.code < dec.range && dec.range >= (1ull << 48) && dec.range < (1ull << 56));
        }
        (void)lmz_rdec_bits(&dec, 64);
        if (dec.past_end) CHECK(lmz_rdec_finish(&dec) == -1);
        rejected += lmz_rdec_finish(&dec) != 0;
        trials++;
        dist_free(&d);
        free(copy);
    }
    printf("    garbage: %d of %d random inputs rejected by the end check\n", rejected, trials);
    CHECK(rejected > trials * 9 / 10);
}

/* ---- Frequencies ---- */

static void random_logits(float *logits, int n, float scale) {
    for (int i = 0; i < n; i++) {
        /* Sum of three uniforms: a cheap bell shape, from integers so the values are exact. */
        int32_t a = (int32_t)(rnd64() >> 44), b = (int32_t)(rnd64() >> 44), c = (int32_t)(rnd64() >> 44);
        logits[i] = (float)(a + b + c - 3 * (1 << 19)) / (float)(1 << 19) * scale;
    }
}

static int check_freq(const uint32_t *freq, int n) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (freq[i] < 1) return 0;
        sum += freq[i];
    }
    return sum == LMZ_FREQ_TOTAL;
}

TEST(coder_freq_sums_and_floors) {
    static const int vocabs[] = {1, 2, 7, 8, 9, 1000, 49152, 151936, 262144};
    static const float scales[] = {0.01f, 1.0f, 4.0f, 30.0f, 1000.0f, 1e30f};
    rng_seed(7);
    float *logits = malloc(262144 * sizeof *logits);
    uint32_t *freq = malloc(262144 * sizeof *freq);
    for (size_t vi = 0; vi < sizeof vocabs / sizeof *vocabs; vi++) {
        for (size_t si = 0; si < sizeof scales / sizeof *scales; si++) {
            int n = vocabs[vi];
            random_logits(logits, n, scales[si]);
            CHECK(lmz_freq_build(logits, n, freq) == 0);
            CHECKF(check_freq(freq, n), "vocab %d, scale %g", n, scales[si]);
            /* The most likely token gets the most frequency; softmax ordering survives. */
            int32_t am = 0;
            for (int i = 1; i < n; i++)
                if (freq[i] > freq[am]) am = i;
            CHECK(logits[am] == logits[lmz_argmax(logits, n)] || scales[si] < 0.1f);
        }
    }
    CHECK(lmz_freq_build(logits, 0, freq) == -1);
    CHECK(lmz_freq_build(logits, LMZ_FREQ_MAX_VOCAB + 1, freq) == -1);
    free(logits);
    free(freq);
}

TEST(coder_freq_matches_softmax) {
    /* Integer frequencies cost within a hair of the exact softmax code length for tokens that
     * are not at the floor. */
    rng_seed(8);
    enum { N = 49152 };
    float *logits = malloc(N * sizeof *logits);
    uint32_t *freq = malloc(N * sizeof *freq);
    random_logits(logits, N, 6.0f);
    CHECK(lmz_freq_build(logits, N, freq) == 0);
    double worst = 0;
    for (int i = 0; i < 2000; i++) { /* lmz_token_bits is O(N) per call: a sample suffices */
        if (freq[i] < 1000) continue;
        double diff = fabs(lmz_freq_bits(freq[i]) - lmz_token_bits(logits, N, i));
        if (diff > worst) worst = diff;
    }
    CHECKF(worst < 0.01, "worst difference %.5f bits", worst);
    CHECK(lmz_freq_bits(LMZ_FREQ_TOTAL) == 0.0);
    CHECK(fabs(lmz_freq_bits(LMZ_FREQ_TOTAL / 2) - 1.0) < 1e-12);
    CHECK(fabs(lmz_freq_bits(1) - 30.0) < 1e-12);
    free(logits);
    free(freq);
}

TEST(coder_freq_extreme_logits) {
    enum { N = 262144 };
    float *logits = malloc(N * sizeof *logits);
    uint32_t *freq = malloc(N * sizeof *freq);
    const uint32_t share = (LMZ_FREQ_TOTAL - N) / N;

    /* All equal: uniform, the remainder on token 0 (the lowest index among equals). */
    for (int i = 0; i < N; i++) logits[i] = 3.5f;
    CHECK(lmz_freq_build(logits, N, freq) == 0 && check_freq(freq, N));
    for (int i = 1; i < N; i++) CHECK_EQ_INT(freq[i], 1 + share);
    CHECK_EQ_INT(freq[0], LMZ_FREQ_TOTAL - (uint64_t)(N - 1) * (1 + share));

    /* One huge logit takes everything but the floors. */
    for (int i = 0; i < N; i++) logits[i] = 0.0f;
    logits[12345] = 1e30f;
    CHECK(lmz_freq_build(logits, N, freq) == 0 && check_freq(freq, N));
    CHECK_EQ_INT(freq[12345], LMZ_FREQ_TOTAL - (N - 1));

    /* Large negatives, -inf and NaN get the floor; they never produce NaN frequencies. */
    for (int i = 0; i < N; i++) logits[i] = i % 3 == 0 ? -1e30f : i % 3 == 1 ? -INFINITY : NAN;
    logits[7] = -50.0f;
    logits[9] = -50.0f + 1.0f;
    CHECK(lmz_freq_build(logits, N, freq) == 0 && check_freq(freq, N));
    for (int i = 0; i < N; i++)
        if (i != 7 && i != 9) CHECKF(freq[i] == 1, "token %d: %u", i, freq[i]);
    CHECK(freq[9] > freq[7] && freq[7] > 1);

    /* +inf logits share the mass; finite ones are at the floor. */
    for (int i = 0; i < N; i++) logits[i] = (float)(i % 100);
    logits[100] = INFINITY;
    logits[200] = INFINITY;
    CHECK(lmz_freq_build(logits, N, freq) == 0 && check_freq(freq, N));
    CHECK(freq[100] + freq[200] == LMZ_FREQ_TOTAL - (N - 2));
    CHECK(freq[100] >= freq[200] && freq[100] - freq[200] <= N);

    /* All NaN: uniform. */
    for (int i = 0; i < N; i++) logits[i] = NAN;
    CHECK(lmz_freq_build(logits, N, freq) == 0 && check_freq(freq, N));
    CHECK_EQ_INT(freq[N - 1], 1 + share);

    /* Tiny vocabularies. */
    logits[0] = 1.0f;
    CHECK(lmz_freq_build(logits, 1, freq) == 0 && freq[0] == LMZ_FREQ_TOTAL);
    logits[0] = -1e30f;
    logits[1] = 1e30f;
    CHECK(lmz_freq_build(logits, 2, freq) == 0 && freq[0] == 1 && freq[1] == LMZ_FREQ_TOTAL - 1);
    free(logits);
    free(freq);
}

/* Logit vectors for the ISA comparison: each stresses one part of lmz_freq_build's SIMD
 * passes (NaN handling in the max scan and the weights, underflow, infinite maxima, the
 * uniform fallback, the lowest-index rule among equal largest frequencies across lanes and
 * the scalar tail). */
enum freq_case {
    FC_RANDOM, FC_WIDE, FC_HUGE, FC_NANS, FC_POS_INF, FC_NEG_INF, FC_NEG_INF_AND_NAN, FC_ALL_NAN,
    FC_ALL_EQUAL, FC_TIED_MAXIMA, FC_FEW_VALUES, FC_SIGNED_ZEROS, FC_UNDERFLOW_EDGE, N_FREQ_CASES
};
static const char *freq_case_name[N_FREQ_CASES] = {
    "random", "wide spread", "1e30 spread", "NaNs", "+inf", "-inf", "-inf and NaN only", "all NaN",
    "all equal", "tied maxima", "three values", "signed zero maxima", "underflow edge"};

static void freq_case_fill(float *x, int n, enum freq_case c) {
    static const float edge[] = {-86.4f, -86.49999f, -86.5f, -86.50001f, -87.0f, -100.0f, -1e30f};
    switch (c) {
    case FC_RANDOM: random_logits(x, n, 5.0f); break;
    case FC_WIDE: random_logits(x, n, 1000.0f); break; /* most exp inputs below -86.5: weight 0 */
    case FC_HUGE: random_logits(x, n, 1e30f); break;
    case FC_NANS:
        random_logits(x, n, 5.0f);
        for (int i = 0; i < n; i++)
            if (rnd_below(4) == 0) x[i] = NAN;
        x[0] = x[n - 1] = NAN; /* first in the scan, and in the scalar tail */
        break;
    case FC_POS_INF:
        random_logits(x, n, 5.0f);
        for (int k = 0; k <= n / 64; k++) x[rnd_below((uint32_t)n)] = INFINITY;
        if (n > 2) x[n - 2] = NAN;
        break;
    case FC_NEG_INF:
        random_logits(x, n, 5.0f);
        for (int i = 0; i < n; i++)
            if (rnd_below(4) == 0) x[i] = -INFINITY;
        break;
    case FC_NEG_INF_AND_NAN: /* the maximum is -inf: the -inf tokens share the mass */
        for (int i = 0; i < n; i++) x[i] = rnd_below(3) ? NAN : -INFINITY;
        x[rnd_below((uint32_t)n)] = -INFINITY;
        break;
    case FC_ALL_NAN:
        for (int i = 0; i < n; i++) x[i] = NAN;
        break;
    case FC_ALL_EQUAL:
        for (int i = 0; i < n; i++) x[i] = 3.5f;
        break;
    case FC_TIED_MAXIMA: /* a few tokens share the largest logit, so the largest frequency */
        random_logits(x, n, 0.5f);
        for (int k = 0; k < 4; k++) x[rnd_below((uint32_t)n)] = 2.0f;
        break;
    case FC_FEW_VALUES:
        for (int i = 0; i < n; i++) x[i] = (float)rnd_below(3);
        break;
    case FC_SIGNED_ZEROS: /* the largest logit is 0, as -0 and +0 (-0 first) */
        random_logits(x, n, 5.0f);
        for (int i = 0; i < n; i++) x[i] = -fabsf(x[i]) - 0.25f;
        x[rnd_below((uint32_t)(n + 1) / 2)] = -0.0f;
        x[n / 2 + rnd_below((uint32_t)(n + 1) / 2)] = 0.0f;
        break;
    default: /* exp inputs around lmz_expf's underflow cutoff at -86.5 */
        for (int i = 0; i < n; i++) x[i] = edge[rnd_below(sizeof edge / sizeof *edge)];
        x[rnd_below((uint32_t)n)] = 0.0f;
        break;
    }
}

/* The first index where A and B differ, or N. */
static int first_difference(const uint32_t *a, const uint32_t *b, int n) {
    int i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* lmz_freq_build on LOGITS gives the scalar reference's bytes on every SIMD level the CPU
 * has, and so do its passes' primitives: the max, the weights and their double sum (a last
 * bit of the sum seldom reaches the frequencies, so it is compared on its own). The scalar
 * frequencies must be a valid distribution. W holds 4 arrays of N; the best level is set
 * again before any check, so a failure leaves it as the other tests expect. */
static void check_freq_isas(const float *logits, int n, uint32_t *w, const char *what) {
    uint32_t *ref = w, *got = w + n, *ref_w = w + 2 * n, *got_w = w + 3 * n;
    const enum lmz_isa best = lmz_isa_detect();
    lmz_isa_set(LMZ_ISA_SCALAR);
    int rc = lmz_freq_build(logits, n, ref);
    const float mx = lmz_vec_max(logits, n);
    const double sum = lmz_vec_exp_weights(logits, n, mx, ref_w);
    lmz_isa_set(best);
    CHECKF(rc == 0 && check_freq(ref, n), "%s, %d tokens: invalid scalar frequencies", what, n);
    for (int isa = LMZ_ISA_SCALAR + 1; isa <= (int)best; isa++) {
        lmz_isa_set((enum lmz_isa)isa);
        memset(got, 0xA5, (size_t)n * sizeof *got);
        memset(got_w, 0xA5, (size_t)n * sizeof *got_w);
        rc = lmz_freq_build(logits, n, got);
        const float got_mx = lmz_vec_max(logits, n);
        const double got_sum = lmz_vec_exp_weights(logits, n, mx, got_w);
        lmz_isa_set(best);
        const char *name = lmz_isa_name((enum lmz_isa)isa);
        CHECKF(rc == 0, "%s %s, %d tokens: failed", name, what, n);
        CHECKF(memcmp(&got_mx, &mx, sizeof mx) == 0, "%s %s, %d tokens: max %a, scalar %a", name, what, n,
               (double)got_mx, (double)mx);
        int i = first_difference(got_w, ref_w, n);
        CHECKF(i == n, "%s %s, %d tokens: weight %d is 0x%08x, scalar 0x%08x", name, what, n, i, got_w[i], ref_w[i]);
        CHECKF(memcmp(&got_sum, &sum, sizeof sum) == 0, "%s %s, %d tokens: weight sum %a, scalar %a", name, what, n,
               got_sum, sum);
        i = first_difference(got, ref, n);
        CHECKF(i == n, "%s %s, %d tokens: token %d has %u, scalar %u", name, what, n, i, got[i], ref[i]);
    }
}

TEST(coder_freq_same_on_every_isa) {
    /* The decoder must see the encoder's frequencies bit for bit whatever either machine's
     * SIMD level: vocabulary sizes around the 8-lane vectors and the 32-element max scan,
     * and the two real vocabulary sizes, times every case above. */
    static const int sizes[] = {1, 7, 8, 9, 31, 33, 1000, 1003, 49152, 262144};
    enum { N_MAX = 262144 };
    float *logits = malloc(N_MAX * sizeof *logits);
    uint32_t *work = malloc(4 * N_MAX * sizeof *work);
    rng_seed(12);
    printf("    isa levels compared with scalar:");
    for (int isa = LMZ_ISA_SCALAR + 1; isa <= (int)lmz_isa_detect(); isa++)
        printf(" %s", lmz_isa_name((enum lmz_isa)isa));
    printf("\n");
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes && !test_failed(); si++) {
        for (int c = 0; c < N_FREQ_CASES && !test_failed(); c++) {
            freq_case_fill(logits, sizes[si], (enum freq_case)c);
            check_freq_isas(logits, sizes[si], work, freq_case_name[c]);
        }
    }
    free(logits);
    free(work);
}

TEST(coder_freq_golden_hash) {
    /* The frequencies of a fixed pseudo-random logits vector, hashed: any machine, compiler or
     * change in the mapping that alters one bit fails here (bump the coder version if intended). */
    enum { N = 49152 };
    float *logits = malloc(N * sizeof *logits);
    uint32_t *freq = malloc(N * sizeof *freq), *again = malloc(N * sizeof *again);
    rng_seed(9);
    random_logits(logits, N, 5.0f);
    CHECK(lmz_freq_build(logits, N, freq) == 0);
    CHECK(lmz_freq_build(logits, N, again) == 0);
    CHECK(memcmp(freq, again, N * sizeof *freq) == 0);
    lmz_sha256 h;
    lmz_sha256_init(&h);
    for (int i = 0; i < N; i++) {
        uint8_t le[4] = {(uint8_t)freq[i], (uint8_t)(freq[i] >> 8), (uint8_t)(freq[i] >> 16), (uint8_t)(freq[i] >> 24)};
        lmz_sha256_update(&h, le, 4);
    }
    uint8_t digest[32];
    char hex[65];
    lmz_sha256_final(&h, digest);
    lmz_sha256_hex(digest, hex);
    printf("    frequencies golden %s\n", hex);
    CHECK(strcmp(hex, "b69d293c4579a78a45d6dea9d3243eb1e0b1608258105694a81ead02389cf021") == 0);
    free(logits);
    free(freq);
    free(again);
}

TEST(coder_freq_cum_and_find) {
    rng_seed(10);
    static const int vocabs[] = {1, 2, 63, 64, 65, 129, 5000};
    uint32_t *freq = malloc(5000 * sizeof *freq);
    float *logits = malloc(5000 * sizeof *logits);
    for (size_t vi = 0; vi < sizeof vocabs / sizeof *vocabs; vi++) {
        int n = vocabs[vi];
        random_logits(logits, n, 8.0f);
        CHECK(lmz_freq_build(logits, n, freq) == 0);
        uint32_t cum = 0;
        for (int t = 0; t < n; t++) {
            CHECK_EQ_INT(lmz_freq_cum(freq, t), cum);
            /* Both ends of every slice, and a point inside. */
            uint32_t probes[3] = {cum, cum + freq[t] - 1, cum + rnd_below(freq[t])};
            for (int k = 0; k < 3; k++) {
                uint32_t got_cum = 0xDEADBEEF;
                CHECK_EQ_INT(lmz_freq_find(freq, n, probes[k], &got_cum), t);
                CHECK_EQ_INT(got_cum, cum);
            }
            cum += freq[t];
        }
        CHECK_EQ_INT(lmz_freq_cum(freq, n), LMZ_FREQ_TOTAL);
    }
    free(freq);
    free(logits);
}

TEST(coder_freq_262k_vocab) {
    /* The pipeline's loop on a 262,144-token vocabulary: per position, frequencies from
     * logits, then encode with lmz_freq_cum / decode with lmz_freq_find. Positions cycle over
     * a few logit vectors to keep the test fast; tokens are drawn from the distribution. */
    enum { N = 262144, N_VEC = 4, N_POS = 10000 };
    rng_seed(11);
    float *logits = malloc((size_t)N_VEC * N * sizeof *logits);
    uint32_t *freq = malloc((size_t)N_VEC * N * sizeof *freq);
    int32_t *tok = malloc(N_POS * sizeof *tok);
    for (int v = 0; v < N_VEC; v++) random_logits(logits + (size_t)v * N, N, 2.0f + 3.0f * v);
    double t0 = now_s();
    for (int v = 0; v < N_VEC; v++) CHECK(lmz_freq_build(logits + (size_t)v * N, N, freq + (size_t)v * N) == 0);
    double build_ms = (now_s() - t0) * 1e3 / N_VEC;

    lmz_bytebuf out = {0};
    lmz_renc e;
    lmz_renc_init(&e, &out);
    double ideal = 0;
    for (int p = 0; p < N_POS; p++) {
        const uint32_t *f = freq + (size_t)(p % N_VEC) * N;
        uint32_t c;
        tok[p] = lmz_freq_find(f, N, rnd_below(LMZ_FREQ_TOTAL), &c);
        CHECK(lmz_renc_encode(&e, lmz_freq_cum(f, tok[p]), f[tok[p]], LMZ_FREQ_TOTAL) == 0);
        ideal += lmz_freq_bits(f[tok[p]]);
    }
    CHECK(lmz_renc_finish(&e) == 0);

    t0 = now_s();
    lmz_rdec d;
    lmz_rdec_init(&d, out.data, out.len);
    for (int p = 0; p < N_POS; p++) {
        const uint32_t *f = freq + (size_t)(p % N_VEC) * N;
        uint32_t c;
        int32_t t = lmz_freq_find(f, N, lmz_rdec_target(&d, LMZ_FREQ_TOTAL), &c);
        lmz_rdec_consume(&d, c, f[t], LMZ_FREQ_TOTAL);
        CHECKF(t == tok[p], "position %d: %d != %d", p, t, tok[p]);
    }
    CHECK(lmz_rdec_finish(&d) == 0);
    double find_us = (now_s() - t0) * 1e6 / N_POS;
    double over = 8.0 * out.len - ideal;
    printf("    262,144-token vocabulary: build %.2f ms/position, decode lookup %.1f us/position; %zu bytes for "
           "%.0f ideal bits (%.4f%% over)\n",
           build_ms, find_us, out.len, ideal, 100 * over / ideal);
    CHECK(over / ideal < 0.001);
    lmz_bytebuf_free(&out);
    free(logits);
    free(freq);
    free(tok);
}
