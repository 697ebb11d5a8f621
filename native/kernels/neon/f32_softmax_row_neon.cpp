// NEON row softmax (contract: SoftmaxRowFn in kernels.h), 4 floats per
// vector. Three passes, as f32_softmax_row_avx512.cpp:
//   1. max of s = scale * x + mask (one fused multiply-add, as the reference);
//   2. y = exp(s - max), summed in 4 x 4 float lanes;
//   3. y *= 1 / sum.
// The last n % 4 scores are computed once into a vector padded with -inf
// (exp gives 0 there). Pass 2 recomputes s from x and mask instead of storing
// it, and writes y[i] only after reading x[i], so x and y may alias.
#include <arm_neon.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_neon.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 4;

template <bool kMasked>
inline float32x4_t scores(const float* x, const float* mask, float32x4_t scale, size_t i) {
  const float32x4_t xv = vld1q_f32(x + i);
  if (kMasked) return vfmaq_f32(vld1q_f32(mask + i), scale, xv);
  return vmulq_f32(scale, xv);
}

template <bool kMasked>
void softmax_row(size_t n, const float* x, float scale_value, const float* mask, float* y) {
  const float32x4_t scale = vdupq_n_f32(scale_value);
  const size_t body = n - n % kLanes;
  float tail_buffer[kLanes] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (size_t i = body; i < n; ++i) {
    tail_buffer[i - body] = kMasked ? fmaf(scale_value, x[i], mask[i]) : scale_value * x[i];
  }
  const float32x4_t tail = vld1q_f32(tail_buffer);

  // Pass 1. vmaxq_f32 propagates NaN; a NaN max makes the row NaN below.
  float32x4_t max0 = tail, max1 = vdupq_n_f32(-INFINITY), max2 = max1, max3 = max1;
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    max0 = vmaxq_f32(max0, scores<kMasked>(x, mask, scale, i));
    max1 = vmaxq_f32(max1, scores<kMasked>(x, mask, scale, i + kLanes));
    max2 = vmaxq_f32(max2, scores<kMasked>(x, mask, scale, i + 2 * kLanes));
    max3 = vmaxq_f32(max3, scores<kMasked>(x, mask, scale, i + 3 * kLanes));
  }
  for (; i < body; i += kLanes) max0 = vmaxq_f32(max0, scores<kMasked>(x, mask, scale, i));
  float max_value = vmaxvq_f32(vmaxq_f32(vmaxq_f32(max0, max1), vmaxq_f32(max2, max3)));
  // Every score -inf: with max = 0 each term is exp(-inf) = 0, the sum is 0
  // and the row becomes zeros in pass 3.
  if (max_value == -INFINITY) max_value = 0.0f;
  const float32x4_t max = vdupq_n_f32(max_value);

  // Pass 2.
  float32x4_t sum0 = vdupq_n_f32(0.0f), sum1 = sum0, sum2 = sum0, sum3 = sum0;
  for (i = 0; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const float32x4_t e0 = vexp_neon(vsubq_f32(scores<kMasked>(x, mask, scale, i), max));
    const float32x4_t e1 = vexp_neon(vsubq_f32(scores<kMasked>(x, mask, scale, i + kLanes), max));
    const float32x4_t e2 = vexp_neon(vsubq_f32(scores<kMasked>(x, mask, scale, i + 2 * kLanes), max));
    const float32x4_t e3 = vexp_neon(vsubq_f32(scores<kMasked>(x, mask, scale, i + 3 * kLanes), max));
    vst1q_f32(y + i, e0);
    vst1q_f32(y + i + kLanes, e1);
    vst1q_f32(y + i + 2 * kLanes, e2);
    vst1q_f32(y + i + 3 * kLanes, e3);
    sum0 = vaddq_f32(sum0, e0);
    sum1 = vaddq_f32(sum1, e1);
    sum2 = vaddq_f32(sum2, e2);
    sum3 = vaddq_f32(sum3, e3);
  }
  for (; i < body; i += kLanes) {
    const float32x4_t e = vexp_neon(vsubq_f32(scores<kMasked>(x, mask, scale, i), max));
    vst1q_f32(y + i, e);
    sum0 = vaddq_f32(sum0, e);
  }
  if (i < n) {
    const float32x4_t e = vexp_neon(vsubq_f32(tail, max));
    vst1q_f32(tail_buffer, e);
    for (; i < n; ++i) y[i] = tail_buffer[i - body];
    sum0 = vaddq_f32(sum0, e);
  }
  const float sum = vaddvq_f32(vaddq_f32(vaddq_f32(sum0, sum1), vaddq_f32(sum2, sum3)));

  // Pass 3. sum >= 1 unless every term was 0 (or the sum is NaN).
  const float inverse_value = sum == 0.0f ? 0.0f : 1.0f / sum;
  const float32x4_t inverse = vdupq_n_f32(inverse_value);
  for (i = 0; i < body; i += kLanes) vst1q_f32(y + i, vmulq_f32(vld1q_f32(y + i), inverse));
  for (; i < n; ++i) y[i] *= inverse_value;
}

}  // namespace

void f32_softmax_row_neon(size_t n, const float* x, float scale, const float* mask, float* y) {
  if (mask != nullptr) {
    softmax_row<true>(n, x, scale, mask, y);
  } else {
    softmax_row<false>(n, x, scale, mask, y);
  }
}

}  // namespace simdformer
