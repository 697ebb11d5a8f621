// AVX2 row softmax (contract: SoftmaxRowFn in kernels.h), 8 floats per
// vector, the last n % 8 by _mm256_maskload_ps / _mm256_maskstore_ps. Three
// passes, as f32_softmax_row_avx512.cpp:
//   1. max of s = scale * x + mask (one FMA per vector, as the reference);
//   2. y = exp(s - max), summed in 4 x 8 float lanes;
//   3. y *= 1 / sum.
// Pass 2 recomputes s from x and mask instead of storing it, and writes y[i]
// only after reading x[i], so x and y may alias.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 8;

template <bool kMasked>
inline __m256 scores(const float* x, const float* mask, __m256 scale, size_t i) {
  const __m256 xv = _mm256_loadu_ps(x + i);
  if (kMasked) return _mm256_fmadd_ps(scale, xv, _mm256_loadu_ps(mask + i));
  return _mm256_mul_ps(scale, xv);
}

// The lanes in `active` of the scores at i (the others 0).
template <bool kMasked>
inline __m256 tail_scores(const float* x, const float* mask, __m256 scale, size_t i, __m256i active) {
  const __m256 xv = _mm256_maskload_ps(x + i, active);
  if (kMasked) return _mm256_fmadd_ps(scale, xv, _mm256_maskload_ps(mask + i, active));
  return _mm256_mul_ps(scale, xv);
}

template <bool kMasked>
void softmax_row(size_t n, const float* x, float scale_value, const float* mask, float* y) {
  const __m256 scale = _mm256_set1_ps(scale_value);
  const size_t body = n - n % kLanes;
  const __m256i tail = vtail_mask_avx2(n % kLanes);
  const __m256 tail_lanes = _mm256_castsi256_ps(tail);

  // Pass 1. A NaN score may be dropped by max_ps, but it reaches the sum.
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
  __m256 max0 = minus_inf, max1 = minus_inf, max2 = minus_inf, max3 = minus_inf;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    max0 = _mm256_max_ps(max0, scores<kMasked>(x, mask, scale, i));
    max1 = _mm256_max_ps(max1, scores<kMasked>(x, mask, scale, i + kLanes));
    max2 = _mm256_max_ps(max2, scores<kMasked>(x, mask, scale, i + 2 * kLanes));
    max3 = _mm256_max_ps(max3, scores<kMasked>(x, mask, scale, i + 3 * kLanes));
  }
  for (; i < body; i += kLanes) max0 = _mm256_max_ps(max0, scores<kMasked>(x, mask, scale, i));
  if (i < n) {
    max0 = _mm256_max_ps(max0, _mm256_blendv_ps(minus_inf, tail_scores<kMasked>(x, mask, scale, i, tail), tail_lanes));
  }
  float max_value = vreduce_max_avx2(_mm256_max_ps(_mm256_max_ps(max0, max1), _mm256_max_ps(max2, max3)));
  // Every score -inf (or NaN): with max = 0 each term is exp(-inf) = 0 (or
  // NaN), the sum is 0 and the row becomes zeros (or NaN) in pass 3.
  if (max_value == -INFINITY) max_value = 0.0f;
  const __m256 max = _mm256_set1_ps(max_value);

  // Pass 2.
  __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  for (i = 0; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const __m256 e0 = vexp_avx2(_mm256_sub_ps(scores<kMasked>(x, mask, scale, i), max));
    const __m256 e1 = vexp_avx2(_mm256_sub_ps(scores<kMasked>(x, mask, scale, i + kLanes), max));
    const __m256 e2 = vexp_avx2(_mm256_sub_ps(scores<kMasked>(x, mask, scale, i + 2 * kLanes), max));
    const __m256 e3 = vexp_avx2(_mm256_sub_ps(scores<kMasked>(x, mask, scale, i + 3 * kLanes), max));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + kLanes, e1);
    _mm256_storeu_ps(y + i + 2 * kLanes, e2);
    _mm256_storeu_ps(y + i + 3 * kLanes, e3);
    sum0 = _mm256_add_ps(sum0, e0);
    sum1 = _mm256_add_ps(sum1, e1);
    sum2 = _mm256_add_ps(sum2, e2);
    sum3 = _mm256_add_ps(sum3, e3);
  }
  for (; i < body; i += kLanes) {
    const __m256 e = vexp_avx2(_mm256_sub_ps(scores<kMasked>(x, mask, scale, i), max));
    _mm256_storeu_ps(y + i, e);
    sum0 = _mm256_add_ps(sum0, e);
  }
  if (i < n) {
    const __m256 e = vexp_avx2(_mm256_sub_ps(tail_scores<kMasked>(x, mask, scale, i, tail), max));
    _mm256_maskstore_ps(y + i, tail, e);
    sum0 = _mm256_add_ps(sum0, _mm256_and_ps(e, tail_lanes));
  }
  const float sum = vreduce_add_avx2(_mm256_add_ps(_mm256_add_ps(sum0, sum1), _mm256_add_ps(sum2, sum3)));

  // Pass 3. sum >= 1 unless every term was 0 (or the sum is NaN).
  const __m256 inverse = _mm256_set1_ps(sum == 0.0f ? 0.0f : 1.0f / sum);
  for (i = 0; i < body; i += kLanes) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inverse));
  if (i < n) _mm256_maskstore_ps(y + i, tail, _mm256_mul_ps(_mm256_maskload_ps(y + i, tail), inverse));
}

}  // namespace

void f32_softmax_row_avx2(size_t n, const float* x, float scale, const float* mask, float* y) {
  if (mask != nullptr) {
    softmax_row<true>(n, x, scale, mask, y);
  } else {
    softmax_row<false>(n, x, scale, mask, y);
  }
}

}  // namespace simdformer
