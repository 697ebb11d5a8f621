// AVX2 online softmax step (contract: OnlineSoftmaxStepFn in kernels.h): 8
// queries (columns of the panel) per vector, as
// f32_online_softmax_step_avx512.cpp. Per chunk of 8 columns, two passes down
// the panel's rows:
//   1. s = scale * x + mask (one FMA per vector), causal lanes set to -inf,
//      stored over x, and the column max, in two chains;
//   2. p = exp(s - max) (0 below the cut-off) stored over s, summed in two chains.
// Columns at or past `queries` are read as 0 (_mm256_maskload_ps) and stored
// as 0; columns past ld are never touched.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 8;

template <bool kMask, bool kPadding, bool kCausal>
void step_columns(const OnlineSoftmaxPanel& p, size_t c0, size_t valid, size_t in_row_count) {
  const size_t n = p.keys, ld = p.ld;
  float* x = p.scores + c0;
  const float* mask = kMask ? p.mask + c0 : nullptr;
  const __m256i active = vtail_mask_avx2(valid), in_row = vtail_mask_avx2(in_row_count);
  const __m256 active_lanes = _mm256_castsi256_ps(active);
  const __m256 scale = _mm256_set1_ps(p.scale), minus_inf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
  // Key j is masked for a lane when j > lane_query = c0 + lane + causal_offset.
  const int first_query = static_cast<int>(static_cast<ptrdiff_t>(c0) + p.causal_offset);
  const __m256i lane_query = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(first_query));
  auto score = [&](size_t j) {
    const __m256 xv = _mm256_maskload_ps(x + j * ld, active);
    __m256 s;
    if (kMask && kPadding) {
      const __m256 bias = _mm256_add_ps(_mm256_maskload_ps(mask + j * ld, active), _mm256_set1_ps(p.padding[j]));
      s = _mm256_fmadd_ps(scale, xv, bias);
    } else if (kMask) {
      s = _mm256_fmadd_ps(scale, xv, _mm256_maskload_ps(mask + j * ld, active));
    } else if (kPadding) {
      s = _mm256_fmadd_ps(scale, xv, _mm256_set1_ps(p.padding[j]));
    } else {
      s = _mm256_mul_ps(scale, xv);
    }
    if (kCausal) {
      const __m256i after = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(j)), lane_query);
      s = _mm256_blendv_ps(s, minus_inf, _mm256_castsi256_ps(after));
    }
    return s;
  };

  // Pass 1.
  const __m256 old_max = _mm256_blendv_ps(minus_inf, _mm256_maskload_ps(p.running_max + c0, active), active_lanes);
  __m256 max0 = old_max, max1 = minus_inf;
  size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m256 s0 = score(j), s1 = score(j + 1);
    _mm256_maskstore_ps(x + j * ld, active, s0);
    _mm256_maskstore_ps(x + (j + 1) * ld, active, s1);
    max0 = _mm256_max_ps(max0, s0);
    max1 = _mm256_max_ps(max1, s1);
  }
  if (j < n) {
    const __m256 s = score(j);
    _mm256_maskstore_ps(x + j * ld, active, s);
    max0 = _mm256_max_ps(max0, s);
  }
  const __m256 max = _mm256_max_ps(max0, max1);
  // A query whose scores are all -inf so far: shift by 0 instead, so p =
  // exp(-inf) = 0, and alpha = 1 rather than exp(-inf - -inf) = NaN.
  const __m256 empty = _mm256_cmp_ps(max, minus_inf, _CMP_EQ_OQ);
  const __m256 shift = _mm256_blendv_ps(max, zero, empty);

  // Pass 2: p = exp(s - shift), 0 below the cut-off (masked keys included),
  // so vexp never underflows (which would cost microcode assists).
  const __m256 cutoff = _mm256_set1_ps(kOnlineSoftmaxCutoff);
  auto probability = [&](size_t j) {
    const __m256 d = _mm256_sub_ps(_mm256_maskload_ps(x + j * ld, active), shift);
    const __m256 kept = _mm256_and_ps(_mm256_cmp_ps(d, cutoff, _CMP_GE_OQ), active_lanes);
    return _mm256_and_ps(vexp_avx2(_mm256_max_ps(d, cutoff)), kept);
  };
  __m256 sum0 = zero, sum1 = zero;
  for (j = 0; j + 2 <= n; j += 2) {
    const __m256 e0 = probability(j), e1 = probability(j + 1);
    _mm256_maskstore_ps(x + j * ld, in_row, e0);
    _mm256_maskstore_ps(x + (j + 1) * ld, in_row, e1);
    sum0 = _mm256_add_ps(sum0, e0);
    sum1 = _mm256_add_ps(sum1, e1);
  }
  if (j < n) {
    const __m256 e = probability(j);
    _mm256_maskstore_ps(x + j * ld, in_row, e);
    sum0 = _mm256_add_ps(sum0, e);
  }

  // exp(-inf) = 0 when this tile holds a query's first finite score; exactly
  // 1 when its max did not move.
  const __m256 alpha = _mm256_blendv_ps(vexp_avx2(_mm256_sub_ps(old_max, shift)), _mm256_set1_ps(1.0f), empty);
  const __m256 old_sum = _mm256_maskload_ps(p.running_sum + c0, active);
  _mm256_maskstore_ps(p.running_sum + c0, active, _mm256_fmadd_ps(old_sum, alpha, _mm256_add_ps(sum0, sum1)));
  _mm256_maskstore_ps(p.running_max + c0, active, max);
  _mm256_maskstore_ps(p.alpha + c0, active, alpha);
}

template <bool kMask, bool kPadding, bool kCausal>
void step(const OnlineSoftmaxPanel& p) {
  for (size_t c0 = 0; c0 < p.ld; c0 += kLanes) {
    const size_t in_row = p.ld - c0 < kLanes ? p.ld - c0 : kLanes;
    if (c0 >= p.queries) {
      const __m256i lanes = vtail_mask_avx2(in_row);
      for (size_t j = 0; j < p.keys; ++j) _mm256_maskstore_ps(p.scores + j * p.ld + c0, lanes, _mm256_setzero_ps());
      continue;
    }
    step_columns<kMask, kPadding, kCausal>(p, c0, p.queries - c0 < kLanes ? p.queries - c0 : kLanes, in_row);
  }
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

void f32_online_softmax_step_avx2(const OnlineSoftmaxPanel& p) {
  if (p.mask != nullptr && p.padding != nullptr) return step_causal<true, true>(p);
  if (p.mask != nullptr) return step_causal<true, false>(p);
  if (p.padding != nullptr) return step_causal<false, true>(p);
  step_causal<false, false>(p);
}

}  // namespace simdformer
