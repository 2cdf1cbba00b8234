/* mathfn.c — portable exp/log/sin/cos/tanh (see mathfn.h for why they exist).
 * Range reductions use Cody–Waite splits of ln2 and pi/2 whose high parts have few
 * significant bits, so k * high is exact; the polynomials are truncated Taylor series,
 * evaluated by Horner's rule in a fixed order. */
#include "mathfn.h"

#include <string.h>

static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline double f64_from_bits(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static inline uint64_t f64_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

float lmz_expf(float x) {
    if (x != x) return x;
    if (x < -86.5f) return 0.0f;
    if (x > 88.0f) return f32_from_bits(0x7f800000u);
    /* n = round-to-nearest-even(x / ln2) via the 1.5 * 2^23 shifter */
    const float shifter = 12582912.0f;
    float n = (x * 1.44269504f + shifter) - shifter;
    float r = x - n * 0.693359375f;        /* ln2 high part: 0.693359375 has 9 significant bits */
    r = r - n * -2.12194440e-4f;           /* ln2 low part */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t k = (int32_t)n;                 /* -125..127: result stays a normal float */
    return f32_from_bits(f32_bits(p) + ((uint32_t)k << 23));
}

float lmz_tanhf(float x) {
    float a = x < 0 ? -x : x;
    float t;
    if (a < 0.0625f) {
        /* tanh a = a - a^3/3 + 2a^5/15 - 17a^7/315: avoids the cancellation in 1 - 2/(e^2a + 1) */
        float a2 = a * a;
        t = a + a * a2 * (-1.0f / 3.0f + a2 * (2.0f / 15.0f + a2 * (-17.0f / 315.0f)));
    } else if (a > 9.0f) {
        t = 1.0f;
    } else {
        t = 1.0f - 2.0f / (lmz_expf(2.0f * a) + 1.0f);
    }
    return x < 0 ? -t : t;
}

float lmz_siluf(float x) { return x / (1.0f + lmz_expf(-x)); }

float lmz_geluf(float x) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    return 0.5f * x * (1.0f + lmz_tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

double lmz_exp(double x) {
    if (x != x) return x;
    if (x < -708.0) return 0.0;
    if (x > 709.0) return f64_from_bits(0x7ff0000000000000ull);
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double n = (x * 1.4426950408889634 + shifter) - shifter;
    double r = x - n * 6.93147180369123816490e-01;  /* ln2 high (32 bits) */
    r = r - n * 1.90821492927058770002e-10;         /* ln2 low */
    double p = 1.0 / 6227020800.0;                  /* 1/13! */
    static const double inv_fact[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                        1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                        1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int i = 0; i < 13; i++) p = p * r + inv_fact[i];
    int64_t k = (int64_t)n;                          /* -1021..1023 */
    return f64_from_bits(f64_bits(p) + ((uint64_t)k << 52));
}

double lmz_log(double x) {
    if (!(x > 0)) return f64_from_bits(0x7ff8000000000000ull); /* nan for x <= 0 or nan */
    uint64_t u = f64_bits(x);
    int e = (int)((u >> 52) & 0x7ff);
    if (e == 0) { /* subnormal: scale into the normal range */
        x *= 18014398509481984.0; /* 2^54 */
        u = f64_bits(x);
        e = (int)((u >> 52) & 0x7ff) - 54;
    }
    e -= 1023;
    double m = f64_from_bits((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e += 1;
    }
    /* log m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716 */
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double p = 1.0 / 25.0;
    for (int k = 23; k >= 1; k -= 2) p = p * s2 + 1.0 / k;
    double log_m = 2.0 * s * p;
    return (double)e * 6.93147180369123816490e-01 + ((double)e * 1.90821492927058770002e-10 + log_m);
}

/* sin and cos of r for |r| <= pi/4 (Taylor to degree 17/16: error < 1e-17). */
static double sin_kernel(double r) {
    double r2 = r * r;
    double p = -1.0 / 355687428096000.0; /* -1/17! */
    static const double c[7] = {1.0 / 20922789888000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0,
                                -1.0 / 39916800.0, 1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0};
    for (int i = 0; i < 7; i++) p = p * r2 + c[i];
    p = p * r2 - 1.0 / 6.0;
    return r + r * r2 * p;
}

static double cos_kernel(double r) {
    double r2 = r * r;
    double p = 1.0 / 20922789888000.0; /* 1/16! */
    static const double c[6] = {-1.0 / 87178291200.0, 1.0 / 479001600.0, -1.0 / 3628800.0,
                                1.0 / 40320.0, -1.0 / 720.0, 1.0 / 24.0};
    for (int i = 0; i < 6; i++) p = p * r2 + c[i];
    return 1.0 - 0.5 * r2 + r2 * r2 * p;
}

/* x = k pi/2 + r with |r| <= pi/4; three-part pi/2 (33 + 33 + 53 bits) keeps k*part exact for |k| < 2^20. */
static double reduce_half_pi(double x, int *quadrant) {
    double k = (x * 0.63661977236758134308 + 6755399441055744.0) - 6755399441055744.0;
    double r = x - k * 1.57079632673412561417e+00;
    r = r - k * 6.07710050650619224932e-11;
    r = r - k * 2.02226624879595063154e-21;
    *quadrant = (int)((int64_t)k & 3);
    return r;
}

double lmz_sin(double x) {
    int q;
    double r = reduce_half_pi(x, &q);
    switch (q) {
    case 0: return sin_kernel(r);
    case 1: return cos_kernel(r);
    case 2: return -sin_kernel(r);
    default: return -cos_kernel(r);
    }
}

double lmz_cos(double x) {
    int q;
    double r = reduce_half_pi(x, &q);
    switch (q) {
    case 0: return cos_kernel(r);
    case 1: return -sin_kernel(r);
    case 2: return -cos_kernel(r);
    default: return sin_kernel(r);
    }
}

double lmz_pow(double base, double e) { return lmz_exp(e * lmz_log(base)); }
