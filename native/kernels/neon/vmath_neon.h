// Vector exp, erfc and GELU for AArch64 NEON (4 floats per float32x4_t),
// shared by the row-op kernels and the GEMM epilogue of this folder. Method,
// constants, special values and the derivation of the error bounds: see
// ../avx512/vmath_avx512.h; the scaling by 2^n is done by two exact
// power-of-two multiplies as in ../avx2/vmath_avx2.h, with the same operations
// in the same order (vfmaq_f32 is fused like _mm256_fmadd_ps). Errors measured
// under qemu over every 997th float bit pattern against 128-bit long double:
// exp 0.82 ulp, erfc 2.6 ulp, gelu 3.7 ulp.
#pragma once

#include <arm_neon.h>

namespace simdformer {

// exp(r) for |r| <= ~0.36, before scaling by 2^n.
static inline float32x4_t vexp_poly_neon(float32x4_t r) {
  float32x4_t p = vdupq_n_f32(1.381461276e-03f);
  p = vfmaq_f32(vdupq_n_f32(8.368710056e-03f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.166838899e-02f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.666652113e-01f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.999999404e-01f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  return vfmaq_f32(vdupq_n_f32(1.0f), p, r);
}

// p * 2^n for integral n: n is clamped to [-160, 128] (p * 2^-160 is 0 and
// p * 2^128 is inf for the p that occur) and split into two halves whose
// powers of two are normal floats, so only the last multiply rounds.
static inline float32x4_t vscale_neon(float32x4_t p, float32x4_t n) {
  int32x4_t k = vcvtq_s32_f32(n);
  k = vminq_s32(vmaxq_s32(k, vdupq_n_s32(-160)), vdupq_n_s32(128));
  const int32x4_t k1 = vshrq_n_s32(k, 1);
  const int32x4_t k2 = vsubq_s32(k, k1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
  return vmulq_f32(vmulq_f32(p, s1), s2);
}

static inline float32x4_t vexp_neon(float32x4_t x) {
  // Clamp to where exp is 0 or inf anyway, so that +-inf never meets
  // n * ln2 (inf - inf); vmaxq / vminq return NaN when x is NaN.
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-105.0f)), vdupq_n_f32(89.0f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.442695022f)));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(6.931471825e-01f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-1.904654212e-09f));
  return vscale_neon(vexp_poly_neon(r), n);
}

// c * erfc(z) for 0 <= z <= 10.61 (not checked), |c| <= 8, given
// z^2 = z2_hi + z2_lo with |z2_lo| <= ulp(z2_hi). The product is rounded
// once into the subnormal range, so a tiny result keeps its precision.
static inline float32x4_t verfc_scaled_neon(float32x4_t z, float32x4_t z2_hi, float32x4_t z2_lo, float32x4_t c) {
  const float32x4_t two = vdupq_n_f32(2.0f);
  const float32x4_t d = vaddq_f32(two, z);
  const float32x4_t t = vdivq_f32(two, d);
  const float32x4_t u = vsubq_f32(t, vdupq_n_f32(5.780000091e-01f));
  float32x4_t p = vdupq_n_f32(-1.265487075e-01f);
  p = vfmaq_f32(vdupq_n_f32(1.510050297e-01f), p, u);
  p = vfmaq_f32(vdupq_n_f32(1.281889081e-01f), p, u);
  p = vfmaq_f32(vdupq_n_f32(-2.504629493e-01f), p, u);
  p = vfmaq_f32(vdupq_n_f32(-4.237395525e-02f), p, u);
  p = vfmaq_f32(vdupq_n_f32(2.966935337e-01f), p, u);
  p = vfmaq_f32(vdupq_n_f32(-4.264704138e-02f), p, u);
  p = vfmaq_f32(vdupq_n_f32(-4.065715671e-01f), p, u);
  p = vfmaq_f32(vdupq_n_f32(9.720493108e-02f), p, u);
  p = vfmaq_f32(vdupq_n_f32(1.367734909e+00f), p, u);
  p = vfmaq_f32(vdupq_n_f32(-5.658926368e-01f), p, u);
  // exp(P - z2_hi - z2_lo), reduced as in vmath_avx512.h.
  const float32x4_t n = vrndnq_f32(vmulq_f32(vsubq_f32(p, z2_hi), vdupq_n_f32(1.442695022f)));
  float32x4_t r = vfmsq_f32(vnegq_f32(z2_hi), n, vdupq_n_f32(6.931471825e-01f));
  r = vaddq_f32(r, p);
  r = vfmsq_f32(r, n, vdupq_n_f32(-1.904654212e-09f));
  r = vsubq_f32(r, z2_lo);
  // Put back the rounding of t (see vmath_avx512.h).
  const float32x4_t d_lo = vaddq_f32(vsubq_f32(vmaxq_f32(two, z), d), vminq_f32(two, z));
  const float32x4_t rho = vfmsq_f32(vfmsq_f32(two, t, d), t, d_lo);
  const float32x4_t half_g = vfmaq_f32(vdupq_n_f32(0.881893f), vdupq_n_f32(0.677454f), u);
  const float32x4_t ct = vmulq_f32(c, t);
  const float32x4_t prefactor = vfmaq_f32(ct, vmulq_f32(ct, rho), half_g);
  return vscale_neon(vmulq_f32(vexp_poly_neon(r), prefactor), n);
}

static inline float32x4_t vgelu_neon(float32x4_t x) {
  // a = min(|x|, 15); vminq returns NaN when a is NaN.
  const float32x4_t a = vminq_f32(vabsq_f32(x), vdupq_n_f32(15.0f));
  // a^2 / 2 as hi + lo (see vmath_avx512.h).
  const float32x4_t half = vdupq_n_f32(0.5f);
  const float32x4_t a2 = vmulq_f32(a, a);
  const float32x4_t a2_lo = vfmaq_f32(vnegq_f32(a2), a, a);
  const uint32x4_t negative = vcltq_f32(x, vdupq_n_f32(0.0f));
  // x < 0: gelu = -a/2 * erfc(a/sqrt2) directly; else Phi(-a) = erfc(a/sqrt2) / 2.
  const float32x4_t c = vbslq_f32(negative, vmulq_f32(a, vdupq_n_f32(-0.5f)), half);
  const float32x4_t e = verfc_scaled_neon(vmulq_f32(a, vdupq_n_f32(7.071067691e-01f)), vmulq_f32(a2, half),
                                          vmulq_f32(a2_lo, half), c);
  // x - x is NaN only for x = -inf, which gives NaN like PyTorch's -inf * 0.
  const float32x4_t positive_result = vmulq_f32(x, vsubq_f32(vdupq_n_f32(1.0f), e));
  return vbslq_f32(negative, vaddq_f32(e, vsubq_f32(x, x)), positive_result);
}

}  // namespace simdformer
