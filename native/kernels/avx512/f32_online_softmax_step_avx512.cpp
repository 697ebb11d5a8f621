// AVX-512 online softmax step (contract: OnlineSoftmaxStepFn in kernels.h),
// 16 floats per vector, the last n % 16 by masked loads and stores. Two
// passes over the tile row (it is a few hundred bytes, in L1):
//   1. s = scale * x + mask (one FMA per vector, as the reference), stored
//      over x, and its max;
//   2. p = exp(s - max) stored over s, summed in 2 x 16 float lanes.
// The rescale factor alpha = exp(old max - new max) is one scalar exp.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx512.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 16;

// Scores of the lanes in `active` of x[j..j+16) (inactive lanes are junk).
// With both masks they are added first, as the math path combines them.
template <bool kMask, bool kPadding>
inline __m512 load_scores(const float* x, const float* mask, const float* padding, __m512 scale, size_t j,
                          __mmask16 active) {
  const __m512 xv = _mm512_maskz_loadu_ps(active, x + j);
  if (kMask && kPadding) {
    const __m512 bias = _mm512_add_ps(_mm512_maskz_loadu_ps(active, mask + j), _mm512_maskz_loadu_ps(active, padding + j));
    return _mm512_fmadd_ps(scale, xv, bias);
  }
  if (kMask) return _mm512_fmadd_ps(scale, xv, _mm512_maskz_loadu_ps(active, mask + j));
  if (kPadding) return _mm512_fmadd_ps(scale, xv, _mm512_maskz_loadu_ps(active, padding + j));
  return _mm512_mul_ps(scale, xv);
}

template <bool kMask, bool kPadding>
float step(size_t n, float* x, float scale_value, const float* mask, const float* padding, float* running_max,
           float* running_sum) {
  const __m512 scale = _mm512_set1_ps(scale_value);
  const __mmask16 all = 0xFFFF;
  const __mmask16 tail = static_cast<__mmask16>((1u << (n % kLanes)) - 1u);
  const size_t body = n - n % kLanes;

  // Pass 1.
  __m512 max0 = _mm512_set1_ps(*running_max), max1 = _mm512_set1_ps(-INFINITY);
  size_t j = 0;
  for (; j + 2 * kLanes <= n; j += 2 * kLanes) {
    const __m512 s0 = load_scores<kMask, kPadding>(x, mask, padding, scale, j, all);
    const __m512 s1 = load_scores<kMask, kPadding>(x, mask, padding, scale, j + kLanes, all);
    _mm512_storeu_ps(x + j, s0);
    _mm512_storeu_ps(x + j + kLanes, s1);
    max0 = _mm512_max_ps(max0, s0);
    max1 = _mm512_max_ps(max1, s1);
  }
  for (; j < body; j += kLanes) {
    const __m512 s = load_scores<kMask, kPadding>(x, mask, padding, scale, j, all);
    _mm512_storeu_ps(x + j, s);
    max0 = _mm512_max_ps(max0, s);
  }
  if (tail != 0) {
    const __m512 s = load_scores<kMask, kPadding>(x, mask, padding, scale, j, tail);
    _mm512_mask_storeu_ps(x + j, tail, s);
    max0 = _mm512_mask_max_ps(max0, tail, max0, s);
  }
  const float max_value = _mm512_reduce_max_ps(_mm512_max_ps(max0, max1));
  // Every score so far -inf: p = 0, alpha = 1 (not exp(-inf - -inf) = NaN).
  if (max_value == -INFINITY) {
    const __m512 zero = _mm512_setzero_ps();
    for (j = 0; j < body; j += kLanes) _mm512_storeu_ps(x + j, zero);
    if (tail != 0) _mm512_mask_storeu_ps(x + j, tail, zero);
    return 1.0f;
  }
  const __m512 max = _mm512_set1_ps(max_value);

  // Pass 2.
  __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0;
  for (j = 0; j + 2 * kLanes <= n; j += 2 * kLanes) {
    const __m512 e0 = vexp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j), max));
    const __m512 e1 = vexp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j + kLanes), max));
    _mm512_storeu_ps(x + j, e0);
    _mm512_storeu_ps(x + j + kLanes, e1);
    sum0 = _mm512_add_ps(sum0, e0);
    sum1 = _mm512_add_ps(sum1, e1);
  }
  for (; j < body; j += kLanes) {
    const __m512 e = vexp_avx512(_mm512_sub_ps(_mm512_loadu_ps(x + j), max));
    _mm512_storeu_ps(x + j, e);
    sum0 = _mm512_add_ps(sum0, e);
  }
  if (tail != 0) {
    const __m512 e = vexp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + j), max));
    _mm512_mask_storeu_ps(x + j, tail, e);
    sum0 = _mm512_mask_add_ps(sum0, tail, sum0, e);
  }
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));

  // exp(-inf) = 0 when this is the row's first finite score; exactly 1 when
  // the max did not move (the common case after the first tiles).
  const float alpha = std::exp(*running_max - max_value);
  *running_sum = *running_sum * alpha + sum;
  *running_max = max_value;
  return alpha;
}

}  // namespace

float f32_online_softmax_step_avx512(size_t n, float* x, float scale, const float* mask, const float* padding,
                                     float* running_max, float* running_sum) {
  if (mask != nullptr && padding != nullptr) return step<true, true>(n, x, scale, mask, padding, running_max, running_sum);
  if (mask != nullptr) return step<true, false>(n, x, scale, mask, padding, running_max, running_sum);
  if (padding != nullptr) return step<false, true>(n, x, scale, mask, padding, running_max, running_sum);
  return step<false, false>(n, x, scale, mask, padding, running_max, running_sum);
}

}  // namespace simdformer
