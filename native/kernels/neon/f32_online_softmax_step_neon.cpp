// NEON online softmax step (contract: OnlineSoftmaxStepFn in kernels.h), 4
// floats per vector. Two passes over the tile row, as
// f32_online_softmax_step_avx512.cpp:
//   1. s = scale * x + mask (one fused multiply-add), stored over x, and its max;
//   2. p = exp(s - max) stored over s, summed in 2 x 4 float lanes.
// The last n % 4 scores go through a 4-float buffer padded with -inf (exp
// gives 0 there).
#include <arm_neon.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_neon.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 4;

// With both masks they are added first, as the math path combines them.
template <bool kMask, bool kPadding>
inline float32x4_t load_scores(const float* x, const float* mask, const float* padding, float32x4_t scale, size_t j) {
  const float32x4_t xv = vld1q_f32(x + j);
  if (kMask && kPadding) return vfmaq_f32(vaddq_f32(vld1q_f32(mask + j), vld1q_f32(padding + j)), scale, xv);
  if (kMask) return vfmaq_f32(vld1q_f32(mask + j), scale, xv);
  if (kPadding) return vfmaq_f32(vld1q_f32(padding + j), scale, xv);
  return vmulq_f32(scale, xv);
}

template <bool kMask, bool kPadding>
inline float tail_score(const float* x, const float* mask, const float* padding, float scale, size_t j) {
  if (kMask && kPadding) return fmaf(scale, x[j], mask[j] + padding[j]);
  if (kMask) return fmaf(scale, x[j], mask[j]);
  if (kPadding) return fmaf(scale, x[j], padding[j]);
  return scale * x[j];
}

template <bool kMask, bool kPadding>
float step(size_t n, float* x, float scale_value, const float* mask, const float* padding, float* running_max,
           float* running_sum) {
  const float32x4_t scale = vdupq_n_f32(scale_value);
  const size_t body = n - n % kLanes;
  float tail_buffer[kLanes] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (size_t j = body; j < n; ++j) tail_buffer[j - body] = tail_score<kMask, kPadding>(x, mask, padding, scale_value, j);
  const float32x4_t tail = vld1q_f32(tail_buffer);

  // Pass 1.
  float32x4_t max0 = vmaxq_f32(vdupq_n_f32(*running_max), tail), max1 = vdupq_n_f32(-INFINITY);
  size_t j = 0;
  for (; j + 2 * kLanes <= body; j += 2 * kLanes) {
    const float32x4_t s0 = load_scores<kMask, kPadding>(x, mask, padding, scale, j);
    const float32x4_t s1 = load_scores<kMask, kPadding>(x, mask, padding, scale, j + kLanes);
    vst1q_f32(x + j, s0);
    vst1q_f32(x + j + kLanes, s1);
    max0 = vmaxq_f32(max0, s0);
    max1 = vmaxq_f32(max1, s1);
  }
  for (; j < body; j += kLanes) {
    const float32x4_t s = load_scores<kMask, kPadding>(x, mask, padding, scale, j);
    vst1q_f32(x + j, s);
    max0 = vmaxq_f32(max0, s);
  }
  const float max_value = vmaxvq_f32(vmaxq_f32(max0, max1));
  // Every score so far -inf: p = 0, alpha = 1 (not exp(-inf - -inf) = NaN).
  if (max_value == -INFINITY) {
    for (j = 0; j < n; ++j) x[j] = 0.0f;
    return 1.0f;
  }
  const float32x4_t max = vdupq_n_f32(max_value);

  // Pass 2.
  float32x4_t sum0 = vdupq_n_f32(0.0f), sum1 = sum0;
  for (j = 0; j + 2 * kLanes <= body; j += 2 * kLanes) {
    const float32x4_t e0 = vexp_neon(vsubq_f32(vld1q_f32(x + j), max));
    const float32x4_t e1 = vexp_neon(vsubq_f32(vld1q_f32(x + j + kLanes), max));
    vst1q_f32(x + j, e0);
    vst1q_f32(x + j + kLanes, e1);
    sum0 = vaddq_f32(sum0, e0);
    sum1 = vaddq_f32(sum1, e1);
  }
  for (; j < body; j += kLanes) {
    const float32x4_t e = vexp_neon(vsubq_f32(vld1q_f32(x + j), max));
    vst1q_f32(x + j, e);
    sum0 = vaddq_f32(sum0, e);
  }
  if (j < n) {
    const float32x4_t e = vexp_neon(vsubq_f32(tail, max));
    vst1q_f32(tail_buffer, e);
    for (; j < n; ++j) x[j] = tail_buffer[j - body];
    sum0 = vaddq_f32(sum0, e);
  }
  const float sum = vaddvq_f32(vaddq_f32(sum0, sum1));

  // exp(-inf) = 0 when this is the row's first finite score; exactly 1 when
  // the max did not move.
  const float alpha = std::exp(*running_max - max_value);
  *running_sum = *running_sum * alpha + sum;
  *running_max = max_value;
  return alpha;
}

}  // namespace

float f32_online_softmax_step_neon(size_t n, float* x, float scale, const float* mask, const float* padding,
                                   float* running_max, float* running_sum) {
  if (mask != nullptr && padding != nullptr) return step<true, true>(n, x, scale, mask, padding, running_max, running_sum);
  if (mask != nullptr) return step<true, false>(n, x, scale, mask, padding, running_max, running_sum);
  if (padding != nullptr) return step<false, true>(n, x, scale, mask, padding, running_max, running_sum);
  return step<false, false>(n, x, scale, mask, padding, running_max, running_sum);
}

}  // namespace simdformer
