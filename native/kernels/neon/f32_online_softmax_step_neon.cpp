// NEON online softmax step (contract: OnlineSoftmaxStepFn in kernels.h): 4
// queries (columns of the panel) per vector, as
// f32_online_softmax_step_avx512.cpp. Per chunk of 4 columns, two passes down
// the panel's rows:
//   1. s = scale * x + mask (one fused multiply-add), causal lanes set to
//      -inf, stored over x, and the column max, in two chains;
//   2. p = exp(s - max) (0 below the cut-off) stored over s, summed in two chains.
// Columns at or past `queries` are treated as 0 and stored as 0. A chunk
// that would cross ld (ld % 4 != 0; the kernels' nr are multiples of 4) goes
// column by column.
#include <arm_neon.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_neon.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 4;

template <bool kMask, bool kPadding, bool kCausal>
void step_columns(const OnlineSoftmaxPanel& p, size_t c0, size_t valid) {
  const size_t n = p.keys, ld = p.ld;
  float* x = p.scores + c0;
  const float* mask = kMask ? p.mask + c0 : nullptr;
  const int32_t lane_index[kLanes] = {0, 1, 2, 3};
  const int32x4_t lanes = vld1q_s32(lane_index);
  const uint32x4_t active = vcltq_s32(lanes, vdupq_n_s32(static_cast<int32_t>(valid)));
  const float32x4_t scale = vdupq_n_f32(p.scale), minus_inf = vdupq_n_f32(-INFINITY), zero = vdupq_n_f32(0.0f);
  // Key j is masked for a lane when j > lane_query = c0 + lane + causal_offset.
  const int32_t first_query = static_cast<int32_t>(static_cast<ptrdiff_t>(c0) + p.causal_offset);
  const int32x4_t lane_query = vaddq_s32(lanes, vdupq_n_s32(first_query));
  // Whole vectors are loaded (the chunk lies inside ld); inactive lanes become 0.
  auto load = [&](const float* at) { return vbslq_f32(active, vld1q_f32(at), zero); };
  auto score = [&](size_t j) {
    const float32x4_t xv = load(x + j * ld);
    float32x4_t s;
    if (kMask && kPadding) {
      s = vfmaq_f32(vaddq_f32(load(mask + j * ld), vdupq_n_f32(p.padding[j])), scale, xv);
    } else if (kMask) {
      s = vfmaq_f32(load(mask + j * ld), scale, xv);
    } else if (kPadding) {
      s = vfmaq_f32(vdupq_n_f32(p.padding[j]), scale, xv);
    } else {
      s = vmulq_f32(scale, xv);
    }
    if (kCausal) s = vbslq_f32(vcgtq_s32(vdupq_n_s32(static_cast<int32_t>(j)), lane_query), minus_inf, s);
    return s;
  };

  // Pass 1.
  float old_max_lanes[kLanes] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (size_t c = 0; c < valid; ++c) old_max_lanes[c] = p.running_max[c0 + c];
  const float32x4_t old_max = vld1q_f32(old_max_lanes);
  float32x4_t max0 = old_max, max1 = minus_inf;
  size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const float32x4_t s0 = score(j), s1 = score(j + 1);
    vst1q_f32(x + j * ld, s0);
    vst1q_f32(x + (j + 1) * ld, s1);
    max0 = vmaxq_f32(max0, s0);
    max1 = vmaxq_f32(max1, s1);
  }
  if (j < n) {
    const float32x4_t s = score(j);
    vst1q_f32(x + j * ld, s);
    max0 = vmaxq_f32(max0, s);
  }
  const float32x4_t max = vmaxq_f32(max0, max1);
  // A query whose scores are all -inf so far: shift by 0 instead, so p =
  // exp(-inf) = 0, and alpha = 1 rather than exp(-inf - -inf) = NaN.
  const uint32x4_t empty = vceqq_f32(max, minus_inf);
  const float32x4_t shift = vbslq_f32(empty, zero, max);

  // Pass 2: p = exp(s - shift), 0 below the cut-off (masked keys included)
  // and in inactive lanes (stored as junk scores in pass 1).
  const float32x4_t cutoff = vdupq_n_f32(kOnlineSoftmaxCutoff);
  auto probability = [&](size_t j) {
    const float32x4_t d = vsubq_f32(vld1q_f32(x + j * ld), shift);
    const uint32x4_t kept = vandq_u32(vcgeq_f32(d, cutoff), active);
    return vbslq_f32(kept, vexp_neon(vmaxq_f32(d, cutoff)), zero);
  };
  float32x4_t sum0 = zero, sum1 = zero;
  for (j = 0; j + 2 <= n; j += 2) {
    const float32x4_t e0 = probability(j), e1 = probability(j + 1);
    vst1q_f32(x + j * ld, e0);
    vst1q_f32(x + (j + 1) * ld, e1);
    sum0 = vaddq_f32(sum0, e0);
    sum1 = vaddq_f32(sum1, e1);
  }
  if (j < n) {
    const float32x4_t e = probability(j);
    vst1q_f32(x + j * ld, e);
    sum0 = vaddq_f32(sum0, e);
  }

  // exp(-inf) = 0 when this tile holds a query's first finite score; exactly
  // 1 when its max did not move.
  const float32x4_t alpha = vbslq_f32(empty, vdupq_n_f32(1.0f), vexp_neon(vsubq_f32(old_max, shift)));
  const float32x4_t sum = vaddq_f32(sum0, sum1);
  float alpha_lanes[kLanes], sum_lanes[kLanes], max_lanes[kLanes];
  vst1q_f32(alpha_lanes, alpha);
  vst1q_f32(sum_lanes, sum);
  vst1q_f32(max_lanes, max);
  for (size_t c = 0; c < valid; ++c) {
    p.running_sum[c0 + c] = fmaf(p.running_sum[c0 + c], alpha_lanes[c], sum_lanes[c]);
    p.running_max[c0 + c] = max_lanes[c];
    p.alpha[c0 + c] = alpha_lanes[c];
  }
}

