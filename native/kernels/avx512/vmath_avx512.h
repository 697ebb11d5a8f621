// Vector exp, erfc and GELU for AVX-512F (16 floats per __m512), shared by
// the row-op kernels and the GEMM epilogue of this folder. Include only from
// files compiled with this folder's flags. The same methods and constants are
// used by vmath_avx2.h and vmath_neon.h; only the scaling by 2^n differs.
//
// exp(x): Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, with ln2
//   split into a float head and tail; with FMA, x - n*ln2_head is exact
//   (Cody & Waite, "Software Manual for the Elementary Functions", 1980;
//   Muller, "Elementary Functions", 3rd ed., ch. 11). exp(r) = 1 + r + r^2 q(r)
//   with q of degree 4, a minimax fit for relative error on [-ln2/2, ln2/2]
//   (fitted for simdformer by Lawson's reweighted least squares; truncation
//   error 3.1e-9), then scalef(p, n) = p * 2^n, which rounds once and handles
//   overflow to inf and gradual underflow. Measured over every float in
//   [-104, 89]: max error 1 ulp vs exp rounded from double. exp(-inf) = +0
//   exactly, exp(+inf) = +inf, NaN -> NaN.
//
// erfc(z), 0 <= z <= 10.61: erfc(z) = t * exp(-z^2 + P(t)), t = 2 / (2 + z),
//   the form of Numerical Recipes' erfcc (Press et al., 2nd ed., sec. 6.2),
//   with our own degree-10 fit of P in u = t - 0.575 over t in [0.1586, 1]
//   (absolute error of P, hence relative error of erfc, 8.3e-9). z^2 comes in
//   as an unevaluated sum hi + lo, and -hi is range-reduced on its own so the
//   rounding of z^2 (up to 112) does not become a relative error of the
//   result. Measured: max relative error 3.1e-7 (about 3 ulp).
//
// gelu(x) = x * Phi(x) with Phi(x) = 1 - Phi(-x) and Phi(-|x|) = erfc(|x|/sqrt2)/2,
//   so the tail x < 0 is computed from erfc directly instead of by the
//   cancelling 1 + erf(x / sqrt2). |x| is clamped to 15 first, beyond which
//   Phi(-|x|) underflows to 0. Measured over every float: max relative error
//   3 ulp vs 0.5 x erfc(-x/sqrt2) in double where the result is normal.
//   gelu(+inf) = +inf, gelu(-inf) = NaN (PyTorch's -inf * 0), NaN -> NaN.
#pragma once

#include <immintrin.h>

namespace simdformer {

// exp(r) * 2^n for |r| <= ~0.36 and integral n (any magnitude, as floats).
static inline __m512 vexp_reduced_avx512(__m512 r, __m512 n) {
  __m512 p = _mm512_set1_ps(1.381461276e-03f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.368710056e-03f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166838899e-02f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666652113e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999999404e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

static inline __m512 vexp_avx512(__m512 x) {
  // Clamp to where exp is 0 or inf anyway, so that +-inf never meets
  // n * ln2 (inf - inf). max(lo, x) and min(hi, x) return x when x is NaN.
  x = _mm512_max_ps(_mm512_set1_ps(-105.0f), x);
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.442695022f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(6.931471825e-01f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654212e-09f), r);
  return vexp_reduced_avx512(r, n);
}

// erfc(z) for 0 <= z <= 10.61 (not checked), z^2 = z2_hi + z2_lo with
// |z2_lo| <= ulp(z2_hi) / 2.
static inline __m512 verfc_avx512(__m512 z, __m512 z2_hi, __m512 z2_lo) {
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(_mm512_set1_ps(2.0f), z));
  const __m512 u = _mm512_sub_ps(t, _mm512_set1_ps(0.575f));
  __m512 p = _mm512_set1_ps(-1.265485287e-01f);
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.548015177e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.240604371e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-2.534901500e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-3.708224744e-02f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(2.974087298e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.710294306e-02f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.060330689e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.008616984e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.367140651e+00f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-5.699949861e-01f));
  // exp(P - z2_hi - z2_lo): n from the rounded sum, then -z2_hi - n*ln2
  // (|result| < 2, one rounding) before the small terms are added.
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_sub_ps(p, z2_hi), _mm512_set1_ps(1.442695022f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmsub_ps(n, _mm512_set1_ps(6.931471825e-01f), z2_hi);
  r = _mm512_add_ps(r, p);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654212e-09f), r);
  r = _mm512_sub_ps(r, z2_lo);
  return _mm512_mul_ps(t, vexp_reduced_avx512(r, n));
}

static inline __m512 vgelu_avx512(__m512 x) {
  // a = min(|x|, 15); min(15, a) returns a when a is NaN.
  const __m512 a = _mm512_min_ps(_mm512_set1_ps(15.0f), _mm512_abs_ps(x));
  // a^2 / 2 as hi + lo: the FMA gives the exact rounding error of a * a,
  // and halving is exact (a^2 >= 2^-126 or the tail does not matter).
  const __m512 a2 = _mm512_mul_ps(a, a);
  const __m512 a2_lo = _mm512_fmsub_ps(a, a, a2);
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 tail = _mm512_mul_ps(
      half, verfc_avx512(_mm512_mul_ps(a, _mm512_set1_ps(7.071067691e-01f)), _mm512_mul_ps(a2, half),
                         _mm512_mul_ps(a2_lo, half)));  // Phi(-|x|)
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 phi = _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(1.0f), tail), tail);
  return _mm512_mul_ps(x, phi);
}

}  // namespace simdformer
