// Vector exp, erfc, GELU and reductions for AVX2 + FMA (8 floats per __m256), shared by
// the row-op kernels and the GEMM epilogue of this folder. Include only from
// files compiled with this folder's flags. Method, constants, special values
// and the derivation of the error bounds: see ../avx512/vmath_avx512.h; the
// only difference is the scaling by 2^n, done here by two exact power-of-two
// multiplies (no scalef), so the result is still rounded once into the
// subnormal range. Errors measured over every 97th float bit pattern against
// long double expl / erfcl: exp 0.87 ulp, erfc 2.9 ulp, gelu 4.1 ulp (the
// same as AVX-512 on that sample).
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace simdformer {

// exp(r) for |r| <= ~0.36, before scaling by 2^n.
static inline __m256 vexp_poly_avx2(__m256 r) {
  __m256 p = _mm256_set1_ps(1.381461276e-03f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.368710056e-03f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166838899e-02f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666652113e-01f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.999999404e-01f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  return _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
}

// p * 2^n for integral n: n is clamped to [-160, 128] (p * 2^-160 is 0 and
// p * 2^128 is inf for the p that occur) and split into two halves whose
// powers of two are normal floats, so only the last multiply rounds.
static inline __m256 vscale_avx2(__m256 p, __m256 n) {
  __m256i k = _mm256_cvtps_epi32(n);
  k = _mm256_min_epi32(_mm256_max_epi32(k, _mm256_set1_epi32(-160)), _mm256_set1_epi32(128));
  const __m256i k1 = _mm256_srai_epi32(k, 1);
  const __m256i k2 = _mm256_sub_epi32(k, k1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static inline __m256 vexp_avx2(__m256 x) {
  // Clamp to where exp is 0 or inf anyway, so that +-inf never meets
  // n * ln2 (inf - inf). max(lo, x) and min(hi, x) return x when x is NaN.
  x = _mm256_max_ps(_mm256_set1_ps(-105.0f), x);
  x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.442695022f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(6.931471825e-01f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-1.904654212e-09f), r);
  return vscale_avx2(vexp_poly_avx2(r), n);
}

// c * erfc(z) for 0 <= z <= 10.61 (not checked), |c| <= 8, given
// z^2 = z2_hi + z2_lo with |z2_lo| <= ulp(z2_hi). The product is rounded
// once into the subnormal range, so a tiny result keeps its precision.
static inline __m256 verfc_scaled_avx2(__m256 z, __m256 z2_hi, __m256 z2_lo, __m256 c) {
  const __m256 two = _mm256_set1_ps(2.0f);
  const __m256 d = _mm256_add_ps(two, z);
  const __m256 t = _mm256_div_ps(two, d);
  const __m256 u = _mm256_sub_ps(t, _mm256_set1_ps(5.780000091e-01f));
  __m256 p = _mm256_set1_ps(-1.265487075e-01f);
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.510050297e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.281889081e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-2.504629493e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-4.237395525e-02f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(2.966935337e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-4.264704138e-02f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-4.065715671e-01f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(9.720493108e-02f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.367734909e+00f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-5.658926368e-01f));
  // exp(P - z2_hi - z2_lo), reduced as in vmath_avx512.h.
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(p, z2_hi), _mm256_set1_ps(1.442695022f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmsub_ps(n, _mm256_set1_ps(6.931471825e-01f), z2_hi);
  r = _mm256_add_ps(r, p);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-1.904654212e-09f), r);
  r = _mm256_sub_ps(r, z2_lo);
  // Put back the rounding of t (see vmath_avx512.h).
  const __m256 d_lo = _mm256_add_ps(_mm256_sub_ps(_mm256_max_ps(two, z), d), _mm256_min_ps(two, z));
  const __m256 rho = _mm256_fnmadd_ps(t, d_lo, _mm256_fnmadd_ps(t, d, two));
  const __m256 half_g = _mm256_fmadd_ps(_mm256_set1_ps(0.677454f), u, _mm256_set1_ps(0.881893f));
  const __m256 ct = _mm256_mul_ps(c, t);
  const __m256 prefactor = _mm256_fmadd_ps(_mm256_mul_ps(ct, rho), half_g, ct);
  return vscale_avx2(_mm256_mul_ps(vexp_poly_avx2(r), prefactor), n);
}

static inline __m256 vgelu_avx2(__m256 x) {
  // a = min(|x|, 15); min(15, a) returns a when a is NaN.
  const __m256 a = _mm256_min_ps(_mm256_set1_ps(15.0f), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x));
  // a^2 / 2 as hi + lo (see vmath_avx512.h).
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 a2 = _mm256_mul_ps(a, a);
  const __m256 a2_lo = _mm256_fmsub_ps(a, a, a2);
  const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  // x < 0: gelu = -a/2 * erfc(a/sqrt2) directly; else Phi(-a) = erfc(a/sqrt2) / 2.
  const __m256 c = _mm256_blendv_ps(half, _mm256_mul_ps(a, _mm256_set1_ps(-0.5f)), negative);
  const __m256 e = verfc_scaled_avx2(_mm256_mul_ps(a, _mm256_set1_ps(7.071067691e-01f)), _mm256_mul_ps(a2, half),
                                     _mm256_mul_ps(a2_lo, half), c);
  // x - x is NaN only for x = -inf, which gives NaN like PyTorch's -inf * 0.
  const __m256 positive_result = _mm256_mul_ps(x, _mm256_sub_ps(_mm256_set1_ps(1.0f), e));
  return _mm256_blendv_ps(positive_result, _mm256_add_ps(e, _mm256_sub_ps(x, x)), negative);
}

// Lanes [0, count) set, for _mm256_maskload_ps / _mm256_maskstore_ps
// (masked-off lanes are neither read nor written). count <= 8.
static inline __m256i vtail_mask_avx2(size_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float vreduce_add_avx2(__m256 v) {
  __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
  sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
  return _mm_cvtss_f32(sum);
}

static inline float vreduce_max_avx2(__m256 v) {
  __m128 max = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  max = _mm_max_ps(max, _mm_movehl_ps(max, max));
  max = _mm_max_ss(max, _mm_movehdup_ps(max));
  return _mm_cvtss_f32(max);
}

}  // namespace simdformer