// One column at a time, for a chunk that would cross ld.
template <bool kMask, bool kPadding, bool kCausal>
void step_column(const OnlineSoftmaxPanel& p, size_t c) {
  float* x = p.scores + c;
  if (c >= p.queries) {
    for (size_t j = 0; j < p.keys; ++j) x[j * p.ld] = 0.0f;
    return;
  }
  float max = p.running_max[c];
  for (size_t j = 0; j < p.keys; ++j) {
    float bias = 0.0f;
    if (kMask && kPadding) bias = p.mask[j * p.ld + c] + p.padding[j];
    else if (kMask) bias = p.mask[j * p.ld + c];
    else if (kPadding) bias = p.padding[j];
    float s = fmaf(p.scale, x[j * p.ld], bias);
    if (kCausal && static_cast<ptrdiff_t>(j) > static_cast<ptrdiff_t>(c) + p.causal_offset) s = -INFINITY;
    x[j * p.ld] = s;
    if (s > max) max = s;
  }
  const float shift = max == -INFINITY ? 0.0f : max;
  float sum = 0.0f;
  for (size_t j = 0; j < p.keys; ++j) {
    const float d = x[j * p.ld] - shift;
    sum += (x[j * p.ld] = d < kOnlineSoftmaxCutoff ? 0.0f : expf(d));
  }
  const float alpha = max == -INFINITY ? 1.0f : expf(p.running_max[c] - max);
  p.running_sum[c] = fmaf(p.running_sum[c], alpha, sum);
  p.running_max[c] = max;
  p.alpha[c] = alpha;
}

template <bool kMask, bool kPadding, bool kCausal>
void step(const OnlineSoftmaxPanel& p) {
  size_t c0 = 0;
  for (; c0 + kLanes <= p.ld; c0 += kLanes) {
    if (c0 >= p.queries) {
      for (size_t j = 0; j < p.keys; ++j) vst1q_f32(p.scores + j * p.ld + c0, vdupq_n_f32(0.0f));
      continue;
    }
    step_columns<kMask, kPadding, kCausal>(p, c0, p.queries - c0 < kLanes ? p.queries - c0 : kLanes);
  }
  for (; c0 < p.ld; ++c0) step_column<kMask, kPadding, kCausal>(p, c0);
}

template <bool kMask, bool kPadding>
void step_causal(const OnlineSoftmaxPanel& p) {
  if (p.causal) {
    step<kMask, kPadding, true>(p);
  } else {
    step<kMask, kPadding, false>(p);
  }
}

}  // namespace

void f32_online_softmax_step_neon(const OnlineSoftmaxPanel& p) {
  if (p.mask != nullptr && p.padding != nullptr) return step_causal<true, true>(p);
  if (p.mask != nullptr) return step_causal<true, false>(p);
  if (p.padding != nullptr) return step_causal<false, true>(p);
  step_causal<false, false>(p);
}

}  // namespace simdformer
