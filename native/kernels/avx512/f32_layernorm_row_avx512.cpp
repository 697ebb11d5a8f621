// AVX-512 layer norm of one row (contract: LayerNormRowFn in kernels.h), 16
// floats per vector, the last n % 16 by masked loads and stores.
//
// Sums run on d = x - x[0] (shifted data: Chan, Golub & LeVeque, "Algorithms
// for computing the sample variance", 1983): for rows like 1e4 +- 1, d is
// exact and small, so neither the float sum nor the float mean loses the
// spread. Passes: mean_d = sum(d) / n; var = sum((d - mean_d)^2) / n (biased,
// two-pass); y = (d - mean_d) * rstd * weight + bias. Each pass sums in
// 4 x 16 float lanes. x[i] is read before y[i] is written, so they may alias.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 16;

// Pass 3 for one vector: lanes in `active` of y = centred * rstd * weight + bias.
template <bool kWeight, bool kBias>
inline void store_normalized(const float* x, __m512 pivot, __m512 mean, __m512 rstd, const float* weight,
                             const float* bias, float* y, size_t i, __mmask16 active) {
  const __m512 centred = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(active, x + i), pivot), mean);
  __m512 value = _mm512_mul_ps(centred, rstd);
  if (kWeight && kBias) {
    value = _mm512_fmadd_ps(value, _mm512_maskz_loadu_ps(active, weight + i), _mm512_maskz_loadu_ps(active, bias + i));
  } else if (kWeight) {
    value = _mm512_mul_ps(value, _mm512_maskz_loadu_ps(active, weight + i));
  } else if (kBias) {
    value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(active, bias + i));
  }
  _mm512_mask_storeu_ps(y + i, active, value);
}

template <bool kWeight, bool kBias>
void normalize(size_t n, const float* x, __m512 pivot, __m512 mean, __m512 rstd, const float* weight,
               const float* bias, float* y) {
  const size_t body = n - n % kLanes;
  size_t i = 0;
  for (; i < body; i += kLanes) store_normalized<kWeight, kBias>(x, pivot, mean, rstd, weight, bias, y, i, 0xFFFF);
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    store_normalized<kWeight, kBias>(x, pivot, mean, rstd, weight, bias, y, i, tail);
  }
}

}  // namespace

void f32_layernorm_row_avx512(size_t n, const float* x, float eps, const float* weight, const float* bias, float* y) {
  const size_t body = n - n % kLanes;
  const __mmask16 tail = static_cast<__mmask16>((1u << (n % kLanes)) - 1u);
  const __m512 pivot = _mm512_set1_ps(x[0]);

  __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    sum0 = _mm512_add_ps(sum0, _mm512_sub_ps(_mm512_loadu_ps(x + i), pivot));
    sum1 = _mm512_add_ps(sum1, _mm512_sub_ps(_mm512_loadu_ps(x + i + kLanes), pivot));
    sum2 = _mm512_add_ps(sum2, _mm512_sub_ps(_mm512_loadu_ps(x + i + 2 * kLanes), pivot));
    sum3 = _mm512_add_ps(sum3, _mm512_sub_ps(_mm512_loadu_ps(x + i + 3 * kLanes), pivot));
  }
  for (; i < body; i += kLanes) sum0 = _mm512_add_ps(sum0, _mm512_sub_ps(_mm512_loadu_ps(x + i), pivot));
  if (tail != 0) sum0 = _mm512_mask_add_ps(sum0, tail, sum0, _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), pivot));
  const float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(sum0, sum1), _mm512_add_ps(sum2, sum3)));
  const __m512 mean = _mm512_set1_ps(static_cast<float>(static_cast<double>(sum) / static_cast<double>(n)));

  __m512 squares0 = _mm512_setzero_ps(), squares1 = squares0, squares2 = squares0, squares3 = squares0;
  for (i = 0; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const __m512 c0 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), pivot), mean);
    const __m512 c1 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + kLanes), pivot), mean);
    const __m512 c2 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 2 * kLanes), pivot), mean);
    const __m512 c3 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 3 * kLanes), pivot), mean);
    squares0 = _mm512_fmadd_ps(c0, c0, squares0);
    squares1 = _mm512_fmadd_ps(c1, c1, squares1);
    squares2 = _mm512_fmadd_ps(c2, c2, squares2);
    squares3 = _mm512_fmadd_ps(c3, c3, squares3);
  }
  for (; i < body; i += kLanes) {
    const __m512 c = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), pivot), mean);
    squares0 = _mm512_fmadd_ps(c, c, squares0);
  }
  if (tail != 0) {
    const __m512 c = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, x + i), pivot), mean);
    squares0 = _mm512_mask3_fmadd_ps(c, c, squares0, tail);
  }
  const float squares =
      _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(squares0, squares1), _mm512_add_ps(squares2, squares3)));
  const double variance = static_cast<double>(squares) / static_cast<double>(n);
  const __m512 rstd = _mm512_set1_ps(static_cast<float>(1.0 / sqrt(variance + static_cast<double>(eps))));

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
