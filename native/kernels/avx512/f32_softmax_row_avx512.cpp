// AVX-512 row softmax (contract: SoftmaxRowFn in kernels.h), 16 floats per
// vector, the last n % 16 by masked loads and stores. Three passes:
//   1. max of s = scale * x + mask (one FMA per vector, as the reference);
//   2. y = exp(s - max), summed in 4 x 16 float lanes;
//   3. y *= 1 / sum.
// Pass 2 recomputes s from x and mask instead of storing it, and writes y[i]
// only after reading x[i], so x and y may alias.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx512.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 16;

// Scores of the lanes in `active` of x[i..i+16) (inactive lanes are junk).
template <bool kMasked>
inline __m512 load_scores(const float* x, const float* mask, __m512 scale, size_t i, __mmask16 active) {
  const __m512 xv = _mm512_maskz_loadu_ps(active, x + i);
  if (kMasked) return _mm512_fmadd_ps(scale, xv, _mm512_maskz_loadu_ps(active, mask + i));
  return _mm512_mul_ps(scale, xv);
}

template <bool kMasked>
void softmax_row(size_t n, const float* x, float scale_value, const float* mask, float* y) {
  const __m512 scale = _mm512_set1_ps(scale_value);
  const __mmask16 all = 0xFFFF;
  const __mmask16 tail = static_cast<__mmask16>((1u << (n % kLanes)) - 1u);
  const size_t body = n - n % kLanes;

  // Pass 1. A NaN score may be dropped by max_ps, but it reaches the sum.
  __m512 max0 = _mm512_set1_ps(-INFINITY), max1 = max0, max2 = max0, max3 = max0;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    max0 = _mm512_max_ps(max0, load_scores<kMasked>(x, mask, scale, i, all));
    max1 = _mm512_max_ps(max1, load_scores<kMasked>(x, mask, scale, i + kLanes, all));
    max2 = _mm512_max_ps(max2, load_scores<kMasked>(x, mask, scale, i + 2 * kLanes, all));
    max3 = _mm512_max_ps(max3, load_scores<kMasked>(x, mask, scale, i + 3 * kLanes, all));
  }
  for (; i < body; i += kLanes) max0 = _mm512_max_ps(max0, load_scores<kMasked>(x, mask, scale, i, all));
  if (tail != 0) max0 = _mm512_mask_max_ps(max0, tail, max0, load_scores<kMasked>(x, mask, scale, i, tail));
  float max_value = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(max0, max1), _mm512_max_ps(max2, max3)));
  // Every score -inf (or NaN): with max = 0 each term is exp(-inf) = 0 (or
  // NaN), the sum is 0 and the row becomes zeros (or NaN) in pass 3.
  if (max_value == -INFINITY) max_value = 0.0f;
  const __m512 max = _mm512_set1_ps(max_value);

  // Pass 2.
  __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  for (i = 0; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const __m512 e0 = vexp_avx512(_mm512_sub_ps(load_scores<kMasked>(x, mask, scale, i, all), max));
    const __m512 e1 = vexp_avx512(_mm512_sub_ps(load_scores<kMasked>(x, mask, scale, i + kLanes, all), max));
    const __m512 e2 = vexp_avx512(_mm512_sub_ps(load_scores<kMasked>(x, mask, scale, i + 2 * kLanes, all), max));
    const __m512 e3 = vexp_avx512(_mm512_sub_ps(load_scores<kMasked>(x, mask, scale, i + 3 * kLanes, all), max));
    _mm512_storeu_ps(y + i, e0);
    _mm512_storeu_ps(y + i + kLanes, e1);
    _mm512_storeu_ps(y + i + 2 * kLanes, e2);
    _mm512_storeu_ps(y + i + 3 * kLanes, e3);
    sum0 = _mm512_add_ps(sum0, e0);
    sum1 = _mm512_add_ps(sum1, e1);
    sum2 = _mm512_add_ps(sum2, e2);
    sum3 = _mm512_add_ps(sum3, e3);
  }
  for (; i < body; i += kLanes) {
    const __m512 e = vexp_avx512(_mm512_sub_ps(load_scores<kMasked>(x, mask, scale, i, all), max));
    _mm512_storeu_ps(y + i, e);
    sum0 = _mm512_add_ps(sum0, e);
  }
  if (tail != 0) {
    const __m512 e = vexp_avx512(_mm512_sub_ps(load_scores<kMasked>(x, mask, scale, i, tail), max));
    _mm512_mask_storeu_ps(y + i, tail, e);
    sum0 = _mm512_mask_add_ps(sum0, tail, sum0, e);
  }
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(sum0, sum1), _mm512_add_ps(sum2, sum3)));

  // Pass 3. sum >= 1 unless every term was 0 (or the sum is NaN).
  const __m512 inverse = _mm512_set1_ps(sum == 0.0f ? 0.0f : 1.0f / sum);
  for (i = 0; i < body; i += kLanes) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inverse));
  if (tail != 0) _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + i), inverse));
}

}  // namespace

void f32_softmax_row_avx512(size_t n, const float* x, float scale, const float* mask, float* y) {
  if (mask != nullptr) {
    softmax_row<true>(n, x, scale, mask, y);
  } else {
    softmax_row<false>(n, x, scale, mask, y);
  }
}

}  // namespace simdformer
