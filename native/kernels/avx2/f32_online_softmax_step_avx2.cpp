// AVX2 online softmax step (contract: OnlineSoftmaxStepFn in kernels.h), 8
// floats per vector, the last n % 8 by _mm256_maskload_ps /
// _mm256_maskstore_ps. Two passes over the tile row, as
// f32_online_softmax_step_avx512.cpp:
//   1. s = scale * x + mask (one FMA per vector), stored over x, and its max;
//   2. p = exp(s - max) stored over s, summed in 2 x 8 float lanes.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 8;

// With both masks they are added first, as the math path combines them.
template <bool kMask, bool kPadding>
inline __m256 scores(__m256 xv, __m256 mask, __m256 padding, __m256 scale) {
  if (kMask && kPadding) return _mm256_fmadd_ps(scale, xv, _mm256_add_ps(mask, padding));
  if (kMask) return _mm256_fmadd_ps(scale, xv, mask);
  if (kPadding) return _mm256_fmadd_ps(scale, xv, padding);
  return _mm256_mul_ps(scale, xv);
}

template <bool kMask, bool kPadding>
inline __m256 load_scores(const float* x, const float* mask, const float* padding, __m256 scale, size_t j) {
  const __m256 zero = _mm256_setzero_ps();
  return scores<kMask, kPadding>(_mm256_loadu_ps(x + j), kMask ? _mm256_loadu_ps(mask + j) : zero,
                                 kPadding ? _mm256_loadu_ps(padding + j) : zero, scale);
}

// The lanes in `active` of the scores at j (the others junk).
template <bool kMask, bool kPadding>
inline __m256 tail_scores(const float* x, const float* mask, const float* padding, __m256 scale, size_t j,
                          __m256i active) {
  const __m256 zero = _mm256_setzero_ps();
  return scores<kMask, kPadding>(_mm256_maskload_ps(x + j, active), kMask ? _mm256_maskload_ps(mask + j, active) : zero,
                                 kPadding ? _mm256_maskload_ps(padding + j, active) : zero, scale);
}

template <bool kMask, bool kPadding>
float step(size_t n, float* x, float scale_value, const float* mask, const float* padding, float* running_max,
           float* running_sum) {
  const __m256 scale = _mm256_set1_ps(scale_value);
  const size_t body = n - n % kLanes;
  const __m256i tail = vtail_mask_avx2(n % kLanes);
  const __m256 tail_lanes = _mm256_castsi256_ps(tail);
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY);

  // Pass 1.
  __m256 max0 = _mm256_set1_ps(*running_max), max1 = minus_inf;
  size_t j = 0;
  for (; j + 2 * kLanes <= n; j += 2 * kLanes) {
    const __m256 s0 = load_scores<kMask, kPadding>(x, mask, padding, scale, j);
    const __m256 s1 = load_scores<kMask, kPadding>(x, mask, padding, scale, j + kLanes);
    _mm256_storeu_ps(x + j, s0);
    _mm256_storeu_ps(x + j + kLanes, s1);
    max0 = _mm256_max_ps(max0, s0);
    max1 = _mm256_max_ps(max1, s1);
  }
  for (; j < body; j += kLanes) {
    const __m256 s = load_scores<kMask, kPadding>(x, mask, padding, scale, j);
    _mm256_storeu_ps(x + j, s);
    max0 = _mm256_max_ps(max0, s);
  }
  if (j < n) {
    const __m256 s = tail_scores<kMask, kPadding>(x, mask, padding, scale, j, tail);
    _mm256_maskstore_ps(x + j, tail, s);
    max0 = _mm256_max_ps(max0, _mm256_blendv_ps(minus_inf, s, tail_lanes));
  }
  const float max_value = vreduce_max_avx2(_mm256_max_ps(max0, max1));
  // Every score so far -inf: p = 0, alpha = 1 (not exp(-inf - -inf) = NaN).
  if (max_value == -INFINITY) {
    const __m256 zero = _mm256_setzero_ps();
    for (j = 0; j < body; j += kLanes) _mm256_storeu_ps(x + j, zero);
    if (j < n) _mm256_maskstore_ps(x + j, tail, zero);
    return 1.0f;
  }
  const __m256 max = _mm256_set1_ps(max_value);

  // Pass 2.
  __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0;
  for (j = 0; j + 2 * kLanes <= n; j += 2 * kLanes) {
    const __m256 e0 = vexp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), max));
    const __m256 e1 = vexp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j + kLanes), max));
    _mm256_storeu_ps(x + j, e0);
    _mm256_storeu_ps(x + j + kLanes, e1);
    sum0 = _mm256_add_ps(sum0, e0);
    sum1 = _mm256_add_ps(sum1, e1);
  }
  for (; j < body; j += kLanes) {
    const __m256 e = vexp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), max));
    _mm256_storeu_ps(x + j, e);
    sum0 = _mm256_add_ps(sum0, e);
  }
  if (j < n) {
    const __m256 e = vexp_avx2(_mm256_sub_ps(_mm256_maskload_ps(x + j, tail), max));
    _mm256_maskstore_ps(x + j, tail, e);
    sum0 = _mm256_add_ps(sum0, _mm256_and_ps(e, tail_lanes));
  }
  const float sum = vreduce_add_avx2(_mm256_add_ps(sum0, sum1));

  // exp(-inf) = 0 when this is the row's first finite score; exactly 1 when
  // the max did not move.
  const float alpha = std::exp(*running_max - max_value);
  *running_sum = *running_sum * alpha + sum;
  *running_max = max_value;
  return alpha;
}

}  // namespace

float f32_online_softmax_step_avx2(size_t n, float* x, float scale, const float* mask, const float* padding,
                                   float* running_max, float* running_sum) {
  if (mask != nullptr && padding != nullptr) return step<true, true>(n, x, scale, mask, padding, running_max, running_sum);
  if (mask != nullptr) return step<true, false>(n, x, scale, mask, padding, running_max, running_sum);
  if (padding != nullptr) return step<false, true>(n, x, scale, mask, padding, running_max, running_sum);
  return step<false, false>(n, x, scale, mask, padding, running_max, running_sum);
}

}  // namespace simdformer
