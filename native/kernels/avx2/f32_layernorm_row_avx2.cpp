// AVX2 layer norm of one row (contract: LayerNormRowFn in kernels.h), 8
// floats per vector, the last n % 8 by _mm256_maskload_ps /
// _mm256_maskstore_ps. Same method as f32_layernorm_row_avx512.cpp: sums of
// d = x - x[0] (shifted data, exact for rows like 1e4 +- 1), mean, biased
// variance of d - mean_d (two-pass), then y = (d - mean_d) * rstd * weight
// + bias; each sum in 4 x 8 float lanes. x[i] is read before y[i] is
// written, so they may alias.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 8;

template <bool kWeight, bool kBias>
inline __m256 normalized(__m256 centred, __m256 rstd, __m256 weight, __m256 bias) {
  const __m256 value = _mm256_mul_ps(centred, rstd);
  if (kWeight && kBias) return _mm256_fmadd_ps(value, weight, bias);
  if (kWeight) return _mm256_mul_ps(value, weight);
  if (kBias) return _mm256_add_ps(value, bias);
  return value;
}

// Pass 3: y = (x - pivot - mean) * rstd * weight + bias.
template <bool kWeight, bool kBias>
void normalize(size_t n, const float* x, __m256 pivot, __m256 mean, __m256 rstd, const float* weight,
               const float* bias, float* y) {
  const __m256 unused = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 centred = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), pivot), mean);
    _mm256_storeu_ps(y + i, normalized<kWeight, kBias>(centred, rstd, kWeight ? _mm256_loadu_ps(weight + i) : unused,
                                                       kBias ? _mm256_loadu_ps(bias + i) : unused));
  }
  if (i < n) {
    const __m256i tail = vtail_mask_avx2(n - i);
    const __m256 centred = _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, tail), pivot), mean);
    _mm256_maskstore_ps(y + i, tail,
                        normalized<kWeight, kBias>(centred, rstd, kWeight ? _mm256_maskload_ps(weight + i, tail) : unused,
                                                   kBias ? _mm256_maskload_ps(bias + i, tail) : unused));
  }
}

}  // namespace

void f32_layernorm_row_avx2(size_t n, const float* x, float eps, const float* weight, const float* bias, float* y) {
  const size_t body = n - n % kLanes;
  const __m256i tail = vtail_mask_avx2(n % kLanes);
  const __m256 tail_lanes = _mm256_castsi256_ps(tail);
  const __m256 pivot = _mm256_set1_ps(x[0]);

  __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    sum0 = _mm256_add_ps(sum0, _mm256_sub_ps(_mm256_loadu_ps(x + i), pivot));
    sum1 = _mm256_add_ps(sum1, _mm256_sub_ps(_mm256_loadu_ps(x + i + kLanes), pivot));
    sum2 = _mm256_add_ps(sum2, _mm256_sub_ps(_mm256_loadu_ps(x + i + 2 * kLanes), pivot));
    sum3 = _mm256_add_ps(sum3, _mm256_sub_ps(_mm256_loadu_ps(x + i + 3 * kLanes), pivot));
  }
  for (; i < body; i += kLanes) sum0 = _mm256_add_ps(sum0, _mm256_sub_ps(_mm256_loadu_ps(x + i), pivot));
  if (i < n) {
    const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + i, tail), pivot);
    sum0 = _mm256_add_ps(sum0, _mm256_and_ps(d, tail_lanes));
  }
  const float sum = vreduce_add_avx2(_mm256_add_ps(_mm256_add_ps(sum0, sum1), _mm256_add_ps(sum2, sum3)));
  const __m256 mean = _mm256_set1_ps(static_cast<float>(static_cast<double>(sum) / static_cast<double>(n)));

  __m256 squares0 = _mm256_setzero_ps(), squares1 = squares0, squares2 = squares0, squares3 = squares0;
  for (i = 0; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const __m256 c0 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), pivot), mean);
    const __m256 c1 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + kLanes), pivot), mean);
    const __m256 c2 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 2 * kLanes), pivot), mean);
    const __m256 c3 = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 3 * kLanes), pivot), mean);
    squares0 = _mm256_fmadd_ps(c0, c0, squares0);
    squares1 = _mm256_fmadd_ps(c1, c1, squares1);
    squares2 = _mm256_fmadd_ps(c2, c2, squares2);
    squares3 = _mm256_fmadd_ps(c3, c3, squares3);
  }
  for (; i < body; i += kLanes) {
    const __m256 c = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), pivot), mean);
    squares0 = _mm256_fmadd_ps(c, c, squares0);
  }
  if (i < n) {
    const __m256 c =
        _mm256_and_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, tail), pivot), mean), tail_lanes);
    squares0 = _mm256_fmadd_ps(c, c, squares0);
  }
  const float squares =
      vreduce_add_avx2(_mm256_add_ps(_mm256_add_ps(squares0, squares1), _mm256_add_ps(squares2, squares3)));
  const double variance = static_cast<double>(squares) / static_cast<double>(n);
  const __m256 rstd = _mm256_set1_ps(static_cast<float>(1.0 / sqrt(variance + static_cast<double>(eps))));

  if (weight != nullptr && bias != nullptr) {
    normalize<true, true>(n, x, pivot, mean, rstd, weight, bias, y);
  } else if (weight != nullptr) {
    normalize<true, false>(n, x, pivot, mean, rstd, weight, bias, y);
  } else if (bias != nullptr) {
    normalize<false, true>(n, x, pivot, mean, rstd, weight, bias, y);
  } else {
    normalize<false, false>(n, x, pivot, mean, rstd, weight, bias, y);
  }
}

}  // namespace simdformer
