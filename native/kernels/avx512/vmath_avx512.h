// Vector exp, erfc and GELU for AVX-512F (16 floats per __m512), shared by
// the row-op kernels and the GEMM epilogue of this folder. Include only from
// files compiled with this folder's flags. vmath_avx2.h and vmath_neon.h use
// the same method and constants; only the final scaling by 2^n differs.
// Errors below were measured over every 31st float bit pattern against
// long double expl / erfcl (harness outside the repository).
//
// exp(x): Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, with ln2
//   split into a float head and tail; with FMA, x - n * ln2_head is exact
//   (Cody & Waite, "Software Manual for the Elementary Functions", 1980;
//   Muller, "Elementary Functions", 3rd ed., ch. 11). exp(r) = 1 + r + r^2 q(r)
//   with q of degree 4, a minimax fit for relative error on [-ln2/2, ln2/2]
//   (fitted for simdformer by Lawson's iteratively reweighted least squares;
//   approximation error 3.1e-9), then p * 2^n by scalef, which rounds once
//   and handles overflow and gradual underflow. Max error 0.88 ulp.
//   exp(-inf) = +0 exactly, exp(+inf) = +inf, NaN -> NaN.
//
// erfc(z), 0 <= z <= 10.61: erfc(z) = t * exp(-z^2 + P(t)), t = 2 / (2 + z),
//   the form of Numerical Recipes' erfcc (Press et al., 2nd ed., sec. 6.2),
//   with our own degree-10 fit of P in u = t - 0.578 over t in [0.1586, 1]
//   (coefficients rounded to float one at a time from the highest degree,
//   the rest refitted each time, and the centre 0.578 picked where that
//   loses least: absolute error of P, hence relative error of erfc, 1.0e-8;
//   fitted by Lawson's algorithm against mpmath). z^2 comes in as an
//   unevaluated sum hi + lo, so the rounding of z^2 (up to 112) does not
//   become a relative error of the result. Max error 3.2 ulp.
//
// gelu(x) = x * Phi(x) with Phi(x) = 1 - Phi(-x) and Phi(-|x|) = erfc(|x|/sqrt2)/2,
//   so for x < 0 it is computed from erfc directly instead of by the
//   cancelling 1 + erf(x / sqrt2). |x| is clamped to 15 first, beyond which
//   Phi(-|x|) underflows. Max error 4.9 ulp (relative 3.2e-7) against
//   0.5 x erfc(-x / sqrt2) where the result is normal, 3 subnormal ulps below.
//   gelu(+inf) = +inf, gelu(-inf) = NaN (PyTorch's -inf * 0), NaN -> NaN.
#pragma once

#include <immintrin.h>

namespace simdformer {

// exp(r) for |r| <= ~0.36, before scaling by 2^n.
static inline __m512 vexp_poly_avx512(__m512 r) {
  __m512 p = _mm512_set1_ps(1.381461276e-03f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.368710056e-03f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166838899e-02f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666652113e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999999404e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
}

static inline __m512 vexp_avx512(__m512 x) {
  // Clamp to where exp is 0 or inf anyway, so that +-inf never meets
  // n * ln2 (inf - inf). max(lo, x) and min(hi, x) return x when x is NaN.
  x = _mm512_max_ps(_mm512_set1_ps(-105.0f), x);
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.442695022f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(6.931471825e-01f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654212e-09f), r);
  return _mm512_scalef_ps(vexp_poly_avx512(r), n);
}

// c * erfc(z) for 0 <= z <= 10.61 (not checked), |c| <= 8, given
// z^2 = z2_hi + z2_lo with |z2_lo| <= ulp(z2_hi). The product is rounded
// once into the subnormal range, so a tiny result keeps its precision.
static inline __m512 verfc_scaled_avx512(__m512 z, __m512 z2_hi, __m512 z2_lo, __m512 c) {
  const __m512 two = _mm512_set1_ps(2.0f);
  const __m512 d = _mm512_add_ps(two, z);
  const __m512 t = _mm512_div_ps(two, d);
  const __m512 u = _mm512_sub_ps(t, _mm512_set1_ps(5.780000091e-01f));
  __m512 p = _mm512_set1_ps(-1.265487075e-01f);
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.510050297e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.281889081e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-2.504629493e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.237395525e-02f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(2.966935337e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.264704138e-02f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-4.065715671e-01f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(9.720493108e-02f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.367734909e+00f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-5.658926368e-01f));
  // exp(P - z2_hi - z2_lo): n from the rounded sum, then -z2_hi - n*ln2_hi,
  // which is exact here (the low set bit of ln2_hi is 2^-21, |result| < 2),
  // before the small terms are added.
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_sub_ps(p, z2_hi), _mm512_set1_ps(1.442695022f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmsub_ps(n, _mm512_set1_ps(6.931471825e-01f), z2_hi);
  r = _mm512_add_ps(r, p);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-1.904654212e-09f), r);
  r = _mm512_sub_ps(r, z2_lo);
  // The rounding of t (relative error rho / 2) would be amplified by
  // g(t) = 1 + t P'(t), between 1.18 and 2.26, so put it back: rho is
  // 2 - t * (2 + z) from the exact division residual and the rounding error
  // of 2 + z (Fast2Sum), and g / 2 ~ 0.677 u + 0.882 (max error 4%).
  const __m512 d_lo =
      _mm512_add_ps(_mm512_sub_ps(_mm512_max_ps(two, z), d), _mm512_min_ps(two, z));
  const __m512 rho = _mm512_fnmadd_ps(t, d_lo, _mm512_fnmadd_ps(t, d, two));
  const __m512 half_g = _mm512_fmadd_ps(_mm512_set1_ps(0.677454f), u, _mm512_set1_ps(0.881893f));
  const __m512 ct = _mm512_mul_ps(c, t);
  const __m512 prefactor = _mm512_fmadd_ps(_mm512_mul_ps(ct, rho), half_g, ct);
  return _mm512_scalef_ps(_mm512_mul_ps(vexp_poly_avx512(r), prefactor), n);
}

static inline __m512 vgelu_avx512(__m512 x) {
  // a = min(|x|, 15); min(15, a) returns a when a is NaN.
  const __m512 a = _mm512_min_ps(_mm512_set1_ps(15.0f), _mm512_abs_ps(x));
  // a^2 / 2 as hi + lo: the FMA gives the exact rounding error of a * a,
  // and halving is exact (or a^2 is so small that its tail does not matter).
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 a2 = _mm512_mul_ps(a, a);
  const __m512 a2_lo = _mm512_fmsub_ps(a, a, a2);
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  // x < 0: gelu = -a/2 * erfc(a/sqrt2) directly; else Phi(-a) = erfc(a/sqrt2) / 2.
  const __m512 c = _mm512_mask_mul_ps(half, negative, half, _mm512_sub_ps(_mm512_setzero_ps(), a));
  const __m512 e = verfc_scaled_avx512(_mm512_mul_ps(a, _mm512_set1_ps(7.071067691e-01f)), _mm512_mul_ps(a2, half),
                                       _mm512_mul_ps(a2_lo, half), c);
  // x - x is NaN only for x = -inf, which gives NaN like PyTorch's -inf * 0.
  const __m512 positive_result = _mm512_mul_ps(x, _mm512_sub_ps(_mm512_set1_ps(1.0f), e));
  return _mm512_mask_blend_ps(negative, positive_result, _mm512_add_ps(e, _mm512_sub_ps(x, x)));
}

}  // namespace simdformer
