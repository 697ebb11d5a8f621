// AVX-512 online softmax step (contract: OnlineSoftmaxStepFn in kernels.h):
// 16 queries (columns of the panel) per vector, so the running max and sum
// of 16 queries advance together with no horizontal reductions. Per chunk of
// 16 columns, two passes down the panel's rows (it is in L1):
//   1. s = scale * x + mask (one FMA per vector, as the reference), causal
//      lanes set to -inf, stored over x, and the column max, in two chains;
//   2. p = exp(s - max) (0 below the cut-off) stored over s, summed in two chains.
// Columns at or past `queries` are loaded as 0 and stored as 0.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx512.h"

namespace simdformer {

namespace {

constexpr size_t kLanes = 16;

inline __mmask16 first_lanes(size_t count) {
  return count >= kLanes ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

template <bool kMask, bool kPadding, bool kCausal>
void step_columns(const OnlineSoftmaxPanel& p, size_t c0, __mmask16 active, __mmask16 in_row) {
  const size_t n = p.keys, ld = p.ld;
  float* x = p.scores + c0;
  const float* mask = kMask ? p.mask + c0 : nullptr;
  const __m512 scale = _mm512_set1_ps(p.scale), minus_inf = _mm512_set1_ps(-INFINITY), zero = _mm512_setzero_ps();
  // Key j is masked for a lane when j > lane_query = c0 + lane + causal_offset.
  const int first_query = static_cast<int>(static_cast<ptrdiff_t>(c0) + p.causal_offset);
  const __m512i lane_query = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(first_query));
  auto score = [&](size_t j) {
    const __m512 xv = _mm512_maskz_loadu_ps(active, x + j * ld);
    __m512 s;
    if (kMask && kPadding) {
      const __m512 bias = _mm512_add_ps(_mm512_maskz_loadu_ps(active, mask + j * ld), _mm512_set1_ps(p.padding[j]));
      s = _mm512_fmadd_ps(scale, xv, bias);
    } else if (kMask) {
      s = _mm512_fmadd_ps(scale, xv, _mm512_maskz_loadu_ps(active, mask + j * ld));
    } else if (kPadding) {
      s = _mm512_fmadd_ps(scale, xv, _mm512_set1_ps(p.padding[j]));
    } else {
      s = _mm512_mul_ps(scale, xv);
    }
    if (kCausal) {
      s = _mm512_mask_mov_ps(s, _mm512_cmplt_epi32_mask(lane_query, _mm512_set1_epi32(static_cast<int>(j))), minus_inf);
    }
    return s;
  };

  // Pass 1.
  const __m512 old_max = _mm512_mask_loadu_ps(minus_inf, active, p.running_max + c0);
  __m512 max0 = old_max, max1 = minus_inf;
  size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m512 s0 = score(j), s1 = score(j + 1);
    _mm512_mask_storeu_ps(x + j * ld, active, s0);
    _mm512_mask_storeu_ps(x + (j + 1) * ld, active, s1);
    max0 = _mm512_max_ps(max0, s0);
    max1 = _mm512_max_ps(max1, s1);
  }
  if (j < n) {
    const __m512 s = score(j);
    _mm512_mask_storeu_ps(x + j * ld, active, s);
    max0 = _mm512_max_ps(max0, s);
  }
  const __m512 max = _mm512_max_ps(max0, max1);
  // A query whose scores are all -inf so far: shift by 0 instead, so p =
  // exp(-inf) = 0, and alpha = 1 rather than exp(-inf - -inf) = NaN.
  const __mmask16 empty = _mm512_cmp_ps_mask(max, minus_inf, _CMP_EQ_OQ);
  const __m512 shift = _mm512_mask_mov_ps(max, empty, zero);

  // Pass 2: p = exp(s - shift), 0 below the cut-off (masked keys included),
  // so vexp never underflows (which would cost microcode assists).
  const __m512 cutoff = _mm512_set1_ps(kOnlineSoftmaxCutoff);
  auto probability = [&](size_t j) {
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(active, x + j * ld), shift);
    const __mmask16 kept = _mm512_mask_cmp_ps_mask(active, d, cutoff, _CMP_GE_OQ);
    return _mm512_maskz_mov_ps(kept, vexp_avx512(_mm512_max_ps(d, cutoff)));
  };
  __m512 sum0 = zero, sum1 = zero;
  for (j = 0; j + 2 <= n; j += 2) {
    const __m512 e0 = probability(j), e1 = probability(j + 1);
    _mm512_mask_storeu_ps(x + j * ld, in_row, e0);
    _mm512_mask_storeu_ps(x + (j + 1) * ld, in_row, e1);
    sum0 = _mm512_add_ps(sum0, e0);
    sum1 = _mm512_add_ps(sum1, e1);
  }
  if (j < n) {
    const __m512 e = probability(j);
    _mm512_mask_storeu_ps(x + j * ld, in_row, e);
    sum0 = _mm512_add_ps(sum0, e);
  }

  // exp(-inf) = 0 when this tile holds a query's first finite score; exactly
  // 1 when its max did not move.
  const __m512 alpha = _mm512_mask_mov_ps(vexp_avx512(_mm512_sub_ps(old_max, shift)), empty, _mm512_set1_ps(1.0f));
  const __m512 old_sum = _mm512_maskz_loadu_ps(active, p.running_sum + c0);
  _mm512_mask_storeu_ps(p.running_sum + c0, active, _mm512_fmadd_ps(old_sum, alpha, _mm512_add_ps(sum0, sum1)));
  _mm512_mask_storeu_ps(p.running_max + c0, active, max);
  _mm512_mask_storeu_ps(p.alpha + c0, active, alpha);
}

template <bool kMask, bool kPadding, bool kCausal>
void step(const OnlineSoftmaxPanel& p) {
  for (size_t c0 = 0; c0 < p.ld; c0 += kLanes) {
    const __mmask16 in_row = first_lanes(p.ld - c0);
    if (c0 >= p.queries) {
      for (size_t j = 0; j < p.keys; ++j) _mm512_mask_storeu_ps(p.scores + j * p.ld + c0, in_row, _mm512_setzero_ps());
      continue;
    }
    step_columns<kMask, kPadding, kCausal>(p, c0, first_lanes(p.queries - c0), in_row);
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

void f32_online_softmax_step_avx512(const OnlineSoftmaxPanel& p) {
  if (p.mask != nullptr && p.padding != nullptr) return step_causal<true, true>(p);
  if (p.mask != nullptr) return step_causal<true, false>(p);
  if (p.padding != nullptr) return step_causal<false, true>(p);
  step_causal<false, false>(p);
}

}  // namespace simdformer
