// NEON layer norm of one row (contract: LayerNormRowFn in kernels.h), 4
// floats per vector and a scalar loop for the last n % 4. Same method as
// f32_layernorm_row_avx512.cpp: sums of d = x - x[0] (shifted data, exact for
// rows like 1e4 +- 1), mean, biased variance of d - mean_d (two-pass), then
// y = (d - mean_d) * rstd * weight + bias; each sum in 4 x 4 float lanes.
// x[i] is read before y[i] is written, so they may alias.
#include <arm_neon.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 4;

// Pass 3: y = (x - pivot - mean) * rstd * weight + bias.
template <bool kWeight, bool kBias>
void normalize(size_t n, const float* x, float pivot, float mean, float rstd, const float* weight, const float* bias,
               float* y) {
  const float32x4_t pivot_v = vdupq_n_f32(pivot), mean_v = vdupq_n_f32(mean), rstd_v = vdupq_n_f32(rstd);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    float32x4_t value = vmulq_f32(vsubq_f32(vsubq_f32(vld1q_f32(x + i), pivot_v), mean_v), rstd_v);
    if (kWeight && kBias) {
      value = vfmaq_f32(vld1q_f32(bias + i), value, vld1q_f32(weight + i));
    } else if (kWeight) {
      value = vmulq_f32(value, vld1q_f32(weight + i));
    } else if (kBias) {
      value = vaddq_f32(value, vld1q_f32(bias + i));
    }
    vst1q_f32(y + i, value);
  }
  for (; i < n; ++i) {
    float value = ((x[i] - pivot) - mean) * rstd;
    if (kWeight && kBias) {
      value = fmaf(value, weight[i], bias[i]);
    } else if (kWeight) {
      value *= weight[i];
    } else if (kBias) {
      value += bias[i];
    }
    y[i] = value;
  }
}

}  // namespace

void f32_layernorm_row_neon(size_t n, const float* x, float eps, const float* weight, const float* bias, float* y) {
  const float pivot = x[0];
  const float32x4_t pivot_v = vdupq_n_f32(pivot);

  float32x4_t sum0 = vdupq_n_f32(0.0f), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    sum0 = vaddq_f32(sum0, vsubq_f32(vld1q_f32(x + i), pivot_v));
    sum1 = vaddq_f32(sum1, vsubq_f32(vld1q_f32(x + i + kLanes), pivot_v));
    sum2 = vaddq_f32(sum2, vsubq_f32(vld1q_f32(x + i + 2 * kLanes), pivot_v));
    sum3 = vaddq_f32(sum3, vsubq_f32(vld1q_f32(x + i + 3 * kLanes), pivot_v));
  }
  for (; i + kLanes <= n; i += kLanes) sum0 = vaddq_f32(sum0, vsubq_f32(vld1q_f32(x + i), pivot_v));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(sum0, sum1), vaddq_f32(sum2, sum3)));
  for (; i < n; ++i) sum += x[i] - pivot;
  const float mean = static_cast<float>(static_cast<double>(sum) / static_cast<double>(n));
  const float32x4_t mean_v = vdupq_n_f32(mean);

  float32x4_t squares0 = vdupq_n_f32(0.0f), squares1 = squares0, squares2 = squares0, squares3 = squares0;
  for (i = 0; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const float32x4_t c0 = vsubq_f32(vsubq_f32(vld1q_f32(x + i), pivot_v), mean_v);
    const float32x4_t c1 = vsubq_f32(vsubq_f32(vld1q_f32(x + i + kLanes), pivot_v), mean_v);
    const float32x4_t c2 = vsubq_f32(vsubq_f32(vld1q_f32(x + i + 2 * kLanes), pivot_v), mean_v);
    const float32x4_t c3 = vsubq_f32(vsubq_f32(vld1q_f32(x + i + 3 * kLanes), pivot_v), mean_v);
    squares0 = vfmaq_f32(squares0, c0, c0);
    squares1 = vfmaq_f32(squares1, c1, c1);
    squares2 = vfmaq_f32(squares2, c2, c2);
    squares3 = vfmaq_f32(squares3, c3, c3);
  }
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t c = vsubq_f32(vsubq_f32(vld1q_f32(x + i), pivot_v), mean_v);
    squares0 = vfmaq_f32(squares0, c, c);
  }
  float squares = vaddvq_f32(vaddq_f32(vaddq_f32(squares0, squares1), vaddq_f32(squares2, squares3)));
  for (; i < n; ++i) {
    const float c = (x[i] - pivot) - mean;
    squares = fmaf(c, c, squares);
  }
  const double variance = static_cast<double>(squares) / static_cast<double>(n);
  const float rstd = static_cast<float>(1.0 / sqrt(variance + static_cast<double>(eps)));

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
