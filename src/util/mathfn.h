/* mathfn.h — lmz's own transcendental functions.
 *
 * libm's exp/sin/cos/tanh/pow differ between C libraries, versions and CPUs in the last
 * bits, which would break the bit-exact logits contract (docs/determinism.md). These are
 * built only from IEEE-754 +, -, *, / and integer bit manipulation, so every machine
 * computes the same bits. The float versions have SIMD twins in kernels/ that apply the
 * identical operation sequence lane by lane. */
#ifndef LMZ_MATHFN_H
#define LMZ_MATHFN_H

#include <stdint.h>

/* e^x in f32, max error ~2 ulp; 0 below -86.5, +inf above 88 (saturating, never subnormal). */
float lmz_expf(float x);
/* tanh in f32 from lmz_expf. */
float lmz_tanhf(float x);
/* SiLU x / (1 + e^-x). */
float lmz_siluf(float x);
/* GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
float lmz_geluf(float x);

/* Double precision, accurate to ~1 ulp for the argument ranges lmz uses (|x| < 2^20 for sin/cos). */
double lmz_exp(double x);
double lmz_log(double x);   /* x > 0 */
double lmz_sin(double x);
double lmz_cos(double x);
double lmz_pow(double base, double e); /* base > 0 */

#endif
